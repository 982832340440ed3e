"""Event loops and resources: both backends under asyncio, uvloop and a loop without
`add_reader` (as Windows' Proactor loop); no file descriptor, thread or connection left behind
(docs/design/TESTING.md A13's resource half).

The native backend runs one tokio I/O thread per process, started with the first socket and
shared by all later ones: the thread count must not grow with the number of sockets.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

import pytest
from support import WAIT, loop_factory, next_of, run_with_loop, until

pytestmark = pytest.mark.timeout(60)


needs_proc = pytest.mark.skipif(
    not os.path.isdir("/proc/self/task"), reason="counts descriptors and threads in Linux /proc"
)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


async def reconnect_scenario(backend: ModuleType, mock: Any) -> None:
    async with backend.connect(mock.url, initial_backoff=0.02, idle_timeout=0) as ws:
        ws.subscribe(["BTC-USD@aggTrade", "ETH-USD@bookTicker"], id=1)
        assert (await next_of(ws, backend.SubscribeResult)).id == 1
        await next_of(ws, backend.AggTrade)
        mock.fault("reset")
        await next_of(ws, backend.Reconnecting)
        reconnected = await next_of(ws, backend.Reconnected)
        assert reconnected.attempts >= 1
        await next_of(ws, backend.BookTicker)
    record = await mock.wait_frames_async(1, 1, timeout=WAIT)
    assert record.frames[0] == (
        '{"method":"SUBSCRIBE","id":null,"params":["BTC-USD@aggTrade","ETH-USD@bookTicker"]}'
    )


LOOP_KINDS = ["asyncio", "uvloop", "no_add_reader"]


def run_on(loop_kind: str, main: Callable[[], Awaitable[None]]) -> None:
    if loop_kind == "uvloop":
        pytest.importorskip("uvloop")
    run_with_loop(main, loop_factory(loop_kind))


@pytest.mark.parametrize("loop_kind", LOOP_KINDS)
def test_reconnect_and_replay_on_each_event_loop(
    backend: ModuleType, mock: Any, loop_kind: str
) -> None:
    run_on(loop_kind, lambda: reconnect_scenario(backend, mock))


@needs_proc
@pytest.mark.parametrize("loop_kind", LOOP_KINDS)
def test_sockets_leave_no_descriptor_or_thread_behind(
    backend: ModuleType, mock: Any, loop_kind: str
) -> None:
    async def cycle() -> None:
        async with backend.connect(mock.url, idle_timeout=0) as ws:
            ws.ping(id=7)
            assert (await next_of(ws, backend.Pong)).id == 7

    async def main() -> None:
        await cycle()  # the first socket may start the runtime thread
        fds, threads = open_fds(), os_threads()
        for _ in range(20):
            await cycle()
        gc.collect()
        # The fake exchange runs in this process too, and its side of the last connection (like
        # the last relay thread on no_add_reader) goes a moment after the client's.
        await until(lambda: open_fds() <= fds and os_threads() <= threads)
        assert open_fds() <= fds
        assert os_threads() <= threads

    run_on(loop_kind, main)
    closed = [r for r in mock.connections if r.closed]
    assert len(closed) == len(mock.connections) == 21


async def test_dropping_the_handle_closes_the_connection(backend: ModuleType, mock: Any) -> None:
    ws = await backend.connect(mock.url, idle_timeout=0)
    ws.ping(id=1)
    await next_of(ws, backend.Pong)
    del ws
    gc.collect()
    record = await mock.wait_closed_async(0, timeout=WAIT)
    assert record.closed_by == "client"
    assert mock.handshakes == 1


def relay_threads() -> int:
    """The native backend's ring relay threads alive in this process (Linux names them)."""
    count = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as f:
                count += f.read().startswith("bullet-ws-ring")
        except OSError:  # the thread ended meanwhile
            pass
    return count


@needs_proc
def test_native_backend_on_a_loop_without_add_reader_relays_the_rings(
    native: ModuleType, mock: Any
) -> None:
    """The fallback is what runs (one relay thread per socket, none on a loop with
    add_reader), it carries every kind of wait, and it ends with the socket."""

    async def main() -> None:
        await until(lambda: relay_threads() == 0)  # those of earlier tests have ended
        async with native.connect(mock.url, initial_backoff=0.02, idle_timeout=0) as ws:
            # The new thread names itself once it runs.
            await until(lambda: relay_threads() == 1)
            ws.subscribe(["BTC-USD@aggTrade"], id=1)
            assert (await next_of(ws, native.SubscribeResult)).id == 1
            batch = await asyncio.wait_for(ws.recv_batch(), WAIT)
            assert batch
            mock.fault("reset")
            await next_of(ws, native.Reconnected)
            async with asyncio.timeout(WAIT):
                async for event in ws:
                    if isinstance(event, native.AggTrade):
                        break
        await until(lambda: relay_threads() == 0)

    async def on_a_normal_loop() -> None:
        async with native.connect(mock.url, idle_timeout=0) as ws:
            ws.ping(id=3)
            assert (await next_of(ws, native.Pong)).id == 3
            assert relay_threads() == 0

    run_on("no_add_reader", main)
    run_on("asyncio", on_a_normal_loop)
