"""Ownership: a socket ends with its event loop and when nothing refers to it, and closing it
before its task ever ran leaves nothing behind (issue 13, rows 3 and 4)."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from support import WAIT, NoReaderLoop, next_of, options, run_with_loop

pytestmark = pytest.mark.timeout(120)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("how", ["close", "async_with", "shutdown"])
def test_closing_before_the_first_step_leaks_nothing(
    backend: ModuleType, mock: Any, how: str
) -> None:
    """500 sockets closed before their task's first step: open fds do not grow."""

    async def cycle() -> None:
        if how == "close":
            ws = await backend.connect(mock.url, **options())
            await ws.close()
        elif how == "shutdown":
            # The shutdown idiom of signal handlers: every other task is cancelled, here the
            # socket's own before it ever ran.
            ws = await backend.connect(mock.url, **options())
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()
            await ws.close()
        else:
            async with backend.connect(mock.url, **options()):
                pass

    async def main() -> None:
        await cycle()
        await asyncio.sleep(0.05)
        fds = open_fds()
        for _ in range(500):
            await cycle()
        await asyncio.sleep(0.05)
        assert open_fds() <= fds + 2, f"{open_fds() - fds} descriptors leaked"

    asyncio.run(main())


def _loop_factory(loop_kind: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if loop_kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.new_event_loop  # type: ignore[no-any-return]
    if loop_kind == "no_add_reader":  # as Windows' Proactor loop: the ring relay thread
        return NoReaderLoop
    return asyncio.new_event_loop


def assert_never_reconnects(mock: Any) -> None:
    # A reconnect (initial_backoff 0.02 s) would have made its handshake by now.
    time.sleep(0.3)
    assert mock.handshakes == 1


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop", "no_add_reader"])
@pytest.mark.parametrize("closing", ["runner", "close"])
def test_a_socket_stops_when_its_loop_closes(
    backend: ModuleType, mock: Any, loop_kind: str, closing: str
) -> None:
    """A socket kept beyond its loop stops with it: its connection is closed, it never
    reconnects, and its commands raise StoppedError."""
    kept: list[Any] = []

    async def main() -> None:
        ws = await backend.connect(mock.url, **options())
        ws.subscribe(["BTC-USD@aggTrade"], id=1)
        await next_of(ws, backend.SubscribeResult)
        kept.append(ws)

    factory = _loop_factory(loop_kind)
    if closing == "runner":  # asyncio.run: the loop's tasks are cancelled, then it closes
        run_with_loop(main, factory)
    else:  # a bare close(): nothing on the loop runs again
        loop = factory()
        loop.run_until_complete(main())
        loop.close()
    mock.wait_closed(0, timeout=WAIT)
    with pytest.raises(backend.StoppedError):
        kept[0].ping()
    assert_never_reconnects(mock)


def test_a_socket_left_by_an_exception_stops_without_the_cycle_collector(
    backend: ModuleType, mock: Any
) -> None:
    """An exception escaping main() leaves the socket in a reference cycle (the exception's
    traceback holds asyncio's frames, which hold the failed task, which holds the exception):
    the socket must stop anyway, without waiting for the cycle collector."""

    class Boom(Exception):
        pass

    async def main() -> None:
        ws = await backend.connect(mock.url, **options())
        ws.subscribe(["BTC-USD@aggTrade"], id=1)
        await next_of(ws, backend.SubscribeResult)
        raise Boom

    gc.disable()
    try:
        try:
            asyncio.run(main())
        except Boom:
            pass
        mock.wait_closed(0, timeout=WAIT)
        assert_never_reconnects(mock)
    finally:
        gc.enable()


async def test_a_dropped_socket_stops_by_reference_counting(backend: ModuleType, mock: Any) -> None:
    """Within a running loop, a socket that nothing refers to any more stops at once: none of
    its own objects (awaitables, doorbell, futures) refers back to it."""

    class Boom(Exception):
        pass

    async def session() -> None:
        ws = await backend.connect(mock.url, **options())
        ws.subscribe(["BTC-USD@aggTrade"], id=1)
        await next_of(ws, backend.SubscribeResult)
        asyncio.ensure_future(ws.recv())  # a waiter left sleeping
        await asyncio.sleep(0)
        raise Boom

    gc.disable()
    try:
        try:
            await session()
        except Boom:
            pass
        await mock.wait_closed_async(0, timeout=WAIT)
    finally:
        gc.enable()
    await asyncio.sleep(0.3)
    assert mock.handshakes == 1
