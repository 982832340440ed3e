"""Soak (benchmark scenario S4): a long run against the fake exchange with faults and rotations.

    python benches/soak.py --seconds 600 --backend native|pure

The fake exchange (in this process, `shared_sequence=True`) streams two topics at 2 500 msgs/s
each (5k msgs/s); every fault kind is injected in turn about every 20 s, and a rotation comes
every 60 s (the server's `disconnecting` notice, 2 s before its close, between faults; and
`max_connection_age`); both intervals shrink for short runs (a twentieth and a fifth
of the run). RSS, open fds and threads are sampled every 10 s (or a sixth of the run). The last
line printed is one JSON object:

    received, delivered, dropped, lost, duplicated, reconnects, rotations,
    rss_growth_mib (after warm-up), fd_growth, thread_growth

`dropped` counts events dropped by the socket's queue (`stats.events_dropped`) plus the ids an
outage skipped (a gap right after `Reconnecting`, which the API allows); `lost` is any other gap
and `duplicated` any id seen twice. Exit status 1 when anything is lost or duplicated, RSS grows
more than 10 MiB, or fds or threads grow.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
import time
from typing import Any

from bullet_ws.testing import MockExchange

TOPICS = ("BTC-USD@aggTrade", "SOL-USD@bookTicker")
RATE_PER_TOPIC = 2500.0

# (kind, scope, params): every kind of the fake exchange, in turn.
FAULTS: list[tuple[str, str, dict[str, Any]]] = [
    ("disconnecting", "current", {"reason": "max_duration", "delay": 0.5}),
    ("close", "current", {"code": 1011, "reason": "soak"}),
    ("ping", "current", {"count": 3}),
    ("reset", "current", {}),
    ("send_text", "current", {"data": "not json"}),
    ("fin", "current", {}),
    ("send_binary", "current", {"data": b'{"e":"pong","id":1,"E":1}'}),
    ("silence", "current", {}),
    ("oversize", "current", {"size": 2000}),
    ("disconnecting", "current", {"reason": "idle_timeout", "delay": 0.0}),
    ("huge_header", "current", {}),
    ("refuse", "next", {}),
    ("reset", "current", {}),
    ("accept_drop", "next", {}),
    ("close", "current", {}),
    ("no_status", "next", {}),
    ("fin", "current", {}),
    ("wrong_first", "next", {"data": '{"e":"pong","id":1,"E":1}'}),
    ("reset", "current", {}),
    ("stall_handshake", "next", {}),
    ("close", "current", {}),
    ("reject_orders", "current", {}),
]


def resources() -> tuple[float, int, int]:
    """(RSS MiB, open fds, threads) of this process."""
    rss = threads = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss / 1024, len(os.listdir("/proc/self/fd")), threads


class Checker:
    def __init__(self, backend: Any) -> None:
        self.b = backend
        self.last: dict[str, int] = {}
        self.outage: set[str] = set()  # topics whose next gap an outage explains
        self.delivered = self.skipped = self.lost = self.duplicated = 0

    def add(self, event: Any) -> None:
        self.delivered += 1
        b = self.b
        if isinstance(event, b.AggTrade):
            key, seq = "trade", event.agg_trade_id
        elif isinstance(event, b.BookTicker):
            key, seq = "ticker", event.update_id
        else:
            if isinstance(event, b.Reconnecting):
                self.outage = {"trade", "ticker"}
            return
        last = self.last.get(key)
        self.last[key] = seq
        if last is None:
            return
        if key in self.outage:
            self.outage.discard(key)
            if seq > last + 1:
                self.skipped += seq - last - 1
                return
            if seq <= last:  # the new subscription started behind: not delivered twice
                self.last[key] = last
                return
        if seq <= last:
            self.duplicated += 1
            self.last[key] = last
        elif seq > last + 1:
            self.lost += seq - last - 1


async def soak(seconds: float, backend_name: str) -> dict[str, Any]:
    backend = importlib.import_module("bullet_ws" if backend_name == "native" else "bullet_ws.pure")
    fault_every = min(20.0, seconds / 20)
    rotate_every = min(60.0, seconds / 5)
    sample_every = min(10.0, seconds / 6)
    warmup = min(60.0, seconds / 5)
    mock = MockExchange(rate=RATE_PER_TOPIC, shared_sequence=True).start()
    checker = Checker(backend)
    samples: list[tuple[float, float, int, int]] = []
    try:
        async with backend.connect(
            mock.url,
            initial_backoff=0.05,
            max_backoff=0.5,
            idle_timeout=1.0,
            connection_timeout=1.0,
            max_connection_age=rotate_every,
        ) as ws:
            ws.subscribe(list(TOPICS), id=1)
            start = time.monotonic()
            next_fault, next_sample, fault_i = start + fault_every, start, 0
            # Faults reconnect, which restarts max_connection_age: the server's notice (as the
            # live one sends before its 24 h cut) makes sure a rotation comes every period.
            next_rotation = start + rotate_every / 2
            while (now := time.monotonic()) - start < seconds:
                if now >= next_rotation:
                    mock.fault("disconnecting", reason="max_duration", delay=2.0)
                    next_rotation += rotate_every
                if now >= next_fault:
                    kind, scope, params = FAULTS[fault_i % len(FAULTS)]
                    fault_i += 1
                    mock.clear_faults()
                    mock.fault(kind, scope=scope, **params)
                    next_fault += fault_every
                if now >= next_sample:
                    samples.append((now - start, *resources()))
                    next_sample += sample_every
                try:
                    async with asyncio.timeout(0.05):
                        for event in await ws.recv_batch(4096):
                            checker.add(event)
                except TimeoutError:
                    pass
            mock.clear_faults()
            # Let the last fault or rotation settle before the final sample.
            quiet_until = time.monotonic() + 3.0
            while time.monotonic() < quiet_until:
                try:
                    async with asyncio.timeout(0.05):
                        for event in await ws.recv_batch(4096):
                            checker.add(event)
                except TimeoutError:
                    pass
            samples.append((time.monotonic() - start, *resources()))
            stats = ws.stats
    finally:
        mock.stop()
    after = [s for s in samples if s[0] >= warmup] or samples
    base, end = after[0], samples[-1]
    return {
        "backend": backend_name,
        "seconds": seconds,
        "received": stats.messages_received,
        "delivered": checker.delivered,
        "dropped": stats.events_dropped + checker.skipped,
        "lost": checker.lost,
        "duplicated": checker.duplicated,
        "reconnects": stats.reconnects,
        "rotations": stats.rotations,
        "rss_growth_mib": round(end[1] - base[1], 2),
        "fd_growth": end[2] - base[2],
        "thread_growth": end[3] - base[3],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--backend", choices=("native", "pure"), default="native")
    args = parser.parse_args()
    result = asyncio.run(soak(args.seconds, args.backend))
    print(json.dumps(result), flush=True)
    bad = (
        result["lost"] > 0
        or result["duplicated"] > 0
        or result["rss_growth_mib"] > 10
        or result["fd_growth"] > 0
        or result["thread_growth"] > 0
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
