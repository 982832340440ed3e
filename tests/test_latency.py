"""Latency stats (`Stats.exchange_delay`, `Stats.delivery_delay`, issue 17) on both backends.

- The histogram: the same samples give the same summary on both backends (the native window
  through its test hook `_core._latency_window`), equal to values worked out by hand (as in the
  Rust unit tests of src/latency.rs), and the window forgets what is older than it.
- End to end: after a flood from the fake exchange (whose `E` is its wall-clock send stamp),
  both summaries are present and ordered.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from bullet_ws import LatencySummary
from bullet_ws.pure import latency
from support import options, until

pytestmark = pytest.mark.timeout(60)

Samples = list[tuple[float, int]]


def pure_window(samples: Samples, at: float) -> LatencySummary | None:
    window = latency.LatencyWindow()
    for t, us in samples:
        window.record(t, us)
    return window.summary(at)


def test_buckets_are_exact_below_32_us_then_within_a_32nd() -> None:
    for v in range(32):
        assert latency.upper_bound(latency.bucket_of(v)) == v
    v = 32
    while v <= latency.MAX_US:
        b = latency.bucket_of(v)
        bound = latency.upper_bound(b)
        assert v <= bound and (bound - v) * 32 <= v
        assert latency.upper_bound(b - 1) < v
        v = v * 17 // 16 + 1
    assert latency.bucket_of(10**12) == latency.BUCKETS - 1 == 719


def test_known_samples_give_known_summaries() -> None:
    thousand = [(0.001, v * 1000) for v in range(1, 1001)]
    # Rank 500 is 500 ms, rank 990 is 990 ms, the max 1 s: each reported as its bucket's bound.
    assert pure_window(thousand, 0.002) == LatencySummary(0.507903, 0.999423, 1.015807, 1000)
    assert pure_window([(0.0, 7)], 0.0) == LatencySummary(7e-6, 7e-6, 7e-6, 1)
    assert pure_window([], 0.0) is None


def test_the_window_forgets_what_is_older_than_it() -> None:
    samples = [(1.0, 100), (6.0, 200)]
    assert pure_window(samples, 7.0) == LatencySummary(0.000101, 0.000203, 0.000203, 2)
    assert pure_window(samples, 11.0) == LatencySummary(0.000203, 0.000203, 0.000203, 1)
    assert pure_window(samples, 30.0) is None
    assert latency.LATENCY_WINDOW == 10.0


def test_both_backends_quantise_alike(native: ModuleType) -> None:
    from bullet_ws import _core

    rng = random.Random(17)
    for case in range(200):
        n = rng.choice([1, 2, 3, 10, 99, 100, 101, 1000])
        start = rng.uniform(0, 30)
        samples = sorted(
            (start + rng.uniform(0, 12), int(rng.lognormvariate(7, 3)) if case % 7 else -5)
            for _ in range(n)
        )
        samples = [(t, max(us, 0)) for t, us in samples]
        at = samples[-1][0] + rng.choice([0.0, 0.1, 4.0, 9.0, 20.0])
        assert _core._latency_window(samples, at) == pure_window(samples, at), (samples, at)
    assert _core._latency_window([(0.001, v * 1000) for v in range(1, 1001)], 0.002) == (
        LatencySummary(0.507903, 0.999423, 1.015807, 1000)
    )


async def test_a_flood_gives_both_summaries(
    backend: ModuleType, mock_factory: Callable[..., Any]
) -> None:
    flood = 2000
    mock = mock_factory(rate=None, max_messages=flood)
    async with backend.connect(mock.url, **options(channel_capacity=100_000)) as ws:
        assert ws.stats.exchange_delay is None and ws.stats.delivery_delay is None
        ws.subscribe(["BTC-USD@bookTicker", "BTC-USD@aggTrade"])
        delivered = 0
        while delivered < flood + 1:
            delivered += len(await ws.recv_batch(100))
        await until(lambda: ws.stats.queued == 0)
        stats = ws.stats
    for summary in (stats.exchange_delay, stats.delivery_delay):
        assert isinstance(summary, LatencySummary)
        assert 0 <= summary.p50 <= summary.p99 <= summary.max
    # Every message has an E and was handed over: all counted, unless the flood straddled the
    # end of a half-window (then only the last 5 to 10 s are).
    assert 0 < stats.exchange_delay.count <= flood + 1
    assert 0 < stats.delivery_delay.count <= flood + 1
    # Same machine, same clock: anything near a minute would be a unit or clock bug.
    assert stats.exchange_delay.max < 30.0
