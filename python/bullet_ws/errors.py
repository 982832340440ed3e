"""Exceptions shared by both backends (the native core raises these very classes)."""

from __future__ import annotations

__all__ = [
    "BookNotFound",
    "BulletWsError",
    "BusyError",
    "ConnectError",
    "ConnectTimeout",
    "HandshakeError",
    "ManagedWsError",
    "NativeBackendUnavailable",
    "StoppedError",
]


class BulletWsError(Exception):
    """Base class of every error raised by bullet-ws."""


class ConnectError(BulletWsError):
    """The initial connect failed (refused, DNS, TLS, ...). It is never retried."""


class ConnectTimeout(ConnectError, TimeoutError):
    """The upgrade plus the server's `connected` status did not finish within connection_timeout."""


class HandshakeError(ConnectError):
    """The HTTP upgrade was refused (non-101) or the first message was not status/connected."""


class ManagedWsError(BulletWsError):
    """A command could not be queued on a managed socket."""


class StoppedError(ManagedWsError):
    """The managed socket has stopped; commands are no longer accepted."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("managed websocket is stopped",)))


class BusyError(ManagedWsError):
    """The command queue (256 entries) is full: the background task is not keeping up."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("managed websocket command channel is full",)))


class BookNotFound(BulletWsError, KeyError):
    """`ws.book(symbol)` for a symbol without a subscribed depth topic (`SYMBOL@depth5|10|20`).

    A `KeyError` (the book is looked up by symbol) whose text reads as a sentence; `symbol` is the
    symbol asked for.
    """

    def __init__(self, symbol: str) -> None:
        super().__init__(
            f"no order book for {symbol!r}: subscribe to {symbol}@depth5, @depth10 or @depth20 first"
        )
        self.symbol = symbol

    def __str__(self) -> str:
        return str(self.args[0])


class NativeBackendUnavailable(RuntimeWarning):
    """Warned once, at `import bullet_ws`, when no native extension exists for this platform and
    the pure-Python backend is used instead. `bullet_ws.BACKEND` then says "pure"."""
