"""bullet-ws: a managed, auto-reconnecting WebSocket client for the Bullet exchange.

The native backend (a Rust core on tokio) is used when its extension module is present; otherwise
this package falls back to `bullet_ws.pure` (asyncio + websockets), which has the same API.
`BACKEND` tells which one is in use.
"""

from __future__ import annotations

from bullet_ws.config import ManagedWsConfig
from bullet_ws.errors import (
    BulletWsError,
    BusyError,
    ConnectError,
    ConnectTimeout,
    HandshakeError,
    ManagedWsError,
    StoppedError,
)
from bullet_ws.events import (
    Disconnected,
    OrderUnacked,
    Reconnected,
    Reconnecting,
    Rotated,
    Stats,
)
from bullet_ws.topics import KlineInterval, OrderbookDepth, Topic

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
    from bullet_ws._native import ManagedWebSocket, connect

    BACKEND = "native"
except ImportError:  # no wheel for this platform: the pure backend has the same API
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

__version__ = "0.1.0"

__all__ = [
    "BACKEND",
    "AggTrade",
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
    "ListSubscriptionsResult",
    "ManagedWebSocket",
    "ManagedWsConfig",
    "ManagedWsError",
    "MarkPrice",
    "MarketStatus",
    "MarketStatusEntry",
    "Message",
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
