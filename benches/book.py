"""Order-book maintenance cost per depth20 update: ``python benches/book.py [--smoke | --quick]``.

Contenders, each in a fresh process against ``bullet-ws mock-exchange --rate max`` (another
process) streaming ``BTC-USD@depth20`` (a snapshot, then 1-3-level diffs, a snapshot every 100):

* ``native``: ``bullet_ws.connect``; the book is kept in Rust on the socket's tokio thread. Per
  update the handler reads ``book.bids(5)`` and ``book.asks(5)``.
* ``pure``: ``bullet_ws.pure.connect``; the book is kept on the loop thread; same reads.
* ``picows+msgspec+dict``: picows ``on_ws_frame``, a ``msgspec.Struct`` of the depth frame as a
  user would write it, levels applied to two dicts keyed by the price string (a quantity that is
  numerically zero removes the level; a snapshot replaces the book; ``pu`` checked against the last
  ``u``), then the top 5 of each side by ``sorted(..., key=float)``.
* ``picows+msgspec-nobook``: the same decode with no book (reads the frame's first 5 levels): the
  floor under the dict book, to tell its book cost from its decode cost.

Per contender: updates/s from the SUBSCRIBE to the N-th depth message, CPU µs per update of the whole
process (``getrusage``: the tokio threads count for native) and of the loop thread alone
(``time.thread_time()``), and the cost of one top-5 read of both sides, timed afterwards in a
tight loop on the final book (``read_us``). Median over rounds, contenders interleaved (rotated).
Results: ``benches/results/book-<stamp>.json`` and ``book-latest.md`` (smoke: under
``results/smoke/``). Same rules as ``benches/run.py`` (benches/README.md): a release build, run
from where the repository's ``python/`` is not on ``sys.path``.

``--instructions`` adds instructions per update under callgrind (see benches/README.md).
``python benches/book.py --worker '<task json>'`` is one run (used by the harness).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SYMBOL = "BTC-USD"
TOPIC = f"{SYMBOL}@depth20"
CONTENDERS = ["native", "pure", "picows+msgspec+dict", "picows+msgspec-nobook"]
READS = 20_000  # top-5 reads timed at the end of a run


def _cpu_us() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return (ru.ru_utime + ru.ru_stime) * 1e6


class Meter:
    """The window runs from just before the SUBSCRIBE to the N-th update: the socket thread of
    the native backend parses ahead of the loop, so a window opened at the first update the loop
    sees would miss that work."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.t0 = self.cpu0 = self.th0 = 0.0
        self.t1 = self.cpu1 = self.th1 = 0.0

    def start(self) -> None:
        self.t0, self.cpu0, self.th0 = time.perf_counter(), _cpu_us(), time.thread_time() * 1e6

    def hit(self) -> bool:
        """Called once per depth update; True when the N-th arrived."""
        self.count += 1
        if self.count >= self.n:
            self.t1, self.cpu1, self.th1 = time.perf_counter(), _cpu_us(), time.thread_time() * 1e6
            return True
        return False

    def result(self) -> dict[str, Any]:
        measured = max(self.count, 1)
        secs = max(self.t1 - self.t0, 1e-9)
        return {
            "updates": self.count,
            "updates_per_s": measured / secs,
            "cpu_us_per_update": (self.cpu1 - self.cpu0) / measured,
            "loop_us_per_update": (self.th1 - self.th0) / measured,
        }


def time_reads(read: Any) -> float:
    """µs per call of `read()`, over READS calls."""
    t = time.perf_counter()
    for _ in range(READS):
        read()
    return (time.perf_counter() - t) / READS * 1e6


# ---------------------------------------------------------------- bullet_ws (native and pure)


async def run_bullet(task: dict[str, Any], pure: bool) -> dict[str, Any]:
    if pure:
        import bullet_ws.pure as bw
    else:
        import bullet_ws as bw

        assert bw.BACKEND == "native", "the native extension is missing"
    m = Meter(task["n"])
    depth, gap_cls = bw.DepthUpdate, bw.BookGap
    gaps = 0
    # A queue that never drops: every update reaches the handler.
    ws = await bw.connect(task["url"], idle_timeout=0, channel_capacity=task["n"] + 1000)
    m.start()
    ws.subscribe([TOPIC], id=1)
    book = ws.book(SYMBOL)
    bids, asks = book.bids, book.asks
    done = False
    while not done:
        events = await ws.recv_batch(1024)
        if not events:
            break
        for ev in events:
            if type(ev) is depth:
                bids(5), asks(5)
                if m.hit():
                    done = True
                    break
            elif type(ev) is gap_cls:
                gaps += 1
    synced = book.is_synced
    read_us = time_reads(lambda: (bids(5), asks(5)))
    stats = ws.stats
    await ws.close()
    return dict(
        m.result(), read_us=read_us, gaps=gaps, synced=synced, events_dropped=stats.events_dropped
    )


