"""Hardening (API.md, Logging): signed transactions and full frames never appear in log records
above DEBUG, on BOTH backends.

Every record of every logger is captured at DEBUG over a session that subscribes, places orders
of all four kinds (str and bytes `tx`), has an order send fail and be retried after the reconnect,
gets orders rejected, sends an order too big to send, and meets server faults (a marker frame of
no known shape, non-UTF-8 binary, an oversized message, a huge frame header, invalid UTF-8 in a
text frame, a close with a reason, a reset). Then no record at INFO or above (message, arguments
and formatted exception included) contains a `tx` (base64 or raw bytes), a frame the client sent
(as the fake exchange recorded it), or a frame the server sent.

The capture itself is checked: the reconnect WARNINGs are there (so that an empty capture cannot
pass), and (native) the failed order send was seen. On the pure backend a failed send is seldom
reported by websockets (the order is silently lost instead: test_hardening_orders.py), so its
retry path is reached only by chance; its log calls there name the method and the exception only.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
from types import ModuleType
from typing import Any

import pytest
from support import WAIT, next_of
from support import options as support_options

pytestmark = pytest.mark.timeout(60)

TOPIC = "BTC-USD@aggTrade"
SERVER_MARKER = '{"e":"confidential","k":"SERVER-FRAME-4b1d","v":[1,2,3]}'


def options(**overrides: Any) -> dict[str, Any]:
    return support_options(**{"max_backoff": 0.1, "max_message_size": 64 * 1024, **overrides})


def new_tx() -> tuple[bytes, str]:
    raw = secrets.token_bytes(48)
    return raw, base64.b64encode(raw).decode()


def rendered(record: logging.LogRecord) -> str:
    """Everything a handler could print for the record."""
    text = logging.Formatter("%(name)s %(levelname)s %(message)s").format(record)
    return f"{text} {record.args!r}"


class Session:
    def __init__(self, backend: ModuleType, ws: Any, mock: Any) -> None:
        self.backend, self.ws, self.mock = backend, ws, mock
        self.tx_texts: list[str] = []
        self.tx_raw: list[bytes] = []
        self.server_frames: list[str] = [SERVER_MARKER]
        self.next_id = 100

    def tx(self, as_bytes: bool) -> str | bytes:
        raw, text = new_tx()
        self.tx_raw.append(raw)
        self.tx_texts.append(text)
        return raw if as_bytes else text

    def id(self) -> int:
        self.next_id += 1
        return self.next_id

    async def round_trip(self) -> list[Any]:
        """PING and every event up to its Pong."""
        request_id = self.id()
        self.ws.ping(id=request_id)
        seen: list[Any] = []
        async with asyncio.timeout(WAIT):
            while True:
                event = await self.ws.recv()
                assert event is not None
                if isinstance(event, self.backend.Pong) and event.id == request_id:
                    return seen
                seen.append(event)

    async def reconnect_after(self, kind: str, **params: Any) -> None:
        assert self.mock.fault(kind, **params) >= 1
        await next_of(self.ws, self.backend.Reconnecting)
        await next_of(self.ws, self.backend.Reconnected)


def send_failure_seen(records: list[logging.LogRecord]) -> bool:
    return any("send failed" in (m := r.getMessage()) and "order" in m.lower() for r in records)


async def test_no_tx_or_frame_in_logs_above_debug(
    backend: ModuleType, mock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with backend.connect(mock.url, **options()) as ws:
        s = Session(backend, ws, mock)
        ws.subscribe([TOPIC, "ETH-USD@depth5"], id=s.id())
        await next_of(ws, backend.AggTrade)

        # Orders of every kind, str and bytes.
        ws.order_place(s.tx(False), id=s.id())
        ws.order_cancel(s.tx(True), id=s.id())
        ws.order_amend(s.tx(False), id=s.id())
        ws.order_cancel_all(s.tx(True))
        for _ in range(4):
            await next_of(ws, backend.OrderResult)

        # Rejected orders (error events carry no tx, but the path is exercised).
        mock.fault("reject_orders", code=-2010, msg="new order rejected")
        ws.order_place(s.tx(False), id=s.id())
        assert (await next_of(ws, backend.ErrorMessage)).code == -2010

        # An order too big to send (base64 of 60 KiB > 64 KiB frame limit once wrapped): refused
        # at the call (issue 13), and the error names sizes, never the tx.
        big_raw = secrets.token_bytes(60 * 1024)
        s.tx_raw.append(big_raw)
        s.tx_texts.append(base64.b64encode(big_raw).decode())
        with pytest.raises(ValueError, match="^tx") as too_big:
            ws.order_place(big_raw, id=s.id())
        assert s.tx_texts[-1][:32] not in str(too_big.value)

        # Server frames of no known shape, non-UTF-8 binary.
        mock.fault("send_text", data=SERVER_MARKER)
        mock.fault("send_binary", data=b"\xff\xfeSERVER-BINARY-77c2")
        s.server_frames.append("SERVER-BINARY-77c2")
        seen = await s.round_trip()
        assert sum(isinstance(e, backend.Unknown) for e in seen) == 2

        # Faults that end the connection.
        await s.reconnect_after("oversize", size=128 * 1024)
        await s.reconnect_after("huge_header", length=2**40)
        bad_text = b'{"e":"pong","id":1,"E":1,"x":"SERVER-BADUTF8-9e0f\xff"}'
        s.server_frames.append("SERVER-BADUTF8-9e0f")
        await s.reconnect_after("send_text", data=bad_text)
        await s.reconnect_after("close", code=4000, reason="maintenance window")

        # An order placed into a reset connection: its send may fail (the retry path), or the
        # loss may be seen first. Which one is a race this test cannot force; the failed-send
        # path's texts are held free of the tx by the Rust test
        # a_failed_order_send_is_retried_once_on_the_new_connection.
        for _ in range(5):
            mock.fault("reset")
            ws.order_place(s.tx(False), id=s.id())
            await next_of(ws, backend.Reconnected)
            await s.round_trip()
            if send_failure_seen(caplog.records):
                break

        client_frames = [f for c in mock.connections for f in c.frames]

    records = list(caplog.records)
    assert any(r.levelno == logging.WARNING for r in records), "the capture saw no WARNING"
    # The orders before the faults did go out (so their tx were there to leak); orders placed
    # into a reset connection may be lost, and the oversized one is never sent.
    for text in s.tx_texts[:5]:
        assert any(text in f for f in client_frames)

    secrets_ = [*s.tx_texts, *map(repr, s.tx_raw), *(t[:32] for t in s.tx_texts)]
    frames = [*client_frames, *s.server_frames]
    leaks = [
        (r.levelname, rendered(r)[:300])
        for r in records
        if r.levelno > logging.DEBUG
        and (any(x in rendered(r) for x in secrets_) or any(f in rendered(r) for f in frames))
    ]
    assert not leaks, leaks


async def test_wrong_first_frame_is_not_logged_above_debug(
    backend: ModuleType, mock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with backend.connect(mock.url, **options()) as ws:
        mock.fault("wrong_first", scope="next", data='{"e":"x","k":"SRV-FIRST-FRAME-51aa"}')
        mock.fault("reset")
        await next_of(ws, backend.Reconnected)
    leaks = [
        rendered(r)
        for r in caplog.records
        if r.levelno > logging.DEBUG and "SRV-FIRST-FRAME-51aa" in rendered(r)
    ]
    assert not leaks, leaks
