"""The README's benchmark tables and the ratios its prose quotes, rendered from the run they
quote, so that no figure is copied.

Each sits between two markers that name its kind and its run:

    <!-- table s5 from benches/results/20261205T072549.json -->
    | client | asyncio | uvloop |
    ...
    <!-- end of table -->

Tables: `s1` (throughput, live aggTrade and depth20), `s5` (tick to order, p50 / p99) and `s2`
(latency at 10 k msgs/s on asyncio), from `run.py`'s JSON; `instructions` (per S5 tick on the
loop's thread) from `tick_instructions.py`'s. Ratios (`<!-- ratios s5 from ... -->` to `<!-- end of
ratios -->`): `s5` and `s2`, `set_handler` and `async for` against picows at p50 and p99 on
each loop; `s5` adds the loop thread's CPU per tick and the spread of the rounds' medians.
Usage, from the repository's root:

    python benches/readme_tables.py            # rewrites the tables from their runs
    python benches/readme_tables.py --check    # exits 1, naming the table, when one differs
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from report import PICOWS  # benches/ is on sys.path: the script's own directory

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"<!-- (?P<kind>(?P<form>table|ratios) \w+) from (?P<run>\S+\.json) -->\n")
WIDTH = 100  # the README's prose is wrapped so

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


# The native ways the prose sets against picows.
RATIO_ROWS = (("native-handler", "`set_handler`"), ("native", "`async for`"))
LOOPS = ("asyncio", "uvloop")


def run_loops(contenders: dict[str, Any]) -> list[str]:
    """The loops of `LOOPS` the run measured picows on, in that order."""
    return [lp for lp in LOOPS if f"{PICOWS}|{lp}" in contenders]


def against_picows(contenders: dict[str, Any], lead: str = "Against picows") -> str:
    """Each of `RATIO_ROWS` against picows at p50 and p99, on each loop the run has."""

    def ratio(contender: str, loop: str, q: str) -> str:
        ours = contenders[f"{contender}|{loop}"]["pooled"][q]
        return f"{ours / contenders[f'{PICOWS}|{loop}']['pooled'][q]:.2f}x"

    parts = []
    for contender, label in RATIO_ROWS:
        per_loop = []
        for lp in run_loops(contenders):
            p50, p99 = ratio(contender, lp, "p50"), ratio(contender, lp, "p99")
            # The first figures of the sentence say what they are; the rest follow their form.
            per_loop.append(
                f"{p50} and {p99} on {lp}"
                if parts or per_loop
                else f"is {p50} at the median and {p99} at p99 on {lp}"
            )
        parts.append(f"{label} " + ", ".join(per_loop))
    return f"{lead}: " + "; ".join(parts) + "."


def per_loop_figures(contenders: dict[str, Any], cell: Callable[[dict[str, Any]], str]) -> str:
    """`cell` of `set_handler`, `async for` and picows, each on every loop the run has."""
    rows = (*RATIO_ROWS, (PICOWS, "picows"))
    loops = run_loops(contenders)
    return ", ".join(
        f"{label} " + " and ".join(cell(contenders[f"{c}|{lp}"]) for lp in loops)
        for c, label in rows
    )


def s5_ratios(run: dict[str, Any]) -> list[str]:
    contenders = run["s5"]["contenders"]

    def cpu(c: dict[str, Any]) -> str:
        return f"{c['loop_cpu_us_per_tick_per_round']['median']:.1f}"

    def spread(c: dict[str, Any]) -> str:
        p50 = c["p50_per_round"]
        return f"{p50['min']}-{p50['max']}"

    loops = " then ".join(run_loops(contenders))
    text = (
        f"{against_picows(contenders)} The loop thread's CPU per tick (µs, the median round), "
        f"{loops}: {per_loop_figures(contenders, cpu)}. The p50 of each round (µs), "
        f"lowest-highest, {loops}: {per_loop_figures(contenders, spread)}."
    )
    return textwrap.wrap(text, WIDTH, break_on_hyphens=False)


def instructions_table(run: dict[str, Any]) -> list[str]:
    per_tick = run["instructions_per_tick"]
    lines = ["| client | asyncio | uvloop |", "|---|---:|---:|"]
    for contender in ("native-handler", "native", PICOWS):
        cells = [f"{n:,}" if (n := per_tick.get(f"{contender}|{lp}")) else "" for lp in LOOPS]
        lines.append(row([LABELS[contender], *cells]))
    return lines


def s2_ratios(run: dict[str, Any]) -> list[str]:
    text = against_picows(run["s2"]["10000"]["contenders"], "At 10 k msgs/s, against picows")
    return textwrap.wrap(text, WIDTH, break_on_hyphens=False)


RENDERERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "table s1": s1_table,
    "table s5": s5_table,
    "table s2": s2_table,
    "table instructions": instructions_table,
    "ratios s5": s5_ratios,
    "ratios s2": s2_ratios,
}


def render(text: str, root: Path) -> tuple[str, list[str]]:
    """The text with every marked block rendered from its run, and the blocks that changed."""
    out: list[str] = []
    changed: list[str] = []
    pos = 0
    for m in MARKER.finditer(text):
        if m.start() < pos:
            continue
        kind, run_path = m.group("kind"), m.group("run")
        if kind not in RENDERERS:
            raise SystemExit(f"unknown kind {kind!r} (known: {', '.join(RENDERERS)})")
        end_marker = f"<!-- end of {m.group('form')} -->"
        end = text.find(end_marker, m.end())
        if end < 0:
            raise SystemExit(f"{kind} from {run_path}: no {end_marker!r} after it")
        run = json.loads((root / run_path).read_text())
        table = "\n".join(RENDERERS[kind](run)) + "\n"
        if text[m.end() : end] != table:
            changed.append(f"{kind} from {run_path}")
        out += [text[pos : m.end()], table]
        pos = end
    out.append(text[pos:])
    return "".join(out), changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when a block differs")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = ap.parse_args(argv)
    text = args.readme.read_text()
    rendered, changed = render(text, ROOT)
    if args.check:
        for table in changed:
            print(f"{args.readme}: {table} differs from its run", file=sys.stderr)
        return 1 if changed else 0
    if changed:
        args.readme.write_text(rendered)
        print(f"rewrote {len(changed)} block(s): {', '.join(changed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
