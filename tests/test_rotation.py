"""Make-before-break rotation (issue 14 item 3), on BOTH backends, against the fake exchange with
`shared_sequence=True`: every connection carries the same per-topic ids at about the same time,
so a switch from one connection to the next can be checked for gaps and duplicates.

A rotation starts on a `status: disconnecting` (delivered first) or when a connection reaches
`max_connection_age`; it opens a second connection, replays the subscriptions on it, switches
once the new one has caught up, then closes the old one. It yields `Rotated`, never
`Reconnecting`. Timings are test-sized; every wait has an upper bound.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from support import WAIT, next_of, options, until

pytestmark = pytest.mark.timeout(30)

TRADES = "BTC-USD@aggTrade"
DEPTH = "ETH-USD@depth5"
TICKER = "SOL-USD@bookTicker"
TX = "AAECAwQFBgc="


class Streams:
    """Everything delivered, checked per topic: aggTrade `a` and bookTicker `u` count up by one,
    each depth update chains (`pu` == the previous `u`) unless it is a snapshot."""

    def __init__(self, backend: ModuleType) -> None:
        self.backend = backend
        self.trades: list[int] = []
        self.tickers: list[int] = []
        self.depth: list[tuple[int, int, bool]] = []  # (pu, u, snapshot)
        self.lifecycle: list[Any] = []

    def add(self, event: Any) -> None:
        b = self.backend
        if isinstance(event, b.AggTrade):
            self.trades.append(event.agg_trade_id)
        elif isinstance(event, b.BookTicker):
            self.tickers.append(event.update_id)
        elif isinstance(event, b.DepthUpdate):
            self.depth.append(
                (event.prev_final_update_id, event.final_update_id, event.is_snapshot)
            )
        elif not isinstance(event, b.Message):
            self.lifecycle.append(event)

    def check(self) -> None:
        for name, ids in (("aggTrade", self.trades), ("bookTicker", self.tickers)):
            assert ids, f"no {name} delivered"
            steps = [b - a for a, b in itertools.pairwise(ids)]
            bad = [(i, ids[i], ids[i + 1]) for i, s in enumerate(steps) if s != 1]
            assert not bad, f"{name}: gaps or duplicates at {bad[:5]}"
        if self.depth:
            for (_, u0, _), (pu1, u1, snap1) in itertools.pairwise(self.depth):
                assert snap1 or pu1 == u0, f"depth chain broken: u {u0} then pu {pu1} (u {u1})"


async def pump(
    ws: Any, streams: Streams, until_cond: Callable[[], bool], timeout: float = WAIT
) -> None:
    async with asyncio.timeout(timeout):
        while not until_cond():
            event = await ws.recv()
            assert event is not None, f"stream ended; lifecycle {streams.lifecycle}"
            streams.add(event)


async def test_disconnecting_rotates_without_gap_or_duplicate(
    backend: ModuleType, mock_factory: Callable[..., Any]
) -> None:
    mock = mock_factory(rate=400.0, shared_sequence=True)
    async with backend.connect(mock.url, **options()) as ws:
        ws.subscribe([TRADES, DEPTH, TICKER], id=1)
        streams = Streams(backend)
        await pump(ws, streams, lambda: len(streams.trades) >= 50)
        mock.fault("disconnecting", reason="max_duration", delay=1.0)
        await pump(
            ws, streams, lambda: any(isinstance(e, backend.Rotated) for e in streams.lifecycle)
        )
        rotated = next(e for e in streams.lifecycle if isinstance(e, backend.Rotated))
        assert rotated.reason == "max_duration"
        assert 0 <= rotated.overlap < WAIT
        # The old connection is closed (by us once switched, or by the server's notice).
        await mock.wait_closed_async(0, timeout=WAIT)
        after = len(streams.trades)
        await pump(ws, streams, lambda: len(streams.trades) >= after + 100)
        streams.check()
        assert not [
            e
            for e in streams.lifecycle
            if isinstance(e, (backend.Reconnecting, backend.Reconnected))
        ]
        assert ws.stats.rotations == 1 and ws.stats.reconnects == 0
        assert mock.handshakes == 2
        # The status came first, as a message.
        assert ws.topics == frozenset({TRADES, DEPTH, TICKER})


async def test_max_connection_age_rotates_without_gap_or_duplicate(
    backend: ModuleType, mock_factory: Callable[..., Any]
) -> None:
    mock = mock_factory(rate=400.0, shared_sequence=True)
    async with backend.connect(mock.url, **options(max_connection_age=0.6)) as ws:
        ws.subscribe([TRADES, DEPTH, TICKER], id=1)
        streams = Streams(backend)
        await pump(
            ws,
            streams,
            lambda: sum(isinstance(e, backend.Rotated) for e in streams.lifecycle) >= 2,
            timeout=3 * WAIT,
        )
        reasons = {e.reason for e in streams.lifecycle if isinstance(e, backend.Rotated)}
        assert reasons == {"max_connection_age"}
        after = len(streams.trades)
        await pump(ws, streams, lambda: len(streams.trades) >= after + 50)
        streams.check()
        assert not [e for e in streams.lifecycle if isinstance(e, backend.Reconnecting)]
        assert ws.stats.rotations >= 2 and ws.stats.reconnects == 0
        first = await mock.wait_closed_async(0, timeout=WAIT)
        assert first.closed_by == "client"


async def test_a_failed_new_connection_falls_back_to_reconnect(
    backend: ModuleType, mock_factory: Callable[..., Any]
) -> None:
    mock = mock_factory(rate=100.0, shared_sequence=True)
    async with backend.connect(mock.url, **options()) as ws:
        ws.subscribe([TRADES], id=1)
        await next_of(ws, backend.AggTrade)
        mock.fault("refuse", scope="next")
        mock.fault("disconnecting", reason="max_duration", delay=0.5)
        status = await next_of(ws, backend.Status)
        assert status.status == "disconnecting"
        reconnecting = await next_of(ws, (backend.Reconnecting, backend.Rotated))
        assert isinstance(reconnecting, backend.Reconnecting), reconnecting
        await next_of(ws, backend.Reconnected)
        await next_of(ws, backend.AggTrade)
        assert ws.stats.rotations == 0 and ws.stats.reconnects == 1
        assert mock.connection(0).closed_by == "server"


async def test_an_order_written_on_the_old_connection_keeps_its_ack(
    backend: ModuleType, mock_factory: Callable[..., Any]
) -> None:
    mock = mock_factory(rate=200.0, shared_sequence=True)
    async with backend.connect(mock.url, **options()) as ws:
        ws.subscribe([TRADES], id=1)
        await next_of(ws, backend.AggTrade)
        mock.fault("disconnecting", reason="max_duration", delay=1.5)
        await next_of(ws, backend.Status)
        ws.submit(TX, id=7)  # written on whichever connection is current: acked either way
        seen: list[Any] = []
        async with asyncio.timeout(WAIT):
            while not (
                any(isinstance(e, backend.Rotated) for e in seen)
                and any(isinstance(e, backend.OrderResult) for e in seen)
            ):
                event = await ws.recv()
                assert event is not None
                seen.append(event)
        results = [e for e in seen if isinstance(e, backend.OrderResult)]
        assert [r.id for r in results] == [7]
        assert not [e for e in seen if isinstance(e, (backend.OrderUnacked, backend.Reconnecting))]
        ws.submit(TX, id=8)  # after the switch: on the new connection
        result = await next_of(ws, backend.OrderResult)
        assert result.id == 8
        await until(lambda: len(mock.connections) == 2)
        assert any('"id":8' in f for f in mock.connection(1).frames)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (-1, ValueError),
        (float("nan"), ValueError),
        (1e300, ValueError),
        (True, TypeError),
        ("1", TypeError),
    ],
)
def test_max_connection_age_is_validated(backend: ModuleType, value: Any, error: type) -> None:
    with pytest.raises(error, match="^max_connection_age"):
        backend.connect("ws://127.0.0.1:9/ws", max_connection_age=value)


def test_max_connection_age_default_and_event(backend: ModuleType) -> None:
    assert backend.ManagedWsConfig().max_connection_age == 84_600.0
    assert backend.ManagedWsConfig(max_connection_age=0).max_connection_age == 0.0
    event = backend.Rotated("max_connection_age", 0.25)
    match event:
        case backend.Rotated(reason=r, overlap=o):
            assert (r, o) == ("max_connection_age", 0.25)
    assert "Rotated" in backend.__all__
    assert backend.Stats(1, 2, 3, 4).rotations == 0


def trade(a: int, symbol: str = "BTC-USD") -> tuple[Any, int]:
    from bullet_ws.pure import parse_message

    frame = (
        f'{{"e":"aggTrade","E":1,"s":"{symbol}","a":{a},"p":"1","q":"1","f":1,"l":1,'
        f'"T":1,"m":true,"th":"0x"}}'
    )
    return parse_message(frame), 0


def agg_ids(out: list[tuple[Any, int]]) -> list[int]:
    return [m.agg_trade_id for m, _ in out]


def test_the_new_connection_takes_over_once_level_with_the_old() -> None:
    """Read after the old connection in a fixed order (asyncio reads sockets in fd order), the new
    one may never get ahead of it: level with what was delivered is enough to take over, with no
    gap and no duplicate (the pure backend's twin of the Rust unit test)."""
    from bullet_ws.pure.rotation import Dedup

    dedup = Dedup()
    dedup.replay_acked = True
    out: list[tuple[Any, int]] = []
    for a in range(10, 13):
        dedup.admit(trade(a), False, out)
        dedup.admit(trade(a), True, out)
    assert dedup.caught_up()
    dedup.admit(trade(13), False, out)
    dedup.admit(trade(13), True, out)
    assert agg_ids(out) == [10, 11, 12, 13]


def test_a_topic_first_seen_after_the_switch_is_delivered_from_the_new_one() -> None:
    """Subscribed while the old connection drains, or quiet all through the overlap: the new
    connection's messages are delivered, not held for an old one that never carries them (what is
    held ends with the rotation). The pure backend's twin of the Rust unit test."""
    from bullet_ws.pure.rotation import Dedup

    dedup = Dedup()
    out: list[tuple[Any, int]] = []
    dedup.admit(trade(10), False, out)
    dedup.admit(trade(10), True, out)
    dedup.force_switch(out)
    dedup.admit(trade(5, "ETH-USD"), True, out)
    dedup.admit(trade(6, "ETH-USD"), True, out)
    dedup.admit(trade(4, "ETH-USD"), False, out)  # the old one's: dropped
    dedup.admit(trade(7, "ETH-USD"), True, out)
    assert agg_ids(out) == [10, 5, 6, 7]


def test_after_the_switch_the_new_one_is_not_held_behind_the_old_one() -> None:
    """After the switch the new connection alone delivers, also a topic the old one delivered
    first (the pure backend's twin of the Rust unit test)."""
    from bullet_ws.pure.rotation import Dedup

    dedup = Dedup()
    out: list[tuple[Any, int]] = []
    dedup.admit(trade(9, "ETH-USD"), False, out)
    dedup.force_switch(out)
    dedup.admit(trade(10), False, out)  # the old one's, after the switch: dropped
    dedup.admit(trade(12), True, out)
    dedup.admit(trade(11), False, out)
    dedup.admit(trade(13), True, out)
    dedup.admit(trade(11, "ETH-USD"), True, out)
    assert agg_ids(out) == [9, 12, 13, 11]


async def test_the_order_book_crosses_rotations_without_a_gap(
    backend: ModuleType, mock_factory: Callable[..., Any]
) -> None:
    """The depth messages a rotation delivers from either connection reach the order book too."""
    mock = mock_factory(rate=400.0, shared_sequence=True)
    async with backend.connect(mock.url, **options(max_connection_age=0.6)) as ws:
        ws.subscribe([TRADES, DEPTH, TICKER], id=1)
        book = ws.book("ETH-USD")
        streams = Streams(backend)
        await pump(
            ws,
            streams,
            lambda: sum(isinstance(e, backend.Rotated) for e in streams.lifecycle) >= 2,
            timeout=3 * WAIT,
        )
        after = len(streams.depth)
        await pump(ws, streams, lambda: len(streams.depth) >= after + 20)
        streams.check()
        book_events = (backend.BookGap, backend.BookResynced)
        assert not [e for e in streams.lifecycle if isinstance(e, book_events)]
        assert book.is_synced
        # The book is applied as messages are read, ahead of what was taken.
        assert book.last_update_id >= streams.depth[-1][1]
