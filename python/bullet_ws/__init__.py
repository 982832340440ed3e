"""bullet-ws: a managed, auto-reconnecting WebSocket client for the Bullet exchange.

The native backend (a Rust core on tokio) is used when its extension module is present; otherwise
this package falls back to `bullet_ws.pure` (asyncio + websockets), which has the same API.
`BACKEND` tells which one is in use.
"""

from __future__ import annotations

import warnings

from bullet_ws.config import ManagedWsConfig
from bullet_ws.errors import (
    BookNotFound,
    BulletWsError,
    BusyError,
    ConnectError,
    ConnectTimeout,
    HandshakeError,
    ManagedWsError,
    NativeBackendUnavailable,
    StoppedError,
)
from bullet_ws.events import (
    BookGap,
    BookResynced,
    Disconnected,
    LatencySummary,
    OrderUnacked,
    Reconnected,
    Reconnecting,
    Rotated,
    Stats,
)
from bullet_ws.topics import KlineInterval, OrderbookDepth, Topic


def _pure_version() -> str:
    # Cargo.toml is the one source of the version; without the extension, the installed
    # distribution's metadata (written by maturin from Cargo.toml) tells it.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bullet-ws")
    except PackageNotFoundError:  # a plain checkout on sys.path
        return "0+unknown"


try:
    from bullet_ws._core import (
        AggTrade,
        BookTicker,
        DegenPosition,
        DegenPositionCompleted,
        DepthUpdate,
        ErrorMessage,
        ForceOrder,
        ListSubscriptionsResult,
        MarketStatus,
        MarketStatusEntry,
        MarkPrice,
        Message,
        OrderBook,
        OrderResult,
        OrderUpdate,
        Pong,
        Record,
        Status,
        SubscribeResult,
        Unknown,
        UnsubscribeResult,
        parse_message,
    )
    from bullet_ws._core import __version__ as _native_version
    from bullet_ws._native import ManagedWebSocket, connect

    BACKEND = "native"
    __version__: str = _native_version
except ModuleNotFoundError as exc:
    # Only a missing extension (no wheel for this platform) means "use the pure backend". Any
    # other failure (a broken extension, an undefined symbol, a bug in _native.py) must surface:
    # silently degrading to the pure backend would hide it, in tests as in production.
    if exc.name != "bullet_ws._core":
        raise
    warnings.warn(
        "bullet_ws: the native extension (bullet_ws._core) is not installed for this platform; "
        "using the pure-Python backend (same API, about 10x slower)",
        NativeBackendUnavailable,
        stacklevel=2,
    )
    from bullet_ws.pure import (  # type: ignore[assignment]
        AggTrade,
        BookTicker,
        DegenPosition,
        DegenPositionCompleted,
        DepthUpdate,
        ErrorMessage,
        ForceOrder,
        ListSubscriptionsResult,
        ManagedWebSocket,
        MarketStatus,
        MarketStatusEntry,
        MarkPrice,
        Message,
        OrderBook,
        OrderResult,
        OrderUpdate,
        Pong,
        Record,
        Status,
        SubscribeResult,
        Unknown,
        UnsubscribeResult,
        connect,
        parse_message,
    )

    BACKEND = "pure"
    __version__ = _pure_version()

__all__ = [
    "BACKEND",
    "AggTrade",
    "BookGap",
    "BookNotFound",
    "BookResynced",
    "BookTicker",
    "BulletWsError",
    "BusyError",
    "ConnectError",
    "ConnectTimeout",
    "DegenPosition",
    "DegenPositionCompleted",
    "DepthUpdate",
    "Disconnected",
    "ErrorMessage",
    "ForceOrder",
    "HandshakeError",
    "KlineInterval",
    "LatencySummary",
    "ListSubscriptionsResult",
    "ManagedWebSocket",
    "ManagedWsConfig",
    "ManagedWsError",
    "MarkPrice",
    "MarketStatus",
    "MarketStatusEntry",
    "Message",
    "NativeBackendUnavailable",
    "OrderBook",
    "OrderResult",
    "OrderUnacked",
    "OrderUpdate",
    "OrderbookDepth",
    "Pong",
    "Reconnected",
    "Reconnecting",
    "Record",
    "Rotated",
    "Stats",
    "Status",
    "StoppedError",
    "SubscribeResult",
    "Topic",
    "Unknown",
    "UnsubscribeResult",
    "__version__",
    "connect",
    "parse_message",
]
