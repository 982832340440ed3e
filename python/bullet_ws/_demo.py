"""`bullet-ws demo`: the managed socket surviving a misbehaving exchange, live in the terminal.

The demo starts the fake exchange (`bullet_ws.testing.MockExchange`) on loopback, connects a
managed socket to it (native backend unless told otherwise), subscribes to aggTrade, depth20 and
bookTicker on two symbols, and injects faults on a schedule: a close frame, a TCP reset, a zombie
connection (silent but open, caught by ``idle_timeout``) and an accept-then-drop storm. Each fault
counts as survived once the socket reconnected, the mock recorded the replay ``SUBSCRIBE`` (id
null, every active topic) on the new connection and market data flows again. Before them, a
``depth_gap`` shows the order books noticing a skipped update and healing it (``BookGap``, then
``BookResynced``); it is reported, not scored.

The view is redrawn in place (ANSI) when stdout is a terminal; otherwise it prints plain lines: the
lifecycle events as they happen and a status line every second. The run ends with a summary. The
exit status is 0 when every injected fault was survived, 1 otherwise (or when the connection
failed).

Everything here is for humans; nothing in the library depends on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import math
import random
import shutil
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from bullet_ws.config import ManagedWsConfig
from bullet_ws.errors import ConnectError
from bullet_ws.events import (
    BookGap,
    BookResynced,
    Disconnected,
    Reconnected,
    Reconnecting,
    Rotated,
)
from bullet_ws.topics import OrderbookDepth, Topic

__all__ = ["DEMO_CONFIG", "FAULTS", "SYMBOLS", "demo_topics", "run_demo"]

SYMBOLS: tuple[str, ...] = ("BTC-USD", "ETH-USD")
#: Market-data messages per second the mock sends on each connection.
RATE = 2000.0
#: Test-friendly settings: fast reconnects, quick zombie detection, quick backoff reset.
DEMO_CONFIG: dict[str, float] = {
    "initial_backoff": 0.05,
    "max_backoff": 2.0,
    "idle_timeout": 0.5,
    "backoff_reset_after": 1.0,
    "connection_timeout": 2.0,
}
#: Connections dropped right after ``connected`` in the accept-then-drop storm.
STORM = 3
#: A fault not recovered from within this many seconds counts as a failure.
RECOVERY_TIMEOUT = 10.0
#: Quiet time after a recovery before the next fault: longer than ``backoff_reset_after``, so each
#: fault starts from the initial backoff.
SETTLE = DEMO_CONFIG["backoff_reset_after"] + 0.3
#: A fault is not started when fewer seconds than this remain.
MIN_FAULT_TIME = 1.0


def demo_topics() -> list[str]:
    """The demo's subscriptions: aggTrade, depth20 and bookTicker on each of `SYMBOLS`."""
    topics: list[str] = []
    for symbol in SYMBOLS:
        topics += [
            str(Topic.agg_trade(symbol)),
            str(Topic.depth(symbol, OrderbookDepth.D20)),
            str(Topic.book_ticker(symbol)),
        ]
    return topics


# ----- faults ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultSpec:
    """One fault of the schedule.

    kind: the mock's fault kind (shown as the fault's name).
    label: what happens, for humans.
    connections: new upgrades it takes to recover (1, or the storm's drops + 1).
    inject: applies the fault to the mock; returns how many connections it hit.
    """

    kind: str
    label: str
    connections: int
    inject: Callable[[Any], int]


def _storm(mock: Any) -> int:
    mock.fault("accept_drop", scope="next", count=STORM)
    hit = int(mock.fault("fin"))
    if hit == 0:
        mock.clear_faults()
    return hit


