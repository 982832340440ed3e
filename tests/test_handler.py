"""Push delivery (`ws.set_handler`): every event goes, in order, to a plain function called on the
loop's thread, instead of to `recv()`, `recv_batch()` or `async for`. Same behaviour on both
backends; what the fake exchange received is the proof for orders placed from the handler.
"""

from __future__ import annotations

import asyncio
import gc
from types import ModuleType
from typing import Any

import pytest
from bullet_ws import _policy
from support import WAIT, next_of, options, until

pytestmark = pytest.mark.timeout(60)

TOPIC = "BTC-USD@aggTrade"
TX = "AAECAwQFBgc="


async def wait_for(event: asyncio.Event) -> None:
    async with asyncio.timeout(WAIT):
        await event.wait()


async def test_a_handler_gets_every_event_in_order_and_its_orders_go_out(
    backend: ModuleType, mock: Any
) -> None:
    seen: list[Any] = []
    done = asyncio.Event()
    async with backend.connect(mock.url, **options()) as ws:

        def on_event(event: Any) -> None:
            seen.append(event)
            if isinstance(event, backend.AggTrade) and event.agg_trade_id <= 5:
                ws.order_place(TX, id=event.agg_trade_id)
            acks = [e for e in seen if isinstance(e, backend.OrderResult)]
            if len(acks) == 5:
                done.set()

        ws.set_handler(on_event)
        ws.subscribe([TOPIC], id=1)
        await wait_for(done)
    trades = [e.agg_trade_id for e in seen if isinstance(e, backend.AggTrade)]
    assert trades == list(range(1, len(trades) + 1))
    assert isinstance(seen[0], backend.SubscribeResult)
    assert [e.id for e in seen if isinstance(e, backend.OrderResult)] == [1, 2, 3, 4, 5]
    placed = [r["id"] for r in mock.requests(0) if r.get("method") == "ORDER.PLACE"]
    assert placed == [1, 2, 3, 4, 5]


async def test_the_pull_methods_refuse_while_a_handler_is_set_and_resume_after(
    backend: ModuleType, mock: Any
) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        seen: list[Any] = []
        got_trades = asyncio.Event()

        def on_event(event: Any) -> None:
            seen.append(event)
            if sum(isinstance(e, backend.AggTrade) for e in seen) >= 3:
                got_trades.set()

        ws.set_handler(on_event)
        ws.subscribe([TOPIC], id=1)
        for pull in (ws.recv, ws.recv_batch, ws.__anext__):
            with pytest.raises(RuntimeError) as caught:
                await pull()
            assert str(caught.value) == _policy.HANDLER_SET
        await wait_for(got_trades)
        ws.set_handler(None)
        last = max(e.agg_trade_id for e in seen if isinstance(e, backend.AggTrade))
        following = await next_of(ws, backend.AggTrade)
        assert following.agg_trade_id > last
        async for event in ws:
            if isinstance(event, backend.AggTrade):
                assert event.agg_trade_id == following.agg_trade_id + 1
                break


async def test_events_queued_before_the_handler_go_to_it_first(
    backend: ModuleType, mock: Any
) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        ws.subscribe([TOPIC], id=1)
        await until(lambda: ws.stats.queued >= 5)
        seen: list[Any] = []
        enough = asyncio.Event()

        def on_event(event: Any) -> None:
            seen.append(event)
            if len(seen) >= 10:
                enough.set()

        ws.set_handler(on_event)
        assert seen == [], "delivery starts on the loop's next turn, never inside set_handler"
        await wait_for(enough)
    assert isinstance(seen[0], backend.SubscribeResult)
    trades = [e.agg_trade_id for e in seen if isinstance(e, backend.AggTrade)]
    assert trades[:5] == [1, 2, 3, 4, 5]


async def test_an_exception_from_the_handler_goes_to_the_loop_and_delivery_goes_on(
    backend: ModuleType, mock: Any
) -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    boom = ValueError("strategy bug")
    trades: list[int] = []
    enough = asyncio.Event()

    def on_event(event: Any) -> None:
        if isinstance(event, backend.AggTrade):
            trades.append(event.agg_trade_id)
            if event.agg_trade_id == 2:
                raise boom
            if len(trades) >= 5:
                enough.set()

    try:
        async with backend.connect(mock.url, **options()) as ws:
            ws.set_handler(on_event)
            ws.subscribe([TOPIC], id=1)
            await wait_for(enough)
    finally:
        loop.set_exception_handler(None)
    assert trades[:5] == [1, 2, 3, 4, 5]
    assert len(reported) == 1
    assert reported[0]["message"] == _policy.HANDLER_RAISED
    assert reported[0]["exception"] is boom


