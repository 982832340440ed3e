"""A market-maker skeleton: quotes around the mid of a live order book, tracks its orders by id.

What it shows:

* the local order book (`ws.book(symbol)`: `best_bid`, `best_ask`, `is_synced`), fed by a
  `SYMBOL@depth20` subscription;
* pausing while the book is out of sync (`BookGap`, a reconnect) and resuming on `BookResynced`;
* sending orders with `ws.submit(tx, id=...)` and settling each by its id: `OrderResult` (acked),
  `ErrorMessage` (rejected) or `OrderUnacked` (unknown: the exchange may or may not have it, so it
  is reconciled, never blindly resent);
* the account's own order stream (`Topic.user_orders(address)`).

The transactions it sends are PLACEHOLDERS, not signed transactions: base64 of a small JSON
document describing the intended actions. The fake exchange accepts any base64; the real one
rejects them. Build and sign real transactions with the Bullet SDK before pointing this anywhere
else.

Run it against the built-in fake exchange:

    bullet-ws mock-exchange --port 8765          # in one terminal
    python examples/market_maker.py --url ws://127.0.0.1:8765/ws --duration 10

(`--pure` runs the pure-Python backend). Or in-process, with `bullet_ws.testing.MockExchange`:

    with MockExchange() as mock:
        subprocess.run([sys.executable, "examples/market_maker.py", "--url", mock.url, ...])

It prints one line per decision (`quote`, `acked`, `rejected`, `unacked`, `paused`, `resumed`,
`reconciled`) and a final `summary {...}` JSON line. SIGINT/SIGTERM or `--duration` stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import importlib
import json
import signal
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import bullet_ws


def log(kind: str, **fields: Any) -> None:
    parts = " ".join(f"{k}={v}" for k, v in fields.items())
    print(f"{kind} {parts}".rstrip(), flush=True)


def placeholder_tx(actions: list[dict[str, Any]]) -> str:
    """NOT A SIGNED TRANSACTION: base64 of the intended actions, for the fake exchange only.

    A real bot builds and signs a Bullet transaction here (the exchange carries every order action,
    place, cancel, amend and batches, inside one signed `SUBMIT` transaction)."""
    doc = {"placeholder": "not a signed transaction", "actions": actions}
    return base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()


@dataclass
class Quote:
    """One `SUBMIT`: cancel this symbol's resting orders, then a bid and an ask."""

    id: int
    bid: Decimal
    ask: Decimal
    mid: Decimal
    sent_at: float
    state: str = "pending"  # pending -> acked | rejected | unknown (-> reconciled)
    order_ids: list[int] = field(default_factory=list)


