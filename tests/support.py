"""Helpers shared by the behavioural tests: test-sized config and bounded waits on events."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

WAIT = 5.0  # upper bound of any single wait for something that should happen


def options(**overrides: Any) -> dict[str, Any]:
    """Test-sized config: fast backoff, idle timer off unless a test turns it on."""
    base: dict[str, Any] = {
        "initial_backoff": 0.02,
        "max_backoff": 0.2,
        "idle_timeout": 0,
        "connection_timeout": 2.0,
    }
    base.update(overrides)
    return base


async def next_of(ws: Any, cls: type | tuple[type, ...], timeout: float = WAIT) -> Any:
    """The next event of class `cls`, skipping others; fails after `timeout` or at the end."""
    async with asyncio.timeout(timeout):
        while True:
            event = await ws.recv()
            assert event is not None, f"stream ended while waiting for {cls}"
            if isinstance(event, cls):
                return event


async def until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll a condition on client-side state (stats, counters) with an upper bound. The short
    sleep only yields to the loop between checks; no test relies on how long it lasts."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def timeout_310(delay: float | None) -> AsyncIterator[None]:
    """`asyncio.timeout` for CPython 3.10, which lacks it; conftest installs it there. Only the
    use the tests make of it: a deadline on the enclosed awaits, raising the builtin
    TimeoutError (3.10's asyncio.TimeoutError is another class) when it passes."""
    task = asyncio.current_task()
    assert task is not None, "timeout() outside a task"
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    handle = None if delay is None else asyncio.get_running_loop().call_later(delay, expire)
    try:
        yield
    except asyncio.CancelledError:
        if expired:
            raise TimeoutError from None
        raise
    finally:
        if handle is not None:
            handle.cancel()


def run_with_loop(main: Callable[[], Any], loop_factory: Callable[[], Any] | None = None) -> None:
    """`asyncio.Runner(loop_factory=...).run(main())`, also on 3.10 (no Runner there)."""
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(main())
        return
    loop = (loop_factory or asyncio.new_event_loop)()
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main())
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


class NoReaderLoop(asyncio.SelectorEventLoop):
    """A loop without `add_reader`, as Windows' Proactor loop: the native backend must fall back
    to its ring relay thread. The loop's own transports use the private `_add_reader`, so sockets
    (the pure backend's, the test servers') work as usual."""

    def add_reader(self, fd: Any, callback: Callable[..., object], *args: Any) -> None:
        raise NotImplementedError

    def remove_reader(self, fd: Any) -> bool:
        raise NotImplementedError


def loop_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop for a kind named in tests and in BULLET_WS_TEST_LOOP: asyncio (the default),
    uvloop, or no_add_reader."""
    if kind == "asyncio":
        return None
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop  # type: ignore[no-any-return]
    if kind == "no_add_reader":
        return NoReaderLoop
    raise ValueError(f"unknown event loop kind {kind!r}")
