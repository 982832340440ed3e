"""Hardening (docs/design/TESTING.md B14/B17 beyond the conformance suite): hostile peers, on BOTH backends.

Already covered elsewhere, not repeated here: binary JSON, a non-JSON text frame and JSON of no
known shape (test_conformance_managed.py A14), and server pings while the Python consumer is
blocked, with the pure backend's deliberate difference (test_conformance_managed.py B17).

Here, each hostile frame is sent by the fake exchange on a live, subscribed connection, followed
by a PING round trip (so that everything before it was handled):

* Data frames that are valid WebSocket but not valid messages never end the connection: they
  become `Unknown` (non-UTF-8 binary, empty text and binary frames, JSON that is not an object,
  nesting 100 000 deep, numbers out of range, NaN, a BOM, a trailing NUL).
* Protocol violations do end it, and only it: invalid UTF-8 in a TEXT frame must fail the
  connection (RFC 6455 §8.1); the socket reconnects and replays, nothing crashes.
* A flood of 2 000 server pings (some with the maximum 125-byte payload) is answered, and the
  connection survives.
* An unsolicited `connected` status mid-stream is just delivered.

Both backends must agree on which class a frame becomes, duplicate JSON keys included (serde,
and so the SDK, rejects them: Unknown).

A panic in the Rust socket task cannot be triggered from Python without a test-only hook (the
parser and transport return errors, never panic, on every input tried here); the catch_unwind
guard in src/managed.rs has its Rust unit test.
"""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import pytest
from support import WAIT, next_of, options

pytestmark = pytest.mark.timeout(60)

TOPIC = "BTC-USD@aggTrade"
REPLAY = '{"method":"SUBSCRIBE","id":null,"params":["BTC-USD@aggTrade"]}'


async def until_pong(ws: Any, backend: ModuleType, request_id: int) -> list[Any]:
    """PING, then every event up to its Pong (market data left out)."""
    ws.ping(id=request_id)
    seen: list[Any] = []
    async with asyncio.timeout(WAIT):
        while True:
            event = await ws.recv()
            assert event is not None, f"stream ended before Pong {request_id}; saw {seen}"
            if isinstance(event, backend.Pong) and event.id == request_id:
                return seen
            if not isinstance(event, backend.AggTrade):
                seen.append(event)


DEEP = "[" * 100_000 + "]" * 100_000

# Valid WebSocket data frames that are not valid messages: (fault kind, data).
NOT_A_MESSAGE = {
    "binary-not-utf8": ("send_binary", b"\xff\xfe\x00\x80garbage"),
    "binary-json-with-bad-utf8": ("send_binary", b'{"e":"pong","id":1,"E":1,"x":"\xff"}'),
    "text-empty": ("send_text", ""),
    "binary-empty": ("send_binary", b""),
    "json-array": ("send_text", "[]"),
    "json-null": ("send_text", "null"),
    "json-number": ("send_text", "42"),
    "json-string": ("send_text", '"connected"'),
    "deep-nesting": ("send_text", DEEP),
    "deep-nesting-object": ("send_text", '{"a":' * 50_000 + "1" + "}" * 50_000),
    "id-above-u64": ("send_text", '{"e":"pong","id":18446744073709551616,"E":1}'),
    "id-negative": ("send_text", '{"e":"pong","id":-1,"E":1}'),
    "id-float-overflow": ("send_text", '{"e":"pong","id":1e400,"E":1}'),
    "id-nan": ("send_text", '{"e":"pong","id":NaN,"E":1}'),
    "bom": ("send_text", '\ufeff{"e":"pong","id":1,"E":1}'),
    "trailing-nul": ("send_text", '{"e":"pong","id":1,"E":1}\x00'),
    "truncated": ("send_text", '{"e":"depthUpdate","E":1,"s":"BTC-USD","b":[["1"'),
}


