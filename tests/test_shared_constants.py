"""The rules both backends share are one fact each: the pure backend's constants equal the native
core's (a drift would make the two backends behave differently without any test noticing)."""

from __future__ import annotations

from types import ModuleType

from bullet_ws import _validate
from bullet_ws.pure import book, latency, managed


def test_pure_constants_equal_the_native_core(native: ModuleType) -> None:
    from bullet_ws import _core

    assert managed.STOP_GRACE == _core.STOP_GRACE
    assert managed.COMMAND_QUEUE_CAPACITY == _core.COMMAND_CAPACITY
    assert managed.MIN_BACKOFF == _core.MIN_BACKOFF
    assert _validate.KEEPALIVE_ID_BASE == _core.KEEPALIVE_ID_BASE
    assert book.RESUBSCRIBE_EVERY == _core.RESUBSCRIBE_EVERY
    assert latency.LATENCY_WINDOW == _core.LATENCY_WINDOW
