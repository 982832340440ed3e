"""The run: the fake exchange, the socket, the consumer, the fault schedule and the view."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from bullet_ws._demo.faults import FAULTS, FaultRun
from bullet_ws._demo.schedule import (
    _depth_gap,
    _healthy,
    _plan,
    _replay_on,
    _rotation,
    _run_faults,
)
from bullet_ws._demo.settings import DEMO_CONFIG, RATE, RECOVERY_TIMEOUT, SYMBOLS, demo_topics
from bullet_ws._demo.state import DemoState
from bullet_ws._demo.view import View, _books_line, _config_text, _summary
from bullet_ws.config import ManagedWsConfig
from bullet_ws.errors import ConnectError


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


async def _consume(ws: Any, st: DemoState, market_types: tuple[type, ...], message: type) -> None:
    while True:
        batch = await ws.recv_batch(4096)
        if not batch:
            return
        st.on_batch(batch, market_types, message)
