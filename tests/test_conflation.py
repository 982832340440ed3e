"""Conflation (`subscribe(..., conflate=True)`, issue 17), on both backends, against the fake
exchange.

Determinism: the fake exchange floods a known number of frames (`max_messages`, round robin over
the streaming topics) while nobody consumes, so every frame is queued before the first is taken:
each conflated topic then holds exactly its newest message. With a consumer that keeps taking
small batches, only invariants are asserted: no older message of a topic after a newer one, no
loss on the other topics, and received = delivered + conflated + dropped exactly.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from support import WAIT, next_of, options, until

pytestmark = pytest.mark.timeout(60)

TICKER = "BTC-USD@bookTicker"
DEPTH = "ETH-USD@depth10"
MARK = "SOL-USD@markPrice"
TRADES = "BTC-USD@aggTrade"


async def drain(ws: Any) -> list[Any]:
    """Every queued event, once the queue holds nothing more."""
    out: list[Any] = []
    async with asyncio.timeout(WAIT):
        while ws.stats.queued:
            out.extend(await ws.recv_batch())
    return out


def user_requests(mock: Any) -> list[dict[str, Any]]:
    """What connection 0 got from the test (keepalive pings use ids from 2**64-2**32 up)."""
    return [r for r in mock.requests(0) if not (r.get("id") or 0) >= 2**64 - 2**32]


def messages(backend: ModuleType, events: list[Any]) -> list[Any]:
    market = (backend.BookTicker, backend.DepthUpdate, backend.MarkPrice, backend.AggTrade)
    return [e for e in events if isinstance(e, market)]


async def test_bad_conflate_arguments_raise_and_queue_nothing(
    backend: ModuleType, mock: Any
) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        with pytest.raises(TypeError, match="^conflate must be a bool"):
            ws.subscribe([TICKER], conflate=1)
        for topic in (TRADES, "!bookTicker@arr", "BTC-USD@depth", "BTC-USD@kline_1m"):
            with pytest.raises(ValueError, match=rf"^conflate: '{topic}' cannot be conflated"):
                ws.subscribe([TICKER, topic], conflate=True)
        assert ws.topics == frozenset()
        ws.ping(id=7)
        assert (await next_of(ws, backend.Pong)).id == 7
        assert [r.get("method") for r in user_requests(mock)] == ["PING"], "nothing else was sent"


async def test_a_flood_queued_unconsumed_keeps_one_message_per_conflated_topic(
    backend: ModuleType, mock_factory: Callable[..., Any]
) -> None:
    per_topic = 1000
    mock = mock_factory(rate=None, max_messages=3 * per_topic)
    async with backend.connect(mock.url, **options(channel_capacity=100_000)) as ws:
        # One SUBSCRIBE, so that the round robin covers the three topics from the first frame.
        ws.subscribe([TICKER, DEPTH, MARK], id=1, conflate=True)
        book = ws.book("ETH-USD")  # read from the start: its levels are kept from here on
        await until(lambda: ws.stats.messages_received >= 3 * per_topic + 1)
        got = messages(backend, await drain(ws))
        stats = ws.stats
        kinds = Counter(type(m).__name__ for m in got)
        assert kinds == {"BookTicker": 1, "DepthUpdate": 1, "MarkPrice": 1}
        ticker = next(m for m in got if isinstance(m, backend.BookTicker))
        assert ticker.update_id == per_topic, "the newest one"
        assert stats.events_conflated == 3 * (per_topic - 1)
        assert stats.events_dropped == 0
        assert stats.messages_received == len(got) + 1 + stats.events_conflated  # +1: the ack
        # The book of a conflated depth topic still saw every update.
        assert book.is_synced
        depth = next(m for m in got if isinstance(m, backend.DepthUpdate))
        assert book.last_update_id == depth.final_update_id


async def test_a_slow_consumer_never_gets_an_older_message_after_a_newer_one(
    backend: ModuleType, mock_factory: Callable[..., Any]
) -> None:
    flood = 40_000
    mock = mock_factory(rate=None, max_messages=flood)
    async with backend.connect(mock.url, **options(channel_capacity=100_000)) as ws:
        ws.subscribe([TICKER, DEPTH, MARK, TRADES])
        ws.subscribe([TICKER, DEPTH, MARK], conflate=True)
        last: dict[str, int] = {}
        delivered = trades = 0
        async with asyncio.timeout(30):
            while ws.stats.messages_received < flood + 1 or ws.stats.queued:
                batch = await ws.recv_batch(7)
                for m in messages(backend, batch):
                    if isinstance(m, backend.BookTicker):
                        key, seq, strict = "ticker", m.update_id, True
                    elif isinstance(m, backend.DepthUpdate):
                        key, seq, strict = "depth", m.final_update_id, True
                    elif isinstance(m, backend.MarkPrice):
                        key, seq, strict = "mark", m.event_time, False  # one E per write batch
                    else:
                        key, seq, strict = "trade", m.agg_trade_id, True
                        trades += 1
                    before = last.get(key, -1)
                    assert seq > before if strict else seq >= before, (key, before, seq)
                    last[key] = seq
                delivered += len(batch)
                sum(range(3000))  # a deliberately slow consumer: work per batch
        stats = ws.stats
        assert stats.events_dropped == 0
        assert stats.messages_received == delivered + stats.events_conflated
        assert last["ticker"] == flood // 4, "the newest ticker is never lost"
        assert last["trade"] == flood // 4 and trades == flood // 4, "nor any trade"


async def flood_again(ws: Any, backend: ModuleType, mock: Any, received: int) -> list[Any]:
    """A new connection's flood (the fake exchange's `max_messages` counts per connection), once
    it is all queued: the market messages after `Reconnected`, drained."""
    mock.fault("close")
    await next_of(ws, backend.Reconnected)
    await until(lambda: ws.stats.messages_received >= received)
    return messages(backend, await drain(ws))


def tickers(backend: ModuleType, got: list[Any]) -> list[int]:
    return [m.update_id for m in got if isinstance(m, backend.BookTicker)]


# Each phase below starts from settings made while nothing streams (the previous flood is over),
# and reads a whole new flood queued before the consumer takes any of it: deterministic. The
# events taken together with `Reconnected` may include a first ticker of the new flood, so a
# conflated flood delivers one or two tickers.


async def test_the_setting_outlives_reconnects_and_changes_without_a_frame(
    backend: ModuleType, mock_factory: Callable[..., Any]
) -> None:
    n = 2000  # per connection: half tickers, half trades
    mock = mock_factory(rate=None, max_messages=n)
    async with backend.connect(mock.url, **options(channel_capacity=100_000)) as ws:
        ws.subscribe([TICKER, TRADES], id=1)
        await until(lambda: ws.stats.messages_received >= n + 1)
        got = messages(backend, await drain(ws))
        assert tickers(backend, got) == list(range(1, n // 2 + 1)), "not conflated: all of them"
        assert ws.stats.events_conflated == 0

        ws.subscribe([TICKER], id=2, conflate=True)  # active: only the setting changes
        got = await flood_again(ws, backend, mock, 2 * n + 2)
        assert 1 <= len(tickers(backend, got)) <= 2
        assert tickers(backend, got)[-1] == n // 2, "the newest one"
        conflated = ws.stats.events_conflated
        assert conflated == n // 2 - len(tickers(backend, got))
        trades = [m.agg_trade_id for m in got if isinstance(m, backend.AggTrade)]
        assert trades == list(range(1, n // 2 + 1)), "an unconflated topic loses nothing"

        ws.subscribe([TICKER], id=3, conflate=False)
        got = await flood_again(ws, backend, mock, 3 * n + 3)
        assert tickers(backend, got) == list(range(1, n // 2 + 1))
        assert ws.stats.events_conflated == conflated

        subscribes = [r for r in mock.requests(0) if r.get("method") == "SUBSCRIBE"]
        assert [r["id"] for r in subscribes] == [1], "nothing sent for the setting"
        replays = [r["params"] for r in mock.requests(1) if r.get("method") == "SUBSCRIBE"]
        assert replays == [[TICKER, TRADES]]
        stats = ws.stats
        assert stats.events_dropped == 0
        assert stats.messages_received == 3 * n + 3  # the floods and three acks


async def test_unsubscribe_drops_the_setting(
    backend: ModuleType, mock_factory: Callable[..., Any]
) -> None:
    n = 1000
    mock = mock_factory(rate=None, max_messages=n)
    async with backend.connect(mock.url, **options(channel_capacity=100_000)) as ws:
        ws.subscribe([TICKER], conflate=True)
        await until(lambda: ws.stats.messages_received >= n + 1)
        assert tickers(backend, messages(backend, await drain(ws))) == [n]
        assert ws.stats.events_conflated == n - 1
        ws.unsubscribe([TICKER])
        ws.subscribe([TICKER])
        # Their acks on this connection (whose flood is over), then the replay's and a new flood.
        await until(lambda: ws.stats.messages_received >= n + 3)
        got = await flood_again(ws, backend, mock, 2 * n + 4)
        assert tickers(backend, got) == list(range(1, n + 1))
        assert ws.stats.events_conflated == n - 1
