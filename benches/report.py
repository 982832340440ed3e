"""Turns a results dict of `benches/run.py` into target ratios, a Markdown report and a PNG plot.

``python benches/report.py [results.json]`` re-renders latest.md/latest.png next to the JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

PICOWS = "picows+msgspec"
BASELINES = ["pure", "websockets+json"]


def _get(d: Any, *path: str) -> Any:
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of docs/design/BENCHMARKS.md that this run can evaluate."""
    out: list[dict[str, Any]] = []

    def add(
        figure: str, num: float | None, den: float | None, op: str, target: float, unit: str = "x"
    ) -> None:
        if num is None or den is None or den == 0:
            return
        ratio = num / den
        ok = ratio >= target if op == ">=" else ratio <= target if op == "<=" else ratio < target
        out.append(
            {"figure": figure, "value": ratio, "op": op, "target": target, "unit": unit, "pass": ok}
        )

    s1 = res.get("s1", {})
    for variant, data in s1.items():
        c = data["contenders"]

        def thr(name: str, c: dict[str, Any] = c) -> float | None:
            return _get(c, name, "msgs_per_s", "median")

        def loop_cpu(name: str, c: dict[str, Any] = c) -> float | None:
            return _get(c, name, "loop_cpu_us_per_msg", "median")

        for base in BASELINES:
            add(
                f"S1 {variant} throughput native-batch / {base}",
                thr("native-batch"),
                thr(base),
                ">=",
                10,
            )
        add(
            f"S1 {variant} throughput native-batch / {PICOWS}",
            thr("native-batch"),
            thr(PICOWS),
            ">=",
            2,
        )
        for base in BASELINES:
            add(f"S1 {variant} throughput native / {base}", thr("native"), thr(base), ">=", 5)
        add(f"S1 {variant} throughput native / {PICOWS}", thr("native"), thr(PICOWS), ">=", 1.2)
        for mine in ("native", "native-batch"):
            for base in BASELINES:
                add(
                    f"S1 {variant} loop-thread CPU/msg {mine} / {base}",
                    loop_cpu(mine),
                    loop_cpu(base),
                    "<=",
                    0.1,
                )
            add(
                f"S1 {variant} loop-thread CPU/msg {mine} / {PICOWS}",
                loop_cpu(mine),
                loop_cpu(PICOWS),
                "<=",
                0.5,
            )
        add(
            f"S1 {variant} throughput native-batch / rust-ceiling",
            thr("native-batch"),
            thr("rust-ceiling"),
            ">=",
            0.5,
        )

    s2 = _get(res, "s2", "10000", "contenders") or {}
    for lp in res.get("loops", []):

        def p(name: str, q: str, lp: str = lp) -> float | None:
            return _get(s2, f"{name}|{lp}", "pooled", q)

        for mine in ("native", "native-batch"):
            for base in BASELINES:
                add(f"S2 10k/s {lp} p99 {mine} / {base}", p(mine, "p99"), p(base, "p99"), "<=", 0.5)
            add(f"S2 10k/s {lp} p99 {mine} / {PICOWS}", p(mine, "p99"), p(PICOWS, "p99"), "<=", 1.0)
            v = p(mine, "p99.9")
            if v is not None:
                out.append(
                    {
                        "figure": f"S2 10k/s {lp} p99.9 {mine}",
                        "value": v,
                        "op": "<",
                        "target": 1000,
                        "unit": "µs",
                        "pass": v < 1000,
                    }
                )

    s3 = _get(res, "s3", "contenders") or {}

    def rec(name: str) -> float | None:
        return _get(s3, name, "all_kinds_ms", "median")

    for base in BASELINES:
        add(f"S3 drop->first message native / {base}", rec("native"), rec(base), "<=", 0.5)
    add(f"S3 drop->first message native / {PICOWS}", rec("native"), rec(PICOWS), "<=", 1.0)

    s5 = _get(res, "s5", "contenders") or {}
    for lp in res.get("loops", []):

        def t2o(name: str, q: str, lp: str = lp) -> float | None:
            return _get(s5, f"{name}|{lp}", "pooled", q)

        for mine in ("native", "native-batch"):
            for q in ("p50", "p99"):
                for base in BASELINES:
                    add(
                        f"S5 tick-to-order {lp} {q} {mine} / {base}",
                        t2o(mine, q),
                        t2o(base, q),
                        "<=",
                        0.5,
                    )
                add(
                    f"S5 tick-to-order {lp} {q} {mine} / {PICOWS}",
                    t2o(mine, q),
                    t2o(PICOWS, q),
                    "<=",
                    1.0,
                )
            add(
                f"S5 tick-to-order {lp} p50 {mine} / {PICOWS} (moonshot)",
                t2o(mine, "p50"),
                t2o(PICOWS, "p50"),
                "<=",
                0.8,
            )
    return out


