"""The live view (ANSI in a terminal, plain lines otherwise) and the closing summary."""

from __future__ import annotations

import shutil
import time
from typing import Any, TextIO

from bullet_ws._demo.schedule import _replay_on
from bullet_ws._demo.settings import SYMBOLS
from bullet_ws._demo.state import DemoState, _ms


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


def _config_text(config: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in config.items())


def _books_line(ws: Any, st: DemoState) -> str:
    synced = [s for s in SYMBOLS if ws.book(s).is_synced]
    line = (
        f"{len(synced)} of {len(SYMBOLS)} synced (ws.book); "
        f"{st.book_gaps} gap(s) reported, {st.book_resyncs} resync(s)"
    )
    return line + _top_of_book(ws.book(SYMBOLS[0]))


def _top_of_book(book: Any) -> str:
    """`; BTC-USD 64250.5 x 1.2 | 64251.0 x 0.8`: the best levels of a synced book."""
    bid, ask = book.best_bid, book.best_ask
    if not book.is_synced or bid is None or ask is None:
        return ""
    return f"; {book.symbol} {bid[0]} x {bid[1]} | {ask[0]} x {ask[1]}"


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
            + (
                ", ".join(f"{r.reason} in {r.overlap * 1000:.1f} ms" for r in st.rotations)
                or "none"
            )
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
