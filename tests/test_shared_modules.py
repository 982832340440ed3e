"""Tests of the modules shared by both backends: errors, config, events, topics, urls, _validate,
_connect. They need neither backend nor a network."""

from __future__ import annotations

import math
import pathlib
import sys
from typing import Any

import pytest
from bullet_ws import _validate
from bullet_ws._connect import Connect, resolve_connect_args
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
from bullet_ws.events import Disconnected, Reconnected, Reconnecting, Stats
from bullet_ws.topics import KlineInterval, OrderbookDepth, Topic
from bullet_ws.urls import resolve_url
from hypothesis import given, settings
from hypothesis import strategies as st

# --- errors -------------------------------------------------------------------------------------


def test_error_hierarchy() -> None:
    assert issubclass(ConnectError, BulletWsError)
    assert issubclass(ConnectTimeout, ConnectError)
    assert issubclass(ConnectTimeout, TimeoutError)
    assert issubclass(HandshakeError, ConnectError)
    assert issubclass(StoppedError, ManagedWsError)
    assert issubclass(BusyError, ManagedWsError)
    assert issubclass(ManagedWsError, BulletWsError)


def test_error_default_messages() -> None:
    assert str(StoppedError()) == "managed websocket is stopped"
    assert str(BusyError()) == "managed websocket command channel is full"
    assert str(StoppedError("custom")) == "custom"


# --- config -------------------------------------------------------------------------------------


def test_config_defaults_are_the_sdk_ones() -> None:
    c = ManagedWsConfig()
    assert (c.initial_backoff, c.max_backoff, c.max_retries) == (1.0, 30.0, None)
    assert (c.channel_capacity, c.connection_timeout, c.idle_timeout) == (10_000, 10.0, 60.0)
    assert c.backoff_reset_after == 30.0
    assert c.max_message_size == 4 * 1024 * 1024
    assert c.ca_file is None


def test_config_is_frozen_and_slotted() -> None:
    c = ManagedWsConfig()
    with pytest.raises(AttributeError):
        c.idle_timeout = 1.0  # type: ignore[misc]
    assert not hasattr(c, "__dict__")


def test_config_ints_become_floats() -> None:
    c = ManagedWsConfig(initial_backoff=0, idle_timeout=2)
    assert c.initial_backoff == 0.0 and isinstance(c.initial_backoff, float)
    assert isinstance(c.idle_timeout, float)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("initial_backoff", -1, ValueError),
        ("initial_backoff", "1", TypeError),
        ("initial_backoff", True, TypeError),
        ("initial_backoff", math.nan, ValueError),
        ("max_backoff", math.inf, ValueError),
        ("max_backoff", -0.5, ValueError),
        ("max_retries", -1, ValueError),
        ("max_retries", 1.0, TypeError),
        ("max_retries", False, TypeError),
        ("channel_capacity", 0, ValueError),
        ("channel_capacity", 1.5, TypeError),
        ("connection_timeout", 0, ValueError),
        ("connection_timeout", None, TypeError),
        ("idle_timeout", -1, ValueError),
        ("backoff_reset_after", -1, ValueError),
        ("max_message_size", 1023, ValueError),
        ("max_message_size", True, TypeError),
        ("ca_file", 3, TypeError),
        ("ca_file", "", ValueError),
        ("ca_file", b"/x.pem", TypeError),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field: str, value: Any, error: type) -> None:
    with pytest.raises(error) as info:
        ManagedWsConfig(**{field: value})
    assert str(info.value).startswith(field)


def test_config_idle_timeout_message() -> None:
    with pytest.raises(ValueError, match=r"^idle_timeout must be >= 0, got -1$"):
        ManagedWsConfig(idle_timeout=-1)


def test_config_accepts_edge_values() -> None:
    c = ManagedWsConfig(
        initial_backoff=0,
        max_backoff=0,
        max_retries=0,
        channel_capacity=1,
        idle_timeout=0,
        backoff_reset_after=0,
        max_message_size=1024,
        ca_file=pathlib.Path("/tmp/ca.pem"),
    )
    assert c.max_retries == 0
    assert c.ca_file == "/tmp/ca.pem"


def test_with_overrides() -> None:
    base = ManagedWsConfig(idle_timeout=5)
    changed = base.with_overrides(max_retries=3)
    assert changed.max_retries == 3 and changed.idle_timeout == 5.0
    assert base.max_retries is None
    assert base.with_overrides() == base
    with pytest.raises(TypeError, match="idle_timout"):
        base.with_overrides(idle_timout=1)
    with pytest.raises(ValueError, match="^max_retries"):
        base.with_overrides(max_retries=-2)


# --- events -------------------------------------------------------------------------------------


