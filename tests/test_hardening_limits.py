"""Hardening (docs/design/TESTING.md B16): the message size limit, on BOTH backends.

`max_message_size` (default 4 MiB) bounds every message received: native via tungstenite's
`max_message_size`/`max_frame_size`, pure via websockets' `max_size`. A message over it, and a frame
header announcing a huge length (2**40 bytes), fail the connection: a `Reconnecting` event whose
reason says the size exceeds the limit, then a new connection that replays the subscriptions, and
data flows again. A message of exactly the limit is delivered. The client's memory does not grow
by what the peer announces or sends beyond the limit: measured as this process's RSS
(/proc/self/statm) with the fake exchange in a child process, so that its own buffers are not
counted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from support import next_of, options

pytestmark = pytest.mark.timeout(60)

SMALL_LIMIT = 1024  # the smallest max_message_size allowed
TOPIC = "BTC-USD@aggTrade"
REPLAY = '{"method":"SUBSCRIBE","id":null,"params":["BTC-USD@aggTrade"]}'


async def assert_fails_and_recovers(
    backend: ModuleType, ws: Any, connections: Any, announced: int
) -> None:
    """Reconnecting (reason: exceeds, with the size), Reconnected, the replay, data again."""
    before = ws.stats.reconnects
    lost = await next_of(ws, backend.Reconnecting)
    assert "exceed" in lost.reason and str(announced) in lost.reason, lost.reason
    await next_of(ws, backend.Reconnected)
    await next_of(ws, backend.AggTrade)
    assert ws.stats.reconnects == before + 1
    assert ws.topics == frozenset({TOPIC})
    new = connections()[-1]
    assert new.frames[:1] == [REPLAY]


@pytest.mark.parametrize(
    ("kind", "params", "announced"),
    [
        ("oversize", {"size": SMALL_LIMIT + 1}, SMALL_LIMIT + 1),
        ("oversize", {"size": 1 << 20}, 1 << 20),
        ("huge_header", {"length": 2**40}, 2**40),
        ("huge_header", {"length": 2**63 - 1}, 2**63 - 1),
    ],
    ids=["oversize-limit+1", "oversize-1MiB", "huge-header-2**40", "huge-header-2**63-1"],
)
async def test_over_the_limit_fails_the_connection_and_replays(
    backend: ModuleType, mock: Any, kind: str, params: dict[str, Any], announced: int
) -> None:
    async with backend.connect(mock.url, **options(max_message_size=SMALL_LIMIT)) as ws:
        ws.subscribe([TOPIC], id=1)
        await next_of(ws, backend.AggTrade)
        assert mock.fault(kind, **params) == 1
        await assert_fails_and_recovers(backend, ws, lambda: mock.connections, announced)
        assert mock.handshakes == 2
        assert mock.wait_closed(0).closed


async def test_a_message_of_exactly_the_limit_is_delivered(backend: ModuleType, mock: Any) -> None:
    async with backend.connect(mock.url, **options(max_message_size=SMALL_LIMIT)) as ws:
        mock.fault("oversize", size=SMALL_LIMIT)
        event = await next_of(ws, (backend.Unknown, backend.Reconnecting))
        assert isinstance(event, backend.Unknown)  # {"e":"oversize",...}: no known shape
        assert len(event.raw.encode()) == SMALL_LIMIT
        ws.ping(id=2)
        assert (await next_of(ws, backend.Pong)).id == 2
        assert ws.stats.reconnects == 0 and mock.handshakes == 1


async def test_default_limit_is_4_mib(backend: ModuleType, mock: Any) -> None:
    """With the default config: 4 MiB passes, 4 MiB + 1 fails the connection."""
    limit = 4 * 1024 * 1024
    async with backend.connect(mock.url, **options()) as ws:
        ws.subscribe([TOPIC])
        mock.fault("oversize", size=limit)
        event = await next_of(ws, (backend.Unknown, backend.Reconnecting))
        assert isinstance(event, backend.Unknown) and len(event.raw) == limit
        del event
        mock.fault("oversize", size=limit + 1)
        await assert_fails_and_recovers(backend, ws, lambda: mock.connections, limit + 1)


# --- memory: the fake exchange in a child process -------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import json, sys
    from bullet_ws.testing import MockExchange
    mock = MockExchange(rate=50.0).start()
    print(json.dumps(mock.url), flush=True)
    for line in sys.stdin:
        op, args = json.loads(line)
        if op == "fault":
            out = mock.fault(args.pop("kind"), **args)
        elif op == "connections":
            out = [{"frames": c.frames, "closed": c.closed} for c in mock.connections]
        elif op == "wait_closed":
            out = mock.wait_closed(args["index"]).closed
        else:
            break
        print(json.dumps(out), flush=True)
    mock.stop()
    """
)


