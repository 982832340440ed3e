"""The faults the demo injects, and the record of each one it ran."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bullet_ws._demo.settings import STORM


@dataclass(frozen=True)
class FaultSpec:
    """One fault of the schedule.

    kind: the mock's fault kind (shown as the fault's name).
    label: what happens, for humans.
    connections: new upgrades it takes to recover (1, or the storm's drops + 1).
    inject: applies the fault to the mock; returns how many connections it hit.
    """

    kind: str
    label: str
    connections: int
    inject: Callable[[Any], int]


def _storm(mock: Any) -> int:
    mock.fault("accept_drop", scope="next", count=STORM)
    hit = int(mock.fault("fin"))
    if hit == 0:
        mock.clear_faults()
    return hit


FAULTS: tuple[FaultSpec, ...] = (
    FaultSpec(
        "close",
        "close frame 1001 'going away' from the server",
        1,
        lambda m: int(m.fault("close", code=1001, reason="demo: going away")),
    ),
    FaultSpec("reset", "TCP reset (RST), no close frame", 1, lambda m: int(m.fault("reset"))),
    FaultSpec(
        "silence",
        "zombie: connection open but silent, caught by idle_timeout",
        1,
        lambda m: int(m.fault("silence")),
    ),
    FaultSpec(
        "accept_drop",
        f"accept-then-drop storm: a FIN, then {STORM} connections dropped right after 'connected'",
        STORM + 1,
        _storm,
    ),
)


@dataclass
class FaultRun:
    """The fate of one scheduled fault."""

    spec: FaultSpec
    planned_at: float
    status: str = "waiting"  # waiting | running | ok | FAILED | skipped
    injected_at: float | None = None
    detected_at: float | None = None  # first Reconnecting after the injection
    recovered_at: float | None = None
    handshakes_before: int = 0
    reconnected_before: int = 0
    reason: str = ""  # of the first Reconnecting
    waits: list[str] = field(default_factory=list)  # Reconnecting.delay of each attempt
    replay: str = ""
    detail: str = ""

    def describe(self) -> str:
        spec = self.spec
        if self.status == "ok":
            assert self.injected_at is not None and self.recovered_at is not None
            parts = [f"recovered in {self.recovered_at - self.injected_at:.3f}s"]
            if spec.kind == "silence" and self.detected_at is not None:
                parts.append(f"idle_timeout fired after {self.detected_at - self.injected_at:.3f}s")
            if self.waits:
                parts.append("waits " + " -> ".join(self.waits) + " (backoff + jitter)")
            if self.reason:
                parts.append(f"reason {self.reason!r}")
            return "; ".join(parts)
        return self.detail or self.status
