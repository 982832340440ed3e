"""Commands written on the calling thread (`ManagedWsConfig.direct_write`, issue 15).

On the native backend an order, `submit`, `ping` or `list_subscriptions` is written on the caller's
thread when nothing is queued ahead of it; otherwise it is queued to the socket's task. Either
way, the wire order is the call order, the order ledger is the same, and nothing is sent twice.
The pure backend writes from the loop's thread anyway: it ignores the setting and counts 0.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import pytest
from bullet_ws import ManagedWsConfig, OrderUnacked
from support import WAIT, next_of, options

pytestmark = pytest.mark.timeout(60)

TX = "AAECAwQFBgc="
KEEPALIVE_IDS = 2**64 - 2**32


def user_frames(mock: Any, index: int) -> list[dict[str, Any]]:
    """What connection `index` received from the test (keepalive pings left out)."""
    return [r for r in mock.requests(index) if (r.get("id") or 0) < KEEPALIVE_IDS]


async def round_trip(ws: Any, backend: ModuleType, request_id: int) -> None:
    """PING and wait for its Pong: the task then has nothing queued."""
    ws.ping(id=request_id)
    async with asyncio.timeout(WAIT):
        while not (isinstance(e := await ws.recv(), backend.Pong) and e.id == request_id):
            pass


def is_native(backend: ModuleType) -> bool:
    return backend.__name__ == "bullet_ws"


async def test_orders_on_an_idle_connection_go_out_from_the_calling_thread(
    backend: ModuleType, mock: Any
) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        await round_trip(ws, backend, 1000)
        before = ws.stats.direct_writes
        for i in range(10):
            ws.order_place(TX, id=i)
        ws.submit(TX, id=10)
        acks = [await next_of(ws, backend.OrderResult) for _ in range(11)]
        assert [a.id for a in acks] == list(range(11))
        assert ws.stats.direct_writes - before == (11 if is_native(backend) else 0)
    sent = [r["id"] for r in user_frames(mock, 0) if r["method"] in ("ORDER.PLACE", "SUBMIT")]
    assert sent == list(range(11))


async def test_direct_write_false_queues_every_command(backend: ModuleType, mock: Any) -> None:
    async with backend.connect(mock.url, **options(direct_write=False)) as ws:
        await round_trip(ws, backend, 1000)
        for i in range(5):
            ws.order_place(TX, id=i)
        for _ in range(5):
            await next_of(ws, backend.OrderResult)
        assert ws.stats.direct_writes == 0


def test_direct_write_is_validated() -> None:
    assert ManagedWsConfig().direct_write is True
    for bad in (1, "yes", None):
        with pytest.raises(TypeError, match="^direct_write must be a bool"):
            ManagedWsConfig(direct_write=bad)


async def test_the_wire_order_is_the_call_order_across_both_paths(
    backend: ModuleType, mock: Any
) -> None:
    """Subscriptions always go through the task's queue; what follows one right away queues
    behind it, and what comes once the task is idle goes direct. Random interleavings of both,
    with waits for the task in between, must reach the wire exactly in call order."""
    rng = random.Random(15)
    expected: list[tuple[str, int]] = []
    topics = ["BTC-USD@bookTicker", "ETH-USD@bookTicker", "SOL-USD@markPrice"]
    active: set[str] = set()
    next_id = 0
    async with backend.connect(mock.url, **options()) as ws:
        for step in range(300):
            next_id += 1
            kind = rng.choice(["order", "order", "order", "ping", "list", "topic", "wait"])
            if kind == "order":
                ws.order_place(TX, id=next_id)
                expected.append(("ORDER.PLACE", next_id))
            elif kind == "ping":
                ws.ping(id=next_id)
                expected.append(("PING", next_id))
            elif kind == "list":
                ws.list_subscriptions(id=next_id)
                expected.append(("LIST_SUBSCRIPTIONS", next_id))
            elif kind == "topic":
                topic = rng.choice(topics)
                if topic in active:
                    ws.unsubscribe([topic], id=next_id)
                    active.discard(topic)
                    expected.append(("UNSUBSCRIBE", next_id))
                else:
                    ws.subscribe([topic], id=next_id)
                    active.add(topic)
                    expected.append(("SUBSCRIBE", next_id))
            else:
                await round_trip(ws, backend, 10_000 + step)
                expected.append(("PING", 10_000 + step))
        await round_trip(ws, backend, 99_999)
        expected.append(("PING", 99_999))
        direct = ws.stats.direct_writes
    got = [(r["method"], r["id"]) for r in user_frames(mock, 0)]
    assert got == expected
    if is_native(backend):
        sends = sum(m not in ("SUBSCRIBE", "UNSUBSCRIBE") for m, _ in expected)
        assert 0 < direct < sends, "both paths were taken"


async def test_a_direct_order_lost_with_its_connection_is_unacked_and_never_resent(
    backend: ModuleType, mock: Any
) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        await round_trip(ws, backend, 1000)
        assert mock.fault("silence", answer_pings=False) == 1
        before = ws.stats.direct_writes
        ws.order_place(TX, id=7)
        await mock.wait_frames_async(0, 2, timeout=WAIT)  # the order reached the exchange
        assert ws.stats.direct_writes - before == (1 if is_native(backend) else 0)
        mock.fault("reset")
        unacked = await next_of(ws, OrderUnacked)
        assert (unacked.id, unacked.method) == (7, "place")
        assert unacked.reason.startswith("connection lost before the ack"), unacked.reason
        await next_of(ws, backend.Reconnected)
        await round_trip(ws, backend, 1001)
    orders = [r for c in range(len(mock.connections)) for r in user_frames(mock, c)]
    assert [r["id"] for r in orders if r["method"] == "ORDER.PLACE"] == [7]


# --- a peer that stops reading ------------------------------------------------------------------


def socket_buffer_max() -> int:
    """The largest TCP send buffer the kernel grows a socket to (4 MiB by default on Linux)."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            return int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 << 20


