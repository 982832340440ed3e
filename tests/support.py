"""Helpers shared by the behavioural tests: test-sized config and bounded waits on events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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
