"""Argument validation used by both backends, so that bad input fails identically.

Every error message starts with the argument's name.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

from bullet_ws._policy import KEEPALIVE_ID_BASE

__all__ = [
    "MAX_ID",
    "conflate_arg",
    "count_arg",
    "handler_arg",
    "id_arg",
    "max_events_arg",
    "symbol_arg",
    "topics_arg",
    "tx_arg",
]

# The top 2**32 ids of u64 belong to keepalive pings (`_policy.KEEPALIVE_ID_BASE`): refusing them
# here means a keepalive's pong can be swallowed without ever hiding a user's.
MAX_ID = KEEPALIVE_ID_BASE - 1
# Standard alphabet, whole 4-character groups, padding only at the end. The rule; `_is_base64`
# applies it.
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def _matches_base64(tx: str) -> bool:
    return _BASE64.fullmatch(tx) is not None


# `strict_mode` came in 3.11.
if sys.version_info >= (3, 11):

    def _decodes_base64(tx: str) -> bool:
        """`_BASE64`'s rule in C, on an order's hot path: 1.5x (44 characters) to 2.5x (400)
        faster than the regex (`tests/test_shared_modules.py` checks the two agree). The
        decoder's strict mode alone lets through padding after a whole group ("AAAA=",
        "AAAA====")."""
        n = len(tx)
        if n % 4 or tx.find("=", 0, n - 2) >= 0:
            return False
        try:
            binascii.a2b_base64(tx, strict_mode=True)
        except (binascii.Error, ValueError):
            return False
        return True

    _is_base64 = _decodes_base64
else:
    _is_base64 = _matches_base64


def topics_arg(topics: object) -> list[str]:
    """An iterable (not a bare str/bytes) of non-empty topic strings containing "@".

    Returns plain `str`s with duplicates collapsed, first occurrence first.
    """
    if isinstance(topics, (str, bytes, bytearray, memoryview)):
        raise TypeError(
            f"topics must be an iterable of str (e.g. a list), not a bare {type(topics).__name__}"
        )
    if not isinstance(topics, Iterable):
        raise TypeError(f"topics must be an iterable of str, got {type(topics).__name__}")
    unique: dict[str, None] = {}
    for index, topic in enumerate(topics):
        if not isinstance(topic, str):
            raise TypeError(f"topics[{index}] must be a str, got {type(topic).__name__}")
        if "@" not in topic:
            raise ValueError(f"topics[{index}] must look like 'SYMBOL@stream', got {topic!r}")
        if not topic.isascii():
            try:
                topic.encode()
            except UnicodeEncodeError:
                # A lone surrogate has no UTF-8 form: it could never be sent.
                raise ValueError(
                    f"topics[{index}] must be valid Unicode (no lone surrogates), got {topic!r}"
                ) from None
        unique[str(topic)] = None
    return list(unique)


# What `subscribe(..., conflate=True)` takes: topics whose messages each supersede the last.
_CONFLATABLE = re.compile(r"[^@!][^@]*@(?:bookTicker|markPrice|depth(?:5|10|20))")


def conflate_arg(topics: list[str], conflate: object) -> bool:
    """A bool; True only when every topic (from `topics_arg`) is a bookTicker, markPrice or
    depth topic of one symbol."""
    if not isinstance(conflate, bool):
        raise TypeError(f"conflate must be a bool, got {type(conflate).__name__}")
    if conflate:
        for topic in topics:
            if _CONFLATABLE.fullmatch(topic) is None:
                raise ValueError(
                    f"conflate: {topic!r} cannot be conflated (only SYMBOL@bookTicker,"
                    f" SYMBOL@markPrice and SYMBOL@depth5|10|20 topics can)"
                )
    return conflate


def id_arg(id: object) -> int | None:
    """None or an int (not bool) in 0..2**64-2**32-1 (the rest is reserved for keepalives)."""
    if id is None:
        return None
    if isinstance(id, bool) or not isinstance(id, int):
        raise TypeError(f"id must be an int or None, got {type(id).__name__}")
    if not 0 <= id <= MAX_ID:
        if KEEPALIVE_ID_BASE <= id < 2**64:
            raise ValueError(
                f"id must be in 0..2**64-2**32-1: the top 2**32 ids are reserved for keepalive"
                f" pings, got {id}"
            )
        raise ValueError(f"id must be in 0..2**64-2**32-1, got {id}")
    return int(id)


def tx_arg(tx: object) -> str:
    """A signed transaction: raw bytes (base64-encoded here) or a base64 `str`."""
    if isinstance(tx, (bytes, bytearray, memoryview)):
        raw = bytes(tx)
        if not raw:
            raise ValueError("tx must not be empty")
        return base64.b64encode(raw).decode("ascii")
    if not isinstance(tx, str):
        raise TypeError(f"tx must be a base64 str or bytes, got {type(tx).__name__}")
    if not tx:
        raise ValueError("tx must not be empty")
    if not _is_base64(tx):
        shown = tx if len(tx) <= 40 else tx[:37] + "..."
        raise ValueError(f"tx must be standard base64 with padding, got {shown!r}")
    return tx


def max_events_arg(n: object) -> int:
    """An int >= 1."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"max_events must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"max_events must be >= 1, got {n}")
    return int(n)


def handler_arg(handler: object) -> Callable[[Any], object] | None:
    """None or a callable; a coroutine function is refused: it would never be awaited."""
    if handler is None:
        return None
    if not callable(handler):
        raise TypeError(f"handler must be a callable or None, got {type(handler).__name__}")
    if inspect.iscoroutinefunction(handler):
        raise TypeError(
            "handler must be a plain function: it is called on the loop's thread for each "
            "event and its result is not awaited (got a coroutine function)"
        )
    return handler


def count_arg(n: object) -> int | None:
    """`n` of `OrderBook.bids(n)`/`asks(n)`: None (all levels) or an int >= 0."""
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int or None, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return int(n)


def symbol_arg(symbol: object) -> str:
    """A symbol, as in the depth topic (`BTC-USD` of `BTC-USD@depth10`)."""
    if not isinstance(symbol, str):
        raise TypeError(f"symbol must be a str, got {type(symbol).__name__}")
    return str(symbol)