def test_events_match_by_keyword_and_position() -> None:
    event: object = Reconnected(2, 0.5)
    match event:
        case Reconnected(attempts, downtime=d):
            assert (attempts, d) == (2, 0.5)
        case _:
            pytest.fail("no match")
    match Disconnected("exhausted 3 reconnect attempts"):
        case Disconnected(reason=r):
            assert r == "exhausted 3 reconnect attempts"
    assert repr(Reconnecting("closed", 2, 0.25)) == (
        "Reconnecting(reason='closed', attempt=2, delay=0.25)"
    )
    # Built with the reason only (as before `attempt` and `delay` existed): the first attempt.
    assert Reconnecting("closed") == Reconnecting(reason="closed", attempt=1, delay=0.0)
    match Reconnecting("lost", 3, 0.5):
        case Reconnecting(r, a, d):
            assert (r, a, d) == ("lost", 3, 0.5)
    match Reconnecting("lost", 3, 0.5):
        case Reconnecting(reason=r, attempt=a):
            assert (r, a) == ("lost", 3)
    assert Stats(1, 2, 3, 4) == Stats(messages_received=1, events_dropped=2, reconnects=3, queued=4)
    with pytest.raises(AttributeError):
        Reconnecting("x").reason = "y"  # type: ignore[misc]


# --- topics -------------------------------------------------------------------------------------


def test_topic_strings() -> None:
    assert Topic.agg_trade("BTC-USD") == "BTC-USD@aggTrade"
    assert Topic.depth("BTC-USD") == "BTC-USD@depth10"
    assert Topic.depth("BTC-USD", OrderbookDepth.D5) == "BTC-USD@depth5"
    assert Topic.depth("BTC-USD", OrderbookDepth.D20) == "BTC-USD@depth20"
    assert Topic.book_ticker("ETH-USD") == "ETH-USD@bookTicker"
    assert Topic.mark_price("ETH-USD") == "ETH-USD@markPrice"
    assert Topic.force_order("ETH-USD") == "ETH-USD@forceOrder"
    assert Topic.user_orders("4XN8") == "4XN8@user.orders"
    assert Topic.all_tickers() == "!ticker@arr"
    assert Topic.all_mark_prices() == "!markPrice@arr"
    assert Topic.all_book_tickers() == "!bookTicker@arr"
    assert Topic.all_force_orders() == "!forceOrder@arr"
    expected = {
        "M1": "1m",
        "M5": "5m",
        "M15": "15m",
        "M30": "30m",
        "H1": "1h",
        "H4": "4h",
        "D1": "1d",
    }
    for name, suffix in expected.items():
        assert Topic.kline("BTC-USD", KlineInterval[name]) == f"BTC-USD@kline_{suffix}"
    assert [d.value for d in OrderbookDepth] == ["5", "10", "20"]


def test_topic_is_its_string() -> None:
    t = Topic.agg_trade("BTC-USD")
    assert isinstance(t, str)
    assert str(t) == "BTC-USD@aggTrade" and type(str(t)) is str
    assert hash(t) == hash("BTC-USD@aggTrade")
    assert {t} == {"BTC-USD@aggTrade"}
    assert repr(t) == "Topic('BTC-USD@aggTrade')"
    assert Topic("X@y") == Topic("X@y")


def test_topic_constructors_check_arguments() -> None:
    with pytest.raises(TypeError, match="^symbol"):
        Topic.agg_trade(1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^symbol"):
        Topic.agg_trade("")
    with pytest.raises(TypeError, match="^depth"):
        Topic.depth("BTC-USD", 10)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^interval"):
        Topic.kline("BTC-USD", "1m")  # type: ignore[arg-type]


# --- urls ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("mainnet", "wss://tradingapi.bullet.xyz/ws"),
        ("MainNet", "wss://tradingapi.bullet.xyz/ws"),
        ("testnet", "wss://tradingapi.testnet.bullet.xyz/ws"),
        ("TESTNET", "wss://tradingapi.testnet.bullet.xyz/ws"),
        ("ws://127.0.0.1:9000/feed?x=1", "ws://127.0.0.1:9000/feed?x=1"),
        ("wss://example.com", "wss://example.com"),
        ("https://tradingapi.bullet.xyz", "wss://tradingapi.bullet.xyz/ws"),
        ("https://tradingapi.staging.bullet.xyz/api/v1/", "wss://tradingapi.staging.bullet.xyz/ws"),
        ("http://localhost:3000", "ws://localhost:3000/ws"),
        ("http://user:pw@[::1]:3000/x", "ws://user:pw@[::1]:3000/ws"),
    ],
)
def test_resolve_url(given: str, expected: str) -> None:
    assert resolve_url(given) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "devnet",
        "ftp://example.com",
        "ws://",
        "https://",
        "localhost:3000",
        "ws://h:99999",
        "http://exa mple.com",
    ],
)
def test_resolve_url_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="^url"):
        resolve_url(bad)


def test_resolve_url_type() -> None:
    with pytest.raises(TypeError, match="^url"):
        resolve_url(b"mainnet")  # type: ignore[arg-type]


