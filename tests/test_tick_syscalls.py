"""One thread hop in, none out, counted by the kernel: `benches/tick_syscalls.py` traces S5's
native worker, and a tick's reads and its order's write happen on the event loop's thread alone.
A tick that woke the socket's thread (reads back on it, or an order queued to it) shows there as
a `recvfrom` or a `sendto` per tick."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benches" / "tick_syscalls.py"
TICKS = 40

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")


def test_a_tick_and_its_order_cost_the_loop_thread_one_wait_and_no_other_thread_a_call(
    native: object, tmp_path: Path
) -> None:
    # The workers name their loop and their `loop_reads` themselves: the suite's variables for
    # those do not change what is counted.
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--ticks", str(TICKS), "--loops", "asyncio"]
        + ["--contenders", "native,native-handler", "--out", str(tmp_path)],
        cwd=SCRIPT.parent,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0 and "Operation not permitted" in done.stderr:
        pytest.skip("ptrace is not permitted here")
    assert done.returncode == 0, done.stdout + done.stderr
    (result,) = tmp_path.glob("syscalls-*.json")
    rows = json.loads(result.read_text())["syscalls_per_tick"]
    assert set(rows) == {"native|asyncio", "native-handler|asyncio"}
    for name, row in rows.items():
        on_loop, others = row["loop_thread"], row["other_threads"]
        # One wake-up of the loop per message (the tick, its ack): a wake that took a second
        # pass of the loop (a scheduled callback) would add a wait.
        assert 1.5 <= on_loop.get("epoll_wait", 0) <= 2.5, (name, on_loop)
        # The tick and its ack read, the order written, each once, where the handler runs.
        assert 1.5 <= on_loop.get("recvfrom", 0) <= 2.5, (name, on_loop)
        assert 0.5 <= on_loop.get("sendto", 0) <= 1.5, (name, on_loop)
        for call in ("recvfrom", "sendto", "recvmsg", "sendmsg", "writev"):
            assert others.get(call, 0) < 0.5, (name, call, others)
