"""Typing test, checked by `mypy --strict tests/typing` (scripts/test), never run: what users'
type checkers see for the awaited results of both backends."""

from __future__ import annotations

import bullet_ws as bw
import bullet_ws.pure as bp
from bullet_ws import (
    BookGap,
    BookResynced,
    Disconnected,
    LatencySummary,
    OrderUnacked,
    Reconnected,
    Reconnecting,
    Rotated,
)

Event = (
    bw.Message
    | Reconnecting
    | Reconnected
    | Disconnected
    | OrderUnacked
    | Rotated
    | BookGap
    | BookResynced
)
from typing_extensions import assert_type


async def native() -> None:
    async with bw.connect("ws://127.0.0.1:1/ws") as ws:
        event = await ws.recv()
        assert_type(event, Event | None)
        batch = await ws.recv_batch(16)
        assert_type(batch, list[Event])
        ws.subscribe(["BTC-USD@bookTicker"], conflate=True)
        assert_type(ws.stats.events_conflated, int)
        assert_type(ws.stats.exchange_delay, LatencySummary | None)
        async for item in ws:
            if isinstance(item, bw.AggTrade):
                assert_type(item.price, str)
                assert_type(item.fill_type, str | None)
            elif isinstance(item, Reconnecting):
                assert_type(item.attempt, int)
                assert_type(item.delay, float)


async def pure() -> None:
    async with bp.connect("ws://127.0.0.1:1/ws") as ws:
        event = await ws.recv()
        if isinstance(event, bp.OrderUpdate):
            assert_type(event.trade_id, int | None)
        batch = await ws.recv_batch(16)
        assert_type(len(batch), int)
        ws.subscribe(["BTC-USD@depth10"], conflate=True)
        delay = ws.stats.delivery_delay
        if delay is not None:
            assert_type(delay.p99, float)
