"""bullet-ws benchmarks, side by side: ``python benches/run.py [--smoke | --quick] [--long]``.

Runs every contender in a fresh process (`benches/worker.py`, or the `rust_ceiling` binary),
interleaved across rounds, against the native mock exchange (`bullet-ws mock-exchange`) running in
another process (S3: in the worker's process, on the mock's own GIL-free thread, because the
CLI mock takes no faults from outside; S5: in this process, likewise, because the order arrival
times are in its records). Writes benches/results/<timestamp>.json, latest.json,
latest.md and latest.png (see benches/README.md).

Run it with the interpreter of a venv where a *release* wheel of bullet-ws is installed, from
anywhere: this script puts only benches/ on sys.path, never the repository's python/.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORKER = HERE / "worker.py"
CEILING_TARGET = REPO / "target" / "bench-release"
CEILING_BIN = CEILING_TARGET / "release" / "examples" / "rust_ceiling"

PY_CONTENDERS = [
    "native",
    "native-batch",
    "native-handler",
    # The same two with `loop_reads=False`: every read on the socket's thread, as before.
    "native-task",
    "native-handler-task",
    "pure",
    "websockets+json",
    "picows+msgspec",
]
ALL_CONTENDERS = PY_CONTENDERS + ["rust-ceiling"]
S3_CONTENDERS = ["native", "pure", "websockets+json", "picows+msgspec"]
S4_CONTENDERS = ["native", "pure"]
# S5 also runs native with `direct_write=False` (orders handed to the socket's thread), the
# way out before issue 15, side by side.
S5_EXTRA = ["native-queued", "native-early"]
# S1 variants: the live frame shapes, and aggTrade in the shape before 2026-05-23 for comparison.
TOPICS = {
    "aggTrade": "BTC-USD@aggTrade",
    "aggTrade-legacy": "BTC-USD@aggTrade",
    "depth20": "BTC-USD@depth20",
}
MOCK_OPTIONS = {"aggTrade-legacy": ["--legacy-shapes"]}


# ---------------------------------------------------------------- plan


def plan(args: argparse.Namespace) -> dict[str, Any]:
    if args.smoke:
        p = {
            "rounds": 1,
            "s1": {"aggTrade": 20_000, "aggTrade-legacy": 20_000, "depth20": 5_000},
            "s2_rates": [10_000],
            "s2_loops": ["asyncio"],
            "s2_seconds": {10_000: 0.3},
            "s2_warmup_s": 0.02,
            "s3_kinds": ["close"],
            "s3_reps": 1,
            "s3_settle": 0.05,
            "s4_seconds": 1.0,
            "s5_ticks": 200,
            "s5_warmup": 50,
        }
    elif args.quick:
        p = {
            "rounds": 5,
            "s1": {"aggTrade": 200_000, "aggTrade-legacy": 200_000, "depth20": 100_000},
            "s2_rates": [1_000, 10_000, 50_000],
            "s2_loops": ["asyncio", "uvloop"],
            "s2_seconds": {1_000: 2.0, 10_000: 1.0, 50_000: 0.4},
            "s2_warmup_s": 0.5,
            "s3_kinds": ["close", "fin", "reset"],
            "s3_reps": 3,
            "s3_settle": 0.2,
            "s4_seconds": 5.0,
            "s5_ticks": 1_000,
            "s5_warmup": 200,
        }
    else:
        # Pooled over 5 rounds: 10 k and 50 k msgs/s give >= 100 k samples per (contender, loop);
        # 1 k msgs/s gives 20 k (100 k with --long, at 20 s per run).
        p = {
            "rounds": 5,
            "s1": {"aggTrade": 1_000_000, "aggTrade-legacy": 1_000_000, "depth20": 250_000},
            "s2_rates": [1_000, 10_000, 50_000],
            "s2_loops": ["asyncio", "uvloop"],
            "s2_seconds": {1_000: 4.0, 10_000: 2.0, 50_000: 2.0},
            "s2_warmup_s": 0.5,
            "s3_kinds": ["close", "fin", "reset"],
            "s3_reps": 5,
            "s3_settle": 0.25,
            "s4_seconds": 20.0,
            "s5_ticks": 3_000,
            "s5_warmup": 500,
        }
    if args.long:
        p["s1"]["depth20"] = 1_000_000
        p["s2_seconds"][1_000] = 20.0
        p["s4_seconds"] = 600.0
    if args.rounds:
        p["rounds"] = args.rounds
    # S5 at 1 tick/ms; an order for every `s5_every`-th tick.
    p["s5_rate"] = 1_000
    p["s5_every"] = args.s5_every
    if args.s5_ticks:
        p["s5_ticks"] = args.s5_ticks
    return p


# ---------------------------------------------------------------- environment


def have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def git(*a: str) -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(REPO), *a], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def header() -> dict[str, Any]:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import bullet_ws

    rustc = ""
    if shutil.which("rustc"):
        rustc = subprocess.run(
            ["rustc", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    so = list(Path(bullet_ws.__file__).parent.glob("_core*.so"))
    return {
        "machine": {
            "cpu": cpu,
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "load_avg_at_start": os.getloadavg(),
        },
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "event_loops": {"asyncio": "stdlib", "uvloop": version("uvloop")},
        "libraries": {
            d: version(d)
            for d in [
                "bullet-ws",
                "websockets",
                "picows",
                "msgspec",
                "orjson",
                "uvloop",
                "matplotlib",
            ]
        },
        "bullet_ws_path": str(Path(bullet_ws.__file__).parent),
        "bullet_ws_backend": bullet_ws.BACKEND,
        "bullet_ws_build_profile": build_profile(),
        "bullet_ws_extension_mtime": (
            datetime.fromtimestamp(so[0].stat().st_mtime, timezone.utc).isoformat() if so else None
        ),
        "rustc": rustc,
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty_core": git(
            "status", "--porcelain", "--", "src", "python", "crates", "Cargo.toml"
        ),
    }


def build_profile() -> str | None:
    """The Cargo profile of the imported extension ("release"/"debug"), None without one."""
    try:
        from bullet_ws import _core
    except ModuleNotFoundError:
        return None
    return str(_core.build_profile)


def build_ceiling(log: Any) -> str | None:
    """Builds the rust-ceiling example (release); returns None or why it is skipped."""
    if not shutil.which("cargo"):
        return "cargo not found"
    env = dict(os.environ, CARGO_TARGET_DIR=str(CEILING_TARGET))
    r = subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--example", "rust_ceiling"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0 or not CEILING_BIN.exists():
        log(r.stderr[-2000:])
        return "cargo build --example rust_ceiling failed"
    return None


# ---------------------------------------------------------------- processes


class Mock:
    """`bullet-ws mock-exchange` in its own process."""

    def __init__(self, *extra: str) -> None:
        cmd = [sys.executable, "-m", "bullet_ws.cli", "mock-exchange", "--port", "0", *extra]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=clean_env()
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("listening on "):
            self.close()
            raise RuntimeError(f"mock did not start: {line!r}")
        self.url = line.split()[-1]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def clean_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # never the repository's python/
    return env


def run_proc(cmd: list[str], timeout: float, workdir: str) -> dict[str, Any]:
    try:
        r = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=workdir,
            env=clean_env(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timeout after {timeout:.0f}s"}
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return {"ok": False, "error": f"rc={r.returncode}: {r.stderr.strip()[-500:]}"}
    out = json.loads(lines[-1])
    if not out.get("ok"):
        out.setdefault("error", r.stderr.strip()[-500:])
    return out


# `--baseline PYTHON`: the interpreter of another build of bullet-ws, whose native contenders
# run beside this one's as "<contender>@baseline" (a change measured against the build before it,
# in the same run).
BASELINE = "@baseline"
baseline_python: str | None = None


def run_python(task: dict[str, Any], workdir: str, timeout: float) -> dict[str, Any]:
    task = dict(task, timeout=timeout - 5)
    python = sys.executable
    if task["contender"].endswith(BASELINE):
        assert baseline_python, "a baseline contender without --baseline"
        python = baseline_python
        task["contender"] = task["contender"].removesuffix(BASELINE)
    return run_proc([python, str(WORKER), json.dumps(task)], timeout, workdir)


# ---------------------------------------------------------------- statistics


def summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    med = statistics.median(values)
    return {
        "n": len(values),
        "median": med,
        "min": min(values),
        "max": max(values),
        "spread_pct": (max(values) - min(values)) / med * 100 if med else 0.0,
        "values": values,
    }


def percentiles(samples: array) -> dict[str, Any]:
    s = sorted(samples)
    n = len(s)
    if not n:
        return {"samples": 0}

    def q(p: float) -> int:
        return s[min(n - 1, int(p * n))]

    return {"samples": n, "p50": q(0.50), "p99": q(0.99), "p99.9": q(0.999), "max": s[-1]}


def read_samples(path: str) -> array:
    a = array("q")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    os.unlink(path)
    return a


# ---------------------------------------------------------------- scenarios


def rotate(xs: list[str], r: int) -> list[str]:
    k = r % len(xs) if xs else 0
    return xs[k:] + xs[:k]


def s1(p: dict[str, Any], contenders: list[str], workdir: str, log: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for variant, n in p["s1"].items():
        topic = TOPICS[variant]
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
        extra = MOCK_OPTIONS.get(variant, [])
        with Mock("--rate", "max", "--max-messages", str(n), "--preencode", *extra) as mock:
            for r in range(p["rounds"]):
                for c in rotate(contenders, r):
                    if c == "rust-ceiling":
                        res = run_proc(
                            [str(CEILING_BIN), "throughput", mock.url, topic, str(n)], 600, workdir
                        )
                    else:
                        task = {
                            "scenario": "s1",
                            "contender": c,
                            "url": mock.url,
                            "topic": topic,
                            "n": n,
                        }
                        res = run_python(task, workdir, 900)
                    runs[c].append(res)
                    if res.get("ok"):
                        log(
                            f"S1 {variant} round {r + 1} {c:16s} {res['msgs_per_s']:>12,.0f} msg/s  "
                            f"cpu {res['cpu_us_per_msg']:.2f} µs/msg  loop {res['loop_cpu_us_per_msg']:.2f}"
                        )
                    else:
                        log(f"S1 {variant} round {r + 1} {c:16s} FAILED: {res.get('error')}")
        out[variant] = {"messages": n, "contenders": {}}
        for c, rs in runs.items():
            ok = [x for x in rs if x.get("ok")]
            out[variant]["contenders"][c] = {
                "msgs_per_s": summary([x["msgs_per_s"] for x in ok]),
                "cpu_us_per_msg": summary([x["cpu_us_per_msg"] for x in ok]),
                "loop_cpu_us_per_msg": summary([x["loop_cpu_us_per_msg"] for x in ok]),
                "events_dropped": sum(x.get("events_dropped", 0) for x in ok),
                "failures": [x.get("error") for x in rs if not x.get("ok")],
            }
    return out


def read_on_loop(share: float | None) -> str:
    """For a round's log line: the share of messages the loop's thread read (native only)."""
    return "" if share is None else f", read on the loop {share:.0%}"


def loop_read_shares(rounds: list[dict[str, Any]]) -> list[float]:
    """Native: the share of messages the loop's thread read itself, per round."""
    return [x["loop_read_share"] for x in rounds if x["loop_read_share"] is not None]


