"""Event loops and resources: both backends under asyncio and uvloop; no file descriptor,
thread or connection left behind (docs/design/TESTING.md A13's resource half).

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
from support import WAIT, next_of

pytestmark = pytest.mark.timeout(60)


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


def run_on(loop_kind: str, main: Callable[[], Awaitable[None]]) -> None:
    if loop_kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    else:
        runner = asyncio.Runner()
    with runner:
        runner.run(main())  # type: ignore[arg-type]


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_reconnect_and_replay_on_each_event_loop(
    backend: ModuleType, mock: Any, loop_kind: str
) -> None:
    run_on(loop_kind, lambda: reconnect_scenario(backend, mock))


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
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
