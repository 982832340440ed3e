"""`ManagedWsConfig.loop_reads` (issue 15, on by default): the event loop's thread reads and parses
the socket itself. The native suite also runs with it off (`BULLET_WS_TEST_LOOP_READS=0`, in
scripts/test); these tests check what is particular to it: the loop does read (`Stats.loop_reads`),
a blocked loop or a flood hands the reads to the socket's thread and the loop claims them again,
and nothing is lost, repeated or reordered on the way. The pure backend accepts and ignores it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from bullet_ws import ManagedWsConfig, OrderUnacked
from bullet_ws._policy import ROTATION_CATCH_UP, ROTATION_DRAIN
from support import WAIT, next_of, options, run_with_loop

pytestmark = pytest.mark.timeout(60)

# The loop reads only a socket it can watch (`add_reader`): on a loop without it
# (BULLET_WS_TEST_LOOP=no_add_reader) every read stays with the socket's thread.
needs_add_reader = pytest.mark.skipif(
    os.environ.get("BULLET_WS_TEST_LOOP") == "no_add_reader",
    reason="the loop reads the socket only where it has add_reader",
)

TOPIC = "BTC-USD@aggTrade"
TX = "AAECAwQFBgc="


def test_loop_reads_is_validated() -> None:
    assert ManagedWsConfig().loop_reads is True
    assert ManagedWsConfig(loop_reads=False).loop_reads is False
    for bad in (1, "yes", None):
        with pytest.raises(TypeError, match="^loop_reads must be a bool"):
            ManagedWsConfig(loop_reads=bad)


def block_the_loop(mock: Any, seconds: float) -> None:
    """Holds the event loop's thread, as a consumer stuck in synchronous work would: the fake
    exchange's own blocking wait, which times out, stands in for that work."""
    with pytest.raises(TimeoutError):
        mock.wait_handshakes(99, timeout=seconds)


async def agg_ids(ws: Any, backend: ModuleType, n: int) -> list[int]:
    return [(await next_of(ws, backend.AggTrade)).agg_trade_id for _ in range(n)]


@needs_add_reader
async def test_the_loop_reads_the_stream_and_acks_settle_its_orders(
    backend: ModuleType, mock: Any
) -> None:
    ws = await backend.connect(mock.url, **options(loop_reads=True))
    ws.subscribe([TOPIC], id=1)
    ids = await agg_ids(ws, backend, 30)
    assert ids == list(range(ids[0], ids[0] + 30))
    for i in range(10):
        ws.order_place(TX, id=100 + i)
    acked = set()
    async with asyncio.timeout(WAIT):
        while len(acked) < 10:
            event = await ws.recv()
            if isinstance(event, backend.OrderResult):
                acked.add(event.id)
            assert not isinstance(event, OrderUnacked), event
    assert acked == set(range(100, 110))
    more = await agg_ids(ws, backend, 10)
    assert more[0] > ids[-1]
    if backend.__name__ == "bullet_ws":
        assert ws.stats.loop_reads > 0
    else:
        assert ws.stats.loop_reads == 0
    await ws.close()
    # Every ack was taken into the ledger: none of those orders is reported unacknowledged.
    async with asyncio.timeout(WAIT):
        rest = [e async for e in ws]
    assert not [e for e in rest if isinstance(e, OrderUnacked)]


@needs_add_reader
async def test_a_handler_gets_the_stream_read_on_the_loop(backend: ModuleType, mock: Any) -> None:
    async with backend.connect(mock.url, **options(loop_reads=True)) as ws:
        got: list[int] = []
        done = asyncio.Event()

        def on_event(event: Any) -> None:
            if isinstance(event, backend.AggTrade):
                got.append(event.agg_trade_id)
                if len(got) == 50:
                    done.set()

        ws.set_handler(on_event)
        ws.subscribe([TOPIC], id=1)
        async with asyncio.timeout(WAIT):
            await done.wait()
        ws.set_handler(None)
        assert got[:50] == list(range(got[0], got[0] + 50))
        if backend.__name__ == "bullet_ws":
            assert ws.stats.loop_reads > 0


