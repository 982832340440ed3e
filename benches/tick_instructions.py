"""Instructions per S5 tick on the loop's thread, under callgrind, contenders side by side.

S5's latency on a shared 2-core machine swings by tens of µs from run to run; instruction counts
do not. Each contender runs S5's worker (`worker.py`: a tick arrives, the handler reads it and
sends an order, the ack comes back) under `valgrind --tool=callgrind --separate-threads=yes`
against the fake exchange in another process, once with N measured ticks and once with none.
The difference of the two runs' instruction counts on the worker's main thread (the event
loop's), over N, is what one tick costs that thread: the wake-up, read, parse, event, handler,
order and ack. The kernel's work is not counted. The exchange sends 100 ticks/s, so that each
tick is handled alone even at valgrind's pace. Usage, from benches/ with the release wheel,
picows and msgspec installed (see README.md):

    python tick_instructions.py [--ticks 500] [--loops asyncio,uvloop]
        [--contenders native,native-handler,picows+msgspec] [--keep DIR]

Prints a table as it goes and writes results/instructions-<timestamp>.json (the run's header as
run.py writes it, and per `contender|loop` the instructions per tick), which the README's table
is rendered from (`readme_tables.py`).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from run import header  # benches/ is on sys.path: the script's own directory

HERE = Path(__file__).resolve().parent
TX = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
WARMUP = 50
RATE = 100


def s5_worker(url: str, contender: str, loop: str, ticks: int) -> list[str]:
    """The command line of one S5 worker: `ticks` measured ticks, each answered by an order."""
    task = {
        "scenario": "s5",
        "contender": contender,
        "url": url,
        "topic": "BTC-USD@aggTrade",
        "n": ticks,
        "warmup": WARMUP,
        "every": 1,
        "tx": TX,
        "loop": loop,
    }
    return [sys.executable, str(HERE / "worker.py"), json.dumps(task)]


def run_worker(tool: list[str], url: str, contender: str, loop: str, ticks: int) -> None:
    """Runs one S5 worker under `tool` (valgrind, strace); exits naming it when it failed."""
    cmd = tool + s5_worker(url, contender, loop, ticks)
    r = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=HERE)
    result = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not result or not json.loads(result[-1]).get("ok"):
        raise SystemExit(f"{contender} {loop} failed: {r.stdout[-500:]} {r.stderr[-500:]}")


@contextmanager
def mock_exchange() -> Iterator[str]:
    """The fake exchange in a process of its own, at `RATE` ticks/s: its URL."""
    mock = subprocess.Popen(
        [sys.executable, "-m", "bullet_ws.cli", "mock-exchange", "--port", "0"]
        + ["--rate", str(RATE), "--symbols", "BTC-USD"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = mock.stdout.readline() if mock.stdout else ""
        if not line.startswith("listening on "):
            raise SystemExit(f"mock did not start: {line!r}")
        yield line.split()[-1]
    finally:
        mock.terminate()
        mock.wait(5)


def positive(text: str) -> int:
    n = int(text)
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {n}")
    return n


def tick_arguments(doc: str, ticks: int) -> argparse.ArgumentParser:
    """The options both per-tick counters take: how many ticks, on which loops, for whom."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--ticks", type=positive, default=ticks)
    ap.add_argument("--loops", default="asyncio,uvloop")
    ap.add_argument("--contenders", default="native,native-handler,picows+msgspec")
    return ap


def new_record(ticks: int, figures: str) -> dict[str, Any]:
    """A run's JSON record, `figures` (per `contender|loop`) to be filled."""
    return {
        "header": header(),
        "command": f"python {Path(sys.argv[0]).name} " + " ".join(sys.argv[1:]),
        "ticks": ticks,
        "rate": RATE,
        figures: {},
    }


def save_record(record: dict[str, Any], out: Path, kind: str) -> Path:
    """Writes `record` to OUT/<kind>-<timestamp>.json."""
    record["finished_at"] = datetime.now(timezone.utc).isoformat()
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    path = out / f"{kind}-{stamp}.json"
    path.write_text(json.dumps(record, indent=1))
    return path


def loop_thread_instructions(url: str, contender: str, loop: str, ticks: int, out: str) -> int:
    prefix = os.path.join(out, f"{contender}-{loop}-{ticks}")
    tool = [
        "valgrind",
        "--tool=callgrind",
        "--separate-threads=yes",
        f"--callgrind-out-file={prefix}.%p",
    ]
    run_worker(tool, url, contender, loop, ticks)
    (main_thread,) = glob.glob(f"{prefix}.*-01")
    with open(main_thread) as f:
        for line in f:
            if line.startswith("totals:"):
                return int(line.split()[1])
    raise SystemExit(f"no totals in {main_thread}")


def main() -> None:
    ap = tick_arguments(__doc__, ticks=500)
    ap.add_argument(
        "--keep",
        metavar="DIR",
        help="keep callgrind's output files in DIR, for callgrind_annotate (default: delete them)",
    )
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    with mock_exchange() as url:
        results = new_record(args.ticks, "instructions_per_tick")
        print(f"| contender | loop | instructions per tick ({args.ticks} ticks) |")
        print("|---|---|---:|")
        with tempfile.TemporaryDirectory() as tmp:
            out = args.keep or tmp
            os.makedirs(out, exist_ok=True)
            for loop in args.loops.split(","):
                for c in args.contenders.split(","):
                    with_ticks = loop_thread_instructions(url, c, loop, args.ticks, out)
                    without = loop_thread_instructions(url, c, loop, 0, out)
                    per_tick = round((with_ticks - without) / args.ticks)
                    results["instructions_per_tick"][f"{c}|{loop}"] = per_tick
                    print(f"| {c} | {loop} | {per_tick:,} |", flush=True)
        path = save_record(results, HERE / "results", "instructions")
        print(f"wrote {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