class MarketMaker:
    def __init__(self, ws: Any, bw: Any, args: argparse.Namespace) -> None:
        self.ws = ws
        self.bw = bw
        self.symbol: str = args.symbol
        self.half_spread = Decimal(args.spread_bps) / Decimal(20_000)
        self.size = Decimal(args.size)
        self.refresh: float = args.refresh
        self.max_pending: int = args.max_pending
        self.tick = Decimal(args.tick)
        self.verbose: bool = args.verbose
        self.book: Any = ws.book(args.symbol)  # live: kept current by the socket
        self.next_id = 1
        self.quotes: dict[int, Quote] = {}
        self.last_quote: Quote | None = None
        self.paused: str | None = None  # why quoting is paused, or None
        self.counts = dict.fromkeys(
            (
                "quotes",
                "acked",
                "rejected",
                "unacked",
                "reconciled",
                "paused",
                "resumed",
                "order_updates",
            ),
            0,
        )

    # ----- quoting -----

    def pending(self) -> int:
        return sum(1 for q in self.quotes.values() if q.state == "pending")

    def maybe_quote(self, *, timer: bool = False) -> None:
        book = self.book
        if self.paused is not None or not book.is_synced:
            return  # stale levels: never quote on them
        best_bid, best_ask = book.best_bid, book.best_ask
        if best_bid is None or best_ask is None:
            return
        mid = (Decimal(best_bid[0]) + Decimal(best_ask[0])) / 2
        last = self.last_quote
        if last is not None and last.mid == mid and not timer:
            return  # the book moved but not the mid: the resting quotes are still right
        if self.pending() >= self.max_pending:
            return  # acks are late: do not pile up orders whose fate is unknown
        bid = (mid * (1 - self.half_spread)).quantize(self.tick)
        ask = (mid * (1 + self.half_spread)).quantize(self.tick)
        quote = Quote(self.next_id, bid, ask, mid, time.monotonic())
        tx = placeholder_tx(
            [
                {"cancel_all": {"symbol": self.symbol}},
                {
                    "place": {
                        "symbol": self.symbol,
                        "side": "buy",
                        "price": str(bid),
                        "qty": str(self.size),
                        "client_order_id": 2 * quote.id,
                    }
                },
                {
                    "place": {
                        "symbol": self.symbol,
                        "side": "sell",
                        "price": str(ask),
                        "qty": str(self.size),
                        "client_order_id": 2 * quote.id + 1,
                    }
                },
            ]
        )
        try:
            self.ws.submit(tx, id=quote.id)
        except self.bw.BusyError:
            return  # the command queue is full (a long outage): the next update tries again
        except self.bw.StoppedError:
            return  # shutting down
        self.next_id += 1
        self.quotes[quote.id] = quote
        self.last_quote = quote
        self.counts["quotes"] += 1
        log(
            "quote",
            id=quote.id,
            bid=bid,
            ask=ask,
            mid=mid,
            best_bid=best_bid[0],
            best_ask=best_ask[0],
        )

    # ----- order acks -----

    def on_ack(self, event: Any) -> None:
        quote = self.quotes.get(event.id) if event.id is not None else None
        if quote is None:
            return  # not one of ours (a subscribe ack, a keepalive pong)
        if isinstance(event, self.bw.OrderResult):
            quote.state = "acked"
            quote.order_ids = list(event.order_ids)
            self.counts["acked"] += 1
            log(
                "acked",
                id=quote.id,
                status=event.status,
                order_ids=",".join(map(str, quote.order_ids)) or "-",
            )
            self.reconcile_by(quote)
        else:
            quote.state = "rejected"
            self.counts["rejected"] += 1
            log("rejected", id=quote.id, code=event.code, msg=json.dumps(event.msg))
        self.forget_settled()

    def on_unacked(self, event: Any) -> None:
        quote = self.quotes.get(event.id) if event.id is not None else None
        self.counts["unacked"] += 1
        if quote is not None:
            quote.state = "unknown"
        # The exchange may or may not have these orders. A real bot queries them (or the
        # account's open orders) now; this skeleton relies on its next quote, which starts with
        # a cancel-all of the symbol, and calls them reconciled once that quote is acked.
        log(
            "unacked",
            id=event.id,
            method=event.method,
            reason=json.dumps(event.reason),
            action="marked unknown; querying (skeleton: the next acked cancel-all settles it)",
        )

    def reconcile_by(self, acked: Quote) -> None:
        unknown = [q.id for q in self.quotes.values() if q.state == "unknown" and q.id < acked.id]
        for qid in unknown:
            self.quotes[qid].state = "reconciled"
        if unknown:
            self.counts["reconciled"] += len(unknown)
            log("reconciled", ids=",".join(map(str, unknown)), by=acked.id)

    def forget_settled(self) -> None:
        # Keep the dict small: only what may still change matters.
        for qid in [
            q.id for q in self.quotes.values() if q.state in ("acked", "rejected", "reconciled")
        ]:
            if self.last_quote is None or qid != self.last_quote.id:
                del self.quotes[qid]

    # ----- book lifecycle -----

    def pause(self, why: str) -> None:
        if self.paused is None:
            self.counts["paused"] += 1
            log("paused", reason=json.dumps(why))
        self.paused = why

    def resume(self, downtime: float) -> None:
        if self.paused is not None:
            self.counts["resumed"] += 1
            log("resumed", after=json.dumps(self.paused), downtime=f"{downtime:.3f}")
        self.paused = None
        self.maybe_quote(timer=True)

    # ----- the event loop -----

    def handle(self, event: Any) -> None:
        bw = self.bw
        if isinstance(event, bw.DepthUpdate):
            if event.symbol == self.symbol:
                self.maybe_quote()
        elif isinstance(event, (bw.OrderResult, bw.ErrorMessage)):
            self.on_ack(event)
        elif isinstance(event, bw.OrderUpdate):
            self.counts["order_updates"] += 1
            if self.verbose:
                log("order_update", order_id=event.order_id, status=event.status)
        elif isinstance(event, bw.OrderUnacked):
            self.on_unacked(event)
        elif isinstance(event, bw.BookGap):
            if event.symbol == self.symbol:
                self.pause(f"book gap: expected pu={event.expected}, got {event.got}")
        elif isinstance(event, bw.BookResynced):
            if event.symbol == self.symbol:
                self.resume(event.downtime)
        elif isinstance(event, bw.Reconnecting):
            self.pause(f"reconnecting: {event.reason}")
        elif isinstance(event, bw.Disconnected):
            log("disconnected", reason=json.dumps(event.reason))


