# Hand-written stub of the native module; checked by `python -m mypy.stubtest bullet_ws._core`.
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Final, Generic, Literal, TypeAlias, TypeVar, final

from typing_extensions import Self, disjoint_base

from bullet_ws.config import ManagedWsConfig
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

_T = TypeVar("_T")
# What `recv()` gives: a server message or a lifecycle event.
_Event: TypeAlias = (
    Message
    | Reconnecting
    | Reconnected
    | Disconnected
    | OrderUnacked
    | Rotated
    | BookGap
    | BookResynced
)

__all__ = [
    "BOOK_UNREAD_GRACE",
    "CLOSE_GRACE",
    "COMMAND_CAPACITY",
    "DROP_WARNING_INTERVAL",
    "KEEPALIVE_ID_BASE",
    "LATENCY_WINDOW",
    "MAX_DURATION",
    "MAX_OUTSTANDING_KEEPALIVES",
    "MAX_SIZE",
    "MIN_BACKOFF",
    "RESUBSCRIBE_EVERY",
    "ROTATION_CATCH_UP",
    "ROTATION_DRAIN",
    "ROTATION_MAX_HELD",
    "ROTATION_MIN_RETRY",
    "STOP_GRACE",
    "AggTrade",
    "BookTicker",
    "DegenPosition",
    "DegenPositionCompleted",
    "DepthUpdate",
    "ErrorMessage",
    "ForceOrder",
    "ListSubscriptionsResult",
    "ManagedWebSocket",
    "MarkPrice",
    "MarketStatus",
    "MarketStatusEntry",
    "Message",
    "OrderBook",
    "OrderResult",
    "OrderUpdate",
    "Pong",
    "Record",
    "Status",
    "SubscribeResult",
    "Unknown",
    "UnsubscribeResult",
    "_BookFeeder",
    "_Deliver",
    "_Doorbell",
    "_MockServer",
    "_Wait",
    "__version__",
    "_backoff_trace",
    "_check_url",
    "_latency_window",
    "build_profile",
    "parse_message",
]

__version__: Final[str]
"""The package version, from Cargo.toml (the only place it is written)."""
build_profile: Final[Literal["release", "debug"]]
"""The Cargo profile the extension was compiled with."""

# The bounds of bullet_ws.config (MAX_DURATION, MAX_SIZE), from the Rust core.
MAX_DURATION: float
MAX_SIZE: int
# Rules the pure backend shares through bullet_ws._policy (checked by
# tests/test_shared_constants.py and tests/test_policy.py).
STOP_GRACE: float
KEEPALIVE_ID_BASE: int
COMMAND_CAPACITY: int
MIN_BACKOFF: float
RESUBSCRIBE_EVERY: float
BOOK_UNREAD_GRACE: float
CLOSE_GRACE: float
DROP_WARNING_INTERVAL: float
MAX_OUTSTANDING_KEEPALIVES: int
ROTATION_CATCH_UP: float
ROTATION_DRAIN: float
ROTATION_MIN_RETRY: float
ROTATION_MAX_HELD: int

def _backoff_trace(
    initial: float, maximum: float, reset_after: float, steps: list[tuple[float, bool] | None]
) -> list[tuple[float, float]]:
    """The native backoff through `steps` (None: an attempt failed; (uptime, reconnected): a
    connection ended): the base delay and the largest jitter, before the first step and after
    each. For tests/test_policy.py."""

LATENCY_WINDOW: float
"""Seconds `Stats.exchange_delay` and `Stats.delivery_delay` cover (two rotating half-window
histograms: a summary holds the samples of the last 5 to 10 s)."""

def _check_url(url: str) -> None: ...
def _latency_window(samples: list[tuple[float, int]], at: float) -> LatencySummary | None:
    """The native latency window fed with `(seconds, microseconds)` samples and summarised at
    `at` seconds (a test hook: both backends must quantise alike)."""

class Message:
    """Base class of every server message."""

    @property
    def request_id(self) -> int | None:
        """The id this message answers (acks, pongs, errors, order results), else None."""
    @property
    def is_error(self) -> bool:
        """True for an `ErrorMessage`."""

