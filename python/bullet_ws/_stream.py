"""`bullet-ws stream`: print a managed socket's events, one per line.

Each line is the event's ``repr``, or with ``--json`` a JSON object: ``{"type": <class name>, ...}``
with the event's attributes (for messages the API.md fields in table order, plus ``is_snapshot`` /
``is_success`` where the class has them; ``(price, qty)`` pairs become 2-element lists). Lifecycle
events (``Reconnecting``, ``Reconnected``, ``Disconnected``) are printed too, so the line count of
``--count N`` counts every event.

SIGINT/SIGTERM end the stream cleanly (exit 0). A failed initial connect prints one line on stderr
and exits 1; so does a permanent ``Disconnected``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import json
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from bullet_ws.errors import ConnectError
from bullet_ws.events import Disconnected

__all__ = ["StreamOptions", "event_to_dict", "run_stream"]

_DERIVED = ("is_snapshot", "is_success")


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return value


def event_to_dict(event: Any) -> dict[str, Any]:
    """``{"type": <class name>, <attribute>: <value>, ...}`` for any event of either backend."""
    out: dict[str, Any] = {"type": type(event).__name__}
    if dataclasses.is_dataclass(event) and not isinstance(event, type):
        names: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(event))
    else:
        names = tuple(getattr(type(event), "__match_args__", ()))
    for name in names:
        out[name] = _plain(getattr(event, name))
    for name in _DERIVED:
        if name not in out and hasattr(type(event), name):
            out[name] = getattr(event, name)
    return out


@dataclass
class StreamOptions:
    topics: list[str]
    url: str = "mainnet"
    json: bool = False
    count: int | None = None
    backend: str = "native"  # native | pure


def run_stream(opts: StreamOptions, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Streams until interrupted or `opts.count` events; returns the exit status."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        return asyncio.run(_stream(opts, out, err))
    except KeyboardInterrupt:  # where the loop could not take over SIGINT (e.g. Windows)
        return 0
    except BrokenPipeError:  # `bullet-ws stream ... | head`: the reader left; so do we
        # Point stdout at devnull so the interpreter's final flush does not complain again.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


async def _stream(opts: StreamOptions, out: TextIO, err: TextIO) -> int:
    bw = importlib.import_module("bullet_ws.pure" if opts.backend == "pure" else "bullet_ws")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        connecting = asyncio.ensure_future(bw.connect(opts.url))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not connecting.done():  # interrupted while connecting
            connecting.cancel()
            with contextlib.suppress(BaseException):
                await connecting
            return 0
        stopping.cancel()
        try:
            ws = connecting.result()
        except (ConnectError, OSError) as e:
            err.write(f"bullet-ws stream: cannot connect to {opts.url}: {e}\n")
            return 1
        try:
            return await _pump(ws, opts, out, err, stop)
        finally:
            await ws.close()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def _pump(ws: Any, opts: StreamOptions, out: TextIO, err: TextIO, stop: asyncio.Event) -> int:
    ws.subscribe(opts.topics)
    printed = 0
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while True:
            receiving = asyncio.ensure_future(ws.recv_batch(1024))
            await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not receiving.done():
                receiving.cancel()
                with contextlib.suppress(BaseException):
                    await receiving
                return 0
            batch = receiving.result()
            if not batch:
                return 0
            lines = []
            for event in batch:
                if opts.json:
                    lines.append(json.dumps(event_to_dict(event), separators=(",", ":")))
                else:
                    lines.append(repr(event))
                printed += 1
                if isinstance(event, Disconnected):
                    out.write("\n".join(lines) + "\n")
                    out.flush()
                    err.write(f"bullet-ws stream: disconnected: {event.reason}\n")
                    return 1
                if opts.count is not None and printed >= opts.count:
                    break
            out.write("\n".join(lines) + "\n")
            out.flush()
            if opts.count is not None and printed >= opts.count:
                return 0
    finally:
        stopping.cancel()
