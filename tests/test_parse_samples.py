"""B15 (docs/design/TESTING.md): every message shape of the protocol samples parses to the class and fields
API.md names; every line of sdk_unknown.jsonl becomes Unknown; ids up to 2**64-1 stay exact.

Runs against both backends through `backend.parse_message`; the native results must also have
the same repr as the pure ones (the contract of CONTRACTS.md), except `Unknown.error`, whose
wording is each parser's own. Also here: the strict-type rules of PROTOCOL.md §3.2 and a
property test that the pure parser's fast dispatch by `e` always equals the ordered attempt.
"""

from __future__ import annotations

import json
import pathlib
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.timeout(60)

DATA = pathlib.Path(__file__).resolve().parent / "data"
U64_MAX = 2**64 - 1


def lines(name: str) -> list[str]:
    return [x for x in (DATA / f"{name}.jsonl").read_text("utf-8").splitlines() if x.strip()]


def fields(message: Any) -> dict[str, Any]:
    return {name: getattr(message, name) for name in type(message).__match_args__}


# --- expected values for every sample line ------------------------------------------------------

EXPECTED: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "status": [
        (
            "Status",
            {
                "event_time": 1706745600000000,
                "status": "connected",
                "client_id": "ws_abc123",
                "reason": None,
            },
        ),
        ("Status", {"status": "disconnecting", "reason": "pong_timeout"}),
        ("Status", {"event_time": 1234567890, "client_id": "client-123"}),
    ],
    "pong": [
        ("Pong", {"id": 42, "event_time": 1234567890}),
        ("Pong", {"id": 4, "event_time": 1706745600000000}),
    ],
    "error": [
        (
            "ErrorMessage",
            {
                "id": 1,
                "event_time": 1234567890,
                "code": -1004,
                "msg": "Invalid subscription format",
                "param": None,
            },
        ),
        ("ErrorMessage", {"id": 2, "code": -2010, "msg": "Transaction execution unsuccessful"}),
        (
            "ErrorMessage",
            {
                "id": 3,
                "code": -1122,
                "param": "FOO-USD@depth10",
                "msg": "symbol not found: FOO-USD",
            },
        ),
        ("ErrorMessage", {"id": 5, "code": -1010, "param": "BTC-USD@aggTrade"}),
    ],
    "subscribe_ack": [
        ("SubscribeResult", {"id": 5, "event_time": 1234567890, "result": "success"}),
        ("SubscribeResult", {"id": 1, "event_time": 1706745600000000}),
        ("SubscribeResult", {"id": None, "result": "success"}),
    ],
    "unsubscribe_ack": [
        ("UnsubscribeResult", {"id": 6, "event_time": 1234567890, "result": "success"}),
    ],
    "list_subscriptions": [
        (
            "ListSubscriptionsResult",
            {"id": 7, "event_time": 1234567890, "topics": ["btcusdt@depth10", "ethusdt@aggTrade"]},
        ),
        (
            "ListSubscriptionsResult",
            {"id": 2, "topics": ["BTC-USD@aggTrade", "ETH-USD@bookTicker"]},
        ),
    ],
    "order_result": [
        (
            "OrderResult",
            {
                "method": "place",
                "id": 10,
                "event_time": 1706745600000000,
                "tx_id": "0xabc",
                "status": "processed",
                "order_ids": [1, 2],
                "client_order_ids": [100, 101],
                "is_success": True,
            },
        ),
        (
            "OrderResult",
            {
                "method": "amend",
                "id": 11,
                "status": "published",
                "order_ids": [],
                "client_order_ids": [],
                "is_success": True,
            },
        ),
        ("OrderResult", {"method": "amend", "id": 11, "tx_id": "0xdef"}),
        (
            "OrderResult",
            {"method": "cancel_all", "id": 12, "order_ids": [1, 2, 3], "client_order_ids": []},
        ),
        ("OrderResult", {"method": "cancel", "id": 20, "order_ids": [5], "client_order_ids": [50]}),
        ("OrderResult", {"method": "place", "id": 1}),
        ("OrderResult", {"method": "cancel", "id": 1}),
        ("OrderResult", {"method": "amend", "id": 1}),
        ("OrderResult", {"method": "amend", "id": 1}),
        ("OrderResult", {"method": "cancel_all", "id": 1}),
        ("OrderResult", {"method": "place", "id": None, "request_id": None}),
        ("OrderResult", {"status": "submitted", "is_success": True, "client_order_ids": [12345]}),
        ("OrderResult", {"status": "dropped", "is_success": False}),
        ("OrderResult", {"id": 13, "status": "pending", "is_success": False}),
        (
            "OrderResult",
            {
                "method": "submit",
                "id": 1733250000000000,
                "event_time": 1733250000000123,
                "status": "submitted",
                "order_ids": [1042],
                "client_order_ids": [],
            },
        ),
    ],
    "depth_update": [
        (
            "DepthUpdate",
            {
                "event_type": "depthUpdate",
                "event_time": 1234567890,
                "transaction_time": 1234567890,
                "symbol": "BTCUSDT",
                "first_update_id": 100,
                "final_update_id": 200,
                "prev_final_update_id": 99,
                "bids": [("50000.00", "1.5")],
                "asks": [("50001.00", "2.0")],
                "message_type": "s",
                "is_snapshot": True,
            },
        ),
        (
            "DepthUpdate",
            {
                "symbol": "BTC-USD",
                "prev_final_update_id": 0,
                "bids": [("64250.5", "0.120"), ("64250.0", "0.500"), ("64249.0", "1.250")],
                "asks": [("64251.0", "0.080"), ("64252.5", "0.700"), ("64254.0", "2.000")],
            },
        ),
        (
            "DepthUpdate",
            {
                "prev_final_update_id": 1,
                "bids": [("64250.5", "0")],
                "message_type": "u",
                "is_snapshot": False,
            },
        ),
    ],
    "agg_trade": [
        (
            "AggTrade",
            {
                "event_type": "aggTrade",
                "event_time": 1234567890,
                "symbol": "BTCUSDT",
                "agg_trade_id": 12345,
                "price": "50000.00",
                "quantity": "1.5",
                "first_trade_id": 100,
                "last_trade_id": 105,
                "trade_time": 1234567890,
                "is_buyer_maker": True,
                "tx_hash": "0xabc123",
                "user_address": "0xdef456",
                "order_id": 999,
                "is_maker": True,
                "is_full_fill": False,
                "is_liquidation": False,
                "fee": "0.001",
                "net_fee": "0.001",
                "fee_asset": "USDT",
                "client_order_id": None,
                "side": "BUY",
            },
        ),
        (
            "AggTrade",
            {"symbol": "BTC-USD", "client_order_id": 42, "is_full_fill": True, "fee_asset": "USDC"},
        ),
    ],
    "book_ticker": [
        (
            "BookTicker",
            {
                "event_type": "bookTicker",
                "update_id": 12345,
                "event_time": 1234567890,
                "transaction_time": 1234567890,
                "symbol": "ETHUSDT",
                "bid_price": "3000.00",
                "bid_qty": "10.5",
                "ask_price": "3001.00",
                "ask_qty": "8.2",
                "message_type": "u",
                "is_snapshot": False,
            },
        ),
        ("BookTicker", {"update_id": 1, "message_type": "s", "is_snapshot": True}),
    ],
    "mark_price": [
        (
            "MarkPrice",
            {
                "event_type": "markPriceUpdate",
                "event_time": 1234567890,
                "symbol": "BTCUSDT",
                "mark_price": "50000.00",
                "index_price": "49999.00",
                "funding_rate": "0.0001",
                "estimated_settle_price": None,
                "next_funding_time": None,
                "tx_hash": None,
            },
        ),
        (
            "MarkPrice",
            {
                "estimated_settle_price": "64249.00",
                "next_funding_time": 1706748000000000,
                "tx_hash": "0x9d2e",
            },
        ),
    ],
    "force_order": [
        (
            "ForceOrder",
            {
                "event_type": "liquidation",
                "event_time": 1234567890,
                "symbol": "BTCUSDT",
                "side": "SELL",
                "order_type": "LIMIT",
                "time_in_force": "IOC",
                "price": "49000.00",
                "avg_price": "49000.00",
                "status": "FILLED",
                "last_filled_qty": "1.0",
                "trade_time": 1234567890,
                "tx_hash": "0xabc",
                "user_address": "0xdef",
                "order_id": 123,
                "trade_id": 456,
                "quantity": None,
                "filled_qty": None,
            },
        ),
        (
            "ForceOrder",
            {
                "event_type": "forceOrder",
                "quantity": "0.250",
                "filled_qty": "0.250",
                "avg_price": "63912.4",
                "trade_id": 1770050,
            },
        ),
    ],
    "order_trade_update": [
        (
            "OrderUpdate",
            {
                "event_type": "orderTradeUpdate",
                "event_time": 1234567890,
                "kind": "place_order",
                "symbol": "BTCUSDT",
                "order_id": 12345,
                "client_order_id": None,
                "status": "NEW",
                "execution_type": "NEW",
                "trade_time": 1234567890,
                "tx_hash": "0xabc",
                "user_address": "0xdef",
                "side": "BUY",
                "order_type": "LIMIT",
                "time_in_force": "GTC",
                "price": "50000.00",
                "quantity": "1.0",
                "last_filled_qty": None,
                "last_filled_price": None,
                "commission": None,
            },
        ),
        ("OrderUpdate", {"kind": "place_order", "client_order_id": 42, "price": "92.50"}),
        (
            "OrderUpdate",
            {
                "kind": "cancel",
                "status": "CANCELED",
                "side": None,
                "price": None,
                "quantity": None,
                "order_type": None,
                "last_filled_qty": None,
            },
        ),
        # A legacy fill without `N m t rp`: the SDK calls it a cancel (PROTOCOL.md §10.4).
        (
            "OrderUpdate",
            {
                "kind": "cancel",
                "side": None,
                "price": None,
                "quantity": None,
                "last_filled_qty": None,
                "commission": None,
                "is_maker": None,
            },
        ),
        ("OrderUpdate", {"kind": "place_order", "order_id": 100001, "client_order_id": 12345}),
    ],
    # The live protocol (PROTOCOL.md §10.7): provenance of each line in docs/PROTOCOL.md §10.
    "live_2026": [
        (
            "AggTrade",
            {
                "symbol": "SOL-USD",
                "agg_trade_id": 13205413,
                "price": "85.65",
                "quantity": "0.01",
                "trade_time": 1779600413211110,
                "is_buyer_maker": True,
                "tx_hash": "0x94764a",
                "user_address": "",
                "order_id": 0,
                "is_maker": False,
                "is_full_fill": False,
                "is_liquidation": False,
                "fee": "0",
                "net_fee": "0",
                "fee_asset": "",
                "client_order_id": 0,
                "side": "",
                "fill_type": "",
                "cumulative_filled_qty": "0",
                "cumulative_filled_quote": "0",
                "remaining_qty": "0",
            },
        ),
        (
            "OrderUpdate",
            {
                "kind": "trade_fill",
                "user_address": "",
                "side": "BUY",
                "price": None,
                "quantity": None,
                "average_price": "85.96",
                "last_filled_qty": "0.1",
                "last_filled_price": "85.96",
                "commission": "0.00275072",
                "commission_asset": "USDC",
                "is_maker": False,
                "trade_id": 13196983,
                "realized_pnl": "-0.0156",
                "fill_type": "o",
                "cumulative_filled_qty": "0.1",
                "cumulative_filled_quote": "8.596",
                "remaining_qty": "0",
                "order_type": None,
                "time_in_force": None,
            },
        ),
        ("OrderUpdate", {"kind": "trade_fill", "user_address": None, "trade_id": 13196983}),
        (
            "MarketStatus",
            {
                "event_type": "marketStatusUpdate",
                "event_time": 1706745600000000,
                "message_type": "s",
                "is_snapshot": True,
            },
        ),
        ("MarketStatus", {"message_type": "u", "is_snapshot": False}),
        (
            "DegenPositionCompleted",
            {
                "event_type": "degenPositionCompleted",
                "event_time": 1706745600000100,
                "sequence": 18446744073709551615,
            },
        ),
        ("SubscribeResult", {"id": 1, "event_time": 1779600272876932, "result": "success"}),
        (
            "ListSubscriptionsResult",
            {"id": 2, "topics": ["ETH-USD@aggTrade", "BTC-USD@bookTicker"]},
        ),
    ],
}

