"""Local order books with gap healing (issue 17), on both backends.

- The book logic, fed frame by frame through each backend's test hook (`_BookFeeder`), equals an
  independent reference book (Decimal keys) after 10 000 random updates with injected gaps,
  lost resubscribes and periodic snapshots; gaps, resubscribes and resyncs happen as documented.
- Against the fake exchange: a `depth_gap` fault gives `BookGap`, the UNSUBSCRIBE + SUBSCRIBE of
  that topic on the wire, then `BookResynced`; the book is synced and equals the exchange's state.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import random
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest
from bullet_ws import BookGap, BookNotFound, BookResynced, Reconnected
from bullet_ws._policy import BOOK_UNREAD_GRACE
from support import WAIT, next_of, options, until

pytestmark = pytest.mark.timeout(60)

SYMBOL = "BTC-USD"
TOPIC = "BTC-USD@depth10"

Levels = list[tuple[str, str]]


def feeder(backend: ModuleType) -> Any:
    if backend.__name__ == "bullet_ws":
        return importlib.import_module("bullet_ws._core")._BookFeeder()
    return importlib.import_module("bullet_ws.pure.book")._BookFeeder()


def frame(mt: str, pu: int, u: int, bids: Levels, asks: Levels, symbol: str = SYMBOL) -> str:
    return json.dumps(
        {
            "e": "depthUpdate",
            "E": 1_700_000_000_000_000 + u,
            "T": 1,
            "s": symbol,
            "U": pu + 1,
            "u": u,
            "pu": pu,
            "b": [list(level) for level in bids],
            "a": [list(level) for level in asks],
            "mt": mt,
        }
    )


class Reference:
    """The exchange's book: Decimal price -> the level as last sent; zero quantities remove."""

    def __init__(self) -> None:
        self.sides: tuple[dict[Decimal, tuple[str, str]], dict[Decimal, tuple[str, str]]] = ({}, {})

    def apply(self, bids: Levels, asks: Levels, snapshot: bool) -> None:
        for side, levels in zip(self.sides, (bids, asks)):
            if snapshot:
                side.clear()
            for price, qty in levels:
                if Decimal(qty) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = (price, qty)

    def bids(self) -> Levels:
        return [self.sides[0][p] for p in sorted(self.sides[0], reverse=True)]

    def asks(self) -> Levels:
        return [self.sides[1][p] for p in sorted(self.sides[1])]


def price_text(cents: int, rng: random.Random) -> str:
    """One price, spelled in one of the ways a decimal can be: numerically equal spellings must
    be one level, and text order is not price order ("99.5" > "100" as text)."""
    whole, frac = divmod(cents, 100)
    return rng.choice(
        [
            f"{whole}.{frac:02d}",
            f"{whole}.{frac:02d}0",
            f"0{whole}.{frac:02d}",
            f"{whole}" if frac == 0 else f"{whole}.{frac:02d}",
            f"{whole}.{frac // 10}" if frac % 10 == 0 else f"{whole}.{frac:02d}",
        ]
    )


def random_levels(rng: random.Random, snapshot: bool) -> tuple[Levels, Levels]:
    sides: tuple[Levels, Levels] = ([], [])
    for index, side in enumerate(sides):
        for _ in range(rng.randint(3, 8) if snapshot else rng.randint(0, 4)):
            cents = rng.randint(9_500, 9_999) if index == 0 else rng.randint(10_001, 10_500)
            if not snapshot and rng.random() < 0.25:
                qty = rng.choice(["0", "0.0", "0.000", "00"])
            else:
                qty = f"{rng.randint(0, 30)}.{rng.randint(1, 999):03d}"
            side.append((price_text(cents, rng), qty))
    return sides


