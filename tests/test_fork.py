"""After `os.fork()` (multiprocessing's default start method on Linux) the child gets a working
client, and the sockets it inherited from its parent are dead rather than hung (issue 13 row 5).

The native core's tokio runtime is process-wide: its threads do not survive a fork, so the child
must build its own.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
from multiprocessing.connection import Connection
from types import ModuleType
from typing import Any

import pytest
from support import WAIT, next_of, options

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded"),
]


def _child(backend: ModuleType, url: str, silent_url: str, inherited: Any, out: Connection) -> None:
    async def main() -> list[Any]:
        seen: list[Any] = []
        async with backend.connect(url, **options()) as ws:
            ws.subscribe(["BTC-USD@aggTrade"], id=5)
            seen.append(("ack", (await next_of(ws, backend.SubscribeResult)).id))
        try:
            await backend.connect(silent_url, **options(connection_timeout=0.5))
        except backend.ConnectTimeout:
            seen.append("timeout")
        if inherited is not None:
            try:
                inherited.ping(id=1)
            except backend.StoppedError:
                seen.append("stopped")
            seen.append(("recv", await asyncio.wait_for(inherited.recv(), WAIT)))
            seen.append(("batch", await asyncio.wait_for(inherited.recv_batch(), WAIT)))
            seen.append(("closed", await asyncio.wait_for(inherited.close(), WAIT)))
        return seen

    try:
        out.send(asyncio.run(asyncio.wait_for(main(), 3 * WAIT)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        out.send(repr(exc))


def test_a_forked_child_connects_and_times_out(backend: ModuleType, mock: Any) -> None:
    native = backend.__name__ == "bullet_ws"
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (in the kernel), never answers
    silent_url = f"ws://127.0.0.1:{silent.getsockname()[1]}/ws"
    loop = asyncio.new_event_loop()
    try:
        # The parent's socket is up when it forks: the runtime's threads are running.
        ws = loop.run_until_complete(backend.connect(mock.url, **options()))
        ws.subscribe(["ETH-USD@aggTrade"], id=1)
        loop.run_until_complete(next_of(ws, backend.SubscribeResult))
        ctx = multiprocessing.get_context("fork")
        parent_end, child_end = ctx.Pipe(duplex=False)
        child = ctx.Process(
            target=_child,
            args=(backend, mock.url, silent_url, ws if native else None, child_end),
        )
        child.start()
        try:
            assert parent_end.poll(4 * WAIT), "the forked child hangs"
            seen = parent_end.recv()
        finally:
            child.join(WAIT)
            if child.is_alive():
                child.kill()
        expected: list[Any] = [("ack", 5), "timeout"]
        if native:
            expected += ["stopped", ("recv", None), ("batch", []), ("closed", None)]
        assert seen == expected
        assert child.exitcode == 0
        # The parent's socket is untouched by the child's end.
        ws.ping(id=9)
        assert loop.run_until_complete(next_of(ws, backend.Pong)).id == 9
        loop.run_until_complete(ws.close())
    finally:
        loop.close()
        silent.close()
