"""What the user sees while two connections are open during a make-before-break rotation: one
stream per topic, without a reconnect's gap and without the duplicates two subscriptions give.
The same algorithm as the native `src/managed/rotation.rs` (see its module doc).

Per topic with a sequence id (aggTrade `a`, depth `U`..`u`, bookTicker `u`) the old connection
delivers until the new one has caught up: the new one's messages are held back until one of them
continues what was delivered (`first <= last + 1`), then the new one delivers and the old one's
are dropped. A snapshot on the new connection is delivered at once. Order updates are delivered
once per (order, execution, status, time, trade). Other messages come from whichever connection
is primary; the old one's acks are always delivered.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from bullet_ws._policy import ROTATION_MAX_HELD
from bullet_ws.pure.messages import (
    AggTrade,
    BookTicker,
    DepthUpdate,
    ErrorMessage,
    OrderResult,
    OrderUpdate,
    SubscribeResult,
)

__all__ = ["Dedup"]


Item = tuple[Any, int]


class _Topic:
    __slots__ = ("held", "last", "on_new", "seen_old")

    def __init__(self) -> None:
        self.last: int | None = None
        self.on_new = False
        self.seen_old = False
        self.held: deque[tuple[int, int, Item]] = deque()


def _sequence(m: Any) -> tuple[tuple[int, str], int, int, bool] | None:
    cls = m.__class__
    if cls is AggTrade:
        return (0, m.symbol), m.agg_trade_id, m.agg_trade_id, False
    if cls is DepthUpdate:
        return (1, m.symbol), m.first_update_id, m.final_update_id, m.message_type == "s"
    if cls is BookTicker:
        # A bookTicker snapshot is one more state of the same sequence: no special case.
        return (2, m.symbol), m.update_id, m.update_id, False
    return None


class Dedup:
    __slots__ = ("nothing_replayed", "orders", "replay_acked", "switched", "topics")

    def __init__(self) -> None:
        self.topics: dict[tuple[int, str], _Topic] = {}
        self.orders: set[tuple[Any, ...]] = set()
        self.switched = False  # the new connection is primary
        self.replay_acked = False
        self.nothing_replayed = False

    def admit(self, item: Item, from_new: bool, out: list[Item]) -> None:
        message = item[0]
        seq = _sequence(message)
        if seq is not None:
            key, first, last, snapshot = seq
            topic = self.topics.get(key)
            if topic is None:
                topic = self.topics[key] = _Topic()
            # Once switched, the new connection alone delivers: it carries every subscription
            # (replayed, or mirrored since), the old one may not (subscribed while it drains).
            if from_new:
                self._from_new(topic, first, last, snapshot, item, out)
            elif not self.switched:
                self._from_old(topic, last, item, out)
            return
        cls = message.__class__
        if cls is OrderUpdate:
            order_key = (
                message.order_id,
                message.execution_type,
                message.status,
                message.trade_time,
                message.trade_id,
            )
            if order_key not in self.orders:
                self.orders.add(order_key)
                out.append(item)
        elif not from_new and (cls is OrderResult or cls is ErrorMessage):
            out.append(item)  # the old connection's orders are settled on it
        elif from_new == self.switched:
            out.append(item)
        elif from_new and (cls is SubscribeResult or cls is ErrorMessage):
            self.replay_acked = True

    def _from_old(self, topic: _Topic, last: int, item: Item, out: list[Item]) -> None:
        topic.seen_old = True
        if topic.on_new or (topic.last is not None and last <= topic.last):
            return
        out.append(item)
        topic.last = last
        held = topic.held
        while held and held[0][1] <= last:
            held.popleft()
        if held and held[0][0] <= last + 1:
            self._release(topic, out)

    def _from_new(
        self, topic: _Topic, first: int, last: int, snapshot: bool, item: Item, out: list[Item]
    ) -> None:
        # A depth snapshot replaces the book: delivered unless older than what was delivered.
        if snapshot and (topic.last is None or last > topic.last):
            topic.held.clear()
            topic.on_new = True
        elif topic.last is not None:
            if last == topic.last:
                # Level with what was delivered: the new stream has caught up (read after the
                # old one in a fixed order, it may never pass it), so it takes over from here.
                topic.held.clear()
                topic.on_new = True
                return
            if last < topic.last:
                return
            # Switched: nothing else will continue it (a gap only where the old one lagged, as
            # at the switch).
            if topic.on_new or first <= topic.last + 1 or self.switched:
                topic.on_new = True
            else:
                self._hold(topic, first, last, item)
                return
        elif self.switched:
            topic.on_new = True
        elif not topic.on_new:
            self._hold(topic, first, last, item)
            return
        out.append(item)
        topic.last = last

    @staticmethod
    def _hold(topic: _Topic, first: int, last: int, item: Item) -> None:
        if len(topic.held) >= ROTATION_MAX_HELD:
            topic.held.popleft()
        topic.held.append((first, last, item))

    @staticmethod
    def _release(topic: _Topic, out: list[Item]) -> None:
        for _, last, item in topic.held:
            if topic.last is None or last > topic.last:
                out.append(item)
                topic.last = last
        topic.held.clear()
        topic.on_new = True

    def caught_up(self) -> bool:
        """Every topic seen on either connection since the rotation began continues on the new
        one, and at least one was seen (quiet subscriptions switch at the catch-up deadline);
        with nothing replayed, at once."""
        return self.replay_acked and (
            self.nothing_replayed
            or (bool(self.topics) and all(t.on_new for t in self.topics.values()))
        )

    def force_switch(self, out: list[Item]) -> None:
        """The old connection is leaving: what the new one holds is delivered."""
        for topic in self.topics.values():
            if not topic.on_new:
                self._release(topic, out)
        self.switched = True