def test_book_logic_equals_a_reference_over_10000_updates_with_gaps(backend: ModuleType) -> None:
    rng = random.Random(17)
    books = feeder(backend)
    books.subscribe([TOPIC, "BTC-USD@aggTrade"], 0.0)
    book = books.book(SYMBOL)
    assert books.book("ETH-USD") is None
    assert (book.is_synced, book.bids(), book.last_update_id) == (False, [], 0)
    exchange = Reference()
    now, u = 0.0, 0
    last_applied = 0  # the client's last u while synced
    synced = False
    lost_at: float | None = None
    snapshot_due: int | None = None  # the step at which a requested snapshot arrives
    resubscribes: list[float] = []
    gaps = resyncs = 0
    for step in range(10_000):
        now += 0.01
        snapshot = step == 0 or step % 997 == 0 or step == snapshot_due
        if snapshot:
            snapshot_due = None
        elif rng.random() < 1 / 250:
            # An update the client never gets: the exchange's book moves on without it.
            bids, asks = random_levels(rng, False)
            exchange.apply(bids, asks, False)
            u += rng.randint(1, 3)
        bids, asks = random_levels(rng, snapshot)
        exchange.apply(bids, asks, snapshot)
        pu, u = u, u + rng.randint(1, 3)
        event, resubscribe = books.feed(frame("s" if snapshot else "u", pu, u, bids, asks), now)
        if snapshot:
            expected_event = None if synced or lost_at is None else BookResynced(SYMBOL, 0.0)
            assert type(event) is type(expected_event), step
            if isinstance(event, BookResynced):
                assert event.symbol == SYMBOL
                assert event.downtime == pytest.approx(now - lost_at, abs=1e-6)  # type: ignore[operator]
                resyncs += 1
            synced, lost_at, last_applied = True, None, u
        elif synced and pu != last_applied:
            assert event == BookGap(SYMBOL, last_applied, pu), step
            gaps += 1
            synced, lost_at = False, now
        elif synced:
            assert event is None
            last_applied = u
        else:
            assert event is None, step
        if resubscribe:
            assert resubscribe == [TOPIC]
            assert not synced
            assert not resubscribes or now - resubscribes[-1] >= 1.0 - 1e-9, step
            resubscribes.append(now)
            # The exchange answers with a snapshot a few frames later, unless the request is
            # lost: the book must then ask again.
            if rng.random() < 0.8:
                snapshot_due = step + rng.randint(1, 5)
        assert book.is_synced is synced, step
        if synced:
            assert book.bids() == exchange.bids(), step
            assert book.asks() == exchange.asks(), step
            assert book.last_update_id == u
            assert book.best_bid == (exchange.bids() or [None])[0]
            assert book.best_ask == (exchange.asks() or [None])[0]
            assert book.bids(3) == exchange.bids()[:3]
    assert gaps > 20 and resyncs > 10 and len(resubscribes) >= gaps


def test_a_book_read_soon_after_its_subscribe_misses_nothing_even_after_its_snapshot(
    backend: ModuleType,
) -> None:
    """`ws.book` right after `subscribe` can lose the race with the first snapshot (a busy
    machine, the socket thread first): a new book keeps its levels until its first read, for up
    to BOOK_UNREAD_GRACE."""
    books = feeder(backend)
    books.subscribe([TOPIC], 0.0)
    assert books.feed(frame("s", 0, 1, [("10", "1")], [("11", "1")]), 0.1) == (None, [])
    assert books.feed(frame("u", 1, 2, [("9", "2")], []), 0.2) == (None, [])
    book = books.book(SYMBOL, BOOK_UNREAD_GRACE + 0.5)  # read late, but no message came since
    assert (book.is_synced, book.bids(), book.asks()) == (
        True,
        [("10", "1"), ("9", "2")],
        [("11", "1")],
    )
    assert books.feed(frame("u", 2, 3, [("9", "0")], []), BOOK_UNREAD_GRACE + 1) == (None, [])
    assert book.bids() == [("10", "1")], "kept for good once read"


def test_levels_are_kept_from_the_first_read_of_the_book(backend: ModuleType) -> None:
    """A book nobody has read within BOOK_UNREAD_GRACE of its subscribe follows its topic's
    sequence (gaps, resyncs) but keeps no levels: read first mid-stream, it is not synced until
    the next snapshot, asked for after a second without one, and that wait reports no gap and
    no resync."""
    books = feeder(backend)
    books.subscribe([TOPIC], -BOOK_UNREAD_GRACE)
    assert books.feed(frame("s", 0, 1, [("10", "1")], [("11", "1")]), 0.1) == (None, [])
    assert books.feed(frame("u", 1, 2, [("9", "2")], []), 0.2) == (None, [])
    # The sequence is followed while nobody reads the book: a gap is reported and healed.
    event, resubscribe = books.feed(frame("u", 5, 6, [], []), 0.3)
    assert (event, resubscribe) == (BookGap(SYMBOL, 2, 5), [TOPIC])
    event, _ = books.feed(frame("s", 0, 7, [("10", "3")], [("12", "1")]), 0.4)
    assert isinstance(event, BookResynced)
    assert books.feed(frame("u", 7, 8, [("8", "1")], []), 0.5) == (None, [])
    book = books.book(SYMBOL, 0.6)
    assert (book.is_synced, book.bids(), book.asks(), book.best_bid) == (False, [], [], None)
    assert books.book(SYMBOL, 0.7).is_synced is False  # a second read changes nothing
    assert books.feed(frame("u", 8, 9, [("7", "1")], []), 0.8) == (None, [])
    assert (book.is_synced, book.bids()) == (False, [])
    # The second counts from the read: 1.1 s after the last resubscribe, 0.8 s after the read.
    assert books.feed(frame("u", 9, 10, [], []), 1.4) == (None, [])
    # A second after the first read without a snapshot: the topic is asked again, once.
    assert books.feed(frame("u", 10, 11, [], []), 1.6) == (None, [TOPIC])
    assert books.feed(frame("u", 11, 12, [], []), 1.7) == (None, [])
    assert books.feed(frame("s", 0, 13, [("10", "4"), ("9", "1")], [("12", "2")]), 1.8) == (
        None,
        [],
    )
    assert book.is_synced and book.bids() == [("10", "4"), ("9", "1")]
    assert (book.asks(), book.last_update_id) == ([("12", "2")], 13)
    assert books.feed(frame("u", 13, 14, [("9", "0")], []), 1.9) == (None, [])
    assert book.bids() == [("10", "4")]


