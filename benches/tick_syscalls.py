"""System calls per S5 tick, on the loop's thread and on the others, contenders side by side.

The kernel's work is what `tick_instructions.py` does not count. Each contender runs S5's worker
under `strace -f -ff` (one trace per thread) against the fake exchange in another process, once
with N measured ticks and once with none; the difference, over N, is what one tick costs in
system calls: the loop thread's wake-up, reads and the order's write, and any other thread a
tick wakes. strace slows every call, so the counts are what to read, not the times. Usage, from
benches/ with the release wheel, picows and msgspec installed (see README.md):

    python tick_syscalls.py [--ticks 300] [--loops asyncio,uvloop]
        [--contenders native,native-handler,picows+msgspec] [--out DIR]

Prints a table and writes results/syscalls-<timestamp>.json (the run's header as run.py writes
it, and per `contender|loop` the calls per tick by name, for the loop's thread and the others).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from tick_instructions import (  # benches/ is on sys.path
    mock_exchange,
    new_record,
    run_worker,
    save_record,
    tick_arguments,
)

HERE = Path(__file__).resolve().parent
# A call's line starts with its name; one that strace split in two is counted at its start
# (the `<... name resumed>` line does not match).
CALL = re.compile(r"^(\w+)\(")
Threads = tuple[Counter[str], Counter[str]]


def traced(url: str, contender: str, loop: str, ticks: int, out: str) -> Threads:
    """The loop thread's system calls and the other threads' together, by name."""
    prefix = os.path.join(out, f"{contender}-{loop}-{ticks}")
    run_worker(["strace", "-f", "-ff", "-o", prefix], url, contender, loop, ticks)
    files = glob.glob(prefix + ".*")
    # The worker is strace's child: its first thread, the event loop's, has the lowest id.
    main = min(files, key=lambda f: int(f.rsplit(".", 1)[1]))
    loop_calls: Counter[str] = Counter()
    other: Counter[str] = Counter()
    for f in files:
        into = loop_calls if f == main else other
        with open(f) as lines:
            for line in lines:
                m = CALL.match(line)
                if m:
                    into[m.group(1)] += 1
        os.remove(f)
    return loop_calls, other


def per_tick(with_ticks: Counter[str], without: Counter[str], ticks: int) -> dict[str, float]:
    names = set(with_ticks) | set(without)
    rates = {n: round((with_ticks[n] - without[n]) / ticks, 2) for n in names}
    return dict(sorted(((n, r) for n, r in rates.items() if abs(r) >= 0.05), key=lambda x: -x[1]))


def shown(calls: dict[str, float]) -> str:
    return ", ".join(f"{n} {r:g}" for n, r in calls.items()) or "-"


def main() -> None:
    ap = tick_arguments(__doc__, ticks=300)
    ap.add_argument("--out", type=Path, default=HERE / "results", help="where the JSON goes")
    args = ap.parse_args()
    if shutil.which("strace") is None:
        raise SystemExit("strace is not installed")
    with mock_exchange() as url:
        results = new_record(args.ticks, "syscalls_per_tick")
        print(f"| contender | loop | loop thread, per tick ({args.ticks} ticks) | other threads |")
        print("|---|---|---|---|")
        with tempfile.TemporaryDirectory() as out:
            for loop in args.loops.split(","):
                for c in args.contenders.split(","):
                    loop_n, other_n = traced(url, c, loop, args.ticks, out)
                    loop_0, other_0 = traced(url, c, loop, 0, out)
                    row = {
                        "loop_thread": per_tick(loop_n, loop_0, args.ticks),
                        "other_threads": per_tick(other_n, other_0, args.ticks),
                    }
                    results["syscalls_per_tick"][f"{c}|{loop}"] = row
                    print(
                        f"| {c} | {loop} | {shown(row['loop_thread'])} "
                        f"| {shown(row['other_threads'])} |",
                        flush=True,
                    )
        path = save_record(results, args.out, "syscalls")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
