"""`ManagedWsConfig`: the validated, frozen settings of a managed socket (both backends)."""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_DURATION", "MAX_SIZE", "ManagedWsConfig"]

# Bounds every backend can honour (checked against the native core's constants by a test): the
# native task adds durations to tokio Instants, and 1e9 s (about 31 years, 1.5e9 s with backoff
# jitter) keeps that arithmetic far from overflow while still meaning "never" to a user.
MAX_DURATION = 1e9
# The largest channel_capacity, max_message_size and queue_max_bytes: 1 TiB, beyond any real use.
MAX_SIZE = 2**40

# A keepalive only helps below the server's 60 s; the cap keeps the native timer arithmetic far
# from overflow, and is the same for both backends since both validate here.
_MAX_KEEPALIVE = 86_400.0
# Longer than a burst takes to parse is only CPU burnt.
_MAX_INBOUND_SPIN = 0.01


def _number(name: str, value: object) -> float:
    # bool is an int subclass; a True duration is always a bug.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if result > MAX_DURATION:
        raise ValueError(f"{name} must be in 0..{MAX_DURATION:.0f} seconds, got {value!r}")
    return result


def _integer(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return int(value)


def _size(name: str, value: object, minimum: int) -> int:
    result = _integer(name, value)
    if not minimum <= result <= MAX_SIZE:
        raise ValueError(f"{name} must be in {minimum}..2**40, got {value!r}")
    return result


@dataclass(frozen=True, slots=True)
class ManagedWsConfig:
    """Settings of a managed socket. Durations are float seconds; defaults are the SDK's.

    Validated on construction: a wrong type raises TypeError, a bad value ValueError, and the
    message starts with the field name. `bool` is never accepted as a number. Durations are at
    most `MAX_DURATION` (1e9 s); sizes at most `MAX_SIZE` (2**40).

    `keepalive_interval`: when the client has sent nothing for this long, the socket sends a
    keepalive PING (the live server closes a connection after 60 s without a client message);
    0 disables; at most 86400.

    `max_connection_age`: a connection this old is replaced by a make-before-break rotation
    (`Rotated`) before the server's 24 h cut; 0 disables. A `disconnecting` status from the
    server starts a rotation too, whatever this is.

    `order_max_age`: an order that waited longer than this before it could be written (through
    an outage) is not sent; it becomes `OrderUnacked("not sent: ...")`. None sends it however
    late.

    `direct_write` (native backend): an order, `submit`, `ping` or `list_subscriptions` is
    written on the calling thread, TLS included, when the connection is up and nothing is queued
    ahead of it, instead of being handed to the socket's thread (one thread wake-up less on the
    way out; `Stats.direct_writes` counts them). Otherwise, or when the write fails before any
    byte left, it is queued as before. Order, the retry-once rule and the order ledger are the
    same either way. The pure backend, which writes from the event loop's thread anyway,
    accepts and ignores it.

    `inbound_spin` (native backend, Linux): when bytes arrive on the socket while the consumer
    sleeps, the event loop wakes at once, in parallel with the socket's thread, and waits up to
    this long (seconds, off the GIL) for the parsed burst, instead of waking only when that
    thread has parsed it: one thread wake-up in series instead of two. 0 disables; at most 0.01.
    The pure backend ignores it.

    `loop_reads` (native backend, Linux; default True): the event loop's thread reads and
    parses the socket itself when bytes arrive, instead of being woken by the socket's thread
    once that thread has parsed them: one thread wake-up per tick instead of two. The socket's
    thread keeps the timers, keepalives, reconnects and rotations; it takes the reads back for
    a flood (a read that finds more than 256 frames or 64 KiB: it then parses in parallel),
    during a rotation, and whenever the loop leaves bytes unread for 50-100 ms (a blocked
    loop), so pings are still answered. The loop claims them again when its consumer next
    waits. Events, their order and every guarantee are the same either way; False keeps every
    read on the socket's thread. The pure backend, which reads on the loop's thread anyway,
    accepts and ignores it.

    The event queue holds at most `channel_capacity` events and `queue_max_bytes` bytes of
    frames (their wire size); a new event that does not fit is dropped and counted. An empty
    queue always takes the next event, so a frame larger than `queue_max_bytes` still arrives.
    """

    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    max_retries: int | None = None
    channel_capacity: int = 10_000
    queue_max_bytes: int = 64 * 1024 * 1024
    connection_timeout: float = 10.0
    idle_timeout: float = 60.0
    keepalive_interval: float = 20.0
    backoff_reset_after: float = 30.0
    max_message_size: int = 4 * 1024 * 1024
    ca_file: str | os.PathLike[str] | None = None
    order_max_age: float | None = None
    max_connection_age: float = 84_600.0
    direct_write: bool = True
    inbound_spin: float = 0.0
    loop_reads: bool = True

    def __post_init__(self) -> None:
        set_field = object.__setattr__
        for name in (
            "initial_backoff",
            "max_backoff",
            "idle_timeout",
            "backoff_reset_after",
            "max_connection_age",
        ):
            value = _number(name, getattr(self, name))
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
            set_field(self, name, value)
        keepalive = _number("keepalive_interval", self.keepalive_interval)
        if not 0 <= keepalive <= _MAX_KEEPALIVE:
            raise ValueError(
                f"keepalive_interval must be in 0..{_MAX_KEEPALIVE:g} (0 disables), "
                f"got {self.keepalive_interval!r}"
            )
        set_field(self, "keepalive_interval", keepalive)
        timeout = _number("connection_timeout", self.connection_timeout)
        if timeout <= 0:
            raise ValueError(f"connection_timeout must be > 0, got {self.connection_timeout!r}")
        set_field(self, "connection_timeout", timeout)
        if self.order_max_age is not None:
            age = _number("order_max_age", self.order_max_age)
            if age <= 0:
                raise ValueError(f"order_max_age must be > 0 or None, got {self.order_max_age!r}")
            set_field(self, "order_max_age", age)
        if self.max_retries is not None and _integer("max_retries", self.max_retries) < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries!r}")
        spin = _number("inbound_spin", self.inbound_spin)
        if not 0 <= spin <= _MAX_INBOUND_SPIN:
            raise ValueError(
                f"inbound_spin must be in 0..{_MAX_INBOUND_SPIN:g} (0 disables), "
                f"got {self.inbound_spin!r}"
            )
        set_field(self, "inbound_spin", spin)
        for flag in ("direct_write", "loop_reads"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{flag} must be a bool, got {type(getattr(self, flag)).__name__}")
        _size("channel_capacity", self.channel_capacity, 1)
        _size("queue_max_bytes", self.queue_max_bytes, 1024)
        _size("max_message_size", self.max_message_size, 1024)
        if self.ca_file is not None:
            if not isinstance(self.ca_file, (str, os.PathLike)):
                raise TypeError(
                    f"ca_file must be a str, os.PathLike or None, got {type(self.ca_file).__name__}"
                )
            # Stored as str so that both backends (and equality) see one representation.
            path = os.fspath(self.ca_file)
            if not isinstance(path, str):
                raise TypeError("ca_file must be a text path, got a bytes path")
            if not path:
                raise ValueError("ca_file must not be empty")
            set_field(self, "ca_file", path)

    def with_overrides(self, **overrides: Any) -> ManagedWsConfig:
        """Return a validated copy with `overrides` applied; an unknown key raises TypeError."""
        if not overrides:
            return self
        fields = {f.name for f in dataclasses.fields(self)}
        for key in overrides:
            if key not in fields:
                raise TypeError(f"{key} is not a ManagedWsConfig field")
        return dataclasses.replace(self, **overrides)
