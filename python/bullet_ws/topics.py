"""Topic strings (PROTOCOL.md §4)."""

from __future__ import annotations

import enum

__all__ = ["KlineInterval", "OrderbookDepth", "Topic"]


class OrderbookDepth(enum.Enum):
    """Order book depth levels of the `@depthN` stream."""

    D5 = "5"
    D10 = "10"
    D20 = "20"


class KlineInterval(enum.Enum):
    """Kline intervals of the `@kline_<interval>` stream."""

    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    H4 = "4h"
    D1 = "1d"


def _symbol(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    return value


class Topic(str):
    """A subscription topic: the wire string itself, so it hashes and compares as that string.

    Build one with the static constructors (`Topic.agg_trade("BTC-USD")`) or from any wire string
    (`Topic("BTC-USD@aggTrade")`); plain `str` topics are accepted everywhere a Topic is.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Topic({str.__repr__(self)})"

    @staticmethod
    def agg_trade(symbol: str) -> Topic:
        return Topic(f"{_symbol('symbol', symbol)}@aggTrade")

    @staticmethod
    def depth(symbol: str, depth: OrderbookDepth = OrderbookDepth.D10) -> Topic:
        if not isinstance(depth, OrderbookDepth):
            raise TypeError(f"depth must be an OrderbookDepth, got {type(depth).__name__}")
        return Topic(f"{_symbol('symbol', symbol)}@depth{depth.value}")

    @staticmethod
    def book_ticker(symbol: str) -> Topic:
        return Topic(f"{_symbol('symbol', symbol)}@bookTicker")

    @staticmethod
    def mark_price(symbol: str) -> Topic:
        return Topic(f"{_symbol('symbol', symbol)}@markPrice")

    @staticmethod
    def kline(symbol: str, interval: KlineInterval) -> Topic:
        if not isinstance(interval, KlineInterval):
            raise TypeError(f"interval must be a KlineInterval, got {type(interval).__name__}")
        return Topic(f"{_symbol('symbol', symbol)}@kline_{interval.value}")

    @staticmethod
    def force_order(symbol: str) -> Topic:
        return Topic(f"{_symbol('symbol', symbol)}@forceOrder")

    @staticmethod
    def user_orders(address: str) -> Topic:
        # The address comes first here, unlike the market streams (PROTOCOL.md §4).
        return Topic(f"{_symbol('address', address)}@user.orders")

    @staticmethod
    def user_degen_positions(address: str) -> Topic:
        """Completed Degen positions of `address` (`DegenPositionCompleted`)."""
        return Topic(f"{_symbol('address', address)}@user.degenPositions")

    @staticmethod
    def market_status() -> Topic:
        """Every market's status: a snapshot on subscribe, then changes (`MarketStatus`)."""
        return Topic("!marketStatus@arr")

    @staticmethod
    def all_tickers() -> Topic:
        return Topic("!ticker@arr")

    @staticmethod
    def all_mark_prices() -> Topic:
        return Topic("!markPrice@arr")

    @staticmethod
    def all_book_tickers() -> Topic:
        return Topic("!bookTicker@arr")

    @staticmethod
    def all_force_orders() -> Topic:
        return Topic("!forceOrder@arr")