async def run(args: argparse.Namespace) -> int:
    # The same API on both backends: pick one by module.
    bw: Any = importlib.import_module("bullet_ws.pure" if args.pure else "bullet_ws")
    # A market maker wants its quotes back quickly after a drop: short backoff.
    async with bw.connect(args.url, initial_backoff=0.1, max_backoff=5.0) as ws:
        ws.subscribe(
            [
                bw.Topic.depth(args.symbol, bw.OrderbookDepth.D20),
                bw.Topic.user_orders(args.address),
            ],
            id=0,
        )
        mm = MarketMaker(ws, bw, args)
        log(
            "started",
            backend="pure" if args.pure else bullet_ws.BACKEND,
            symbol=args.symbol,
            url=args.url,
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows loops
                loop.add_signal_handler(sig, ws.stop)
        if args.duration is not None:
            loop.call_later(args.duration, ws.stop)

        async def refresh() -> None:
            # Quotes also age: re-quote every `refresh` seconds even when the mid is still.
            while True:
                await asyncio.sleep(args.refresh)
                if (
                    mm.last_quote is None
                    or time.monotonic() - mm.last_quote.sent_at >= args.refresh
                ):
                    mm.maybe_quote(timer=True)

        ticker = asyncio.create_task(refresh())
        try:
            async for event in ws:
                mm.handle(event)
        finally:
            ticker.cancel()
        stats = ws.stats
    unknown = [q.id for q in mm.quotes.values() if q.state in ("pending", "unknown")]
    summary = dict(
        mm.counts, unsettled=unknown, reconnects=stats.reconnects, messages=stats.messages_received
    )
    print("summary " + json.dumps(summary), flush=True)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="ws://127.0.0.1:8765/ws", help="exchange WebSocket URL")
    p.add_argument("--symbol", default="BTC-USD")
    p.add_argument(
        "--address", default="PLACEHOLDER_ADDRESS", help="the account whose orders to follow"
    )
    p.add_argument("--spread-bps", type=int, default=10, help="quoted spread, basis points")
    p.add_argument("--size", default="0.010", help="quantity per side")
    p.add_argument("--tick", default="0.01", help="the symbol's price tick")
    p.add_argument("--refresh", type=float, default=1.0, help="re-quote at least this often, s")
    p.add_argument("--max-pending", type=int, default=4, help="unacked quotes at most")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--pure", action="store_true", help="use the pure-Python backend")
    p.add_argument("--verbose", action="store_true", help="print every order update")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(run(parse_args())))
