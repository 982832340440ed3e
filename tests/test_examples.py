"""The user examples of `examples/`, run as real scripts against the fake exchange (in this process).

Each test starts a `MockExchange`, runs one example as a subprocess on both backends (`--pure`),
reads its output line by line with deadlines, injects faults at points the output tells, and checks
what the mock recorded. Nothing sleeps to synchronise.
"""

from __future__ import annotations

import base64
import csv
import json
import pathlib
import re
import signal
from typing import Any

import pytest
from support import Proc

pytestmark = pytest.mark.timeout(120)

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
LINE_WAIT = 20.0  # upper bound for one expected line (a loaded CI machine)


@pytest.fixture(params=["native", "pure"])
def backend_flag(request: pytest.FixtureRequest) -> list[str]:
    return ["--pure"] if request.param == "pure" else []


@pytest.fixture
def example(procs: list[Proc]) -> Any:
    def start(name: str, *args: str) -> Proc:
        p = Proc(str(EXAMPLES / name), *args)
        procs.append(p)
        return p

    return start


def expect(p: Proc, prefix: str, timeout: float = LINE_WAIT) -> str:
    """Reads stdout lines until one starts with `prefix`; returns it."""
    while True:
        line = p.next_line(timeout)
        if line.startswith(prefix):
            return line


