"""`parse_message`: one server frame → one `Message`, exactly as the SDK tells them apart.

PROTOCOL.md §10.2: the SDK's `ServerMessage` is an untagged serde enum tried in a fixed order:
the tagged candidate (`e` in a fixed tag set), then the untagged candidates, else Unknown. A
candidate matches when every required field is present with the JSON type serde would accept
(u64: a non-negative int below 2**64, never a float or bool; optional fields absent or null;
extra fields ignored). The candidates, their order and their fields come from the spec
(`spec/messages.toml`, through the generated `_wire.py`).

Speed: each candidate's validator is generated once from its table (straight-line code, no
per-field calls), and the common market-data `e` values are dispatched straight to their
candidate when the match itself proves every earlier candidate fails (see `_FAST`). Anything
else takes the full ordered attempt, so the result is always the ordered one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from bullet_ws.pure import _wire
from bullet_ws.pure import messages as _classes
from bullet_ws.pure._message_base import Message
from bullet_ws.pure.messages import Unknown

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


def _u64_str(value: object) -> int | None:
    """A u64 sent as a decimal string: ASCII digits only, at most 2**64-1."""
    if type(value) is not str or not value or not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    return number if number <= U64_MAX else None


def _int_check(low: int, high: int) -> str:
    return f"if type({{v}}) is not int or {{v}} < {low} or {{v}} > {high}: return None"


# How each field kind is checked, as a statement template over the local `{v}`. A failed check
# returns None: "this candidate does not match". Conversions rebind `{v}` and use None as
# failure, which is why optional conversions are guarded by `is not None` first.
_CHECKS = {
    "str": "if type({v}) is not str: return None",
    "bool": "if type({v}) is not bool: return None",
    "u16": _int_check(0, 65535),
    "i32": _int_check(-(2**31), 2**31 - 1),
    "i64": _int_check(-(2**63), 2**63 - 1),
    "u64": _int_check(0, U64_MAX),
    "mt": 'if {v} != "s" and {v} != "u": return None',
}
_CONVERSIONS = {"levels": "_levels", "strs": "_strs", "u64s": "_u64s", "u64str": "_u64_str"}


def _check(kind: str, local: str, optional: bool) -> list[str]:
    if kind == "u64s":  # absent or null is [], never None
        return [f"{local} = _u64s({local})", f"if {local} is None: return None"]
    if kind in _CHECKS:
        check = _CHECKS[kind].format(v=local)
        if optional:
            return [f"if {local} is not None:", f"    {check}"]
        return [check]
    if kind in _CONVERSIONS:
        convert = f"{local} = {_CONVERSIONS[kind]}({local})"
    elif kind.startswith("list:"):
        convert = f"{local} = _record_list(_records[{kind[5:]!r}], {local})"
    elif kind.startswith("record:"):
        convert = f"{local} = _records[{kind[7:]!r}]({local})"
    else:
        raise ValueError(kind)
    if optional:
        return [
            f"if {local} is not None:",
            f"    {convert}",
            f"    if {local} is None: return None",
        ]
    return [convert, f"if {local} is None: return None"]


def _record_list(record: Callable[[object], Any], value: object) -> list[Any] | None:
    if type(value) is not list:
        return None
    out = []
    for item in value:
        parsed = record(item)
        if parsed is None:
            return None
        out.append(parsed)
    return out


_records: dict[str, Callable[[object], Any]] = {}


def _compile(name: str, params: tuple[str, ...] = ()) -> Callable[..., Any]:
    """Generate the validator + builder of class `name` from its table in `_wire.FIELDS`.

    The function takes the decoded object (a record's takes any value, and refuses non-objects)
    and the values of the attributes that are not on the wire, in `params` order.
    """
    cls = getattr(_classes, name)
    table = _wire.FIELDS[name]
    kinds = _wire.KINDS.get(name, ())
    lines = [f"def parse_{name}(d{''.join(', ' + p for p in params)}):"]
    body = ["if type(d) is not dict: return None", "get = d.get"]
    tag = _wire.STRICT_TAG.get(name)
    if tag is not None:
        body.append(f"if get('e') != {tag!r}: return None")
    parents: set[str] = set()
    for attr, key, kind, optional, in_kinds in table:
        if key == "=" or in_kinds:
            continue
        getter = "get"
        if "." in key:
            parent, key = key.split(".", 1)
            getter = f"get_{parent}"
            if parent not in parents:
                parents.add(parent)
                body.append(f"n_{parent} = get({parent!r})")
                body.append(f"if type(n_{parent}) is not dict: return None")
                body.append(f"{getter} = n_{parent}.get")
        body.append(f"{attr} = {getter}({key!r})")
        body.extend(_check(kind, attr, optional))
    if kinds:
        kind_fields = [row for row in table if row[4]]
        body.append(f"kind = {kinds[-1]!r}")
        body.extend(f"{row[0]} = None" for row in kind_fields)
        for kind_name in kinds[:-1]:
            members = [row for row in kind_fields if kind_name in row[4]]
            # A kind matches when all its fields do: try it in a nested function, whose None
            # means "not this kind".
            body.append(f"def try_{kind_name}():")
            for attr, key, kind, _optional, in_kinds in members:
                parent, leaf = key.split(".", 1)
                body.append(f"    {attr} = get_{parent}({leaf!r})")
                body.extend("    " + line for line in _check(kind, attr, in_kinds[kind_name]))
            body.append(f"    return ({', '.join(row[0] for row in members)},)")
            body.append(f"if kind == {kinds[-1]!r}:")
            body.append(f"    found = try_{kind_name}()")
            body.append("    if found is not None:")
            body.append(f"        kind = {kind_name!r}")
            body.append(f"        {', '.join(row[0] for row in members)}, = found")
    body.append("o = _new(Builder)")
    for attr, *_ in table:
        body.append(f"o.{attr} = {attr}")
    body.append("o.__class__ = Public")
    body.append("return o")
    lines.extend("    " + line for line in body)
    namespace: dict[str, Any] = {
        "_new": _new,
        "Builder": cls._builder,
        "Public": cls,
        "_levels": _levels,
        "_strs": _strs,
        "_u64s": _u64s,
        "_u64_str": _u64_str,
        "_record_list": _record_list,
        "_records": _records,
    }
    exec("\n".join(lines), namespace)  # noqa: S102 - code built from the generated tables
    parse: Callable[..., Any] = namespace[f"parse_{name}"]
    return parse


def _build(cls: type[Message], *values: object) -> Any:
    o = _new(cls._builder)  # type: ignore[attr-defined]
    for name, value in zip(cls._fields, values):
        setattr(o, name, value)
    o.__class__ = cls
    return o


# --- the candidates ------------------------------------------------------------------------------

for _name in _wire.FIELDS:
    if _name in ("MarketStatusEntry", "DegenPosition"):
        _records[_name] = _compile(_name)

_candidates: dict[str, Candidate] = {
    name: _compile(name)
    for name in _wire.FIELDS
    if name not in _records and name not in ("OrderResult", "Unknown")
}
_order_results = {
    method: _compile("OrderResult", ("method",))
    for method in sorted(set(_wire.ORDER_RESULT_TAGS.values()))
}


def _order_result(method: str) -> Candidate:
    parse = _order_results[method]
    return lambda d: parse(d, method)


_TAGGED: dict[str, Candidate] = {tag: _candidates[name] for tag, name in _wire.TAGGED.items()}
_TAGGED.update({tag: _order_result(m) for tag, m in _wire.ORDER_RESULT_TAGS.items()})
_UNTAGGED: tuple[Candidate, ...] = tuple(_candidates[name] for name in _wire.UNTAGGED)


# Fast paths by `e`. Each returns a message only when the match proves that every earlier
# candidate fails; None sends the frame through the full ordered attempt. The proofs:
# DepthUpdate, AggTrade and BookTicker all require "a" (a list, a u64 and a str respectively, so
# at most one of them can match); MarkPrice requires "i"; ForceOrder requires "o.ti"; and none
# of these `e` values is a tag, so the Tagged candidate fails for all of them.
_mark_price = _candidates["MarkPrice"]
_force_order = _candidates["ForceOrder"]
_order_update = _candidates["OrderUpdate"]


def _fast_mark_price(d: dict[str, Any]) -> Message | None:
    return _mark_price(d) if "a" not in d else None


def _fast_force_order(d: dict[str, Any]) -> Message | None:
    return _force_order(d) if "a" not in d and "i" not in d else None


def _fast_order_update(d: dict[str, Any]) -> Message | None:
    if "a" in d or "i" in d:
        return None
    body = d.get("o")
    if type(body) is not dict or "ti" in body:
        return None
    return _order_update(d)


_FAST: dict[str, Candidate] = {
    "depthUpdate": _candidates["DepthUpdate"],  # the first untagged candidate anyway
    "aggTrade": _candidates["AggTrade"],
    "bookTicker": _candidates["BookTicker"],
    "markPriceUpdate": _fast_mark_price,
    "forceOrder": _fast_force_order,
    "liquidation": _fast_force_order,
    "orderTradeUpdate": _fast_order_update,
}
assert not set(_FAST) & set(_TAGGED), "a fast path would skip the tagged candidate"


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
            refused = _sdk_refusal(text)
            if refused is None:
                return message
            return _build(Unknown, text, refused)  # type: ignore[no-any-return]
    return _build(Unknown, text, NO_MATCH)  # type: ignore[no-any-return]


# What the SDK's serde refuses anywhere in a frame (the native `protocol::sdk_rules`): its
# untagged enum buffers every key and value, ignored ones too, before trying a variant, so a lone
# surrogate escape or nesting beyond serde_json's recursion limit anywhere makes the frame
# Unknown. json accepts both (up to its own, deeper limit), and a candidate ignores extra keys.
MAX_DEPTH = 127  # serde_json refuses its 128th nested array or object
_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)
_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def _sdk_refusal(text: str) -> str | None:
    """Only on frames a candidate accepted; cheap unless the frame could break a rule."""
    if (
        len(text) > 2 * MAX_DEPTH
        and text.count("[") + text.count("{") > MAX_DEPTH
        and _too_deep(text)
    ):
        return "recursion limit exceeded"
    if "\\u" in text and _lone_surrogate(text):
        return "lone surrogate in hex escape"
    return None


def _too_deep(text: str) -> bool:
    depth = 0
    for token in _NESTING.finditer(text):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif bracket in "]}":
            depth -= 1
    return False


def _lone_surrogate(text: str) -> bool:
    # Valid JSON has backslashes only inside strings, so scanning escapes from the start keeps
    # their parity (an escaped backslash is one match). A high surrogate's escape must be
    # followed at once by a low one's.
    high_end = -1
    for escape in _ESCAPE.finditer(text):
        hex_digits = escape.group(1)
        unit = int(hex_digits, 16) if hex_digits else -1
        if high_end >= 0:
            if escape.start() != high_end or not 0xDC00 <= unit <= 0xDFFF:
                return True
            high_end = -1
        elif 0xD800 <= unit <= 0xDBFF:
            high_end = escape.end()
        elif 0xDC00 <= unit <= 0xDFFF:
            return True
    return high_end >= 0
