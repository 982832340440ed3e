"""Where does a contender's CPU go? ``python benches/profile.py [contender] [--topic T] [--n N]``.

Runs one S1 throughput worker against a flooding CLI mock under ``perf record -e cpu-clock -g``
(software clock: works where hardware counters do not) and prints, per thread (the loop thread
is the process's main thread, ``python``; the native backend's tokio thread is ``bullet-ws-io``),
the share of samples per DSO and the top self-time symbols. With ``--py-spy`` it also records the
Python stacks of the loop thread with py-spy (``--native``) and prints the top frames. With
``--callers SYMBOL`` it records again with DWARF call graphs (release builds keep no frame
pointers) and prints who calls SYMBOL on the socket thread, e.g. ``--callers
__memmove_avx512_unaligned_erms``.

Needs ``perf`` (and ``py-spy`` for ``--py-spy``); run from the benchmark venv, as run.py.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import WORKER, Mock, clean_env


def perf_profile(cmd: list[str], workdir: str, top: int) -> None:
    data = os.path.join(workdir, "perf.data")
    subprocess.run(
        ["perf", "record", "-q", "-e", "cpu-clock", "-F", "2000", "-g", "-o", data, "--", *cmd],
        cwd=workdir,
        env=clean_env(),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    rep = subprocess.run(
        [
            "perf",
            "report",
            "-i",
            data,
            "--no-children",
            "--sort",
            "comm,dso,sym",
            "--stdio",
            "-g",
            "none",
            "--percent-limit",
            "0.3",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    by_comm: dict[str, list[tuple[float, str, str]]] = collections.defaultdict(list)
    for line in rep.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "%" not in line.split()[0]:
            continue
        parts = line.split(None, 3)
        if len(parts) < 4:
            continue
        pct = float(parts[0].rstrip("%"))
        comm, dso, sym = parts[1], parts[2], parts[3]
        by_comm[comm].append((pct, dso, sym))
    for comm, rows in sorted(by_comm.items(), key=lambda kv: -sum(r[0] for r in kv[1])):
        total = sum(r[0] for r in rows)
        print(f"\n== thread {comm}: {total:.1f}% of all samples (symbols >= 0.3%)")
        dsos: dict[str, float] = collections.defaultdict(float)
        for pct, dso, _ in rows:
            dsos[dso] += pct
        print(
            "   by DSO: "
            + ", ".join(f"{d} {p:.1f}%" for d, p in sorted(dsos.items(), key=lambda x: -x[1])[:6])
        )
        for pct, dso, sym in rows[:top]:
            print(f"   {pct:5.1f}%  {dso:28.28s} {sym[:110]}")


def callers_profile(cmd: list[str], workdir: str, symbol: str) -> None:
    data = os.path.join(workdir, "perf-dwarf.data")
    subprocess.run(
        ["perf", "record", "-q", "-e", "cpu-clock", "-F", "1500", "--call-graph", "dwarf,16384"]
        + ["-o", data, "--", *cmd],
        cwd=workdir,
        env=clean_env(),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    rep = subprocess.run(
        ["perf", "report", "-i", data, "--no-children", "--comm", "bullet-ws-io"]
        + ["--symbols", symbol, "-g", "caller,0.5,callee,function,percent", "--stdio"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # Only the frames of this crate and of tungstenite: the runtime's own frames are the same
    # for every caller.
    keep = ("%--", "bullet_ws", "tungstenite", "compact_str")
    print(f"\n== callers of {symbol} on the socket thread (% of all samples)")
    for line in rep.splitlines():
        if any(k in line for k in keep) and "tokio::runtime" not in line:
            print("  " + line.rstrip()[:150])


def pyspy_profile(cmd: list[str], workdir: str, top: int) -> None:
    out = os.path.join(workdir, "pyspy.txt")
    subprocess.run(
        ["py-spy", "record", "--native", "-r", "1000", "-f", "raw", "-o", out, "--", *cmd],
        cwd=workdir,
        env=clean_env(),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    leaf: dict[str, int] = collections.Counter()
    total = 0
    with open(out) as f:
        for line in f:
            stack, _, n = line.rstrip().rpartition(" ")
            frames = stack.split(";")
            total += int(n)
            leaf[frames[-1]] += int(n)
    print(f"\n== py-spy (--native), {total} samples, top leaf frames:")
    for f, n in leaf.most_common(top):
        print(f"   {100 * n / total:5.1f}%  {f[:130]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("contender", nargs="?", default="native")
    ap.add_argument("--topic", default="BTC-USD@aggTrade")
    ap.add_argument("--n", type=int, default=500_000)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--py-spy", action="store_true")
    ap.add_argument("--callers", metavar="SYMBOL", help="who calls SYMBOL on the socket thread")
    a = ap.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bw-prof-") as workdir,
        Mock("--rate", "max", "--max-messages", str(a.n), "--preencode") as mock,
    ):
        task = {
            "scenario": "s1",
            "contender": a.contender,
            "url": mock.url,
            "topic": a.topic,
            "n": a.n,
        }
        cmd = [sys.executable, str(WORKER), json.dumps(task)]
        print(f"profiling {a.contender} on {a.topic}, {a.n:,} messages")
        perf_profile(cmd, workdir, a.top)
        if a.py_spy:
            pyspy_profile(cmd, workdir, a.top)
        if a.callers:
            callers_profile(cmd, workdir, a.callers)


if __name__ == "__main__":
    main()
