"""The fault schedule: when each fault is injected, and how the demo tells that the socket
recovered (the reconnect, the replay the fake exchange recorded, data flowing again)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bullet_ws._demo.faults import FaultRun
from bullet_ws._demo.settings import MIN_FAULT_TIME, RECOVERY_TIMEOUT, SETTLE, SYMBOLS
from bullet_ws._demo.state import DemoState


def _replay_on(mock: Any, index: int, topics: list[str]) -> str | None:
    """A description of the replay SUBSCRIBE (id null, all `topics`) the mock recorded on
    connection `index`, or None if it has none."""
    try:
        requests = mock.requests(index)
        client_id = mock.connection(index).client_id
    except IndexError:
        return None
    want = set(topics)
    for req in requests:
        method = str(req.get("method", "")).upper()
        if method == "SUBSCRIBE" and "id" in req and req["id"] is None:
            params = req.get("params")
            if isinstance(params, list) and set(params) == want:
                return f"{client_id} got SUBSCRIBE id=null with all {len(params)} topics"
    return None


def _plan(seconds: float, n: int) -> list[float]:
    warm = min(1.0, seconds * 0.1)
    reserve = min(2.5, seconds * 0.2)  # the storm's recovery and a tail of calm
    gap = max(0.5, (seconds - warm - reserve) / max(n, 1))
    return [warm + i * gap for i in range(n)]


def _healthy(st: DemoState) -> bool:
    mono = time.monotonic()
    return (
        not st.outage
        and st.market_since_reconnect > 0
        and st.last_market_at is not None
        and mono - st.last_market_at < 0.3
    )


async def _run_faults(mock: Any, ws: Any, st: DemoState, end: float, stop: asyncio.Event) -> None:
    last_recovery = 0.0
    for run in st.faults:
        start = max(run.planned_at, last_recovery + SETTLE if last_recovery else 0.0)
        # Wait for the planned time and a healthy stream (polled; nothing to await on).
        while not stop.is_set() and (st.now() < start or not _healthy(st)):
            if st.now() > end - MIN_FAULT_TIME:
                break
            await asyncio.sleep(0.02)
        if stop.is_set():
            run.status, run.detail = "skipped", "not run (interrupted)"
            continue
        if st.now() > end - MIN_FAULT_TIME or not _healthy(st):
            run.status, run.detail = "skipped", "not run (time up; try a larger --seconds)"
            continue
        run.handshakes_before = mock.handshakes
        run.reconnected_before = st.reconnected
        run.status = "running"
        st.current_fault = run
        run.injected_at = time.monotonic()
        hit = run.spec.inject(mock)
        if hit == 0:
            run.status, run.detail = "skipped", "not run (no open connection at that moment)"
            st.current_fault = None
            continue
        st.note(f"FAULT {run.spec.kind}: {run.spec.label}")
        deadline = run.injected_at + RECOVERY_TIMEOUT
        while time.monotonic() < deadline and st.disconnected is None:
            replay = _recovered(mock, ws, st, run)
            if replay is not None:
                run.status = "ok"
                run.recovered_at = st.last_reconnected_at
                run.replay = replay
                st.replay_line = replay
                st.note(f"survived {run.spec.kind}: {run.describe()}")
                break
            await asyncio.sleep(0.02)
        else:
            run.status = "FAILED"
            why = f"Disconnected({st.disconnected!r})" if st.disconnected else "no recovery"
            run.detail = f"{why} within {RECOVERY_TIMEOUT:.0f}s of the fault"
            st.note(f"FAILED {run.spec.kind}: {run.detail}")
        st.current_fault = None
        last_recovery = st.now()
        if run.status == "FAILED":
            break
    for run in st.faults:
        if run.status == "waiting":
            run.status, run.detail = "skipped", "not run (an earlier fault failed)"


def _recovered(mock: Any, ws: Any, st: DemoState, run: FaultRun) -> str | None:
    """The replay description once `run` is recovered from, else None."""
    assert run.injected_at is not None
    handshakes = mock.handshakes
    if (
        handshakes < run.handshakes_before + run.spec.connections
        or st.reconnected <= run.reconnected_before
        or st.outage
        or st.last_reconnected_at is None
        or st.last_reconnected_at < run.injected_at
        or st.market_since_reconnect == 0
        or set(ws.topics) != set(st.topics)
    ):
        return None
    latest = handshakes - 1
    if mock.connection(latest).closed:
        return None
    return _replay_on(mock, latest, st.topics)


async def _depth_gap(mock: Any, ws: Any, st: DemoState, at: float) -> None:
    """Before the connection faults: one skipped depth update, healed by a resubscribe."""
    while st.now() < at or not all(ws.book(s).is_synced for s in SYMBOLS):
        if st.now() > at + RECOVERY_TIMEOUT:
            return
        await asyncio.sleep(0.02)
    if mock.fault("depth_gap"):
        st.note("FAULT depth_gap: each depth stream skips an update; the books resubscribe")


async def _rotation(mock: Any, st: DemoState, at: float) -> None:
    """Before the connection faults: the server's 'disconnecting' notice, answered by a
    make-before-break rotation (a second connection, no gap, no Reconnecting)."""
    while st.now() < at:
        await asyncio.sleep(0.02)
    if mock.fault("disconnecting", reason="max_duration", delay=0.3):
        st.note("FAULT disconnecting (max_duration): the socket rotates to a new connection")
