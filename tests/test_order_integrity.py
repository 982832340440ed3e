"""Orders are never silently lost or sent twice (issue 13, item 1), on both backends.

- Flush on close: commands accepted before `close()` (or leaving `async with`) are written before
  the close frame; every order then ends as an ack or an `OrderUnacked`, never as nothing.
- No automatic resend after a write: a server that reads an order and then resets gets it once;
  the client reports `OrderUnacked` for the strategy to reconcile.
- `order_max_age`: an order that waited out an outage longer than that is not sent, and says so.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import pytest
from bullet_ws import ManagedWsConfig, OrderUnacked
from support import WAIT, next_of, options

pytestmark = pytest.mark.timeout(60)

TX = "AAECAwQFBgc="
N = 20  # orders queued right before a close


async def drain(ws: Any) -> list[Any]:
    """Every event left, up to the end of the stream."""
    out = []
    async with asyncio.timeout(WAIT):
        while (event := await ws.recv()) is not None:
            out.append(event)
    return out


def outcomes(events: list[Any], backend: ModuleType) -> dict[int, list[str]]:
    """id -> what the stream said about that order: "ack", or the OrderUnacked reason."""
    seen: dict[int, list[str]] = {}
    for event in events:
        if isinstance(event, backend.OrderResult) and event.id is not None:
            seen.setdefault(event.id, []).append("ack")
        elif isinstance(event, OrderUnacked) and event.id is not None:
            seen.setdefault(event.id, []).append(event.reason)
    return seen


@pytest.mark.parametrize("how", ["close", "async_with"])
async def test_orders_accepted_before_close_are_written_and_accounted_for(
    backend: ModuleType, mock: Any, how: str
) -> None:
    ws = await backend.connect(mock.url, **options())
    ws.ping(id=1000)
    events = [await next_of(ws, backend.Pong)]
    if how == "close":
        for i in range(N):
            ws.submit(TX, id=i)
        await ws.close()
    else:
        async with ws:
            for i in range(N):
                ws.order_place(TX, id=i)
    events += await drain(ws)
    frames = mock.wait_frames(0, N + 1).frames
    method = "SUBMIT" if how == "close" else "ORDER.PLACE"
    sent = [json.loads(f)["id"] for f in frames if method in f]
    reasons = [e.reason for e in events if isinstance(e, OrderUnacked)]
    assert sent == list(range(N)), reasons  # each once, in order, all before the close
    seen = outcomes(events, backend)
    assert sorted(seen) == list(range(N))
    for i, what in seen.items():
        assert what in (["ack"], ["socket stopped before the ack"]), (i, what)


# --- a server that reads an order and then resets --------------------------------------------


class ResettingServer:
    """A raw WebSocket server: `connected`, then it records frames; on the first order frame of
    a connection it resets that connection (RST) without answering."""

    def __init__(self) -> None:
        self.orders: list[str] = []
        self.connections = 0
        self.url = ""

    async def handler(self, conn: Any) -> None:
        self.connections += 1
        await conn.send(
            json.dumps({"e": "status", "E": 1, "status": "connected", "clientId": "raw"})
        )
        async for frame in conn:
            if '"ORDER.' in frame or '"SUBMIT"' in frame:
                self.orders.append(frame)
                sock = conn.transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.transport.abort()
                return
            if '"PING"' in frame:
                request = json.loads(frame)["id"]
                await conn.send(json.dumps({"e": "pong", "id": request, "E": 2}))


@pytest.fixture
async def resetting_server() -> AsyncIterator[ResettingServer]:
    from websockets.asyncio.server import serve

    server = ResettingServer()
    async with serve(server.handler, "127.0.0.1", 0) as ws_server:
        port = next(iter(ws_server.sockets)).getsockname()[1]
        server.url = f"ws://127.0.0.1:{port}"
        yield server


async def test_an_order_read_by_a_resetting_server_is_never_sent_again(
    backend: ModuleType, resetting_server: ResettingServer
) -> None:
    runs = 8
    async with backend.connect(resetting_server.url, **options()) as ws:
        for run in range(runs):
            ws.order_place(TX, id=run)
            unacked = await next_of(ws, OrderUnacked)
            assert (unacked.id, unacked.method) == (run, "place")
            assert unacked.reason.startswith("connection lost"), unacked.reason
            await next_of(ws, backend.Reconnected)
        # The socket is healthy, and nothing was resent meanwhile.
        ws.ping(id=99)
        await next_of(ws, backend.Pong)
    assert [json.loads(f)["id"] for f in resetting_server.orders] == list(range(runs))


# --- order_max_age ------------------------------------------------------------------------------


@pytest.mark.parametrize(("max_age", "sent"), [(0.05, False), (30.0, True)])
async def test_order_max_age_refuses_orders_that_waited_out_an_outage(
    backend: ModuleType, mock: Any, max_age: float, sent: bool
) -> None:
    async with backend.connect(
        mock.url, **options(initial_backoff=0.3, max_backoff=0.3, order_max_age=max_age)
    ) as ws:
        mock.fault("reset")
        await next_of(ws, backend.Reconnecting)
        ws.order_place(TX, id=5)
        ws.ping(id=6)
        await next_of(ws, backend.Reconnected)
        events = []
        async with asyncio.timeout(WAIT):
            while not (isinstance(event := await ws.recv(), backend.Pong) and event.id == 6):
                events.append(event)
    order = '{"method":"ORDER.PLACE","id":5,"params":{"tx":"AAECAwQFBgc="}}'
    frames = [f for c in mock.connections for f in c.frames]
    unacked = [e for e in events if isinstance(e, OrderUnacked)]
    if sent:
        assert frames.count(order) == 1 and not unacked
    else:
        assert order not in frames
        assert [(u.id, u.method) for u in unacked] == [(5, "place")]
        assert f"longer than order_max_age ({max_age:.3f}s)" in unacked[0].reason


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-1.0, ValueError),
        (float("nan"), ValueError),
        ("1", TypeError),
        (True, TypeError),
    ],
)
def test_order_max_age_is_validated(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="order_max_age"):
        ManagedWsConfig(order_max_age=value)


def test_order_unacked_is_exported(native: ModuleType, pure: ModuleType) -> None:
    for module in (native, pure):
        assert module.OrderUnacked is OrderUnacked
        assert "OrderUnacked" in module.__all__
    match OrderUnacked(1, "submit", "x"):
        case OrderUnacked(id=1, method="submit"):
            pass
        case _:
            pytest.fail("OrderUnacked did not match")


async def test_an_ack_read_while_its_order_is_still_being_written_settles_it(
    pure: ModuleType, mock: Any
) -> None:
    """Pure backend: the write of an order yields to the loop, and the reader may read its ack
    before the write returns. That ack must settle it: no OrderUnacked at the next loss (the
    soak found acked orders reported unacked)."""
    async with pure.connect(mock.url, **options()) as ws:
        ws.ping(id=1)
        await next_of(ws, pure.Pong)
        conn = ws._session.conn
        real_send = conn.send

        async def send_then_wait_for_the_ack(frame: str) -> None:
            received = ws.stats.messages_received
            await real_send(frame)
            if "ORDER.PLACE" in frame:
                async with asyncio.timeout(WAIT):
                    while ws.stats.messages_received == received:
                        await asyncio.sleep(0)

        conn.send = send_then_wait_for_the_ack
        ws.order_place(TX, id=5)
        assert (await next_of(ws, pure.OrderResult)).id == 5
        conn.send = real_send
        assert mock.fault("reset") == 1
        events = []
        async with asyncio.timeout(WAIT):
            while not isinstance(event := await ws.recv(), pure.Reconnected):
                events.append(event)
    assert not [e for e in events if isinstance(e, OrderUnacked)], events


async def test_orders_the_socket_thread_writes_are_settled_by_acks_read_on_the_loop(
    backend: ModuleType, mock_factory: Any
) -> None:
    """With `direct_write=False` every order goes through the socket's thread, while the loop's
    thread reads the stream (`loop_reads`, the default): an ack it reads in the instant after the
    write, before the socket's thread is back, must still settle its order (each order is in the
    ledger from before its write). Bursts of orders keep both threads busy at once."""
    mock = mock_factory(rate=5000.0)
    ws = await backend.connect(mock.url, **options(direct_write=False, loop_reads=True))
    ws.subscribe(["BTC-USD@aggTrade"], id=1)
    acks = 0
    async with asyncio.timeout(WAIT * 2):
        for burst in range(20):
            for i in range(100):
                ws.order_place(TX, id=burst * 100 + i)
            got = 0
            while got < 100:
                if isinstance(await ws.recv(), backend.OrderResult):
                    got += 1
            acks += got
    await ws.close()
    events = await drain(ws)
    unacked = [e.reason for e in events if isinstance(e, OrderUnacked)]
    assert acks == 2000 and not unacked, (len(unacked), unacked[:3])
