"""The ``bullet-ws`` command line, run as real subprocesses (``sys.executable -m bullet_ws ...``).

Output is read line by line with deadlines (a reader thread per pipe feeding a queue); nothing
sleeps to synchronise. `stream` runs against a `MockExchange` started in this process.
"""

from __future__ import annotations

import json
import re
import signal
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from support import Proc

pytestmark = pytest.mark.timeout(90)

TOPICS_6 = [
    f"{s}@{stream}"
    for s in ("BTC-USD", "ETH-USD")
    for stream in ("aggTrade", "depth20", "bookTicker")
]


@pytest.fixture
def run(procs: list[Proc]) -> Any:
    def start(*args: str) -> Proc:
        p = Proc("-m", "bullet_ws", *args)
        procs.append(p)
        return p

    return start


@pytest.fixture
def mock() -> Iterator[Any]:
    testing = pytest.importorskip("bullet_ws.testing")
    try:
        exchange = testing.MockExchange(rate=200.0).start()
    except RuntimeError as e:  # no native extension: no fake exchange
        pytest.skip(str(e))
    yield exchange
    exchange.stop()


def _closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----- demo --------------------------------------------------------------------------------------


def _check_demo_output(p: Proc, backend: str) -> None:
    out = p.out_text()
    assert "Traceback" not in out + p.stderr_text()
    assert f"summary ({backend} backend" in out
    survived = set(re.findall(r"^\s*\[ok\]\s+(\w+)", out, flags=re.MULTILINE))
    assert len(survived) >= 3, out
    assert survived <= {"close", "reset", "silence", "accept_drop"}
    assert "[FAIL]" not in out
    # The replayed subscriptions: ws.topics and the mock's record of the replay SUBSCRIBE.
    topics_line = next(
        line for line in p.stdout if line.lstrip().startswith("topics ") and "ws.topics" in line
    )
    for topic in TOPICS_6:
        assert topic in topics_line
    replayed = next(line for line in p.stdout if line.lstrip().startswith("replayed "))
    m = re.search(r"SUBSCRIBE id=null with all 6 topics on (\d+) of (\d+) reconnections", replayed)
    assert m is not None, replayed
    assert int(m.group(1)) >= len(survived)
    assert len(re.findall(r"replay: ws_\d+ got SUBSCRIBE id=null with all 6 topics", out)) >= 3
    assert "result: OK" in out
    # The top of a live order book (ws.book): best bid and ask, price x quantity.
    assert re.search(r"BTC-USD \d+(\.\d+)? x \d+(\.\d+)? \| \d+(\.\d+)? x \d+(\.\d+)?", out), out


@pytest.mark.parametrize("backend", ["native", "pure"])
def test_demo_survives_faults(run: Any, backend: str) -> None:
    pytest.importorskip("bullet_ws._core", reason="the demo's fake exchange is native")
    p = run("demo", "--seconds", "9", "--backend", backend)
    rc = p.wait(timeout=60)
    assert rc == 0, p.out_text() + "\n" + p.stderr_text()
    _check_demo_output(p, backend)
    # Not a terminal: plain periodic status lines, no ANSI escapes.
    assert "\x1b[" not in p.out_text()
    assert any(re.match(r"t=\s*\d+\.\ds\s+msgs/s", line) for line in p.stdout)


def test_demo_no_faults(run: Any) -> None:
    pytest.importorskip("bullet_ws._core", reason="the demo's fake exchange is native")
    p = run("demo", "--seconds", "1.5", "--no-faults")
    assert p.wait(timeout=30) == 0, p.out_text() + p.stderr_text()
    out = p.out_text()
    assert "faults         none injected" in out
    assert "result: OK" in out


def test_demo_sigint_ends_early_with_summary(run: Any) -> None:
    pytest.importorskip("bullet_ws._core", reason="the demo's fake exchange is native")
    p = run("demo", "--seconds", "60")
    while "survived close" not in p.next_line(timeout=30):
        pass
    p.popen.send_signal(signal.SIGINT)
    assert p.wait(timeout=30) == 0, p.stderr_text()
    out = p.out_text()
    assert re.search(
        r"^summary \(native backend, [0-9.]+s, interrupted\)$", out, flags=re.MULTILINE
    )
    assert re.search(r"^\s*\[ok\]\s+close\b", out, flags=re.MULTILINE)
    assert "not run (interrupted)" in out
    assert "Traceback" not in out + p.stderr_text()


def test_demo_unreachable_url_exits_1(run: Any) -> None:
    url = f"ws://127.0.0.1:{_closed_port()}/ws"
    p = run("demo", "--url", url, "--seconds", "1")
    assert p.wait(timeout=30) == 1
    err = p.stderr_text()
    assert err.startswith(f"bullet-ws demo: cannot connect to {url}")
    assert len(p.stderr) == 1 and "Traceback" not in err


# ----- stream ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["native", "pure"])
def test_stream_json_count(run: Any, mock: Any, backend: str) -> None:
    p = run(
        "stream",
        "BTC-USD@aggTrade",
        "ETH-USD@depth5",
        "--url",
        mock.url,
        "--json",
        "--count",
        "25",
        "--backend",
        backend,
    )
    assert p.wait(timeout=30) == 0, p.stderr_text()
    assert p.stderr == []
    assert len(p.stdout) == 25
    events = [json.loads(line) for line in p.stdout]
    assert all(isinstance(e, dict) and "type" in e for e in events)
    assert events[0] == {
        "type": "SubscribeResult",
        "id": None,
        "event_time": events[0]["event_time"],
        "result": "success",
    }
    types = {e["type"] for e in events}
    assert {"AggTrade", "DepthUpdate"} <= types
    trade = next(e for e in events if e["type"] == "AggTrade")
    assert trade["symbol"] == "BTC-USD" and isinstance(trade["event_time"], int)
    assert isinstance(trade["price"], str)
    depth = next(e for e in events if e["type"] == "DepthUpdate")
    assert depth["symbol"] == "ETH-USD" and depth["is_snapshot"] is True
    assert all(isinstance(pair, list) and len(pair) == 2 for pair in depth["bids"])
    # The mock saw one SUBSCRIBE with both topics.
    subscribe = mock.requests(0)[0]
    assert subscribe["method"] == "SUBSCRIBE"
    assert subscribe["params"] == ["BTC-USD@aggTrade", "ETH-USD@depth5"]


