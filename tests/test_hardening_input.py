"""Hardening (issue 13, input rows 6-14): input the runtime cannot honour is refused at the call
with a TypeError/ValueError naming the argument, on BOTH backends, instead of being accepted and
failing later (an ERROR log, a panic in the task, a socket that dies at the next replay).

- commands whose frame exceeds `max_message_size`, and a subscribe whose replay frame would;
- lone surrogates in topics;
- durations and sizes beyond the shared bounds (`bullet_ws.config.MAX_DURATION`, `MAX_SIZE`);
- URL schemes in any case (RFC 3986), port 0, URLs the transport would refuse at `await`;
- the event queue bounded in bytes (`queue_max_bytes`) as well as in events;
- `stop()` from another thread; a garbage HTTP reply to the upgrade;
- the fake exchange's own arguments (never a panic).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import threading
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import pytest
from bullet_ws.config import MAX_DURATION, MAX_SIZE, ManagedWsConfig
from bullet_ws.urls import resolve_url
from support import next_of, options, until

pytestmark = pytest.mark.timeout(60)

LIMIT = 1024  # the smallest max_message_size allowed
TOPIC = "BTC-USD@aggTrade"


def replay_frame(topics: list[str]) -> str:
    """The SDK's replay frame, compact JSON with non-ASCII kept as UTF-8 (PROTOCOL.md §2)."""
    return json.dumps(
        {"method": "SUBSCRIBE", "id": None, "params": topics},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def wire_size(frame: str) -> int:
    return len(frame.encode())


async def pong(ws: Any, backend: ModuleType, id: int) -> None:
    """Round trip: every frame queued before this ping has been sent."""
    ws.ping(id=id)
    async with asyncio.timeout(5):
        while True:
            event = await ws.recv()
            assert event is not None
            if isinstance(event, backend.Pong) and event.id == id:
                return


# --- row 6: commands larger than max_message_size ----------------------------------------------


async def test_an_order_larger_than_the_limit_is_refused_at_the_call(
    backend: ModuleType, mock: Any
) -> None:
    async with backend.connect(mock.url, **options(max_message_size=LIMIT)) as ws:
        head = '{"method":"ORDER.PLACE","id":1,"params":{"tx":"'
        fits = "A" * ((LIMIT - len(head) - 3) // 4 * 4)
        ws.order_place(fits, id=1)  # exactly representable, at most the limit: accepted
        too_big = base64.b64encode(b"\0" * LIMIT).decode()
        for call in (ws.order_place, ws.order_cancel, ws.order_amend, ws.order_cancel_all):
            with pytest.raises(ValueError, match=r"^tx\b.*max_message_size") as info:
                call(too_big, id=2)
            assert str(LIMIT) in str(info.value)
        with pytest.raises(ValueError, match=r"^tx\b"):
            ws.order_place(b"\0" * LIMIT)
        await pong(ws, backend, 3)
        frames = mock.connection(0).frames
        assert [json.loads(f)["method"] for f in frames] == ["ORDER.PLACE", "PING"]
        assert wire_size(frames[0]) <= LIMIT
        assert ws.stats.reconnects == 0


async def test_a_subscribe_larger_than_the_limit_is_refused_at_the_call(
    backend: ModuleType, mock: Any
) -> None:
    async with backend.connect(mock.url, **options(max_message_size=LIMIT)) as ws:
        ws.subscribe([TOPIC], id=1)
        with pytest.raises(ValueError, match=r"^topics\b.*max_message_size"):
            ws.subscribe(["X" * LIMIT + "@aggTrade"], id=2)
        with pytest.raises(ValueError, match=r"^topics\b.*max_message_size"):
            ws.subscribe([f"S{i:04}-USD@aggTrade" for i in range(100)], id=3)
        assert ws.topics == frozenset({TOPIC})
        await pong(ws, backend, 4)
        assert [json.loads(f)["id"] for f in mock.connection(0).frames] == [1, 4]


async def test_a_subscribe_whose_replay_would_exceed_the_limit_is_refused(
    backend: ModuleType, mock: Any
) -> None:
    """Topics subscribed one by one each fit, but their replay frame would not: the call that
    would push the replay over the limit is refused, and the replay keeps working."""
    async with backend.connect(mock.url, **options(max_message_size=LIMIT)) as ws:
        topics: list[str] = []
        # Non-ASCII: the bound is in UTF-8 bytes, not characters.
        candidate = iter(f"SYM{i:03}-\u00e9@aggTrade" for i in range(1000))
        while True:
            topic = next(candidate)
            if wire_size(replay_frame([*topics, topic])) > LIMIT:
                break
            ws.subscribe([topic])
            topics.append(topic)
        assert wire_size(replay_frame(topics)) <= LIMIT
        # The last topic that still fits the replay frame exactly, if it exists, is accepted.
        room = LIMIT - wire_size(replay_frame(topics)) - len(',""')
        if room > len("@x"):
            exact = "E" * (room - len("@x")) + "@x"
            assert wire_size(replay_frame([*topics, exact])) == LIMIT
            ws.subscribe([exact])
            topics.append(exact)
        with pytest.raises(ValueError, match=r"^topics\b.*replay.*max_message_size"):
            ws.subscribe([topic], id=7)
        assert ws.topics == frozenset(topics)
        await pong(ws, backend, 8)
        sent = [json.loads(f) for f in mock.connection(0).frames]
        assert all(m.get("id") != 7 for m in sent)
        # The replay after a reconnect carries every topic and the socket stays up.
        mock.fault("reset")
        await next_of(ws, backend.Reconnected)
        record = mock.wait_frames(1, 1)
        assert record.frames[0] == replay_frame(topics)
        await pong(ws, backend, 9)
        assert ws.stats.reconnects == 1


# --- row 10: lone surrogates ---------------------------------------------------------------------


@pytest.mark.parametrize("topic", ["\ud800@aggTrade", "BTC-USD@agg\udfffTrade"])
async def test_a_topic_with_a_lone_surrogate_is_refused(
    backend: ModuleType, mock: Any, topic: str
) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        for call in (ws.subscribe, ws.unsubscribe):
            with pytest.raises(ValueError, match=r"^topics\[1\]"):
                call([TOPIC, topic])
        assert ws.topics == frozenset()
        await pong(ws, backend, 1)
        assert ws.stats.reconnects == 0
        assert [json.loads(f)["method"] for f in mock.connection(0).frames] == ["PING"]


def test_a_tx_with_a_lone_surrogate_is_refused(backend: ModuleType) -> None:
    from bullet_ws._validate import tx_arg

    with pytest.raises(ValueError, match="^tx"):
        tx_arg("AAAA\ud800===")


# --- row 7: durations and sizes the runtime can represent -----------------------------------------

DURATIONS = [
    "initial_backoff",
    "max_backoff",
    "connection_timeout",
    "idle_timeout",
    "backoff_reset_after",
]
SIZES = ["channel_capacity", "max_message_size", "queue_max_bytes"]


def test_the_bounds_are_shared_with_the_native_core(native: ModuleType) -> None:
    from bullet_ws import _core

    assert _core.MAX_DURATION == MAX_DURATION
    assert _core.MAX_SIZE == MAX_SIZE


@pytest.mark.parametrize("name", DURATIONS)
@pytest.mark.parametrize("value", [MAX_DURATION * (1 + 1e-9), 1e19, 1e300, 2**64])
def test_durations_beyond_the_bound_are_refused_at_connect(
    backend: ModuleType, name: str, value: float
) -> None:
    with pytest.raises(ValueError, match=f"^{name}.*{MAX_DURATION:.0f}"):
        backend.connect("ws://127.0.0.1:9/ws", **{name: value})


@pytest.mark.parametrize("name", SIZES)
@pytest.mark.parametrize("value", [MAX_SIZE + 1, 2**64, 2**200])
def test_sizes_beyond_the_bound_are_refused_at_connect(
    backend: ModuleType, name: str, value: int
) -> None:
    with pytest.raises(ValueError, match=f"^{name}"):
        backend.connect("ws://127.0.0.1:9/ws", **{name: value})


def test_the_bounds_themselves_are_accepted() -> None:
    config = ManagedWsConfig(
        **dict.fromkeys(DURATIONS, MAX_DURATION), **dict.fromkeys(SIZES, MAX_SIZE)
    )
    assert config.idle_timeout == MAX_DURATION and config.queue_max_bytes == MAX_SIZE


async def test_the_largest_durations_survive_a_reconnect(backend: ModuleType, mock: Any) -> None:
    """The native task used to panic adding idle_timeout to an Instant at the first reconnect."""
    overrides = options(
        idle_timeout=MAX_DURATION,
        backoff_reset_after=MAX_DURATION,
        max_backoff=MAX_DURATION,
        connection_timeout=MAX_DURATION,
    )
    async with backend.connect(mock.url, **overrides) as ws:
        ws.subscribe([TOPIC])
        await next_of(ws, backend.AggTrade)
        mock.fault("reset")
        await next_of(ws, backend.Reconnected)
        await next_of(ws, backend.AggTrade)
        assert ws.stats.reconnects == 1


# --- rows 8, 14: URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("WS://h:1/ws", "ws://h:1/ws"),
        ("Wss://h/ws", "wss://h/ws"),
        ("wSs://H.example:443/a?b=c", "wss://H.example:443/a?b=c"),
        ("HTTPS://api.example/x", "wss://api.example/ws"),
    ],
)
def test_url_schemes_are_case_insensitive(url: str, expected: str) -> None:
    assert resolve_url(url) == expected


