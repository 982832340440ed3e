"""The native backend's socket and `connect()`: the Rust core behind the shared validation.

The hot methods (`recv`, `recv_batch`, `__anext__`) and the order methods (`submit`, `order_*`)
are the native class's own; this subclass adds the other commands. Every command validates its
arguments with the same code as the pure backend (the order methods defer to it for anything
that is not plainly valid).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from bullet_ws import _core
from bullet_ws._connect import Connect, resolve_connect_args
from bullet_ws._validate import (
    conflate_arg,
    handler_arg,
    id_arg,
    symbol_arg,
    topics_arg,
)
from bullet_ws.config import ManagedWsConfig
from bullet_ws.errors import BookNotFound

__all__ = ["ManagedWebSocket", "connect"]


class ManagedWebSocket(_core.ManagedWebSocket):
    """An auto-reconnecting socket to the Bullet exchange. Open it with `bullet_ws.connect()`.

    Commands are synchronous and fire-and-forget: they queue a command for the background task
    and return; acks and errors arrive as events. They raise `StoppedError` once the socket has
    stopped and `BusyError` when the command queue (256) is full; bad arguments raise
    TypeError/ValueError naming the argument, and nothing is queued then.
    """

    __slots__ = ()

    def subscribe(
        self, topics: Iterable[str], id: int | None = None, conflate: bool = False
    ) -> None:
        """Subscribe to the topics not active yet (nothing is sent if none are new).

        Active topics are replayed after every reconnect. `conflate=True` (bookTicker,
        markPrice and depth topics only) keeps only each topic's newest undelivered message
        while the consumer is behind (`stats.events_conflated`); a local setting that also
        applies to (or, with False, is removed from) topics already active.
        """
        wanted = topics_arg(topics)
        request_id = id_arg(id)
        self._subscribe(wanted, request_id, conflate_arg(wanted, conflate))

    def unsubscribe(self, topics: Iterable[str], id: int | None = None) -> None:
        """Unsubscribe from the active ones among `topics` (nothing is sent if none are)."""
        self._unsubscribe(topics_arg(topics), id_arg(id))

    def list_subscriptions(self, id: int | None = None) -> None:
        """Ask the server for its list of this connection's subscriptions (retried once after a
        failed write, like orders)."""
        self._list_subscriptions(id_arg(id))

    def book(self, symbol: str) -> _core.OrderBook:
        """The live order book of `symbol`, kept in Rust from its subscribed depth topic
        (`SYMBOL@depth5|10|20`); `BookNotFound` (a KeyError) when there is none.

        Its levels are kept from its subscribe until its first depth message 5 s or more after
        it (`BOOK_UNREAD_GRACE`), and for good from the first call: called right after
        `subscribe` it misses nothing, whatever came first. First called once the levels were
        dropped, it is not synced until the next snapshot (periodic; asked for after a second
        without one)."""
        book = self._book(symbol_arg(symbol))
        if book is None:
            raise BookNotFound(symbol)
        return book

    def set_handler(self, handler: Callable[[Any], object] | None) -> None:
        """Push delivery: `handler(event)` is called for every event, in order, on the loop's
        thread, as the burst that carries it is handed over (no Future, no task switch); an
        order it places is written from that same call. While a handler is set, `recv()`,
        `recv_batch()` and `async for` raise RuntimeError; `set_handler(None)` returns to them,
        with what is still queued. Events queued before the call go to the handler on the
        loop's next turn. An exception from the handler goes to the loop's exception handler
        and delivery goes on.
        """
        self._set_handler(handler_arg(handler))

    def ping(self, id: int | None = None) -> None:
        """Send an application-level PING; the server answers with a `Pong`, which (unlike a
        protocol pong) resets the idle clock. Retried once after a failed write, like orders."""
        self._ping(id_arg(id))

    async def __aenter__(self) -> ManagedWebSocket:  # noqa: PYI034 - as the pure backend
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the socket: the commands accepted so far are written first (see `close`)."""
        await self.close()

    def __repr__(self) -> str:
        state = "stopped" if self.stopped else "running"
        return f"<bullet_ws.ManagedWebSocket {state} topics={len(self.topics)}>"


async def _open(ws_url: str, config: ManagedWsConfig) -> ManagedWebSocket:
    ws = ManagedWebSocket(ws_url, config)
    try:
        await ws._wait_connected()
    except BaseException:
        ws.stop()
        raise
    return ws


def connect(
    url: str, *, config: ManagedWsConfig | None = None, **overrides: Any
) -> Connect[ManagedWebSocket]:
    """Open a managed socket: `ws = await connect(...)` or `async with connect(...) as ws`.

    `url` is "mainnet", "testnet", a ws:// or wss:// URL, or an http(s):// REST base. Any
    `ManagedWsConfig` field can be given as a keyword and overrides `config`. A malformed URL or
    config raises at once; a failed initial connect raises `ConnectError` (not retried).
    """
    ws_url, cfg = resolve_connect_args(url, config, overrides)
    _core._check_url(ws_url)  # what the transport would refuse fails here, not at await
    return Connect(_open, ws_url, cfg)