# ---------------------------------------------------------------- picows + msgspec


def depth_struct() -> Any:
    import msgspec

    # The depth frame as a user would declare it (PROTOCOL.md §3.6).
    class Depth(msgspec.Struct):
        e: str
        E: int
        T: int
        s: str
        U: int
        u: int
        pu: int
        b: list[tuple[str, str]]
        a: list[tuple[str, str]]
        mt: str = "u"

    return Depth, msgspec.DecodeError


class DictBook:
    """Two dicts keyed by the price string; top-N by sorting on the float price."""

    def __init__(self) -> None:
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.last_u = 0
        self.synced = False
        self.gaps = 0

    def apply(self, d: Any) -> None:
        if d.mt == "s":
            self.bids.clear()
            self.asks.clear()
            self.synced = True
        elif d.pu != self.last_u:
            self.gaps += 1
            self.synced = False  # a real client resubscribes here
            return
        for side, levels in ((self.bids, d.b), (self.asks, d.a)):
            for price, qty in levels:
                if float(qty) == 0.0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        self.last_u = d.u

    def top(self, n: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        bids = sorted(self.bids.items(), key=_price, reverse=True)[:n]
        asks = sorted(self.asks.items(), key=_price)[:n]
        return bids, asks


def _price(level: tuple[str, str]) -> float:
    return float(level[0])


async def run_picows(task: dict[str, Any], with_book: bool) -> dict[str, Any]:
    from picows import WSListener, WSMsgType, ws_connect

    Depth, DecodeError = depth_struct()
    import msgspec

    decode = msgspec.json.Decoder(Depth).decode
    m = Meter(task["n"])
    book = DictBook()
    apply, top = book.apply, book.top
    TEXT, CLOSE = WSMsgType.TEXT, WSMsgType.CLOSE
    sub = json.dumps({"method": "SUBSCRIBE", "id": 1, "params": [TOPIC]}).encode()

    class Listener(WSListener):  # type: ignore[misc]
        stopped = False

        def on_ws_connected(self, transport: Any) -> None:
            m.start()
            transport.send(TEXT, sub)

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if self.stopped:
                return
            if frame.msg_type == TEXT:
                try:
                    d = decode(frame.get_payload_as_memoryview())
                except DecodeError:
                    return  # the status and the subscribe ack
                if with_book:
                    apply(d)
                    top(5)
                else:
                    d.b[:5], d.a[:5]
                if m.hit():
                    self.stopped = True
                    transport.disconnect()
            elif frame.msg_type == CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()

    transport, _ = await ws_connect(Listener, task["url"], max_frame_size=16 << 20)
    await transport.wait_disconnected()
    out = dict(m.result(), gaps=book.gaps, synced=book.synced if with_book else None)
    out["read_us"] = time_reads(lambda: top(5)) if with_book else None
    return out


async def worker(task: dict[str, Any]) -> dict[str, Any]:
    c = task["contender"]
    if c in ("native", "pure"):
        return await run_bullet(task, pure=c == "pure")
    if c.startswith("picows+msgspec"):
        return await run_picows(task, with_book=c == "picows+msgspec+dict")
    raise ValueError(f"unknown contender {c!r}")


# ---------------------------------------------------------------- instruction counts


def callgrind_totals(directory: Path) -> dict[int, int]:
    """Instructions per thread (valgrind's thread number: 1 is the main thread, the event loop's)
    from the `--separate-threads=yes` files of one run."""
    out: dict[int, int] = {}
    for f in directory.glob("cg.out-*"):
        thread = int(f.name.rsplit("-", 1)[1])
        with f.open() as fh:
            for line in fh:
                if line.startswith("summary:"):
                    out[thread] = int(line.split()[1])
                    break
    return out


def instructions(
    run: Any, contenders: list[str], sizes: tuple[int, int], log: Any
) -> dict[str, Any]:
    """Instructions per update under callgrind, independent of the machine's load: each contender
    runs twice (n1 and n2 updates) and the difference over n2 - n1 cancels the start-up, the
    connect and the timed reads. Valgrind runs one thread at a time, which changes how the socket
    thread and the loop interleave (batch sizes): a check on the wall-clock figures, not a
    replacement for them."""
    n1, n2 = sizes
    out: dict[str, Any] = {}
    for c in contenders:
        totals: dict[int, dict[int, int]] = {}
        for n in sizes:
            with (
                tempfile.TemporaryDirectory(prefix="bw-book-cg-") as d,
                run.Mock("--rate", "max", "--max-messages", str(n)) as mock,
            ):
                task = {"contender": c, "url": mock.url, "n": n, "timeout": 1500}
                res = run.run_proc(
                    [
                        "valgrind",
                        "--tool=callgrind",
                        "--separate-threads=yes",
                        f"--callgrind-out-file={d}/cg.out",
                        sys.executable,
                        str(Path(__file__).resolve()),
                        "--worker",
                        json.dumps(task),
                    ],
                    1800,
                    d,
                )
                if not res.get("ok"):
                    log(f"instructions {c} n={n} FAILED: {res.get('error')}")
                    break
                totals[n] = callgrind_totals(Path(d))
        if len(totals) < 2:
            out[c] = None
            continue
        per = n2 - n1
        process = (sum(totals[n2].values()) - sum(totals[n1].values())) / per
        loop = (totals[n2].get(1, 0) - totals[n1].get(1, 0)) / per
        out[c] = {"process_ir_per_update": process, "loop_ir_per_update": loop}
        log(f"instructions {c:22s} process {process:>9,.0f} Ir/update  loop {loop:>9,.0f}")
    return out


# ---------------------------------------------------------------- harness


def markdown(results: dict[str, Any]) -> str:
    hdr = results["header"]
    rows = [
        (
            f"# Order book per depth20 update ({results['mode']}, {results['rounds']} round(s), "
            f"{results['updates']:,} updates per run)"
        ),
        "",
        (
            f"{hdr['machine']['cpu']} ({hdr['machine']['cores']} cores, load "
            f"{hdr['machine']['load_avg_at_start'][0]:.1f}); {hdr['python']}; bullet-ws "
            f"{hdr['libraries'].get('bullet-ws')}; commit {hdr['git_commit'][:12]}"
            + (" (uncommitted changes)" if hdr["git_dirty_core"] else "")
        ),
        "",
        "| contender | updates/s | CPU µs/update (process) | loop thread µs/update | top-5 read µs | gaps |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for c, r in results["contenders"].items():
        if not r["ok"]:
            rows.append(f"| {c} | failed: {r['failures'][:1]} | | | | |")
            continue

        def med(key: str, fmt: str, r: dict[str, Any] = r) -> str:
            v = r[key]
            return "-" if v is None else format(v, fmt)

        rows.append(
            f"| {c} | {med('updates_per_s', ',.0f')} | {med('cpu_us_per_update', '.2f')} | "
            f"{med('loop_us_per_update', '.2f')} | {med('read_us', '.2f')} | {r['gaps']} |"
        )
    if results.get("instructions"):
        n1, n2 = results["instruction_sizes"]
        rows += [
            "",
            f"Instructions per update (callgrind, runs of {n1:,} and {n2:,} updates, difference):",
            "",
            "| contender | process Ir/update | loop thread Ir/update |",
            "|---|---:|---:|",
        ]
        for c, r in results["instructions"].items():
            if r is None:
                rows.append(f"| {c} | failed | |")
            else:
                rows.append(
                    f"| {c} | {r['process_ir_per_update']:,.0f} | {r['loop_ir_per_update']:,.0f} |"
                )
    rows += ["", *(f"- {n}" for n in results["notes"])]
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_true", help="one short round of each (CI)")
    mode.add_argument("--quick", action="store_true", help="3 rounds of 20 k updates")
    mode.add_argument("--worker", metavar="TASK", help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, help="override the number of rounds")
    ap.add_argument("--updates", type=int, help="override the updates per run")
    ap.add_argument("--out", type=Path, help="results directory")
    ap.add_argument(
        "--instructions",
        action="store_true",
        help="also count instructions per update under callgrind (valgrind; minutes)",
    )
    args = ap.parse_args(argv)
    if args.worker:
        task = json.loads(args.worker)
        try:
            result = asyncio.run(asyncio.wait_for(worker(task), task["timeout"]))
        except BaseException as e:  # report, do not hang the harness
            print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}), flush=True)
            raise SystemExit(1) from e
        result["ok"] = True
        print(json.dumps(result), flush=True)
        return 0

    import run  # benches/run.py: the mock process, the environment, the header

    profile = run.build_profile()
    if profile not in ("release", None):
        raise SystemExit(f"bullet_ws's extension is a {profile} build: benchmark a release build")
    mode_name = "smoke" if args.smoke else "quick" if args.quick else "full"
    rounds = args.rounds or (1 if args.smoke else 3 if args.quick else 5)
    n = args.updates or (3_000 if args.smoke else 20_000 if args.quick else 200_000)
    out_dir = args.out or (HERE / "results" / "smoke" if args.smoke else HERE / "results")
    out_dir.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    contenders = list(CONTENDERS)
    if not (run.have("picows") and run.have("msgspec")):
        contenders = [c for c in contenders if not c.startswith("picows")]
        notes.append("picows+msgspec skipped: picows or msgspec is not installed")
    hdr = run.header()
    if hdr["bullet_ws_backend"] != "native":
        raise SystemExit("bullet_ws has no native extension in this interpreter")
    t_start = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t_start:7.1f}s] {msg}", flush=True)

    log(f"mode {mode_name}; {rounds} round(s) of {n:,} updates; contenders {contenders}")
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
    # The whole depth stream of a run comes from the mock: N frames, then it stops streaming.
    with (
        tempfile.TemporaryDirectory(prefix="bw-book-") as workdir,
        run.Mock("--rate", "max", "--max-messages", str(n)) as mock,
    ):
        for r in range(rounds):
            for c in run.rotate(contenders, r):
                task = {"contender": c, "url": mock.url, "n": n, "timeout": 600}
                res = run.run_proc(
                    [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(task)],
                    660,
                    workdir,
                )
                runs[c].append(res)
                if res.get("ok"):
                    read = res["read_us"]
                    log(
                        f"round {r + 1} {c:22s} {res['updates_per_s']:>10,.0f} upd/s  cpu "
                        f"{res['cpu_us_per_update']:.2f} µs  loop {res['loop_us_per_update']:.2f} µs"
                        f"  read {'-' if read is None else format(read, '.2f')} µs"
                    )
                else:
                    log(f"round {r + 1} {c:22s} FAILED: {res.get('error')}")
    counted: dict[str, Any] | None = None
    sizes = (2_000, 6_000)
    if args.instructions:
        if shutil.which("valgrind") is None:
            notes.append("instruction counts skipped: valgrind is not installed")
        else:
            counted = instructions(run, contenders, sizes, log)
    summary: dict[str, Any] = {}
    failed = False
    for c, rs in runs.items():
        ok = [x for x in rs if x.get("ok")]
        failures = [x.get("error") for x in rs if not x.get("ok")]
        failed |= bool(failures) or any(x.get("synced") is False for x in ok)
        entry: dict[str, Any] = {"ok": bool(ok), "failures": failures, "runs": rs}
        for key in ("updates_per_s", "cpu_us_per_update", "loop_us_per_update", "read_us"):
            values = [x[key] for x in ok if x.get(key) is not None]
            entry[key] = statistics.median(values) if values else None
        entry["gaps"] = sum(x.get("gaps", 0) for x in ok)
        summary[c] = entry
    results = {
        "header": hdr,
        "mode": mode_name,
        "rounds": rounds,
        "updates": n,
        "command": " ".join(
            [Path(sys.executable).name, "benches/book.py", *(argv or sys.argv[1:])]
        ),
        "contenders": summary,
        "instructions": counted,
        "instruction_sizes": sizes,
        "notes": notes,
        "finished_at": datetime.now(timezone.utc).isoformat(),
    }
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    (out_dir / f"book-{stamp}.json").write_text(json.dumps(results, indent=1))
    md = markdown(results)
    (out_dir / "book-latest.md").write_text(md)
    print(md)
    log(f"wrote {out_dir}/book-{stamp}.json, book-latest.md")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