FAULTS: tuple[FaultSpec, ...] = (
    FaultSpec(
        "close",
        "close frame 1001 'going away' from the server",
        1,
        lambda m: int(m.fault("close", code=1001, reason="demo: going away")),
    ),
    FaultSpec("reset", "TCP reset (RST), no close frame", 1, lambda m: int(m.fault("reset"))),
    FaultSpec(
        "silence",
        "zombie: connection open but silent, caught by idle_timeout",
        1,
        lambda m: int(m.fault("silence")),
    ),
    FaultSpec(
        "accept_drop",
        f"accept-then-drop storm: a FIN, then {STORM} connections dropped right after 'connected'",
        STORM + 1,
        _storm,
    ),
)


@dataclass
class FaultRun:
    """The fate of one scheduled fault."""

    spec: FaultSpec
    planned_at: float
    status: str = "waiting"  # waiting | running | ok | FAILED | skipped
    injected_at: float | None = None
    detected_at: float | None = None  # first Reconnecting after the injection
    recovered_at: float | None = None
    handshakes_before: int = 0
    reconnected_before: int = 0
    reason: str = ""  # of the first Reconnecting
    waits: list[str] = field(default_factory=list)  # Reconnecting.delay of each attempt
    replay: str = ""
    detail: str = ""

    def describe(self) -> str:
        spec = self.spec
        if self.status == "ok":
            assert self.injected_at is not None and self.recovered_at is not None
            parts = [f"recovered in {self.recovered_at - self.injected_at:.3f}s"]
            if spec.kind == "silence" and self.detected_at is not None:
                parts.append(f"idle_timeout fired after {self.detected_at - self.injected_at:.3f}s")
            if self.waits:
                parts.append("waits " + " -> ".join(self.waits) + " (backoff + jitter)")
            if self.reason:
                parts.append(f"reason {self.reason!r}")
            return "; ".join(parts)
        return self.detail or self.status


# ----- measurements ------------------------------------------------------------------------------

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
        self.note(
            f"Reconnecting(reason={ev.reason!r}, attempt={ev.attempt}, delay={ev.delay:.3f})"
        )

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


# ----- the mock's record of the replay -----------------------------------------------------------


def _replay_on(mock: Any, index: int, topics: list[str]) -> str | None:
    """A description of the replay SUBSCRIBE (id null, all `topics`) the mock recorded on
    connection `index`, or None if it has none."""
    try:
        requests = mock.requests(index)
        client_id = mock.connection(index).client_id
    except IndexError:
        return None
    want = set(topics)
    for req in requests:
        method = str(req.get("method", "")).upper()
        if method == "SUBSCRIBE" and "id" in req and req["id"] is None:
            params = req.get("params")
            if isinstance(params, list) and set(params) == want:
                return f"{client_id} got SUBSCRIBE id=null with all {len(params)} topics"
    return None


# ----- the fault schedule ------------------------------------------------------------------------


def _plan(seconds: float, n: int) -> list[float]:
    warm = min(1.0, seconds * 0.1)
    reserve = min(2.5, seconds * 0.2)  # the storm's recovery and a tail of calm
    gap = max(0.5, (seconds - warm - reserve) / max(n, 1))
    return [warm + i * gap for i in range(n)]


def _healthy(st: DemoState) -> bool:
    mono = time.monotonic()
    return (
        not st.outage
        and st.market_since_reconnect > 0
        and st.last_market_at is not None
        and mono - st.last_market_at < 0.3
    )