async def test_an_upper_case_scheme_connects(backend: ModuleType, mock: Any) -> None:
    url = "WS" + mock.url[2:]
    async with backend.connect(url, **options()) as ws:
        await pong(ws, backend, 1)


@pytest.mark.parametrize(
    "url",
    [
        "ws://127.0.0.1:0/ws",
        "wss://h:0",
        "http://h:0/api",
        "ws://h/ws#fragment",
        "ws://h/w\x00s",
        "ws://h/ws?\x01",
        "ws://h\x7f/ws",
    ],
)
def test_urls_the_transport_cannot_use_are_refused_at_connect(
    backend: ModuleType, url: str
) -> None:
    with pytest.raises(ValueError, match="^url"):
        backend.connect(url)


async def _garbage_http_server() -> tuple[asyncio.Server, str]:
    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"this is not HTTP\r\n\r\n")
        await writer.drain()
        # Keep the connection open: the client must not wait for the peer to close it.
        await reader.read()
        writer.close()

    server = await asyncio.start_server(reply, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"ws://127.0.0.1:{port}/ws"


@pytest.fixture
async def garbage_http() -> AsyncIterator[str]:
    server, url = await _garbage_http_server()
    try:
        yield url
    finally:
        server.close()


async def test_a_garbage_http_reply_fails_the_connect_as_a_handshake_error(
    backend: ModuleType, garbage_http: str
) -> None:
    # A connect that waited for the peer would end as ConnectTimeout after connection_timeout.
    with pytest.raises(backend.HandshakeError):
        async with asyncio.timeout(30):
            await backend.connect(garbage_http, **options(connection_timeout=20.0))


# --- row 9: stop() from another thread -------------------------------------------------------------


async def test_stop_from_another_thread_wakes_a_blocked_consumer(
    backend: ModuleType, mock: Any
) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        consumer = asyncio.create_task(ws.recv())
        await asyncio.sleep(0)  # let the consumer reach its wait (nothing is streaming)
        stopper = threading.Thread(target=ws.stop)
        stopper.start()
        await asyncio.to_thread(stopper.join, 5)
        async with asyncio.timeout(5):
            assert await consumer is None
        with pytest.raises(backend.StoppedError):
            ws.ping()


# --- row 11: the event queue bounded in bytes ------------------------------------------------------


def test_queue_max_bytes_default_and_validation() -> None:
    assert ManagedWsConfig().queue_max_bytes == 64 * 1024 * 1024
    with pytest.raises(ValueError, match="^queue_max_bytes"):
        ManagedWsConfig(queue_max_bytes=1023)
    with pytest.raises(TypeError, match="^queue_max_bytes"):
        ManagedWsConfig(queue_max_bytes=1e6)


async def test_the_event_queue_drops_by_bytes(backend: ModuleType, mock: Any) -> None:
    frame_size, frames, budget = 100_000, 30, 1024 * 1024
    config = options(max_message_size=budget, queue_max_bytes=budget)
    async with backend.connect(mock.url, **config) as ws:
        # The consumer is paused: nothing is read until every frame has arrived.
        for _ in range(frames):
            mock.fault("oversize", size=frame_size)
        await until(lambda: ws.stats.messages_received == frames)
        stats = ws.stats
        kept = budget // frame_size
        assert (stats.queued, stats.events_dropped) == (kept, frames - kept)
        delivered = 0
        ws.ping(id=1)
        async with asyncio.timeout(5):
            while True:
                event = await ws.recv()
                if isinstance(event, backend.Pong):
                    break
                assert isinstance(event, backend.Unknown) and len(event.raw) == frame_size
                delivered += 1
        stats = ws.stats
        assert delivered == kept
        assert stats.messages_received == delivered + 1 + stats.events_dropped


async def test_one_event_larger_than_queue_max_bytes_still_gets_through(
    backend: ModuleType, mock: Any
) -> None:
    """An empty queue always takes the next event, so that the budget can never stall data."""
    config = options(max_message_size=4096, queue_max_bytes=1024)
    async with backend.connect(mock.url, **config) as ws:
        mock.fault("oversize", size=3000)
        event = await next_of(ws, backend.Unknown)
        assert len(event.raw) == 3000
        assert ws.stats.events_dropped == 0


# --- row 13: the fake exchange's arguments ---------------------------------------------------------

BAD_MOCK = [
    ({"ping_interval": 1e300}, "ping_interval"),
    ({"ping_interval": 1e-300}, "ping_interval"),
    ({"ping_interval": -1.0}, "ping_interval"),
    ({"rate": 1e-300}, "rate"),
    ({"rate": 1e300}, "rate"),
    ({"rate": -1.0}, "rate"),
    ({"rate": math.nan}, "rate"),
    ({"max_messages": 2**64}, "max_messages"),
    ({"max_topics": 2**64}, "max_topics"),
]


@pytest.mark.parametrize(("kwargs", "name"), BAD_MOCK, ids=lambda v: str(v))
def test_mock_refuses_absurd_arguments(kwargs: dict[str, Any], name: str) -> None:
    testing = pytest.importorskip("bullet_ws.testing")
    with pytest.raises(ValueError, match=f"^{name}"):
        testing.MockExchange(**kwargs)


@pytest.mark.parametrize(("kwargs", "name"), BAD_MOCK[:6], ids=lambda v: str(v))
def test_the_native_mock_refuses_them_too(
    native: ModuleType, kwargs: dict[str, Any], name: str
) -> None:
    """The native class is reachable without the wrapper's checks: it must not panic either."""
    from bullet_ws import _core

    with pytest.raises(ValueError, match=f"^{name}"):
        _core._MockServer(**kwargs)


@pytest.mark.parametrize("timeout", [1e300, -1.0, math.nan, math.inf])
def test_mock_waits_refuse_absurd_timeouts(mock: Any, timeout: float) -> None:
    for wait in (
        lambda: mock.wait_handshakes(1, timeout),
        lambda: mock.wait_frames(0, 1, timeout),
        lambda: mock.wait_closed(0, timeout),
    ):
        with pytest.raises(ValueError, match="^timeout"):
            wait()


@pytest.mark.parametrize("size", [2**40, 2**64, 2**28 + 1])
def test_mock_refuses_an_oversize_frame_beyond_its_cap(mock: Any, size: int) -> None:
    with pytest.raises(ValueError, match="^size"):
        mock.fault("oversize", size=size)
    with pytest.raises(ValueError, match="^size"):
        mock.fault("oversize", size=size, scope="next")
    assert mock.handshakes == 0