@needs_add_reader
async def test_a_blocked_loop_hands_the_reads_back_and_claims_them_again(
    native: ModuleType, mock_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bullet_ws")
    mock = mock_factory(rate=200.0, ping_interval=0.05)
    async with native.connect(mock.url, **options(loop_reads=True)) as ws:
        ws.subscribe([TOPIC], id=1)
        ids = await agg_ids(ws, native, 20)
        assert ws.stats.loop_reads > 0
        received, on_loop = ws.stats.messages_received, ws.stats.loop_reads
        pongs = mock.connection(0).pongs
        block_the_loop(mock, 0.6)
        # The socket's thread took the reads over during the block: it parsed messages the loop
        # did not, and answered the exchange's pings.
        stats = ws.stats
        assert stats.loop_reads == on_loop
        assert stats.messages_received - received >= 20
        assert mock.connection(0).pongs - pongs >= 3
        # Then the loop, waiting again, claims the reads back.
        after = await agg_ids(ws, native, 150)
        assert ws.stats.loop_reads > on_loop
        # Not one message lost, repeated or reordered across both hand-overs.
        stream = ids + after
        assert stream == list(range(stream[0], stream[0] + len(stream)))
        assert ws.stats.events_dropped == 0 and ws.stats.reconnects == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("did not read the socket in time" in m for m in messages), messages


@needs_add_reader
async def test_the_loop_reads_again_after_a_reconnect_and_a_rotation(
    native: ModuleType, mock: Any
) -> None:
    async with native.connect(mock.url, **options(loop_reads=True)) as ws:
        ws.subscribe([TOPIC], id=1)
        await agg_ids(ws, native, 10)
        assert mock.fault("reset") == 1
        await next_of(ws, native.Reconnected)
        # The loop claims the reads when its consumer next sleeps: on a busy machine the task may
        # have queued the first messages of the new connection before that.
        on_loop = ws.stats.loop_reads
        async with asyncio.timeout(WAIT):
            while ws.stats.loop_reads == on_loop:
                await agg_ids(ws, native, 1)
        # A `disconnecting` notice read on the loop starts the rotation on the socket's thread,
        # which reads every message until the rotation is over (its filter needs them all).
        mock.fault("disconnecting", reason="max_duration", delay=1.0)
        await next_of(ws, native.Rotated)
        on_loop = ws.stats.loop_reads
        ids: list[int] = []
        async with asyncio.timeout(ROTATION_CATCH_UP + ROTATION_DRAIN + WAIT):
            while ws.stats.loop_reads == on_loop or len(ids) < 30:
                ids += await agg_ids(ws, native, 1)
        assert ids == sorted(set(ids))
        assert ws.stats.rotations == 1 and ws.stats.reconnects == 1


async def test_reads_go_back_and_forth_without_a_gap_or_a_reorder(
    native: ModuleType, mock_factory: Callable[..., Any]
) -> None:
    """Many hand-overs under a fast stream: the loop claims the reads while the socket's thread
    may still hold a burst it read, which must reach the queue first."""
    mock = mock_factory(rate=8000.0)
    async with native.connect(mock.url, **options(loop_reads=True)) as ws:
        ws.subscribe([TOPIC], id=1)
        stream = await agg_ids(ws, native, 50)
        for _ in range(30):
            block_the_loop(mock, 0.11)
            stream += await agg_ids(ws, native, 1000)
        assert stream == list(range(stream[0], stream[0] + len(stream)))
        assert ws.stats.events_dropped == 0 and ws.stats.reconnects == 0


async def test_a_flood_goes_to_the_socket_thread_and_arrives_whole(
    native: ModuleType, mock_factory: Callable[..., Any]
) -> None:
    """A read that finds more than a burst's worth hands the reads to the socket's thread,
    which parses in parallel with the loop; the loop claims them again when it next waits."""
    n = 20_000
    mock = mock_factory(rate=1e6, symbols=["BTC-USD"], max_messages=n)
    async with native.connect(mock.url, **options(loop_reads=True, channel_capacity=n)) as ws:
        ws.subscribe([TOPIC], id=1)
        stream = await agg_ids(ws, native, n)
        assert stream == list(range(stream[0], stream[0] + n))
        stats = ws.stats
        # The socket thread parsed a good part of it (how much the loop read first depends on
        # when its consumer first waited: possibly nothing).
        assert stats.loop_reads < stats.messages_received - n // 4
        assert stats.events_dropped == 0


class SocketRefusingLoop(asyncio.SelectorEventLoop):
    """Watches the first descriptor it is given (the socket's doorbell) and refuses any other, as
    a loop whose `add_reader` took an eventfd but not a socket would."""

    def __init__(self) -> None:
        super().__init__()
        self.first: Any = None
        self.refused = 0

    def add_reader(self, fd: Any, callback: Callable[..., object], *args: Any) -> None:
        if self.first is None:
            self.first = fd
        if fd != self.first:
            self.refused += 1
            raise OSError("this loop watches no sockets")
        super().add_reader(fd, callback, *args)


def test_a_loop_that_refuses_to_watch_the_socket_leaves_the_reads_with_the_task(
    native: ModuleType, mock: Any
) -> None:
    async def main() -> Any:
        async with native.connect(mock.url, **options(loop_reads=True)) as ws:
            ws.subscribe([TOPIC], id=1)
            ids = await agg_ids(ws, native, 50)
            assert ids == list(range(ids[0], ids[0] + 50))
            return ws.stats

    loops: list[SocketRefusingLoop] = []
    stats: list[Any] = []

    def loop_factory() -> SocketRefusingLoop:
        loops.append(SocketRefusingLoop())
        return loops[-1]

    async def run() -> None:
        stats.append(await main())

    run_with_loop(run, loop_factory)
    # Asked once, not at every sleep of the consumer.
    assert [loop.refused for loop in loops] == [1]
    assert stats[0].loop_reads == 0 and stats[0].events_dropped == 0
