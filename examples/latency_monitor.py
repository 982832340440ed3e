"""A latency monitor: per interval, how late messages reach your handler.

Each line covers one interval (`--interval`, seconds):

    latency t=1.0 msgs=200 handler_ms p50=0.412 p99=1.870 max=2.301 exchange_ms ... delivery_ms ...

* `handler_ms`: computed here, for every message that has an `event_time` (`E`, µs since the
  epoch, stamped by the exchange): `time.time()` at the handler minus `E`. It includes the
  exchange's own delay, the network, the client and the wait in the event queue, and the clock
  difference between the exchange and this machine (NTP keeps it to a few ms; it can be negative).
* `exchange_ms` / `delivery_ms`: what the socket itself measures, when this bullet-ws has them
  (`ws.stats.exchange_delay`, `ws.stats.delivery_delay`: `None` or a summary with `p50`, `p99`,
  `max`, `count` in seconds); `-` otherwise.

Run it against the built-in fake exchange (which stamps `E` when it builds each frame):

    bullet-ws mock-exchange --port 8765 --rate 1000        # in one terminal
    python examples/latency_monitor.py --url ws://127.0.0.1:8765/ws --duration 10

(`--pure` runs the pure-Python backend; `bullet_ws.testing.MockExchange(rate=1000)` serves the
same in-process.) Topics default to `BTC-USD@aggTrade` and `BTC-USD@depth20`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import math
import signal
import sys
import time
from typing import Any


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    """p50, p99 and max of a non-empty list (nearest rank)."""
    samples.sort()
    n = len(samples)
    return samples[(n - 1) // 2], samples[math.ceil(0.99 * n) - 1], samples[-1]


def summary_text(name: str, summary: Any) -> str:
    if summary is None:
        return f"{name}_ms -"
    return (
        f"{name}_ms p50={summary.p50 * 1e3:.3f} p99={summary.p99 * 1e3:.3f} "
        f"max={summary.max * 1e3:.3f} n={summary.count}"
    )


async def run(args: argparse.Namespace) -> int:
    # The same API on both backends: pick one by module.
    bw: Any = importlib.import_module("bullet_ws.pure" if args.pure else "bullet_ws")
    async with bw.connect(args.url) as ws:
        ws.subscribe(args.topics)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, ws.stop)
        if args.duration is not None:
            loop.call_later(args.duration, ws.stop)
        started = time.monotonic()
        interval_end = started + args.interval
        delays: list[float] = []
        intervals = 0
        while True:
            batch = await ws.recv_batch()
            if not batch:
                break
            now_us = time.time() * 1e6  # one clock read per batch: all of it arrived together
            for event in batch:
                event_time = getattr(event, "event_time", None)
                if event_time:
                    delays.append((now_us - event_time) / 1e3)  # ms
                elif isinstance(event, (bw.Reconnecting, bw.Reconnected, bw.Disconnected)):
                    print(repr(event), flush=True)
            now = time.monotonic()
            if now < interval_end:
                continue
            # Lines are printed when a batch arrives after the interval ended: a silent stream
            # prints nothing (there is nothing to measure).
            stats = ws.stats
            handler = "handler_ms -"
            if delays:
                p50, p99, worst = percentiles(delays)
                handler = f"handler_ms p50={p50:.3f} p99={p99:.3f} max={worst:.3f}"
            print(
                f"latency t={now - started:.1f} msgs={len(delays)} {handler} "
                f"{summary_text('exchange', getattr(stats, 'exchange_delay', None))} "
                f"{summary_text('delivery', getattr(stats, 'delivery_delay', None))} "
                f"dropped={stats.events_dropped} "
                f"conflated={getattr(stats, 'events_conflated', '-')}",
                flush=True,
            )
            delays = []
            intervals += 1
            interval_end = now + args.interval
            if args.intervals is not None and intervals >= args.intervals:
                ws.stop()
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("topics", nargs="*", default=["BTC-USD@aggTrade", "BTC-USD@depth20"])
    p.add_argument("--url", default="ws://127.0.0.1:8765/ws", help="exchange WebSocket URL")
    p.add_argument("--interval", type=float, default=1.0, help="seconds per line")
    p.add_argument("--intervals", type=int, default=None, help="stop after this many lines")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--pure", action="store_true", help="use the pure-Python backend")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(run(parse_args())))
