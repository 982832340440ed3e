"""Latency statistics of the pure backend: the native core's histogram (src/latency.rs) in
Python, bucket for bucket, so that both backends report the same quantisation.

Buckets of microseconds: exact below 32 µs, then 32 per power of two (relative width <= 1/32,
about 3 %), up to 100 s (larger values land in the last bucket). Quantiles report their bucket's
upper bound. A window holds two half-window histograms; the older is dropped whole when a new
half begins, so a summary covers the last 5 to 10 s.
"""

from __future__ import annotations

from bullet_ws._policy import LATENCY_WINDOW
from bullet_ws.events import LatencySummary

__all__ = ["LATENCY_WINDOW", "LatencyWindow", "bucket_of", "upper_bound"]

_HALF = LATENCY_WINDOW / 2
_SUB_BITS = 5
_SUB = 1 << _SUB_BITS
MAX_US = 100_000_000


def bucket_of(us: int) -> int:
    v = min(MAX_US, us)
    if v < _SUB:
        return v
    shift = v.bit_length() - 1 - _SUB_BITS
    return _SUB + shift * _SUB + ((v >> shift) - _SUB)


def upper_bound(bucket: int) -> int:
    if bucket < _SUB:
        return bucket
    shift, sub = divmod(bucket - _SUB, _SUB)
    return ((_SUB + sub + 1) << shift) - 1


BUCKETS = bucket_of(MAX_US) + 1


class LatencyWindow:
    """Samples (µs) of about the last `LATENCY_WINDOW` seconds of a monotonic clock."""

    __slots__ = ("_current", "_previous", "_started")

    def __init__(self) -> None:
        # Sparse: a dict of the buckets used, as a burst touches few of them.
        self._current: dict[int, int] = {}
        self._previous: dict[int, int] = {}
        self._started = 0.0

    def advance(self, now: float) -> None:
        """Starts a new half when the current one is over (call before `add`)."""
        elapsed = now - self._started
        if elapsed < _HALF:
            return
        if elapsed < 2 * _HALF:
            self._previous = self._current
            self._current = {}
            self._started += _HALF
        else:
            self._previous = {}
            self._current = {}
            self._started = now

    def add(self, us: int) -> None:
        b = bucket_of(us) if us >= 0 else 0
        current = self._current
        current[b] = current.get(b, 0) + 1

    def record(self, now: float, us: int) -> None:
        self.advance(now)
        self.add(us)

    def summary(self, now: float) -> LatencySummary | None:
        self.advance(now)
        merged = dict(self._previous)
        for b, n in self._current.items():
            merged[b] = merged.get(b, 0) + n
        count = sum(merged.values())
        if count == 0:
            return None
        # 1-based ranks in integers, as the native core computes them.
        r50 = -(-count * 50 // 100)
        r99 = -(-count * 99 // 100)
        p50 = p99 = None
        seen = 0
        top = 0
        for b in sorted(merged):
            seen += merged[b]
            if p50 is None and seen >= r50:
                p50 = upper_bound(b)
            if p99 is None and seen >= r99:
                p99 = upper_bound(b)
            top = upper_bound(b)
        return LatencySummary(
            (top if p50 is None else p50) / 1e6,
            (top if p99 is None else p99) / 1e6,
            top / 1e6,
            count,
        )
