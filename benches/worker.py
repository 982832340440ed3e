"""One benchmark run of one contender, in a fresh process: ``python benches/worker.py '<task json>'``.

`benches/run.py` starts this once per (contender, scenario, round) and reads the last stdout line,
a JSON object. Every contender does the same work per market message: receive the frame, parse
it into its natural form, and hand it to a handler that reads what a strategy reads (aggTrade: the
price, quantity, trade time and id; depth: the top 5 levels of each side), counts it and reads
``event_time`` (and, in S2, computes the stamp-to-handler latency; in S5, sends an order whose id
is the tick's ``event_time``, and the fake exchange records its arrival). Natural forms:

* ``native``, ``native-batch``: bullet_ws's native message objects (``AggTrade``, ``DepthUpdate``).
* ``pure``: bullet_ws.pure's slotted Python classes with the same fields.
* ``websockets+json``: a plain ``dict`` from ``json.loads`` (what most bots do; not typed).
* ``picows+msgspec``: ``msgspec.Struct`` types with the same fields (``co`` optional), decoded by
  a tagged-union ``msgspec.json.Decoder`` straight from picows's frame buffer; frames that are not
  market data or status (the subscribe ack) fall back to a second decoder.

The garbage collector stays on for everybody.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import sys
import time
from array import array
from collections.abc import Callable
from typing import Any

MARKET_TAGS = frozenset({"aggTrade", "depthUpdate"})


def _cpu_us() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return (ru.ru_utime + ru.ru_stime) * 1e6


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


class Meter:
    """The common handler state. `hit()` is called once per market message, on the loop thread."""

    def __init__(self, n: int, warmup: int = 0, latency: bool = False) -> None:
        self.n = n
        self.warmup = warmup
        self.count = 0
        self.last_e = 0
        self.t0 = self.t1 = 0
        self.cpu0 = self.cpu1 = 0.0
        self.th0 = self.th1 = 0.0
        self.lat = array("q")
        self.latency = latency
        self.done = asyncio.get_running_loop().create_future()

    def start(self) -> None:
        self.t0 = time.perf_counter_ns()
        self.cpu0 = _cpu_us()
        self.th0 = time.thread_time() * 1e6

    def finish(self) -> None:
        self.t1 = time.perf_counter_ns()
        self.cpu1 = _cpu_us()
        self.th1 = time.thread_time() * 1e6
        if not self.done.done():
            self.done.set_result(None)

    def result(self) -> dict[str, Any]:
        if self.latency:
            return {"samples": len(self.lat)}
        measured = max(self.count - 1, 1)
        secs = (self.t1 - self.t0) / 1e9
        return {
            "messages": self.count,
            "seconds": secs,
            "msgs_per_s": measured / secs,
            "cpu_us_per_msg": (self.cpu1 - self.cpu0) / measured,
            "loop_cpu_us_per_msg": (self.th1 - self.th0) / measured,
            "last_event_time": self.last_e,
        }


def strategy_reads(agg_trade: type, attrs: bool = True) -> Callable[[Any], object]:
    """What a strategy reads of a market message: for aggTrade the price, quantity, trade time
    and id; for depth the top 5 levels. `attrs=False`: the message is a JSON dict."""
    if attrs:

        def read(ev: Any) -> object:
            if type(ev) is agg_trade:
                return (ev.price, ev.quantity, ev.trade_time, ev.agg_trade_id)
            return (ev.bids[:5], ev.asks[:5])

    else:

        def read(ev: Any) -> object:
            if ev["e"] == "aggTrade":
                return (ev["p"], ev["q"], ev["T"], ev["a"])
            return (ev["b"][:5], ev["a"][:5])

    return read


def make_hit(m: Meter) -> Callable[[int], bool]:
    """The handler body, shared by all contenders: returns True when the run is complete."""
    time_ns = time.time_ns
    if m.latency:
        lat_append = m.lat.append
        warmup = m.warmup
        target = m.warmup + m.n

        def hit(event_time: int) -> bool:
            now = time_ns() // 1000
            m.count += 1
            if m.count > warmup:
                lat_append(now - event_time)
                if m.count >= target:
                    m.finish()
                    return True
            return False

    else:
        n = m.n

        def hit(event_time: int) -> bool:
            m.last_e = event_time
            m.count += 1
            if m.count == 1:
                m.start()
            elif m.count >= n:
                m.finish()
                return True
            return False

    return hit


# ---------------------------------------------------------------- bullet_ws (native and pure)


def loop_read_share(stats: Any) -> float:
    """The share of messages the loop's thread read itself (0 on the pure backend): a fast path
    that silently does not engage shows here."""
    return round(stats.loop_reads / max(1, stats.messages_received), 3)


async def run_bullet(
    task: dict[str, Any], pure: bool, batch: bool, push: bool = False, loop_reads: bool = True
) -> dict[str, Any]:
    if pure:
        import bullet_ws.pure as bw
    else:
        import bullet_ws as bw

        assert bw.BACKEND == "native", "the native extension is missing"
    m = Meter(task["n"], task.get("warmup", 0), task["scenario"] == "s2")
    hit = make_hit(m)
    market = (bw.AggTrade, bw.DepthUpdate)
    read = strategy_reads(bw.AggTrade)
    # A queue that never drops: S1/S2 measure delivery of every message (S4 measures drops).
    cap = task["n"] + task.get("warmup", 0) + 1000
    ws = await bw.connect(task["url"], idle_timeout=0, channel_capacity=cap, loop_reads=loop_reads)
    ws.subscribe([task["topic"]], id=1)
    if push:
        finished = asyncio.Event()

        def on_event(ev: Any) -> None:
            if type(ev) in market:
                read(ev)
                if hit(ev.event_time):
                    ws.set_handler(None)
                    finished.set()

        ws.set_handler(on_event)
        await finished.wait()
    elif batch:
        while True:
            evs = await ws.recv_batch(1024)
            if not evs:
                break
            stop = False
            for ev in evs:
                if type(ev) in market:
                    read(ev)
                    if hit(ev.event_time):
                        stop = True
                        break
            if stop:
                break
    else:
        async for ev in ws:
            if type(ev) in market:
                read(ev)
                if hit(ev.event_time):
                    break
    stats = ws.stats
    await ws.close()
    r = m.result()
    r["events_dropped"] = stats.events_dropped
    r["loop_read_share"] = loop_read_share(stats)
    return r, m


# ---------------------------------------------------------------- websockets + json


async def run_websockets(task: dict[str, Any]) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    m = Meter(task["n"], task.get("warmup", 0), task["scenario"] == "s2")
    hit = make_hit(m)
    loads = json.loads
    read = strategy_reads(dict, attrs=False)
    async with connect(task["url"], max_size=None) as ws:
        first = loads(await ws.recv())
        assert first.get("status") == "connected", first
        await ws.send(json.dumps({"method": "SUBSCRIBE", "id": 1, "params": [task["topic"]]}))
        async for raw in ws:
            d = loads(raw)
            if d.get("e") in MARKET_TAGS:
                read(d)
                if hit(d["E"]):
                    break
    return m.result(), m


# ---------------------------------------------------------------- picows + msgspec


def msgspec_types(*extra: Any) -> Any:
    """The typed decoders; `extra`: more tagged structs for the fast union (S5: the order ack)."""
    import msgspec

    F = msgspec.field

    class Status(msgspec.Struct, tag_field="e", tag="status", kw_only=True):
        event_time: int = F(name="E")
        status: str
        client_id: str = F(name="clientId")
        reason: str | None = None

    # The market structs come from the wire spec (spec/messages.toml, through the generated
    # tables), so the contender decodes exactly the fields and optionality that we parse.
    from bullet_ws.pure import _wire

    types = {"str": str, "mt": str, "u64": int, "bool": bool, "levels": list[tuple[str, str]]}

    def market_struct(name: str, tag: str) -> Any:
        fields: list[tuple[str, Any, Any]] = []
        for attr, key, kind, optional, _kinds in _wire.FIELDS[name]:
            if key == "e":
                continue
            if optional:
                fields.append((attr, types[kind] | None, F(default=None, name=key)))
            else:
                fields.append((attr, types[kind], F(name=key)))
        fields.sort(key=lambda f: f[2].default is not msgspec.NODEFAULT)
        return msgspec.defstruct(name, fields, tag_field="e", tag=tag, kw_only=True)

    AggTrade = market_struct("AggTrade", "aggTrade")
    DepthUpdate = market_struct("DepthUpdate", "depthUpdate")

    class MethodResult(msgspec.Struct, kw_only=True):
        id: int | None = None
        event_time: int = F(name="E")
        result: Any = None

    union = AggTrade | DepthUpdate | Status
    for t in extra:
        union = union | t
    fast = msgspec.json.Decoder(union)
    slow = msgspec.json.Decoder(MethodResult)
    return fast, slow, (AggTrade, DepthUpdate), msgspec.DecodeError


def msgspec_order_types() -> Any:
    """S5: the SUBMIT frame and its ack, as a user of msgspec would define them (keys in the
    SDK's order: ``method``, ``id``, ``params``)."""
    import msgspec

    # defstruct: annotations of classes local to a function would not resolve (postponed
    # evaluation), and these must stay local so that S1-S4 never import msgspec eagerly.
    F, D = msgspec.field, msgspec.defstruct
    TxParams = D("TxParams", [("tx", str)])
    Submit = D("Submit", [("method", str), ("id", int), ("params", TxParams)])
    AckResults = D(
        "AckResults",
        [
            ("tx_id", str),
            ("status", str),
            ("order_ids", list[int]),
            ("client_order_ids", list[int]),
        ],
    )
    SubmitAck = D(
        "SubmitAck",
        [("id", int | None, None), ("event_time", int, F(name="E")), ("results", AckResults)],
        tag_field="e",
        tag="SUBMIT",
        kw_only=True,
    )
    return Submit, TxParams, SubmitAck, msgspec.json.Encoder().encode


async def run_picows(task: dict[str, Any]) -> dict[str, Any]:
    from picows import WSListener, WSMsgType, ws_connect

    fast, slow, market, DecodeError = msgspec_types()
    m = Meter(task["n"], task.get("warmup", 0), task["scenario"] == "s2")
    hit = make_hit(m)
    fast_decode, slow_decode = fast.decode, slow.decode
    read = strategy_reads(market[0])
    TEXT, CLOSE = WSMsgType.TEXT, WSMsgType.CLOSE
    sub = json.dumps({"method": "SUBSCRIBE", "id": 1, "params": [task["topic"]]}).encode()

    class Listener(WSListener):  # type: ignore[misc]
        stopped = False

        def on_ws_connected(self, transport: Any) -> None:
            transport.send(TEXT, sub)

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if self.stopped:
                return
            if frame.msg_type == TEXT:
                buf = frame.get_payload_as_memoryview()
                try:
                    msg = fast_decode(buf)
                except DecodeError:
                    msg = slow_decode(buf)
                if type(msg) in market:
                    read(msg)
                    if hit(msg.event_time):
                        self.stopped = True
                        transport.disconnect()
            elif frame.msg_type == CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()

    transport, _ = await ws_connect(Listener, task["url"], max_frame_size=16 << 20)
    await transport.wait_disconnected()
    return m.result(), m


# ---------------------------------------------------------------- S5: tick to order


class Orders:
    """S5's bookkeeping, shared by the contenders: ticks seen, orders sent, acks received.

    Every `every`-th tick gets an order whose id is the tick's `E` (event_time): the fake exchange
    records when the order arrived, so the round trip is measured on its own clocks (run.py).
    The inbound half (stamp to handler entry, as S2 measures it) and the stamp to the return of
    the order's send call are kept too, to split the trip: in, the client's own way out, and the
    exchange's side."""

    def __init__(self, task: dict[str, Any]) -> None:
        self.warmup = task["warmup"]
        self.total = self.warmup + task["n"]
        self.every = task["every"]
        self.tx = task["tx"]
        self.ticks = 0
        self.orders = 0
        self.acks = 0
        self.inbound = array("q")
        self.sent_after = array("q")
        # CPU time of the loop's thread over the measured ticks (steadier than latency on a
        # noisy machine): what a tick costs the thread that runs the handler.
        self.cpu_from = 0
        self.cpu_ns = 0

    def tick(self, event_time: int) -> bool:
        """Counts a tick at handler entry; True when it gets an order."""
        self.ticks += 1
        if self.ticks > self.warmup:
            self.inbound.append(time.time_ns() // 1000 - event_time)
            if self.ticks == self.warmup + 1:
                self.cpu_from = time.thread_time_ns()
            elif self.ticks == self.total:
                self.cpu_ns = time.thread_time_ns() - self.cpu_from
        if self.ticks % self.every:
            return False
        self.orders += 1
        return True

    def sent(self, event_time: int) -> None:
        """The order's send call returned."""
        if self.ticks > self.warmup:
            self.sent_after.append(time.time_ns() // 1000 - event_time)

    def done(self) -> bool:
        # Waiting for the last ack: the order frame has reached the exchange and is recorded.
        return self.ticks >= self.total and self.acks >= self.orders

    def result(self) -> dict[str, Any]:
        q = {}
        for name, xs in (("inbound", self.inbound), ("sent", self.sent_after)):
            s = sorted(xs)
            for k, f in (("p50", 0.5), ("p99", 0.99)):
                q[f"{name}_{k}"] = s[min(len(s) - 1, int(f * len(s)))] if s else None
        measured = max(1, self.total - self.warmup - 1)
        return {
            "ticks": self.ticks,
            "orders": self.orders,
            "acks": self.acks,
            "loop_cpu_us_per_tick": round(self.cpu_ns / measured / 1000, 2),
            **q,
        }


# `inbound_spin` of the `native-early` contender.
EARLY_SPIN = 0.0002


async def s5_bullet(
    task: dict[str, Any],
    pure: bool,
    batch: bool,
    direct: bool = True,
    spin: float = 0.0,
    push: bool = False,
    loop_reads: bool = True,
) -> dict[str, Any]:
    if pure:
        import bullet_ws.pure as bw
    else:
        import bullet_ws as bw

        assert bw.BACKEND == "native", "the native extension is missing"
    o = Orders(task)
    AggTrade, OrderResult = bw.AggTrade, bw.OrderResult
    read = strategy_reads(AggTrade)
    tx = o.tx
    ws = await bw.connect(
        task["url"],
        idle_timeout=0,
        channel_capacity=o.total * 2 + 1000,
        direct_write=direct,
        inbound_spin=spin,
        loop_reads=loop_reads,
    )
    ws.subscribe([task["topic"]], id=1)
    submit = ws.submit

    def handle(ev: Any) -> bool:
        t = type(ev)
        if t is AggTrade:
            e = ev.event_time
            tick = o.tick(e)
            read(ev)
            if tick:
                submit(tx, id=e)
                o.sent(e)
        elif t is OrderResult:
            o.acks += 1
        return o.done()

    if push:
        finished = asyncio.Event()

        def on_event(ev: Any) -> None:
            if handle(ev):
                ws.set_handler(None)
                finished.set()

        ws.set_handler(on_event)
        await finished.wait()
    elif batch:
        stop = False
        while not stop:
            evs = await ws.recv_batch(1024)
            if not evs:
                break
            for ev in evs:
                if handle(ev):
                    stop = True
                    break
    else:
        async for ev in ws:
            if handle(ev):
                break
    stats = ws.stats
    await ws.close()
    return dict(
        o.result(),
        events_dropped=stats.events_dropped,
        loop_read_share=loop_read_share(stats),
    )


async def s5_websockets(task: dict[str, Any]) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    o = Orders(task)
    loads, dumps = json.loads, json.dumps
    read = strategy_reads(dict, attrs=False)
    tx = o.tx
    async with connect(task["url"], max_size=None) as ws:
        first = loads(await ws.recv())
        assert first.get("status") == "connected", first
        await ws.send(dumps({"method": "SUBSCRIBE", "id": 1, "params": [task["topic"]]}))
        async for raw in ws:
            d = loads(raw)
            e = d.get("e")
            if e == "aggTrade":
                stamp = d["E"]
                tick = o.tick(stamp)
                read(d)
                if tick:
                    await ws.send(dumps({"method": "SUBMIT", "id": stamp, "params": {"tx": tx}}))
                    o.sent(stamp)
            elif e == "SUBMIT":
                o.acks += 1
            if o.done():
                break
    return o.result()


async def s5_picows(task: dict[str, Any]) -> dict[str, Any]:
    from picows import WSListener, WSMsgType, ws_connect

    Submit, TxParams, SubmitAck, encode = msgspec_order_types()
    fast, slow, market, DecodeError = msgspec_types(SubmitAck)
    AggTrade = market[0]
    o = Orders(task)
    read = strategy_reads(AggTrade)
    tx = o.tx
    TEXT, CLOSE = WSMsgType.TEXT, WSMsgType.CLOSE
    sub = json.dumps({"method": "SUBSCRIBE", "id": 1, "params": [task["topic"]]}).encode()

    class Listener(WSListener):  # type: ignore[misc]
        stopped = False

        def on_ws_connected(self, transport: Any) -> None:
            transport.send(TEXT, sub)

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if self.stopped:
                return
            if frame.msg_type == TEXT:
                buf = frame.get_payload_as_memoryview()
                try:
                    msg = fast.decode(buf)
                except DecodeError:
                    msg = slow.decode(buf)
                t = type(msg)
                if t is AggTrade:
                    e = msg.event_time
                    tick = o.tick(e)
                    read(msg)
                    if tick:
                        transport.send(TEXT, encode(Submit("SUBMIT", e, TxParams(tx))))
                        o.sent(e)
                elif t is SubmitAck:
                    o.acks += 1
                if o.done():
                    self.stopped = True
                    transport.disconnect()
            elif frame.msg_type == CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()

    transport, _ = await ws_connect(Listener, task["url"], max_frame_size=16 << 20)
    await transport.wait_disconnected()
    return o.result()


async def run_s5(task: dict[str, Any]) -> dict[str, Any]:
    c, lr = contender_of(task)
    if c in ("native", "native-batch", "pure"):
        return await s5_bullet(task, pure=c == "pure", batch=c == "native-batch", loop_reads=lr)
    if c == "native-handler":
        return await s5_bullet(task, pure=False, batch=False, push=True, loop_reads=lr)
    if c == "native-queued":
        return await s5_bullet(task, pure=False, batch=False, direct=False)
    if c == "native-early":
        return await s5_bullet(task, pure=False, batch=False, spin=EARLY_SPIN)
    if c == "websockets+json":
        return await s5_websockets(task)
    if c == "picows+msgspec":
        return await s5_picows(task)
    raise ValueError(f"unknown contender {c!r}")


# ---------------------------------------------------------------- S3: reconnect


class Seq:
    """Sequence checking over reconnects: aggTrade `a` counts 1, 2, ... on every subscription."""

    def __init__(self) -> None:
        self.prev = 0
        self.gaps = 0
        self.dups = 0
        self.conn_delivered: list[int] = []
        self.t_drop = 0
        self.recover: list[float] = []
        self.new_conn = asyncio.Event()
        self.total = 0

    def on(self, a: int) -> None:
        self.total += 1
        if a == 1:  # a new subscription (the first, or after a reconnect)
            if self.t_drop:
                self.recover.append((time.perf_counter_ns() - self.t_drop) / 1e6)
                self.t_drop = 0
            self.prev = 1
            self.conn_delivered.append(1)
            self.new_conn.set()
        elif a == self.prev + 1:
            self.prev = a
            self.conn_delivered[-1] += 1
        elif a > self.prev + 1:
            self.gaps += a - self.prev - 1
            self.prev = a
            self.conn_delivered[-1] += 1
        else:
            self.dups += 1


async def s3_client(contender: str, url: str, seq: Seq, backoff: float) -> Any:
    """Runs the contender's consuming loop (with its reconnect logic) until cancelled."""
    topic = "BTC-USD@aggTrade"
    if contender in ("native", "pure"):
        if contender == "pure":
            import bullet_ws.pure as bw
        else:
            import bullet_ws as bw
        ws = await bw.connect(url, initial_backoff=0.0, idle_timeout=0, backoff_reset_after=0.0)
        ws.subscribe([topic], id=1)
        AggTrade = bw.AggTrade
        try:
            async for ev in ws:
                if type(ev) is AggTrade:
                    seq.on(ev.agg_trade_id)
        finally:
            await ws.close()
    elif contender == "websockets+json":
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        loads = json.loads
        sub = json.dumps({"method": "SUBSCRIBE", "id": 1, "params": [topic]})
        while True:  # the hand-written reconnect loop of a typical bot, same 10 ms floor
            try:
                async with connect(url, max_size=None) as ws:
                    loads(await ws.recv())
                    await ws.send(sub)
                    async for raw in ws:
                        d = loads(raw)
                        if d.get("e") == "aggTrade":
                            seq.on(d["a"])
            except (ConnectionClosed, OSError):
                pass
            await asyncio.sleep(backoff)
    elif contender == "picows+msgspec":
        from picows import WSListener, WSMsgType, ws_connect

        fast, slow, market, DecodeError = msgspec_types()
        AggTrade = market[0]
        TEXT, CLOSE = WSMsgType.TEXT, WSMsgType.CLOSE
        sub = json.dumps({"method": "SUBSCRIBE", "id": 1, "params": [topic]}).encode()

        class Listener(WSListener):  # type: ignore[misc]
            def on_ws_connected(self, transport: Any) -> None:
                transport.send(TEXT, sub)

            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                if frame.msg_type == TEXT:
                    buf = frame.get_payload_as_memoryview()
                    try:
                        msg = fast.decode(buf)
                    except DecodeError:
                        msg = slow.decode(buf)
                    if type(msg) is AggTrade:
                        seq.on(msg.agg_trade_id)
                elif frame.msg_type == CLOSE:
                    transport.send_close(frame.get_close_code())
                    transport.disconnect()

        while True:
            try:
                transport, _ = await ws_connect(Listener, url)
                await transport.wait_disconnected()
            except OSError:
                pass
            await asyncio.sleep(backoff)
    else:
        raise ValueError(contender)


async def run_s3(task: dict[str, Any]) -> dict[str, Any]:
    from bullet_ws.testing import MockExchange

    backoff = 0.010  # bullet_ws floors initial_backoff at 10 ms (+0..50 % jitter)
    out: dict[str, Any] = {}
    with MockExchange(rate=task["rate"], symbols=["BTC-USD"]) as mock:
        seq = Seq()
        client = asyncio.ensure_future(s3_client(task["contender"], mock.url, seq, backoff))
        try:
            await asyncio.wait_for(seq.new_conn.wait(), 10)
            for kind in task["kinds"]:
                times: list[float] = []
                lost_at_drop = 0
                failures = 0
                for _ in range(task["reps"]):
                    await asyncio.sleep(task["settle"])
                    conn_index = len(seq.conn_delivered) - 1  # = the mock's connection index
                    seq.new_conn.clear()
                    seq.t_drop = time.perf_counter_ns()
                    mock.fault(kind)
                    try:
                        await asyncio.wait_for(seq.new_conn.wait(), 5)
                    except asyncio.TimeoutError:
                        failures += 1
                        seq.t_drop = 0
                        continue
                    times.append(seq.recover[-1])
                    rec = mock.connection(conn_index)
                    # frames_sent counts status + subscribe ack (+ the close frame) too.
                    market_sent = rec.frames_sent - 2 - (1 if kind == "close" else 0)
                    lost_at_drop += max(market_sent - seq.conn_delivered[conn_index], 0)
                out[kind] = {
                    "drop_to_first_ms": times,
                    "lost_in_flight": lost_at_drop,
                    "failures": failures,
                }
        finally:
            client.cancel()
            # The client's fate after the last fault (cancelled, or any error) is not measured.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await client
    return {
        "kinds": out,
        "gaps_within_connection": seq.gaps,
        "duplicates": seq.dups,
        "delivered": seq.total,
        "backoff_floor_ms": backoff * 1e3,
    }


# ---------------------------------------------------------------- S4: slow consumer + soak


async def run_s4(task: dict[str, Any]) -> dict[str, Any]:
    if task["contender"] == "pure":
        import bullet_ws.pure as bw
    else:
        import bullet_ws as bw
    cap = task["capacity"]
    ws = await bw.connect(task["url"], idle_timeout=0, channel_capacity=cap)
    ws.subscribe([task["topic"]], id=1)
    delivered = 0
    other = 0
    rss: list[tuple[float, int]] = []
    t_start = time.monotonic()
    next_sample = t_start
    deadline = t_start + task["seconds"]
    work_us = task["work_us"]
    market = (bw.AggTrade, bw.DepthUpdate)
    perf = time.perf_counter
    while True:
        ev = await ws.recv()
        if ev is None:
            break
        if type(ev) in market:
            delivered += 1
        else:
            other += 1
        # The slow handler: busy work per message.
        end = perf() + work_us / 1e6
        while perf() < end:
            pass
        now = time.monotonic()
        if now >= next_sample:
            rss.append((now - t_start, _rss_kb()))
            next_sample = now + task["sample_every"]
        if now >= deadline:
            break
    ws.stop()
    # Drain: everything still queued is delivered (recv() gives None once stopped and drained).
    while True:
        ev = await ws.recv()
        if ev is None:
            break
        if type(ev) in market:
            delivered += 1
        else:
            other += 1
    await ws.close()
    st = ws.stats
    rss.append((time.monotonic() - t_start, _rss_kb()))
    return {
        "messages_received": st.messages_received,
        "delivered_market": delivered,
        "delivered_other": other,
        "events_dropped": st.events_dropped,
        "reconnects": st.reconnects,
        "exact": st.messages_received == delivered + other + st.events_dropped,
        "capacity": cap,
        "rss_kb": rss,
        "seconds": time.monotonic() - t_start,
    }


# ---------------------------------------------------------------- main


def contender_of(task: dict[str, Any]) -> tuple[str, bool]:
    """The contender without its `-task` suffix (native with `loop_reads=False`: every read on
    the socket's thread), and its `loop_reads`."""
    c: str = task["contender"]
    if c.startswith("native") and c.endswith("-task"):
        return c.removesuffix("-task"), False
    return c, True


async def main_async(task: dict[str, Any]) -> tuple[dict[str, Any], array[int] | None]:
    """The result, and for S2 the latency samples (written to ``task["out"]`` by `main`)."""
    sc = task["scenario"]
    c, lr = contender_of(task)
    if sc == "s3":
        return await run_s3(task), None
    if sc == "s4":
        return await run_s4(task), None
    if sc == "s5":
        return await run_s5(task), None
    if c == "native":
        r, m = await run_bullet(task, pure=False, batch=False, loop_reads=lr)
    elif c == "native-handler":
        r, m = await run_bullet(task, pure=False, batch=False, push=True, loop_reads=lr)
    elif c == "native-batch":
        r, m = await run_bullet(task, pure=False, batch=True, loop_reads=lr)
    elif c == "pure":
        r, m = await run_bullet(task, pure=True, batch=False)
    elif c == "websockets+json":
        r, m = await run_websockets(task)
    elif c == "picows+msgspec":
        r, m = await run_picows(task)
    else:
        raise ValueError(f"unknown contender {c!r}")
    if sc == "s2":
        r["samples_file"] = task["out"]
        return r, m.lat
    return r, None


def main() -> None:
    task = json.loads(sys.argv[1])
    loop = task.get("loop", "asyncio")
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    else:
        factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        result, samples = runner.run(asyncio.wait_for(main_async(task), task.get("timeout", 600)))
    if samples is not None:
        with open(task["out"], "wb") as f:
            samples.tofile(f)
    result["ok"] = True
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    try:
        main()
    except BaseException as e:  # report, do not hang the harness
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}), flush=True)
        raise SystemExit(1) from e
