"""Soak (benchmark scenario S4): a long run against the fake exchange with faults and rotations.

    python benches/soak.py --seconds 600 --backend native|pure

The fake exchange (in a child process, `shared_sequence=True`) streams two topics at 2 500 msgs/s
each (5k msgs/s); every fault kind is injected in turn about every 20 s, and a rotation comes
every 60 s (the server's `disconnecting` notice, 2 s before its close, between faults; and
`max_connection_age`); both intervals shrink for short runs (a twentieth and a fifth
of the run). Orders go out all along, about 200 a second (`submit` and `order_place` in turn,
each with its own id; on the native backend most are written on the calling thread). RSS (this
process's: the client alone) is sampled every 2 s (or a sixtieth of the run). Open fds and
threads are counted when the run has settled, once after the warm-up and once at the end: faults
off for 3 s, the most frequent count of the samples taken after each read in that time (a single
sample can fall in a reconnect, a socket fewer, or in a rotation, one more). The last line
printed is one JSON object:

    received, delivered, dropped, lost, duplicated, reconnects, rotations,
    orders_placed, orders_acked, orders_unacked, orders_unacked_reasons, orders_unaccounted,
    orders_sent_twice, direct_writes, rss_growth_mib (see `rss_growth`), fd_growth,
    thread_growth

`dropped` counts events dropped by the socket's queue (`stats.events_dropped`) plus the ids an
outage skipped (a gap right after `Reconnecting`, which the API allows); `lost` is any other gap
and `duplicated` any id seen twice. Every order must end as exactly one ack (`OrderResult` or an
`ErrorMessage` with its id) or one `OrderUnacked` (`orders_unaccounted` counts those with none or
more than one), and reach the exchange at most once (`orders_sent_twice`, from the fake exchange's
records). Exit status 1 when anything is lost or duplicated, an order is unaccounted for or sent
twice, the floor of RSS rises more than 10 MiB, or fds or threads grow.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib
import json
import os
import pickle
import select
import subprocess
import sys
import textwrap
import time
from collections import Counter
from typing import Any

TOPICS = ("BTC-USD@aggTrade", "SOL-USD@bookTicker")
RATE_PER_TOPIC = 2500.0
ORDER_EVERY = 0.005  # s
ORDER_IDS = 1_000_000  # order ids start above the other requests' ids
TX = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
REPLY_TIMEOUT = 30.0  # s, for one call to the fake exchange's process

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


# The fake exchange runs in a child process, so that this process's RSS is the client's alone:
# the exchange keeps every frame it receives (the orders' records grow all along) and shares the
# client's allocator when in-process. Calls and replies are pickled (one fault carries bytes),
# one base64 line each; the child stops its exchange when its stdin closes, parent dead or not.
_EXCHANGE_CHILD = textwrap.dedent(
    """
    import base64, pickle, sys
    from bullet_ws.testing import MockExchange

    def reply(outcome):
        sys.stdout.write(base64.b64encode(pickle.dumps(outcome)).decode() + "\\n")
        sys.stdout.flush()

    mock = MockExchange(**pickle.loads(base64.b64decode(sys.argv[1]))).start()
    try:
        reply((True, mock.url))
        for line in sys.stdin:
            name, args, kwargs = pickle.loads(base64.b64decode(line))
            try:
                value = getattr(mock, name)
                reply((True, value(*args, **kwargs) if callable(value) else value))
            except Exception as e:
                reply((False, e))
    finally:
        mock.stop()
    """
)


class ChildExchange:
    """`MockExchange` in a child process: `call(name, ...)` runs one method (or reads one
    property) there and returns its result or raises its exception."""

    def __init__(self, **options: Any) -> None:
        arg = base64.b64encode(pickle.dumps(options)).decode()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _EXCHANGE_CHILD, arg],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            self.url: str = self._reply()
        except BaseException:
            self.stop()
            raise

    def _reply(self) -> Any:
        assert self.proc.stdout is not None
        # One line per call, so nothing waits in the reader's buffer: the pipe's readiness says.
        if not select.select([self.proc.stdout], [], [], REPLY_TIMEOUT)[0]:
            self.proc.kill()
            raise RuntimeError(f"the fake exchange did not answer within {REPLY_TIMEOUT} s")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fake exchange's process ended (status {self.proc.wait()})")
        ok, value = pickle.loads(base64.b64decode(line))
        if not ok:
            raise value
        return value

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(base64.b64encode(pickle.dumps((name, args, kwargs))) + b"\n")
        self.proc.stdin.flush()
        return self._reply()

    def stop(self) -> None:
        """Closes the pipe, which ends the child; kills it after 10 s."""
        try:
            self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()


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


def rss_growth(samples: list[tuple[float, float]], warmup: float) -> float:
    """How far the floor of RSS (MiB) rose from the first third of the run after `warmup` to its
    last third: the lowest sample of each. RSS moves in steps of up to ~14 MiB that come back
    down (bursts queued while a fault or a busy machine holds the reader up, allocator high-water
    marks), so one sample against another measures noise; a leak lifts the floor."""
    after = [(t, rss) for t, rss in samples if t >= warmup] or samples
    t0, t1 = after[0][0], after[-1][0]
    third = (t1 - t0) / 3
    early = min(rss for t, rss in after if t <= t0 + third)
    late = min(rss for t, rss in after if t >= t1 - third)
    return round(late - early, 2)


class Checker:
    def __init__(self, backend: Any, leak: int = 0) -> None:
        self.b = backend
        self.leak = leak
        self.leaked: list[bytes] = []
        self.last: dict[str, int] = {}
        self.outage: set[str] = set()  # topics whose next gap an outage explains
        self.delivered = self.skipped = self.lost = self.duplicated = 0
        # One byte per order placed, counting its acks and its OrderUnacked: the harness's own
        # memory stays flat, so that RSS growth is the client's.
        self.acks = bytearray()
        self.unacks = bytearray()
        self.unacked_reasons: Counter[str] = Counter()
        self.stray_ids: Counter[int] = Counter()  # outcomes for no order placed

    def placed(self, order_id: int) -> None:
        assert order_id == ORDER_IDS + 1 + len(self.acks)
        self.acks.append(0)
        self.unacks.append(0)

    def _outcome(self, order_id: int, table: bytearray) -> None:
        i = order_id - ORDER_IDS - 1
        if 0 <= i < len(table):
            table[i] = min(table[i] + 1, 255)
        else:
            self.stray_ids[order_id] += 1

    def add(self, event: Any) -> None:
        self.delivered += 1
        if self.leak:
            self.leaked.append(bytes(self.leak))
        b = self.b
        if isinstance(event, (b.OrderResult, b.ErrorMessage)) and event.id is not None:
            self._outcome(event.id, self.acks)
            return
        if isinstance(event, b.OrderUnacked) and event.id is not None:
            self._outcome(event.id, self.unacks)
            self.unacked_reasons[event.reason] += 1
            return
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


async def read_events(ws: Any, checker: Checker, timeout: float) -> None:
    """Check one batch of events, or none: the timeout gives the caller's loop its turn when
    nothing comes (an outage, a silence fault)."""
    try:
        async with asyncio.timeout(timeout):
            for event in await ws.recv_batch(4096):
                checker.add(event)
    except TimeoutError:
        pass


async def soak(seconds: float, backend_name: str, leak: int = 0) -> dict[str, Any]:
    backend = importlib.import_module("bullet_ws" if backend_name == "native" else "bullet_ws.pure")
    fault_every = min(20.0, seconds / 20)
    rotate_every = min(60.0, seconds / 5)
    sample_every = min(2.0, seconds / 60)
    warmup = min(60.0, seconds / 5)
    mock = ChildExchange(rate=RATE_PER_TOPIC, shared_sequence=True)
    checker = Checker(backend, leak)
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

            async def settled() -> tuple[int, int]:
                """Faults off and 3 s of events read, (fds, threads) sampled after each read:
                the most frequent of each. One sample can fall in a reconnect (a socket fewer) or
                a rotation (one more), which is not a leak."""
                mock.call("clear_faults")
                counts: list[tuple[int, int]] = []
                quiet_until = time.monotonic() + 3.0
                while time.monotonic() < quiet_until:
                    await read_events(ws, checker, 0.1)
                    counts.append(resources()[1:])
                fds = Counter(c[0] for c in counts).most_common(1)[0][0]
                threads = Counter(c[1] for c in counts).most_common(1)[0][0]
                return fds, threads

            settled_base: tuple[int, int] | None = None
            start = time.monotonic()
            next_fault, next_sample, fault_i = start + fault_every, start, 0
            # Faults reconnect, which restarts max_connection_age: the server's notice (as the
            # live one sends before its 24 h cut) makes sure a rotation comes every period.
            next_rotation = start + rotate_every / 2
            next_order, order_id = start, ORDER_IDS
            while (now := time.monotonic()) - start < seconds:
                while now >= next_order:
                    order_id += 1
                    checker.placed(order_id)
                    place = ws.submit if order_id % 2 else ws.order_place
                    place(TX, id=order_id)
                    next_order += ORDER_EVERY
                if now >= next_rotation:
                    mock.call("fault", "disconnecting", reason="max_duration", delay=2.0)
                    next_rotation += rotate_every
                if now >= next_fault:
                    kind, scope, params = FAULTS[fault_i % len(FAULTS)]
                    fault_i += 1
                    mock.call("clear_faults")
                    mock.call("fault", kind, scope=scope, **params)
                    next_fault += fault_every
                if now >= next_sample:
                    samples.append((now - start, *resources()))
                    next_sample += sample_every
                if settled_base is None and now - start >= warmup:
                    settled_base = await settled()
                    pause = time.monotonic() - now
                    next_fault, next_rotation, next_order, next_sample = (
                        t + pause for t in (next_fault, next_rotation, next_order, next_sample)
                    )
                await read_events(ws, checker, 0.05)
            settled_end = await settled()
            samples.append((time.monotonic() - start, *resources()))
            # The orders still pending end as OrderUnacked at the close.
            await ws.close()
            while (event := await ws.recv()) is not None:
                checker.add(event)
            stats = ws.stats
        sent: dict[int, int] = {}
        for c in range(mock.call("handshakes")):
            for request in mock.call("requests", c):
                if request.get("method") in ("SUBMIT", "ORDER.PLACE"):
                    sent[request["id"]] = sent.get(request["id"], 0) + 1
    finally:
        mock.stop()
    acks, unacks = checker.acks, checker.unacks
    unaccounted = [i for i in range(len(acks)) if acks[i] + unacks[i] != 1]
    for i in unaccounted[:10]:
        order = ORDER_IDS + 1 + i
        print(
            f"order {order}: {acks[i]} acks, {unacks[i]} OrderUnacked, sent {sent.get(order, 0)}x",
            file=sys.stderr,
        )
    if checker.stray_ids:
        print(f"outcomes for orders never placed: {dict(checker.stray_ids)}", file=sys.stderr)
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
        "orders_placed": len(acks),
        "orders_acked": sum(a == 1 and u == 0 for a, u in zip(acks, unacks)),
        "orders_unacked": sum(a == 0 and u == 1 for a, u in zip(acks, unacks)),
        "orders_unacked_reasons": dict(checker.unacked_reasons),
        "orders_unaccounted": len(unaccounted) + sum(checker.stray_ids.values()),
        "orders_sent_twice": sum(n > 1 for n in sent.values()),
        "direct_writes": stats.direct_writes,
        "rss_growth_mib": rss_growth([(t, rss) for t, rss, _, _ in samples], warmup),
        "fd_growth": settled_end[0] - (settled_base or settled_end)[0],
        "thread_growth": settled_end[1] - (settled_base or settled_end)[1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--backend", choices=("native", "pure"), default="native")
    parser.add_argument(
        "--leak",
        type=int,
        default=0,
        metavar="BYTES",
        help="control: keep BYTES per event delivered, a leak the RSS check must catch",
    )
    args = parser.parse_args()
    if args.leak < 0:
        parser.error(f"--leak must be 0 or more bytes, not {args.leak}")
    result = asyncio.run(soak(args.seconds, args.backend, args.leak))
    print(json.dumps(result), flush=True)
    bad = (
        result["lost"] > 0
        or result["duplicated"] > 0
        or result["orders_unaccounted"] > 0
        or result["orders_sent_twice"] > 0
        or result["rss_growth_mib"] > 10
        or result["fd_growth"] > 0
        or result["thread_growth"] > 0
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
