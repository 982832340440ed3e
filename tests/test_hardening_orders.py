"""Hardening: an order placed on a connection that the peer has already reset (the client has
not noticed yet) must be delivered once on the next connection, on BOTH backends.

The fake exchange resets connection 0; a blocking wait on the mock's record (the event loop does
not run meanwhile) makes sure the RST has reached the client's kernel before the order is placed.

* native: the socket task notices the reset by itself (off the loop thread) and sends the order
  on the new connection, or its write fails and it retries there ("If the send fails, reconnect
  and retry once").
* pure: asyncio's transport swallows the write error (it only schedules connection_lost) and
  websockets' `send` returns normally, so the pure backend treats a transport found closing right
  after the write as a failed send, then reconnects and retries once.

(Without the blocking wait, whether an order written just before a reset arrives is a TCP race
that no client can win every time; that case is not asserted.)
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from support import next_of

pytestmark = pytest.mark.timeout(60)

TX = "AAECAwQFBgc="
ORDER = '{"method":"ORDER.PLACE","id":7,"params":{"tx":"AAECAwQFBgc="}}'


async def test_order_on_a_reset_connection_is_delivered_once(
    backend: ModuleType, mock: Any, request: pytest.FixtureRequest
) -> None:
    async with backend.connect(
        mock.url, initial_backoff=0.02, max_backoff=0.1, idle_timeout=0, connection_timeout=2.0
    ) as ws:
        ws.subscribe(["BTC-USD@aggTrade"])
        await next_of(ws, backend.AggTrade)
        mock.fault("reset")
        mock.wait_closed(0)  # blocking on purpose: the loop must not see the reset first
        ws.order_place(TX, id=7)
        result = await next_of(ws, backend.OrderResult, timeout=3.0)
        assert (result.method, result.id, result.is_success) == ("place", 7, True)
        sent = [f for c in mock.connections for f in c.frames if f == ORDER]
        assert sent == [ORDER]
