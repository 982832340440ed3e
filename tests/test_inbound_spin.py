"""`ManagedWsConfig.inbound_spin` (issue 15): the sleeping consumer also watches the socket and,
when bytes arrive, waits briefly for the socket thread's burst instead of for its wake-up. The
events, their order and the socket's life are the same as without it; the watch follows the
socket across reconnects. The pure backend ignores the setting.
"""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import pytest
from bullet_ws import ManagedWsConfig
from support import WAIT, Proc, next_of, options

pytestmark = pytest.mark.timeout(60)

TOPIC = "BTC-USD@aggTrade"


def test_inbound_spin_is_validated() -> None:
    assert ManagedWsConfig().inbound_spin == 0.0
    assert ManagedWsConfig(inbound_spin=0.0002).inbound_spin == 0.0002
    for bad, error in (
        (-0.001, ValueError),
        (0.02, ValueError),
        ("1", TypeError),
        (True, TypeError),
    ):
        with pytest.raises(error, match="^inbound_spin"):
            ManagedWsConfig(inbound_spin=bad)


async def test_events_and_pongs_flow_across_reconnects_with_the_watch_on(
    backend: ModuleType, mock: Any
) -> None:
    async with backend.connect(mock.url, **options(inbound_spin=0.001)) as ws:
        ws.subscribe([TOPIC], id=1)
        for _ in range(3):
            ids = [(await next_of(ws, backend.AggTrade)).agg_trade_id for _ in range(20)]
            assert ids == sorted(ids) and len(set(ids)) == 20
            ws.ping(id=7)
            assert (await next_of(ws, backend.Pong)).id == 7
            assert mock.fault("reset") == 1
            await next_of(ws, backend.Reconnected)
        assert ws.stats.reconnects == 3


# A raw WebSocket server in its own process: `connected`, then WebSocket pings without end, which
# keep the socket readable but never become events. It prints its port.
PING_FLOOD = r"""
import asyncio, base64, hashlib

def frame(opcode, payload):
    return bytes([0x80 | opcode, len(payload)]) + payload

async def handle(reader, writer):
    request = await reader.readuntil(b"\r\n\r\n")
    key = next(l.split(b":", 1)[1].strip() for l in request.split(b"\r\n")
               if l.lower().startswith(b"sec-websocket-key"))
    guid = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    accept = base64.b64encode(hashlib.sha1(key + guid).digest()).decode()
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept.encode() + b"\r\n\r\n")
    writer.write(frame(1, b'{"e":"status","E":1,"status":"connected","clientId":"flood"}'))
    async def sink():
        while await reader.read(1 << 16):
            pass
    asyncio.ensure_future(sink())
    pings = frame(9, b"x" * 120) * 200
    try:
        while True:
            writer.write(pings)
            await writer.drain()
    except OSError:
        pass

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


async def test_a_ring_that_came_with_socket_bytes_is_not_lost(
    native: ModuleType, procs: list[Any]
) -> None:
    """The `connected` ring and the socket's bytes wake the doorbell together; bytes that never
    become events (pings) must not make it swallow the ring."""
    server = Proc("-c", PING_FLOOD)
    procs.append(server)
    url = f"ws://127.0.0.1:{server.next_line(WAIT)}"
    for _ in range(4):
        async with asyncio.timeout(3.0):  # a lost ring waits for idle_timeout, 8 s
            ws = await native.connect(
                url, **options(inbound_spin=0.01, idle_timeout=8.0, keepalive_interval=0)
            )
        await ws.close()
