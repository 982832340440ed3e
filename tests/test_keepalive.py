"""Keepalive and disconnect notices (issue 14), on BOTH backends, against the fake exchange's
server rules (`idle_close`, `max_duration`, the `disconnecting` fault).

The live server closes a connection after 60 s without a valid message from the client, after
sending `{"e":"status","status":"disconnecting","reason":"idle_timeout",...}`. A client subscribed
only to quiet streams sends nothing, so without keepalives it is cut every minute. Timings here
are test-sized; every wait has an upper bound; assertions are on events, `stats` and what the
fake exchange recorded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from support import WAIT, next_of, options, until

pytestmark = pytest.mark.timeout(30)

QUIET = "0x1111111111111111111111111111111111111111@user.orders"  # never streams on its own
KEEPALIVE_IDS = 2**64 - 2**32  # the first id of the range reserved for keepalive pings
TX = "AAECAwQFBgc="


async def collect_until_pong(ws: Any, backend: ModuleType, request_id: int) -> list[Any]:
    """Ping with `request_id` and collect every event up to its Pong: all that the server sent
    before has then been handled by the client."""
    ws.ping(id=request_id)
    seen: list[Any] = []
    async with asyncio.timeout(WAIT):
        while True:
            event = await ws.recv()
            assert event is not None, f"stream ended; saw {seen}"
            seen.append(event)
            if isinstance(event, backend.Pong) and event.id == request_id:
                return seen


def pings(mock: Any, index: int) -> list[dict[str, Any]]:
    return [r for r in mock.requests(index) if r.get("method") == "PING"]


# --- keepalive ----------------------------------------------------------------------------------


async def test_keepalive_keeps_a_quiet_connection_alive(
    backend: ModuleType, mock_factory: Callable[..., Any]
) -> None:
    """idle_close 0.6 s, keepalive every 0.15 s: the connection outlives several idle windows."""
    mock = mock_factory(idle_close=0.6)
    async with backend.connect(mock.url, **options(keepalive_interval=0.15)) as ws:
        ws.subscribe([QUIET], id=1)
        await next_of(ws, backend.SubscribeResult)
        opened = mock.connection(0).opened_at
        # 1 subscribe + 14 keepalives: at least 2.1 s, over three idle windows of the server.
        record = await mock.wait_frames_async(0, 15, timeout=WAIT)
        assert record.frame_times[-1] - opened > 3 * 0.6
        events = await collect_until_pong(ws, backend, 5)
        assert not [e for e in events if isinstance(e, (backend.Reconnecting, backend.Status))]
        assert [e for e in events if isinstance(e, backend.Pong)] == [events[-1]], events
        keepalives = pings(mock, 0)[:-1]  # the last one is the user's ping(5)
        assert len(keepalives) >= 14
        ids = [p["id"] for p in keepalives]
        assert all(KEEPALIVE_IDS <= i < 2**64 for i in ids) and len(set(ids)) == len(ids), ids
        stats = ws.stats
        assert stats.keepalives_sent >= len(keepalives)
        assert stats.reconnects == 0 and mock.handshakes == 1
        assert not mock.connection(0).closed


async def test_without_keepalive_the_quiet_connection_is_cut(
    backend: ModuleType, mock_factory: Callable[..., Any]
) -> None:
    """The same client with keepalive_interval=0 is cut: the test above can fail."""
    mock = mock_factory(idle_close=0.3)
    async with backend.connect(mock.url, **options(keepalive_interval=0)) as ws:
        ws.subscribe([QUIET], id=1)
        status = await next_of(ws, backend.Status)
        assert (status.status, status.reason) == ("disconnecting", "idle_timeout")
        await next_of(ws, backend.Reconnecting)
        await next_of(ws, backend.Reconnected)
        assert ws.stats.keepalives_sent == 0
        assert pings(mock, 0) == []
        assert mock.connection(0).closed_by == "server"


async def test_user_ping_gets_its_pong_while_keepalives_run(backend: ModuleType, mock: Any) -> None:
    async with backend.connect(mock.url, **options(keepalive_interval=0.05)) as ws:
        await until(lambda: ws.stats.keepalives_sent >= 3)
        events = await collect_until_pong(ws, backend, 5)
        assert [e.id for e in events if isinstance(e, backend.Pong)] == [5]
        ws.ping()  # no id: answered with id null, delivered too
        pong = await next_of(ws, backend.Pong)
        assert pong.id is None


async def test_every_send_resets_the_keepalive_clock(backend: ModuleType, mock: Any) -> None:
    """A client that sends on its own more often than keepalive_interval sends no keepalive."""
    async with backend.connect(mock.url, **options(keepalive_interval=0.4)) as ws:
        started = time.monotonic()
        i = 0
        while time.monotonic() - started < 1.2:
            i += 1
            events = await collect_until_pong(ws, backend, i)
            assert events[-1].id == i
            with pytest.raises(TimeoutError):  # paces the pings; nothing else arrives
                async with asyncio.timeout(0.1):
                    await ws.recv()
        assert ws.stats.keepalives_sent == 0
        assert all(p["id"] < KEEPALIVE_IDS for p in pings(mock, 0))


@pytest.mark.parametrize("bad_id", [KEEPALIVE_IDS, KEEPALIVE_IDS + 7, 2**64 - 1])
async def test_reserved_ids_are_refused_at_the_call(
    backend: ModuleType, mock: Any, bad_id: int
) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        calls: list[Callable[[], None]] = [
            lambda: ws.ping(id=bad_id),
            lambda: ws.subscribe(["BTC-USD@aggTrade"], id=bad_id),
            lambda: ws.unsubscribe(["BTC-USD@aggTrade"], id=bad_id),
            lambda: ws.list_subscriptions(id=bad_id),
            lambda: ws.order_place(TX, id=bad_id),
            lambda: ws.order_cancel(TX, id=bad_id),
            lambda: ws.order_amend(TX, id=bad_id),
            lambda: ws.order_cancel_all(TX, id=bad_id),
        ]
        for call in calls:
            with pytest.raises(ValueError, match="^id"):
                call()
        ws.ping(id=KEEPALIVE_IDS - 1)  # the largest id left to the user
        pong = await next_of(ws, backend.Pong)
        assert pong.id == KEEPALIVE_IDS - 1
        assert ws.topics == frozenset()
        assert [json.loads(f)["id"] for f in mock.connection(0).frames] == [KEEPALIVE_IDS - 1]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (-1, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        (1e300, ValueError),
        (86_400.5, ValueError),
        (True, TypeError),
        ("20", TypeError),
    ],
)
def test_keepalive_interval_is_validated(backend: ModuleType, value: Any, error: type) -> None:
    with pytest.raises(error, match="^keepalive_interval"):
        backend.connect("ws://127.0.0.1:9/ws", keepalive_interval=value)


def test_keepalive_interval_default(backend: ModuleType) -> None:
    assert backend.ManagedWsConfig().keepalive_interval == 20.0
    assert backend.ManagedWsConfig(keepalive_interval=0).keepalive_interval == 0.0
    assert backend.ManagedWsConfig(keepalive_interval=86_400).keepalive_interval == 86_400.0


# --- disconnect notices ---------------------------------------------------------------------------


async def test_disconnecting_status_is_delivered_and_logged(
    backend: ModuleType, mock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Delivered as a Status event, logged at WARNING with its reason; the client then moves to
    a new connection before the server closes (0.3 s later here): Rotated, not Reconnecting
    (test_rotation.py checks the streams across it)."""
    caplog.set_level(logging.WARNING, logger="bullet_ws")
    async with backend.connect(mock.url, **options()) as ws:
        mock.fault("disconnecting", reason="max_duration", delay=0.3)
        status = await next_of(ws, backend.Status)
        seen_at = time.monotonic()
        assert (status.status, status.reason, status.client_id) == (
            "disconnecting",
            "max_duration",
            "ws_0",
        )

        def warned() -> list[logging.LogRecord]:
            return [
                r
                for r in caplog.records
                if r.name.startswith("bullet_ws")
                and r.levelno == logging.WARNING
                and "max_duration" in r.getMessage()
                and "disconnecting" in r.getMessage()
            ]

        await until(lambda: bool(warned()))
        rotated = await next_of(ws, (backend.Rotated, backend.Reconnecting))
        assert isinstance(rotated, backend.Rotated), rotated
        assert rotated.reason == "max_duration"
        assert time.monotonic() - seen_at < WAIT
        await mock.wait_closed_async(0)
        assert mock.handshakes == 2 and ws.stats.reconnects == 0
        assert len(warned()) == 1


async def test_max_duration_caps_each_connection(
    backend: ModuleType, mock_factory: Callable[..., Any]
) -> None:
    mock = mock_factory(max_duration=0.4)
    async with backend.connect(mock.url, **options()) as ws:
        ws.subscribe(["BTC-USD@bookTicker"], id=1)
        status = await next_of(ws, backend.Status)
        assert (status.status, status.reason) == ("disconnecting", "max_duration")
        await next_of(ws, backend.Reconnected)
        await next_of(ws, backend.BookTicker)  # the replay brought the stream back
        first = await mock.wait_closed_async(0)
        assert first.closed_by == "server"
        assert first.closed_at is not None
        assert 0.4 <= first.closed_at - first.opened_at < WAIT
