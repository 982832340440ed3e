"""What the demo measures from the events: latencies, recoveries, reconnect waits, books."""

from __future__ import annotations

import logging
import math
import random
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from bullet_ws._demo.faults import FaultRun
from bullet_ws.events import (
    BookGap,
    BookResynced,
    Disconnected,
    Reconnected,
    Reconnecting,
    Rotated,
)


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


class DemoState:
    """Everything the view shows, updated by the event consumer, the fault task and the log."""

    RESERVOIR = 100_000

    def __init__(self, topics: list[str], config: dict[str, float]) -> None:
        self.t0 = time.monotonic()
        self.topics = topics
        self.config = config
        self.messages = 0
        self.market = 0
        self.rate_marks: deque[tuple[float, int]] = deque()
        self.recent_latency: deque[tuple[float, float]] = deque()  # (monotonic, µs)
        self.latency_all: list[float] = []
        self.latency_seen = 0
        self._rng = random.Random(1)
        self.connections_lost = 0
        self.reconnected = 0
        self.outage = False
        self.outage_since: float | None = None
        self.up_since = self.t0
        self.last_market_at: float | None = None
        self.market_since_reconnect = 0
        self.last_reconnecting_at: float | None = None
        self.last_reconnected_at: float | None = None
        self.last_downtime: float | None = None
        self.last_reason = ""
        self.attempt = 0  # of the current/last outage, and the wait before it (Reconnecting)
        self.delay: float | None = None
        self.disconnected: str | None = None
        self.errors = 0
        self.log: deque[str] = deque(maxlen=200)
        self.log_total = 0  # lines ever appended to `log` (it is bounded)
        self.faults: list[FaultRun] = []
        self.current_fault: FaultRun | None = None
        self.replay_line = ""
        self.stats: Any = None
        self.ws_topics: frozenset[str] = frozenset()
        # The order books: gaps reported and healed, and the books' state (`ws.book`).
        self.book_gaps = 0
        self.book_resyncs = 0
        self.rotations: list[Rotated] = []
        self.books_line = ""

    def now(self) -> float:
        return time.monotonic() - self.t0

    def note(self, text: str) -> None:
        self.log.append(f"t={self.now():6.2f}s  {text}")
        self.log_total += 1

    # -- events --

    def on_batch(
        self, batch: list[Any], market_types: tuple[type, ...], message_type: type
    ) -> None:
        mono = time.monotonic()
        wall_us = time.time_ns() // 1000
        market = 0
        for ev in batch:
            if isinstance(ev, market_types):
                market += 1
                self._latency(mono, float(wall_us - getattr(ev, "event_time", wall_us)))
            elif isinstance(ev, message_type):
                if getattr(ev, "is_error", False):
                    self.errors += 1
                    self.note(repr(ev))
            elif isinstance(ev, Reconnecting):
                self._on_reconnecting(ev, mono)
            elif isinstance(ev, Reconnected):
                self._on_reconnected(ev, mono)
            elif isinstance(ev, Disconnected):
                self.disconnected = ev.reason
                self.note(repr(ev))
            elif isinstance(ev, Rotated):
                self.rotations.append(ev)
                self.note(f"Rotated(reason={ev.reason!r}, overlap={ev.overlap:.3f}): no gap")
            elif isinstance(ev, BookGap):
                self.book_gaps += 1
                self.note(repr(ev))
            elif isinstance(ev, BookResynced):
                self.book_resyncs += 1
                self.note(f"BookResynced(symbol={ev.symbol!r}, downtime={ev.downtime:.3f})")
        self.messages += sum(1 for ev in batch if isinstance(ev, message_type))
        if market:
            self.market += market
            self.market_since_reconnect += market
            self.last_market_at = mono

    def _latency(self, mono: float, us: float) -> None:
        self.recent_latency.append((mono, us))
        self.latency_seen += 1
        if len(self.latency_all) < self.RESERVOIR:
            self.latency_all.append(us)
        else:  # reservoir sampling keeps the overall percentiles honest on long runs
            j = self._rng.randrange(self.latency_seen)
            if j < self.RESERVOIR:
                self.latency_all[j] = us

    def _on_reconnecting(self, ev: Reconnecting, mono: float) -> None:
        if ev.attempt == 1:  # one event per attempt; the first one follows the loss
            self.connections_lost += 1
            self.outage_since = mono
            self.last_reason = ev.reason
        self.outage = True
        self.last_reconnecting_at = mono
        self.attempt, self.delay = ev.attempt, ev.delay
        fault = self.current_fault
        if fault is not None:
            if fault.detected_at is None:
                fault.detected_at = mono
                fault.reason = ev.reason
            if fault.status == "running":
                fault.waits.append(f"{ev.delay:.3f}s")
        self.note(f"Reconnecting(reason={ev.reason!r}, attempt={ev.attempt}, delay={ev.delay:.3f})")

    def _on_reconnected(self, ev: Reconnected, mono: float) -> None:
        self.reconnected += 1
        self.outage = False
        self.up_since = mono
        self.last_reconnected_at = mono
        self.last_downtime = ev.downtime
        self.market_since_reconnect = 0
        self.note(f"Reconnected(attempts={ev.attempts}, downtime={ev.downtime:.3f})")

    def on_log(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken log record must not break the demo
            return
        if record.levelno >= logging.WARNING or "replay" in text or "reconnected" in text:
            self.note(f"log {record.levelname.lower()}: {text}")

    # -- figures --

    def rate(self) -> float:
        mono = time.monotonic()
        self.rate_marks.append((mono, self.messages))
        while len(self.rate_marks) > 2 and mono - self.rate_marks[1][0] >= 1.0:
            self.rate_marks.popleft()
        t_then, n_then = self.rate_marks[0]
        dt = mono - t_then
        return (self.messages - n_then) / dt if dt > 0.05 else 0.0

    def recent_percentiles(self) -> tuple[float, float]:
        mono = time.monotonic()
        while self.recent_latency and mono - self.recent_latency[0][0] > 1.0:
            self.recent_latency.popleft()
        values = sorted(us for _, us in self.recent_latency)
        return _percentile(values, 0.50), _percentile(values, 0.99)

    def overall_percentiles(self) -> tuple[float, float, float]:
        values = sorted(self.latency_all)
        return _percentile(values, 0.50), _percentile(values, 0.99), _percentile(values, 1.0)

    def backoff_text(self) -> str:
        """The wait of the current (or last) reconnect attempt, from its `Reconnecting` event."""
        if self.delay is None:
            return f"{self.config['initial_backoff']:.3f}s (no reconnect yet)"
        last = f"attempt {self.attempt} waited {self.delay:.3f}s"
        if self.outage:
            return f"attempt {self.attempt} after {self.delay:.3f}s - reconnecting"
        up = time.monotonic() - self.up_since
        reset_after = self.config["backoff_reset_after"]
        if up >= reset_after:
            return f"{last}; reset to {self.config['initial_backoff']:.3f}s (up {up:.1f}s)"
        return f"{last}; resets once up {reset_after}s (up {up:.1f}s)"


def _ms(us: float) -> str:
    if math.isnan(us):  # no samples
        return "-"
    return f"{us / 1000:.2f}ms"