def test_a_book_synced_long_before_its_first_read_waits_a_second_from_the_read(
    backend: ModuleType,
) -> None:
    books = feeder(backend)
    books.subscribe([TOPIC], 0.0)
    assert books.feed(frame("s", 0, 1, [("10", "1")], []), 0.1) == (None, [])
    assert books.feed(frame("u", 1, 2, [], []), 50.0) == (None, [])
    book = books.book(SYMBOL, 60.0)
    assert not book.is_synced
    assert books.feed(frame("u", 2, 3, [], []), 60.5) == (None, [])
    assert books.feed(frame("u", 3, 4, [], []), 61.0) == (None, [TOPIC])


def test_a_book_read_before_its_first_snapshot_misses_nothing(backend: ModuleType) -> None:
    books = feeder(backend)
    books.subscribe([TOPIC], 0.0)
    book = books.book(SYMBOL, 0.0)
    assert books.feed(frame("s", 0, 1, [("10", "1")], [("11", "1")]), 0.1) == (None, [])
    assert (book.is_synced, book.bids(), book.asks()) == (True, [("10", "1")], [("11", "1")])


def test_prices_order_by_value_and_zero_quantities_remove(backend: ModuleType) -> None:
    books = feeder(backend)
    books.subscribe([TOPIC], 0.0)
    book = books.book(SYMBOL)
    books.feed(
        frame(
            "s",
            0,
            5,
            [("99.5", "1"), ("100", "2"), ("9.75", "3")],
            [("100.25", "1"), ("1000", "2"), ("200", "3")],
        ),
        0.0,
    )
    assert book.bids() == [("100", "2"), ("99.5", "1"), ("9.75", "3")]
    assert book.asks(2) == [("100.25", "1"), ("200", "3")]
    books.feed(
        frame(
            "u",
            5,
            6,
            [("100.00", "7"), ("99.50", "0.000"), ("x", "1"), ("5", "-1")],
            [("100.250", "0")],
        ),
        0.0,
    )
    assert book.bids() == [("100.00", "7"), ("9.75", "3")]
    assert (book.best_ask, book.best_bid) == (("200", "3"), ("100.00", "7"))
    assert (book.last_update_id, book.event_time) == (6, 1_700_000_000_000_006)
    assert book.bids(0) == [] and book.bids(10**30) == book.bids()
    with pytest.raises(TypeError, match="^n must be an int or None, got str$"):
        book.bids("2")
    with pytest.raises(TypeError, match="^n must be an int or None, got bool$"):
        book.asks(True)
    with pytest.raises(ValueError, match="^n must be >= 0, got -1$"):
        book.asks(-1)
    assert repr(book).startswith(f"<OrderBook {SYMBOL} synced=True last_update_id=6")
    # Unsubscribed: the book goes, and a reference held elsewhere says it is not synced.
    books.unsubscribe([TOPIC], 0.0)
    assert books.book(SYMBOL) is None and book.is_synced is False


# --- against the fake exchange -----------------------------------------------------------------


async def test_book_lookup(backend: ModuleType, mock: Any) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        with pytest.raises(BookNotFound) as info:
            ws.book(SYMBOL)
        assert isinstance(info.value, KeyError)
        assert str(info.value) == (
            "no order book for 'BTC-USD': subscribe to BTC-USD@depth5, @depth10 or @depth20 first"
        )
        assert info.value.symbol == SYMBOL
        with pytest.raises(TypeError, match="^symbol must be a str, got int$"):
            ws.book(1)
        ws.subscribe(["BTC-USD@aggTrade", "ETH-USD@depth5"])
        with pytest.raises(BookNotFound):
            ws.book(SYMBOL)
        book = ws.book("ETH-USD")
        assert isinstance(book, backend.OrderBook) and book.symbol == "ETH-USD"
        assert ws.book("ETH-USD") is book or backend.__name__ == "bullet_ws"
        await until(lambda: book.is_synced)
        ws.unsubscribe(["ETH-USD@depth5"])
        with pytest.raises(BookNotFound):
            ws.book("ETH-USD")
        assert not book.is_synced


