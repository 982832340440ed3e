"""Hardening (docs/design/TESTING.md B20): `wss://` on BOTH backends, against a local TLS WebSocket server
(`websockets` with a certificate from a throwaway `trustme` CA) that sends the `connected` status
first and answers PING with a pong.

* `ca_file=<the CA's PEM>`: connect works, requests round-trip, and a reconnect is over TLS too.
* Verification is on by default: without `ca_file` (the built-in roots), with the wrong CA, or
  with a certificate for another host name, the connect fails closed with a `ConnectError`
  (not a timeout) whose message says it is a certificate problem, and the server never sees a
  WebSocket upgrade.
* A `wss://` URL never falls back to `ws://`: against a plain server it fails; nothing upgrades.
* An unreadable or empty `ca_file` is an error, never a silent fallback to the built-in roots.
"""

from __future__ import annotations

import json
import pathlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest
from support import next_of
from support import options as support_options

trustme = pytest.importorskip("trustme")
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.timeout(60)

CONNECTED = '{"e":"status","E":1,"status":"connected","clientId":"t"}'


@dataclass
class Server:
    url: str
    handshakes: int = 0
    requests: list[str] = field(default_factory=list)
    live: set[ServerConnection] = field(default_factory=set)


async def _handler(server: Server, conn: ServerConnection) -> None:
    server.handshakes += 1
    server.live.add(conn)
    try:
        await conn.send(CONNECTED)
        async for message in conn:
            server.requests.append(str(message))
            request = json.loads(message)
            if request.get("method") == "PING":
                await conn.send(json.dumps({"e": "pong", "id": request.get("id"), "E": 2}))
    except ConnectionClosed:
        pass  # the client dropped it; the tests judge by the counts
    finally:
        server.live.discard(conn)


async def _serve(tls: ssl.SSLContext | None) -> AsyncIterator[Server]:
    server = Server(url="")
    async with serve(lambda c: _handler(server, c), "127.0.0.1", 0, ssl=tls) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        server.url = f"{'wss' if tls else 'ws'}://127.0.0.1:{port}/ws"
        yield server


@pytest.fixture(scope="module")
def ca() -> Any:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: Any, tmp_path: pathlib.Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def _server_context(ca: Any, *hosts: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*hosts).configure_cert(ctx)
    return ctx


@pytest.fixture
async def tls_server(ca: Any) -> AsyncIterator[Server]:
    async for server in _serve(_server_context(ca, "127.0.0.1", "localhost")):
        yield server


@pytest.fixture
async def wrong_host_server(ca: Any) -> AsyncIterator[Server]:
    async for server in _serve(_server_context(ca, "bullet.example")):
        yield server


@pytest.fixture
async def plain_server() -> AsyncIterator[Server]:
    async for server in _serve(None):
        yield server


def options(**overrides: Any) -> dict[str, Any]:
    return support_options(**{"connection_timeout": 3.0, **overrides})


async def test_wss_with_ca_file_connects_and_reconnects(
    backend: ModuleType, tls_server: Server, ca_file: str
) -> None:
    async with backend.connect(tls_server.url, **options(ca_file=ca_file)) as ws:
        ws.ping(id=1)
        assert (await next_of(ws, backend.Pong)).id == 1
        for conn in list(tls_server.live):
            await conn.close(1012, "restart")
        reconnecting = await next_of(ws, backend.Reconnecting)
        assert "1012" in reconnecting.reason
        await next_of(ws, backend.Reconnected)
        ws.ping(id=2)
        assert (await next_of(ws, backend.Pong)).id == 2
    assert tls_server.handshakes == 2
    assert tls_server.requests == ['{"method":"PING","id":1}', '{"method":"PING","id":2}']


async def test_direct_writes_over_tls(
    backend: ModuleType, tls_server: Server, ca_file: str
) -> None:
    """Pings written on the calling thread (`direct_write`, native) go through TLS as well: the
    server reads each once, in order, and answers."""
    async with backend.connect(tls_server.url, **options(ca_file=ca_file)) as ws:
        ws.ping(id=0)
        assert (await next_of(ws, backend.Pong)).id == 0
        before = ws.stats.direct_writes
        for i in range(1, 21):
            ws.ping(id=i)
        assert [(await next_of(ws, backend.Pong)).id for _ in range(20)] == list(range(1, 21))
        direct = ws.stats.direct_writes - before
    assert tls_server.requests == [f'{{"method":"PING","id":{i}}}' for i in range(21)]
    assert direct == (20 if backend.__name__ == "bullet_ws" else 0)


async def _assert_certificate_failure(backend: ModuleType, url: str, **config: Any) -> str:
    with pytest.raises(backend.ConnectError) as info:
        await backend.connect(url, **options(**config))
    assert not isinstance(info.value, backend.ConnectTimeout), info.value
    return str(info.value)


async def test_wss_without_ca_file_fails_closed(backend: ModuleType, tls_server: Server) -> None:
    """Verification is on by default: a certificate from an unknown CA is refused."""
    message = await _assert_certificate_failure(backend, tls_server.url)
    assert "certificate" in message.lower(), message
    assert tls_server.handshakes == 0 and tls_server.requests == []


async def test_wss_with_another_ca_fails_closed(
    backend: ModuleType, tls_server: Server, tmp_path: pathlib.Path
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    message = await _assert_certificate_failure(backend, tls_server.url, ca_file=str(other))
    assert "certificate" in message.lower(), message
    assert tls_server.handshakes == 0


async def test_wss_checks_the_host_name(
    backend: ModuleType, wrong_host_server: Server, ca_file: str
) -> None:
    """A certificate from the trusted CA, but for another host name, is refused."""
    message = await _assert_certificate_failure(backend, wrong_host_server.url, ca_file=ca_file)
    lowered = message.lower()
    assert "certificate" in lowered or "hostname" in lowered, message
    assert wrong_host_server.handshakes == 0


async def test_wss_never_falls_back_to_ws(
    backend: ModuleType, plain_server: Server, ca_file: str
) -> None:
    """wss:// to a plain-text server fails (TLS), and no WebSocket upgrade reaches it."""
    wss_url = plain_server.url.replace("ws://", "wss://", 1)
    with pytest.raises(backend.ConnectError):
        await backend.connect(wss_url, **options(ca_file=ca_file, connection_timeout=2.0))
    assert plain_server.handshakes == 0 and plain_server.requests == []


@pytest.mark.parametrize(
    "content", [None, "", "not a certificate\n"], ids=["missing", "empty", "garbage"]
)
async def test_bad_ca_file_is_an_error_not_a_fallback(
    backend: ModuleType, tls_server: Server, tmp_path: pathlib.Path, content: str | None
) -> None:
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_text(content)
    with pytest.raises(backend.ConnectError) as info:
        await backend.connect(tls_server.url, **options(ca_file=str(path)))
    assert "ca_file" in str(info.value) or "certificate" in str(info.value).lower(), info.value
    assert tls_server.handshakes == 0
