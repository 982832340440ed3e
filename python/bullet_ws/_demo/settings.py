"""The demo's symbols, topics and test-friendly settings."""

from __future__ import annotations

from bullet_ws.topics import OrderbookDepth, Topic

SYMBOLS: tuple[str, ...] = ("BTC-USD", "ETH-USD")


#: Market-data messages per second the mock sends on each connection.
RATE = 2000.0


#: Test-friendly settings: fast reconnects, quick zombie detection, quick backoff reset.
DEMO_CONFIG: dict[str, float] = {
    "initial_backoff": 0.05,
    "max_backoff": 2.0,
    "idle_timeout": 0.5,
    "backoff_reset_after": 1.0,
    "connection_timeout": 2.0,
}


#: Connections dropped right after ``connected`` in the accept-then-drop storm.
STORM = 3


#: A fault not recovered from within this many seconds counts as a failure.
RECOVERY_TIMEOUT = 10.0


#: Quiet time after a recovery before the next fault: longer than ``backoff_reset_after``, so each
#: fault starts from the initial backoff.
SETTLE = DEMO_CONFIG["backoff_reset_after"] + 0.3


#: A fault is not started when fewer seconds than this remain.
MIN_FAULT_TIME = 1.0


def demo_topics() -> list[str]:
    """The demo's subscriptions: aggTrade, depth20 and bookTicker on each of `SYMBOLS`."""
    topics: list[str] = []
    for symbol in SYMBOLS:
        topics += [
            str(Topic.agg_trade(symbol)),
            str(Topic.depth(symbol, OrderbookDepth.D20)),
            str(Topic.book_ticker(symbol)),
        ]
    return topics