def s2(
    p: dict[str, Any], contenders: list[str], loops: list[str], workdir: str, log: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    topic = TOPICS["aggTrade"]
    for rate in p["s2_rates"]:
        samples = max(int(rate * p["s2_seconds"][rate]), 100)
        warmup = max(int(rate * p["s2_warmup_s"]), 100)
        keys = [(c, lp) for c in contenders if c != "rust-ceiling" for lp in loops]
        if "rust-ceiling" in contenders:
            keys.append(("rust-ceiling", "tokio"))
        pooled: dict[tuple[str, str], array] = {k: array("q") for k in keys}
        per_round: dict[tuple[str, str], list[dict[str, Any]]] = {k: [] for k in keys}
        failures: dict[tuple[str, str], list[str]] = {k: [] for k in keys}
        with Mock("--rate", str(rate)) as mock:
            for r in range(p["rounds"]):
                for c, lp in rotate(keys, r):  # type: ignore[arg-type]
                    path = os.path.join(workdir, f"s2-{rate}-{r}-{c}-{lp}.bin")
                    timeout = 60 + 20 * (samples + warmup) / rate
                    if c == "rust-ceiling":
                        cmd = [
                            str(CEILING_BIN),
                            "latency",
                            mock.url,
                            topic,
                            str(samples),
                            str(warmup),
                            path,
                        ]
                        res = run_proc(cmd, timeout, workdir)
                    else:
                        task = {
                            "scenario": "s2",
                            "contender": c,
                            "url": mock.url,
                            "topic": topic,
                            "n": samples,
                            "warmup": warmup,
                            "loop": lp,
                            "out": path,
                        }
                        res = run_python(task, workdir, timeout)
                    if res.get("ok"):
                        a = read_samples(res["samples_file"])
                        pooled[(c, lp)].extend(a)
                        pr = percentiles(a)
                        pr["loop_read_share"] = res.get("loop_read_share")
                        per_round[(c, lp)].append(pr)
                        log(
                            f"S2 {rate:>6} msg/s round {r + 1} {c:16s} {lp:8s} p50 {pr['p50']:>7} "
                            f"p99 {pr['p99']:>7} p99.9 {pr['p99.9']:>7} µs"
                            + read_on_loop(pr["loop_read_share"])
                        )
                    else:
                        failures[(c, lp)].append(str(res.get("error")))
                        log(f"S2 {rate} round {r + 1} {c} {lp} FAILED: {res.get('error')}")
        out[str(rate)] = {
            "samples_per_run": samples,
            "warmup_per_run": warmup,
            "contenders": {
                f"{c}|{lp}": {
                    "pooled": percentiles(pooled[(c, lp)]),
                    "p99_per_round": summary([x["p99"] for x in per_round[(c, lp)]]),
                    "p99.9_per_round": summary([x["p99.9"] for x in per_round[(c, lp)]]),
                    "loop_read_share_per_round": loop_read_shares(per_round[(c, lp)]),
                    "failures": failures[(c, lp)],
                }
                for c, lp in keys
            },
        }
    return out


def s3(p: dict[str, Any], contenders: list[str], workdir: str, log: Any) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
    for r in range(p["rounds"]):
        for c in rotate(contenders, r):
            task = {
                "scenario": "s3",
                "contender": c,
                "rate": 2000,
                "kinds": p["s3_kinds"],
                "reps": p["s3_reps"],
                "settle": p["s3_settle"],
            }
            res = run_python(task, workdir, 120)
            runs[c].append(res)
            if res.get("ok"):
                med = {
                    k: round(statistics.median(v["drop_to_first_ms"]), 2)
                    if v["drop_to_first_ms"]
                    else None
                    for k, v in res["kinds"].items()
                }
                log(f"S3 round {r + 1} {c:16s} drop->first ms (median per kind) {med}")
            else:
                log(f"S3 round {r + 1} {c} FAILED: {res.get('error')}")
    out: dict[str, Any] = {"backoff_floor_ms": 10.0, "contenders": {}}
    for c, rs in runs.items():
        ok = [x for x in rs if x.get("ok")]
        kinds: dict[str, Any] = {}
        for k in p["s3_kinds"]:
            vals = [t for x in ok for t in x["kinds"][k]["drop_to_first_ms"]]
            kinds[k] = {
                "drop_to_first_ms": summary(vals),
                "lost_in_flight": sum(x["kinds"][k]["lost_in_flight"] for x in ok),
                "failures": sum(x["kinds"][k]["failures"] for x in ok),
            }
        all_vals = [t for x in ok for k in p["s3_kinds"] for t in x["kinds"][k]["drop_to_first_ms"]]
        out["contenders"][c] = {
            "kinds": kinds,
            "all_kinds_ms": summary(all_vals),
            "gaps_within_connection": sum(x["gaps_within_connection"] for x in ok),
            "duplicates": sum(x["duplicates"] for x in ok),
            "failures": [x.get("error") for x in rs if not x.get("ok")],
        }
    return out


def s4(p: dict[str, Any], contenders: list[str], workdir: str, log: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"seconds": p["s4_seconds"], "contenders": {}}
    for c in contenders:
        with Mock("--rate", "max", "--preencode") as mock:
            task = {
                "scenario": "s4",
                "contender": c,
                "url": mock.url,
                "topic": TOPICS["aggTrade"],
                "capacity": 10_000,
                "seconds": p["s4_seconds"],
                "work_us": 20,
                "sample_every": max(p["s4_seconds"] / 20, 0.1),
            }
            res = run_python(task, workdir, p["s4_seconds"] + 120)
        if res.get("ok"):
            rss = [kb for _, kb in res["rss_kb"]]
            settled = rss[len(rss) // 4 :] or rss
            res["rss_settled_growth_kb"] = settled[-1] - settled[0]
            res["rss_max_kb"] = max(rss)
            res["rss_flat"] = res["rss_settled_growth_kb"] < 8 * 1024
            log(
                f"S4 {c:8s} received {res['messages_received']:,} = delivered "
                f"{res['delivered_market'] + res['delivered_other']:,} + dropped {res['events_dropped']:,}: "
                f"{'exact' if res['exact'] else 'MISMATCH'}; RSS max {res['rss_max_kb'] / 1024:.1f} MB, "
                f"growth after warm-up {res['rss_settled_growth_kb']} kB"
            )
        else:
            log(f"S4 {c} FAILED: {res.get('error')}")
        out["contenders"][c] = res
    return out


# A fixed, small base64 transaction: the mock neither checks nor executes it.
S5_TX = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


# S5: how far the wall clock may move against the monotonic one over a run, and how many times a
# run is tried when it moves further.
CLOCK_MOVE_LIMIT_US = 200.0
CLOCK_ATTEMPTS = 3


def clock_offset_us() -> tuple[float, float]:
    """CLOCK_REALTIME - CLOCK_MONOTONIC in µs, from the tightest of a few back-to-back reads, and
    the monotonic time (µs) it was read at.

    The mock stamps `E` on the first and records arrivals on the second (the clock of
    `time.monotonic()`); both are system-wide, so the offset read here converts one into the other.
    A clock being slewed moves the offset during a run (0.5 % was seen on this machine), so a run
    reads it before and after, and arrivals are converted at the offset of their own time."""
    best = (float("inf"), 0.0, 0.0)
    for _ in range(50):
        m0 = time.monotonic_ns()
        w = time.time_ns()
        m1 = time.monotonic_ns()
        mid = (m0 + m1) / 2e3
        best = min(best, (m1 - m0, w / 1e3 - mid, mid))
    return best[1], best[2]


def order_latencies(
    frames: list[str], times: list[float], offsets: tuple[tuple[float, float], ...], skip: int
) -> array:
    """Round trips in µs of the SUBMIT frames a connection recorded, after the first `skip`:
    arrival (monotonic, made wall-clock with the offset interpolated between the two `offsets`,
    (offset, read at) before and after the run) minus the tick's `E` (the order's id)."""
    (off0, at0), (off1, at1) = offsets
    rate = (off1 - off0) / (at1 - at0) if at1 > at0 else 0.0
    out = array("q")
    seen = 0
    for text, at in zip(frames, times):
        msg = json.loads(text)
        if msg.get("method") != "SUBMIT":
            continue
        seen += 1
        if seen > skip:
            us = at * 1e6
            out.append(round(us + off0 + rate * (us - at0) - msg["id"]))
    return out


def s5(
    p: dict[str, Any], contenders: list[str], loops: list[str], workdir: str, log: Any
) -> dict[str, Any]:
    # The mock runs in this process, on its own native thread (GIL-free) while this thread waits
    # for the worker: its records (order arrival times) are then at hand. One connection per run.
    from bullet_ws.testing import MockExchange

    topic = TOPICS["aggTrade"]
    ticks, warmup, every = p["s5_ticks"], p["s5_warmup"], p["s5_every"]
    total = ticks + warmup
    expected = total // every
    skip = warmup // every
    keys = [(c, lp) for c in contenders if c != "rust-ceiling" for lp in loops]
    if "rust-ceiling" in contenders:
        keys.append(("rust-ceiling", "tokio"))
    pooled: dict[tuple[str, str], array] = {k: array("q") for k in keys}
    per_round: dict[tuple[str, str], list[dict[str, Any]]] = {k: [] for k in keys}
    failures: dict[tuple[str, str], list[str]] = {k: [] for k in keys}
    drift: list[float] = []
    timeout = 60 + 5 * total / p["s5_rate"]

    def run_one(c: str, lp: str) -> dict[str, Any]:
        if c == "rust-ceiling":
            cmd = [str(CEILING_BIN), "order", mock.url, topic, str(total), str(warmup), str(every)]
            return run_proc([*cmd, S5_TX], timeout, workdir)
        task = {
            "scenario": "s5",
            "contender": c,
            "url": mock.url,
            "topic": topic,
            "n": ticks,
            "warmup": warmup,
            "every": every,
            "tx": S5_TX,
            "loop": lp,
        }
        return run_python(task, workdir, timeout)

    with MockExchange(rate=p["s5_rate"], symbols=["BTC-USD"], max_messages=total) as mock:
        for r in range(p["rounds"]):
            for c, lp in rotate(keys, r):  # type: ignore[arg-type]
                # The wall clock of this machine was seen moving against the monotonic one by
                # 12.5 ms, once 5.9 s, over one run: such a run measures that, so it runs again.
                for _ in range(CLOCK_ATTEMPTS):
                    index = mock.handshakes  # the record index of this run's connection
                    off0 = clock_offset_us()
                    res = run_one(c, lp)
                    off1 = clock_offset_us()
                    moved = abs(off1[0] - off0[0])
                    if moved <= CLOCK_MOVE_LIMIT_US:
                        break
                    log(f"S5 round {r + 1} {c} {lp}: the wall clock moved {moved:.0f} µs, again")
                drift.append(moved)
                if moved > CLOCK_MOVE_LIMIT_US:
                    res = {"ok": False, "error": f"the wall clock moved {moved:.0f} µs"}
                a = array("q")
                if res.get("ok"):
                    rec = mock.connection(index)
                    a = order_latencies(rec.frames, rec.frame_times, (off0, off1), skip)
                    if len(a) + skip != expected:
                        res = {
                            "ok": False,
                            "error": f"{len(a) + skip} orders recorded, {expected} expected",
                        }
                if res.get("ok"):
                    pooled[(c, lp)].extend(a)
                    pr = percentiles(a)
                    pr["inbound_p50"], pr["inbound_p99"] = res["inbound_p50"], res["inbound_p99"]
                    pr["sent_p50"] = res["sent_p50"]
                    pr["cpu"] = res.get("loop_cpu_us_per_tick")
                    pr["loop_read_share"] = res.get("loop_read_share")
                    per_round[(c, lp)].append(pr)
                    log(
                        f"S5 round {r + 1} {c:16s} {lp:8s} p50 {pr['p50']:>6} p99 {pr['p99']:>6} "
                        f"p99.9 {pr['p99.9']:>6} max {pr['max']:>6} µs (tick->handler p50 {pr['inbound_p50']}, ->sent {pr['sent_p50']}, loop CPU/tick {pr['cpu']}"
                        + read_on_loop(pr["loop_read_share"])
                        + ")"
                    )
                else:
                    failures[(c, lp)].append(str(res.get("error")))
                    log(f"S5 round {r + 1} {c} {lp} FAILED: {res.get('error')}")
    return {
        "rate": p["s5_rate"],
        "ticks_per_run": ticks,
        "warmup_per_run": warmup,
        "every": every,
        "clock_offset_drift_us_max": max(drift, default=0.0),
        "contenders": {
            f"{c}|{lp}": {
                "pooled": percentiles(pooled[(c, lp)]),
                "p50_per_round": summary([x["p50"] for x in per_round[(c, lp)]]),
                "p99_per_round": summary([x["p99"] for x in per_round[(c, lp)]]),
                # Client clock: the stamp-to-handler half of the trip (S2's measure), per round.
                "inbound_p50_per_round": summary([x["inbound_p50"] for x in per_round[(c, lp)]]),
                "inbound_p99_per_round": summary([x["inbound_p99"] for x in per_round[(c, lp)]]),
                # Client clock: stamp to the return of the order's send call.
                "sent_p50_per_round": summary([x["sent_p50"] for x in per_round[(c, lp)]]),
                # CPU time of the loop's thread per measured tick (µs), per round.
                "loop_cpu_us_per_tick_per_round": summary(
                    [x["cpu"] for x in per_round[(c, lp)] if x["cpu"] is not None]
                ),
                "loop_read_share_per_round": loop_read_shares(per_round[(c, lp)]),
                "failures": failures[(c, lp)],
            }
            for c, lp in keys
        },
    }


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument(
        "--smoke", action="store_true", help="every contender and scenario, in seconds (CI)"
    )
    mode.add_argument("--quick", action="store_true", help="fewer messages and samples (minutes)")
    ap.add_argument(
        "--long",
        action="store_true",
        help="1 M depth frames, 100 k samples at 1 k msgs/s, 10 min soak",
    )
    ap.add_argument("--rounds", type=int, help="override the number of rounds")
    ap.add_argument(
        "--out",
        type=Path,
        help="results directory (default benches/results; smoke: benches/results/smoke)",
    )
    ap.add_argument("--only", help="comma-separated scenarios to run, e.g. s1,s5 (default all)")
    ap.add_argument("--s5-ticks", type=int, help="S5: measured ticks per run (after the warm-up)")
    ap.add_argument(
        "--s5-every", type=int, default=1, help="S5: an order for every k-th tick (default 1)"
    )
    ap.add_argument("--contenders", help="comma-separated subset of contenders")
    ap.add_argument(
        "--baseline",
        metavar="PYTHON",
        help="an interpreter with another build of bullet-ws: its native contenders run too, "
        "as <contender>@baseline",
    )
    args = ap.parse_args(argv)
    if args.s5_every < 1 or (args.s5_ticks is not None and args.s5_ticks < 1):
        ap.error("--s5-every and --s5-ticks must be >= 1")
    profile = build_profile()
    if profile not in ("release", None):  # None: no extension, refused below with its reason
        # A debug build is several times slower: its numbers would be published as ours.
        raise SystemExit(
            f"bullet_ws's extension is a {profile} build: benchmark a release wheel "
            "(maturin build --release, or pip install .)"
        )
    p = plan(args)
    out_dir = args.out or (HERE / "results" / "smoke" if args.smoke else HERE / "results")
    out_dir.mkdir(parents=True, exist_ok=True)
    only = set((args.only or "s1,s2,s3,s4,s5").split(","))
    t_start = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t_start:7.1f}s] {msg}", flush=True)

    notes: list[str] = []
    contenders = list(ALL_CONTENDERS)
    if args.contenders:
        contenders = [c for c in contenders if c in args.contenders.split(",")]
    if args.baseline:
        global baseline_python
        baseline_python = args.baseline
        contenders += [c + BASELINE for c in contenders if c.startswith("native")]
    if not (have("picows") and have("msgspec")) and "picows+msgspec" in contenders:
        contenders.remove("picows+msgspec")
        notes.append("picows+msgspec skipped: picows or msgspec is not installed")
    if "rust-ceiling" in contenders:
        why = build_ceiling(log)
        if why:
            contenders.remove("rust-ceiling")
            notes.append(f"rust-ceiling skipped: {why}")
    loops = list(p["s2_loops"])
    if "uvloop" in loops and not have("uvloop"):
        loops.remove("uvloop")
        notes.append("uvloop skipped: not installed")

    hdr = header()
    if REPO / "python" in Path(hdr["bullet_ws_path"]).parents or hdr["bullet_ws_path"] == str(
        REPO / "python" / "bullet_ws"
    ):
        notes.append(
            "WARNING: bullet_ws is imported from the repository's python/ (maybe a debug build)"
        )
    if hdr["bullet_ws_backend"] != "native":
        raise SystemExit(
            "bullet_ws has no native extension in this interpreter: install a release wheel"
        )
    mode_name = "smoke" if args.smoke else "quick" if args.quick else "full"
    if args.long:
        mode_name += "+long"
    log(f"mode {mode_name}; contenders {contenders}; loops {loops}; rounds {p['rounds']}")
    log(f"bullet_ws from {hdr['bullet_ws_path']}; commit {hdr['git_commit'][:12]}")
    for n in notes:
        log(n)

    results: dict[str, Any] = {
        "header": hdr,
        "mode": mode_name,
        "command": " ".join([Path(sys.executable).name, "benches/run.py", *(argv or sys.argv[1:])]),
        "plan": {
            k: (v if not isinstance(v, dict) else {str(a): b for a, b in v.items()})
            for k, v in p.items()
        },
        "contenders": contenders,
        "loops": loops,
        "notes": notes,
    }
    with tempfile.TemporaryDirectory(prefix="bw-bench-") as workdir:
        if "s1" in only:
            results["s1"] = s1(p, contenders, workdir, log)
        if "s2" in only:
            results["s2"] = s2(p, contenders, loops, workdir, log)
        if "s3" in only:
            results["s3"] = s3(p, [c for c in S3_CONTENDERS if c in contenders], workdir, log)
        if "s4" in only:
            results["s4"] = s4(p, [c for c in S4_CONTENDERS if c in contenders], workdir, log)
        if "s5" in only:
            extra = [c for c in S5_EXTRA if "native" in contenders]
            results["s5"] = s5(p, contenders + extra, loops, workdir, log)
    results["elapsed_s"] = time.monotonic() - t_start
    results["finished_at"] = datetime.now(timezone.utc).isoformat()

    import report

    results["targets"] = report.targets(results)
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    text = json.dumps(results, indent=1)
    (out_dir / f"{stamp}.json").write_text(text)
    (out_dir / "latest.json").write_text(text)
    md = report.markdown(results)
    (out_dir / "latest.md").write_text(md)
    png_note = report.plot(results, out_dir / "latest.png")
    if png_note:
        log(png_note)
    print(md)
    log(
        f"wrote {out_dir}/{stamp}.json, latest.json, latest.md"
        + ("" if png_note else ", latest.png")
    )
    failed = any(
        v.get("failures")
        for sc in ("s1",)
        if sc in results
        for var in results[sc].values()
        for v in var["contenders"].values()
    ) or any(v["failures"] for v in results.get("s5", {}).get("contenders", {}).values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
