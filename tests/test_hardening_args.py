"""Hardening (docs/design/TESTING.md B18): bad input across the whole API gets a TypeError/ValueError whose
message starts with (or names) the argument; nothing is sent (the fake exchange's record) and no
state changes (`topics`, `stats`).

test_conformance_args.py already covers the common cases (bad URLs, negative/NaN durations, a
bare-str topics, ids out of range, non-base64 tx, max_events=0); this file adds the rest of the
surface: every command's arguments with more shapes (atomicity of a partly bad topics list, empty
bytes-likes, base64 variants, bool/float ids), recv_batch, connect's url/config/overrides (the
new fields max_message_size and ca_file included), and MockExchange's arguments and faults.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(60)

TX = "AAECAwQFBgc="
TOPIC = "BTC-USD@aggTrade"

# (label, call(ws), error class, argument name that must lead the message)
BAD_COMMANDS: list[tuple[str, Callable[[Any], Any], type, str]] = [
    ("subscribe None", lambda ws: ws.subscribe(None), TypeError, "topics"),
    ("subscribe bytes", lambda ws: ws.subscribe(b"BTC-USD@aggTrade"), TypeError, "topics"),
    ("subscribe dict of int", lambda ws: ws.subscribe({1: 2}), TypeError, "topics"),
    ("subscribe [None]", lambda ws: ws.subscribe([None]), TypeError, "topics"),
    ("subscribe good+bad", lambda ws: ws.subscribe(["ETH-USD@aggTrade", 5]), TypeError, "topics"),
    (
        "subscribe good+no-@ (generator)",
        lambda ws: ws.subscribe(t for t in ["ETH-USD@aggTrade", "ETH-USD"]),
        ValueError,
        "topics",
    ),
    ("subscribe id float", lambda ws: ws.subscribe(["ETH-USD@aggTrade"], id=1.0), TypeError, "id"),
    ("subscribe id str", lambda ws: ws.subscribe(["ETH-USD@aggTrade"], id="7"), TypeError, "id"),
    ("unsubscribe None", lambda ws: ws.unsubscribe(None), TypeError, "topics"),
    ("unsubscribe good+bad", lambda ws: ws.unsubscribe([TOPIC, ""]), ValueError, "topics"),
    ("unsubscribe id huge", lambda ws: ws.unsubscribe([TOPIC], id=2**70), ValueError, "id"),
    ("place tx None", lambda ws: ws.order_place(None), TypeError, "tx"),
    ("place tx int", lambda ws: ws.order_place(123), TypeError, "tx"),
    ("place tx list", lambda ws: ws.order_place([1, 2]), TypeError, "tx"),
    ("place tx empty bytes", lambda ws: ws.order_place(b""), ValueError, "tx"),
    ("cancel tx empty bytearray", lambda ws: ws.order_cancel(bytearray()), ValueError, "tx"),
    ("amend tx empty memoryview", lambda ws: ws.order_amend(memoryview(b"")), ValueError, "tx"),
    ("cancel_all tx urlsafe b64", lambda ws: ws.order_cancel_all("-_8="), ValueError, "tx"),
    ("place tx newline", lambda ws: ws.order_place(TX + "\n"), ValueError, "tx"),
    ("place tx inner space", lambda ws: ws.order_place("AAEC AwQF"), ValueError, "tx"),
    ("place tx bad padding", lambda ws: ws.order_place("AAAA===="), ValueError, "tx"),
    ("place tx no padding", lambda ws: ws.order_place("AAECAwQFBg"), ValueError, "tx"),
    ("place tx non-ascii", lambda ws: ws.order_place("AAÉCAwQF"), ValueError, "tx"),
    ("place id bool", lambda ws: ws.order_place(TX, id=True), TypeError, "id"),
    ("cancel id negative", lambda ws: ws.order_cancel(TX, id=-1), ValueError, "id"),
    ("amend id float", lambda ws: ws.order_amend(TX, id=2.0), TypeError, "id"),
    ("cancel_all id 2**64", lambda ws: ws.order_cancel_all(TX, id=2**64), ValueError, "id"),
    ("list_subscriptions id str", lambda ws: ws.list_subscriptions(id="1"), TypeError, "id"),
    ("ping id negative", lambda ws: ws.ping(id=-1), ValueError, "id"),
    ("ping id bool", lambda ws: ws.ping(id=False), TypeError, "id"),
]

BAD_MAX_EVENTS: list[tuple[Any, type]] = [
    (-1, ValueError),
    (0, ValueError),
    (True, TypeError),
    ("3", TypeError),
    (2.0, TypeError),
]


async def test_bad_arguments_send_nothing_and_change_nothing(
    backend: ModuleType, mock: Any
) -> None:
    async with backend.connect(mock.url, idle_timeout=0) as ws:
        ws.subscribe([TOPIC], id=1)
        ws.ping(id=2)
        async with asyncio.timeout(5):
            while not isinstance(await ws.recv(), backend.Pong):
                pass
        stats_before = ws.stats
        problems = []
        for label, call, error, name in BAD_COMMANDS:
            try:
                call(ws)
            except error as exc:
                if not str(exc).startswith(name):
                    problems.append(f"{label}: message does not start with {name!r}: {exc}")
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                problems.append(f"{label}: raised {type(exc).__name__}: {exc}")
            else:
                problems.append(f"{label}: no error")
            if ws.topics != frozenset({TOPIC}):
                problems.append(f"{label}: topics changed to {set(ws.topics)}")
        for value, error in BAD_MAX_EVENTS:
            with pytest.raises(error, match="^max_events"):
                await ws.recv_batch(value)
            with pytest.raises(error, match="^max_events"):
                await ws.recv_batch(max_events=value)
        assert not problems, "\n".join(problems)
        assert ws.stats.reconnects == stats_before.reconnects
        # Everything the socket sent since: only this final PING.
        ws.ping(id=3)
        async with asyncio.timeout(5):
            while True:
                event = await ws.recv()
                if isinstance(event, backend.Pong) and event.id == 3:
                    break
        assert mock.connection(0).frames == [
            '{"method":"SUBSCRIBE","id":1,"params":["BTC-USD@aggTrade"]}',
            '{"method":"PING","id":2}',
            '{"method":"PING","id":3}',
        ]
        assert mock.connection(0).binary_frames == []
        assert ws.topics == frozenset({TOPIC})


async def test_recv_batch_none_is_rejected(
    backend: ModuleType, mock: Any, request: pytest.FixtureRequest
) -> None:
    """`max_events=None` is not an int >= 1 (CONTRACTS.md max_events_arg): TypeError."""
    async with backend.connect(mock.url, idle_timeout=0) as ws:
        ws.ping(id=1)
        with pytest.raises(TypeError, match="^max_events"):
            async with asyncio.timeout(2):
                await ws.recv_batch(None)


BAD_CONNECT: list[tuple[str, dict[str, Any], type, str]] = [
    ("url bytes", {"url": b"ws://127.0.0.1:9/ws"}, TypeError, "url"),
    ("url empty", {"url": ""}, ValueError, "url"),
    ("url wss no host", {"url": "wss://"}, ValueError, "url"),
    ("url http no host", {"url": "http://"}, ValueError, "url"),
    ("url unknown network", {"url": "devnet"}, ValueError, "url"),
    ("config wrong type", {"config": {"idle_timeout": 1}}, TypeError, "config"),
    ("max_message_size small", {"max_message_size": 1023}, ValueError, "max_message_size"),
    ("max_message_size str", {"max_message_size": "4"}, TypeError, "max_message_size"),
    ("max_message_size float", {"max_message_size": 4096.0}, TypeError, "max_message_size"),
    ("max_message_size bool", {"max_message_size": True}, TypeError, "max_message_size"),
    ("ca_file int", {"ca_file": 5}, TypeError, "ca_file"),
    ("ca_file bytes", {"ca_file": b"/tmp/ca.pem"}, TypeError, "ca_file"),
    (
        "backoff_reset_after negative",
        {"backoff_reset_after": -1},
        ValueError,
        "backoff_reset_after",
    ),
    ("connection_timeout inf", {"connection_timeout": math.inf}, ValueError, "connection_timeout"),
    ("channel_capacity float", {"channel_capacity": 1.5}, TypeError, "channel_capacity"),
    ("idle_timeout bool", {"idle_timeout": True}, TypeError, "idle_timeout"),
    ("max_retries float", {"max_retries": 1.0}, TypeError, "max_retries"),
    ("unknown override", {"max_message_sise": 4096}, TypeError, "max_message_sise"),
]


@pytest.mark.parametrize(("label", "kwargs", "error", "name"), BAD_CONNECT, ids=lambda v: v)
def test_connect_rejects_bad_input_at_once(
    backend: ModuleType, label: str, kwargs: dict[str, Any], error: type, name: str
) -> None:
    kwargs = dict(kwargs)
    url = kwargs.pop("url", "ws://127.0.0.1:9/ws")
    with pytest.raises(error) as info:
        backend.connect(url, **kwargs)  # raises before anything is awaited: no socket opened
    assert name in str(info.value), str(info.value)


BAD_MOCK: list[tuple[str, dict[str, Any], type, str]] = [
    ("host empty", {"host": ""}, ValueError, "host"),
    ("host int", {"host": 1}, ValueError, "host"),
    ("port negative", {"port": -1}, ValueError, "port"),
    ("port too big", {"port": 70000}, ValueError, "port"),
    ("port bool", {"port": True}, ValueError, "port"),
    ("rate zero", {"rate": 0}, ValueError, "rate"),
    ("rate nan", {"rate": math.nan}, ValueError, "rate"),
    ("rate bool", {"rate": True}, ValueError, "rate"),
    ("symbols str", {"symbols": "BTC-USD"}, TypeError, "symbols"),
    ("symbols with @", {"symbols": ["BTC@USD"]}, ValueError, "symbols"),
    ("symbols empty name", {"symbols": [""]}, ValueError, "symbols"),
    ("max_messages negative", {"max_messages": -1}, ValueError, "max_messages"),
    ("max_topics bool", {"max_topics": True}, ValueError, "max_topics"),
    ("ping_interval zero", {"ping_interval": 0}, ValueError, "ping_interval"),
    ("ping_interval inf", {"ping_interval": math.inf}, ValueError, "ping_interval"),
    ("ping_interval huge", {"ping_interval": 1e300}, ValueError, "ping_interval"),
    ("idle_close zero", {"idle_close": 0}, ValueError, "idle_close"),
    ("idle_close negative", {"idle_close": -1}, ValueError, "idle_close"),
    ("idle_close nan", {"idle_close": math.nan}, ValueError, "idle_close"),
    ("idle_close huge", {"idle_close": 1e300}, ValueError, "idle_close"),
    ("idle_close bool", {"idle_close": True}, ValueError, "idle_close"),
    ("idle_close str", {"idle_close": "1"}, ValueError, "idle_close"),
    ("max_duration zero", {"max_duration": 0}, ValueError, "max_duration"),
    ("max_duration negative", {"max_duration": -0.5}, ValueError, "max_duration"),
    ("max_duration inf", {"max_duration": math.inf}, ValueError, "max_duration"),
    ("max_duration huge", {"max_duration": 1e300}, ValueError, "max_duration"),
    ("max_duration bool", {"max_duration": False}, ValueError, "max_duration"),
]


@pytest.mark.parametrize(("label", "kwargs", "error", "name"), BAD_MOCK, ids=lambda v: v)
def test_mock_exchange_rejects_bad_arguments(
    label: str, kwargs: dict[str, Any], error: type, name: str
) -> None:
    testing = pytest.importorskip("bullet_ws.testing")
    with pytest.raises(error) as info:
        testing.MockExchange(**kwargs)
    assert str(info.value).startswith(name), str(info.value)


BAD_FAULTS: list[tuple[str, tuple[Any, ...], dict[str, Any], str]] = [
    ("unknown kind", ("explode",), {}, "kind"),
    ("bad scope", ("close",), {"scope": "later"}, "scope"),
    ("next-only kind now", ("refuse",), {}, "scope"),
    ("count zero", ("close",), {"count": 0}, "count"),
    ("count bool", ("close",), {"count": True}, "count"),
    ("unknown param", ("close",), {"colour": "red"}, "colour"),
    ("missing param", ("oversize",), {}, "size"),
    ("ill-typed param", ("close",), {"code": "1000"}, "code"),
    ("send_text data int", ("send_text",), {"data": 5}, "data"),
    ("disconnecting delay negative", ("disconnecting",), {"delay": -1}, "delay"),
    ("disconnecting delay nan", ("disconnecting",), {"delay": math.nan}, "delay"),
    ("disconnecting delay huge", ("disconnecting",), {"delay": 1e300}, "delay"),
    ("disconnecting delay str", ("disconnecting",), {"delay": "1"}, "delay"),
    ("disconnecting delay bool", ("disconnecting",), {"delay": True}, "delay"),
    ("disconnecting reason int", ("disconnecting",), {"reason": 5}, "reason"),
]


@pytest.mark.parametrize(("label", "args", "kwargs", "name"), BAD_FAULTS, ids=lambda v: v)
def test_mock_fault_rejects_bad_arguments(
    mock: Any, label: str, args: tuple[Any, ...], kwargs: dict[str, Any], name: str
) -> None:
    with pytest.raises(ValueError) as info:
        mock.fault(*args, **kwargs)
    assert name in str(info.value), str(info.value)
    assert mock.handshakes == 0 and mock.tcp_accepts == 0


def test_every_config_field_is_documented() -> None:
    """The dataclass is the source; the README's and docs/API.md's tables are checked against it."""
    import dataclasses
    import pathlib

    from bullet_ws import ManagedWsConfig

    root = pathlib.Path(__file__).resolve().parent.parent
    docs = [root / "README.md", root / "docs" / "API.md"]
    if not all(d.is_file() for d in docs):
        pytest.skip("needs the source tree")
    for field in dataclasses.fields(ManagedWsConfig):
        for doc in docs:
            assert f"| `{field.name}` |" in doc.read_text(), (doc.name, field.name)