CASES = [
    pytest.param(name, index, cls, attrs, id=f"{name}-{index + 1}")
    for name, expected in EXPECTED.items()
    for index, (cls, attrs) in enumerate(expected)
]


def test_every_sample_line_has_an_expectation() -> None:
    for name, expected in EXPECTED.items():
        assert len(lines(name)) == len(expected), name


@pytest.mark.parametrize(("name", "index", "cls", "attrs"), CASES)
def test_sample_parses_to_api_class_and_fields(
    backend: ModuleType, name: str, index: int, cls: str, attrs: dict[str, Any]
) -> None:
    message = backend.parse_message(lines(name)[index])
    assert type(message) is getattr(backend, cls)
    assert isinstance(message, backend.Message)
    for attr, value in attrs.items():
        got = getattr(message, attr)
        assert got == value, attr
        assert type(got) is type(value), attr
    is_error = cls == "ErrorMessage"
    assert message.is_error is is_error
    has_id = "id" in type(message).__match_args__
    assert message.request_id == (message.id if has_id else None)


@pytest.mark.parametrize(("name", "index", "cls", "attrs"), CASES)
def test_sample_parses_from_binary_frames(
    backend: ModuleType, name: str, index: int, cls: str, attrs: dict[str, Any]
) -> None:
    text = lines(name)[index]
    assert backend.parse_message(text.encode()) == backend.parse_message(text)


