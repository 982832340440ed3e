"""The ``bullet-ws`` command line: one function per subcommand.

``bullet-ws mock-exchange`` serves the fake exchange (`bullet_ws.testing.MockExchange`) until
SIGINT/SIGTERM, after printing ``listening on ws://HOST:PORT/ws``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

__all__ = ["main"]


def _rate(value: str) -> float | None:
    if value == "max":
        return None
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0 or 'max', got {value!r}") from None
    if not rate > 0 or rate == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0 or 'max', got {value!r}")
    return rate


def _symbols(value: str) -> list[str]:
    symbols = [s.strip() for s in value.split(",") if s.strip()]
    if not symbols:
        raise argparse.ArgumentTypeError("needs at least one symbol")
    return symbols


def _add_mock_exchange(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "mock-exchange",
        help="serve the fake Bullet exchange until interrupted",
        description="Serve the fake Bullet exchange (bullet_ws.testing.MockExchange) until "
        "SIGINT/SIGTERM. Prints 'listening on ws://HOST:PORT/ws' once ready.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    p.add_argument(
        "--rate",
        type=_rate,
        default=20.0,
        help="market-data messages/s per connection, or 'max' (default 20)",
    )
    p.add_argument(
        "--symbols",
        type=_symbols,
        default=["BTC-USD", "ETH-USD", "SOL-USD"],
        help="comma-separated symbols (default BTC-USD,ETH-USD,SOL-USD)",
    )
    p.add_argument("--max-messages", type=int, default=None, help="market frames per connection")
    p.add_argument("--preencode", action="store_true", help="cycle a ring of pre-built frames")
    p.add_argument("--ping-interval", type=float, default=None, help="seconds between pings")
    p.add_argument("--max-topics", type=int, default=None, help="subscriptions per connection")
    p.set_defaults(run=run_mock_exchange)


def run_mock_exchange(args: argparse.Namespace) -> int:
    """Serves until SIGINT/SIGTERM; returns the exit code."""
    from bullet_ws.testing import MockExchange

    try:
        mock = MockExchange(
            host=args.host,
            port=args.port,
            rate=args.rate,
            symbols=args.symbols,
            max_messages=args.max_messages,
            preencode=args.preencode,
            ping_interval=args.ping_interval,
            max_topics=args.max_topics,
        )
        mock.start()
    except (ValueError, OSError) as e:
        print(f"bullet-ws mock-exchange: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"listening on {mock.url}", flush=True)
        # Event.wait with a timeout so the main thread wakes up to run the signal handler.
        while not stop.wait(0.5):
            pass
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        mock.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bullet-ws", description="bullet-ws tools")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_mock_exchange(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bullet-ws`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run = getattr(args, "run", None)
    if run is None:
        parser.print_help()
        return 2
    return int(run(args))


if __name__ == "__main__":
    sys.exit(main())
