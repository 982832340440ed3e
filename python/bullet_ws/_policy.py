"""What the managed socket decides, without doing any I/O: the reconnect backoff, the topic set and
its replay frame, the fixed constants, and the texts of the reasons it reports.

The pure backend (`bullet_ws.pure`) takes these from here instead of keeping its own copies; the
native core (src/backoff.rs, src/managed.rs, src/config.rs) holds the same rules in Rust. The two
are held together by tests: tests/test_shared_constants.py (every constant equals the one `_core`
exports), tests/test_policy.py (the backoff against the native core's, the reason texts) and
tests/test_reasons.py (the same event gives the same text on both backends).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Iterator

__all__ = [
    "BOOK_UNREAD_GRACE",
    "CLOSE_GRACE",
    "COMMAND_QUEUE_CAPACITY",
    "DROP_WARNING_INTERVAL",
    "HANDLER_RAISED",
    "HANDLER_SET",
    "HANDLER_WHILE_WAITING",
    "KEEPALIVE_ID_BASE",
    "LATENCY_WINDOW",
    "MAX_OUTSTANDING_KEEPALIVES",
    "MIN_BACKOFF",
    "NOT_SENT_STOPPED",
    "RESUBSCRIBE_EVERY",
    "ROTATION_CATCH_UP",
    "ROTATION_DRAIN",
    "ROTATION_MAX_HELD",
    "ROTATION_MIN_RETRY",
    "SOCKET_STOPPED_BEFORE_ACK",
    "SOCKET_STOPPED_WHILE_WRITING",
    "STOP_GRACE",
    "STREAM_ENDED",
    "Backoff",
    "TopicSet",
    "connect_timeout",
    "exhausted",
    "idle_timeout",
    "json_string_size",
    "lost_before_ack",
    "lost_before_connected",
    "lost_while_writing",
    "not_sent",
    "not_sent_while_stopping",
    "reconnect_attempt_failed",
    "replay_lost",
    "replay_too_large",
    "retry_failed",
    "rotated_away",
    "send_failed",
    "send_stalled",
    "too_large",
    "too_old",
    "topics_frame_size",
    "wrong_first",
]

# --- constants (each equals the native core's; tests/test_shared_constants.py) -------------------

#: Floor of both backoff bounds: a zero backoff would double to zero forever and spin (the SDK's
#: 10 ms).
MIN_BACKOFF = 0.010
#: Commands are low-rate; more than this queued means the task is stuck, so callers get BusyError.
COMMAND_QUEUE_CAPACITY = 256
#: How long a stopping socket keeps writing the commands queued before stop() (docs/API.md,
#: "flush on close").
STOP_GRACE = 1.0
#: How long a stop or a reconnect waits for the server's close reply before dropping the
#: connection: a polite close must not delay anything.
CLOSE_GRACE = 0.25
#: Keepalive pings take their ids from the top 2**32 ids of u64, which the commands refuse
#: (`_validate.id_arg`): a keepalive's pong can then be swallowed without hiding a user's.
KEEPALIVE_ID_BASE = 2**64 - 2**32
#: Keepalive ids awaiting their pong; a server that never answers must not grow the set.
MAX_OUTSTANDING_KEEPALIVES = 16
#: A slow consumer makes event drops continuous: one warning per this many seconds.
DROP_WARNING_INTERVAL = 1.0
#: An order book out of sync asks for a fresh snapshot at most this often.
RESUBSCRIBE_EVERY = 1.0
#: A new order book keeps its levels until its first read, or until its first depth message this
#: long after its subscribe, so that `ws.book()` right after `subscribe()` misses nothing even
#: when the first snapshot came first; a book unread by then keeps only its sequence.
BOOK_UNREAD_GRACE = 5.0
#: A rotation's new connection may take this long to catch up with the old one before the switch
#: is made anyway; the old one is then read this long for the acks of its orders.
ROTATION_CATCH_UP = 5.0
ROTATION_DRAIN = 5.0
#: The least wait before a failed rotation is tried again (the wait is max(max_backoff, this)).
ROTATION_MIN_RETRY = 1.0
#: Messages held per topic while a rotation's new connection catches up; beyond it the oldest
#: are dropped (a gap).
ROTATION_MAX_HELD = 65_536
#: Seconds `Stats.exchange_delay` and `delivery_delay` cover (two half-window histograms).
LATENCY_WINDOW = 10.0


# --- the reconnect backoff (src/backoff.rs) ------------------------------------------------------


def _whole_ms(seconds: float) -> int:
    # Rust's Duration::as_millis truncates an exact nanosecond count; rounding to nanoseconds first
    # keeps 0.29 s (0.28999999... as a float) at 290 ms, as the native core sees it.
    return round(seconds * 1e9) // 1_000_000


class Backoff:
    """Exponential backoff with jitter that persists across outages.

    The SDK's rules: floor MIN_BACKOFF, doubling after each failed attempt up to the cap, a uniform
    jitter of 0..=50 % of the base (in whole milliseconds) on every sleep, and a reset to the
    initial value only after a connection stayed up `reset_after`. Beyond the SDK, a reconnected
    connection that dies sooner counts as a failure and doubles the backoff, so an
    accept-then-drop server gets exponential relief instead of a constant hammering.
    """

    __slots__ = ("current", "initial", "maximum", "reset_after")

    def __init__(self, initial: float, maximum: float, reset_after: float) -> None:
        self.initial = max(initial, MIN_BACKOFF)
        self.maximum = max(maximum, MIN_BACKOFF)
        self.reset_after = reset_after
        #: The base delay of the next attempt, before jitter.
        self.current = self.initial

    def delay(self, randint: Callable[[int, int], int] = random.randint) -> float:
        """The next sleep: the base plus 0..=50 % of it in whole milliseconds, drawn by
        `randint(0, half_ms)` (inclusive bounds, like `random.randint`)."""
        return self.current + randint(0, _whole_ms(self.current) // 2) / 1000

    def failed(self) -> None:
        """A connect attempt failed (or the replay lost the new connection)."""
        self.current = min(self.current * 2, self.maximum)

    def connection_lost(self, uptime: float, reconnected: bool) -> None:
        """A connection ended after `uptime` seconds; `reconnected`: the backoff opened it."""
        if uptime >= self.reset_after:
            self.current = self.initial
        elif reconnected:
            self.failed()


# --- the topic set and its frames ----------------------------------------------------------------

# PROTOCOL.md §2: compact JSON, non-ASCII kept as UTF-8 (serde_json's output).
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def json_string_size(text: str) -> int:
    """UTF-8 bytes of `text` as a JSON string in a client frame (quotes and escapes included)."""
    encoded = _encode(text)
    return len(encoded) if encoded.isascii() else len(encoded.encode())


def topics_frame_size(method: str, id: int | None, count: int, encoded: int) -> int:
    """The exact size of a `{"method":..,"id":..,"params":[topics]}` frame for `count` topics whose
    `json_string_size`s sum to `encoded`: sizes are checked without building the frame."""
    id_size = 4 if id is None else len(str(id))
    return (
        len('{"method":"')
        + len(method)
        + len('","id":')
        + id_size
        + len(',"params":[')
        + encoded
        + max(count - 1, 0)
        + len("]}")
    )


class TopicSet:
    """Topics in subscription order, for `topics` and for the replay. A subscribe sends only the
    topics not in the set, an unsubscribe only those in it (the SDK's dedup)."""

    __slots__ = ("encoded", "members")

    def __init__(self) -> None:
        # A dict used as an ordered set.
        self.members: dict[str, None] = {}
        #: The members' summed json_string_size: the replay frame's size without building it.
        self.encoded = 0

    def insert_new(self, topics: Iterable[str]) -> list[str]:
        """Add `topics`; the ones that were not members yet, in order, each once."""
        members = self.members
        new = []
        for topic in topics:
            if topic not in members:
                members[topic] = None
                new.append(topic)
        self.encoded += sum(map(json_string_size, new))
        return new

    def remove_present(self, topics: Iterable[str]) -> list[str]:
        """Remove `topics`; the ones that were members, in order, each once."""
        members = self.members
        gone = [t for t in topics if members.pop(t, 0) is None]
        self.encoded -= sum(map(json_string_size, gone))
        return gone

    def replay_frame_size(self) -> int:
        """The size of the replay: ONE `SUBSCRIBE` of every member, id null."""
        return topics_frame_size("SUBSCRIBE", None, len(self.members), self.encoded)

    def copy(self) -> TopicSet:
        other = TopicSet()
        other.members = dict(self.members)
        other.encoded = self.encoded
        return other

    def __contains__(self, topic: object) -> bool:
        return topic in self.members

    def __iter__(self) -> Iterator[str]:
        return iter(self.members)

    def __len__(self) -> int:
        return len(self.members)


# --- reason texts (`Reconnecting.reason`, `Disconnected.reason`, `OrderUnacked.reason`) ----------
# The native core formats the same words (src/managed.rs); tests/test_policy.py and
# tests/test_reasons.py compare whole strings.

STREAM_ENDED = "stream ended without a close frame"
SOCKET_STOPPED_BEFORE_ACK = "socket stopped before the ack"
SOCKET_STOPPED_WHILE_WRITING = "socket stopped while writing"
NOT_SENT_STOPPED = "not sent: the socket stopped"


# --- set_handler: the errors it brings, and the message its handler's exceptions are reported
# with (`loop.call_exception_handler`). Both backends raise these texts.

HANDLER_SET = (
    "events go to the handler given to set_handler(); "
    "call set_handler(None) before recv(), recv_batch() or async for"
)
HANDLER_WHILE_WAITING = (
    "set_handler() while a recv(), recv_batch() or async for is waiting for an event: "
    "the events would go to both"
)
HANDLER_RAISED = "bullet_ws: the event handler raised"


def _seconds(value: float) -> str:
    # Rust's `{:?}` of a whole-second Duration: "5s", not "5.0s".
    return f"{value:g}s"


def idle_timeout(idle: float) -> str:
    """A connection that sent nothing for `idle_timeout` seconds is presumed dead."""
    return f"no message within idle_timeout ({idle:.3f}s)"


def connect_timeout(bound: float) -> str:
    """Why a connect failed when the upgrade and the `connected` status took too long."""
    return f"no `connected` status within connection_timeout ({bound:.3f}s)"


def lost_before_connected(reason: str) -> str:
    """Why a connect failed when the connection ended before the `connected` status."""
    return f"connection lost before the `connected` status: {reason}"


def wrong_first(name: str) -> str:
    """Why a connect failed when the first message (of class `name`) was not the status."""
    return f"first message was not status/connected: got {name}"


def send_stalled(idle: float) -> str:
    """A send the peer did not take for `idle_timeout` seconds."""
    return f"send stalled for idle_timeout ({idle:.3f}s)"


def send_failed(method: str, error: str) -> str:
    """The connection loss that a failed send of `method` (e.g. "SUBMIT") revealed."""
    return f"{method} send failed: {error}"


def reconnect_attempt_failed(attempt: int, error: str) -> str:
    """`Reconnecting.reason` of the attempt after a failed one: `attempt` is the failed one."""
    return f"reconnect attempt {attempt} failed: {error}"


def replay_lost(error: str) -> str:
    """Why an attempt failed when its connection opened but the replay could not be written."""
    return f"the subscription replay lost the new connection: {error}"


def exhausted(max_retries: int) -> str:
    """`Disconnected.reason` after `max_retries` failed attempts in one outage."""
    return f"exhausted {max_retries} reconnect attempts"


def replay_too_large(size: int, limit: int) -> str:
    """`Disconnected.reason` when the replay frame cannot be sent (kept unreachable by the check
    at `subscribe`, which refuses a topic set whose replay would be too large)."""
    return (
        f"subscription replay failed: the replay frame of {size} bytes exceeds max_message_size"
        f" ({limit})"
    )


def too_large(argument: str, frame: str, size: int, limit: int) -> str:
    """The ValueError of a command whose frame (or the replay it would make) is too large."""
    return f"{argument}: the {frame} frame would be {size} bytes, over max_message_size ({limit})"


def lost_before_ack(reason: str) -> str:
    """`OrderUnacked.reason` of an order written on a connection that ended before its ack."""
    return f"connection lost before the ack: {reason}"


def lost_while_writing(error: str) -> str:
    """`OrderUnacked.reason` of an order whose write failed after some of its bytes left."""
    return f"connection lost while writing: {error}"


def retry_failed(error: str) -> str:
    """`OrderUnacked.reason` of an order whose one resend after a reconnect failed too."""
    return f"retry after reconnect failed: {error}"


def not_sent(reason: str) -> str:
    """`OrderUnacked.reason` of an order never written because the socket ended for `reason`."""
    return f"not sent: {reason}"


def not_sent_while_stopping(reason: str) -> str:
    """`OrderUnacked.reason` of an order whose write failed (`reason`) during the stop's flush."""
    return f"not sent: {reason} while stopping"


def too_old(waited: float, max_age: float) -> str:
    """`OrderUnacked.reason` of an order that waited out an outage longer than order_max_age."""
    return f"not sent: waited {waited:.3f}s, longer than order_max_age ({max_age:.3f}s)"


def rotated_away() -> str:
    """`OrderUnacked.reason` of an order whose ack the old connection of a rotation did not bring
    within ROTATION_DRAIN."""
    drain = _seconds(ROTATION_DRAIN)
    return f"connection closed before the ack: rotated away, no ack within {drain}"
