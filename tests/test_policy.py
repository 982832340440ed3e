"""`bullet_ws._policy` on its own: the backoff (also against the native core's), the topic set and
its frame sizes, and the exact reason texts (also against the native core's source)."""

from __future__ import annotations

import json
import pathlib
import random
from types import ModuleType

import pytest
from bullet_ws import _policy
from bullet_ws._policy import Backoff, TopicSet

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"


def highest(low: int, high: int) -> int:
    return high


def lowest(low: int, high: int) -> int:
    return low


# --- backoff -------------------------------------------------------------------------------------


def test_backoff_doubles_to_the_cap_with_up_to_half_of_jitter() -> None:
    b = Backoff(0.1, 1.0, 30.0)
    bases, longest, shortest = [], [], []
    for _ in range(6):
        bases.append(b.current)
        longest.append(b.delay(highest))
        shortest.append(b.delay(lowest))
        b.failed()
    assert bases == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert longest == pytest.approx([0.15, 0.3, 0.6, 1.2, 1.5, 1.5], abs=1e-12)
    assert shortest == bases


def test_jitter_is_drawn_in_whole_milliseconds_from_zero_to_half() -> None:
    calls: list[tuple[int, int]] = []

    def record(low: int, high: int) -> int:
        calls.append((low, high))
        return 7

    b = Backoff(0.29, 10.0, 30.0)  # 0.29 is 0.28999... as a float: still 290 ms
    assert b.delay(record) == pytest.approx(0.297)
    b = Backoff(0.0155, 10.0, 30.0)  # 15.5 ms: half of 15 whole ms
    b.delay(record)
    assert calls == [(0, 145), (0, 7)]


def test_backoff_is_floored_at_ten_ms() -> None:
    b = Backoff(0.0, 0.0, 30.0)
    assert b.current == _policy.MIN_BACKOFF == 0.010
    b.failed()
    assert b.current == 0.010
    assert b.delay(highest) == pytest.approx(0.015)


def test_backoff_resets_only_after_stable_uptime() -> None:
    b = Backoff(0.1, 10.0, 30.0)
    b.failed()
    b.failed()
    assert b.current == 0.4
    b.connection_lost(29.0, reconnected=False)
    assert b.current == 0.4, "the first connection dying early keeps the backoff"
    b.connection_lost(29.0, reconnected=True)
    assert b.current == 0.8, "a reconnected connection dying early doubles it"
    b.connection_lost(30.0, reconnected=True)
    assert b.current == 0.1


def test_default_random_source_stays_within_the_bounds() -> None:
    b = Backoff(1.0, 30.0, 30.0)
    delays = [b.delay() for _ in range(2000)]
    assert all(1.0 <= d <= 1.5 for d in delays)
    assert min(delays) < 1.05 and max(delays) > 1.45


def _steps(seed: int) -> list[tuple[float, bool] | None]:
    rng = random.Random(seed)
    steps: list[tuple[float, bool] | None] = []
    for _ in range(40):
        if rng.random() < 0.6:
            steps.append(None)
        else:
            steps.append((rng.choice([0.0, 0.5, 2.9, 3.0, 10.0]), rng.random() < 0.5))
    return steps


@pytest.mark.parametrize(
    ("initial", "maximum", "reset_after"),
    [(1.0, 30.0, 30.0), (0.0, 0.0, 3.0), (0.02, 0.2, 3.0), (0.29, 7.3, 0.0), (0.0333, 1e3, 3.0)],
)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_backoff_sequence_equals_the_native_core(
    native: ModuleType, initial: float, maximum: float, reset_after: float, seed: int
) -> None:
    from bullet_ws import _core

    steps = _steps(seed)
    theirs = _core._backoff_trace(initial, maximum, reset_after, steps)
    b = Backoff(initial, maximum, reset_after)
    ours = [(b.current, b.delay(highest) - b.current)]
    for step in steps:
        if step is None:
            b.failed()
        else:
            b.connection_lost(*step)
        ours.append((b.current, b.delay(highest) - b.current))
    assert len(ours) == len(theirs)
    for k, ((base, jitter), (native_base, native_jitter)) in enumerate(zip(ours, theirs)):
        assert base == pytest.approx(native_base, abs=1e-9), (k, ours[: k + 1], theirs[: k + 1])
        assert jitter == pytest.approx(native_jitter, abs=1e-9), (k, ours[: k + 1])


