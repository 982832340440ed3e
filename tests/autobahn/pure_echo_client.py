"""Autobahn echo client on the pure backend's transport: `websockets` with the exact connect
options `bullet_ws.pure.transport` uses (captured from it, so that the two cannot drift apart).

Usage: python pure_echo_client.py BASE_URL [AGENT] [MAX_MESSAGE_SIZE]

Runs GET /getCaseCount, then /runCase?case=N&agent=AGENT for N in 1..=count echoing every text and
binary message, then /updateReports?agent=AGENT. Prints one line per case to stderr.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from bullet_ws.config import ManagedWsConfig
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


class _Captured(Exception):
    pass


def transport_options(config: ManagedWsConfig) -> dict[str, Any]:
    """The keyword arguments `bullet_ws.pure.transport` passes to `websockets` `connect`."""
    from bullet_ws.pure import transport

    captured: dict[str, Any] = {}

    def fake_connect(url: str, **kwargs: Any) -> Any:
        captured.update(kwargs)
        raise _Captured

    real = transport.ws_connect
    transport.ws_connect = fake_connect  # type: ignore[assignment]
    try:
        asyncio.run(transport.open_connection("ws://127.0.0.1:9/", config, None))
    except _Captured:
        pass
    except Exception as exc:  # the transport wrapped it: still captured if it got that far
        if not captured:
            raise RuntimeError(f"could not capture the pure transport's options: {exc!r}") from exc
    finally:
        transport.ws_connect = real  # type: ignore[assignment]
    if not captured:
        raise RuntimeError("the pure transport did not call websockets' connect")
    captured.pop("ssl", None)  # plain ws:// here
    return captured


async def run(base: str, agent: str, options: dict[str, Any]) -> None:
    async with connect(f"{base}/getCaseCount", **options) as ws:
        count = int(await ws.recv())
    print(f"pure_echo_client: {count} cases against {base} as {agent}", file=sys.stderr)
    for n in range(1, count + 1):
        echoed = 0
        try:
            async with connect(f"{base}/runCase?case={n}&agent={agent}", **options) as ws:
                async for message in ws:
                    await ws.send(message)
                    echoed += 1
            end = "closed"
        except ConnectionClosed as exc:
            end = f"closed: {exc!r}"
        except Exception as exc:  # noqa: BLE001 - a case that breaks the client is still reported
            end = f"error: {exc!r}"
        print(f"case {n}: echoed {echoed}, {end}", file=sys.stderr)
    async with connect(f"{base}/updateReports?agent={agent}", **options) as ws:
        try:
            await ws.recv()
        except ConnectionClosed:
            pass


def main() -> None:
    base = sys.argv[1].rstrip("/")
    agent = sys.argv[2] if len(sys.argv) > 2 else "bullet-ws-pure"
    config = ManagedWsConfig()
    if len(sys.argv) > 3:
        config = config.with_overrides(max_message_size=int(sys.argv[3]))
    options = transport_options(config)
    print(f"pure_echo_client: websockets options {options}", file=sys.stderr)
    asyncio.run(run(base, agent, options))


if __name__ == "__main__":
    main()
