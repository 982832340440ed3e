"""Where the way in goes: tick to socket read, and socket read to the consumer, per delivery mode.

The native backend's own latency stats split the inbound half of S5: `ws.stats.exchange_delay`
is the wall clock at the socket thread's read minus the tick's `E`, `delivery_delay` the time from
that read to the hand-over (the queue and the wake-up of the loop thread). Each run subscribes to
live-shape aggTrade ticks from the fake exchange (in the run's process, on its own native thread)
at 1 tick/ms, answers every tick with a `SUBMIT` as S5 does, and prints both p50 / p99 in µs, for
`set_handler` and `async for`, on asyncio and (when installed) uvloop. Usage, from benches/ with
the release wheel installed (see README.md):

    python hop_split.py [--rounds 2] [--ticks 2000]
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

TX = "AAEC"


async def one(url: str, push: bool, ticks: int) -> Any:
    import bullet_ws as bw

    ws = await bw.connect(url, idle_timeout=0, channel_capacity=ticks * 4)
    ws.subscribe(["BTC-USD@aggTrade"], id=1)
    seen = acked = 0
    done = asyncio.Event()

    def on_event(ev: Any) -> None:
        nonlocal seen, acked
        t = type(ev)
        if t is bw.AggTrade and seen < ticks:
            ws.submit(TX, id=ev.event_time)
            seen += 1
        elif t is bw.OrderResult:
            acked += 1
        # Every order answered before the close: none is reported unacknowledged.
        if acked == ticks and not done.is_set():
            if push:
                ws.set_handler(None)
            done.set()

    if push:
        ws.set_handler(on_event)
        await done.wait()
    else:
        async for ev in ws:
            on_event(ev)
            if done.is_set():
                break
    stats = ws.stats
    await ws.close()
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--ticks", type=int, default=2000)
    args = ap.parse_args()
    import bullet_ws
    from bullet_ws.testing import MockExchange

    assert bullet_ws.BACKEND == "native", "the native extension is missing"
    loops: list[tuple[str, Any]] = [("asyncio", asyncio.run)]
    try:
        import uvloop

        loops.append(("uvloop", uvloop.run))
    except ImportError:
        pass

    def us(summary: Any) -> str:
        return f"{summary.p50 * 1e6:5.0f} / {summary.p99 * 1e6:5.0f}"

    print("loop     mode         tick->read p50/p99   read->consumer p50/p99 (µs)")
    with MockExchange(rate=1000, symbols=["BTC-USD"], max_messages=10**8) as mock:
        for _ in range(args.rounds):
            for name, run in loops:
                for push in (True, False):
                    s = run(one(mock.url, push, args.ticks))
                    mode = "set_handler" if push else "async for"
                    print(
                        f"{name:8s} {mode:12s} {us(s.exchange_delay):>20s}   "
                        f"{us(s.delivery_delay):>20s}"
                    )


if __name__ == "__main__":
    main()
