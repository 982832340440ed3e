"""The pure backend needs no compiled code of ours: with `bullet_ws._core` hidden, `import
bullet_ws.pure` works, the façade falls back to it, and a socket runs end to end against a plain
`websockets` server (the fake exchange is native, so it is hidden too)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(60)

SCRIPT = textwrap.dedent(
    """
    import asyncio, importlib.abc, json, sys

    class HideNative(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "bullet_ws._core":  # as on a platform without a wheel
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, HideNative())

    import bullet_ws.pure as bw
    import bullet_ws
    from websockets.asyncio.server import serve

    assert "bullet_ws._core" not in sys.modules
    assert bullet_ws.BACKEND == "pure", bullet_ws.BACKEND
    assert bullet_ws.connect is bw.connect and bullet_ws.AggTrade is bw.AggTrade

    TRADE = {"e": "aggTrade", "E": 1, "s": "BTC-USD", "a": 7, "p": "1.5", "q": "2", "f": 1,
             "l": 1, "T": 1, "m": False, "th": "0x", "ua": "u", "oi": 3, "mk": True, "ff": True,
             "lq": False, "fe": "0", "nf": "0", "fa": "USDC", "sd": "BUY"}

    async def handler(conn):
        await conn.send(json.dumps({"e": "status", "E": 1, "status": "connected",
                                    "clientId": "t"}))
        request = json.loads(await conn.recv())
        await conn.send(json.dumps({"e": "subscribe", "id": request["id"], "E": 1,
                                    "result": "success"}))
        await conn.send(json.dumps(TRADE))
        await conn.wait_closed()

    async def main():
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with bw.connect(f"ws://127.0.0.1:{port}/ws", idle_timeout=0) as ws:
                ws.subscribe(["BTC-USD@aggTrade"], id=1)
                ack = await asyncio.wait_for(ws.recv(), 5)
                trade = await asyncio.wait_for(ws.recv(), 5)
        assert ack == bw.SubscribeResult(1, 1, "success"), ack
        assert isinstance(trade, bw.AggTrade) and trade.agg_trade_id == 7, trade
        assert "bullet_ws._core" not in sys.modules
        print("ok")

    asyncio.run(main())
    """
)


def test_pure_backend_runs_with_the_native_module_hidden() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
