"""The live protocol (PROTOCOL.md §10) end to end, on both backends, against the fake exchange:
SUBMIT and its ack, the new user streams and market status, and the live aggTrade shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from bullet_ws import Topic
from support import WAIT, next_of, options

pytestmark = pytest.mark.timeout(30)

TX = "AAECAwQFBgc="


def test_new_topic_strings() -> None:
    assert Topic.market_status() == "!marketStatus@arr"
    assert Topic.user_degen_positions("0xabc") == "0xabc@user.degenPositions"
    with pytest.raises(ValueError, match="address"):
        Topic.user_degen_positions("")


async def test_submit_is_sent_acked_and_streams_fills_and_degen_positions(
    backend: ModuleType, mock: Any
) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        ws.subscribe(
            [Topic.user_orders("a1"), Topic.user_degen_positions("a1"), Topic.market_status()],
            id=1,
        )
        await next_of(ws, backend.SubscribeResult)
        snapshot = await next_of(ws, backend.MarketStatus)
        assert snapshot.is_snapshot
        assert [m.symbol for m in snapshot.markets] == ["BTC-USD", "ETH-USD", "SOL-USD"]
        assert isinstance(snapshot.markets[0], backend.MarketStatusEntry)
        assert (snapshot.markets[0].market_id, snapshot.markets[0].status) == (1, "TRADING")
        ws.submit(TX, id=7)
        ack = await next_of(ws, backend.OrderResult)
        assert (ack.method, ack.id, ack.is_success) == ("submit", 7, True)
        fill = None
        async with asyncio.timeout(WAIT):
            while fill is None:
                update = await next_of(ws, backend.OrderUpdate)
                if update.kind == "trade_fill":
                    fill = update
        assert (fill.commission_asset, fill.is_maker, fill.remaining_qty) == ("USDC", False, "0")
        assert fill.user_address == "" and fill.trade_id == ack.order_ids[0]
        completed = await next_of(ws, backend.DegenPositionCompleted)
        assert completed.sequence == 1 and completed.position.address == "a1"
        assert isinstance(completed.position, backend.DegenPosition)
        assert completed.position.liquidation_type is None
    submit = '{"method":"SUBMIT","id":7,"params":{"tx":"AAECAwQFBgc="}}'
    assert mock.connection(0).frames.count(submit) == 1


async def test_submit_refuses_bad_arguments_naming_them(backend: ModuleType, mock: Any) -> None:
    async with backend.connect(mock.url, **options()) as ws:
        with pytest.raises(TypeError, match="tx"):
            ws.submit(12)
        with pytest.raises(ValueError, match="id"):
            ws.submit(TX, id=-1)
        ws.ping(id=3)
        await next_of(ws, backend.Pong)
    assert not any("SUBMIT" in f for f in mock.connection(0).frames)


@pytest.mark.parametrize("legacy", [False, True], ids=["live", "legacy"])
async def test_agg_trades_parse_in_the_live_and_the_legacy_shape(
    backend: ModuleType, mock_factory: Callable[..., Any], legacy: bool
) -> None:
    mock = mock_factory(legacy_shapes=legacy, rate=None, max_messages=20)
    async with backend.connect(mock.url, **options()) as ws:
        ws.subscribe([Topic.agg_trade("BTC-USD")], id=1)
        trades = [await next_of(ws, backend.AggTrade) for _ in range(20)]
    assert [t.agg_trade_id for t in trades] == list(range(1, 21))
    if legacy:
        assert all(t.fill_type is None and t.user_address for t in trades)
    else:
        assert all((t.fill_type, t.remaining_qty, t.user_address) == ("", "0", "") for t in trades)
