"""What a waiting `recv()` sleeps on (`src/python/waiter.rs` on the native backend, an asyncio
Future on the pure one): the task resumes in its own context, and cancelling it behaves as
cancelling any asyncio wait (both backends).
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import sys
from types import ModuleType
from typing import Any

import pytest
from support import WAIT, next_of, options, until

pytestmark = pytest.mark.timeout(60)

NEW_CANCEL = sys.version_info >= (3, 11)

owner: contextvars.ContextVar[str] = contextvars.ContextVar("owner", default="nobody")


async def asleep_in_recv(ws: Any) -> tuple[asyncio.Task[Any], Any]:
    """A task waiting in `ws.recv()`, and the future it sleeps on."""
    task = asyncio.create_task(ws.recv())
    await until(lambda: task._fut_waiter is not None)  # type: ignore[attr-defined]
    return task, task._fut_waiter  # type: ignore[attr-defined]


async def test_a_waiting_recv_resumes_in_its_tasks_context(backend: ModuleType, mock: Any) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        asleep = asyncio.Event()

        async def consumer(name: str) -> tuple[str, Any]:
            owner.set(name)
            asleep.set()
            pong = await next_of(ws, backend.Pong)
            return owner.get(), pong.id

        tasks = [asyncio.create_task(consumer(n)) for n in ("first", "second")]
        async with asyncio.timeout(WAIT):
            await asleep.wait()
            ws.ping(id=1)
            ws.ping(id=2)
            results = await asyncio.gather(*tasks)
        assert [name for name, _ in results] == ["first", "second"]
        assert sorted(pong_id for _, pong_id in results) == [1, 2]
        assert owner.get() == "nobody"


async def test_a_cancelled_recv_raises_with_the_cancel_message(
    backend: ModuleType, mock: Any
) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        async with asyncio.timeout(WAIT):
            task, _ = await asleep_in_recv(ws)
            task.cancel("enough")
            # Python 3.10 does not hand the message to whoever awaits the task (both backends).
            with pytest.raises(asyncio.CancelledError, match="enough" if NEW_CANCEL else None):
                await task
        # The socket goes on: the next recv gets the next event.
        ws.ping(id=5)
        async with asyncio.timeout(WAIT):
            assert (await next_of(ws, backend.Pong)).id == 5


async def test_a_timeout_around_a_waiting_recv_cancels_it_and_nothing_else(
    backend: ModuleType, mock: Any
) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.02):
                await ws.recv()
        ws.ping(id=6)
        async with asyncio.timeout(WAIT):
            assert (await next_of(ws, backend.Pong)).id == 6


async def test_the_future_a_recv_sleeps_on_keeps_asyncios_rules_for_other_callbacks(
    backend: ModuleType, mock: Any
) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        task, fut = await asleep_in_recv(ws)
        assert asyncio.isfuture(fut)
        assert not fut.done()
        seen: list[str] = []

        class LooksAtTheFuture:
            def __eq__(self, other: object) -> bool:
                return fut.done() and other is self

            __hash__ = object.__hash__

        owner.set("adder")
        fut.add_done_callback(lambda _: seen.append(owner.get()))
        # A comparison that calls back into the future (asyncio compares with ==).
        assert fut.remove_done_callback(LooksAtTheFuture()) == 0
        owner.set("changed")
        ws.ping(id=3)
        async with asyncio.timeout(WAIT):
            assert isinstance(await task, backend.Pong)
            await until(lambda: bool(seen))
        # A callback given no context runs in a copy of the adder's, taken when it was added.
        assert seen == ["adder"]


async def test_the_future_a_recv_sleeps_on_takes_part_in_garbage_collection(
    backend: ModuleType, mock: Any
) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        task, fut = await asleep_in_recv(ws)
        # The task holds it and it holds the task's wake-up: a Task abandoned asleep is a cycle
        # only the collector can free, so it must see the future's references.
        assert gc.is_tracked(fut)
        assert asyncio.get_running_loop() in gc.get_referents(fut)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_woken_recvs_callbacks_get_a_finished_asyncio_future(
    backend: ModuleType, mock: Any
) -> None:
    # What the Task's wake-up is handed: an asyncio Future, whose result CPython's C Task reads
    # directly (on any other object it looks `result` up by name and calls it).
    async with backend.connect(mock.url, **options()) as ws:
        task, fut = await asleep_in_recv(ws)
        handed: list[Any] = []
        fut.add_done_callback(handed.append)
        ws.ping(id=4)
        async with asyncio.timeout(WAIT):
            assert isinstance(await task, backend.Pong)
            await until(lambda: bool(handed))
        (done,) = handed
        assert type(done) is asyncio.Future
        assert done.done() and not done.cancelled()
        assert done.result() is None
