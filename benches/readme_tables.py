"""The README's benchmark tables, rendered from the run they quote, so that no figure is copied.

Each table sits between two markers that name its kind and its run:

    <!-- table s5 from benches/results/20261205T072549.json -->
    | client | asyncio | uvloop |
    ...
    <!-- end of table -->

Kinds: `s1` (throughput, live aggTrade and depth20), `s5` (tick to order, p50 / p99) and `s2`
(latency at 10 k msgs/s on asyncio). Usage, from the repository's root:

    python benches/readme_tables.py            # rewrites the tables from their runs
    python benches/readme_tables.py --check    # exits 1, naming the table, when one differs
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from report import PICOWS  # benches/ is on sys.path: the script's own directory

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"<!-- table (?P<kind>\w+) from (?P<run>\S+\.json) -->\n")
END = "<!-- end of table -->"

WEBSOCKETS = "websockets+json"

LABELS = {
    "native": "bullet-ws native, `async for`",
    "native-batch": "bullet-ws native, `recv_batch`",
    "native-handler": "bullet-ws native, `set_handler`",
    "native-early": "bullet-ws native, `inbound_spin=0.0002`",
    "native-task": "bullet-ws native, `async for`, `loop_reads=False`",
    "native-handler-task": "bullet-ws native, `set_handler`, `loop_reads=False`",
    "native-queued": "bullet-ws native, `direct_write=False` (orders via the socket thread)",
    "pure": "bullet-ws pure-Python backend",
    WEBSOCKETS: "websockets + json",
    PICOWS: "picows + msgspec",
    "rust-ceiling": "Rust core alone (tokio)",
}
S1_S2_ROWS = (
    "native",
    "native-batch",
    "native-handler",
    "native-task",
    "pure",
    WEBSOCKETS,
    PICOWS,
    "rust-ceiling",
)
S5_ROWS = (
    "native",
    "native-batch",
    "native-handler",
    "native-early",
    "native-task",
    "native-handler-task",
    "native-queued",
    "pure",
    WEBSOCKETS,
    PICOWS,
    "rust-ceiling",
)


def row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def s1_table(run: dict[str, Any]) -> list[str]:
    def median(shape: str, contender: str) -> float:
        return float(run["s1"][shape]["contenders"][contender]["msgs_per_s"]["median"])

    ratios = "vs picows+msgspec | vs websockets+json"
    lines = [
        f"| client | live aggTrade | {ratios} | depth20 | {ratios} |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for contender in S1_S2_ROWS:
        cells = [LABELS[contender]]
        for shape in ("aggTrade", "depth20"):
            m = median(shape, contender)
            cells += [
                f"{m:,.0f}",
                f"{m / median(shape, PICOWS):.2f}x",
                f"{m / median(shape, WEBSOCKETS):.1f}x",
            ]
        lines.append(row(cells))
    return lines


def s5_table(run: dict[str, Any]) -> list[str]:
    contenders = run["s5"]["contenders"]

    def cell(key: str) -> str:
        pooled = contenders[key]["pooled"] if key in contenders else None
        return f"{pooled['p50']} / {pooled['p99']}" if pooled else ""

    lines = ["| client | asyncio | uvloop |", "|---|---:|---:|"]
    for contender in S5_ROWS:
        loops = ("tokio", "") if contender == "rust-ceiling" else ("asyncio", "uvloop")
        lines.append(row([LABELS[contender], *(cell(f"{contender}|{lp}") for lp in loops)]))
    return lines


def s2_table(run: dict[str, Any]) -> list[str]:
    contenders = run["s2"]["10000"]["contenders"]
    lines = ["| client | p50 | p99 | p99.9 |", "|---|---:|---:|---:|"]
    for contender in S1_S2_ROWS:
        loop = "tokio" if contender == "rust-ceiling" else "asyncio"
        p = contenders[f"{contender}|{loop}"]["pooled"]
        lines.append(row([LABELS[contender], *(f"{p[q]:,}" for q in ("p50", "p99", "p99.9"))]))
    return lines


TABLES: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "s1": s1_table,
    "s5": s5_table,
    "s2": s2_table,
}


def render(text: str, root: Path) -> tuple[str, list[str]]:
    """The text with every marked table rendered from its run, and the tables that changed."""
    out: list[str] = []
    changed: list[str] = []
    pos = 0
    for m in MARKER.finditer(text):
        if m.start() < pos:
            continue
        kind, run_path = m.group("kind"), m.group("run")
        if kind not in TABLES:
            raise SystemExit(f"unknown table kind {kind!r} (known: {', '.join(TABLES)})")
        end = text.find(END, m.end())
        if end < 0:
            raise SystemExit(f"table {kind} from {run_path}: no {END!r} after it")
        run = json.loads((root / run_path).read_text())
        table = "\n".join(TABLES[kind](run)) + "\n"
        if text[m.end() : end] != table:
            changed.append(f"{kind} from {run_path}")
        out += [text[pos : m.end()], table]
        pos = end
    out.append(text[pos:])
    return "".join(out), changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when a table differs")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = ap.parse_args(argv)
    text = args.readme.read_text()
    rendered, changed = render(text, ROOT)
    if args.check:
        for table in changed:
            print(f"{args.readme}: table {table} differs from its run", file=sys.stderr)
        return 1 if changed else 0
    if changed:
        args.readme.write_text(rendered)
        print(f"rewrote {len(changed)} table(s): {', '.join(changed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