@pytest.mark.parametrize("name", list(NOT_A_MESSAGE))
async def test_bad_data_frames_become_unknown(backend: ModuleType, mock: Any, name: str) -> None:
    kind, data = NOT_A_MESSAGE[name]
    async with backend.connect(mock.url, **options()) as ws:
        ws.subscribe([TOPIC], id=1)
        await next_of(ws, backend.AggTrade)
        assert mock.fault(kind, data=data) == 1
        seen = await until_pong(ws, backend, 2)
        unknown = [e for e in seen if isinstance(e, backend.Unknown)]
        assert len(unknown) == 1, seen
        assert unknown[0].error and isinstance(unknown[0].raw, str)
        assert not any(isinstance(e, (backend.Reconnecting, backend.Disconnected)) for e in seen)
        await next_of(ws, backend.AggTrade)  # data still flows on the same connection
        assert ws.stats.reconnects == 0 and mock.handshakes == 1
        assert not mock.connection(0).closed


@pytest.mark.parametrize("name", list(NOT_A_MESSAGE))
def test_both_backends_agree_on_bad_frames(native: ModuleType, pure: ModuleType, name: str) -> None:
    _, data = NOT_A_MESSAGE[name]
    a, b = native.parse_message(data), pure.parse_message(data)
    assert type(a).__name__ == type(b).__name__ == "Unknown"
    assert a.raw == b.raw


def test_duplicate_keys_parse_alike(native: ModuleType, pure: ModuleType) -> None:
    frame = '{"e":"pong","id":1,"id":2,"E":1}'
    a, b = native.parse_message(frame), pure.parse_message(frame)
    assert type(a).__name__ == type(b).__name__, (a, b)


async def test_invalid_utf8_text_frame_fails_only_that_connection(
    backend: ModuleType, mock: Any
) -> None:
    """RFC 6455 §8.1: invalid UTF-8 in a text message fails the connection; we reconnect."""
    async with backend.connect(mock.url, **options()) as ws:
        ws.subscribe([TOPIC], id=1)
        await next_of(ws, backend.AggTrade)
        assert mock.fault("send_text", data=b'{"e":"pong","id":1,"E":1,"x":"\xff\xfe"}') == 1
        lost = await next_of(ws, backend.Reconnecting)
        assert "utf" in lost.reason.lower() or "1007" in lost.reason, lost.reason
        await next_of(ws, backend.Reconnected)
        await next_of(ws, backend.AggTrade)
        assert mock.connection(1).frames[:1] == [REPLAY]
        assert ws.topics == frozenset({TOPIC}) and ws.stats.reconnects == 1


async def test_ping_flood_is_answered_and_survived(backend: ModuleType, mock: Any) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        ws.subscribe([TOPIC], id=1)
        await next_of(ws, backend.AggTrade)
        mock.fault("ping", count=1000)
        mock.fault("ping", count=1000, payload=b"\xab" * 125)
        seen = await until_pong(ws, backend, 2)
        assert not any(isinstance(e, (backend.Reconnecting, backend.Disconnected)) for e in seen)
        # Every ping gets its pong (RFC 6455 §5.5.3 allows answering only the latest; both
        # transports answer each one here).
        # Poll the mock's record with an upper bound (the sleep only yields to the loop).
        async with asyncio.timeout(WAIT):
            while mock.connection(0).pongs < 2000:
                await asyncio.sleep(0.01)
        record = mock.connection(0)
        assert record.pongs == 2000 and not record.closed
        assert ws.stats.reconnects == 0 and mock.handshakes == 1


async def test_unsolicited_connected_status_is_delivered(backend: ModuleType, mock: Any) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        mock.fault("send_text", data='{"e":"status","E":5,"status":"connected","clientId":"x"}')
        seen = await until_pong(ws, backend, 3)
        assert [type(e).__name__ for e in seen] == ["Status"]
        assert (seen[0].status, seen[0].client_id) == ("connected", "x")
        assert ws.stats.reconnects == 0 and mock.handshakes == 1
