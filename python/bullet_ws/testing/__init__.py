"""A fake Bullet exchange for tests, demos and benchmarks: `MockExchange`.

The server is native (crate ``bullet_ws_mock``, exposed as ``bullet_ws._core._MockServer``): it runs
on its own thread with its own tokio runtime, never takes the GIL, and so never competes with the
client under test for the event loop. It speaks the Bullet WebSocket protocol (docs/PROTOCOL.md),
records everything each client sends, and misbehaves on command (`MockExchange.fault`).

Protocol behaviour, in short:

* On upgrade: ``{"e":"status","E":<µs>,"status":"connected","clientId":"ws_<index>"}``.
* ``SUBSCRIBE``/``UNSUBSCRIBE``/``LIST_SUBSCRIPTIONS``/``PING`` and the four ``ORDER.*`` methods,
  upper or lower case (and ``order.modify``, ``order.cancelAll``), are answered as PROTOCOL.md §3.4.
  The request ``id`` is echoed; a request without an id (absent or null) gets ``"id":null``.
* Subscribe errors are tagged (``"e":"error"``), one per failing topic, with ``param`` = the topic:
  -1004 malformed topic or unknown stream, -1122 unknown symbol, -1010 already subscribed, -1003
  beyond ``max_topics``. The other topics of the request are subscribed, and one success ack follows
  if at least one topic was subscribed (or ``params`` was empty). Unsubscribe always succeeds.
* A frame that is not a known request (bad JSON, no/unknown method, bad ``id``/``params``) gets a
  tagged -1008 error. Bad input never closes the connection. Binary frames are handled like text.
* Orders are acked ``{"e":<method as sent>,"id":..,"E":..,"results":{"tx_id":"0x…","status":
  "submitted","order_ids":[n],"client_order_ids":[]}}``; a missing ``params.tx`` gets an untagged
  -1102. After an ack, if the connection is subscribed to ``ADDRESS@user.orders``, an
  ``orderTradeUpdate`` follows per such topic (PlaceOrder shape for place/amend, Cancel shape for
  cancel/cancel-all). Order ids are unique per server, counting from 1.
* Streams: ``SYM@aggTrade``, ``SYM@depth5|10|20``, ``SYM@bookTicker``, ``SYM@markPrice``,
  ``SYM@forceOrder``. ``SYM@kline_<i>`` and ``!ticker|!markPrice|!bookTicker|!forceOrder@arr`` are
  accepted but never streamed. ``rate`` messages/s per connection in total, round robin over the
  streaming topics in subscription order (the first frame right after the subscribe ack); ``rate=None``
  floods (as fast as the socket takes). Each topic's first frame after (re)subscribing is its first:
  depth starts with a snapshot (``mt:"s"``, ``pu:0``, ``U=u=1``) then updates with ``U = pu + 1``
  and ``pu`` = previous ``u``, with a snapshot of the whole book (``U = u = pu + 1``) after every
  100 updates; the book keeps at most N levels a side at fixed prices, and a ``"0"`` quantity
  removes a level; bookTicker ``u`` counts 1, 2, … with the first ``mt:"s"``; aggTrade
  ``a`` counts 1, 2, …; ``co`` on every 4th trade. ``E`` is the wall clock (µs) when the frame was
  built (one stamp per write batch when flooding).
* Server rules of the live exchange, when enabled: ``idle_close`` closes a connection whose client
  sent no text message for that long (control frames such as pings do not count), and
  ``max_duration`` caps each connection's lifetime. Either sends
  ``{"e":"status","E":..,"status":"disconnecting","clientId":..,"reason":"idle_timeout"}`` (or
  ``"max_duration"``) first, then closes with 1000. A silenced connection enforces neither.
"""

from __future__ import annotations

import asyncio
import importlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["FAULT_KINDS", "ConnectionRecord", "MockExchange"]

# The fake exchange's bounds (crates/mock MockConfig): values outside them are refused with a
# ValueError, never a panic. Rates: below, the period would overflow; above, it rounds to zero.
MIN_RATE = 1e-6
MAX_RATE = 1e7
MIN_PERIOD = 0.001  # the shortest ping_interval, idle_close or max_duration
MAX_WAIT = 1e9
MAX_OVERSIZE = 256 * 1024 * 1024