async def test_a_book_first_read_after_its_snapshot_and_updates_is_whole(
    backend: ModuleType, mock_factory: Any
) -> None:
    """Read after the consumer saw the snapshot and an update (within BOOK_UNREAD_GRACE): the
    book has every level at once. Read past the grace, it would wait for the next snapshot
    (`test_levels_are_kept_from_the_first_read_of_the_book`)."""
    mock = mock_factory(rate=400.0)
    async with backend.connect(mock.url, **options()) as ws:
        ws.subscribe([TOPIC], id=1)
        events: list[Any] = []
        async with asyncio.timeout(WAIT):
            while not any(isinstance(e, backend.DepthUpdate) and not e.is_snapshot for e in events):
                events.append(await ws.recv())
        book = ws.book(SYMBOL)
        assert book.is_synced and book.bids() and book.asks()
        assert book.last_update_id >= events[-1].final_update_id
        await assert_book_follows_the_exchange(ws, backend, book, mock)
        assert [r["method"] for r in mock.requests(0)] == ["SUBSCRIBE"], "no resubscribe"


async def collect_until(ws: Any, cls: type, into: list[Any]) -> Any:
    async with asyncio.timeout(WAIT):
        while True:
            event = await ws.recv()
            assert event is not None
            into.append(event)
            if isinstance(event, cls):
                return event


async def test_a_depth_gap_is_healed(backend: ModuleType, mock_factory: Any) -> None:
    mock = mock_factory(rate=400.0)
    async with backend.connect(mock.url, **options()) as ws:
        ws.subscribe([TOPIC], id=1)
        book = ws.book(SYMBOL)
        await until(lambda: book.is_synced)
        assert mock.fault("depth_gap") == 1
        events: list[Any] = []
        gap = await collect_until(ws, BookGap, events)
        depth = [e for e in events if isinstance(e, backend.DepthUpdate)]
        assert gap.symbol == SYMBOL
        assert gap.expected == depth[-2].final_update_id
        assert gap.got == depth[-1].prev_final_update_id != gap.expected
        assert events[-2] is depth[-1]  # reported right after the update that showed it
        resynced = await next_of(ws, BookResynced)
        assert resynced.symbol == SYMBOL and resynced.downtime > 0
        assert book.is_synced
        requests = [(r["method"], r["id"], r.get("params")) for r in mock.requests(0)]
        assert requests == [
            ("SUBSCRIBE", 1, [TOPIC]),
            ("UNSUBSCRIBE", None, [TOPIC]),
            ("SUBSCRIBE", None, [TOPIC]),
        ]
        await assert_book_follows_the_exchange(ws, backend, book, mock)


async def assert_book_follows_the_exchange(
    ws: Any, backend: ModuleType, book: Any, mock: Any
) -> None:
    """From the next snapshot on, a reference built from the delivered messages equals every
    later periodic snapshot (the exchange's whole state) and, once the exchange is quiet, the
    book."""
    reference: Reference | None = None
    checked = 0
    last_u = 0
    async with asyncio.timeout(WAIT):
        while checked < 2:
            event = await ws.recv()
            if not isinstance(event, backend.DepthUpdate):
                continue
            if event.is_snapshot:
                if reference is not None:
                    assert (reference.bids(), reference.asks()) == (event.bids, event.asks)
                    checked += 1
                reference = reference or Reference()
            elif reference is None:
                continue
            else:
                assert event.prev_final_update_id == last_u
            reference.apply(event.bids, event.asks, event.is_snapshot)
            last_u = event.final_update_id
    assert reference is not None
    mock.fault("silence")
    while True:
        try:
            async with asyncio.timeout(0.3):
                event = await ws.recv()
        except TimeoutError:
            break
        if isinstance(event, backend.DepthUpdate):
            assert event.prev_final_update_id == last_u
            reference.apply(event.bids, event.asks, event.is_snapshot)
            last_u = event.final_update_id
    assert book.is_synced and book.last_update_id == last_u
    assert (book.bids(), book.asks()) == (reference.bids(), reference.asks())


async def test_a_book_resyncs_after_a_reconnect(backend: ModuleType, mock: Any) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        ws.subscribe([TOPIC, "ETH-USD@aggTrade"])
        book = ws.book(SYMBOL)
        await until(lambda: book.is_synced)
        mock.fault("reset")
        events: list[Any] = []
        resynced = await collect_until(ws, BookResynced, events)
        kinds = [type(e) for e in events]
        assert kinds.index(Reconnected) < len(kinds) - 1
        assert resynced.symbol == SYMBOL and book.is_synced
        assert not any(isinstance(e, BookGap) for e in events)
        assert [r["method"] for r in mock.requests(1)] == ["SUBSCRIBE"]
