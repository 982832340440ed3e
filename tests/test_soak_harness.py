"""The soak's own measuring parts (`benches/soak.py`): its RSS check tells a leak from the steps
RSS takes and gives back, and its fake exchange runs in a child process that ends with the pipe."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SOAK = Path(__file__).resolve().parent.parent / "benches" / "soak.py"


@pytest.fixture(scope="module")
def soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def series(values: list[float], every: float = 0.5) -> list[tuple[float, float]]:
    return [(i * every, v) for i, v in enumerate(values)]


def test_steps_that_come_back_are_not_growth(soak: ModuleType) -> None:
    # The shape of a native run under load (two CPU hogs): +12 MiB for a while, then back; the
    # run can end on such a step, which end-minus-start took for 11 MiB of growth.
    flat = [38.0] * 10 + [42.0] * 10 + [50.0] * 10 + [38.5] * 20 + [49.0] * 5
    assert soak.rss_growth(series([30.0] * 4 + flat), warmup=2.0) == 0.5


def test_a_rising_floor_is_growth(soak: ModuleType) -> None:
    ramp = [38.0 + 0.5 * i + (6.0 if i % 7 == 0 else 0.0) for i in range(60)]
    assert soak.rss_growth(series(ramp), warmup=2.0) > 15.0


def test_the_warm_up_is_not_counted(soak: ModuleType) -> None:
    assert soak.rss_growth(series([10.0, 20.0, 30.0] + [40.0] * 30), warmup=1.5) == 0.0


def test_the_child_exchange_answers_and_ends_with_its_pipe(soak: ModuleType) -> None:
    pytest.importorskip("bullet_ws._core")
    exchange = soak.ChildExchange(rate=10.0)
    try:
        assert exchange.url.startswith("ws://127.0.0.1:")
        assert exchange.call("handshakes") == 0
        assert exchange.call("fault", "refuse", scope="next") == 1
        assert exchange.call("refusing") is False
        with pytest.raises(ValueError, match="scope must be"):
            exchange.call("fault", "close", scope=1)
        assert exchange.call("connections") == []
    finally:
        exchange.stop()
    assert exchange.proc.returncode == 0


def test_a_child_exchange_that_does_not_answer_is_an_error_not_a_hang(
    soak: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("bullet_ws._core")
    exchange = soak.ChildExchange(rate=10.0)
    monkeypatch.setattr(soak, "REPLY_TIMEOUT", 0.5)
    try:
        # Blocks in the child for 5 s, past the reply timeout.
        with pytest.raises(RuntimeError, match="did not answer within 0.5 s"):
            exchange.call("wait_handshakes", 1, timeout=5.0)
    finally:
        exchange.stop()
    assert exchange.proc.returncode is not None
