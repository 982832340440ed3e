"""Local order books of the pure backend: the rules of the native `src/book.rs`, in Python.

Every subscribed depth topic (`SYMBOL@depth5|10|20`) has a book. A snapshot (`mt:"s"`) replaces
it; an update applies when its `pu` is the book's last `u`. When it is not, the book stops being
synced, reports `BookGap`, and asks the socket to resubscribe its topic (at most once per
`RESUBSCRIBE_EVERY`); the snapshot that follows brings `BookResynced`.

Prices are ordered by exact value (the decimal string as an int scaled by 10**18, never a float);
the wire strings are kept. A quantity that is numerically zero removes its level.
"""

from __future__ import annotations

import re
from bisect import bisect_left, insort

from bullet_ws import _validate
from bullet_ws._policy import BOOK_UNREAD_GRACE, RESUBSCRIBE_EVERY
from bullet_ws.events import BookGap, BookResynced
from bullet_ws.pure.messages import DepthUpdate
from bullet_ws.pure.parse import parse_message

__all__ = ["Books", "OrderBook", "decimal_key", "depth_symbol"]

_SCALE = 18
_UNIT = 1_000_000_000_000_000_000  # 10**_SCALE
_MAX_WHOLE = 20
_DECIMAL = re.compile(r"([0-9]+)(?:\.([0-9]+))?")  # [0-9]: ASCII digits only, unlike \d
_DEPTH_STREAMS = frozenset(("depth5", "depth10", "depth20"))

Level = tuple[str, str]


def decimal_key(text: str) -> int | None:
    """The exact value of a decimal string times 10**18, or None when it is not
    `[0-9]+(\\.[0-9]+)?`, has more than 20 integer digits (after leading zeros) or a non-zero
    digit beyond the 18th fractional one. Same rule as the native core."""
    match = _DECIMAL.fullmatch(text)
    if match is None:
        return None
    whole = match.group(1).lstrip("0")
    frac = match.group(2) or ""
    if len(whole) > _MAX_WHOLE:
        return None
    if len(frac) > _SCALE:
        if frac[_SCALE:].strip("0"):
            return None
        frac = frac[:_SCALE]
    return int(whole or "0") * _UNIT + int(frac.ljust(_SCALE, "0"))


def depth_symbol(topic: str) -> str | None:
    """The symbol of a `SYMBOL@depth5|10|20` topic, else None."""
    symbol, at, stream = topic.partition("@")
    return symbol if at and symbol and stream in _DEPTH_STREAMS else None


class _Side:
    """Levels by price key, plus the keys in best-first order (bids store them negated)."""

    __slots__ = ("keys", "levels", "sign")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.keys: list[int] = []
        self.levels: dict[int, Level] = {}

    def update(self, levels: list[Level]) -> None:
        for price, qty in levels:
            key = decimal_key(price)
            amount = decimal_key(qty)
            if key is None or amount is None:
                continue  # not a decimal: there is no right place for it
            if amount == 0:
                if self.levels.pop(key, None) is not None:
                    keys = self.keys
                    del keys[bisect_left(keys, key * self.sign)]
            else:
                if key not in self.levels:
                    insort(self.keys, key * self.sign)
                self.levels[key] = (price, qty)

    def replace(self, levels: list[Level]) -> None:
        self.keys.clear()
        self.levels.clear()
        self.update(levels)

    def first(self, n: int | None) -> list[Level]:
        keys = self.keys if n is None else self.keys[:n]
        levels, sign = self.levels, self.sign
        return [levels[k * sign] for k in keys]


