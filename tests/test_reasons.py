"""The same event gives the same reason text on both backends, word for word (`Reconnecting.reason`,
the text users log and match on): the pure backend speaks the native backend's words, which
`bullet_ws._policy` holds (tests/test_policy.py checks the templates themselves)."""

from __future__ import annotations

import asyncio
import logging
import re
from types import ModuleType
from typing import Any

import pytest
from support import WAIT, options, until

pytestmark = pytest.mark.timeout(30)

CASES = [
    ("close", {}, {}, "closed by server (1000)"),
    ("close", {"code": 4000, "reason": "bye"}, {}, "closed by server (4000): bye"),
    ("reset", {}, {}, "transport error: connection reset by peer"),
    ("fin", {}, {}, "stream ended without a close frame"),
    ("silence", {}, {"idle_timeout": 0.3}, "no message within idle_timeout (0.300s)"),
]


@pytest.mark.parametrize(
    ("kind", "params", "config", "reason"),
    CASES,
    ids=[c[3].split(" (")[0] + f"-{i}" for i, c in enumerate(CASES)],
)
async def test_reconnecting_reasons_are_exact(
    backend: ModuleType,
    mock: Any,
    kind: str,
    params: dict[str, Any],
    config: dict[str, Any],
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


# The failure the mock's `wrong_first` fault gives an attempt, the same words on both backends.
WRONG_FIRST = "first message was not status/connected: got Pong"


async def test_each_attempt_is_announced_with_why_it_is_made(
    backend: ModuleType, mock: Any
) -> None:
    """One `Reconnecting` per attempt, numbered from 1: the loss for the first, then the failure
    of the attempt before; `Reconnected.attempts` counts the same attempts."""
    async with backend.connect(mock.url, **options()) as ws:
        mock.fault("wrong_first", scope="next", count=2, data='{"e":"pong","id":1,"E":5}')
        mock.fault("reset")
        announced = []
        async with asyncio.timeout(WAIT):
            while not isinstance(event := await ws.recv(), backend.Reconnected):
                if isinstance(event, backend.Reconnecting):
                    announced.append((event.attempt, event.reason))
    assert announced == [
        (1, "transport error: connection reset by peer"),
        (2, f"reconnect attempt 1 failed: {WRONG_FIRST}"),
        (3, f"reconnect attempt 2 failed: {WRONG_FIRST}"),
    ]
    assert event.attempts == 3


_LOGGED_ATTEMPT = re.compile(r"reconnect attempt (\d+) in ([0-9.]+)s \(backoff ([0-9.]+)s\)")


async def test_delay_is_the_logged_wait_and_follows_the_backoff(
    backend: ModuleType, mock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """`delay` is what the socket waits before the attempt (the log says the same, to the ms):
    the base (0.02 s doubling to the 0.2 s cap) plus up to 50 % of it."""
    caplog.set_level(logging.INFO, logger="bullet_ws")
    initial, cap, retries = 0.02, 0.2, 5
    async with backend.connect(
        mock.url, **options(initial_backoff=initial, max_backoff=cap, max_retries=retries)
    ) as ws:
        mock.refusing = True
        mock.fault("reset")
        announced = []
        async with asyncio.timeout(WAIT):
            while not isinstance(event := await ws.recv(), backend.Disconnected):
                if isinstance(event, backend.Reconnecting):
                    announced.append(event)

        def logged() -> dict[int, tuple[str, str]]:
            found = (_LOGGED_ATTEMPT.search(r.getMessage()) for r in caplog.records)
            return {int(m[1]): (m[2], m[3]) for m in found if m}

        await until(lambda: len(logged()) >= retries)  # native logs reach Python on the loop
    assert [e.attempt for e in announced] == list(range(1, retries + 1))
    for event in announced:
        base = min(initial * 2 ** (event.attempt - 1), cap)
        assert base <= event.delay <= base * 1.5 + 1e-9, event
        assert logged()[event.attempt] == (f"{event.delay:.3f}", f"{base:.3f}"), event


async def test_an_outage_reads_in_order(backend: ModuleType, mock: Any) -> None:
    """API.md's order: the books are out of sync when the first `Reconnecting` arrives; the orders
    left without an ack follow it at once; then the next attempts, then `Reconnected`."""
    symbol = "BTC-USD"
    async with backend.connect(mock.url, **options()) as ws:
        ws.subscribe([f"{symbol}@depth5"])
        await until(lambda: ws.book(symbol).is_synced)
        mock.fault("silence")  # no ack from now on
        ws.order_place("AAECAwQFBgc=", id=7)
        await mock.wait_frames_async(0, 2)  # the subscribe and the order were read
        mock.fault("wrong_first", scope="next", data='{"e":"pong","id":1,"E":5}')
        mock.fault("reset")
        lifecycle = []
        async with asyncio.timeout(WAIT):
            while not isinstance(event := await ws.recv(), backend.Reconnected):
                if isinstance(event, backend.Reconnecting) and event.attempt == 1:
                    synced_at_first = ws.book(symbol).is_synced
                if not isinstance(event, (backend.Message, backend.BookResynced)):
                    lifecycle.append(event)
    lost = "transport error: connection reset by peer"
    assert [type(e).__name__ for e in lifecycle] == [
        "Reconnecting",
        "OrderUnacked",
        "Reconnecting",
    ]
    assert (lifecycle[0].reason, lifecycle[0].attempt) == (lost, 1)
    assert lifecycle[1] == backend.OrderUnacked(
        7, "place", f"connection lost before the ack: {lost}"
    )
    assert (lifecycle[2].reason, lifecycle[2].attempt) == (
        f"reconnect attempt 1 failed: {WRONG_FIRST}",
        2,
    )
    assert not synced_at_first


TIMED_OUT = "no `connected` status within connection_timeout (0.300s)"


async def test_a_connect_timeout_reads_the_same(backend: ModuleType, mock: Any) -> None:
    """At the first connect (the ConnectTimeout's text) and as a failed attempt's reason."""
    mock.fault("no_status", scope="next")
    with pytest.raises(backend.ConnectTimeout) as info:
        await backend.connect(mock.url, **options(connection_timeout=0.3))
    assert str(info.value) == TIMED_OUT
    async with backend.connect(mock.url, **options(connection_timeout=0.3)) as ws:
        mock.fault("no_status", scope="next")
        mock.fault("reset")
        reasons = []
        async with asyncio.timeout(WAIT):
            while not isinstance(event := await ws.recv(), backend.Reconnected):
                if isinstance(event, backend.Reconnecting):
                    reasons.append(event.reason)
    assert reasons == [
        "transport error: connection reset by peer",
        f"reconnect attempt 1 failed: {TIMED_OUT}",
    ]


def test_a_connection_the_pure_backend_failed_reads_why_from_its_close_frame() -> None:
    """websockets 16 (what pip installs on Python 3.10) raises the ConnectionClosed of a connection
    it failed itself (a frame over `max_size`, invalid UTF-8) without the cause that 17 chains:
    the close frame it sent says why, and the reason must say it too, not "stream ended"."""
    from bullet_ws._policy import STREAM_ENDED
    from bullet_ws.pure.transport import close_reason
    from websockets.exceptions import ConnectionClosedError
    from websockets.frames import Close

    too_big = "frame with 1099511627776 bytes exceeds limit of 4194304 bytes"
    reason = close_reason(ConnectionClosedError(None, Close(1009, too_big)))
    assert reason == f"transport error: {too_big} (1009)"
    bad_text = "invalid start byte at position 0"
    reason = close_reason(ConnectionClosedError(None, Close(1007, bad_text)))
    assert reason == f"transport error: {bad_text} (1007)"
    # A close of ours that the server did not answer is still a stream that ended.
    assert close_reason(ConnectionClosedError(None, Close(1000, ""))) == STREAM_ENDED
