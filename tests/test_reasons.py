"""The same event gives the same reason text on both backends, word for word (`Reconnecting.reason`,
the text users log and match on): the pure backend speaks the native backend's words."""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import pytest
from support import WAIT, options

pytestmark = pytest.mark.timeout(30)

CASES = [
    ("close", {}, {}, "closed by server (1000)"),
    ("close", {"code": 4000, "reason": "bye"}, {}, "closed by server (4000): bye"),
    ("reset", {}, {}, "transport error: connection reset by peer"),
    ("fin", {}, {}, "stream ended without a close frame"),
    ("silence", {}, {"idle_timeout": 0.3}, "no message within idle_timeout (0.300s)"),
]


@pytest.mark.parametrize(("kind", "params", "config", "reason"), CASES,
                         ids=[c[3].split(" (")[0] + f"-{i}" for i, c in enumerate(CASES)])
async def test_reconnecting_reasons_are_exact(
    backend: ModuleType, mock: Any, kind: str, params: dict[str, Any], config: dict[str, Any],
    reason: str,
) -> None:
    async with backend.connect(mock.url, **options(**config)) as ws:
        ws.ping(id=1)
        async with asyncio.timeout(WAIT):
            while not isinstance(await ws.recv(), backend.Pong):
                pass
            mock.fault(kind, **params)
            while not isinstance(event := await ws.recv(), backend.Reconnecting):
                pass
    assert event.reason == reason