class OrderBook:
    """The live order book of one symbol, kept by the socket from its depth topic.

    Read it at any time: `bids(n)`/`asks(n)` copy up to `n` levels (all with None), best first,
    as (price, quantity) wire strings. While `is_synced` is False (before the first snapshot,
    after a gap or a reconnect), the levels are the last known ones and may be stale; a book
    first read after it dropped its levels (unread at a depth message BOOK_UNREAD_GRACE after
    its subscribe) has none until its next snapshot.
    """

    __slots__ = (
        "_asks",
        "_bids",
        "_event_time",
        "_last_resubscribe",
        "_last_update_id",
        "_levels_kept",
        "_lost_at",
        "_symbol",
        "_synced",
        "_unread_until",
        "_waiting_since",
        "_wanted",
    )

    def __init__(self, symbol: str, now: float) -> None:
        self._symbol = symbol
        self._bids = _Side(-1)
        self._asks = _Side(1)
        self._last_update_id = 0
        self._event_time = 0
        self._synced = False
        # The socket's bookkeeping (see src/book.rs): when a synced book lost its sync, since
        # when it waits for a snapshot, the last resubscribe, and one held back by the limit.
        self._lost_at: float | None = None
        self._waiting_since = now
        self._last_resubscribe: float | None = None
        self._wanted = False
        # Levels are kept from the first read of the book on (`Books.book`), and before it for
        # BOOK_UNREAD_GRACE (a read right after the subscribe may come after the snapshot);
        # otherwise only the sequence is followed, so a socket whose books nobody reads does not
        # pay for them. `_unread_until` is None once read or past the grace.
        self._levels_kept = True
        self._unread_until: float | None = now + BOOK_UNREAD_GRACE

    @property
    def symbol(self) -> str:
        """The symbol, as in the depth topic."""
        return self._symbol

    def bids(self, n: int | None = None) -> list[Level]:
        """Up to `n` bids (all with None), best (highest) first."""
        return self._bids.first(_validate.count_arg(n))

    def asks(self, n: int | None = None) -> list[Level]:
        """Up to `n` asks (all with None), best (lowest) first."""
        return self._asks.first(_validate.count_arg(n))

    @property
    def best_bid(self) -> Level | None:
        """The highest bid, or None."""
        bids = self._bids
        return bids.levels[-bids.keys[0]] if bids.keys else None

    @property
    def best_ask(self) -> Level | None:
        """The lowest ask, or None."""
        asks = self._asks
        return asks.levels[asks.keys[0]] if asks.keys else None

    @property
    def last_update_id(self) -> int:
        """`u` of the last message applied (0 before the first snapshot)."""
        return self._last_update_id

    @property
    def event_time(self) -> int:
        """`E` (µs) of the last message applied (0 before the first snapshot)."""
        return self._event_time

    @property
    def is_synced(self) -> bool:
        """True from a snapshot until a gap, a reconnect or the unsubscribe of its topic (and,
        for a book first read after it dropped its levels, False until the next snapshot)."""
        return self._synced

    def __repr__(self) -> str:
        return (
            f"<OrderBook {self._symbol} synced={self._synced} "
            f"last_update_id={self._last_update_id} best_bid={self.best_bid} "
            f"best_ask={self.best_ask}>"
        )

    # --- the socket's side ---------------------------------------------------------------------

    def _keep_levels(self, now: float) -> None:
        """Read first while synced, the book waits for the next snapshot (asked for after
        RESUBSCRIBE_EVERY without one); the wait reports neither a gap nor a resync."""
        if self._unread_until is not None:
            # Read within the grace: every message so far was applied, the levels are whole.
            self._unread_until = None
            return
        if self._levels_kept:
            return
        self._levels_kept = True
        if self._synced:
            self._synced = False
            self._waiting_since = now

    def _apply(self, d: DepthUpdate, now: float) -> tuple[BookGap | BookResynced | None, bool]:
        """Apply one depth message; returns the event to report and whether to resubscribe."""
        if self._unread_until is not None and now >= self._unread_until:
            self._unread_until = None
            self._levels_kept = False
            self._bids.replace([])
            self._asks.replace([])
        if d.message_type == "s":
            if self._levels_kept:
                self._bids.replace(d.bids)
                self._asks.replace(d.asks)
            self._last_update_id = d.final_update_id
            self._event_time = d.event_time
            self._wanted = False
            event = None
            if not self._synced and self._lost_at is not None:
                event = BookResynced(self._symbol, max(0.0, now - self._lost_at))
                self._lost_at = None
            self._synced = True
            return event, False
        if not self._synced:
            # The snapshot that would sync us may have been lost too: ask again when overdue.
            overdue = now - self._waiting_since >= RESUBSCRIBE_EVERY
            return None, (self._wanted or overdue) and self._request_resubscribe(now)
        if d.prev_final_update_id != self._last_update_id:
            expected = self._last_update_id
            self._lose_sync(now)
            gap = BookGap(self._symbol, expected, d.prev_final_update_id)
            return gap, self._request_resubscribe(now)
        if self._levels_kept:
            self._bids.update(d.bids)
            self._asks.update(d.asks)
        self._last_update_id = d.final_update_id
        self._event_time = d.event_time
        return None, False

    def _lose_sync(self, now: float) -> None:
        if self._synced:
            self._synced = False
            self._lost_at = now
        self._waiting_since = now

    def _request_resubscribe(self, now: float) -> bool:
        last = self._last_resubscribe
        if last is None or now - last >= RESUBSCRIBE_EVERY:
            self._last_resubscribe = now
            self._waiting_since = now
            self._wanted = False
            return True
        self._wanted = True
        return False

    def _connection_lost(self, now: float) -> None:
        self._lose_sync(now)
        self._wanted = False
        self._last_resubscribe = None


