"""Helpers shared by the behavioural tests: test-sized config and bounded waits on events."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import queue
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

WAIT = 5.0  # upper bound of any single wait for something that should happen

# BULLET_WS_TEST_LOOP_READS=0 runs every test with `loop_reads=False` (scripts/test does, on the
# native backend): the socket's thread reads the socket, and every guarantee must hold there too.
LOOP_READS = {"0": False, "1": True}.get(os.environ.get("BULLET_WS_TEST_LOOP_READS", ""))


def options(**overrides: Any) -> dict[str, Any]:
    """Test-sized config: fast backoff, idle timer off unless a test turns it on."""
    base: dict[str, Any] = {
        "initial_backoff": 0.02,
        "max_backoff": 0.2,
        "idle_timeout": 0,
        "connection_timeout": 2.0,
    }
    if LOOP_READS is not None:
        base["loop_reads"] = LOOP_READS
    base.update(overrides)
    return base


async def next_of(ws: Any, cls: type | tuple[type, ...], timeout: float = WAIT) -> Any:
    """The next event of class `cls`, skipping others; fails after `timeout` or at the end."""
    async with asyncio.timeout(timeout):
        while True:
            event = await ws.recv()
            assert event is not None, f"stream ended while waiting for {cls}"
            if isinstance(event, cls):
                return event


async def until(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll a condition on client-side state (stats, counters) with an upper bound. The short
    sleep only yields to the loop between checks; no test relies on how long it lasts."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def timeout_310(delay: float | None) -> AsyncIterator[None]:
    """`asyncio.timeout` for CPython 3.10, which lacks it; conftest installs it there. Only the
    use the tests make of it: a deadline on the enclosed awaits, raising the builtin
    TimeoutError (3.10's asyncio.TimeoutError is another class) when it passes."""
    task = asyncio.current_task()
    assert task is not None, "timeout() outside a task"
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    handle = None if delay is None else asyncio.get_running_loop().call_later(delay, expire)
    try:
        yield
    except asyncio.CancelledError:
        if expired:
            raise TimeoutError from None
        raise
    finally:
        if handle is not None:
            handle.cancel()


def run_with_loop(main: Callable[[], Any], loop_factory: Callable[[], Any] | None = None) -> None:
    """`asyncio.Runner(loop_factory=...).run(main())`, also on 3.10 (no Runner there)."""
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(main())
        return
    loop = (loop_factory or asyncio.new_event_loop)()
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main())
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


class NoReaderLoop(asyncio.SelectorEventLoop):
    """A loop without `add_reader`, as Windows' Proactor loop: the native backend must fall back
    to its ring relay thread. The loop's own transports use the private `_add_reader`, so sockets
    (the pure backend's, the test servers') work as usual."""

    def add_reader(self, fd: Any, callback: Callable[..., object], *args: Any) -> None:
        raise NotImplementedError

    def remove_reader(self, fd: Any) -> bool:
        raise NotImplementedError


def loop_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop for a kind named in tests and in BULLET_WS_TEST_LOOP: asyncio (the default),
    uvloop, or no_add_reader."""
    if kind == "asyncio":
        return None
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop  # type: ignore[no-any-return]
    if kind == "no_add_reader":
        return NoReaderLoop
    raise ValueError(f"unknown event loop kind {kind!r}")


def subprocess_env() -> dict[str, str]:
    """This environment, with the directory of the bullet_ws imported here first on PYTHONPATH:
    a subprocess imports the same bullet_ws as this process (a checkout without an install too)."""
    import bullet_ws

    root = str(pathlib.Path(bullet_ws.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.pop("PYTHONASYNCIODEBUG", None)
    return env


class Proc:
    """`python ARGS...` (this interpreter) whose stdout/stderr lines are collected by reader threads."""

    def __init__(self, *args: str) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=subprocess_env(),
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        assert self.popen.stdout is not None and self.popen.stderr is not None
        self._threads = [
            threading.Thread(target=self._read, args=(self.popen.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.popen.stderr, False), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read(self, pipe: Any, is_stdout: bool) -> None:
        for line in pipe:
            line = line.rstrip("\n")
            if is_stdout:
                self.stdout.append(line)
                self.lines.put(line)
            else:
                self.stderr.append(line)
        if is_stdout:
            self.lines.put(None)

    def next_line(self, timeout: float) -> str:
        """The next stdout line; fails the test after `timeout` seconds or at EOF."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no output line within {timeout}s; stderr: {self.stderr_text()}")
        if line is None:
            pytest.fail(
                f"stdout ended early (rc={self.popen.poll()}); stderr: {self.stderr_text()}"
            )
        return line

    def wait(self, timeout: float) -> int:
        """The exit code; fails the test (killing the process) after `timeout` seconds."""
        try:
            rc = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(
                f"did not exit within {timeout}s; stdout tail: {self.stdout[-20:]}; "
                f"stderr: {self.stderr_text()}"
            )
        for t in self._threads:
            t.join(timeout=5)
        return rc

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)

    def out_text(self) -> str:
        return "\n".join(self.stdout)

    def stderr_text(self) -> str:
        return "\n".join(self.stderr)