#: Every fault kind `MockExchange.fault` accepts.
FAULT_KINDS: tuple[str, ...] = (
    "close",
    "reset",
    "fin",
    "silence",
    "disconnecting",
    "send_text",
    "send_binary",
    "oversize",
    "huge_header",
    "ping",
    "refuse",
    "stall_handshake",
    "accept_drop",
    "no_status",
    "wrong_first",
    "reject_orders",
    "depth_gap",
)


@dataclass(frozen=True)
class ConnectionRecord:
    """A snapshot of what the mock saw on one upgraded connection.

    Times are monotonic seconds on the clock of `time.monotonic()`.

    Attributes:
        index: 0-based order of completed upgrades (stalled or refused TCP connections get none).
        client_id: the ``clientId`` sent in the ``connected`` status: ``"ws_<index>"``.
        opened_at: when the upgrade completed.
        closed_at: when the TCP connection was closed, or None while open.
        frames: every text message from the client, in order (reassembled if fragmented;
            invalid UTF-8 is replaced).
        frame_times: receive time of each entry of `frames`.
        binary_frames: every binary message from the client, in order.
        pongs: pong frames received (answers to the server's pings).
        pings: ping frames received from the client.
        close_code: code of the client's close frame, or None (no close frame, or none with a code).
        closed_by: ``"server"`` (a fault, a framing error, or `MockExchange.stop`), ``"client"``
            (close frame, FIN or reset from the client), or None while open.
        frames_sent: frames the server queued on this connection (status, acks, errors, market data,
            pings, pongs, close).
    """

    index: int
    client_id: str
    opened_at: float
    closed_at: float | None
    frames: list[str]
    frame_times: list[float]
    binary_frames: list[bytes]
    pongs: int
    pings: int
    close_code: int | None
    closed_by: Literal["server", "client"] | None
    frames_sent: int

    @property
    def closed(self) -> bool:
        """Whether the connection is closed."""
        return self.closed_at is not None


_MAX_PERIOD = 86_400.0  # the native server's bound: far beyond any test


def _check_period(name: str, value: object) -> None:
    """None, or seconds in [0.001, 86400]; the ValueError names the argument."""
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not MIN_PERIOD <= value <= _MAX_PERIOD
    ):
        raise ValueError(
            f"{name} must be a number of seconds in [0.001, 86400] or None, got {value!r}"
        )


def _record(d: dict[str, Any]) -> ConnectionRecord:
    return ConnectionRecord(**d)