class Books:
    """The books of one socket, by symbol, each with its depth topics (normally one: messages do
    not say which topic they belong to, so two depth topics of one symbol feed one book)."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[str, tuple[OrderBook, list[str]]] = {}

    def __bool__(self) -> bool:
        return bool(self._entries)

    def book(self, symbol: str, now: float) -> OrderBook | None:
        """The book of `symbol`, for reading: its levels are kept from this call on."""
        entry = self._entries.get(symbol)
        if entry is None:
            return None
        entry[0]._keep_levels(now)
        return entry[0]

    def topics_added(self, topics: list[str], now: float) -> None:
        for topic in topics:
            symbol = depth_symbol(topic)
            if symbol is None:
                continue
            entry = self._entries.get(symbol)
            if entry is None:
                entry = self._entries[symbol] = (OrderBook(symbol, now), [])
            if topic not in entry[1]:
                entry[1].append(topic)

    def topics_removed(self, topics: list[str], now: float) -> None:
        for topic in topics:
            symbol = depth_symbol(topic)
            entry = None if symbol is None else self._entries.get(symbol)
            if entry is None or topic not in entry[1]:
                continue
            entry[1].remove(topic)
            if not entry[1]:
                entry[0]._connection_lost(now)
                del self._entries[symbol]  # type: ignore[arg-type]

    def connection_lost(self, now: float) -> None:
        for book, _ in self._entries.values():
            book._connection_lost(now)

    def apply(
        self, message: DepthUpdate, now: float
    ) -> tuple[BookGap | BookResynced | None, list[str]]:
        """Apply a depth message to its symbol's book, if there is one; returns the event to
        report and the topics to resubscribe."""
        entry = self._entries.get(message.symbol)
        if entry is None:
            return None, []
        event, resubscribe = entry[0]._apply(message, now)
        return event, list(entry[1]) if resubscribe else []


class _BookFeeder:
    """A test hook with the API of the native `_core._BookFeeder`: the book logic without a
    socket, fed frame by frame with the time in seconds."""

    def __init__(self) -> None:
        self.books = Books()

    def subscribe(self, topics: list[str], now: float) -> None:
        self.books.topics_added(topics, now)

    def unsubscribe(self, topics: list[str], now: float) -> None:
        self.books.topics_removed(topics, now)

    def connection_lost(self, now: float) -> None:
        self.books.connection_lost(now)

    def feed(self, frame: str, now: float) -> tuple[BookGap | BookResynced | None, list[str]]:
        message = parse_message(frame)
        if not isinstance(message, DepthUpdate):
            return None, []
        return self.books.apply(message, now)

    def book(self, symbol: str, now: float = 0.0) -> OrderBook | None:
        return self.books.book(symbol, now)
