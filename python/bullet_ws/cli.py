"""The ``bullet-ws`` command line: one function per subcommand (also ``python -m bullet_ws``).

``bullet-ws demo`` runs the managed socket against the fake exchange while injecting faults, with
a live view and a summary (exit 1 if the client did not recover from a fault); see
`bullet_ws._demo`.

``bullet-ws stream TOPIC...`` prints a live stream's events one per line (repr or ``--json``)
until interrupted or ``--count`` events; see `bullet_ws._stream`.

``bullet-ws mock-exchange`` serves the fake exchange (`bullet_ws.testing.MockExchange`) until
SIGINT/SIGTERM, after printing ``listening on ws://HOST:PORT/ws``.

Bad arguments exit 2 with a usage message. The heavy imports happen inside the subcommands, so
``bullet-ws --help`` is quick.
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
    p.add_argument(
        "--legacy-shapes",
        action="store_true",
        help="aggTrade in the pre-2026-05-23 shape instead of the live one",
    )
    p.add_argument(
        "--idle-close",
        type=float,
        default=None,
        metavar="S",
        help="close a connection whose client sent no text message for S seconds, after a "
        "'disconnecting' status (the live server: 60)",
    )
    p.add_argument(
        "--max-duration",
        type=float,
        default=None,
        metavar="S",
        help="lifetime cap of each connection in seconds ('disconnecting', then close)",
    )
    p.add_argument(
        "--shared-sequence",
        action="store_true",
        help="market-data ids follow one server-wide clock (rate per topic), so that "
        "connections open at once carry the same ids",
    )
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
            legacy_shapes=args.legacy_shapes,
            idle_close=args.idle_close,
            max_duration=args.max_duration,
            shared_sequence=args.shared_sequence,
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


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds > 0, got {value!r}"
        ) from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {value!r}")
    return seconds


def _url(value: str) -> str:
    from bullet_ws.urls import resolve_url

    try:
        resolve_url(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return value


def _topic(value: str) -> str:
    if not value or "@" not in value or any(ch.isspace() for ch in value):
        raise argparse.ArgumentTypeError(
            f"a topic looks like SYMBOL@STREAM (e.g. BTC-USD@aggTrade), got {value!r}"
        )
    return value


def _count(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {value!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {value!r}")
    return count


def _add_backend(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        choices=("native", "pure"),
        default="native",
        help="client backend: native (Rust core, default) or pure (asyncio + websockets)",
    )


def _add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="watch the client survive faults from a fake exchange (live view + summary)",
        description="Start the fake exchange on loopback (2000 msgs/s), connect the managed "
        "socket, subscribe to aggTrade, depth20 and bookTicker on BTC-USD and ETH-USD, and inject "
        "faults on a schedule: a close frame, a TCP reset, a zombie (silence caught by "
        "idle_timeout) and an accept-then-drop storm. Shows messages/s, latency, reconnects, "
        "backoff, drops, the replayed topics and the faults survived; ends with a summary. "
        "Exit status 0 when the client recovered from every fault, 1 otherwise.",
    )
    p.add_argument(
        "--seconds",
        type=_seconds,
        default=12.0,
        help="how long to run (default 12; the four faults need about 8)",
    )
    _add_backend(p)
    p.add_argument("--no-faults", action="store_true", help="inject no faults")
    p.add_argument(
        "--url",
        type=_url,
        default=None,
        help="run against this server (mainnet, testnet, ws(s):// or http(s):// URL) instead of "
        "the fake exchange; no faults then",
    )
    p.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Runs the demo; returns the exit code."""
    from bullet_ws._demo import DemoOptions
    from bullet_ws._demo import run_demo as demo

    opts = DemoOptions(
        backend=args.backend, seconds=args.seconds, faults=not args.no_faults, url=args.url
    )
    return demo(opts)


def _add_stream(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "stream",
        help="print a live stream's events, one per line",
        description="Subscribe to TOPICs and print every event one per line (its repr, or a JSON "
        "object with 'type' and the attributes) until interrupted (Ctrl-C: exit 0) or COUNT "
        "events. A failed connect prints one line and exits 1.",
    )
    p.add_argument("topics", nargs="+", type=_topic, metavar="TOPIC", help="e.g. BTC-USD@aggTrade")
    p.add_argument(
        "--url",
        type=_url,
        default="mainnet",
        help="mainnet (default), testnet, or a ws(s):// or http(s):// URL",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--count", type=_count, default=None, metavar="N", help="stop after N events")
    _add_backend(p)
    p.set_defaults(run=run_stream)


def run_stream(args: argparse.Namespace) -> int:
    """Streams until interrupted or --count events; returns the exit code."""
    from bullet_ws._stream import StreamOptions
    from bullet_ws._stream import run_stream as stream

    opts = StreamOptions(
        topics=list(dict.fromkeys(args.topics)),
        url=args.url,
        json=args.json,
        count=args.count,
        backend=args.backend,
    )
    return stream(opts)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bullet-ws", description="bullet-ws tools")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_demo(sub)
    _add_stream(sub)
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
