"""Lifecycle events and counters shared by both backends."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BookGap",
    "BookResynced",
    "Disconnected",
    "LatencySummary",
    "OrderUnacked",
    "Reconnected",
    "Reconnecting",
    "Rotated",
    "Stats",
]


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """A reconnect attempt is about to be made; subscriptions will be replayed once it succeeds.

    One per attempt, queued before its wait: `attempt` is the 1-based number of the attempt
    (1 right after the connection was lost), `delay` the seconds the socket now waits before
    making it (the backoff plus its jitter). `reason` is why: the connection loss for attempt 1
    (e.g. "closed by server (1001): going away"), the previous attempt's failure for the next ones
    ("reconnect attempt 1 failed: ...").
    """

    reason: str
    attempt: int = 1
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Reconnected:
    """A new connection is up and the subscription replay was sent.

    `attempts` is the number of connect attempts this outage took; `downtime` the seconds from
    the loss of the old connection to the replay on the new one.
    """

    attempts: int
    downtime: float


@dataclass(frozen=True, slots=True)
class Rotated:
    """The socket moved to a fresh connection without an outage (make-before-break): the new
    connection was opened and replayed while the old one still delivered, and per-topic
    sequence ids (aggTrade `a`, depth and bookTicker `u`, order updates) were deduplicated
    across the switch, so those streams have no gap and no duplicate.

    `reason` is the server's `disconnecting` reason (e.g. "max_duration") or
    "max_connection_age"; `overlap` the seconds both connections were read.
    """

    reason: str
    overlap: float


@dataclass(frozen=True, slots=True)
class Disconnected:
    """Permanent end of the socket (e.g. retries exhausted); the event stream ends after it."""

    reason: str


@dataclass(frozen=True, slots=True)
class OrderUnacked:
    """An order (or submit) whose outcome this socket cannot tell you: reconcile it (query the
    order, or the account) instead of guessing, and never resend it blindly.

    `id` and `method` are the order's (`method` as in `OrderResult`: "submit", "place",
    "cancel", "amend", "cancel_all"). `reason` says which case it is:
    - "connection lost before the ack: ..." / "connection lost while writing: ...": written
      (in full or in part), then the connection ended: the exchange may or may not have it;
    - "socket stopped before the ack": written before `close()`, ack not seen;
    - "not sent: ...": never written (the socket stopped, retries ran out, or it waited longer
      than `order_max_age`).
    """

    id: int | None
    method: str
    reason: str


@dataclass(frozen=True, slots=True)
class BookGap:
    """The order book of `symbol` missed an update: a diff's `pu` (`got`) was not the book's last
    `u` (`expected`). The book is no longer synced (`ws.book(symbol).is_synced` is False) and the
    socket resubscribes its depth topic for a fresh snapshot; `BookResynced` follows."""

    symbol: str
    expected: int
    got: int


@dataclass(frozen=True, slots=True)
class BookResynced:
    """The order book of `symbol`, out of sync since a gap or a reconnect, got its snapshot and is
    synced again; `downtime` is the seconds it was out of sync. Reported whether or not the book
    has been read; one first read after it (`ws.book`) waits for the next snapshot for its levels
    (docs/API.md, "Order book")."""

    symbol: str
    downtime: float


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Latency over about the last `LATENCY_WINDOW` (10 s), in seconds: the median, the 99th
    percentile and the maximum of `count` samples.

    Values are the upper bounds of log-linear histogram buckets (exact below 32 µs, then within
    1/32, about 3 %, up to 100 s), the same buckets on both backends.
    """

    p50: float
    p99: float
    max: float
    count: int


@dataclass(frozen=True, slots=True)
class Stats:
    """A snapshot of a socket's counters.

    messages_received: server messages parsed (also those then dropped or conflated);
    events_dropped: events dropped because the event queue was full;
    reconnects: successful reconnects; queued: events waiting in the queue now;
    keepalives_sent: keepalive PINGs sent (their pongs are neither delivered nor counted in
    messages_received); rotations: make-before-break rotations completed (`Rotated`);
    events_conflated: messages of conflated topics (`subscribe(..., conflate=True)`) replaced
    by a newer message of their topic before the consumer took them;
    exchange_delay: local receive time (wall clock) minus each message's `E`, over about the
    last 10 s (messages without `E` are not counted; a negative value, from clock skew, counts
    as 0); delivery_delay: from the frame's read to its hand-over by `recv()` / `recv_batch()` /
    `async for`, over about the last 10 s. Both are None when the window holds no sample;
    direct_writes: frames written on the calling thread (`ManagedWsConfig.direct_write`; always
    0 on the pure backend); loop_reads: messages read and parsed on the event loop's thread
    (`ManagedWsConfig.loop_reads`; always 0 on the pure backend).
    """

    messages_received: int
    events_dropped: int
    reconnects: int
    queued: int
    keepalives_sent: int = 0
    rotations: int = 0
    events_conflated: int = 0
    exchange_delay: LatencySummary | None = None
    delivery_delay: LatencySummary | None = None
    direct_writes: int = 0
    loop_reads: int = 0