def _fmt(v: float | None, digits: int = 2) -> str:
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def markdown(res: dict[str, Any]) -> str:
    h = res["header"]
    L: list[str] = []
    L.append(f"# bullet-ws benchmarks ({res['mode']})\n")
    L.append(f"- command: `{res['command']}`")
    L.append(
        f"- machine: {h['machine']['cpu']}, {h['machine']['cores']} cores, {h['machine']['platform']}; "
        f"load average at start {', '.join(f'{x:.2f}' for x in h['machine']['load_avg_at_start'])}"
    )
    L.append(
        f"- Python: {h['python']}; event loops: asyncio, uvloop {h['event_loops']['uvloop']}; {h['rustc']}"
    )
    L.append("- libraries: " + ", ".join(f"{k} {v}" for k, v in h["libraries"].items() if v))
    dirty = " (uncommitted changes in core paths)" if h["git_dirty_core"] else ""
    L.append(
        f"- git commit: `{h['git_commit']}`{dirty}; bullet_ws from `{h['bullet_ws_path']}` "
        f"(extension built {h['bullet_ws_extension_mtime']})"
    )
    L.append(
        f"- rounds: {res['plan']['rounds']}, contenders interleaved (rotated order), each run in a fresh process; "
        f"elapsed {res.get('elapsed_s', 0) / 60:.1f} min"
    )
    for n in res.get("notes", []):
        L.append(f"- note: {n}")
    L.append("")
    L.append(
        "Absolute figures on a shared 2-core machine are noisy; the ratios within one run are what count.\n"
    )

    if "s1" in res:
        L.append("## S1 throughput (mock in another process, `--rate max --preencode`)\n")
        for variant, data in res["s1"].items():
            c = data["contenders"]
            pic = _get(c, PICOWS, "msgs_per_s", "median")
            L.append(f"### {variant}, {data['messages']:,} frames per run\n")
            L.append(
                "| contender | msgs/s (median) | min - max | spread | vs picows+msgspec | CPU µs/msg (process) | CPU µs/msg (loop thread) |"
            )
            L.append("|---|---:|---:|---:|---:|---:|---:|")
            for name, v in c.items():
                t = v["msgs_per_s"]
                if not t.get("n"):
                    L.append(f"| {name} | failed | | | | | |")
                    continue
                vs = f"{t['median'] / pic:.2f}x" if pic else "-"
                L.append(
                    f"| {name} | {t['median']:,.0f} | {t['min']:,.0f} - {t['max']:,.0f} | {t['spread_pct']:.0f}% | {vs} | "
                    f"{_fmt(v['cpu_us_per_msg']['median'])} | {_fmt(v['loop_cpu_us_per_msg']['median'])} |"
                )
            L.append("")
        L.append(
            "rust-ceiling runs everything on one tokio thread, so its loop-thread CPU is all its work.\n"
        )

    if "s2" in res:
        L.append("## S2 latency, event_time stamp (mock, at send) to handler entry, µs\n")
        L.append(
            "Percentiles pooled over all rounds after warm-up; the p99 range is over the rounds.\n"
        )
        for rate, data in res["s2"].items():
            L.append(
                f"### {int(rate):,} msgs/s ({data['samples_per_run']:,} samples per run after {data['warmup_per_run']:,} warm-up)\n"
            )
            L.append(
                "| contender | loop | samples | p50 | p99 | p99.9 | max | p99 per round (min - max) |"
            )
            L.append("|---|---|---:|---:|---:|---:|---:|---:|")
            for key, v in data["contenders"].items():
                name, lp = key.split("|")
                pp = v["pooled"]
                if not pp.get("samples"):
                    L.append(f"| {name} | {lp} | failed | | | | | |")
                    continue
                r = v["p99_per_round"]
                L.append(
                    f"| {name} | {lp} | {pp['samples']:,} | {pp['p50']:,} | {pp['p99']:,} | {pp['p99.9']:,} | {pp['max']:,} | "
                    f"{r['min']:,} - {r['max']:,} |"
                )
            L.append("")

    if "s3" in res:
        s3 = res["s3"]
        kinds = list(next(iter(s3["contenders"].values()))["kinds"]) if s3["contenders"] else []
        L.append(
            "## S3 reconnect: drop to first message after resubscription, ms (median, min - max)\n"
        )
        L.append(
            "The mock runs in the worker process on its own native thread (the CLI mock takes no faults "
            "from outside). `initial_backoff=0` is floored at 10 ms (+0-50 % jitter) by bullet_ws; the "
            "hand-written reconnect loops of websockets+json and picows+msgspec sleep the same 10 ms. "
            "Feed: 2,000 aggTrade/s.\n"
        )
        L.append(
            "| contender | "
            + " | ".join(kinds)
            + " | all | gaps | duplicates | lost in flight | failures |"
        )
        L.append("|---|" + "---:|" * (len(kinds) + 5))
        for name, v in s3["contenders"].items():
            cells = []
            for k in kinds:
                d = v["kinds"][k]["drop_to_first_ms"]
                cells.append(
                    f"{d['median']:.1f} ({d['min']:.1f} - {d['max']:.1f})" if d.get("n") else "-"
                )
            a = v["all_kinds_ms"]
            lost = sum(v["kinds"][k]["lost_in_flight"] for k in kinds)
            fails = sum(v["kinds"][k]["failures"] for k in kinds) + len(v["failures"])
            L.append(
                f"| {name} | "
                + " | ".join(cells)
                + f" | {_fmt(a.get('median'), 1)} | {v['gaps_within_connection']} | "
                f"{v['duplicates']} | {lost} | {fails} |"
            )
        L.append("")
        L.append(
            "gaps/duplicates: aggTrade ids missing or repeated within one connection; lost in flight: frames "
            "the mock wrote to the dropped connection that never reached the handler.\n"
        )

    if "s4" in res:
        L.append(
            f"## S4 slow consumer (flooding mock, 20 µs of work per message, channel_capacity 10,000, "
            f"{res['s4']['seconds']:.0f} s)\n"
        )
        L.append(
            "| contender | received | delivered | dropped | received = delivered + dropped | RSS max MB | RSS growth after warm-up kB | flat |"
        )
        L.append("|---|---:|---:|---:|---|---:|---:|---|")
        for name, v in res["s4"]["contenders"].items():
            if not v.get("ok"):
                L.append(f"| {name} | failed: {v.get('error')} | | | | | | |")
                continue
            L.append(
                f"| {name} | {v['messages_received']:,} | {v['delivered_market'] + v['delivered_other']:,} | "
                f"{v['events_dropped']:,} | {'yes' if v['exact'] else 'NO'} | {v['rss_max_kb'] / 1024:.1f} | "
                f"{v['rss_settled_growth_kb']} | {'yes' if v['rss_flat'] else 'NO'} |"
            )
        L.append("")

    if "s5" in res:
        s5 = res["s5"]
        every = f"every {s5['every']}-th tick" if s5["every"] > 1 else "every tick"
        L.append(
            "## S5 tick to order: tick sent (`E`) to order received, both on the mock's clocks, µs\n"
        )
        L.append(
            f"{s5['rate']:,} ticks/s (live-shape aggTrade), an order (`SUBMIT`, id = the tick's `E`) for {every}; "
            f"{s5['ticks_per_run']:,} ticks per run after {s5['warmup_per_run']:,} warm-up. The mock runs in the "
            "harness process on its own native thread; percentiles pooled over the rounds. Clock offset "
            f"(CLOCK_REALTIME - CLOCK_MONOTONIC) drift over a run: at most {s5['clock_offset_drift_us_max']:.1f} µs.\n"
        )
        L.append(
            "| contender | loop | orders | p50 | p99 | p99.9 | max | p50 vs picows+msgspec | p50 per round (min - max) | of which tick to handler, p50 | tick to send returned, p50 | loop thread CPU per tick |"
        )
        L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for key, v in s5["contenders"].items():
            name, lp = key.split("|")
            pp = v["pooled"]
            if not pp.get("samples"):
                L.append(
                    f"| {name} | {lp} | failed: {'; '.join(v['failures'])[:200]} | | | | | | | | | |"
                )
                continue
            pic = _get(s5["contenders"], f"{PICOWS}|{lp}", "pooled", "p50")
            vs = f"{pp['p50'] / pic:.2f}x" if pic else "-"
            r = v["p50_per_round"]
            inb = _get(v, "inbound_p50_per_round", "median")
            sent = _get(v, "sent_p50_per_round", "median")
            cpu = _get(v, "loop_cpu_us_per_tick_per_round", "median")
            L.append(
                f"| {name} | {lp} | {pp['samples']:,} | {pp['p50']:,} | {pp['p99']:,} | {pp['p99.9']:,} | {pp['max']:,} | "
                f"{vs} | {r['min']:,} - {r['max']:,} | {_fmt(inb, 0)} | {_fmt(sent, 0)} | {_fmt(cpu, 1)} |"
            )
        L.append("")
        L.append(
            "Tick to handler: `time.time_ns()` (Rust: `SystemTime`) at handler entry minus `E`, as S2 measures "
            "it, on the client's clock (the same machine); median over the rounds of each run's p50. Tick to send "
            "returned: the same clock when the order's send call has returned (the frame is in the kernel). "
            "The rest of the trip is the exchange's side: its thread's wake-up, read and parse. Loop thread "
            "CPU per tick: `time.thread_time_ns()` of the handler's thread over the measured ticks, divided "
            "by them (µs; median over the rounds): steadier than latency on a noisy machine.\n"
        )

    tg = res.get("targets") or targets(res)
    if tg:
        L.append("## Targets (docs/design/BENCHMARKS.md)\n")
        L.append("| figure | measured | target | met |")
        L.append("|---|---:|---:|---|")
        for t in tg:
            if t["unit"] == "x":
                val, tgt = f"{t['value']:.2f}x", f"{t['op']} {t['target']}x"
            else:
                val, tgt = (
                    f"{t['value']:,.0f} {t['unit']}",
                    f"{t['op']} {t['target']:,} {t['unit']}",
                )
            L.append(f"| {t['figure']} | {val} | {tgt} | {'yes' if t['pass'] else '**no**'} |")
        L.append("")
    return "\n".join(L) + "\n"


