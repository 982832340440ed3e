"""Server message classes of the pure backend (API.md "Messages"), mirroring `bullet_ws._core`.

Each class is slotted and immutable. Its slots live on a private, mutable twin class
(`_<Name>Slots`); the parser fills a twin and then switches its `__class__` to the public,
frozen class. That costs one assignment per field plus one class switch, which is far cheaper than
`object.__setattr__` per field, and it keeps plain slot reads on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

__all__ = [
    "AggTrade",
    "BookTicker",
    "DepthUpdate",
    "ErrorMessage",
    "ForceOrder",
    "ListSubscriptionsResult",
    "MarkPrice",
    "Message",
    "OrderResult",
    "OrderUpdate",
    "Pong",
    "Status",
    "SubscribeResult",
    "Unknown",
    "UnsubscribeResult",
]

MessageT = TypeVar("MessageT", bound="Message")

# TxStatus::is_success of the SDK.
_SUCCESS_STATUSES = frozenset({"processed", "published", "submitted", "finalized"})


class Message:
    """Base class of every server message. `request_id` is the echoed id where the message
    type carries one (acks, pongs, errors, order results), else None."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    __match_args__: ClassVar[tuple[str, ...]] = ()
    is_error: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The public constructor (tests, user code); the parser builds instances faster.
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__} takes {len(fields)} fields, got {len(args)}")
        values = dict(zip(fields, args))
        for key, value in kwargs.items():
            if key not in fields:
                raise TypeError(f"{type(self).__name__} has no field {key!r}")
            if key in values:
                raise TypeError(f"{type(self).__name__} got field {key!r} twice")
            values[key] = value
        missing = [f for f in fields if f not in values]
        if missing:
            raise TypeError(f"{type(self).__name__} is missing {', '.join(missing)}")
        for key in fields:
            object.__setattr__(self, key, values[key])

    @property
    def request_id(self) -> int | None:
        return None

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self._fields)

    __hash__ = None  # type: ignore[assignment]  # lists inside: not hashable, like the pyclasses

    def __repr__(self) -> str:
        body = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({body})"


def _refuse_setattr(self: Message, name: str, value: object) -> None:
    raise AttributeError(f"{type(self).__name__} is immutable")


def _refuse_delattr(self: Message, name: str) -> None:
    raise AttributeError(f"{type(self).__name__} is immutable")


@property  # type: ignore[misc]
def _request_id(self: Any) -> int | None:
    id_: int | None = self.id
    return id_


def _message_class(fields: str) -> Callable[[type[MessageT]], type[MessageT]]:
    """Give a public message class its fields: slots on a mutable twin base, match args, order.

    Used as `@_message_class("a b c") class Name(Message): ...`; the decorated body may only add
    properties and class constants (its own `__slots__` must be empty).
    """
    names = tuple(fields.split())

    def decorate(cls: type[MessageT]) -> type[MessageT]:
        # The twin keeps object's plain attribute writes (the fast path for the parser).
        slots_base = type(f"_{cls.__name__}Slots", (Message,), {"__slots__": names})
        namespace = {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__")}
        namespace.update(
            __slots__=(),
            _fields=names,
            __match_args__=names,
            __setattr__=_refuse_setattr,
            __delattr__=_refuse_delattr,
        )
        if "id" in names:
            namespace["request_id"] = _request_id
        public = type(cls.__name__, (slots_base,), namespace)
        public.__module__ = cls.__module__
        public.__qualname__ = cls.__qualname__
        public._builder = slots_base  # type: ignore[attr-defined]
        return public

    return decorate


@_message_class("event_time status client_id reason")
class Status(Message):
    event_time: int
    status: str
    client_id: str
    reason: str | None


@_message_class("id event_time")
class Pong(Message):
    id: int | None
    event_time: int


@_message_class("id event_time result")
class SubscribeResult(Message):
    id: int | None
    event_time: int
    result: str


@_message_class("id event_time result")
class UnsubscribeResult(Message):
    id: int | None
    event_time: int
    result: str


@_message_class("id event_time topics")
class ListSubscriptionsResult(Message):
    id: int | None
    event_time: int
    topics: list[str]


@_message_class("method id event_time tx_id status order_ids client_order_ids")
class OrderResult(Message):
    method: str
    id: int | None
    event_time: int
    tx_id: str
    status: str
    order_ids: list[int]
    client_order_ids: list[int]

    @property
    def is_success(self) -> bool:
        """True for processed/published/submitted/finalized (the SDK's TxStatus::is_success)."""
        return self.status in _SUCCESS_STATUSES


@_message_class("id event_time code msg param")
class ErrorMessage(Message):
    is_error: ClassVar[bool] = True
    id: int | None
    event_time: int
    code: int
    msg: str
    param: str | None


@_message_class(
    "event_type event_time transaction_time symbol first_update_id final_update_id"
    " prev_final_update_id bids asks message_type"
)
class DepthUpdate(Message):
    event_type: str
    event_time: int
    transaction_time: int
    symbol: str
    first_update_id: int
    final_update_id: int
    prev_final_update_id: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]
    message_type: str

    @property
    def is_snapshot(self) -> bool:
        return self.message_type == "s"