# --- topic set -----------------------------------------------------------------------------------


def test_topic_set_sends_only_new_topics_and_removes_only_present_ones() -> None:
    s = TopicSet()
    assert s.insert_new(["a@x", "b@x", "a@x"]) == ["a@x", "b@x"]
    assert s.insert_new(["b@x", "c@x"]) == ["c@x"]
    assert s.insert_new(["c@x"]) == []
    assert s.remove_present(["z@x", "b@x", "b@x"]) == ["b@x"]
    assert s.remove_present(["z@x"]) == []
    assert list(s) == ["a@x", "c@x"] and len(s) == 2 and "a@x" in s and "b@x" not in s
    assert s.insert_new(["b@x"]) == ["b@x"]
    assert list(s) == ["a@x", "c@x", "b@x"], "a topic subscribed again goes last"


def test_topic_set_copy_is_independent() -> None:
    s = TopicSet()
    s.insert_new(["a@x"])
    other = s.copy()
    other.insert_new(["b@x"])
    assert list(s) == ["a@x"] and s.encoded == _policy.json_string_size("a@x")


@pytest.mark.parametrize(
    "topics", [[], ["BTC-USD@aggTrade"], ["é@x", 'q"uote@x', "tab\t@x", "😀@x", "\x01@x"]]
)
def test_replay_frame_size_is_the_size_of_the_frame(topics: list[str]) -> None:
    s = TopicSet()
    s.insert_new(topics)
    s.insert_new(["gone@x"])
    s.remove_present(["gone@x"])
    frame = json.dumps(
        {"method": "SUBSCRIBE", "id": None, "params": topics},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert s.replay_frame_size() == len(frame.encode())


@pytest.mark.parametrize("id", [None, 0, 7, 2**64 - 2**32 - 1])
def test_topics_frame_size(id: int | None) -> None:
    topics = ["a@x", "ü@y"]
    frame = json.dumps(
        {"method": "UNSUBSCRIBE", "id": id, "params": topics},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    encoded = sum(map(_policy.json_string_size, topics))
    assert _policy.topics_frame_size("UNSUBSCRIBE", id, 2, encoded) == len(frame.encode())


# --- reason texts --------------------------------------------------------------------------------

TEXTS = [
    (_policy.STREAM_ENDED, "stream ended without a close frame"),
    (_policy.SOCKET_STOPPED_BEFORE_ACK, "socket stopped before the ack"),
    (_policy.SOCKET_STOPPED_WHILE_WRITING, "socket stopped while writing"),
    (_policy.NOT_SENT_STOPPED, "not sent: the socket stopped"),
    (_policy.idle_timeout(0.3), "no message within idle_timeout (0.300s)"),
    (_policy.send_stalled(2), "send stalled for idle_timeout (2.000s)"),
    (_policy.send_failed("SUBMIT", "boom"), "SUBMIT send failed: boom"),
    (
        _policy.reconnect_attempt_failed(2, "connection refused"),
        "reconnect attempt 2 failed: connection refused",
    ),
    (
        _policy.reconnect_attempt_failed(1, _policy.replay_lost("transport error: reset")),
        (
            "reconnect attempt 1 failed: the subscription replay lost the new connection:"
            " transport error: reset"
        ),
    ),
    (_policy.exhausted(3), "exhausted 3 reconnect attempts"),
    (
        _policy.replay_too_large(5000, 4096),
        (
            "subscription replay failed: the replay frame of 5000 bytes exceeds max_message_size"
            " (4096)"
        ),
    ),
    (
        _policy.too_large("topics", "SUBSCRIBE", 70, 64),
        "topics: the SUBSCRIBE frame would be 70 bytes, over max_message_size (64)",
    ),
    (
        _policy.lost_before_ack("closed by server (1000)"),
        "connection lost before the ack: closed by server (1000)",
    ),
    (_policy.lost_while_writing("x"), "connection lost while writing: x"),
    (_policy.retry_failed("x"), "retry after reconnect failed: x"),
    (
        _policy.not_sent("exhausted 2 reconnect attempts"),
        "not sent: exhausted 2 reconnect attempts",
    ),
    (
        _policy.not_sent_while_stopping("SUBMIT send failed: x"),
        "not sent: SUBMIT send failed: x while stopping",
    ),
    (_policy.too_old(1.23456, 1), "not sent: waited 1.235s, longer than order_max_age (1.000s)"),
    (_policy.rotated_away(), "connection closed before the ack: rotated away, no ack within 5s"),
    (_policy.connect_timeout(0.3), "no `connected` status within connection_timeout (0.300s)"),
    (
        _policy.lost_before_connected("closed by server (1000)"),
        "connection lost before the `connected` status: closed by server (1000)",
    ),
    (_policy.wrong_first("Pong"), "first message was not status/connected: got Pong"),
]


@pytest.mark.parametrize(("text", "expected"), TEXTS, ids=[e for _, e in TEXTS])
def test_reason_texts_are_exact(text: str, expected: str) -> None:
    assert text == expected


# The templates as the native core's source writes them: each `_policy` template rendered with
# the Rust placeholders must appear there, so a text changed on one side only fails here.
RUST_FORMATS = [
    ("managed/task.rs", _policy.SOCKET_STOPPED_BEFORE_ACK),
    ("managed/task.rs", _policy.SOCKET_STOPPED_WHILE_WRITING),
    ("managed/task.rs", _policy.NOT_SENT_STOPPED),
    ("transport.rs", _policy.STREAM_ENDED),
    ("managed/task.rs", _policy.lost_before_ack("{reason}")),
    ("managed/task.rs", _policy.lost_while_writing("{reason}")),
    ("managed/task.rs", _policy.retry_failed("{reason}")),
    ("managed/task.rs", _policy.not_sent("{reason}")),
    ("managed/task.rs", _policy.not_sent_while_stopping("{reason}")),
    ("wire.rs", _policy.send_failed("{method}", "{reason}")),
    ("managed/task.rs", _policy.exhausted("{max}")),  # type: ignore[arg-type]
    ("managed/task.rs", _policy.reconnect_attempt_failed("{attempts}", "{e}")),  # type: ignore[arg-type]
    ("managed/task.rs", _policy.reconnect_attempt_failed("{attempts}", _policy.replay_lost("{e}"))),  # type: ignore[arg-type]
    ("managed/task.rs", _policy.replay_too_large("{}", "{}")),  # type: ignore[arg-type]
    ("managed.rs", _policy.too_large("{argument}", "{frame}", "{size}", "{max}")),  # type: ignore[arg-type]
    ("transport.rs", _policy.lost_before_connected("{lost}")),
    ("transport.rs", _policy.wrong_first("{}")),
    ("managed/task.rs", "no `connected` status within connection_timeout ({:.3}s)"),
    ("managed/task.rs", "no message within idle_timeout ({:.3}s)"),
    ("managed/task.rs", "send stalled for idle_timeout ({:.3}s)"),
    ("managed/task.rs", "not sent: waited {:.3}s, longer than order_max_age ({:.3}s)"),
    (
        "managed/task.rs",
        "connection closed before the ack: rotated away, no ack within {ROTATION_DRAIN:?}",
    ),
]


@pytest.mark.skipif(not SRC.is_dir(), reason="needs the source tree (src/)")
@pytest.mark.parametrize(("file", "template"), RUST_FORMATS, ids=[t for _, t in RUST_FORMATS])
def test_the_native_core_formats_the_same_texts(file: str, template: str) -> None:
    assert f'"{template}"' in (SRC / file).read_text()