async def _run_faults(mock: Any, ws: Any, st: DemoState, end: float, stop: asyncio.Event) -> None:
    last_recovery = 0.0
    for run in st.faults:
        start = max(run.planned_at, last_recovery + SETTLE if last_recovery else 0.0)
        # Wait for the planned time and a healthy stream (polled; nothing to await on).
        while not stop.is_set() and (st.now() < start or not _healthy(st)):
            if st.now() > end - MIN_FAULT_TIME:
                break
            await asyncio.sleep(0.02)
        if stop.is_set():
            run.status, run.detail = "skipped", "not run (interrupted)"
            continue
        if st.now() > end - MIN_FAULT_TIME or not _healthy(st):
            run.status, run.detail = "skipped", "not run (time up; try a larger --seconds)"
            continue
        run.handshakes_before = mock.handshakes
        run.reconnected_before = st.reconnected
        run.status = "running"
        st.current_fault = run
        run.injected_at = time.monotonic()
        hit = run.spec.inject(mock)
        if hit == 0:
            run.status, run.detail = "skipped", "not run (no open connection at that moment)"
            st.current_fault = None
            continue
        st.note(f"FAULT {run.spec.kind}: {run.spec.label}")
        deadline = run.injected_at + RECOVERY_TIMEOUT
        while time.monotonic() < deadline and st.disconnected is None:
            replay = _recovered(mock, ws, st, run)
            if replay is not None:
                run.status = "ok"
                run.recovered_at = st.last_reconnected_at
                run.replay = replay
                st.replay_line = replay
                st.note(f"survived {run.spec.kind}: {run.describe()}")
                break
            await asyncio.sleep(0.02)
        else:
            run.status = "FAILED"
            why = f"Disconnected({st.disconnected!r})" if st.disconnected else "no recovery"
            run.detail = f"{why} within {RECOVERY_TIMEOUT:.0f}s of the fault"
            st.note(f"FAILED {run.spec.kind}: {run.detail}")
        st.current_fault = None
        last_recovery = st.now()
        if run.status == "FAILED":
            break
    for run in st.faults:
        if run.status == "waiting":
            run.status, run.detail = "skipped", "not run (an earlier fault failed)"


def _recovered(mock: Any, ws: Any, st: DemoState, run: FaultRun) -> str | None:
    """The replay description once `run` is recovered from, else None."""
    assert run.injected_at is not None
    handshakes = mock.handshakes
    if (
        handshakes < run.handshakes_before + run.spec.connections
        or st.reconnected <= run.reconnected_before
        or st.outage
        or st.last_reconnected_at is None
        or st.last_reconnected_at < run.injected_at
        or st.market_since_reconnect == 0
        or set(ws.topics) != set(st.topics)
    ):
        return None
    latest = handshakes - 1
    if mock.connection(latest).closed:
        return None
    return _replay_on(mock, latest, st.topics)


# ----- the view ----------------------------------------------------------------------------------