@pytest.mark.parametrize("index", range(len(lines("sdk_unknown"))))
def test_sdk_unknown_lines_become_unknown(backend: ModuleType, index: int) -> None:
    text = lines("sdk_unknown")[index]
    message = backend.parse_message(text)
    assert type(message) is backend.Unknown
    assert message.raw == text
    assert isinstance(message.error, str) and message.error
    assert message.is_error is False and message.request_id is None


def test_native_reprs_equal_pure(native: ModuleType, pure: ModuleType) -> None:
    for name in EXPECTED:
        for text in lines(name):
            assert repr(native.parse_message(text)) == repr(pure.parse_message(text)), text
    for text in lines("sdk_unknown"):
        n, p = native.parse_message(text), pure.parse_message(text)
        assert type(n).__name__ == type(p).__name__ == "Unknown"
        assert n.raw == p.raw


def test_repr_format(backend: ModuleType) -> None:
    message = backend.parse_message(lines("agg_trade")[0])
    assert repr(message).startswith(
        "AggTrade(event_type='aggTrade', event_time=1234567890, symbol='BTCUSDT', "
        "agg_trade_id=12345, price='50000.00', "
    )
    assert repr(message).endswith(
        "client_order_id=None, side='BUY', fill_type=None, cumulative_filled_qty=None, "
        "cumulative_filled_quote=None, remaining_qty=None)"
    )
    depth = backend.parse_message(lines("depth_update")[0])
    assert "bids=[('50000.00', '1.5')], asks=[('50001.00', '2.0')]" in repr(depth)
    error = backend.parse_message(lines("error")[0])
    assert repr(error) == (
        "ErrorMessage(id=1, event_time=1234567890, code=-1004, "
        "msg='Invalid subscription format', param=None)"
    )


