"""Shared pytest setup: the `backend` fixture that runs every behavioural test twice.

`backend` yields the module under test: `bullet_ws` (native: the Rust core) or `bullet_ws.pure`
(asyncio + websockets). Both export the same public names (API.md), so a test written against
`backend.X` checks that both backends behave alike.
"""

from __future__ import annotations

import importlib
import os
import pathlib
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

# Run from a plain checkout too: put python/ on the path when bullet_ws is not installed.
_PYTHON_SRC = pathlib.Path(__file__).resolve().parent.parent / "python"
try:
    import bullet_ws  # noqa: F401
except ImportError:
    sys.path.insert(0, str(_PYTHON_SRC))

if sys.version_info < (3, 11):
    # The tests bound their waits with asyncio.timeout (3.11+); requires-python says 3.10, so the
    # suite runs there too, with a stand-in of the same behaviour.
    import asyncio

    from support import timeout_310

    asyncio.timeout = timeout_310  # type: ignore[attr-defined]

# BULLET_WS_TEST_LOOP=uvloop|no_add_reader runs every async test on that loop (scripts/release-check
# does, to cover the native backend's fallback for loops without add_reader). The hook is
# pytest-asyncio's (1.x); it is defined only when asked for, as returning None is an error.
_TEST_LOOP = os.environ.get("BULLET_WS_TEST_LOOP", "asyncio")
if _TEST_LOOP != "asyncio":
    from support import loop_factory

    def pytest_asyncio_loop_factories(config: Any, item: Any) -> dict[str, Any]:
        return {_TEST_LOOP: loop_factory(_TEST_LOOP)}


DATA_DIR = pathlib.Path(__file__).resolve().parent / "data"


def _native_backend() -> ModuleType:
    """`bullet_ws` with its native core, or a skip saying why it is not available."""
    try:
        importlib.import_module("bullet_ws._core")
    except ImportError as exc:
        pytest.skip(f"native backend unavailable: bullet_ws._core not importable ({exc})")
    module = importlib.import_module("bullet_ws")
    if not hasattr(module, "connect") or not hasattr(module, "parse_message"):
        pytest.skip("native backend unavailable: bullet_ws does not export the API yet")
    return module


@pytest.fixture(params=["native", "pure"])
def backend(request: pytest.FixtureRequest) -> ModuleType:
    if request.param == "native":
        return _native_backend()
    return importlib.import_module("bullet_ws.pure")


@pytest.fixture
def native() -> ModuleType:
    return _native_backend()


@pytest.fixture
def pure() -> ModuleType:
    return importlib.import_module("bullet_ws.pure")


def sample_lines(name: str) -> list[str]:
    """The non-empty lines of tests/data/<name>.jsonl."""
    text = (DATA_DIR / f"{name}.jsonl").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


# --- the peer: the fake exchange ----------------------------------------------------------------


@pytest.fixture
def mock_factory() -> Iterator[Callable[..., Any]]:
    """Start `bullet_ws.testing.MockExchange`s with options; all are stopped after the test."""
    testing = pytest.importorskip("bullet_ws.testing", reason="the fake exchange is not built")
    started: list[Any] = []

    def start(**options: Any) -> Any:
        try:
            mock = testing.MockExchange(**options).start()
        except RuntimeError as e:  # the native extension (and its fake exchange) is missing
            pytest.skip(str(e))
        started.append(mock)
        return mock

    yield start
    for mock in started:
        mock.stop()


@pytest.fixture
def procs() -> Iterator[list[Any]]:
    """Subprocesses (`support.Proc`) a test started; killed after it."""
    started: list[Any] = []
    yield started
    for p in started:
        p.kill()


@pytest.fixture
def mock(mock_factory: Callable[..., Any]) -> Any:
    """A fake exchange streaming 200 market messages a second per connection."""
    return mock_factory(rate=200.0)