class StalledReader:
    """A WebSocket server whose connection stops reading on command, with a small receive
    buffer: the client's writes then fill the socket, and the rest must wait."""

    def __init__(self) -> None:
        self.url = ""
        self.orders: list[int] = []
        self.transport: Any = None
        self.got_all = asyncio.Event()
        self.expected = 0
        self.connections = 0
        self.chatter = False

    async def chat(self, conn: Any) -> None:
        """Keeps sending while not reading: the client's idle clock never runs out."""
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                await conn.send('{"e":"pong","id":0,"E":2}')
                await asyncio.sleep(0.02)
        except ConnectionClosed:
            pass

    async def handler(self, conn: Any) -> None:
        self.transport = conn.transport
        self.connections += 1
        await conn.send('{"e":"status","E":1,"status":"connected","clientId":"stalled"}')
        if self.chatter and self.connections == 1:
            asyncio.get_running_loop().create_task(self.chat(conn))
        async for frame in conn:
            request = json.loads(frame)
            if request["method"] == "PING":
                await conn.send(json.dumps({"e": "pong", "id": request["id"], "E": 2}))
            elif request["method"] == "ORDER.PLACE":
                self.orders.append(request["id"])
                if len(self.orders) == self.expected:
                    self.got_all.set()


@pytest.fixture
async def stalled_reader() -> AsyncIterator[StalledReader]:
    from websockets.asyncio.server import serve

    server = StalledReader()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by accepted sockets
    sock.bind(("127.0.0.1", 0))
    async with serve(server.handler, sock=sock, max_size=None) as ws_server:
        port = next(iter(ws_server.sockets)).getsockname()[1]
        server.url = f"ws://127.0.0.1:{port}"
        yield server


async def test_writes_the_socket_cannot_take_now_are_finished_in_order(
    backend: ModuleType, stalled_reader: StalledReader
) -> None:
    n, tx = 80, "A" * (socket_buffer_max() // 80 * 4)  # 4x the client's largest socket buffer
    stalled_reader.expected = n
    async with backend.connect(stalled_reader.url, **options()) as ws:
        await round_trip(ws, backend, 1000)
        stalled_reader.transport.pause_reading()
        before = ws.stats.direct_writes
        for i in range(n):
            ws.order_place(tx, id=i)
        direct = ws.stats.direct_writes - before
        stalled_reader.transport.resume_reading()
        async with asyncio.timeout(WAIT):
            await stalled_reader.got_all.wait()
        await round_trip(ws, backend, 1001)
    assert stalled_reader.orders == list(range(n))
    if is_native(backend):
        # The first write the socket could not take in full was finished by the task, and
        # everything after it was queued behind it.
        assert 0 < direct < n, direct


async def test_a_direct_write_the_peer_never_takes_is_given_up_after_idle_timeout(
    backend: ModuleType, stalled_reader: StalledReader
) -> None:
    """The peer stops reading but keeps sending: only the write's own bound can end the
    connection. The order whose bytes may have left becomes OrderUnacked, never resent."""
    stalled_reader.chatter = True
    # More than the kernel can take while the peer does not read: twice its largest send buffer.
    size = (2 * socket_buffer_max() + (1 << 20)) // 4 * 4
    config = options(idle_timeout=0.5, max_message_size=size + 1024)
    async with backend.connect(stalled_reader.url, **config) as ws:
        await round_trip(ws, backend, 1000)
        stalled_reader.transport.pause_reading()
        ws.order_place("A" * size, id=1)
        unacked = await next_of(ws, OrderUnacked)
        assert (unacked.id, unacked.method) == (1, "place")
        assert "send stalled for idle_timeout (0.500s)" in unacked.reason, unacked.reason
        await next_of(ws, backend.Reconnected)
        await round_trip(ws, backend, 1001)
    assert stalled_reader.connections == 2
