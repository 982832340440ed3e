"""B18 (docs/design/TESTING.md), on BOTH backends: bad arguments from the user (wrong types, negative
durations, non-base64 tx, malformed URL, id out of range) raise a clear TypeError/ValueError
naming the argument; nothing is sent and no state changes.

Also the public surface both backends share: the same names in `__all__`, `connect` usable
both ways, `recv_batch` handing over a burst, `async for`, `topics` and `stats`.
"""

from __future__ import annotations

import asyncio
import math
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(30)

TX = "AAECAwQFBgc="

PUBLIC_NAMES = {
    "connect",
    "ManagedWebSocket",
    "ManagedWsConfig",
    "Topic",
    "OrderbookDepth",
    "KlineInterval",
    "Reconnecting",
    "Reconnected",
    "Disconnected",
    "Stats",
    "Message",
    "Status",
    "Pong",
    "SubscribeResult",
    "UnsubscribeResult",
    "ListSubscriptionsResult",
    "OrderResult",
    "ErrorMessage",
    "DepthUpdate",
    "AggTrade",
    "BookTicker",
    "MarkPrice",
    "ForceOrder",
    "OrderUpdate",
    "Unknown",
    "parse_message",
    "BulletWsError",
    "ConnectError",
    "ConnectTimeout",
    "HandshakeError",
    "ManagedWsError",
    "StoppedError",
    "BusyError",
}


def test_public_names(backend: ModuleType) -> None:
    assert PUBLIC_NAMES <= set(backend.__all__)
    for name in PUBLIC_NAMES:
        assert getattr(backend, name) is not None


def test_shared_classes_are_the_same_objects(native: ModuleType, pure: ModuleType) -> None:
    """Config, events, topics and errors are shared, so `except`/`isinstance` work across."""
    for name in (
        "ManagedWsConfig",
        "Topic",
        "Reconnecting",
        "Stats",
        "ConnectError",
        "StoppedError",
        "BusyError",
    ):
        assert getattr(native, name) is getattr(pure, name)


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("nowhere", ValueError),
        ("ftp://x.y", ValueError),
        ("ws://", ValueError),
        (42, TypeError),
        (None, TypeError),
    ],
)
def test_connect_rejects_bad_urls_at_once(backend: ModuleType, url: Any, error: type) -> None:
    with pytest.raises(error, match="^url"):
        backend.connect(url)


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"idle_timeout": -1}, ValueError),
        ({"initial_backoff": math.nan}, ValueError),
        ({"max_retries": -1}, ValueError),
        ({"channel_capacity": 0}, ValueError),
        ({"connection_timeout": 0}, ValueError),
        ({"max_backoff": "3"}, TypeError),
        ({"max_retries": True}, TypeError),
        ({"idle_timout": 1}, TypeError),
    ],
)
def test_connect_rejects_bad_config_at_once(
    backend: ModuleType, override: dict[str, Any], error: type
) -> None:
    name = next(iter(override))
    with pytest.raises(error, match=name):
        backend.connect("ws://127.0.0.1:9/ws", **override)
    with pytest.raises(TypeError, match="^config"):
        backend.connect("ws://127.0.0.1:9/ws", config={"idle_timeout": 1})


async def test_bad_command_arguments_change_nothing(backend: ModuleType, mock: Any) -> None:
    async with backend.connect(mock.url, idle_timeout=0) as ws:
        ws.subscribe(["BTC-USD@aggTrade"], id=1)
        bad_calls: list[tuple[Any, type, str]] = [
            (lambda: ws.subscribe("BTC-USD@aggTrade"), TypeError, "topics"),
            (lambda: ws.subscribe([1]), TypeError, "topics"),
            (lambda: ws.subscribe(["no-at-sign"]), ValueError, "topics"),
            (lambda: ws.subscribe(["ETH-USD@aggTrade", ""]), ValueError, "topics"),
            (lambda: ws.subscribe(["ETH-USD@aggTrade"], id=-1), ValueError, "id"),
            (lambda: ws.subscribe(["ETH-USD@aggTrade"], id=2**64), ValueError, "id"),
            (lambda: ws.subscribe(["ETH-USD@aggTrade"], id="1"), TypeError, "id"),
            (lambda: ws.unsubscribe(["BTC-USD@aggTrade"], id=True), TypeError, "id"),
            (lambda: ws.unsubscribe(5), TypeError, "topics"),
            (lambda: ws.order_place("not base64!"), ValueError, "tx"),
            (lambda: ws.order_cancel("AAECAwQFBgc"), ValueError, "tx"),
            (lambda: ws.order_amend(""), ValueError, "tx"),
            (lambda: ws.order_cancel_all(12), TypeError, "tx"),
            (lambda: ws.order_place(TX, id=-5), ValueError, "id"),
            (lambda: ws.ping(id=1.5), TypeError, "id"),
            (lambda: ws.list_subscriptions(id=2**64), ValueError, "id"),
        ]
        for call, error, name in bad_calls:
            with pytest.raises(error) as info:
                call()
            assert str(info.value).startswith(name), (name, str(info.value))
        with pytest.raises(ValueError, match="^max_events"):
            await ws.recv_batch(0)
        assert ws.topics == frozenset({"BTC-USD@aggTrade"})
        ws.ping(id=2)
        async with asyncio.timeout(5):
            async for event in ws:
                if isinstance(event, backend.Pong):
                    break
        assert mock.connection(0).frames == [
            '{"method":"SUBSCRIBE","id":1,"params":["BTC-USD@aggTrade"]}',
            '{"method":"PING","id":2}',
        ]


