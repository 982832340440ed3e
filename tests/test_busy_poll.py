"""`busy_poll` (issue 15): a waiter that finds the queue empty watches it for a while before it
sleeps. It changes when an event is noticed, never which events arrive or in what order; and a
spinning waiter still ends when the socket stops. On the pure backend it is accepted and has no
effect (its reader runs on the loop itself)."""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import pytest
from support import WAIT, options

pytestmark = pytest.mark.timeout(30)

SYMBOL = "BTC-USD"


@pytest.mark.parametrize(("value", "error"), [
    (-0.001, ValueError), (0.2, ValueError), (float("nan"), ValueError),
    (True, TypeError), ("0.001", TypeError),
])
def test_busy_poll_is_validated(backend: ModuleType, value: Any, error: type) -> None:
    with pytest.raises(error, match="^busy_poll"):
        backend.connect("ws://127.0.0.1:9/ws", busy_poll=value)


def test_busy_poll_default_is_off(backend: ModuleType) -> None:
    assert backend.ManagedWsConfig().busy_poll == 0.0
    assert backend.ManagedWsConfig(busy_poll=0.1).busy_poll == 0.1


async def test_spinning_waiters_get_every_trade_in_order(backend: ModuleType, mock: Any) -> None:
    """recv, recv_batch and async for, each spinning up to 2 ms per wait: the aggTrade ids seen
    are consecutive, as without spinning."""
    async with backend.connect(mock.url, **options(busy_poll=0.002)) as ws:
        ws.subscribe([f"{SYMBOL}@aggTrade"], id=1)
        ids: list[int] = []

        def take(event: Any) -> None:
            if isinstance(event, backend.AggTrade):
                ids.append(event.agg_trade_id)

        async with asyncio.timeout(WAIT):
            while len(ids) < 20:
                take(await ws.recv())
            while len(ids) < 40:
                for event in await ws.recv_batch():
                    take(event)
            async for event in ws:
                take(event)
                if len(ids) >= 60:
                    break
        assert ids == list(range(ids[0], ids[0] + len(ids)))


async def test_a_spinning_waiter_ends_when_the_socket_stops(
    backend: ModuleType, mock_factory: Any
) -> None:
    """Nothing streams; a recv() spinning 50 ms per wait returns None once the socket stops."""
    mock = mock_factory()
    ws = await backend.connect(mock.url, **options(busy_poll=0.05))
    waiter = asyncio.ensure_future(ws.recv())
    await asyncio.sleep(0)  # let it start spinning/sleeping; the result does not depend on it
    ws.stop()
    async with asyncio.timeout(WAIT):
        while await waiter is not None:
            waiter = asyncio.ensure_future(ws.recv())
    await asyncio.wait_for(ws.close(), WAIT)


async def test_orders_sent_while_the_task_spins_go_out_in_order(
    backend: ModuleType, mock: Any
) -> None:
    """Each order is sent in reply to a trade, while the socket task polls for commands: all
    arrive, in order, and each gets its ack."""
    async with backend.connect(mock.url, **options(busy_poll=0.002)) as ws:
        ws.subscribe([f"{SYMBOL}@aggTrade"], id=1)
        sent: list[int] = []
        acked: list[int] = []
        async with asyncio.timeout(WAIT):
            async for event in ws:
                if isinstance(event, backend.AggTrade) and len(sent) < 30:
                    sent.append(100 + len(sent))
                    ws.submit("AAECAwQFBgc=", id=sent[-1])
                elif isinstance(event, backend.OrderResult):
                    acked.append(event.id)
                    if len(acked) == 30:
                        break
        assert acked == sent
        submitted = [r["id"] for r in mock.requests(0) if r.get("method") == "SUBMIT"]
        assert submitted == sent