def test_messages_are_immutable_and_match(backend: ModuleType) -> None:
    message = backend.parse_message(lines("agg_trade")[0])
    with pytest.raises(AttributeError):
        message.price = "1"
    assert message == backend.parse_message(lines("agg_trade")[0])
    assert message != backend.parse_message(lines("agg_trade")[1])
    match message:
        case backend.AggTrade(symbol=symbol, price=price):
            assert (symbol, price) == ("BTCUSDT", "50000.00")
        case _:
            pytest.fail("AggTrade did not match by keyword")
    match backend.parse_message(lines("pong")[0]):
        case backend.Pong(request, time):
            assert (request, time) == (42, 1234567890)
        case _:
            pytest.fail("Pong did not match by position")


def test_list_and_record_attributes_are_one_object(backend: ModuleType) -> None:
    """A list or record attribute is the same object on every read, as a plain attribute is
    (the native classes make it when first read and keep it); its value is unchanged by reading.
    Depth levels are equal on every read (natively a new list each time: see gen_spec.cached)."""
    depth = backend.parse_message(lines("depth_update")[1])
    assert depth.bids == depth.bids and depth.asks == depth.asks
    assert depth.bids == [("64250.5", "0.120"), ("64250.0", "0.500"), ("64249.0", "1.250")]
    assert all(type(p) is str and type(q) is str for p, q in depth.bids + depth.asks)
    assert depth == backend.parse_message(lines("depth_update")[1])
    live = lines("live_2026")
    market = backend.parse_message(live[4])
    assert market.markets is market.markets
    assert market.markets[0].symbol == "BTC-USD"
    degen = backend.parse_message(live[5])
    assert degen.position is degen.position
    assert degen.position.liquidation_type == "backstop"
    listed = backend.parse_message(live[7])
    assert listed.topics is listed.topics
    assert listed.topics == ["ETH-USD@aggTrade", "BTC-USD@bookTicker"]


