"""Ownership: a socket ends with its event loop and when nothing refers to it, and closing it
before its task ever ran leaves nothing behind (issue 13, rows 3 and 4)."""

from __future__ import annotations

import asyncio
import gc
import os
from types import ModuleType
from typing import Any

import pytest
from support import WAIT, next_of, options

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