class Record:
    """Base class of the records inside messages (`MarketStatusEntry`, `DegenPosition`)."""

# BEGIN GENERATED: messages (scripts/gen_spec.py)

@final
class MarketStatusEntry(Record):
    """One market of a `MarketStatus`."""

    __match_args__ = ("symbol", "market_id", "status", "previous_status", "change")
    @property
    def symbol(self) -> str:
        """The symbol."""
    @property
    def market_id(self) -> int:
        """Market id."""
    @property
    def status(self) -> str:
        """TRADING, POST_ONLY, CANCEL_ONLY, HALT or CLOSE (others: not tradable)."""
    @property
    def previous_status(self) -> str | None:
        """The status before, when `change` is `status`."""
    @property
    def change(self) -> str | None:
        """`listed`, `status` or `delisted`; absent in snapshots."""

@final
class DegenPosition(Record):
    """The position of a `DegenPositionCompleted`."""

    __match_args__ = ("id", "address", "market_id", "asset", "direction", "wager", "realized_pnl", "fee", "status", "close_reason", "liquidation_type", "opened_time", "closed_time", "hold_time", "closing_tx_hash")
    @property
    def id(self) -> str:
        """Position id."""
    @property
    def address(self) -> str:
        """Owner address."""
    @property
    def market_id(self) -> int:
        """Market id."""
    @property
    def asset(self) -> str:
        """Asset."""
    @property
    def direction(self) -> str:
        """LONG or SHORT."""
    @property
    def wager(self) -> str:
        """USDC collateral committed (decimal string)."""
    @property
    def realized_pnl(self) -> str:
        """Realized PnL less fees (decimal string)."""
    @property
    def fee(self) -> str:
        """Fees (decimal string)."""
    @property
    def status(self) -> str:
        """closed or liquidated."""
    @property
    def close_reason(self) -> str:
        """Why it closed."""
    @property
    def liquidation_type(self) -> str | None:
        """The liquidation mechanism, when liquidated."""
    @property
    def opened_time(self) -> int:
        """Open time (µs)."""
    @property
    def closed_time(self) -> int:
        """Close time (µs)."""
    @property
    def hold_time(self) -> int:
        """Hold time (µs)."""
    @property
    def closing_tx_hash(self) -> str:
        """Closing transaction hash."""

@final
class Status(Message):
    """The connection's state: `connected` opens every connection; `disconnecting` (with a reason) precedes a server-side close."""

    __match_args__ = ("event_time", "status", "client_id", "reason")
    @property
    def event_time(self) -> int:
        """Event time (µs)."""
    @property
    def status(self) -> str:
        """`connected` or `disconnecting`."""
    @property
    def client_id(self) -> str:
        """The server's id for this connection."""
    @property
    def reason(self) -> str | None:
        """Why the server is disconnecting (`idle_timeout`, `pong_timeout`, `max_duration`, ...)."""

@final
class Pong(Message):
    """The reply to an application-level `PING`."""

    __match_args__ = ("id", "event_time")
    @property
    def id(self) -> int | None:
        """The id of the ping."""
    @property
    def event_time(self) -> int:
        """Event time (µs)."""

@final
class ErrorMessage(Message):
    """An error from the server, tagged (`e: error`) or untagged (order errors)."""

    __match_args__ = ("id", "event_time", "code", "msg", "param")
    @property
    def id(self) -> int | None:
        """The id of the request that failed."""
    @property
    def event_time(self) -> int:
        """Event time (µs)."""
    @property
    def code(self) -> int:
        """The code on the wire (unlisted codes are kept, not folded into -1000)."""
    @property
    def msg(self) -> str:
        """The server's message."""
    @property
    def param(self) -> str | None:
        """The offending parameter, e.g. a topic."""

@final
class SubscribeResult(Message):
    """The acknowledgement of a `SUBSCRIBE`."""

    __match_args__ = ("id", "event_time", "result")
    @property
    def id(self) -> int | None:
        """The id of the request."""
    @property
    def event_time(self) -> int:
        """Event time (µs)."""
    @property
    def result(self) -> str:
        """`success` on success."""