@_message_class(
    "event_type event_time symbol agg_trade_id price quantity first_trade_id last_trade_id"
    " trade_time is_buyer_maker tx_hash user_address order_id is_maker is_full_fill"
    " is_liquidation fee net_fee fee_asset client_order_id side"
)
class AggTrade(Message):
    event_type: str
    event_time: int
    symbol: str
    agg_trade_id: int
    price: str
    quantity: str
    first_trade_id: int
    last_trade_id: int
    trade_time: int
    is_buyer_maker: bool
    tx_hash: str
    user_address: str
    order_id: int
    is_maker: bool
    is_full_fill: bool
    is_liquidation: bool
    fee: str
    net_fee: str
    fee_asset: str
    client_order_id: int | None
    side: str


@_message_class(
    "event_type update_id event_time transaction_time symbol bid_price bid_qty ask_price"
    " ask_qty message_type"
)
class BookTicker(Message):
    event_type: str
    update_id: int
    event_time: int
    transaction_time: int
    symbol: str
    bid_price: str
    bid_qty: str
    ask_price: str
    ask_qty: str
    message_type: str

    @property
    def is_snapshot(self) -> bool:
        return self.message_type == "s"


@_message_class(
    "event_type event_time symbol mark_price index_price funding_rate estimated_settle_price"
    " next_funding_time tx_hash"
)
class MarkPrice(Message):
    event_type: str
    event_time: int
    symbol: str
    mark_price: str
    index_price: str
    funding_rate: str
    estimated_settle_price: str | None
    next_funding_time: int | None
    tx_hash: str | None


@_message_class(
    "event_type event_time symbol side order_type time_in_force price avg_price status"
    " last_filled_qty trade_time tx_hash user_address order_id trade_id quantity filled_qty"
)
class ForceOrder(Message):
    event_type: str
    event_time: int
    symbol: str
    side: str
    order_type: str
    time_in_force: str
    price: str
    avg_price: str
    status: str
    last_filled_qty: str
    trade_time: int
    tx_hash: str
    user_address: str
    order_id: int
    trade_id: int
    quantity: str | None
    filled_qty: str | None


@_message_class(
    "event_type event_time kind symbol order_id client_order_id status execution_type"
    " trade_time tx_hash user_address side order_type time_in_force price quantity"
    " last_filled_qty last_filled_price commission"
)
class OrderUpdate(Message):
    """`kind` is "trade_fill", "place_order" or "cancel" (by field presence, PROTOCOL.md §3.6);
    fields the kind lacks are None."""

    event_type: str
    event_time: int
    kind: str
    symbol: str
    order_id: int
    client_order_id: int | None
    status: str
    execution_type: str
    trade_time: int
    tx_hash: str
    user_address: str
    side: str | None
    order_type: str | None
    time_in_force: str | None
    price: str | None
    quantity: str | None
    last_filled_qty: str | None
    last_filled_price: str | None
    commission: str | None


@_message_class("raw error")
class Unknown(Message):
    """A frame that matched no known shape (or was not JSON): its text and why it failed."""

    raw: str
    error: str