def fields(line: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", line))


def summary(p: Proc) -> dict[str, Any]:
    lines = [line for line in p.stdout if line.startswith("summary ")]
    assert len(lines) == 1, p.out_text()
    result: dict[str, Any] = json.loads(lines[0][len("summary ") :])
    return result


def _submits(mock: Any) -> list[dict[str, Any]]:
    return [
        r for c in mock.connections for r in mock.requests(c.index) if r.get("method") == "SUBMIT"
    ]


def _wait_submits_after(mock: Any, index: int, start: int, n: int) -> None:
    """Blocks until connection `index` received `n` SUBMIT frames at positions >= `start`."""
    seen, pos = 0, start
    while seen < n:
        record = mock.wait_frames(index, pos + 1, timeout=LINE_WAIT)
        if '"SUBMIT"' in record.frames[pos]:
            seen += 1
        pos += 1


def test_market_maker_quotes_pauses_and_reconciles(
    example: Any, backend_flag: list[str], mock_factory: Any
) -> None:
    mock = mock_factory(rate=200.0)
    p = example(
        "market_maker.py",
        "--url",
        mock.url,
        "--refresh",
        "0.05",
        "--duration",
        "90",
        *backend_flag,
    )
    expect(p, "started ")
    expect(p, "acked ")

    # A missed depth update: quoting pauses until the book has its snapshot again.
    assert mock.fault("depth_gap") == 1
    assert "book gap" in expect(p, "paused ")
    expect(p, "resumed ")
    expect(p, "acked ")

    # Rejected orders are settled by their ErrorMessage.
    assert mock.fault("reject_orders") == 1
    expect(p, "rejected ")

    # Orders written, then the connection dies before their acks: OrderUnacked, reconciled
    # by the first acked quote (its cancel-all) on the next connection.
    assert mock.fault("silence") == 1
    _wait_submits_after(mock, 0, len(mock.connection(0).frames), 2)
    assert mock.fault("reset") == 1
    assert "reconnecting" in expect(p, "paused ")  # Reconnecting comes first
    unacked = expect(p, "unacked ")
    assert "connection lost" in unacked, unacked
    expect(p, "resumed ")
    expect(p, "reconciled ")

    p.popen.send_signal(signal.SIGINT)
    assert p.wait(LINE_WAIT) == 0, p.stderr_text()

    out = p.stdout
    s = summary(p)
    assert s["quotes"] > 0 and s["acked"] > 0 and s["rejected"] > 0, s
    assert s["unacked"] >= 1 and s["reconciled"] >= 1, s
    assert s["paused"] >= 2 and s["resumed"] >= 2 and s["reconnects"] >= 1, s
    assert s["order_updates"] > 0, s  # the account's stream (ADDRESS@user.orders)

    # Never a quote while paused.
    paused = False
    for line in out:
        if line.startswith("paused "):
            paused = True
        elif line.startswith("resumed "):
            paused = False
        elif line.startswith("quote "):
            assert not paused, line

    # Quotes straddle the mid, and what the exchange received is what the example said it sent.
    quoted: dict[int, dict[str, str]] = {}
    for line in out:
        if line.startswith("quote "):
            f = fields(line)
            quoted[int(f["id"])] = f
            assert float(f["bid"]) < float(f["mid"]) < float(f["ask"]), line
            assert float(f["best_bid"]) < float(f["best_ask"]), line
    settled = {int(fields(line)["id"]) for line in out if line.startswith(("acked ", "rejected "))}
    submits = _submits(mock)
    sent = {r["id"]: r for r in submits}
    assert len(sent) == len(submits), "a quote was sent twice"
    assert set(sent) <= set(quoted)
    assert settled <= set(sent)
    for qid, request in sent.items():
        doc = json.loads(base64.b64decode(request["params"]["tx"]))
        assert doc["placeholder"] == "not a signed transaction"
        places = [a["place"] for a in doc["actions"] if "place" in a]
        assert [(a["side"], a["price"]) for a in places] == [
            ("buy", quoted[qid]["bid"]),
            ("sell", quoted[qid]["ask"]),
        ]


def _read_csv(paths: list[str]) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for path in paths:
        with open(path, newline="", encoding="utf-8") as f:
            rows.extend(csv.DictReader(f))
    return rows


def test_recorder_writes_every_trade_once(
    example: Any, backend_flag: list[str], tmp_path: pathlib.Path, mock_factory: Any
) -> None:
    symbols = ["BTC-USD", "ETH-USD", "SOL-USD"]
    # shared_sequence: ids continue across a reconnect, as on the live exchange.
    mock = mock_factory(rate=150.0, shared_sequence=True)
    p = example(
        "recorder.py",
        "--url",
        mock.url,
        "--symbols",
        ",".join(symbols),
        "--out",
        str(tmp_path),
        "--max-events",
        "600",
        "--rotate-rows",
        "100",
        "--duration",
        "60",
        *backend_flag,
    )
    expect(p, "recording ")
    mock.wait_frames(0, 1, timeout=LINE_WAIT)  # subscribed: now drop the connection
    assert mock.fault("close") == 1
    expect(p, "Reconnected")
    assert p.wait(60) == 0, p.stderr_text()

    s = summary(p)
    assert sum(s["rows"].values()) == 600, s
    assert all(name.endswith(".csv") for name in s["files"]), s
    assert sorted(pathlib.Path(f) for f in s["files"]) == sorted(tmp_path.iterdir())
    rows = _read_csv(s["files"])
    assert len(rows) == 600
    assert {r["symbol"] for r in rows} == set(symbols)
    for symbol in symbols:
        parts = sorted(f for f in s["files"] if pathlib.Path(f).name.startswith(symbol))
        ids = [int(r["agg_trade_id"]) for r in _read_csv(parts)]
        assert ids == sorted(set(ids)), f"{symbol}: ids not strictly increasing"
        assert len(ids) == s["rows"][symbol]
    # Rotation: at most 100 rows a file.
    for f in s["files"]:
        assert len(_read_csv([f])) <= 100


def test_recorder_parquet(example: Any, tmp_path: pathlib.Path, mock_factory: Any) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    mock = mock_factory(rate=200.0)
    p = example(
        "recorder.py",
        "--url",
        mock.url,
        "--symbols",
        "BTC-USD",
        "--out",
        str(tmp_path),
        "--format",
        "parquet",
        "--max-events",
        "50",
    )
    assert p.wait(60) == 0, p.stderr_text()
    (path,) = summary(p)["files"]
    table = pq.read_table(path)
    assert table.num_rows == 50
    assert table.column("agg_trade_id").to_pylist() == list(range(1, 51))


def test_latency_monitor_prints_sane_lines(
    example: Any, backend_flag: list[str], mock_factory: Any
) -> None:
    mock = mock_factory(rate=500.0)
    p = example(
        "latency_monitor.py",
        "--url",
        mock.url,
        "--interval",
        "0.2",
        "--intervals",
        "3",
        "--duration",
        "60",
        *backend_flag,
    )
    assert p.wait(60) == 0, p.stderr_text()
    lines = [line for line in p.stdout if line.startswith("latency ")]
    assert len(lines) == 3, p.out_text()
    for line in lines:
        m = re.search(r"msgs=(\d+) handler_ms p50=(\S+) p99=(\S+) max=(\S+)", line)
        assert m, line
        msgs = int(m.group(1))
        p50, p99, worst = (float(m.group(i)) for i in (2, 3, 4))
        assert msgs > 0, line
        # One clock on one machine: the delay is not negative beyond rounding, and a local
        # fake exchange is not seconds late.
        assert -1.0 <= p50 <= p99 <= worst < 10_000.0, line
        assert re.search(r"exchange_ms (-|p50=\S+ p99=\S+ max=\S+ n=\d+)", line), line
        assert re.search(r"delivery_ms (-|p50=\S+ p99=\S+ max=\S+ n=\d+)", line), line