# --- ids and integer bounds ---------------------------------------------------------------------


def test_u64_ids_exact_to_the_top(backend: ModuleType) -> None:
    pong = backend.parse_message(f'{{"e":"pong","id":{U64_MAX},"E":{U64_MAX}}}')
    assert type(pong) is backend.Pong
    assert pong.id == U64_MAX and pong.event_time == U64_MAX and pong.request_id == U64_MAX
    result = backend.parse_message(
        '{"e":"order.place","id":1,"E":1,"results":{"tx_id":"0x1","status":"processed",'
        f'"order_ids":[{U64_MAX}],"client_order_ids":[{U64_MAX - 1}]}}}}'
    )
    assert result.order_ids == [U64_MAX] and result.client_order_ids == [U64_MAX - 1]


@pytest.mark.parametrize(
    "frame",
    [
        f'{{"e":"pong","id":{U64_MAX + 1},"E":1}}',  # above u64
        '{"e":"pong","id":-1,"E":1}',
        '{"e":"pong","id":1,"E":1.0}',  # a float is never a u64
        '{"e":"pong","id":1,"E":true}',  # nor is a bool
        '{"e":"pong","id":"1","E":1}',
        '{"e":"pong","id":1,"E":NaN}',  # not JSON
        '{"e":"pong","id":1,"E":Infinity}',
        '{"e":"pong","id":1,"E":1e3}',
        '{"e":"PONG","id":1,"E":1}',  # tags are case-sensitive
        '{"e":"error","id":1,"E":1,"error":{"code":2147483648,"msg":"x"}}',  # i32
        '{"id":1,"E":1,"error":{"code":-1,"msg":5}}',
        '{"e":"subscribe","id":1,"E":1,"result":true}',
        '{"e":"list_subscriptions","id":1,"E":1,"result":["a",1]}',
        (
            '{"e":"order.place","E":1,"results":{"tx_id":"0x1","status":"processed",'
            '"order_ids":[1.5]}}'
        ),
        (
            '{"e":"depthUpdate","E":1,"T":1,"s":"B","U":1,"u":1,"pu":0,"b":[["1","2","3"]],'
            '"a":[],"mt":"s"}'
        ),
        (
            '{"e":"depthUpdate","E":1,"T":1,"s":"B","U":1,"u":1,"pu":0,"b":[["1",2]],'
            '"a":[],"mt":"s"}'
        ),
        '{"e":"bookTicker","u":1,"E":1,"T":1,"s":"B","b":"1","B":"1","a":"1","A":"1","mt":"S"}',
        "[1, 2]",
        '"text"',
        "null",
        "not json",
        "",
        '{"e":"pong","id":1,"E":1',
    ],
)
def test_strict_types_give_unknown(backend: ModuleType, frame: str) -> None:
    message = backend.parse_message(frame)
    assert type(message) is backend.Unknown
    assert message.raw == frame


def test_error_code_keeps_the_wire_number(backend: ModuleType) -> None:
    message = backend.parse_message('{"e":"error","E":1,"error":{"code":-9999,"msg":"odd"}}')
    assert type(message) is backend.ErrorMessage
    assert (message.code, message.id, message.request_id) == (-9999, None, None)
    assert backend.parse_message('{"E":1,"error":{"code":2147483647,"msg":"x"}}').code == 2147483647


def test_optional_fields_accept_null(backend: ModuleType) -> None:
    pong = backend.parse_message('{"e":"pong","id":null,"E":7}')
    assert type(pong) is backend.Pong and pong.id is None
    mark = backend.parse_message(
        '{"e":"markPriceUpdate","E":1,"s":"S","p":"1","i":"1","r":"0","P":null,"T":null}'
    )
    assert type(mark) is backend.MarkPrice and mark.next_funding_time is None


def test_incomplete_tagged_falls_through_to_untagged(backend: ModuleType) -> None:
    # e="error" matches the tag but without E the tagged body is incomplete, and the
    # untagged Error needs E too: Unknown.
    assert type(backend.parse_message('{"e":"error","error":{"code":1,"msg":"m"}}')) is (
        backend.Unknown
    )
    # ...an unknown `e` with an error body is the untagged Error (e is ignored there).
    message = backend.parse_message('{"e":"whatever","id":3,"E":1,"error":{"code":1,"msg":"m"}}')
    assert type(message) is backend.ErrorMessage and message.request_id == 3
    # A market-data shape carrying a tag value is tried as Tagged first.
    agg = json.loads(lines("agg_trade")[0])
    agg["e"] = "pong"
    message = backend.parse_message(json.dumps(agg))
    # Tagged pong needs only E (+ optional id): it wins over AggTrade.
    assert type(message) is backend.Pong and message.id is None


