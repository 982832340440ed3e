"""Tick to handler with and without `inbound_spin`, side by side: fresh processes, alternated.

Each run subscribes to live-shape aggTrade ticks from the fake exchange (in the run's process, on
its own native thread) at 1 tick/ms and records, at handler entry, the wall clock minus the tick's
`E` (both µs on this machine's clock); the first 200 ticks are dropped. Usage, from benches/ with
the release wheel installed (see README.md):

    python inbound_spin.py [--pairs 4] [--ticks 2000] [--spins 0,0.0002]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time

WARMUP = 200


async def one(spin: float, ticks: int) -> list[int]:
    import bullet_ws
    from bullet_ws.testing import MockExchange

    assert bullet_ws.BACKEND == "native", "the native extension is missing"
    with MockExchange(rate=1000, symbols=["BTC-USD"], max_messages=ticks + WARMUP + 100) as mock:
        ws = await bullet_ws.connect(mock.url, idle_timeout=0, inbound_spin=spin)
        ws.subscribe(["BTC-USD@aggTrade"], id=1)
        out: list[int] = []
        async for ev in ws:
            if type(ev) is bullet_ws.AggTrade:
                out.append(time.time_ns() // 1000 - ev.event_time)
                if len(out) == ticks + WARMUP:
                    break
        await ws.close()
    return out[WARMUP:]


def pct(values: list[int], q: float) -> int:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * q))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--ticks", type=int, default=2000)
    ap.add_argument("--spins", default="0,0.0002")
    ap.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(asyncio.run(one(args.child, args.ticks))))
        return
    spins = [float(s) for s in args.spins.split(",")]
    pooled: dict[float, list[int]] = {s: [] for s in spins}
    for r in range(args.pairs):
        for spin in spins if r % 2 == 0 else reversed(spins):
            cmd = [sys.executable, __file__, "--child", str(spin), "--ticks", str(args.ticks)]
            run = json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)
            pooled[spin].extend(run)
            print(f"round {r + 1} inbound_spin={spin:<7} p50 {pct(run, 0.5):>5} µs", flush=True)
    print("\n| inbound_spin | ticks | p50 | p90 | p99 | mean |\n|---:|---:|---:|---:|---:|---:|")
    for spin, values in pooled.items():
        print(
            f"| {spin:g} | {len(values):,} | {pct(values, 0.5)} | {pct(values, 0.9)} | "
            f"{pct(values, 0.99)} | {statistics.fmean(values):.0f} |"
        )


if __name__ == "__main__":
    main()
