"""Lifecycle events and counters shared by both backends."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Disconnected", "Reconnected", "Reconnecting", "Stats"]


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """The connection was lost; a reconnect is under way and subscriptions will be replayed."""

    reason: str


@dataclass(frozen=True, slots=True)
class Reconnected:
    """A new connection is up and the subscription replay was sent.

    `attempts` is the number of connect attempts this outage took; `downtime` the seconds from
    the loss of the old connection to the replay on the new one.
    """

    attempts: int
    downtime: float


@dataclass(frozen=True, slots=True)
class Disconnected:
    """Permanent end of the socket (e.g. retries exhausted); the event stream ends after it."""

    reason: str


@dataclass(frozen=True, slots=True)
class Stats:
    """A snapshot of a socket's counters.

    messages_received: server messages parsed (also those then dropped);
    events_dropped: events dropped because the event queue was full;
    reconnects: successful reconnects; queued: events waiting in the queue now;
    keepalives_sent: keepalive PINGs sent (their pongs are neither delivered nor counted in
    messages_received).
    """

    messages_received: int
    events_dropped: int
    reconnects: int
    queued: int
    keepalives_sent: int = 0
