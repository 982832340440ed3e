"""The two parsers agree on every frame: generated from the spec's tables, valid and broken.

Frames are built per message class from `bullet_ws.pure._wire` (generated from
`spec/messages.toml`), so a field added to the spec is exercised here without a test edit. Each
field is present and valid, absent, null, or of a wrong type; values include escapes, non-ASCII
text, lone and paired surrogate escapes, and integer edge cases; now and then an extra key (at the
top or in a nested object) carries such a string or a nesting around serde_json's recursion limit
(both parsers follow the SDK's serde: a lone surrogate escape or a 128th nested level anywhere in
the frame makes it Unknown). Native and pure must give the same repr (for `Unknown`, the same
class and raw text: the error wording is each parser's own).

Also here: for the messages whose optional fields the live exchange is dropping (AggTrade's DEX
placeholders, a fill's `ua`), every subset of those fields parses the same on both backends,
with None exactly for the absent ones.
"""

from __future__ import annotations

import copy
import itertools
import json
import pathlib
from types import ModuleType
from typing import Any

import pytest
from bullet_ws.pure import _wire
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.timeout(120)

DATA = pathlib.Path(__file__).resolve().parent / "data"
U64_MAX = 2**64 - 1
LIVE = [x for x in (DATA / "live_2026.jsonl").read_text("utf-8").splitlines() if x.strip()]

_text = st.text(
    alphabet=st.sampled_from('aZ09-_.@ "\\/\u00e9\u4e2d\U0001f600\x01\ud800\udbff\udc00'),
    max_size=6,
)
_u64 = st.one_of(
    st.integers(0, 3),
    st.sampled_from([U64_MAX, U64_MAX + 1, 2**63, 65535, 65536]),
    st.integers(0, U64_MAX),
)
_int = st.one_of(_u64, st.integers(-(2**63) - 1, 0))


def _valid(kind: str) -> st.SearchStrategy[Any]:
    if kind == "str":
        return _text
    if kind == "bool":
        return st.booleans()
    if kind in ("u16", "u64"):
        return _u64
    if kind in ("i32", "i64"):
        return _int
    if kind == "u64str":
        return st.one_of(_u64.map(str), st.sampled_from(["", "+1", " 1", "01", "1_0", "١"]))
    if kind == "mt":
        return st.sampled_from(["s", "u", "x"])
    if kind == "levels":
        pair = st.lists(_text, min_size=1, max_size=3)
        return st.lists(pair, max_size=3)
    if kind in ("strs",):
        return st.lists(_text, max_size=3)
    if kind == "u64s":
        return st.lists(_u64, max_size=3)
    if kind.startswith("list:"):
        return st.lists(_record(kind[5:]), max_size=2)
    if kind.startswith("record:"):
        return _record(kind[7:])
    raise AssertionError(kind)


# Copied on each draw: a frame is mutated after it is drawn (an extra key, `e`), and a shared `{}`
# that kept such a key would change later draws (hypothesis: FlakyStrategyDefinition).
_WRONG = st.sampled_from([1.5, -1, "1", True, [], {}, [["1"]], "s", 0]).map(copy.deepcopy)


def _value(kind: str) -> st.SearchStrategy[Any]:
    return st.one_of(_valid(kind), _valid(kind), _valid(kind), _valid(kind), st.none(), _WRONG)


def _record(name: str) -> st.SearchStrategy[Any]:
    return st.deferred(lambda: _object(name))


_ABSENT = object()


@st.composite
def _object(draw: st.DrawFn, name: str) -> Any:
    out: dict[str, Any] = {}
    for _attr, key, kind, _optional, _kinds in _wire.FIELDS[name]:
        if key == "=":
            continue
        value = draw(st.one_of(_value(kind), st.just(_ABSENT)))
        if value is _ABSENT:
            continue
        if "." in key:
            parent, leaf = key.split(".", 1)
            nested = out.setdefault(parent, {})
            if isinstance(nested, dict):
                nested[leaf] = value
        else:
            out[key] = value
    if draw(st.integers(0, 19)) == 0:  # a record or nested object that is not an object
        return draw(_WRONG)
    return out


