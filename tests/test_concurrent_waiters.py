"""Several tasks waiting on one socket: each waiter is independent (both backends).

A timeout around one `recv()` must not cancel another task's `async for`; `gather` of two
`recv()`s gets two different events; `asyncio.create_task(ws.recv())` works.
"""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import pytest
from support import WAIT, next_of, options

pytestmark = pytest.mark.timeout(60)


async def test_cancelling_one_waiter_leaves_the_others_waiting(
    backend: ModuleType, mock: Any
) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        consumer = asyncio.create_task(next_of(ws, backend.Pong))
        # asyncio.TimeoutError: what wait_for raises on 3.10 (the builtin one since 3.11)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.05)
        assert not consumer.done(), "cancelling one waiter ended another"
        ws.ping(id=9)
        async with asyncio.timeout(WAIT):
            pong = await consumer
        assert pong.id == 9


async def test_gather_and_create_task_get_distinct_events(backend: ModuleType, mock: Any) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        ws.ping(id=1)
        ws.ping(id=2)
        ws.ping(id=3)
        async with asyncio.timeout(WAIT):
            first, second = await asyncio.gather(ws.recv(), ws.recv())
            third = await asyncio.create_task(ws.recv())
        # Two waiters asleep at once: either may take the first. A Task that runs before the
        # ring is handled takes what is queued, as a second `asyncio.Queue.get()` would.
        assert {first.id, second.id} == {1, 2}
        assert third.id == 3


async def test_async_for_awaitables_are_independent(backend: ModuleType, mock: Any) -> None:
    """`async for` may reuse its awaitable once its await is over (native): one still held
    elsewhere is never handed out again, and one cancelled mid-sleep leaves the next working."""
    async with backend.connect(mock.url, **options()) as ws:
        it = aiter(ws)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(anext(it), 0.05)
        for i in range(1, 6):
            ws.ping(id=i)
        async with asyncio.timeout(WAIT):
            first, second = await asyncio.gather(anext(it), anext(it))
            third = await anext(it)
            fourth, fifth = await asyncio.gather(anext(it), asyncio.create_task(anext(it)))
        # Either may take the first, as in the test above.
        assert {first.id, second.id} == {1, 2}
        assert third.id == 3
        assert {fourth.id, fifth.id} == {4, 5}, "the task made first may well take 4"
