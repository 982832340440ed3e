"""`parse_message`: one server frame → one `Message`, exactly as the SDK tells them apart.

PROTOCOL.md §3.2: the SDK's `ServerMessage` is an untagged serde enum tried in a fixed order:
Tagged (`e` in a fixed tag set), DepthUpdate, AggTrade, BookTicker, MarkPrice, ForceOrder,
OrderUpdate, untagged Error, else Unknown. A candidate matches when every required field is
present with the JSON type serde would accept (u64: a non-negative int below 2**64, never a
float or bool; i32 for error codes; optional fields absent or null; extra fields ignored).

Speed: the per-class validators are generated once from the field tables below (straight-line
code, no per-field calls), and the common market-data `e` values are dispatched straight to their
candidate when the match itself proves every earlier candidate fails (see `_FAST`). Anything
else takes the full ordered attempt, so the result is always the ordered one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bullet_ws.pure.messages import (
    AggTrade,
    BookTicker,
    DepthUpdate,
    ErrorMessage,
    ForceOrder,
    ListSubscriptionsResult,
    MarkPrice,
    Message,
    OrderResult,
    OrderUpdate,
    Pong,
    Status,
    SubscribeResult,
    Unknown,
    UnsubscribeResult,
)

__all__ = ["NO_MATCH", "parse_message"]

# serde's text for an untagged enum that no variant matched (the native backend's wording).
NO_MATCH = "data did not match any variant of untagged enum ServerMessage"

U64_MAX = 2**64 - 1
Candidate = Callable[[dict[str, Any]], "Message | None"]
_new = object.__new__


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # serde (and so the SDK) rejects an object with a repeated key; json would keep the last.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key in a JSON object")
    return obj


# One decoder, built once: json.loads(s, parse_constant=...) would build a decoder per call.
_decode = json.JSONDecoder(parse_constant=_reject_constant, object_pairs_hook=_object).decode


def _levels(value: object) -> list[tuple[str, str]] | None:
    """Depth levels: a list of [price, qty] pairs of exactly two strings."""
    if type(value) is not list:
        return None
    out = []
    for level in value:
        if type(level) is not list or len(level) != 2:
            return None
        price, qty = level
        if type(price) is not str or type(qty) is not str:
            return None
        out.append((price, qty))
    return out


def _strs(value: object) -> list[str] | None:
    if type(value) is not list:
        return None
    for item in value:
        if type(item) is not str:
            return None
    return value


def _u64s(value: object) -> list[int] | None:
    """An optional list of u64 (absent or null → [])."""
    if value is None:
        return []
    if type(value) is not list:
        return None
    for item in value:
        if type(item) is not int or item < 0 or item > U64_MAX:
            return None
    return value


# How each field kind is checked, as a statement template over the local `{v}`.
# A failed check returns None: "this candidate does not match".
_CHECKS = {
    "str": "if type({v}) is not str: return None",
    "str?": "if {v} is not None and type({v}) is not str: return None",
    "bool": "if type({v}) is not bool: return None",
    "u64": "if type({v}) is not int or {v} < 0 or {v} > U64_MAX: return None",
    "u64?": (
        "if {v} is not None and (type({v}) is not int or {v} < 0 or {v} > U64_MAX): return None"
    ),
    "i32": "if type({v}) is not int or {v} < -2147483648 or {v} > 2147483647: return None",
    "mt": 'if {v} != "s" and {v} != "u": return None',
    "levels": "{v} = _levels({v})\n    if {v} is None: return None",
    "strs": "{v} = _strs({v})\n    if {v} is None: return None",
    "u64s": "{v} = _u64s({v})\n    if {v} is None: return None",
}


def _compile(
    cls: type[Message], fields: list[tuple[str, str]], const: dict[str, str] | None = None
) -> Candidate:
    """Generate the validator + builder of `cls` from (wire key, kind) pairs in `_fields` order.

    A wire key "o.s" reads key "s" of the nested object "o" (which must then be an object).
    `const` gives attributes that are not read from the wire (name → Python expression).
    """
    const = const or {}
    wire_fields = [name for name in cls._fields if name not in const]
    assert len(wire_fields) == len(fields), cls
    lines = [f"def parse_{cls.__name__}(d):", "    get = d.get"]
    parents: set[str] = set()
    for index, (key, kind) in enumerate(fields):
        local = f"f{index}"
        getter = "get"
        if "." in key:
            parent, key = key.split(".", 1)
            getter = f"get_{parent}"
            if parent not in parents:
                parents.add(parent)
                lines.append(f"    n_{parent} = get({parent!r})")
                lines.append(f"    if type(n_{parent}) is not dict: return None")
                lines.append(f"    {getter} = n_{parent}.get")
        lines.append(f"    {local} = {getter}({key!r})")
        lines.extend("    " + line for line in _CHECKS[kind].format(v=local).split("\n    "))
    lines.append("    o = _new(Builder)")
    for index, name in enumerate(wire_fields):
        lines.append(f"    o.{name} = f{index}")
    for name, expr in const.items():
        lines.append(f"    o.{name} = {expr}")
    lines.append("    o.__class__ = Public")
    lines.append("    return o")
    namespace: dict[str, Any] = {
        "_new": _new,
        "Builder": cls._builder,  # type: ignore[attr-defined]
        "Public": cls,
        "U64_MAX": U64_MAX,
        "_levels": _levels,
        "_strs": _strs,
        "_u64s": _u64s,
    }
    exec("\n".join(lines), namespace)  # noqa: S102 - code built from the constant tables here
    parse: Candidate = namespace[f"parse_{cls.__name__}"]
    return parse


def _build(cls: type[Message], *values: object) -> Any:
    o = _new(cls._builder)  # type: ignore[attr-defined]
    for name, value in zip(cls._fields, values):
        setattr(o, name, value)
    o.__class__ = cls
    return o


# --- the candidates, field tables in API.md attribute order ------------------------------------

_status = _compile(Status, [("E", "u64"), ("status", "str"), ("clientId", "str"),
                            ("reason", "str?")])
_pong = _compile(Pong, [("id", "u64?"), ("E", "u64")])
_subscribe = _compile(SubscribeResult, [("id", "u64?"), ("E", "u64"), ("result", "str")])
_unsubscribe = _compile(UnsubscribeResult, [("id", "u64?"), ("E", "u64"), ("result", "str")])
_list_subscriptions = _compile(
    ListSubscriptionsResult, [("id", "u64?"), ("E", "u64"), ("result", "strs")]
)
_error = _compile(
    ErrorMessage,
    [("id", "u64?"), ("E", "u64"), ("error.code", "i32"), ("error.msg", "str"),
     ("error.param", "str?")],
)
_order_result_fields = [
    ("id", "u64?"), ("E", "u64"), ("results.tx_id", "str"), ("results.status", "str"),
    ("results.order_ids", "u64s"), ("results.client_order_ids", "u64s"),
]
_order_results = {
    method: _compile(OrderResult, _order_result_fields, {"method": repr(method)})
    for method in ("place", "cancel", "amend", "cancel_all")
}
_depth = _compile(
    DepthUpdate,
    [("e", "str"), ("E", "u64"), ("T", "u64"), ("s", "str"), ("U", "u64"), ("u", "u64"),
     ("pu", "u64"), ("b", "levels"), ("a", "levels"), ("mt", "mt")],
)
_agg_trade = _compile(
    AggTrade,
    [("e", "str"), ("E", "u64"), ("s", "str"), ("a", "u64"), ("p", "str"), ("q", "str"),
     ("f", "u64"), ("l", "u64"), ("T", "u64"), ("m", "bool"), ("th", "str"), ("ua", "str"),
     ("oi", "u64"), ("mk", "bool"), ("ff", "bool"), ("lq", "bool"), ("fe", "str"),
     ("nf", "str"), ("fa", "str"), ("co", "u64?"), ("sd", "str")],
)
_book_ticker = _compile(
    BookTicker,
    [("e", "str"), ("u", "u64"), ("E", "u64"), ("T", "u64"), ("s", "str"), ("b", "str"),
     ("B", "str"), ("a", "str"), ("A", "str"), ("mt", "mt")],
)
_mark_price = _compile(
    MarkPrice,
    [("e", "str"), ("E", "u64"), ("s", "str"), ("p", "str"), ("i", "str"), ("r", "str"),
     ("P", "str?"), ("T", "u64?"), ("th", "str?")],
)
_force_order = _compile(
    ForceOrder,
    [("e", "str"), ("E", "u64"), ("o.s", "str"), ("o.S", "str"), ("o.o", "str"),
     ("o.f", "str"), ("o.p", "str"), ("o.ap", "str"), ("o.X", "str"), ("o.l", "str"),
     ("o.T", "u64"), ("o.th", "str"), ("o.ua", "str"), ("o.oi", "u64"), ("o.ti", "u64"),
     ("o.q", "str?"), ("o.z", "str?")],
)


def _is_u64(value: object) -> bool:
    return type(value) is int and 0 <= value <= U64_MAX


def _order_update(d: dict[str, Any]) -> Message | None:
    """OrderUpdate: common fields, then the sub-kind by field presence (PROTOCOL.md §3.6):
    TradeFill (S, l, L, n; p, q optional), else PlaceOrder (S, o, f, p, q), else Cancel."""
    event_type = d.get("e")
    event_time = d.get("E")
    body = d.get("o")
    if type(event_type) is not str or not _is_u64(event_time) or type(body) is not dict:
        return None
    get = body.get
    symbol, order_id, client_order_id = get("s"), get("i"), get("co")
    status, execution_type, trade_time = get("X"), get("x"), get("T")
    tx_hash, user_address = get("th"), get("ua")
    if (
        type(symbol) is not str
        or not _is_u64(order_id)
        or (client_order_id is not None and not _is_u64(client_order_id))
        or type(status) is not str
        or type(execution_type) is not str
        or not _is_u64(trade_time)
        or type(tx_hash) is not str
        or type(user_address) is not str
    ):
        return None
    side, price, quantity = get("S"), get("p"), get("q")
    fill_qty, fill_price, commission = get("l"), get("L"), get("n")
    order_type, time_in_force = get("o"), get("f")
    if (
        type(side) is str
        and type(fill_qty) is str
        and type(fill_price) is str
        and type(commission) is str
        and (price is None or type(price) is str)
        and (quantity is None or type(quantity) is str)
    ):
        kind = "trade_fill"
        order_type = time_in_force = None
    elif (
        type(side) is str
        and type(order_type) is str
        and type(time_in_force) is str
        and type(price) is str
        and type(quantity) is str
    ):
        kind = "place_order"
        fill_qty = fill_price = commission = None
    else:
        kind = "cancel"
        side = order_type = time_in_force = price = quantity = None
        fill_qty = fill_price = commission = None
    return _build(  # type: ignore[no-any-return]
        OrderUpdate, event_type, event_time, kind, symbol, order_id, client_order_id, status,
        execution_type, trade_time, tx_hash, user_address, side, order_type, time_in_force,
        price, quantity, fill_qty, fill_price, commission,
    )


# Candidate 1: internally tagged on "e" (case-sensitive); an incomplete body falls through.
_TAGGED: dict[str, Candidate] = {
    "status": _status,
    "pong": _pong,
    "error": _error,
    "subscribe": _subscribe,
    "unsubscribe": _unsubscribe,
    "list_subscriptions": _list_subscriptions,
    "order.place": _order_results["place"],
    "ORDER.PLACE": _order_results["place"],
    "order.cancel": _order_results["cancel"],
    "ORDER.CANCEL": _order_results["cancel"],
    "order.amend": _order_results["amend"],
    "ORDER.AMEND": _order_results["amend"],
    "order.modify": _order_results["amend"],
    "ORDER.MODIFY": _order_results["amend"],
    "order.cancelAll": _order_results["cancel_all"],
    "ORDER.CANCEL_ALL": _order_results["cancel_all"],
}

# Candidates 2-8, in the SDK's order.
_UNTAGGED: tuple[Candidate, ...] = (
    _depth, _agg_trade, _book_ticker, _mark_price, _force_order, _order_update, _error,
)


# Fast paths by `e`. Each returns a message only when the match proves that every earlier
# candidate fails; None sends the frame through the full ordered attempt. The proofs:
# DepthUpdate, AggTrade and BookTicker all require "a" (a list, a u64 and a str respectively, so
# at most one of them can match); MarkPrice requires "i"; ForceOrder requires "o.ap"; and none
# of these `e` values is a tag, so the Tagged candidate fails for all of them.
def _fast_mark_price(d: dict[str, Any]) -> Message | None:
    return _mark_price(d) if "a" not in d else None


def _fast_force_order(d: dict[str, Any]) -> Message | None:
    return _force_order(d) if "a" not in d and "i" not in d else None


def _fast_order_update(d: dict[str, Any]) -> Message | None:
    if "a" in d or "i" in d:
        return None
    body = d.get("o")
    if type(body) is not dict or "ap" in body:
        return None
    return _order_update(d)


_FAST: dict[str, Candidate] = {
    "depthUpdate": _depth,  # DepthUpdate is the first untagged candidate anyway
    "aggTrade": _agg_trade,
    "bookTicker": _book_ticker,
    "markPriceUpdate": _fast_mark_price,
    "forceOrder": _fast_force_order,
    "liquidation": _fast_force_order,
    "orderTradeUpdate": _fast_order_update,
}


def _match(d: dict[str, Any]) -> Message | None:
    tag = d.get("e")
    if type(tag) is str:
        tagged = _TAGGED.get(tag)
        if tagged is not None:
            message = tagged(d)
            if message is not None:
                return message
        else:
            fast = _FAST.get(tag)
            if fast is not None:
                message = fast(d)
                if message is not None:
                    return message
    for candidate in _UNTAGGED:
        message = candidate(d)
        if message is not None:
            return message
    return None


def parse_message(data: str | bytes | bytearray | memoryview) -> Message:
    """Parse one server frame (text, or binary carrying UTF-8 JSON) into a `Message`.

    Never raises for frame content: anything that is not JSON or has no known shape becomes
    `Unknown(raw, error)` (invalid UTF-8 is kept lossily in `raw`). A `data` that is neither str
    nor bytes-like raises TypeError.
    """
    if type(data) is str:
        text = data
    elif isinstance(data, (bytes, bytearray, memoryview)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            return _build(Unknown, bytes(data).decode("utf-8", "replace"), str(exc))  # type: ignore[no-any-return]
    elif isinstance(data, str):
        text = str(data)
    else:
        raise TypeError(f"data must be str or bytes, got {type(data).__name__}")
    try:
        decoded = _decode(text)
    except (ValueError, RecursionError) as exc:
        return _build(Unknown, text, str(exc) or type(exc).__name__)  # type: ignore[no-any-return]
    if type(decoded) is dict:
        message = _match(decoded)
        if message is not None:
            return message
    return _build(Unknown, text, NO_MATCH)  # type: ignore[no-any-return]