async def test_set_handler_is_accepted_after_an_async_for_step_was_dropped_asleep(
    backend: ModuleType, mock: Any
) -> None:
    """An `async for` awaitable left asleep and dropped without `close` (driven by hand, or a
    collected Task) is not a waiting pull any more, even though the native socket keeps the
    object to reuse it."""
    async with backend.connect(mock.url, **options()) as ws:
        while ws.stats.queued:
            await ws.recv()
        step = ws.__anext__().__await__()
        next(step)  # asleep: it yielded what it sleeps on
        with pytest.raises(RuntimeError):
            ws.set_handler(print)
        del step
        gc.collect()
        ws.set_handler(print)
        ws.set_handler(None)


async def test_set_handler_refuses_while_a_recv_waits_but_not_after_it_was_cancelled(
    backend: ModuleType, mock: Any
) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        while ws.stats.queued:
            await ws.recv()
        started = asyncio.Event()

        async def consumer() -> Any:
            started.set()
            return await ws.recv()

        task = asyncio.create_task(consumer())
        await wait_for(started)
        with pytest.raises(RuntimeError) as caught:
            ws.set_handler(print)
        assert str(caught.value) == _policy.HANDLER_WHILE_WAITING
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        seen: list[Any] = []
        first = asyncio.Event()
        ws.set_handler(lambda e: (seen.append(e), first.set()))
        ws.subscribe([TOPIC], id=1)
        await wait_for(first)
        assert isinstance(seen[0], backend.SubscribeResult)


async def test_set_handler_refuses_while_a_recv_waits_through_reads_that_bring_nothing(
    backend: ModuleType, mock_factory: Any
) -> None:
    mock = mock_factory(ping_interval=0.005)
    async with backend.connect(mock.url, **options()) as ws:
        ws.ping(id=7)
        await next_of(ws, backend.Pong)
        pending = asyncio.create_task(ws.recv())
        # Reads that bring no event wake the loop while the recv waits: on the native backend,
        # the read the loop owes when it claims the reads at this recv's sleep, then the server's
        # pings, which it reads itself. None may let a handler in before the recv has returned,
        # at any loop iteration.
        async with asyncio.timeout(WAIT):
            while mock.connection(0).pongs < 10:
                await asyncio.sleep(0)
                with pytest.raises(RuntimeError) as caught:
                    ws.set_handler(print)
                assert str(caught.value) == _policy.HANDLER_WHILE_WAITING
        ws.subscribe([TOPIC], id=1)
        async with asyncio.timeout(WAIT):
            assert isinstance(await pending, backend.SubscribeResult)


async def test_a_handler_sees_a_reconnect_and_the_stream_after_it(
    backend: ModuleType, mock: Any
) -> None:
    seen: list[Any] = []
    resumed = asyncio.Event()

    def on_event(event: Any) -> None:
        seen.append(event)
        if any(isinstance(e, backend.Reconnected) for e in seen) and isinstance(
            event, backend.AggTrade
        ):
            resumed.set()

    async with backend.connect(mock.url, **options()) as ws:
        ws.set_handler(on_event)
        ws.subscribe([TOPIC], id=1)
        await until(lambda: any(isinstance(e, backend.AggTrade) for e in seen))
        assert mock.fault("reset") == 1
        await wait_for(resumed)
    kinds = [type(e).__name__ for e in seen]
    assert kinds.index("Reconnecting") < kinds.index("Reconnected")


async def test_set_handler_arguments(backend: ModuleType, mock: Any) -> None:
    async def coroutine_function(event: Any) -> None:
        pass

    async with backend.connect(mock.url, **options()) as ws:
        with pytest.raises(TypeError, match="^handler must be a callable or None, got int"):
            ws.set_handler(5)
        with pytest.raises(TypeError, match="^handler must be a plain function"):
            ws.set_handler(coroutine_function)
        ws.set_handler(None)
        ws.ping(id=3)
        assert (await next_of(ws, backend.Pong)).id == 3
