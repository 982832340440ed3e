"""bullet_ws.pure: the pure-Python backend (asyncio + websockets), same API as `bullet_ws`.

It needs no compiled code of ours: it imports only the shared modules and `websockets`, so it
works where no native wheel exists and serves as the benchmarks' baseline.
"""

from __future__ import annotations

from typing import Any

from bullet_ws._connect import Connect, resolve_connect_args
from bullet_ws.config import ManagedWsConfig
from bullet_ws.errors import (
    BookNotFound,
    BulletWsError,
    BusyError,
    ConnectError,
    ConnectTimeout,
    HandshakeError,
    ManagedWsError,
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
from bullet_ws.pure.book import OrderBook
from bullet_ws.pure.managed import ManagedWebSocket, open_managed
from bullet_ws.pure.messages import (
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
)
from bullet_ws.pure.parse import parse_message
from bullet_ws.pure.transport import check_url
from bullet_ws.topics import KlineInterval, OrderbookDepth, Topic

__all__ = [
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
    "connect",
    "parse_message",
]


def connect(
    url: str, *, config: ManagedWsConfig | None = None, **overrides: Any
) -> Connect[ManagedWebSocket]:
    """Connect to `url` ("mainnet", "testnet", a ws(s):// URL or an http(s):// REST base).

    Returns an object that is awaitable (giving a `ManagedWebSocket`) and an async context
    manager (closing the socket on exit). `overrides` are `ManagedWsConfig` fields applied on top
    of `config`. Bad input raises at once; the initial connect raises ConnectError,
    ConnectTimeout or HandshakeError and is not retried.
    """
    ws_url, resolved = resolve_connect_args(url, config, overrides)
    check_url(ws_url)  # what websockets would refuse fails here, not at await
    return Connect(open_managed, ws_url, resolved)