# Base64 pieces and near misses (padding in the middle, URL-safe letters, spaces, non-ASCII, a
# lone surrogate), as in test_shared_modules.
TX_PIECES = [*"AZaz09+/=-_ \n.\u00e9\x00\ud800", "QQ", "QUI=", "QUJD", "==", "QQ=="]


def test_order_arguments_are_checked_as_validate_checks_them(
    backend: ModuleType, mock: Any
) -> None:
    """The native order methods check `tx` and `id` themselves for speed and defer to
    `bullet_ws._validate` for the rest: on a stopped socket every call must raise what
    `tx_arg`/`id_arg` raise, or, where they accept, StoppedError (the check comes first)."""
    from bullet_ws import _validate
    from hypothesis import HealthCheck, example, given, settings
    from hypothesis import strategies as st

    async def stopped() -> Any:
        ws = await backend.connect(mock.url, idle_timeout=0)
        await ws.close()
        return ws

    ws = asyncio.run(stopped())
    methods = [ws.submit, ws.order_place, ws.order_cancel, ws.order_amend, ws.order_cancel_all]

    class Int(int):
        pass

    def outcome(call: Any) -> tuple[type, str]:
        try:
            call()
        except (TypeError, ValueError, backend.StoppedError) as e:
            return type(e), str(e)
        raise AssertionError("accepted on a stopped socket")

    @settings(
        max_examples=1500,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        tx=st.one_of(
            st.lists(st.sampled_from(TX_PIECES), max_size=12).map("".join),
            st.binary(max_size=6),
            st.sampled_from([None, 12, 1.5, bytearray(b"ab"), memoryview(b"abc")]),
        ),
        id=st.one_of(
            st.none(),
            st.integers(min_value=-2, max_value=2),
            st.integers(min_value=_validate.MAX_ID - 2, max_value=2**64 + 2),
            st.integers(min_value=3, max_value=2**70),
            st.sampled_from([True, False, 1.0, "1", Int(7)]),
        ),
        method=st.sampled_from(range(len(methods))),
    )
    # The edges of the id range, every time.
    @example(tx=TX, id=_validate.MAX_ID, method=0)
    @example(tx=TX, id=_validate.MAX_ID + 1, method=0)
    @example(tx=TX, id=2**64 - 1, method=1)
    @example(tx=TX, id=2**64, method=1)
    @example(tx=TX, id=-1, method=2)
    @example(tx=TX, id=0, method=2)
    def check(tx: Any, id: Any, method: int) -> None:
        def validate() -> None:
            _validate.tx_arg(tx)
            _validate.id_arg(id)
            raise backend.StoppedError("accepted")

        want = outcome(validate)
        got = outcome(lambda: methods[method](tx, id=id))
        if want[0] is backend.StoppedError:
            assert got[0] is backend.StoppedError, (tx, id, got)
        else:
            assert got == want, (tx, id)

    check()


async def test_connect_awaitable_and_recv_batch(backend: ModuleType, mock: Any) -> None:
    ws = await backend.connect(mock.url, idle_timeout=0)
    try:
        assert isinstance(ws, backend.ManagedWebSocket)
        for i in range(5):
            ws.ping(id=i)
        got: list[Any] = []
        async with asyncio.timeout(5):
            while len(got) < 5:
                batch = await ws.recv_batch(max_events=3)
                assert 1 <= len(batch) <= 3
                got.extend(batch)
        assert [e.id for e in got] == [0, 1, 2, 3, 4]
        stats = ws.stats
        assert isinstance(stats, backend.Stats)
        assert (stats.messages_received, stats.events_dropped, stats.queued) == (5, 0, 0)
    finally:
        await ws.close()
    assert await ws.recv_batch() == []
    assert await ws.recv() is None
