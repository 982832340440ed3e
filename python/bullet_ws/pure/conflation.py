"""Which topics are conflated (`subscribe(..., conflate=True)`), keyed the way messages are met:
by message class and symbol, each with the queue position of its newest undelivered message.

The native core keeps the same table (src/bridge.rs `Conflation`).
"""

from __future__ import annotations

from bullet_ws.pure.messages import BookTicker, DepthUpdate, MarkPrice

__all__ = ["Conflation"]

_KINDS: dict[str, type] = {
    "bookTicker": BookTicker,
    "markPrice": MarkPrice,
    "depth5": DepthUpdate,
    "depth10": DepthUpdate,
    "depth20": DepthUpdate,
}


def _key(topic: str) -> tuple[type, str] | None:
    symbol, _, stream = topic.partition("@")
    kind = _KINDS.get(stream)
    if kind is None or not symbol or symbol.startswith("!"):
        return None
    return kind, symbol


class Conflation:
    """`slots[cls][symbol]` is the sequence number (see `_Session.base`) of the newest queued
    message of that class and symbol, or None; an entry exists exactly while one of its topics
    is conflated, so the hot path only looks up."""

    __slots__ = ("slots", "topics")

    def __init__(self) -> None:
        self.topics: set[str] = set()
        self.slots: dict[type, dict[str, int | None]] = {}

    def set(self, topics: list[str], on: bool) -> None:
        for topic in topics:
            if _key(topic) is not None:
                if on:
                    self.topics.add(topic)
                else:
                    self.topics.discard(topic)
        wanted: dict[type, set[str]] = {}
        for key in map(_key, self.topics):
            if key is not None:  # always: only conflatable topics are kept
                wanted.setdefault(key[0], set()).add(key[1])
        self.slots = {
            kind: {s: self.slots.get(kind, {}).get(s) for s in symbols}
            for kind, symbols in wanted.items()
        }