@final
class UnsubscribeResult(Message):
    """The acknowledgement of an `UNSUBSCRIBE`."""

    __match_args__ = ("id", "event_time", "result")
    @property
    def id(self) -> int | None:
        """The id of the request."""
    @property
    def event_time(self) -> int:
        """Event time (µs)."""
    @property
    def result(self) -> str:
        """`success` on success."""

@final
class ListSubscriptionsResult(Message):
    """The reply to `LIST_SUBSCRIPTIONS`."""

    __match_args__ = ("id", "event_time", "topics")
    @property
    def id(self) -> int | None:
        """The id of the request."""
    @property
    def event_time(self) -> int:
        """Event time (µs)."""
    @property
    def topics(self) -> list[str]:
        """The active topics, in the server's casing."""

@final
class OrderResult(Message):
    """The acknowledgement of an order command or of `SUBMIT`."""

    __match_args__ = ("method", "id", "event_time", "tx_id", "status", "order_ids", "client_order_ids")
    @property
    def method(self) -> str:
        """`submit`, `place`, `cancel`, `amend` or `cancel_all`, from the reply's tag."""
    @property
    def id(self) -> int | None:
        """The id of the request."""
    @property
    def event_time(self) -> int:
        """Event time (µs)."""
    @property
    def tx_id(self) -> str:
        """The transaction hash."""
    @property
    def status(self) -> str:
        """The sequencer's status: processed, published, submitted, finalized, dropped, ..."""
    @property
    def order_ids(self) -> list[int]:
        """Order ids affected (filled when processed)."""
    @property
    def client_order_ids(self) -> list[int]:
        """Client order ids, in the positions of `order_ids`."""
    @property
    def is_success(self) -> bool:
        """True for processed, published, submitted and finalized."""

@final
class DepthUpdate(Message):
    """An order book snapshot (`mt: s`) or diff (`mt: u`) of `SYMBOL@depthN`."""

    __match_args__ = ("event_type", "event_time", "transaction_time", "symbol", "first_update_id", "final_update_id", "prev_final_update_id", "bids", "asks", "message_type")
    @property
    def event_type(self) -> str:
        """`depthUpdate`."""
    @property
    def event_time(self) -> int:
        """Event time (µs)."""
    @property
    def transaction_time(self) -> int:
        """Transaction time (µs)."""
    @property
    def symbol(self) -> str:
        """The symbol."""
    @property
    def first_update_id(self) -> int:
        """First update id in this event."""
    @property
    def final_update_id(self) -> int:
        """Final update id in this event."""
    @property
    def prev_final_update_id(self) -> int:
        """The previous event's final update id."""
    @property
    def bids(self) -> list[tuple[str, str]]:
        """Bid levels, (price, quantity)."""
    @property
    def asks(self) -> list[tuple[str, str]]:
        """Ask levels, (price, quantity)."""
    @property
    def message_type(self) -> str:
        """`s` snapshot or `u` update."""
    @property
    def is_snapshot(self) -> bool:
        """True for a snapshot (`mt` == "s")."""

