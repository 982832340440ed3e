"""A multi-symbol trade recorder: every aggTrade of some symbols, one file per symbol.

CSV by default; `--format parquet` writes Parquet instead when pyarrow is installed (it is not a
dependency of bullet-ws: `pip install pyarrow`). Rotation is by row count (`--rotate-rows`): a new
file per symbol every N rows, named `SYMBOL-aggTrade-<UTC start>-<part>.csv`. Files are flushed
every second and on exit (SIGINT/SIGTERM, `--duration`, `--max-events`).

A trade id (`a`) at or below the last one written for its symbol is skipped (so a replay never
duplicates a row), and a jump in ids is reported as a gap (trades missed during an outage).

Run it against the built-in fake exchange:

    bullet-ws mock-exchange --port 8765 --shared-sequence --rate 200     # in one terminal
    python examples/recorder.py --url ws://127.0.0.1:8765/ws --symbols BTC-USD,ETH-USD \\
        --out trades --duration 10

(`--pure` runs the pure-Python backend; `bullet_ws.testing.MockExchange(shared_sequence=True)`
serves the same in-process.) With `--shared-sequence`, ids continue across reconnects as on the
live exchange; without it, the fake exchange restarts them at 1 per subscription. The last line
printed is `summary {...}` (JSON: rows per symbol, gaps, skipped duplicates, files).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import importlib
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

COLUMNS = (
    "symbol",
    "agg_trade_id",
    "price",
    "quantity",
    "trade_time",
    "event_time",
    "is_buyer_maker",
    "first_trade_id",
    "last_trade_id",
)


class CsvSink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = path.open("w", newline="", encoding="utf-8")
        self.writer = csv.writer(self.file)
        self.writer.writerow(COLUMNS)

    def write(self, row: tuple[Any, ...]) -> None:
        self.writer.writerow(row)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


class ParquetSink:
    """Rows buffered, one row group per flush (pyarrow wants columns, not rows)."""

    def __init__(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        self.path = path
        self.schema = pa.schema(
            [
                ("symbol", pa.string()),
                ("agg_trade_id", pa.uint64()),
                ("price", pa.string()),
                ("quantity", pa.string()),
                ("trade_time", pa.int64()),
                ("event_time", pa.int64()),
                ("is_buyer_maker", pa.bool_()),
                ("first_trade_id", pa.uint64()),
                ("last_trade_id", pa.uint64()),
            ]
        )
        self.writer = pq.ParquetWriter(path, self.schema)
        self.rows: list[tuple[Any, ...]] = []

    def write(self, row: tuple[Any, ...]) -> None:
        self.rows.append(row)

    def flush(self) -> None:
        if self.rows:
            columns = list(zip(*self.rows, strict=True))
            self.writer.write_table(self.pa.table(columns, schema=self.schema))
            self.rows.clear()

    def close(self) -> None:
        self.flush()
        self.writer.close()


class Recorder:
    def __init__(self, out: Path, fmt: str, rotate_rows: int) -> None:
        self.out = out
        self.fmt = fmt
        self.rotate_rows = rotate_rows
        self.stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.sinks: dict[str, Any] = {}
        self.rows_in_file: dict[str, int] = {}
        self.parts: dict[str, int] = {}
        self.last_id: dict[str, int] = {}
        self.rows: dict[str, int] = {}
        self.gaps: dict[str, int] = {}
        self.duplicates = 0
        self.files: list[str] = []

    def sink(self, symbol: str) -> Any:
        sink = self.sinks.get(symbol)
        if sink is None or self.rows_in_file[symbol] >= self.rotate_rows:
            if sink is not None:
                sink.close()
            part = self.parts.get(symbol, 0) + 1
            self.parts[symbol] = part
            path = self.out / f"{symbol}-aggTrade-{self.stamp}-{part:04d}.{self.fmt}"
            sink = ParquetSink(path) if self.fmt == "parquet" else CsvSink(path)
            self.sinks[symbol] = sink
            self.rows_in_file[symbol] = 0
            self.files.append(str(path))
        return sink

    def record(self, t: Any) -> None:
        symbol, trade_id = t.symbol, t.agg_trade_id
        last = self.last_id.get(symbol)
        if last is not None:
            if trade_id <= last:
                self.duplicates += 1
                return
            if trade_id > last + 1:
                self.gaps[symbol] = self.gaps.get(symbol, 0) + 1
                print(
                    f"gap symbol={symbol} after={last} next={trade_id} "
                    f"missing={trade_id - last - 1}",
                    flush=True,
                )
        self.last_id[symbol] = trade_id
        self.sink(symbol).write(
            (
                symbol,
                trade_id,
                t.price,
                t.quantity,
                t.trade_time,
                t.event_time,
                t.is_buyer_maker,
                t.first_trade_id,
                t.last_trade_id,
            )
        )
        self.rows_in_file[symbol] += 1
        self.rows[symbol] = self.rows.get(symbol, 0) + 1

    def flush(self) -> None:
        for sink in self.sinks.values():
            sink.flush()

    def close(self) -> None:
        for sink in self.sinks.values():
            sink.close()
        self.sinks.clear()


async def run(args: argparse.Namespace) -> int:
    # The same API on both backends: pick one by module.
    bw: Any = importlib.import_module("bullet_ws.pure" if args.pure else "bullet_ws")
    if args.format == "parquet":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            print("--format parquet needs pyarrow: pip install pyarrow", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    recorder = Recorder(args.out, args.format, args.rotate_rows)
    events = 0
    try:
        async with bw.connect(args.url, initial_backoff=0.1) as ws:
            ws.subscribe([bw.Topic.agg_trade(s) for s in args.symbols])
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(sig, ws.stop)
            if args.duration is not None:
                loop.call_later(args.duration, ws.stop)
            print(f"recording {','.join(args.symbols)} to {args.out} ({args.format})", flush=True)
            next_flush = time.monotonic() + 1.0
            while True:
                # A batch per wake-up: one await for every trade queued meanwhile.
                batch = await ws.recv_batch()
                if not batch:
                    break  # stopped
                for event in batch:
                    if isinstance(event, bw.AggTrade):
                        recorder.record(event)
                        events += 1
                        if args.max_events is not None and events >= args.max_events:
                            ws.stop()
                            break
                    elif isinstance(event, (bw.Reconnecting, bw.Reconnected, bw.Disconnected)):
                        print(repr(event), flush=True)
                if time.monotonic() >= next_flush:
                    recorder.flush()
                    next_flush = time.monotonic() + 1.0
                if args.max_events is not None and events >= args.max_events:
                    break
    finally:
        recorder.close()
    summary = {
        "rows": recorder.rows,
        "gaps": recorder.gaps,
        "duplicates_skipped": recorder.duplicates,
        "files": recorder.files,
    }
    print("summary " + json.dumps(summary), flush=True)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", default="ws://127.0.0.1:8765/ws", help="exchange WebSocket URL")
    p.add_argument(
        "--symbols",
        default="BTC-USD,ETH-USD",
        type=lambda s: s.split(","),
        help="comma-separated symbols",
    )
    p.add_argument("--out", type=Path, default=Path("trades"), help="output directory")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv")
    p.add_argument("--rotate-rows", type=int, default=1_000_000, help="rows per file")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--max-events", type=int, default=None, help="stop after this many trades")
    p.add_argument("--pure", action="store_true", help="use the pure-Python backend")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(run(parse_args())))