_TAGS = sorted(set(_wire.TAGGED) | set(_wire.ORDER_RESULT_TAGS) | set(_wire.STRICT_TAG.values()))
_E = st.sampled_from(
    _TAGS
    + [
        "aggTrade",
        "depthUpdate",
        "bookTicker",
        "markPriceUpdate",
        "forceOrder",
        "orderTradeUpdate",
        "x",
    ]
)
_MESSAGES = [
    name
    for name in _wire.FIELDS
    if name in _wire.UNTAGGED or name in _wire.TAGGED.values() or name == "OrderResult"
]


def _nest(depth: int, leaf: Any, as_object: bool) -> Any:
    for _ in range(depth):
        leaf = {"k": leaf} if as_object else [leaf]
    return leaf


# Depths counted from the extra value: the frame's own object adds one, a nested object two.
_EXTRA = st.one_of(
    _text,
    st.builds(_nest, st.sampled_from([1, 2, 124, 125, 126, 127, 128, 300]), _text, st.booleans()),
)


@st.composite
def frames(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(_MESSAGES))
    frame = draw(_object(name))
    if isinstance(frame, dict) and draw(st.booleans()):
        frame["e"] = draw(_E)
    if isinstance(frame, dict) and draw(st.integers(0, 3)) == 0:
        nested = [v for v in frame.values() if isinstance(v, dict)]
        host = draw(st.sampled_from([frame, *nested]))
        host.setdefault(draw(_text), draw(_EXTRA))
    text = json.dumps(frame, ensure_ascii=draw(st.booleans()))
    if any("\ud800" <= c <= "\udfff" for c in text):
        text = json.dumps(frame)  # a frame is UTF-8 text: surrogates travel as escapes
    cut = draw(st.integers(0, 30))
    return text[:-cut] if cut == 1 else text  # now and then, truncated


def _same(native: Any, pure: Any, frame: str) -> None:
    if type(native).__name__ == "Unknown":
        assert type(pure).__name__ == "Unknown", (frame, pure)
        assert native.raw == pure.raw
    else:
        assert repr(native) == repr(pure), frame


@settings(max_examples=4000, suppress_health_check=list(HealthCheck), deadline=None)
@given(frames())
def test_native_and_pure_agree_on_generated_frames(
    native: ModuleType, pure: ModuleType, frame: str
) -> None:
    _same(native.parse_message(frame), pure.parse_message(frame), frame)


def _subsets(line: str, keys: list[str], inner: str | None) -> list[tuple[str, set[str]]]:
    full = json.loads(line)
    out = []
    for n in range(len(keys) + 1):
        for kept in itertools.combinations(keys, n):
            frame = dict(full)
            body = dict(full[inner]) if inner else frame
            for key in keys:
                if key not in kept:
                    del body[key]
            if inner:
                frame[inner] = body
            out.append((json.dumps(frame, separators=(",", ":")), set(kept)))
    return out


def _optional_attrs(name: str, kind: str | None = None) -> dict[str, str]:
    """wire leaf -> attribute of the optional fields (within `kind` where given)."""
    out = {}
    for attr, key, _kind, optional, kinds in _wire.FIELDS[name]:
        leaf = key.split(".", 1)[-1]
        if optional or (kind is not None and kinds.get(kind, False)):
            out[leaf] = attr
    return out


def test_every_subset_of_agg_trade_placeholders(native: ModuleType, pure: ModuleType) -> None:
    optional = _optional_attrs("AggTrade")
    assert len(optional) == 14
    cases = _subsets(LIVE[0], sorted(optional), None)
    assert len(cases) == 2**14
    for frame, kept in cases:
        n, p = native.parse_message(frame), pure.parse_message(frame)
        assert type(n).__name__ == "AggTrade", frame
        assert repr(n) == repr(p), frame
        for leaf, attr in optional.items():
            assert (getattr(n, attr) is None) == (leaf not in kept), (frame, attr)


def test_every_subset_of_fill_optionals(native: ModuleType, pure: ModuleType) -> None:
    optional = _optional_attrs("OrderUpdate", "trade_fill")
    assert {"ua", "co", "p", "q", "ap", "ft", "z", "Z", "rs"} == set(optional)
    present = [leaf for leaf in optional if leaf in json.loads(LIVE[1])["o"]]
    for frame, kept in _subsets(LIVE[1], sorted(present), "o"):
        n, p = native.parse_message(frame), pure.parse_message(frame)
        assert (n.kind, p.kind) == ("trade_fill", "trade_fill"), frame
        assert repr(n) == repr(p), frame
        for leaf, attr in optional.items():
            assert (getattr(n, attr) is None) == (leaf not in kept), (frame, attr)