@final
class AggTrade(Message):
    """A trade of `SYMBOL@aggTrade`. Since 2026-05-23 the DEX fields are placeholders with no meaning (fills belong to `user.orders`); they are None when absent."""

    __match_args__ = ("event_type", "event_time", "symbol", "agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "trade_time", "is_buyer_maker", "tx_hash", "user_address", "order_id", "is_maker", "is_full_fill", "is_liquidation", "fee", "net_fee", "fee_asset", "client_order_id", "side", "fill_type", "cumulative_filled_qty", "cumulative_filled_quote", "remaining_qty")
    @property
    def event_type(self) -> str:
        """`aggTrade`."""
    @property
    def event_time(self) -> int:
        """Event time (µs)."""
    @property
    def symbol(self) -> str:
        """The symbol."""
    @property
    def agg_trade_id(self) -> int:
        """Aggregate trade id."""
    @property
    def price(self) -> str:
        """Price."""
    @property
    def quantity(self) -> str:
        """Quantity."""
    @property
    def first_trade_id(self) -> int:
        """First trade id."""
    @property
    def last_trade_id(self) -> int:
        """Last trade id."""
    @property
    def trade_time(self) -> int:
        """Trade time (µs)."""
    @property
    def is_buyer_maker(self) -> bool:
        """Whether the buyer was the maker."""
    @property
    def tx_hash(self) -> str:
        """Transaction hash."""
    @property
    def user_address(self) -> str | None:
        """Deprecated placeholder."""
    @property
    def order_id(self) -> int | None:
        """Deprecated placeholder."""
    @property
    def is_maker(self) -> bool | None:
        """Deprecated placeholder."""
    @property
    def is_full_fill(self) -> bool | None:
        """Deprecated placeholder."""
    @property
    def is_liquidation(self) -> bool | None:
        """Deprecated placeholder."""
    @property
    def fee(self) -> str | None:
        """Deprecated placeholder."""
    @property
    def net_fee(self) -> str | None:
        """Deprecated placeholder."""
    @property
    def fee_asset(self) -> str | None:
        """Deprecated placeholder."""
    @property
    def client_order_id(self) -> int | None:
        """Deprecated placeholder."""
    @property
    def side(self) -> str | None:
        """Deprecated placeholder."""
    @property
    def fill_type(self) -> str | None:
        """Deprecated placeholder (fill type)."""
    @property
    def cumulative_filled_qty(self) -> str | None:
        """Deprecated placeholder (cumulative filled size)."""
    @property
    def cumulative_filled_quote(self) -> str | None:
        """Deprecated placeholder (cumulative filled quote)."""
    @property
    def remaining_qty(self) -> str | None:
        """Deprecated placeholder (remaining size)."""

@final
class BookTicker(Message):
    """Best bid and ask of `SYMBOL@bookTicker`."""

    __match_args__ = ("event_type", "update_id", "event_time", "transaction_time", "symbol", "bid_price", "bid_qty", "ask_price", "ask_qty", "message_type")
    @property
    def event_type(self) -> str:
        """`bookTicker`."""
    @property
    def update_id(self) -> int:
        """Update id."""
    @property
    def event_time(self) -> int:
        """Event time (µs)."""
    @property
    def transaction_time(self) -> int:
        """Transaction time (µs)."""
    @property
    def symbol(self) -> str:
        """The symbol."""
    @property
    def bid_price(self) -> str:
        """Best bid price."""
    @property
    def bid_qty(self) -> str:
        """Best bid quantity."""
    @property
    def ask_price(self) -> str:
        """Best ask price."""
    @property
    def ask_qty(self) -> str:
        """Best ask quantity."""
    @property
    def message_type(self) -> str:
        """`s` snapshot or `u` update."""
    @property
    def is_snapshot(self) -> bool:
        """True for a snapshot (`mt` == "s")."""

@final
class MarkPrice(Message):
    """Mark price and funding of `SYMBOL@markPrice`."""

    __match_args__ = ("event_type", "event_time", "symbol", "mark_price", "index_price", "funding_rate", "estimated_settle_price", "next_funding_time", "tx_hash")
    @property
    def event_type(self) -> str:
        """`markPriceUpdate`."""
    @property
    def event_time(self) -> int:
        """Event time (µs)."""
    @property
    def symbol(self) -> str:
        """The symbol."""
    @property
    def mark_price(self) -> str:
        """Mark price."""
    @property
    def index_price(self) -> str:
        """Index price."""
    @property
    def funding_rate(self) -> str:
        """Funding rate."""
    @property
    def estimated_settle_price(self) -> str | None:
        """Estimated settle price."""
    @property
    def next_funding_time(self) -> int | None:
        """Next funding time (µs)."""
    @property
    def tx_hash(self) -> str | None:
        """Transaction hash."""

@final
class ForceOrder(Message):
    """A liquidation of `SYMBOL@forceOrder`."""

    __match_args__ = ("event_type", "event_time", "symbol", "side", "order_type", "time_in_force", "price", "avg_price", "status", "last_filled_qty", "trade_time", "tx_hash", "user_address", "order_id", "trade_id", "quantity", "filled_qty")
    @property
    def event_type(self) -> str:
        """`forceOrder`."""
    @property
    def event_time(self) -> int:
        """Event time (µs)."""
    @property
    def symbol(self) -> str:
        """The symbol."""
    @property
    def side(self) -> str:
        """Side."""
    @property
    def order_type(self) -> str:
        """Order type."""
    @property
    def time_in_force(self) -> str:
        """Time in force."""
    @property
    def price(self) -> str:
        """Price."""
    @property
    def avg_price(self) -> str:
        """Average price."""
    @property
    def status(self) -> str:
        """Order status."""
    @property
    def last_filled_qty(self) -> str:
        """Last filled quantity."""
    @property
    def trade_time(self) -> int:
        """Trade time (µs)."""
    @property
    def tx_hash(self) -> str:
        """Transaction hash."""
    @property
    def user_address(self) -> str:
        """The liquidated user's address."""
    @property
    def order_id(self) -> int:
        """Order id."""
    @property
    def trade_id(self) -> int:
        """Trade id."""
    @property
    def quantity(self) -> str | None:
        """Original quantity."""
    @property
    def filled_qty(self) -> str | None:
        """Cumulative filled quantity."""

@final
class OrderUpdate(Message):
    """An update of one of the user's orders (`ADDRESS@user.orders`). Fields the kind lacks are None."""

    __match_args__ = ("event_type", "event_time", "kind", "symbol", "order_id", "client_order_id", "status", "execution_type", "trade_time", "tx_hash", "user_address", "side", "order_type", "time_in_force", "price", "quantity", "last_filled_qty", "last_filled_price", "commission", "average_price", "commission_asset", "is_maker", "trade_id", "realized_pnl", "fill_type", "cumulative_filled_qty", "cumulative_filled_quote", "remaining_qty")
    @property
    def event_type(self) -> str:
        """`orderTradeUpdate`."""
    @property
    def event_time(self) -> int:
        """Event time (µs)."""
    @property
    def kind(self) -> str:
        """`trade_fill`, `place_order` or `cancel`, by field presence as the SDK decides."""
    @property
    def symbol(self) -> str:
        """The symbol."""
    @property
    def order_id(self) -> int:
        """Order id."""
    @property
    def client_order_id(self) -> int | None:
        """Client order id."""
    @property
    def status(self) -> str:
        """Order status."""
    @property
    def execution_type(self) -> str:
        """Execution type."""
    @property
    def trade_time(self) -> int:
        """Time (µs)."""
    @property
    def tx_hash(self) -> str:
        """Transaction hash."""
    @property
    def user_address(self) -> str | None:
        """Deprecated placeholder, to be removed from the wire."""
    @property
    def side(self) -> str | None:
        """Side."""
    @property
    def order_type(self) -> str | None:
        """Order type."""
    @property
    def time_in_force(self) -> str | None:
        """Time in force."""
    @property
    def price(self) -> str | None:
        """Price (optional in a fill)."""
    @property
    def quantity(self) -> str | None:
        """Quantity (optional in a fill)."""
    @property
    def last_filled_qty(self) -> str | None:
        """Quantity of this fill."""
    @property
    def last_filled_price(self) -> str | None:
        """Price of this fill."""
    @property
    def commission(self) -> str | None:
        """Commission of this fill."""
    @property
    def average_price(self) -> str | None:
        """Average fill price."""
    @property
    def commission_asset(self) -> str | None:
        """Commission asset, e.g. USDC."""
    @property
    def is_maker(self) -> bool | None:
        """Whether this fill was on the maker side."""
    @property
    def trade_id(self) -> int | None:
        """Trade id."""
    @property
    def realized_pnl(self) -> str | None:
        """Realized PnL of this fill."""
    @property
    def fill_type(self) -> str | None:
        """`o` order book or `l` liquidation."""
    @property
    def cumulative_filled_qty(self) -> str | None:
        """Cumulative filled size."""
    @property
    def cumulative_filled_quote(self) -> str | None:
        """Cumulative filled quote."""
    @property
    def remaining_qty(self) -> str | None:
        """Remaining size (`0` = fully filled)."""

@final
class MarketStatus(Message):
    """Market status of `!marketStatus@arr`: a snapshot of every market on subscribe, then idempotent deltas."""

    __match_args__ = ("event_type", "event_time", "message_type", "markets")
    @property
    def event_type(self) -> str:
        """`marketStatusUpdate`."""
    @property
    def event_time(self) -> int:
        """Event time (µs)."""
    @property
    def message_type(self) -> str:
        """`s` snapshot or `u` update."""
    @property
    def markets(self) -> list[MarketStatusEntry]:
        """The markets reported."""
    @property
    def is_snapshot(self) -> bool:
        """True for a snapshot (`mt` == "s")."""

@final
class DegenPositionCompleted(Message):
    """A completed Degen position of `ADDRESS@user.degenPositions`."""

    __match_args__ = ("event_type", "event_time", "sequence", "position")
    @property
    def event_type(self) -> str:
        """`degenPositionCompleted`."""
    @property
    def event_time(self) -> int:
        """Publish time (µs)."""
    @property
    def sequence(self) -> int:
        """Sequencer event number (sent as a decimal string)."""
    @property
    def position(self) -> DegenPosition:
        """The completed position."""

@final
class Unknown(Message):
    """A frame of no known shape (or not JSON): its text and why it did not parse. Never ends the connection."""

    __match_args__ = ("raw", "error")
    @property
    def raw(self) -> str:
        """The frame's text."""
    @property
    def error(self) -> str:
        """Why it did not parse."""

# END GENERATED: messages

def parse_message(data: str | bytes) -> Message: ...

@final
class _Wait(Generic[_T]):
    """An awaitable that completes without an asyncio Future when its result is ready."""

    def __await__(self) -> Generator[Any, None, _T]: ...
    def __iter__(self) -> _Wait[_T]: ...
    def __next__(self) -> Any: ...
    def send(self, value: Any, /) -> Any: ...
    def throw(self, *args: Any) -> Any: ...
    def close(self) -> None: ...

@final
class _Doorbell:
    def __call__(self, *args: Any, **kwargs: Any) -> None: ...

@final
class _Deliver:
    def __call__(self, *args: Any, **kwargs: Any) -> None: ...

@disjoint_base
class ManagedWebSocket:
    def __new__(cls, url: str, config: ManagedWsConfig) -> Self: ...
    def _wait_connected(self) -> _Wait[None]: ...
    def recv(self) -> _Wait[_Event | None]:
        """The next event, or None once the socket has stopped and the queue is drained."""
    def recv_batch(self, max_events: int = ...) -> _Wait[list[_Event]]:
        """Every queued event up to `max_events` (waits for one); [] once stopped."""
    def __aiter__(self) -> ManagedWebSocket: ...
    def __anext__(self) -> _Wait[_Event]: ...
    def stop(self) -> None: ...
    def close(self) -> Awaitable[None]: ...
    @property
    def topics(self) -> frozenset[str]: ...
    @property
    def stats(self) -> Stats: ...
    @property
    def stopped(self) -> bool: ...
    def _subscribe(self, topics: list[str], id: int | None, conflate: bool = False) -> list[str]:
        """Subscribe `topics` (validated by the caller); `conflate` is then set on all of them,
        active ones included (a local setting: nothing is sent for it)."""
    def _unsubscribe(self, topics: list[str], id: int | None) -> list[str]: ...
    def submit(self, tx: str | bytes, id: int | None = None) -> None:
        """Send SUBMIT, the way forward for every order action (place, cancel, amend, cancel
        all, batches): the action is encoded in the signed transaction `tx` (base64 `str` or raw
        `bytes`). The ack is an `OrderResult` with `method == "submit"`.

        If the write fails, the socket reconnects and sends it once more.
        """
    def order_place(self, tx: str | bytes, id: int | None = None) -> None:
        """Send ORDER.PLACE (deprecated upstream in favour of `submit`, still on the wire);
        `tx` is a signed transaction, base64 `str` or raw `bytes`.

        If the write fails, the socket reconnects and sends it once more.
        """
    def order_cancel(self, tx: str | bytes, id: int | None = None) -> None:
        """Send ORDER.CANCEL (see `order_place`)."""
    def order_amend(self, tx: str | bytes, id: int | None = None) -> None:
        """Send ORDER.AMEND (see `order_place`)."""
    def order_cancel_all(self, tx: str | bytes, id: int | None = None) -> None:
        """Send ORDER.CANCEL_ALL (see `order_place`)."""
    def _list_subscriptions(self, id: int | None) -> None: ...
    def _ping(self, id: int | None) -> None: ...
    def _book(self, symbol: str) -> OrderBook | None: ...
    def _set_handler(self, handler: Callable[[_Event], object] | None) -> None:
        """Set or clear the push handler (validated by the caller)."""

@final
class OrderBook:
    """The live order book of one symbol, kept in Rust by the socket from its depth topic.

    While `is_synced` is False (before the first snapshot, after a gap or a reconnect), the
    levels are the last known ones and may be stale; a book first read after it dropped
    its levels (unread at a depth message BOOK_UNREAD_GRACE after its subscribe) has none until
    its next snapshot.
    """

    @property
    def symbol(self) -> str:
        """The symbol, as in the depth topic."""
    def bids(self, n: int | None = None) -> list[tuple[str, str]]:
        """Up to `n` bids (all with None), best (highest) first, as (price, quantity) wire
        strings; copies only what it returns."""
    def asks(self, n: int | None = None) -> list[tuple[str, str]]:
        """Up to `n` asks (all with None), best (lowest) first."""
    @property
    def best_bid(self) -> tuple[str, str] | None:
        """The highest bid, or None."""
    @property
    def best_ask(self) -> tuple[str, str] | None:
        """The lowest ask, or None."""
    @property
    def last_update_id(self) -> int:
        """`u` of the last message applied (0 before the first snapshot)."""
    @property
    def event_time(self) -> int:
        """`E` (µs) of the last message applied (0 before the first snapshot)."""
    @property
    def is_synced(self) -> bool:
        """True from a snapshot until a gap, a reconnect or the unsubscribe of its topic (and,
        for a book first read after it dropped its levels, False until the next snapshot)."""

@final
class _BookFeeder:
    """Test hook: the book logic without a socket (same API as bullet_ws.pure.book._BookFeeder)."""

    def __new__(cls) -> Self: ...
    def subscribe(self, topics: list[str], now: float) -> None: ...
    def unsubscribe(self, topics: list[str], now: float) -> None: ...
    def connection_lost(self, now: float) -> None: ...
    def feed(self, frame: str, now: float) -> tuple[Any, list[str]]: ...
    def book(self, symbol: str, now: float = 0.0) -> OrderBook | None: ...

@final
class _MockServer:
    def __new__(
        cls,
        host: str = ...,
        port: int = 0,
        rate: float | None = ...,
        symbols: list[str] | None = None,
        max_messages: int | None = None,
        preencode: bool = False,
        ping_interval: float | None = None,
        max_topics: int | None = None,
        legacy_shapes: bool = False,
        idle_close: float | None = None,
        max_duration: float | None = None,
        shared_sequence: bool = False,
    ) -> _MockServer: ...
    @property
    def url(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def running(self) -> bool: ...
    def stop(self) -> None: ...
    def fault(
        self, kind: str, scope: str = "current", count: int = 1, params: dict[str, Any] | None = None
    ) -> int: ...
    def clear_faults(self) -> None: ...
    @property
    def refusing(self) -> bool: ...
    def set_refusing(self, on: bool) -> None: ...
    @property
    def tcp_accepts(self) -> int: ...
    @property
    def handshakes(self) -> int: ...
    def connections(self) -> list[dict[str, Any]]: ...
    def connection(self, index: int) -> dict[str, Any] | None: ...
    def wait_handshakes(self, n: int, timeout: float) -> bool: ...
    def wait_frames(self, index: int, n: int, timeout: float) -> bool: ...
    def wait_closed(self, index: int, timeout: float) -> bool: ...