class View:
    """Renders `DemoState`: in place with ANSI on a terminal, else as plain lines."""

    def __init__(self, out: TextIO, tty: bool, title: str) -> None:
        self.out = out
        self.tty = tty
        self.title = title
        self.drawn = 0
        self.logged = 0
        self.last_plain = 0.0

    def frame(self, st: DemoState, seconds: float) -> list[str]:
        p50, p99 = st.recent_percentiles()
        stats = st.stats
        drops = stats.events_dropped if stats is not None else 0
        lines = [
            f"{self.title}   t={st.now():5.1f}s / {seconds:.0f}s",
            f"  messages/s    {st.rate():9,.0f}    total {st.messages:,}",
            f"  latency       p50 {_ms(p50)}  p99 {_ms(p99)}   (event_time -> receipt, last 1s)",
            f"  reconnects    {st.reconnected}   ({st.connections_lost} connections lost)",
            f"  backoff       {st.backoff_text()}",
            f"  drops         {drops}",
            f"  topics        {len(st.ws_topics)} active (ws.topics): {', '.join(sorted(st.ws_topics))}",
        ]
        if st.replay_line:
            lines.append(f"  replay        {st.replay_line}")
        if st.books_line:
            lines.append(f"  books         {st.books_line}")
        if st.faults:
            done = sum(1 for f in st.faults if f.status == "ok")
            marks = []
            for f in st.faults:
                marks.append(f"{f.spec.kind}:{f.status}")
            lines.append(f"  faults        {done}/{len(st.faults)} survived   " + "  ".join(marks))
        lines.append("  recent:")
        lines += ["    " + line for line in list(st.log)[-6:]]
        return lines

    def draw(self, st: DemoState, seconds: float) -> None:
        if self.tty:
            width = max(40, shutil.get_terminal_size((100, 24)).columns - 1)
            lines = [line[:width] for line in self.frame(st, seconds)]
            buf = []
            if self.drawn:
                buf.append(f"\x1b[{self.drawn}A\r")
            buf += [f"\x1b[2K{line}\n" for line in lines]
            buf.append("\x1b[J")
            self.out.write("".join(buf))
            self.out.flush()
            self.drawn = len(lines)
            return
        # Plain: new log lines as they come, a status line every second.
        for line in self._new_log(st):
            self.out.write(f"  {line}\n")
        mono = time.monotonic()
        if mono - self.last_plain >= 1.0:
            self.last_plain = mono
            p50, p99 = st.recent_percentiles()
            stats = st.stats
            drops = stats.events_dropped if stats is not None else 0
            done = sum(1 for f in st.faults if f.status == "ok")
            faults = f"  faults {done}/{len(st.faults)}" if st.faults else ""
            self.out.write(
                f"t={st.now():5.1f}s  msgs/s {st.rate():7,.0f}  p50 {_ms(p50)}  p99 {_ms(p99)}  "
                f"reconnects {st.reconnected}  backoff {st.backoff_text()}  drops {drops}"
                f"{faults}\n"
            )
        self.out.flush()

    def _new_log(self, st: DemoState) -> list[str]:
        appended = min(st.log_total - self.logged, len(st.log))
        self.logged = st.log_total
        return list(st.log)[-appended:] if appended > 0 else []

    def finish(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


# ----- the run -----------------------------------------------------------------------------------


class _LogCapture(logging.Handler):
    def __init__(self, st: DemoState) -> None:
        super().__init__(logging.DEBUG)
        self.st = st

    def emit(self, record: logging.LogRecord) -> None:
        self.st.on_log(record)


@dataclass
class DemoOptions:
    backend: str = "native"  # native | pure
    seconds: float = 12.0
    faults: bool = True
    url: str | None = None


def run_demo(opts: DemoOptions, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Runs the demo; returns the exit status."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        return asyncio.run(_demo(opts, out, err))
    except KeyboardInterrupt:  # only where the loop could not take over SIGINT
        err.write("bullet-ws demo: interrupted\n")
        return 130


def _backend_module(name: str) -> Any:
    return importlib.import_module("bullet_ws.pure" if name == "pure" else "bullet_ws")


async def _demo(opts: DemoOptions, out: TextIO, err: TextIO) -> int:
    bw = _backend_module(opts.backend)
    backend_name = "pure" if opts.backend == "pure" else str(bw.BACKEND)
    if opts.backend == "native" and backend_name != "native":
        err.write("bullet-ws demo: the native extension is missing; using the pure backend\n")
    topics = demo_topics()
    # Against the fake exchange: the test-friendly settings. Against a real server (--url): the
    # library's defaults, as a user would run it (a 0.5 s idle_timeout would misfire on quiet topics).
    overrides: dict[str, float] = dict(DEMO_CONFIG) if opts.url is None else {}
    config = ManagedWsConfig(**overrides)  # type: ignore[arg-type]
    model = {k: float(getattr(config, k)) for k in DEMO_CONFIG}
    st = DemoState(topics, model)

    mock: Any = None
    if opts.url is None:
        try:
            from bullet_ws.testing import MockExchange

            mock = MockExchange(rate=RATE, symbols=SYMBOLS).start()
        except (RuntimeError, OSError) as e:
            err.write(f"bullet-ws demo: cannot start the fake exchange: {e}\n")
            return 1
        target = mock.url
        where = f"fake exchange {mock.url} at {RATE:.0f} msgs/s"
    else:
        target = opts.url
        where = opts.url
    inject = mock is not None and opts.faults
    if inject:
        st.faults = [
            FaultRun(spec, at) for spec, at in zip(FAULTS, _plan(opts.seconds, len(FAULTS)))
        ]

    logger = logging.getLogger("bullet_ws")
    capture = _LogCapture(st)
    saved = (logger.level, logger.propagate)
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # keep log lines from tearing the live view
    tty = out.isatty()
    view = View(out, tty, f"bullet-ws demo ({backend_name} backend) -> {where}")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    interrupted = False

    def on_signal() -> None:
        nonlocal interrupted
        interrupted = True
        stop.set()

    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
    if tty:
        out.write("\x1b[?25l")  # hide the cursor while redrawing
    try:
        out.write(f"bullet-ws demo: {backend_name} backend, {where}\n")
        out.write(f"  config {_config_text(model)}\n  topics {', '.join(topics)}\n")
        out.flush()
        try:
            ws = await bw.connect(target, config=config)
        except (ConnectError, OSError) as e:
            err.write(f"bullet-ws demo: cannot connect to {target}: {e}\n")
            return 1
        tasks: list[asyncio.Task[Any]] = []
        try:
            ws.subscribe(topics)
            st.ws_topics = ws.topics
            end = opts.seconds
            market_types = (bw.AggTrade, bw.DepthUpdate, bw.BookTicker, bw.MarkPrice, bw.ForceOrder)
            consumer = asyncio.create_task(_consume(ws, st, market_types, bw.Message))
            tasks.append(consumer)
            faults_task = None
            if inject:
                faults_task = asyncio.create_task(_run_faults(mock, ws, st, end, stop))
                tasks.append(faults_task)
                at = _plan(opts.seconds, len(FAULTS))[0] / 2
                tasks.append(asyncio.create_task(_depth_gap(mock, ws, st, at)))
                tasks.append(asyncio.create_task(_rotation(mock, st, at * 1.4)))
            interval = 0.1 if tty else 0.05
            while not stop.is_set():
                st.stats = ws.stats
                st.ws_topics = ws.topics
                st.books_line = _books_line(ws, st)
                if mock is not None and not st.replay_line and mock.handshakes > 1:
                    st.replay_line = _replay_on(mock, mock.handshakes - 1, topics) or ""
                view.draw(st, opts.seconds)
                if st.disconnected is not None or consumer.done():
                    break
                fault_busy = (
                    faults_task is not None
                    and not faults_task.done()
                    and (st.current_fault is not None)
                )
                # At the end, give a reconnect under way (e.g. a spurious idle timeout on a busy
                # machine) the time to finish: the verdict wants a healthy stream.
                if (
                    st.now() >= end
                    and not fault_busy
                    and (_healthy(st) or st.now() >= end + RECOVERY_TIMEOUT)
                ):
                    break
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)
            stop.set()
            if faults_task is not None:
                await faults_task
            st.stats = ws.stats
            st.ws_topics = ws.topics
            view.draw(st, opts.seconds)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await ws.close()
        view.finish()
        healthy = _healthy(st) or opts.url is not None
        code = _summary(out, st, backend_name, mock, healthy, interrupted)
        return code
    finally:
        if tty:
            out.write("\x1b[?25h")
            out.flush()
        for sig in installed:
            loop.remove_signal_handler(sig)
        logger.removeHandler(capture)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        if mock is not None:
            await asyncio.to_thread(mock.stop)


def _config_text(config: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in config.items())


def _books_line(ws: Any, st: DemoState) -> str:
    synced = [s for s in SYMBOLS if ws.book(s).is_synced]
    return (
        f"{len(synced)} of {len(SYMBOLS)} synced (ws.book); "
        f"{st.book_gaps} gap(s) reported, {st.book_resyncs} resync(s)"
    )


async def _depth_gap(mock: Any, ws: Any, st: DemoState, at: float) -> None:
    """Before the connection faults: one skipped depth update, healed by a resubscribe."""
    while st.now() < at or not all(ws.book(s).is_synced for s in SYMBOLS):
        if st.now() > at + RECOVERY_TIMEOUT:
            return
        await asyncio.sleep(0.02)
    if mock.fault("depth_gap"):
        st.note("FAULT depth_gap: each depth stream skips an update; the books resubscribe")


async def _rotation(mock: Any, st: DemoState, at: float) -> None:
    """Before the connection faults: the server's 'disconnecting' notice, answered by a
    make-before-break rotation (a second connection, no gap, no Reconnecting)."""
    while st.now() < at:
        await asyncio.sleep(0.02)
    if mock.fault("disconnecting", reason="max_duration", delay=0.3):
        st.note("FAULT disconnecting (max_duration): the socket rotates to a new connection")


async def _consume(ws: Any, st: DemoState, market_types: tuple[type, ...], message: type) -> None:
    while True:
        batch = await ws.recv_batch(4096)
        if not batch:
            return
        st.on_batch(batch, market_types, message)


def _summary(
    out: TextIO, st: DemoState, backend: str, mock: Any, healthy: bool, interrupted: bool
) -> int:
    p50, p99, pmax = st.overall_percentiles()
    stats = st.stats
    elapsed = st.now()
    w = out.write
    w("\n")
    w(f"summary ({backend} backend, {elapsed:.1f}s{', interrupted' if interrupted else ''})\n")
    w(
        f"  messages       {st.messages:,} ({st.messages / max(elapsed, 1e-9):,.0f}/s), "
        f"market data {st.market:,}\n"
    )
    w(
        f"  latency        p50 {_ms(p50)}  p99 {_ms(p99)}  max {_ms(pmax)}  "
        f"(event_time -> receipt, {st.latency_seen:,} samples)\n"
    )
    if stats is not None:
        w(
            f"  rotations      {stats.rotations} (stats.rotations): "
            + (", ".join(f"{r.reason} in {r.overlap * 1000:.1f} ms" for r in st.rotations) or "none")
            + "\n"
        )
        w(
            f"  reconnects     {stats.reconnects} (stats.reconnects); "
            f"events dropped {stats.events_dropped}\n"
        )
    w(
        f"  topics         {len(st.ws_topics)} active in ws.topics: {', '.join(sorted(st.ws_topics))}\n"
    )
    if mock is not None:
        replays = []
        for index in range(1, mock.handshakes):
            replay = _replay_on(mock, index, st.topics)
            if replay is not None:
                replays.append(mock.connection(index).client_id)
        others = max(mock.handshakes - 1, 0) - len(replays)
        w(
            f"  replayed       the mock recorded SUBSCRIBE id=null with all {len(st.topics)} topics "
            f"on {len(replays)} of {max(mock.handshakes - 1, 0)} reconnections"
            f"{(' (' + ', '.join(replays) + ')') if replays else ''}\n"
        )
        if others:
            w(
                f"                 ({others} dropped before the replay reached the mock: the storm)\n"
            )
    if st.books_line:
        w(f"  order books    {st.books_line}\n")
    failed = [f for f in st.faults if f.status == "FAILED"]
    if st.faults:
        ok = [f for f in st.faults if f.status == "ok"]
        w(f"  faults         {len(ok)} of {len(st.faults)} survived\n")
        for f in st.faults:
            mark = {"ok": "[ok]  ", "FAILED": "[FAIL]"}.get(f.status, "[skip]")
            w(f"    {mark} {f.spec.kind:<12} {f.spec.label}\n")
            w(f"           {f.describe()}\n")
            if f.replay:
                w(f"           replay: {f.replay}\n")
    else:
        w("  faults         none injected\n")
    problems = []
    if failed:
        problems.append(f"{len(failed)} fault(s) not recovered from")
    if st.disconnected is not None:
        problems.append(f"Disconnected({st.disconnected!r})")
    if not healthy and not interrupted and not failed:
        problems.append("no market data at the end")
    if problems:
        w(f"result: FAILED - {'; '.join(problems)}\n")
        out.flush()
        return 1
    w(
        "result: OK - the client recovered from every fault injected\n"
        if st.faults
        else "result: OK\n"
    )
    out.flush()
    return 0