class RemoteRecord:
    def __init__(self, d: dict[str, Any]) -> None:
        self.frames: list[str] = d["frames"]
        self.closed: bool = d["closed"]


class RemoteMock:
    """`MockExchange` in a child process, driven over a pipe (a few calls of its API)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url: str = json.loads(self._line())

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the mock child process died"
        return line

    def _call(self, op: str, **args: Any) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps([op, args]) + "\n")
        self.proc.stdin.flush()
        return json.loads(self._line())

    def fault(self, kind: str, **params: Any) -> int:
        return int(self._call("fault", kind=kind, **params))

    @property
    def connections(self) -> list[RemoteRecord]:
        return [RemoteRecord(d) for d in self._call("connections")]

    def wait_closed(self, index: int) -> bool:
        return bool(self._call("wait_closed", index=index))

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def remote_mock() -> Iterator[RemoteMock]:
    mock = RemoteMock()
    try:
        yield mock
    finally:
        mock.close()


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc/self/statm: pages)."""
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


MIB = 1024 * 1024
ALLOWED_GROWTH = 8 * MIB


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
@pytest.mark.parametrize(
    ("kind", "params", "announced"),
    [
        ("huge_header", {"length": 2**40}, 2**40),
        # Sent in full by the peer (64 MiB) while the limit is the default 4 MiB.
        ("oversize", {"size": 64 * MIB}, 64 * MIB),
    ],
    ids=["huge-header-2**40", "oversize-64MiB"],
)
async def test_memory_does_not_grow_by_the_announced_size(
    backend: ModuleType, remote_mock: RemoteMock, kind: str, params: dict[str, Any], announced: int
) -> None:
    async with backend.connect(remote_mock.url, **options()) as ws:
        ws.subscribe([TOPIC])
        await next_of(ws, backend.AggTrade)
        # Warm up the reconnect path once so that its one-off allocations are not counted.
        remote_mock.fault("oversize", size=4 * MIB + 1)
        await assert_fails_and_recovers(backend, ws, lambda: remote_mock.connections, 4 * MIB + 1)
        before = rss_bytes()
        for _ in range(3):
            assert remote_mock.fault(kind, **params) == 1
            await assert_fails_and_recovers(backend, ws, lambda: remote_mock.connections, announced)
        growth = rss_bytes() - before
        assert growth < ALLOWED_GROWTH, f"RSS grew by {growth / MIB:.1f} MiB"


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
async def test_memory_measurement_control(backend: ModuleType, remote_mock: RemoteMock) -> None:
    """Control for the test above: with the limit raised to 128 MiB, the same 64 MiB message is
    delivered and, while its event is held, RSS does show it (so the measurement can fail)."""
    async with backend.connect(remote_mock.url, **options(max_message_size=128 * MIB)) as ws:
        ws.ping(id=1)
        await next_of(ws, backend.Pong)
        before = rss_bytes()
        remote_mock.fault("oversize", size=64 * MIB)
        event = await next_of(ws, (backend.Unknown, backend.Reconnecting), timeout=30)
        assert isinstance(event, backend.Unknown) and len(event.raw) == 64 * MIB
        assert rss_bytes() - before > 32 * MIB
