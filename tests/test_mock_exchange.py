"""The fake exchange, driven by a plain `websockets` client (not ours): every message, every fault,
and what the mock records."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from bullet_ws.testing import MockExchange
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidMessage

pytestmark = pytest.mark.timeout(30)

T = 3.0  # generous deadline for things that should take milliseconds


@pytest.fixture
def mock() -> Iterator[MockExchange]:
    with MockExchange(rate=500.0) as m:
        yield m


def open_ws(url: str, **kw: Any) -> Any:
    kw.setdefault("ping_interval", None)
    kw.setdefault("open_timeout", T)
    return connect(url, **kw)


async def recv_json(ws: ClientConnection, timeout: float = T) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.recv(), timeout)
    value: dict[str, Any] = json.loads(msg)
    return value


async def ready(ws: ClientConnection) -> dict[str, Any]:
    status = await recv_json(ws)
    assert status["e"] == "status" and status["status"] == "connected", status
    return status


async def send(ws: ClientConnection, method: str, id: Any = None, params: Any = None) -> None:
    req: dict[str, Any] = {"method": method, "id": id}
    if params is not None:
        req["params"] = params
    await ws.send(json.dumps(req))


async def until(
    ws: ClientConnection, pred: Callable[[dict[str, Any]], bool], timeout: float = T
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Reads until a message matches; returns it and every message read before it."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        m = await recv_json(ws, max(0.01, deadline - time.monotonic()))
        if pred(m):
            return m, seen
        seen.append(m)


async def closed(ws: ClientConnection, timeout: float = T) -> ConnectionClosed:
    """Reads until the connection ends; returns the exception."""
    deadline = time.monotonic() + timeout
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
    return info.value


async def eventually(cond: Callable[[], bool], what: str, timeout: float = T) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def is_ack(e: str, id: Any = None) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m.get("e") == e and m.get("id") == id


# ----- lifecycle, handshake, records -----


async def test_connected_status_and_record(mock: MockExchange) -> None:
    assert mock.url == f"ws://127.0.0.1:{mock.port}/ws"
    async with open_ws(mock.url) as ws:
        status = await ready(ws)
        assert list(status) == ["e", "E", "status", "clientId"]
        assert status["clientId"] == "ws_0"
        assert abs(status["E"] - time.time() * 1e6) < 5e6
        records = await mock.wait_handshakes_async(1)
        assert records[0].index == 0 and records[0].client_id == "ws_0"
        assert records[0].closed_at is None and records[0].closed_by is None
        assert records[0].opened_at <= time.monotonic()
    rec = await mock.wait_closed_async(0)
    assert (rec.closed_by, rec.close_code) == ("client", 1000)
    assert rec.frames_sent == 2  # the status and the close echo
    assert (mock.tcp_accepts, mock.handshakes) == (1, 1)


async def test_non_upgrade_requests_are_rejected(mock: MockExchange) -> None:
    for request, status in [
        (b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", b"426"),
        (b"POST /ws HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
    ]:
        reader, writer = await asyncio.open_connection("127.0.0.1", mock.port)
        writer.write(request)
        line = await asyncio.wait_for(reader.readline(), T)
        assert line.split()[1] == status
        writer.close()
    assert mock.handshakes == 0 and mock.tcp_accepts == 2


def test_sync_context_manager_and_stop_closes_connections() -> None:
    async def scenario(m: MockExchange) -> ConnectionClosed:
        async with open_ws(m.url) as ws:
            await ready(ws)
            await asyncio.to_thread(m.stop)
            return await closed(ws)

    with MockExchange() as m:
        asyncio.run(scenario(m))
        assert not m.running
        assert m.connections[0].closed_by == "server"
    m.stop()  # idempotent


async def test_wait_timeouts_say_what_was_seen(mock: MockExchange) -> None:
    with pytest.raises(TimeoutError, match=r"expected >= 1 handshakes .* saw 0"):
        mock.wait_handshakes(1, timeout=0.05)
    with pytest.raises(TimeoutError, match="no such connection"):
        await mock.wait_closed_async(0, timeout=0.05)
    async with open_ws(mock.url) as ws:
        await ready(ws)
        await ws.send("hello")
        with pytest.raises(TimeoutError, match=r"expected >= 2 client frames .* open, 1 frames"):
            await mock.wait_frames_async(0, 2, timeout=0.1)
    with pytest.raises(IndexError):
        mock.connection(5)


# ----- requests and acks -----


async def test_subscribe_list_unsubscribe_ping_with_ids(mock: MockExchange) -> None:
    async with open_ws(mock.url) as ws:
        await ready(ws)
        await send(ws, "SUBSCRIBE", 1, ["BTC-USD@kline_1m", "ETH-USD@kline_4h"])
        ack = await recv_json(ws)
        assert list(ack) == ["e", "id", "E", "result"]
        assert ack["e"] == "subscribe" and ack["id"] == 1 and ack["result"] == "success"
        await send(ws, "subscribe", 2, ["4XN8@user.orders", "!ticker@arr"])
        assert (await recv_json(ws))["id"] == 2
        await send(ws, "LIST_SUBSCRIPTIONS", 3)
        lst = await recv_json(ws)
        assert lst["e"] == "list_subscriptions" and lst["id"] == 3
        assert lst["result"] == [
            "BTC-USD@kline_1m",
            "ETH-USD@kline_4h",
            "4XN8@user.orders",
            "!ticker@arr",
        ]
        await send(ws, "UNSUBSCRIBE", 4, ["ETH-USD@kline_4h", "never@subscribed"])
        assert await recv_json(ws) == await_shape("unsubscribe", 4)
        await send(ws, "list_subscriptions", None)
        lst = await recv_json(ws)
        assert lst["id"] is None and "ETH-USD@kline_4h" not in lst["result"]
        await send(ws, "PING", 2**64 - 1)
        pong = await recv_json(ws)
        assert (pong["e"], pong["id"]) == ("pong", 2**64 - 1)
        await ws.send('{"method":"ping"}')  # no id at all: answered with id null
        assert (await recv_json(ws))["id"] is None
        await send(ws, "unsubscribe", 5, [])
        assert (await recv_json(ws))["e"] == "unsubscribe"
    assert [r["method"] for r in mock.requests(0)][:3] == [
        "SUBSCRIBE",
        "subscribe",
        "LIST_SUBSCRIPTIONS",
    ]


def await_shape(e: str, id: int) -> dict[str, Any]:
    """The fields of a method result other than E (filled in by the comparison below)."""
    return _AnyE({"e": e, "id": id, "result": "success"})


class _AnyE(dict[str, Any]):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, dict) and {k: v for k, v in other.items() if k != "E"} == dict(
            self
        )

    __hash__ = None


async def test_subscribe_errors() -> None:
    with MockExchange(rate=1.0, max_topics=3) as mock:
        async with open_ws(mock.url) as ws:
            await ready(ws)
            await send(ws, "SUBSCRIBE", 1, ["BTC-USD@aggTrade"])
            await until(ws, is_ack("subscribe", 1))
            topics = [
                "BTC-USD@aggTrade",  # duplicate
                "nonsense",  # no '@'
                "BTC-USD@candles",  # unknown stream
                "FOO-USD@depth10",  # unknown symbol
                "ETH-USD@depth5",  # fine
                "ETH-USD@depth5",  # duplicate inside the request
                "SOL-USD@bookTicker",  # fine: the third topic
                "SOL-USD@markPrice",  # beyond max_topics
            ]
            await send(ws, "SUBSCRIBE", 2, topics)
            _ack, errors = await until(ws, is_ack("subscribe", 2))
            errors = [m for m in errors if m.get("e") == "error"]
            assert [(m["id"], m["error"]["code"], m["error"].get("param")) for m in errors] == [
                (2, -1010, "BTC-USD@aggTrade"),
                (2, -1004, "nonsense"),
                (2, -1004, "BTC-USD@candles"),
                (2, -1122, "FOO-USD@depth10"),
                (2, -1010, "ETH-USD@depth5"),
                (2, -1003, "SOL-USD@markPrice"),
            ]
            assert errors[3]["error"]["msg"] == "symbol not found: FOO-USD"
            assert list(errors[0]) == ["e", "id", "E", "error"]
            # Only failures: errors and no ack.
            await send(ws, "SUBSCRIBE", 3, ["BTC-USD@aggTrade"])
            err, _ = await until(ws, lambda m: m.get("id") == 3)
            assert err["e"] == "error"
            await send(ws, "LIST_SUBSCRIPTIONS", 4)
            lst, skipped = await until(ws, is_ack("list_subscriptions", 4))
            assert all(m.get("id") != 3 for m in skipped)
            assert lst["result"] == ["BTC-USD@aggTrade", "ETH-USD@depth5", "SOL-USD@bookTicker"]


async def test_bad_input_gets_1008_and_never_closes(mock: MockExchange) -> None:
    async with open_ws(mock.url) as ws:
        await ready(ws)
        for frame in [
            "not json",
            "[1, 2]",
            '{"id": 7}',
            '{"method": "FLY", "id": 8}',
            '{"method": "PING", "id": "nine"}',
            '{"method": "SUBSCRIBE", "id": 10, "params": "BTC-USD@aggTrade"}',
        ]:
            await ws.send(frame)
            err = await recv_json(ws)
            assert err["e"] == "error" and err["error"]["code"] == -1008, (frame, err)
        await ws.send(b'{"method":"PING","id":11}')  # binary frames are parsed like text
        assert (await recv_json(ws))["id"] == 11
        await ws.send(b"\xff\xfe")
        assert (await recv_json(ws))["error"]["code"] == -1008
        await send(ws, "PING", 12)
        assert (await recv_json(ws))["id"] == 12
    rec = mock.connection(0)
    assert rec.binary_frames == [b'{"method":"PING","id":11}', b"\xff\xfe"]
    assert len(rec.frames) == 7 and len(rec.frame_times) == 7
    assert rec.frame_times == sorted(rec.frame_times)
    assert [r.get("id") for r in mock.requests(0)] == [7, 8, "nine", 10, 12]


async def test_fragmented_client_message_is_reassembled(mock: MockExchange) -> None:
    async with open_ws(mock.url) as ws:
        await ready(ws)
        await ws.send(['{"method":', '"PING",', '"id":5}'])
        assert (await recv_json(ws))["id"] == 5
    assert mock.connection(0).frames == ['{"method":"PING","id":5}']


async def test_orders_every_alias(mock: MockExchange) -> None:
    methods = [
        "ORDER.PLACE",
        "order.place",
        "ORDER.CANCEL",
        "order.cancel",
        "ORDER.AMEND",
        "order.amend",
        "order.modify",
        "ORDER.CANCEL_ALL",
        "order.cancelAll",
    ]
    async with open_ws(mock.url) as ws:
        await ready(ws)
        order_ids = []
        for i, method in enumerate(methods):
            await send(ws, method, i, {"tx": "AAECAwQFBgc="})
            ack = await recv_json(ws)
            assert list(ack) == ["e", "id", "E", "results"]
            assert (ack["e"], ack["id"]) == (method, i)
            res = ack["results"]
            assert res["status"] == "submitted" and res["client_order_ids"] == []
            assert res["tx_id"].startswith("0x") and len(res["tx_id"]) == 66
            order_ids.append(res["order_ids"][0])
        assert order_ids[0] != order_ids[1]
        await send(ws, "ORDER.PLACE", None, {})
        err = await recv_json(ws)
        assert "e" not in err and err["id"] is None and err["error"]["code"] == -1102


async def test_order_updates_follow_acks_on_user_orders(mock: MockExchange) -> None:
    async with open_ws(mock.url) as ws:
        await ready(ws)
        await send(ws, "SUBSCRIBE", 1, ["ADDR1@user.orders"])
        await until(ws, is_ack("subscribe", 1))
        await send(ws, "ORDER.PLACE", 2, {"tx": "AAEC"})
        ack = await recv_json(ws)
        upd = await recv_json(ws)
        assert upd["e"] == "orderTradeUpdate"
        o = upd["o"]
        assert (o["i"], o["ua"], o["X"], o["x"]) == (
            ack["results"]["order_ids"][0],
            "ADDR1",
            "NEW",
            "NEW",
        )
        assert {"S", "o", "f", "p", "q", "s", "T", "th"} <= set(o)
        await send(ws, "order.cancel", 3, {"tx": "AAEC"})
        await recv_json(ws)
        o = (await recv_json(ws))["o"]
        assert o["X"] == "CANCELED" and "S" not in o and "p" not in o


async def test_reject_orders_current_and_next(mock: MockExchange) -> None:
    async with open_ws(mock.url) as ws:
        await ready(ws)
        assert mock.fault("reject_orders", code=-2011, msg="cancel rejected") == 1
        await send(ws, "ORDER.CANCEL", 1, {"tx": "AAEC"})
        assert await recv_json(ws) == _AnyE(
            {"id": 1, "error": {"code": -2011, "msg": "cancel rejected"}}
        )
    assert mock.fault("reject_orders", scope="next") == 1
    async with open_ws(mock.url) as ws:
        await ready(ws)
        await send(ws, "ORDER.PLACE", 2, {"tx": "AAEC"})
        assert (await recv_json(ws))["error"] == {"code": -2010, "msg": "new order rejected"}
    async with open_ws(mock.url) as ws:  # only the next one
        await ready(ws)
        await send(ws, "ORDER.PLACE", 3, {"tx": "AAEC"})
        assert (await recv_json(ws))["e"] == "ORDER.PLACE"


# ----- market data -----


async def test_every_stream_shape_and_sequence() -> None:
    topics = [
        "BTC-USD@aggTrade",
        "ETH-USD@depth5",
        "SOL-USD@depth20",
        "BTC-USD@bookTicker",
        "ETH-USD@markPrice",
        "SOL-USD@forceOrder",
    ]
    with MockExchange(rate=3000.0) as mock:
        async with open_ws(mock.url) as ws:
            await ready(ws)
            await send(ws, "SUBSCRIBE", 1, topics)
            await until(ws, is_ack("subscribe", 1))
            msgs = [await recv_json(ws) for _ in range(60)]
            # Now, not after the close: with frames left unread, websockets' close handshake
            # can take its whole close_timeout (10 s).
            now = time.time() * 1e6
    # Round robin in subscription order.
    kinds = [m["e"] for m in msgs[:6]]
    assert kinds == [
        "aggTrade",
        "depthUpdate",
        "depthUpdate",
        "bookTicker",
        "markPriceUpdate",
        "forceOrder",
    ]
    assert all(abs(m["E"] - now) < 10e6 for m in msgs)
    trades = [m for m in msgs if m["e"] == "aggTrade"]
    assert [t["a"] for t in trades] == list(range(1, 11))
    # The live shape (PROTOCOL.md §10.3): 25 keys, the DEX fields as placeholders.
    live = [
        "e",
        "E",
        "s",
        "a",
        "p",
        "q",
        "f",
        "l",
        "T",
        "m",
        "th",
        "ua",
        "oi",
        "mk",
        "ff",
        "lq",
        "fe",
        "nf",
        "fa",
        "co",
        "sd",
        "ft",
        "z",
        "Z",
        "rs",
    ]
    assert all(list(t) == live for t in trades)
    assert all((t["ua"], t["co"], t["ft"], t["rs"]) == ("", 0, "", "0") for t in trades)
    for symbol, levels in [("ETH-USD", 5), ("SOL-USD", 20)]:
        depth = [m for m in msgs if m["e"] == "depthUpdate" and m["s"] == symbol]
        assert (depth[0]["mt"], depth[0]["pu"], depth[0]["U"], len(depth[0]["b"])) == (
            "s",
            0,
            1,
            levels,
        )
        for prev, cur in itertools.pairwise(depth):
            assert (cur["mt"], cur["pu"], cur["U"]) == ("u", prev["u"], prev["u"] + 1)
            assert cur["u"] >= cur["U"]
    tickers = [m for m in msgs if m["e"] == "bookTicker"]
    assert [t["mt"] for t in tickers[:2]] == ["s", "u"]
    assert [t["u"] for t in tickers] == list(range(1, len(tickers) + 1))
    marks = [m for m in msgs if m["e"] == "markPriceUpdate"]
    assert all({"p", "i", "r"} <= set(m) for m in marks) and any("P" in m for m in marks)
    force = [m for m in msgs if m["e"] == "forceOrder"]
    assert {"s", "S", "o", "f", "p", "ap", "X", "l", "T", "th", "ua", "oi", "ti"} <= set(
        force[0]["o"]
    )


async def test_resubscribe_restarts_with_a_snapshot(mock: MockExchange) -> None:
    async with open_ws(mock.url) as ws:
        await ready(ws)
        await send(ws, "SUBSCRIBE", 1, ["BTC-USD@depth10"])
        await until(ws, lambda m: m.get("e") == "depthUpdate" and m["u"] > 3)
        await send(ws, "UNSUBSCRIBE", 2, ["BTC-USD@depth10"])
        await send(ws, "SUBSCRIBE", 3, ["BTC-USD@depth10"])
        await until(ws, is_ack("subscribe", 3))
        snap = await recv_json(ws)
        assert (snap["mt"], snap["pu"]) == ("s", 0)


async def test_rate_is_per_connection_in_total() -> None:
    with MockExchange(rate=200.0) as mock:
        async with open_ws(mock.url) as ws:
            await ready(ws)
            await send(ws, "SUBSCRIBE", 1, ["BTC-USD@aggTrade", "ETH-USD@aggTrade"])
            await until(ws, is_ack("subscribe", 1))
            start = time.monotonic()
            for _ in range(60):
                await recv_json(ws)
            elapsed = time.monotonic() - start
    # 60 messages at 200/s in total is ~0.3 s; generous bounds for a noisy machine.
    assert 0.15 < elapsed < 1.5, elapsed


async def test_max_messages_then_connection_stays_open() -> None:
    with MockExchange(rate=None, max_messages=25) as mock:
        async with open_ws(mock.url) as ws:
            await ready(ws)
            await send(ws, "SUBSCRIBE", 1, ["BTC-USD@aggTrade", "ETH-USD@bookTicker"])
            _ack, data = await until(ws, is_ack("subscribe", 1))
            # The feed may start after a PING sent at once is answered: read the 25 first.
            while len(data) < 25:
                data.append(await recv_json(ws))
            await send(ws, "PING", 2)
            _pong, more = await until(ws, is_ack("pong", 2))
            assert more == [], "nothing after the 25th message"
            assert all("e" in m and m["e"] != "pong" for m in data), data
            await send(ws, "PING", 3)
            assert (await recv_json(ws))["id"] == 3
        # status, ack, data, two pongs, the close echo
        assert mock.connection(0).frames_sent == 1 + 1 + 25 + 2 + 1


async def test_flood_rate_none_is_gapless() -> None:
    # max_messages bounds the flood: the client must not buffer an endless stream.
    with MockExchange(rate=None, max_messages=20_000) as mock:
        async with open_ws(mock.url) as ws:
            await ready(ws)
            await send(ws, "SUBSCRIBE", 1, ["SOL-USD@aggTrade"])
            await until(ws, is_ack("subscribe", 1))
            ids = [(await recv_json(ws))["a"] for _ in range(20_000)]
    assert ids == list(range(1, 20_001))


async def test_preencode_cycles_a_ring() -> None:
    with MockExchange(rate=None, preencode=True, max_messages=4100) as mock:
        async with open_ws(mock.url) as ws:
            await ready(ws)
            await send(ws, "SUBSCRIBE", 1, ["BTC-USD@aggTrade"])
            await until(ws, is_ack("subscribe", 1))
            ids = [(await recv_json(ws))["a"] for _ in range(4100)]
    assert ids[:4096] == list(range(1, 4097)) and ids[4096:] == [1, 2, 3, 4]


async def test_server_ping_interval_counts_pongs() -> None:
    with MockExchange(ping_interval=0.02) as mock:
        async with open_ws(mock.url) as ws:
            await ready(ws)
            # websockets answers pings while it reads.
            reader = asyncio.create_task(ws.recv())
            await eventually(lambda: mock.connection(0).pongs >= 3, "3 pongs")
            reader.cancel()


# ----- faults on current connections -----


@pytest.mark.parametrize(
    ("params", "code", "reason"), [({}, 1000, ""), ({"code": 4001, "reason": "bye"}, 4001, "bye")]
)
async def test_fault_close(
    mock: MockExchange, params: dict[str, Any], code: int, reason: str
) -> None:
    async with open_ws(mock.url) as ws:
        await ready(ws)
        assert mock.fault("close", **params) == 1
        exc = await closed(ws)
        assert exc.rcvd is not None and (exc.rcvd.code, exc.rcvd.reason) == (code, reason)
    rec = mock.wait_closed(0)
    assert rec.closed_by == "server" and rec.close_code == code  # the client's echo


async def test_fault_reset_and_fin_send_no_close_frame(mock: MockExchange) -> None:
    for i, kind in enumerate(["reset", "fin"]):
        async with open_ws(mock.url) as ws:
            await ready(ws)
            mock.fault(kind)
            exc = await closed(ws)
            assert exc.rcvd is None, kind
        assert (await mock.wait_closed_async(i)).closed_by == "server"


async def test_fault_silence_answers_pings_or_not(mock: MockExchange) -> None:
    async with open_ws(mock.url) as ws:
        await ready(ws)
        await send(ws, "SUBSCRIBE", 1, ["BTC-USD@aggTrade"])
        await until(ws, lambda m: m.get("e") == "aggTrade")
        mock.fault("silence")
        # Drain what was queued before the fault, then nothing more arrives, not even acks.
        await send(ws, "PING", 99)
        await mock.wait_frames_async(0, 2)
        # asyncio.TimeoutError: what wait_for raises on 3.10 (the builtin one since 3.11)
        with pytest.raises(asyncio.TimeoutError):
            while True:
                m = await recv_json(ws, timeout=0.2)
                assert m.get("id") != 99
        await asyncio.wait_for(await ws.ping(b"x"), T)  # transport pings still answered
        assert mock.connection(0).closed_at is None
    async with open_ws(mock.url) as ws:
        await ready(ws)
        mock.fault("silence", answer_pings=False)
        pong = await ws.ping()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(pong, 0.2)
        await eventually(lambda: mock.connection(1).pings == 1, "the ping recorded")


async def test_fault_disconnecting(mock: MockExchange) -> None:
    async with open_ws(mock.url) as ws:
        await ready(ws)
        mock.fault("disconnecting", reason="pong_timeout")
        status = await recv_json(ws)
        assert status == _AnyE(
            {"e": "status", "status": "disconnecting", "clientId": "ws_0", "reason": "pong_timeout"}
        )
        exc = await closed(ws)
        assert exc.rcvd is not None and exc.rcvd.code == 1000


async def test_fault_disconnecting_with_delay(mock: MockExchange) -> None:
    """The status first; the connection keeps working until the close, `delay` s later."""
    async with open_ws(mock.url) as ws:
        await ready(ws)
        mock.fault("disconnecting", reason="max_duration", delay=0.3)
        status = await recv_json(ws)
        noticed = time.monotonic()
        assert (status["status"], status["reason"]) == ("disconnecting", "max_duration")
        await send(ws, "PING", 1)
        assert (await recv_json(ws))["id"] == 1
        exc = await closed(ws)
        assert exc.rcvd is not None and exc.rcvd.code == 1000
        assert time.monotonic() - noticed >= 0.25
        record = await asyncio.to_thread(mock.wait_closed, 0)
        assert record.closed_by == "server"


async def test_idle_close_after_no_text_message() -> None:
    """A client that sends no text message for idle_close s gets the `idle_timeout` notice,
    then a close; text messages reset the clock, control frames (pings) do not."""
    with MockExchange(rate=1.0, idle_close=0.4) as mock:
        async with open_ws(mock.url) as ws:
            await ready(ws)
            started = time.monotonic()
            for i in range(6):  # 0.6 s of text messages every 0.1 s: still open
                await asyncio.sleep(0.1)
                await send(ws, "PING", i)
                assert (await recv_json(ws))["id"] == i
            quiet_from = time.monotonic()
            assert quiet_from - started > 0.4
            await ws.ping()  # a control frame does not count
            status = await recv_json(ws)
            assert status == _AnyE(
                {
                    "e": "status",
                    "status": "disconnecting",
                    "clientId": "ws_0",
                    "reason": "idle_timeout",
                }
            )
            assert time.monotonic() - quiet_from >= 0.35
            exc = await closed(ws)
            assert exc.rcvd is not None and exc.rcvd.code == 1000
        record = await asyncio.to_thread(mock.wait_closed, 0)
        assert record.closed_by == "server" and record.pings == 1


async def test_max_duration_caps_every_connection() -> None:
    with MockExchange(rate=1.0, max_duration=0.3) as mock:
        for index in range(2):
            async with open_ws(mock.url) as ws:
                await ready(ws)
                opened = time.monotonic()
                # Activity does not extend the lifetime.
                await send(ws, "PING", 1)
                assert (await recv_json(ws))["id"] == 1
                status = await recv_json(ws)
                assert (status["status"], status["reason"]) == ("disconnecting", "max_duration")
                assert time.monotonic() - opened >= 0.25
                exc = await closed(ws)
                assert exc.rcvd is not None and exc.rcvd.code == 1000
            record = await asyncio.to_thread(mock.wait_closed, index)
            assert record.closed_by == "server"


async def test_fault_raw_frames_and_oversize(mock: MockExchange) -> None:
    async with open_ws(mock.url, max_size=None) as ws:
        await ready(ws)
        mock.fault("send_text", data='{"e":"mystery","x":1')
        assert await ws.recv() == '{"e":"mystery","x":1'
        mock.fault("send_binary", data=b'{"e":"bin"}')
        assert await ws.recv() == b'{"e":"bin"}'
        mock.fault("oversize", size=3_000_000)
        big = await asyncio.wait_for(ws.recv(), T)
        assert len(big) == 3_000_000 and json.loads(big)["e"] == "oversize"
        await send(ws, "PING", 1)
        assert (await recv_json(ws))["id"] == 1  # still fine afterwards


async def test_fault_invalid_utf8_text_frame(mock: MockExchange) -> None:
    async with open_ws(mock.url) as ws:
        await ready(ws)
        mock.fault("send_text", data=b"\xff\xfe")
        exc = await closed(ws)
        assert exc.sent is not None and exc.sent.code == 1007  # websockets refuses it


async def test_fault_huge_header(mock: MockExchange) -> None:
    async with open_ws(mock.url) as ws:
        await ready(ws)
        mock.fault("huge_header", length=2**40)
        exc = await closed(ws)
        assert exc.sent is not None and exc.sent.code == 1009  # message too big
    # The mock keeps the socket open (silent) until the client goes away.
    assert (await mock.wait_closed_async(0)).closed_by == "client"


async def test_fault_ping_counts_pongs(mock: MockExchange) -> None:
    async with open_ws(mock.url) as ws:
        await ready(ws)
        assert mock.fault("ping", count=3, payload=b"hi") == 1
        reader = asyncio.create_task(ws.recv())
        await eventually(lambda: mock.connection(0).pongs == 3, "3 pongs")
        reader.cancel()


# ----- faults on the next connections -----


async def test_fault_refuse_then_stall_in_order(mock: MockExchange) -> None:
    mock.fault("refuse", scope="next", count=2)
    mock.fault("stall_handshake", scope="next")
    for _ in range(2):
        with pytest.raises((OSError, InvalidMessage)):
            async with open_ws(mock.url):
                pass
    with pytest.raises(asyncio.TimeoutError):
        async with open_ws(mock.url, open_timeout=0.2):
            pass
    async with open_ws(mock.url) as ws:
        await ready(ws)
    assert (mock.tcp_accepts, mock.handshakes) == (4, 1)


async def test_refusing_property(mock: MockExchange) -> None:
    mock.refusing = True
    assert mock.refusing
    with pytest.raises((OSError, InvalidMessage)):
        async with open_ws(mock.url):
            pass
    mock.refusing = False
    async with open_ws(mock.url) as ws:
        await ready(ws)
    assert (mock.tcp_accepts, mock.handshakes) == (2, 1)


@pytest.mark.parametrize(
    ("how", "close_frame"), [("fin", False), ("reset", False), ("close", True)]
)
async def test_fault_accept_drop(mock: MockExchange, how: str, close_frame: bool) -> None:
    mock.fault("accept_drop", scope="next", how=how)
    if how == "reset":
        # The RST may reach the client before it has read the 101 or the status.
        with pytest.raises((ConnectionClosed, OSError, InvalidMessage)):
            async with open_ws(mock.url) as ws:
                await closed(ws)
                raise ConnectionResetError
    else:
        async with open_ws(mock.url) as ws:
            await ready(ws)
            exc = await closed(ws)
            assert (exc.rcvd is not None) == close_frame
            if exc.rcvd is not None:
                assert exc.rcvd.code == 1000
    assert (await mock.wait_closed_async(0)).closed_by == "server"
    assert mock.handshakes == 1


async def test_fault_no_status_and_wrong_first(mock: MockExchange) -> None:
    mock.fault("no_status", scope="next")
    mock.fault("wrong_first", scope="next", data='{"e":"pong","id":1,"E":5}')
    async with open_ws(mock.url) as ws:
        with pytest.raises(asyncio.TimeoutError):
            await recv_json(ws, timeout=0.2)
        await send(ws, "PING", 7)  # the connection works otherwise
        assert (await recv_json(ws))["id"] == 7
    async with open_ws(mock.url) as ws:
        assert await recv_json(ws) == {"e": "pong", "id": 1, "E": 5}
        await send(ws, "PING", 8)
        assert (await recv_json(ws))["id"] == 8


async def test_current_kind_with_scope_next_applies_after_status(mock: MockExchange) -> None:
    mock.fault("close", scope="next", count=2, code=4002)
    for _ in range(2):
        async with open_ws(mock.url) as ws:
            await ready(ws)
            exc = await closed(ws)
            assert exc.rcvd is not None and exc.rcvd.code == 4002
    async with open_ws(mock.url) as ws:
        await ready(ws)
        await send(ws, "PING", 1)
        assert (await recv_json(ws))["id"] == 1
    mock.fault("fin", scope="next")
    mock.clear_faults()
    async with open_ws(mock.url) as ws:
        await ready(ws)
        await send(ws, "PING", 2)
        assert (await recv_json(ws))["id"] == 2


async def test_client_close_code_is_recorded(mock: MockExchange) -> None:
    async with open_ws(mock.url) as ws:
        await ready(ws)
        await ws.close(4005, "done")
    rec = await mock.wait_closed_async(0)
    assert (rec.close_code, rec.closed_by) == (4005, "client")


def test_fault_argument_errors(mock: MockExchange) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"kind": "explode"}, "kind must be one of"),
        ({"kind": "close", "scope": "later"}, "scope must be"),
        ({"kind": "close", "scope": "next", "count": 0}, "count must be"),
        ({"kind": "refuse"}, "scope: fault 'refuse' applies only to scope='next'"),
        ({"kind": "close", "colour": "red"}, "colour: unknown parameter"),
        ({"kind": "close", "code": 99}, "code must be"),
        ({"kind": "send_text"}, "data is required"),
        ({"kind": "send_text", "data": 5}, "data must be str or bytes"),
        ({"kind": "oversize", "size": -1}, "size must be an int >= 0"),
        ({"kind": "accept_drop", "scope": "next", "how": "gently"}, "how must be"),
        ({"kind": "silence", "answer_pings": "yes"}, "answer_pings must be a bool"),
    ]
    for kw, message in cases:
        kind = kw.pop("kind")
        with pytest.raises(ValueError, match=message):
            mock.fault(kind, **kw)
    with pytest.raises(ValueError, match="rate must be"):
        MockExchange(rate=0)
    with pytest.raises(ValueError, match="max_topics"):
        MockExchange(max_topics=-1)


# ----- CLI -----


def test_cli_mock_exchange_serves_until_sigterm() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bullet_ws.cli",
            "mock-exchange",
            "--port",
            "0",
            "--rate",
            "max",
            "--symbols",
            "AAA-USD,BBB-USD",
            "--max-messages",
            "3",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on ws://127.0.0.1:"), line
        url = line.split()[-1]

        async def scenario() -> list[dict[str, Any]]:
            async with open_ws(url) as ws:
                await ready(ws)
                await send(ws, "SUBSCRIBE", 1, ["AAA-USD@aggTrade"])
                await until(ws, is_ack("subscribe", 1))
                return [await recv_json(ws) for _ in range(3)]

        assert [m["s"] for m in asyncio.run(scenario())] == ["AAA-USD"] * 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_async_context_manager() -> None:
    async with MockExchange() as mock:
        assert mock.running
        async with open_ws(mock.url) as ws:
            await ready(ws)
    assert not mock.running


async def test_records_are_snapshots(mock: MockExchange) -> None:
    async with open_ws(mock.url) as ws:
        await ready(ws)
        before = mock.connection(0)
        await send(ws, "PING", 1)
        await recv_json(ws)
        assert before.frames == [] and mock.connection(0).frames != []
        with pytest.raises(AttributeError):
            before.index = 3  # type: ignore[misc]
