"""The rules both backends share are one fact each: every constant of `bullet_ws._policy` (which the
pure backend uses) equals the native core's (a drift would make the two backends behave
differently without any test noticing)."""

from __future__ import annotations

import ast
import inspect
from types import ModuleType

import pytest
from bullet_ws import _policy, _validate, config
from bullet_ws.pure import book, latency, managed, rotation, transport

# `_policy` name -> `_core` name: every constant the pure backend takes from `_policy`.
SHARED = {
    "STOP_GRACE": "STOP_GRACE",
    "COMMAND_QUEUE_CAPACITY": "COMMAND_CAPACITY",
    "MIN_BACKOFF": "MIN_BACKOFF",
    "KEEPALIVE_ID_BASE": "KEEPALIVE_ID_BASE",
    "MAX_OUTSTANDING_KEEPALIVES": "MAX_OUTSTANDING_KEEPALIVES",
    "RESUBSCRIBE_EVERY": "RESUBSCRIBE_EVERY",
    "BOOK_UNREAD_GRACE": "BOOK_UNREAD_GRACE",
    "ROTATION_CATCH_UP": "ROTATION_CATCH_UP",
    "ROTATION_DRAIN": "ROTATION_DRAIN",
    "ROTATION_MIN_RETRY": "ROTATION_MIN_RETRY",
    "ROTATION_MAX_HELD": "ROTATION_MAX_HELD",
    "DROP_WARNING_INTERVAL": "DROP_WARNING_INTERVAL",
    "CLOSE_GRACE": "CLOSE_GRACE",
    "LATENCY_WINDOW": "LATENCY_WINDOW",
}


@pytest.mark.parametrize(("ours", "theirs"), SHARED.items(), ids=list(SHARED))
def test_policy_constant_equals_the_native_core(native: ModuleType, ours: str, theirs: str) -> None:
    from bullet_ws import _core

    value, native_value = getattr(_policy, ours), getattr(_core, theirs)
    assert type(value) is type(native_value)
    assert value == native_value


def test_every_constant_of_policy_is_held(native: ModuleType) -> None:
    constants = {
        name
        for name in _policy.__all__
        if name.isupper() and not isinstance(getattr(_policy, name), str)
    }
    assert constants == set(SHARED)


def test_config_bounds_equal_the_native_core(native: ModuleType) -> None:
    from bullet_ws import _core

    assert (config.MAX_DURATION, config.MAX_SIZE) == (_core.MAX_DURATION, _core.MAX_SIZE)


# What the pure backend called its copies before `_policy` held them.
_FORMER_NAMES = {"MIN_ROTATION_RETRY", "MAX_HELD"}


@pytest.mark.parametrize("module", [managed, book, latency, rotation, transport, _validate])
def test_the_pure_backend_keeps_no_copy(module: ModuleType) -> None:
    """A shared constant is written in `_policy` only: no module-level literal of that name."""
    tree = ast.parse(inspect.getsource(module))
    copies = [
        target.id
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name) and target.id.lstrip("_") in set(SHARED) | _FORMER_NAMES
    ]
    assert copies == [], module.__name__