def test_stream_repr_lines(run: Any, mock: Any) -> None:
    p = run("stream", "SOL-USD@bookTicker", "--url", mock.url, "--count", "5")
    assert p.wait(timeout=30) == 0, p.stderr_text()
    assert len(p.stdout) == 5
    assert p.stdout[0].startswith("SubscribeResult(")
    assert all(line.startswith("BookTicker(") for line in p.stdout[1:])
    assert "symbol='SOL-USD'" in p.stdout[1]


@pytest.mark.parametrize("backend", ["native", "pure"])
def test_stream_sigint_exits_cleanly(run: Any, mock: Any, backend: str) -> None:
    p = run("stream", "BTC-USD@aggTrade", "--url", mock.url, "--backend", backend)
    first = p.next_line(timeout=20)
    assert first.startswith("SubscribeResult(")
    p.popen.send_signal(signal.SIGINT)
    assert p.wait(timeout=20) == 0
    assert "Traceback" not in p.stderr_text() and "KeyboardInterrupt" not in p.stderr_text()
    assert p.stderr == []
    # The socket was closed on the way out: the mock saw the client go.
    assert mock.wait_closed(0, timeout=10).closed_by == "client"


def test_stream_shows_reconnects(run: Any, mock: Any) -> None:
    p = run("stream", "BTC-USD@aggTrade", "--url", mock.url, "--count", "200")
    assert p.next_line(timeout=20).startswith("SubscribeResult(")
    mock.fault("reset")
    lines = [p.next_line(timeout=20) for _ in range(199)]
    assert p.wait(timeout=20) == 0
    assert any(line.startswith("Reconnecting(reason=") for line in lines)
    assert any(line.startswith("Reconnected(attempts=1") for line in lines)


def test_stream_unreachable_exits_1(run: Any) -> None:
    url = f"ws://127.0.0.1:{_closed_port()}/ws"
    p = run("stream", "BTC-USD@aggTrade", "--url", url)
    assert p.wait(timeout=30) == 1
    assert p.stdout == []
    assert len(p.stderr) == 1
    assert p.stderr[0].startswith(f"bullet-ws stream: cannot connect to {url}:")


# ----- arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["demo", "--seconds", "soon"],
        ["demo", "--seconds", "-1"],
        ["demo", "--backend", "rust"],
        ["demo", "--url", "not a url"],
        ["stream"],
        ["stream", "BTC-USD"],
        ["stream", "BTC-USD@aggTrade", "--count", "0"],
        ["stream", "BTC-USD@aggTrade", "--url", "ftp://example.com"],
        ["mock-exchange", "--rate", "fast"],
    ],
)
def test_bad_arguments_exit_2_with_usage(run: Any, args: list[str]) -> None:
    p = run(*args)
    assert p.wait(timeout=30) == 2
    text = p.out_text() + "\n" + p.stderr_text()
    assert "usage: bullet-ws" in text
    assert "Traceback" not in text


def test_help_lists_the_commands(run: Any) -> None:
    p = run("--help")
    assert p.wait(timeout=30) == 0
    out = p.out_text()
    for command in ("demo", "stream", "mock-exchange"):
        assert command in out


def test_parser_in_process() -> None:
    """`python -m bullet_ws` and the `bullet-ws` script share `cli.main`; its parser knows the
    three commands and their defaults (importing `bullet_ws.__main__` runs nothing)."""
    import importlib

    from bullet_ws import cli

    importlib.import_module("bullet_ws.__main__")
    parser = cli.build_parser()
    demo = parser.parse_args(["demo"])
    assert (demo.seconds, demo.backend, demo.no_faults, demo.url) == (12.0, "native", False, None)
    stream = parser.parse_args(["stream", "A@b", "A@b", "--json", "--count", "3"])
    assert (stream.topics, stream.url, stream.json, stream.count) == (
        ["A@b", "A@b"],
        "mainnet",
        True,
        3,
    )
    assert parser.parse_args(["mock-exchange"]).run is cli.run_mock_exchange


def test_mock_exchange_server_rules_options(capsys: pytest.CaptureFixture[str]) -> None:
    """--idle-close / --max-duration reach MockExchange; an absurd value is exit 2, no panic."""
    from bullet_ws import cli

    parser = cli.build_parser()
    args = parser.parse_args(["mock-exchange", "--idle-close", "60", "--max-duration", "0.5"])
    assert (args.idle_close, args.max_duration) == (60.0, 0.5)
    assert (parser.parse_args(["mock-exchange"]).idle_close, args.run) == (
        None,
        cli.run_mock_exchange,
    )
    for bad in (["--idle-close", "1e300"], ["--max-duration", "-1"], ["--idle-close", "nan"]):
        assert cli.run_mock_exchange(parser.parse_args(["mock-exchange", *bad])) == 2
        err = capsys.readouterr().err
        assert bad[0][2:].replace("-", "_") in err and "Traceback" not in err, err