def test_order_matters_depth_before_markprice(backend: ModuleType) -> None:
    depth = json.loads(lines("depth_update")[0])
    depth.update({"p": "1", "i": "2", "r": "3", "e": "markPriceUpdate"})
    assert type(backend.parse_message(json.dumps(depth))) is backend.DepthUpdate


def test_extra_fields_are_ignored(backend: ModuleType) -> None:
    message = backend.parse_message('{"e":"pong","id":1,"E":2,"extra":{"deep":[1,2]}}')
    assert type(message) is backend.Pong


def test_order_update_kinds_by_presence(backend: ModuleType) -> None:
    base = json.loads(lines("order_trade_update")[2])  # the Cancel shape
    fill_keys = {
        "S": "SELL",
        "l": "1",
        "L": "2",
        "n": "0.1",
        "N": "USDC",
        "m": True,
        "t": 7,
        "rp": "0",
    }
    fill = dict(base, o=dict(base["o"], **fill_keys))
    assert backend.parse_message(json.dumps(fill)).kind == "trade_fill"
    for key in ("N", "m", "t", "rp"):  # each is required by the SDK's TradeFill since 0.0.21
        legacy = dict(base, o={k: v for k, v in fill["o"].items() if k != key})
        assert backend.parse_message(json.dumps(legacy)).kind == "cancel", key
    # p present but not a string: TradeFill fails on it, PlaceOrder lacks o/f: Cancel.
    odd = dict(base, o=dict(base["o"], **fill_keys, p=5))
    message = backend.parse_message(json.dumps(odd))
    assert (message.kind, message.side, message.price) == ("cancel", None, None)


def test_binary_frames_and_bad_utf8(backend: ModuleType) -> None:
    text = lines("pong")[0]
    assert backend.parse_message(text.encode()) == backend.parse_message(text)
    raw = b'{"e":"pong","id":1,"E":1,"x":"\xff"}'
    message = backend.parse_message(raw)
    assert type(message) is backend.Unknown
    assert message.raw == raw.decode("utf-8", "replace")


# --- the pure parser's fast dispatch equals the ordered attempt --------------------------------

_SAMPLE_DICTS = [json.loads(text) for name in EXPECTED for text in lines(name)] + [
    json.loads(text) for text in lines("sdk_unknown")
]
_KEYS = sorted({key for d in _SAMPLE_DICTS for key in d} | {"e"})
_E_VALUES = [
    "aggTrade",
    "depthUpdate",
    "bookTicker",
    "markPriceUpdate",
    "forceOrder",
    "liquidation",
    "orderTradeUpdate",
    "pong",
    "error",
    "status",
    "order.place",
    "submit",
    "marketStatusUpdate",
    "degenPositionCompleted",
    "kline",
    "x",
]
_VALUES_BY_KEY: dict[str, list[Any]] = {}
for _d in _SAMPLE_DICTS:
    for _k, _v in _d.items():
        _VALUES_BY_KEY.setdefault(_k, []).append(_v)
_VALUES_BY_KEY["e"] = _E_VALUES


@st.composite
def frankenframes(draw: st.DrawFn) -> dict[str, Any]:
    """Frames stitched from sample fields: many satisfy several candidates at once."""
    keys = draw(st.sets(st.sampled_from(_KEYS), min_size=1, max_size=len(_KEYS)))
    return {key: draw(st.sampled_from(_VALUES_BY_KEY[key])) for key in sorted(keys)}


@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(frankenframes())
def test_fast_dispatch_equals_ordered_attempt(frame: dict[str, Any]) -> None:
    from bullet_ws.pure import parse

    def ordered(d: dict[str, Any]) -> Any:
        tag = d.get("e")
        if type(tag) is str and tag in parse._TAGGED:
            message = parse._TAGGED[tag](d)
            if message is not None:
                return message
        for candidate in parse._UNTAGGED:
            message = candidate(d)
            if message is not None:
                return message
        return None

    assert parse._match(frame) == ordered(frame)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), st.binary()))
def test_parse_never_raises(data: str | bytes) -> None:
    from bullet_ws.pure import Message, parse_message

    assert isinstance(parse_message(data), Message)