class MockExchange:
    """A fake Bullet exchange on ``ws://host:port/ws``.

    Usable as ``with MockExchange() as mock:`` and ``async with MockExchange() as mock:`` (both
    start it on entry and stop it on exit), or with explicit `start` / `stop`.

    Args:
        host: address to bind.
        port: port to bind; 0 picks a free one (read it back from `port` / `url`).
        rate: market-data messages per second per connection, over all its streaming topics,
            in 1e-6..1e7; None = as fast as the socket takes them.
        symbols: symbols that market-data topics may name; others get error -1122.
        max_messages: market-data frames per connection; then streaming stops and the connection
            stays open. None = no limit.
        preencode: cycle through a ring of 4096 frames built once per subscription change instead
            of building each frame (fastest; ``E`` is then the ring's build time and the per-topic
            sequences repeat every 4096 frames).
        ping_interval: seconds between server ping frames (0.001..1e9), or None for no pings.
        max_topics: subscriptions allowed per connection; one more gets error -1003. None = no limit.
        legacy_shapes: send aggTrade in the shape before 2026-05-23 (real DEX fields, no
            ``ft z Z rs``) instead of the live one (placeholders), to compare the two.
        idle_close: seconds without a text message from the client after which the connection
            gets the ``disconnecting`` status (reason ``idle_timeout``), then a close 1000, as the
            live server does after 60 s. None = never.
        max_duration: lifetime cap of each connection, in seconds: then the ``disconnecting``
            status (reason ``max_duration``) and a close 1000. None = no cap.
        shared_sequence: market-data ids (aggTrade ``a``, depth ``U``/``u``, bookTicker ``u``)
            follow one server-wide clock instead of restarting at 1 per subscription: id ``n``
            of every topic is due ``n / rate`` seconds after the start (``rate`` is then per
            topic), and a subscription starts at the id due then (depth and bookTicker with a
            snapshot ``mt:"s"``; depth moves one id per frame). Two connections open at once
            carry the same ids at about the same time: a rotation can be checked for gaps and
            duplicates. Needs a ``rate`` and no ``preencode``.

    Periods (`ping_interval`, `idle_close`, `max_duration`) must be in [0.001, 86400] seconds.

    Besides market data, it answers ``SUBMIT`` (ack tagged ``SUBMIT``, then, per
    ``ADDRESS@user.orders`` subscriber, the new order and its fill in the live shape, and per
    ``ADDRESS@user.degenPositions`` subscriber a completed position) and sends a snapshot on
    ``!marketStatus@arr``.

    The ``wait_*`` calls take a `timeout` in 0..1e9 seconds (ValueError otherwise).

    Raises:
        ValueError: a bad argument (at construction), naming it.
        OSError: from `start`, when the address cannot be bound.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rate: float | None = 20.0,
        symbols: Iterable[str] = ("BTC-USD", "ETH-USD", "SOL-USD"),
        max_messages: int | None = None,
        preencode: bool = False,
        ping_interval: float | None = None,
        max_topics: int | None = None,
        legacy_shapes: bool = False,
        idle_close: float | None = None,
        max_duration: float | None = None,
        shared_sequence: bool = False,
    ) -> None:
        if not isinstance(host, str) or not host:
            raise ValueError(f"host must be a non-empty str, got {host!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an int in 0..65535, got {port!r}")
        if rate is not None and (
            isinstance(rate, bool)
            or not isinstance(rate, (int, float))
            or not MIN_RATE <= rate <= MAX_RATE
        ):
            raise ValueError(f"rate must be in {MIN_RATE:g}..{MAX_RATE:g} or None, got {rate!r}")
        if isinstance(symbols, str):
            raise TypeError("symbols must be an iterable of str, not a str")
        symbol_list = list(symbols)
        for s in symbol_list:
            if not isinstance(s, str) or not s or "@" in s:
                raise ValueError(f"symbols must be non-empty str without '@', got {s!r}")
        for name, value in (("max_messages", max_messages), ("max_topics", max_topics)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63
            ):
                raise ValueError(f"{name} must be an int in 0..2**63-1 or None, got {value!r}")
        for name, period in (
            ("ping_interval", ping_interval),
            ("idle_close", idle_close),
            ("max_duration", max_duration),
        ):
            _check_period(name, period)
        if shared_sequence and (rate is None or preencode):
            raise ValueError("shared_sequence needs a rate and no preencode")
        self._options: dict[str, Any] = {
            "host": host,
            "port": port,
            "rate": None if rate is None else float(rate),
            "symbols": symbol_list,
            "max_messages": max_messages,
            "preencode": bool(preencode),
            "ping_interval": None if ping_interval is None else float(ping_interval),
            "max_topics": max_topics,
            "legacy_shapes": bool(legacy_shapes),
            "idle_close": None if idle_close is None else float(idle_close),
            "max_duration": None if max_duration is None else float(max_duration),
            "shared_sequence": bool(shared_sequence),
        }
        self._server: Any = None

    # ----- lifecycle -----

    def start(self) -> Self:
        """Binds and starts serving; returns self. Raises RuntimeError if already running."""
        if self._server is not None and self._server.running:
            raise RuntimeError("MockExchange is already running")
        try:
            # Through importlib: the typed stub of _core need not know this private class.
            native: Any = importlib.import_module("bullet_ws._core")
        except ImportError as e:  # pragma: no cover - depends on the build
            raise RuntimeError(
                "MockExchange needs the native extension bullet_ws._core (maturin develop)"
            ) from e
        if not hasattr(native, "_MockServer"):
            raise RuntimeError(
                "MockExchange needs an extension built with the cargo feature `mock` "
                "(the default wheel has it)"
            )
        self._server = native._MockServer(**self._options)
        return self

    def stop(self) -> None:
        """Closes the listener and every connection (TCP close, no close frame), and joins the
        mock's thread. Open records are marked ``closed_by="server"``. Idempotent; the records stay
        readable afterwards."""
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Joining the mock's thread is quick but blocking: keep the loop free meanwhile.
        await asyncio.to_thread(self.stop)

    def _native(self) -> Any:
        if self._server is None:
            raise RuntimeError("MockExchange is not started")
        return self._server

    @property
    def url(self) -> str:
        """``ws://HOST:PORT/ws`` with the bound address (the port is the real one when port=0)."""
        return str(self._native().url)

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._native().port)

    @property
    def running(self) -> bool:
        """Whether the server is started and not stopped."""
        return self._server is not None and bool(self._server.running)

    # ----- faults -----

    def fault(self, kind: str, *, scope: str = "current", count: int = 1, **params: Any) -> int:
        """Makes the exchange misbehave.

        ``scope="current"`` applies the fault now to every open (upgraded) connection and returns
        how many it hit. ``scope="next"`` queues it for each of the next `count` accepted TCP
        connections and returns `count`. Queued faults are taken in the order queued, one per
        accepted connection (``fault("refuse", scope="next", count=2)`` then
        ``fault("stall_handshake", scope="next")`` refuses two connections, then stalls the
        third), except ``reject_orders``, which applies to the next `count` upgraded connections on
        top of any other fault. While `refusing` is on, accepted connections take no fault. A
        next-fault that is not an opening fault is applied right after the ``connected`` status.

        Kinds and their params (scope: c = current, n = next):

        - ``close(code=1000, reason="")`` (c, n): close frame, then TCP close once the client
          answered (at most 1 s).
        - ``reset()`` (c, n): TCP RST (SO_LINGER 0), no close frame.
        - ``fin()`` (c, n): TCP FIN, no close frame.
        - ``silence(answer_pings=True)`` (c, n): send nothing more (no data, no acks, no close
          reply; frames already queued, at most one write batch, still go out), keep the socket
          open, and answer client ping frames only if `answer_pings`. Requests are still recorded.
        - ``disconnecting(reason="idle_timeout", delay=0)`` (c, n): status ``disconnecting`` with
          this reason, then ``close(1000)`` `delay` seconds later (in [0, 86400]; the connection
          works normally meanwhile).
        - ``send_text(data)``, ``send_binary(data)`` (c, n): one raw frame; `data` is str (UTF-8)
          or bytes (sent as is, even invalid UTF-8 in a text frame).
        - ``oversize(size)`` (c, n): one text frame of exactly `size` payload bytes (a valid JSON
          object ``{"e":"oversize","pad":"xx…"}`` when size >= 25); `size` <= 256 MiB.
        - ``huge_header(length=2**40)`` (c, n): a text frame header announcing `length` bytes, a
          few payload bytes, then silence (``answer_pings=False``) with the socket kept open.
        - ``ping(payload=b"")`` (c, n): `count` ping frames (here `count` counts pings; with
          scope "next" it hits the next one connection). Pongs received are in the record.
        - ``refuse()`` (n): RST the TCP connection at accept, before any byte.
        - ``stall_handshake()`` (n): accept TCP, never answer the upgrade (no record is made).
        - ``accept_drop(how="fin")`` (n): complete the upgrade and send ``connected``, then drop at
          once by ``"fin"``, ``"reset"`` or ``"close"`` (close frame 1000).
        - ``no_status()`` (n): upgrade, never send ``connected``; requests are still answered.
        - ``wrong_first(data)`` (n): send `data` (str or bytes) as the first text frame instead of
          ``connected``; the connection then works normally.
        - ``reject_orders(code=-2010, msg="new order rejected")`` (c, n): answer order requests with
          the untagged error ``{"id":..,"E":..,"error":{"code":code,"msg":msg}}``.
        - ``depth_gap()`` (c): the next update of each depth topic subscribed now skips a
          sequence: one update changes the stream's book but is not sent, so the next ``pu`` is
          not the ``u`` the client saw last. A client that heals the gap (unsubscribe, then
          subscribe) gets a fresh snapshot. With scope "next" it hits nothing (no topic is
          subscribed right after ``connected``).

        Raises:
            ValueError: unknown `kind`, bad `scope` (or a next-only kind with scope "current"),
                `count` < 1, or a missing, unknown or ill-typed param; the message names it.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}, got {kind!r}")
        if scope not in ("current", "next"):
            raise ValueError(f"scope must be 'current' or 'next', got {scope!r}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be an int >= 1, got {count!r}")
        return int(self._native().fault(kind, scope, count, params))

    def clear_faults(self) -> None:
        """Drops the scope-"next" faults that no connection has taken yet."""
        self._native().clear_faults()

    @property
    def refusing(self) -> bool:
        """While True, every accepted TCP connection is reset at once (counted in `tcp_accepts`,
        no record, queued faults untouched)."""
        return bool(self._native().refusing)

    @refusing.setter
    def refusing(self, on: bool) -> None:
        self._native().set_refusing(bool(on))

    # ----- records -----

    @property
    def connections(self) -> list[ConnectionRecord]:
        """Snapshots of every upgraded connection, in upgrade order (index = position)."""
        return [_record(d) for d in self._native().connections()]

    def connection(self, index: int) -> ConnectionRecord:
        """Snapshot of connection `index`. Raises IndexError if there is none (yet)."""
        d = self._native().connection(index)
        if d is None:
            raise IndexError(f"no connection {index}: {self.handshakes} handshakes so far")
        return _record(d)

    def requests(self, index: int) -> list[dict[str, Any]]:
        """The text frames of connection `index` parsed as JSON, keeping only those that parse to a
        JSON object, in order. Raises IndexError if there is no such connection."""
        import json

        out: list[dict[str, Any]] = []
        for frame in self.connection(index).frames:
            try:
                value = json.loads(frame)
            except ValueError:
                continue
            if isinstance(value, dict):
                out.append(value)
        return out

    @property
    def tcp_accepts(self) -> int:
        """Raw TCP accepts, including refused and stalled connections."""
        return int(self._native().tcp_accepts)

    @property
    def handshakes(self) -> int:
        """Completed WebSocket upgrades (= len(connections))."""
        return int(self._native().handshakes)

    # ----- waits (blocking; release the GIL) -----

    def wait_handshakes(self, n: int, timeout: float = 5.0) -> list[ConnectionRecord]:
        """Blocks until at least `n` upgrades happened; returns `connections`.

        Raises:
            TimeoutError: after `timeout` seconds, saying how many happened (and TCP accepts).
        """
        if not self._native().wait_handshakes(n, timeout):
            raise TimeoutError(
                f"expected >= {n} handshakes within {timeout}s, saw {self.handshakes} "
                f"({self.tcp_accepts} TCP accepts)"
            )
        return self.connections

    def wait_frames(self, index: int, n: int, timeout: float = 5.0) -> ConnectionRecord:
        """Blocks until connection `index` exists and received at least `n` data messages (text
        and binary count); returns its record.

        Raises:
            TimeoutError: after `timeout` seconds, with the frames seen so far.
        """
        if not self._native().wait_frames(index, n, timeout):
            raise TimeoutError(
                f"expected >= {n} client frames on connection {index} within {timeout}s, "
                f"saw {self._describe(index)}"
            )
        return self.connection(index)

    def wait_closed(self, index: int, timeout: float = 5.0) -> ConnectionRecord:
        """Blocks until connection `index` exists and is closed; returns its record.

        Raises:
            TimeoutError: after `timeout` seconds, saying whether it exists and is open.
        """
        if not self._native().wait_closed(index, timeout):
            raise TimeoutError(
                f"expected connection {index} closed within {timeout}s, saw {self._describe(index)}"
            )
        return self.connection(index)

    def _describe(self, index: int) -> str:
        d = self._native().connection(index)
        if d is None:
            return f"no such connection ({self.handshakes} handshakes)"
        state = "closed" if d["closed_at"] is not None else "open"
        frames = d["frames"] + [repr(b) for b in d["binary_frames"]]
        shown = frames[:5]
        more = f" and {len(frames) - 5} more" if len(frames) > 5 else ""
        return f"{state}, {len(frames)} frames: {shown}{more}"

    # ----- async twins: the blocking wait runs in a thread so the event loop keeps running -----

    async def wait_handshakes_async(self, n: int, timeout: float = 5.0) -> list[ConnectionRecord]:
        """`wait_handshakes` without blocking the event loop."""
        return await asyncio.to_thread(self.wait_handshakes, n, timeout)

    async def wait_frames_async(self, index: int, n: int, timeout: float = 5.0) -> ConnectionRecord:
        """`wait_frames` without blocking the event loop."""
        return await asyncio.to_thread(self.wait_frames, index, n, timeout)

    async def wait_closed_async(self, index: int, timeout: float = 5.0) -> ConnectionRecord:
        """`wait_closed` without blocking the event loop."""
        return await asyncio.to_thread(self.wait_closed, index, timeout)

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        return f"MockExchange({where})"