# --- _validate ----------------------------------------------------------------------------------


def test_topics_arg() -> None:
    t = Topic.agg_trade("A")
    result = _validate.topics_arg([t, "B@x", "A@aggTrade", "B@x"])
    assert result == ["A@aggTrade", "B@x"]
    assert all(type(x) is str for x in result)
    assert _validate.topics_arg(iter(["Z@q"])) == ["Z@q"]
    assert _validate.topics_arg([]) == []


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ("BTC@aggTrade", TypeError),
        (b"x@y", TypeError),
        (5, TypeError),
        ([5], TypeError),
        ([b"x@y"], TypeError),
        ([""], ValueError),
        (["BTC-USD"], ValueError),
    ],
)
def test_topics_arg_rejects(bad: object, error: type) -> None:
    with pytest.raises(error) as info:
        _validate.topics_arg(bad)
    assert str(info.value).startswith("topics")


def test_id_arg() -> None:
    assert _validate.id_arg(None) is None
    assert _validate.id_arg(0) == 0
    assert _validate.id_arg(2**64 - 2**32 - 1) == 2**64 - 2**32 - 1
    for bad, error in [
        (-1, ValueError),
        (2**64, ValueError),
        (True, TypeError),
        ("1", TypeError),
        (1.0, TypeError),
        (2**64 - 2**32, ValueError),
        (2**64 - 1, ValueError),
    ]:
        with pytest.raises(error, match="^id"):
            _validate.id_arg(bad)


def test_tx_arg() -> None:
    assert _validate.tx_arg(b"\x00\x01\x02\x03\x04\x05\x06\x07") == "AAECAwQFBgc="
    assert _validate.tx_arg(bytearray(b"ab")) == "YWI="
    assert _validate.tx_arg(memoryview(b"abc")) == "YWJj"
    assert _validate.tx_arg("AAECAwQFBgc=") == "AAECAwQFBgc="
    assert _validate.tx_arg("YW==") == "YW=="
    for bad, error in [
        ("", ValueError),
        (b"", ValueError),
        ("AAECAwQFBgc", ValueError),
        ("AA-_", ValueError),
        ("AAE=CAwQ", ValueError),
        ("A===", ValueError),
        ("AAAA=", ValueError),
        ("AAQQ====", ValueError),
        ("AAAA====", ValueError),
        (" AAAA", ValueError),
        (12, TypeError),
        (None, TypeError),
    ]:
        with pytest.raises(error, match="^tx"):
            _validate.tx_arg(bad)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the regex is the check before 3.11")
@settings(max_examples=3000, deadline=None)
@given(
    st.lists(
        st.sampled_from([*"AZaz09+/=-_ \n.\u00e9\x00\ud800", "QQ", "QUI=", "QUJD", "==", "QQ=="]),
        min_size=1,
        max_size=12,
    ).map("".join)
)
def test_the_fast_base64_check_agrees_with_the_rule(tx: str) -> None:
    assert _validate._decodes_base64(tx) == _validate._matches_base64(tx)


def test_max_events_arg() -> None:
    assert _validate.max_events_arg(1) == 1
    for bad, error in [(0, ValueError), (-3, ValueError), (True, TypeError), (2.0, TypeError)]:
        with pytest.raises(error, match="^max_events"):
            _validate.max_events_arg(bad)


# --- _connect -----------------------------------------------------------------------------------


def test_resolve_connect_args() -> None:
    url, config = resolve_connect_args("testnet", None, {"idle_timeout": 3})
    assert url == "wss://tradingapi.testnet.bullet.xyz/ws"
    assert config == ManagedWsConfig(idle_timeout=3)
    _, config = resolve_connect_args("mainnet", ManagedWsConfig(max_retries=2), {})
    assert config.max_retries == 2
    with pytest.raises(TypeError, match="^config"):
        resolve_connect_args("mainnet", {"max_retries": 2}, {})
    with pytest.raises(ValueError, match="^url"):
        resolve_connect_args("nowhere", None, {})
    with pytest.raises(TypeError, match="bogus"):
        resolve_connect_args("mainnet", None, {"bogus": 1})


class _FakeWs:
    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


async def test_connect_is_awaitable_and_context_manager() -> None:
    opened: list[tuple[str, ManagedWsConfig]] = []

    async def opener(url: str, config: ManagedWsConfig) -> _FakeWs:
        opened.append((url, config))
        return _FakeWs()

    config = ManagedWsConfig()
    ws = await Connect(opener, "ws://h/ws", config)
    assert isinstance(ws, _FakeWs) and opened == [("ws://h/ws", config)]
    async with Connect(opener, "ws://h/ws", config) as ws2:
        assert not ws2.closed
    assert ws2.closed
    with pytest.raises(RuntimeError):
        async with Connect(opener, "ws://h/ws", config) as ws3:
            raise RuntimeError
    assert ws3.closed
