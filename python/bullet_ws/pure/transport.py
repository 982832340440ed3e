"""One connection of the pure backend: upgrade, the `connected` status handshake, frames out.

PROTOCOL.md §3.3: the server's first message must be `status`/`connected`; it is consumed here
and never delivered. `connection_timeout` bounds the upgrade and that first message together.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.uri import parse_uri

from bullet_ws import _policy
from bullet_ws._policy import CLOSE_GRACE, STREAM_ENDED, json_string_size, topics_frame_size
from bullet_ws.config import ManagedWsConfig
from bullet_ws.errors import ConnectError, ConnectTimeout, HandshakeError
from bullet_ws.pure.messages import Status
from bullet_ws.pure.parse import parse_message

__all__ = [
    "CountingConnection",
    "abort",
    "check_url",
    "client_frame",
    "close_gracefully",
    "close_reason",
    "json_string_size",
    "open_connection",
    "ssl_context",
    "topics_frame_size",
]

logger = logging.getLogger("bullet_ws.pure")

# PROTOCOL.md §2: compact JSON, keys in the order method, id, params; non-ASCII kept as UTF-8
# (serde_json's output, which the native backend sends).
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def client_frame(
    method: str, id: int | None, params: Any = None, *, has_params: bool = True
) -> str:
    """Serialize one client message exactly as the SDK does (`"id": null` when absent)."""
    if has_params:
        return _encode({"method": method, "id": id, "params": params})
    return _encode({"method": method, "id": id})


def check_url(ws_url: str) -> None:
    """Raise ValueError (naming `url`) when websockets could not use this URL."""
    try:
        parse_uri(ws_url)
    except InvalidURI as exc:
        raise ValueError(f"url is not usable: {ws_url!r} ({exc})") from None


def ssl_context(ws_url: str, config: ManagedWsConfig) -> ssl.SSLContext | None:
    """The TLS context for wss:// (trusting `ca_file` when given); None for ws://."""
    if not ws_url.lower().startswith("wss:"):
        return None
    try:
        return ssl.create_default_context(cafile=config.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConnectError(f"cannot load ca_file {config.ca_file!r}: {exc}") from exc


class CountingConnection(ClientConnection):
    """A websockets connection that counts the bytes its socket accepted (`bytes_out`), and
    fails at once on a garbage upgrade reply.

    asyncio's transport swallows a failed write (it only schedules `connection_lost` and is then
    closing), and websockets' `send` may return normally after it. An order must be sent again
    only when none of its bytes left; this count is how the pure backend tells.
    """

    bytes_out = 0

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # On an unparsable upgrade reply websockets waits for the peer to close the connection
        # (up to connection_timeout); the native backend fails at once, and so do we.
        if self.protocol.handshake_exc is not None and not self.response_rcvd.done():
            self.transport.abort()

    def send_data(self) -> None:
        transport = self.transport
        for data in self.protocol.data_to_send():
            if data:
                transport.write(data)
                if not transport.is_closing():
                    self.bytes_out += len(data)
            elif transport.can_write_eof():
                # The protocol asks for a half-close (no TLS); a failure here changes nothing.
                with contextlib.suppress(Exception):
                    transport.write_eof()
            else:
                transport.close()


def abort(conn: ClientConnection) -> None:
    """Drop a connection at once, without the close handshake (zombies never answer it)."""
    transport = conn.transport
    if transport is not None and not transport.is_closing():
        transport.abort()


async def close_gracefully(conn: ClientConnection) -> None:
    """Close with the close handshake when the peer answers quickly, else drop it."""
    try:
        await asyncio.wait_for(conn.close(), CLOSE_GRACE)
    except BaseException as exc:  # noqa: BLE001 - timed out, cancelled or broken: drop it
        logger.debug("close handshake not completed (%r); dropping the connection", exc)
    finally:
        abort(conn)


async def _upgrade_and_await_connected(
    ws_url: str, config: ManagedWsConfig, tls: ssl.SSLContext | None
) -> CountingConnection:
    conn = await ws_connect(
        ws_url,
        create_connection=CountingConnection,
        compression=None,
        # Server pings are answered by websockets; dead peers are caught by idle_timeout.
        ping_interval=None,
        open_timeout=None,  # bounded by connection_timeout around this whole coroutine
        max_size=config.max_message_size,
        # The native transport has no proxy support either; keep both backends alike.
        proxy=None,
        ssl=tls,
        close_timeout=1.0,
    )
    try:
        first = await conn.recv()
    except ConnectionClosed as exc:
        abort(conn)
        raise HandshakeError(_policy.lost_before_connected(close_reason(exc))) from None
    except BaseException:
        abort(conn)  # cancelled (stop() or connection_timeout) mid-handshake
        raise
    message = parse_message(first)
    if not (isinstance(message, Status) and message.status == "connected"):
        abort(conn)
        # The frame's class only: frames never reach logs above DEBUG, and this text is logged.
        raise HandshakeError(_policy.wrong_first(type(message).__name__))
    assert isinstance(conn, CountingConnection)
    return conn


async def open_connection(
    ws_url: str, config: ManagedWsConfig, tls: ssl.SSLContext | None
) -> CountingConnection:
    """Open one connection and consume its `connected` status.

    Raises ConnectTimeout, HandshakeError (non-101, or a first message other than
    status/connected) or ConnectError (refused, DNS, TLS, ...).
    """
    try:
        return await asyncio.wait_for(
            _upgrade_and_await_connected(ws_url, config, tls), config.connection_timeout
        )
    except ConnectError:
        raise
    except asyncio.TimeoutError:
        raise ConnectTimeout(_policy.connect_timeout(config.connection_timeout)) from None
    except (InvalidHandshake, InvalidURI) as exc:
        raise HandshakeError(f"WebSocket upgrade failed: {exc}") from exc
    except (OSError, ssl.SSLError, EOFError) as exc:
        raise ConnectError(f"cannot connect to {ws_url}: {exc}") from exc


# The close codes websockets sends when it fails a connection for what it received: a protocol
# error, invalid UTF-8 in a text frame, a message over `max_size`.
FAILED_HERE = frozenset({1002, 1007, 1009})


def close_reason(exc: BaseException) -> str:
    """Why a connection was lost, for `Reconnecting(reason)` and the logs: the native backend's
    words (`transport::Lost`), so that both backends give the same reason for the same event."""
    if isinstance(exc, ConnectionClosed):
        frame = exc.rcvd if exc.rcvd is not None else exc.sent
        if exc.rcvd is not None and frame is not None:
            if frame.reason:
                return f"closed by server ({frame.code}): {frame.reason}"
            return f"closed by server ({frame.code})"
        cause = exc.__cause__
        if isinstance(cause, ConnectionResetError):
            return "transport error: connection reset by peer"
        if cause is None and frame is not None and frame.code in FAILED_HERE:
            # websockets < 17 drops the cause of a connection it failed itself; the close frame
            # it sent still says why.
            return f"transport error: {frame.reason} ({frame.code})"
        if cause is None or isinstance(cause, EOFError):
            return STREAM_ENDED
        return f"transport error: {cause}"
    if isinstance(exc, ConnectionResetError):
        return "transport error: connection reset by peer"
    return f"transport error: {exc}"
