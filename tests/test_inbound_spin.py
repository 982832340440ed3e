"""`ManagedWsConfig.inbound_spin` (issue 15): the sleeping consumer also watches the socket and,
when bytes arrive, waits briefly for the socket thread's burst instead of for its wake-up. The
events, their order and the socket's life are the same as without it; the watch follows the
socket across reconnects. The pure backend ignores the setting.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from bullet_ws import ManagedWsConfig
from support import next_of, options

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


async def test_events_flow_and_the_watch_follows_reconnects(backend: ModuleType, mock: Any) -> None:
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
