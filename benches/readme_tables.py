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

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"<!-- table (?P<kind>\w+) from (?P<run>\S+\.json) -->\n")
END = "<!-- end of table -->"

PICOWS = "picows+msgspec"
WEBSOCKETS = "websockets+json"

S1_ROWS = {
    "native": "bullet-ws native, `async for`",
    "native-batch": "bullet-ws native, `recv_batch`",
    "native-handler": "bullet-ws native, `set_handler`",
    "native-task": "bullet-ws native, `async for`, `loop_reads=False`",
    "pure": "bullet-ws pure-Python backend",
    WEBSOCKETS: "websockets + json (dicts)",
    PICOWS: "picows + msgspec (typed structs)",
    "rust-ceiling": "Rust core alone (ceiling)",
}
S5_ROWS = {
    "native": "bullet-ws native, `async for`",
    "native-batch": "bullet-ws native, `recv_batch`",
    "native-handler": "bullet-ws native, `set_handler` (push delivery)",
    "native-early": "bullet-ws native, `inbound_spin=0.0002`",
    "native-task": "bullet-ws native, `async for`, `loop_reads=False`",
    "native-handler-task": "bullet-ws native, `set_handler`, `loop_reads=False`",
    "native-queued": "bullet-ws native, `direct_write=False` (orders via the socket thread)",
    "pure": "bullet-ws pure-Python backend",
    WEBSOCKETS: "websockets + json",
    PICOWS: "picows + msgspec",
    "rust-ceiling": "Rust core alone (tokio)",
}
S2_ROWS = {
    "native": "bullet-ws native, `async for`",
    "native-batch": "bullet-ws native, `recv_batch`",
    "native-handler": "bullet-ws native, `set_handler`",
    "native-task": "bullet-ws native, `async for`, `loop_reads=False`",
    "pure": "bullet-ws pure-Python backend",
    WEBSOCKETS: "websockets + json",
    PICOWS: "picows + msgspec",
    "rust-ceiling": "Rust core alone (tokio)",
}


def s1_table(run: dict[str, Any]) -> list[str]:
    def median(shape: str, contender: str) -> float:
        return float(run["s1"][shape]["contenders"][contender]["msgs_per_s"]["median"])

    ratios = "vs picows+msgspec | vs websockets+json"
    lines = [
        f"| client | live aggTrade | {ratios} | depth20 | {ratios} |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for contender, label in S1_ROWS.items():
        cells = [label]
        for shape in ("aggTrade", "depth20"):
            m = median(shape, contender)
            cells += [
                f"{m:,.0f}",
                f"{m / median(shape, PICOWS):.2f}x",
                f"{m / median(shape, WEBSOCKETS):.1f}x",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def s5_table(run: dict[str, Any]) -> list[str]:
    contenders = run["s5"]["contenders"]

    def cell(key: str) -> str:
        if key not in contenders:
            return ""
        pooled = contenders[key]["pooled"]
        return f"{pooled['p50']} / {pooled['p99']}"

    lines = ["| client | asyncio | uvloop |", "|---|---:|---:|"]
    for contender, label in S5_ROWS.items():
        if contender == "rust-ceiling":
            cells = [cell("rust-ceiling|tokio"), ""]
        else:
            cells = [cell(f"{contender}|asyncio"), cell(f"{contender}|uvloop")]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |".replace(" |  |", " | |"))
    return lines


def s2_table(run: dict[str, Any]) -> list[str]:
    contenders = run["s2"]["10000"]["contenders"]
    lines = ["| client | p50 | p99 | p99.9 |", "|---|---:|---:|---:|"]
    for contender, label in S2_ROWS.items():
        loop = "tokio" if contender == "rust-ceiling" else "asyncio"
        p = contenders[f"{contender}|{loop}"]["pooled"]
        lines.append(f"| {label} | {p['p50']:,} | {p['p99']:,} | {p['p99.9']:,} |")
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