def plot(res: dict[str, Any], path: Path) -> str | None:
    """Writes the PNG; returns a note instead when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "latest.png skipped: matplotlib is not installed"
    panels = [k for k in ("s1", "s2", "s5") if k in res]
    if not panels:
        return "latest.png skipped: no S1/S2/S5 data"
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 5.2), squeeze=False)
    ax_i = 0
    if "s1" in res:
        ax = axes[0][ax_i]
        ax_i += 1
        variants = list(res["s1"])
        names = list(next(iter(res["s1"].values()))["contenders"])
        width = 0.8 / max(len(variants), 1)
        for j, variant in enumerate(variants):
            meds, lo, hi = [], [], []
            for n in names:
                t = res["s1"][variant]["contenders"][n]["msgs_per_s"]
                m = t.get("median", 0) / 1e3
                meds.append(m)
                lo.append(m - t.get("min", 0) / 1e3 if t.get("n") else 0)
                hi.append(t.get("max", 0) / 1e3 - m if t.get("n") else 0)
            xs = [i + j * width for i in range(len(names))]
            ax.bar(xs, meds, width, yerr=[lo, hi], capsize=3, label=variant)
        ax.set_xticks([i + width * (len(variants) - 1) / 2 for i in range(len(names))])
        ax.set_xticklabels(names, rotation=25, ha="right")
        ax.set_ylabel("thousand messages / s (median, min-max)")
        ax.set_title("S1 throughput")
        ax.legend()
    if "s2" in res:
        ax = axes[0][ax_i]
        ax_i += 1
        rate = "10000" if "10000" in res["s2"] else next(iter(res["s2"]))
        data = res["s2"][rate]["contenders"]
        keys = [k for k, v in data.items() if v["pooled"].get("samples")]
        qs = ["p50", "p99", "p99.9"]
        width = 0.8 / len(qs)
        for j, q in enumerate(qs):
            ax.bar(
                [i + j * width for i in range(len(keys))],
                [data[k]["pooled"][q] for k in keys],
                width,
                label=q,
            )
        ax.set_yscale("log")
        ax.axhline(1000, color="grey", linestyle="--", linewidth=1)
        ax.set_xticks([i + width for i in range(len(keys))])
        ax.set_xticklabels(
            [k.replace("|", "\n") for k in keys], rotation=30, ha="right", fontsize=8
        )
        ax.set_ylabel("µs, stamp to handler (log)")
        ax.set_title(f"S2 latency at {int(rate):,} msgs/s")
        ax.legend()
    if "s5" in res:
        ax = axes[0][ax_i]
        data = res["s5"]["contenders"]
        keys = [k for k, v in data.items() if v["pooled"].get("samples")]
        qs = ["p50", "p99", "p99.9"]
        width = 0.8 / len(qs)
        for j, q in enumerate(qs):
            ax.bar(
                [i + j * width for i in range(len(keys))],
                [data[k]["pooled"][q] for k in keys],
                width,
                label=q,
            )
        ax.set_yscale("log")
        ax.set_xticks([i + width for i in range(len(keys))])
        ax.set_xticklabels(
            [k.replace("|", "\n") for k in keys], rotation=30, ha="right", fontsize=8
        )
        ax.set_ylabel("µs, tick sent to order received (log)")
        ax.set_title(f"S5 tick to order at {res['s5']['rate']:,} ticks/s")
        ax.legend()
    h = res["header"]
    fig.suptitle(
        f"bullet-ws {res['mode']} - {h['git_commit'][:10]} - {h['machine']['cpu']} x{h['machine']['cores']} - {h['python']}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


if __name__ == "__main__":
    src = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).parent / "results" / "latest.json"
    )
    data = json.loads(src.read_text())
    data["targets"] = targets(data)
    (src.parent / "latest.md").write_text(markdown(data))
    note = plot(data, src.parent / "latest.png")
    print(note or f"wrote {src.parent / 'latest.md'} and latest.png")
