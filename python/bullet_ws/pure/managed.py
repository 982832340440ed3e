"""The managed (auto-reconnecting) socket of the pure backend: the SDK's state machine on asyncio.

Layout: `ManagedWebSocket` is the user's handle; `_Session` holds all state and runs the
background task. The task never references the handle, so dropping the handle is noticed
(`weakref.finalize`) and stops the task, like dropping the SDK's handle.

Per connection, a reader task receives, parses and queues frames (the hot path: no asyncio.Queue,
no future per message); the supervisor task applies commands in FIFO order, watches the idle
clock and runs the reconnect procedure of PROTOCOL.md §5.4 when the reader reports a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bullet_ws import _policy, _validate
from bullet_ws._policy import (
    COMMAND_QUEUE_CAPACITY,
    DROP_WARNING_INTERVAL,
    HANDLER_RAISED,
    HANDLER_SET,
    HANDLER_WHILE_WAITING,
    MAX_OUTSTANDING_KEEPALIVES,
    ROTATION_CATCH_UP,
    ROTATION_DRAIN,
    ROTATION_MIN_RETRY,
    STOP_GRACE,
    Backoff,
    TopicSet,
    json_string_size,
    topics_frame_size,
)
from bullet_ws.config import ManagedWsConfig
from bullet_ws.errors import BookNotFound, BusyError, ConnectError, StoppedError
from bullet_ws.events import (
    BookGap,
    BookResynced,
    Disconnected,
    OrderUnacked,
    Reconnected,
    Reconnecting,
    Rotated,
    Stats,
)
from bullet_ws.pure.book import Books, OrderBook
from bullet_ws.pure.conflation import Conflation
from bullet_ws.pure.latency import LatencyWindow
from bullet_ws.pure.messages import DepthUpdate, ErrorMessage, Message, OrderResult, Pong, Status
from bullet_ws.pure.parse import parse_message
from bullet_ws.pure.rotation import Dedup
from bullet_ws.pure.transport import (
    CountingConnection,
    abort,
    client_frame,
    close_gracefully,
    close_reason,
    open_connection,
    ssl_context,
)

__all__ = ["ManagedWebSocket", "open_managed"]

logger = logging.getLogger("bullet_ws.pure")

Event = (
    Message
    | Reconnecting
    | Reconnected
    | Rotated
    | Disconnected
    | OrderUnacked
    | BookGap
    | BookResynced
)

# An order on the wire: its id and its `OrderResult.method` name.
_Order = tuple["int | None", str]
_ORDER_NAMES = {
    "SUBMIT": "submit",
    "ORDER.PLACE": "place",
    "ORDER.CANCEL": "cancel",
    "ORDER.AMEND": "amend",
    "ORDER.CANCEL_ALL": "cancel_all",
}


_FOREVER = 1e9  # the loop-watch timer's delay: it must never fire, only be let go of


class _LoopWatch:
    __slots__ = ("__weakref__",)

    def __call__(self) -> None:
        pass


class _Subscribe:
    __slots__ = ("id", "topics")

    def __init__(self, topics: list[str], id: int | None) -> None:
        self.topics = topics
        self.id = id


class _Unsubscribe(_Subscribe):
    __slots__ = ()


class _Send:
    """A ready frame (orders, list_subscriptions, ping): sent once more after a reconnect when
    its write failed before any byte left. `order` is set for orders."""

    __slots__ = ("frame", "method", "order", "queued_at")

    def __init__(self, method: str, frame: str, order: _Order | None = None) -> None:
        self.method = method
        self.frame = frame
        self.order = order
        self.queued_at = time.monotonic()


class _WriteFailed(Exception):
    """A send that failed; `written`: some bytes left during the attempt (the peer may have the
    whole frame, so an order must never be sent again)."""

    def __init__(self, reason: str, written: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.written = written


class _Resubscribe:
    """Books out of sync: UNSUBSCRIBE then SUBSCRIBE their topics for a fresh snapshot, outside
    the replay set (the topics stay subscribed)."""

    __slots__ = ("topics",)

    def __init__(self, topics: list[str]) -> None:
        self.topics = topics


_Command = _Subscribe | _Unsubscribe | _Send | _Resubscribe


class _Session:
    """State and background task of one managed socket (see the module docstring)."""

    def __init__(
        self,
        ws_url: str,
        config: ManagedWsConfig,
        tls: ssl.SSLContext | None,
        conn: CountingConnection,
    ) -> None:
        self.url = ws_url
        self.config = config
        self.tls = tls
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        self.conn = conn
        # Events: a deque bounded in events and in bytes (`sizes` runs beside it: each event's
        # wire size, 0 for lifecycle events), plus at most one waiter future per consumer wait.
        self.events: deque[Event] = deque()
        self.sizes: deque[int] = deque()
        # And when each message's frame was read (monotonic; -1.0 for lifecycle events).
        self.stamps: deque[float] = deque()
        self.queued_bytes = 0
        # Conflation: `base` numbers `events[0]`, so that a slot stays valid as events come
        # and go; unlike the native core, the whole undelivered queue is in reach.
        self.base = 0
        self.conflation = Conflation()
        self.events_conflated = 0
        self.exchange_delay = LatencyWindow()
        self.delivery_delay = LatencyWindow()
        self.capacity = config.channel_capacity
        self.max_bytes = config.queue_max_bytes
        self.waiter: asyncio.Future[None] | None = None
        self.sleepers = 0  # consumers waiting on `waiter` now (cancelled ones leave)
        # `set_handler`: while set, events go to it from a callback, once per burst.
        self.handler: Callable[[Event], object] | None = None
        self.delivery_scheduled = False
        # Commands: FIFO; `requested` is the call-time view (dedup, `topics`), `applied` the
        # task's replay set, both in insertion order (`_policy.TopicSet`). Keeping them
        # apart means a replay never duplicates a subscribe that is still queued.
        self.commands: deque[_Command] = deque()
        self.requested = TopicSet()
        self.applied = TopicSet()
        self.books = Books()  # the order books of the subscribed depth topics
        # Counters and clocks.
        self.messages_received = 0
        self.events_dropped = 0
        self.reconnects = 0
        self.keepalives_sent = 0
        self.rotations = 0
        self.last_message_at = time.monotonic()
        # Keepalive: the clock of the last frame sent, and the ids still awaiting their pong
        # (ids from the range `_validate.id_arg` refuses, so no user pong is ever swallowed).
        self.last_sent_at = time.monotonic()
        self.keepalive_ids: dict[int, None] = {}
        self.next_keepalive = 0
        self.last_drop_warning = -DROP_WARNING_INTERVAL
        # Reconnect state: the backoff persists across outages (PROTOCOL.md §5.4).
        self.backoff = Backoff(
            config.initial_backoff, config.max_backoff, config.backoff_reset_after
        )
        self.connected_since = time.monotonic()
        self.connected_by_reconnect = False
        # Tasks and signals.
        self.stopped = False
        self.wakeup: asyncio.Future[None] | None = None
        self.loss: str | None = None
        self.reader: asyncio.Task[None] | None = None
        # Orders written on the current connection and not acknowledged yet, oldest first; the
        # order being written right now.
        self.pending: deque[_Order] = deque()
        self.writing: _Order | None = None
        # False while reconnecting: a stop then has nothing to flush to.
        self.live = True
        # Rotation (make-before-break): the task, the filter while two connections are read,
        # the other connection (new during the overlap, old while draining), the orders
        # written on the old one, and what wakes the rotation task.
        self.rotation: asyncio.Task[None] | None = None
        self.dedup: Dedup | None = None
        self.rot_new: CountingConnection | None = None
        self.rot_old: CountingConnection | None = None
        self.rot_switched: asyncio.Future[None] | None = None
        self.rot_wake = asyncio.Event()
        self.old_pending: deque[_Order] = deque()
        self.rotate_for: str | None = None
        self.conn_opened_at = time.monotonic()
        self.rotation_retry = 0.0
        self.closing: set[asyncio.Task[None]] = set()
        self.task = self.loop.create_task(self._run(), name=f"bullet_ws.pure {ws_url}")
        self.task.add_done_callback(self._task_done)
        # The loop lets go of its timers when it closes (or is collected), and only this timer
        # holds the sentinel (the session keeps a weak reference to the timer, only to cancel
        # it): the sentinel's finalizer tells the session that its loop is gone.
        sentinel = _LoopWatch()
        self.loop_watch = weakref.ref(self.loop.call_later(_FOREVER, sentinel))
        self.loop_gone = weakref.finalize(sentinel, self._loop_closed)
        self.loop_gone.atexit = False

    # --- the consumer side ---------------------------------------------------------------------

    def push(self, event: Event) -> None:
        """Queue a lifecycle event; when the queue is full it is dropped and counted."""
        if len(self.events) < self.capacity:
            self.events.append(event)
            self.sizes.append(0)
            self.stamps.append(-1.0)
            self._wake_consumer()
        else:
            self._count_drop()

    def push_final(self, event: Disconnected | OrderUnacked) -> None:
        """The final event, and what became of an order, bypass both bounds: never dropped."""
        self.events.append(event)
        self.sizes.append(0)
        self.stamps.append(-1.0)
        self._wake_consumer()

    def take(self) -> Event:
        return self.take_some(1)[0]

    def take_some(self, n: int) -> list[Event]:
        """Hand over the first `n` queued events (all when `n` covers them); one clock read."""
        events, sizes, stamps = self.events, self.sizes, self.stamps
        if n >= len(events):
            batch = list(events)
            taken = list(stamps)
            events.clear()
            sizes.clear()
            stamps.clear()
            self.queued_bytes = 0
        else:
            popleft = events.popleft
            batch = [popleft() for _ in range(n)]
            taken = [stamps.popleft() for _ in range(n)]
            self.queued_bytes -= sum(sizes.popleft() for _ in range(n))
        self.base += len(batch)
        now = time.monotonic()
        window = self.delivery_delay
        window.advance(now)
        add = window.add
        for stamp in taken:
            if stamp >= 0.0:
                add(int((now - stamp) * 1e6))
        return batch

    def take_all(self) -> list[Event]:
        return self.take_some(len(self.events))

    def check_size(self, argument: str, frame: str, size: int) -> None:
        """Refuse at the call a command that could never be sent (same text as native)."""
        limit = self.config.max_message_size
        if size > limit:
            raise ValueError(_policy.too_large(argument, frame, size, limit))

    def _count_drop(self) -> None:
        self.events_dropped += 1
        now = time.monotonic()
        if now - self.last_drop_warning >= DROP_WARNING_INTERVAL:
            self.last_drop_warning = now
            logger.warning(
                "event queue full (%d), dropping events - consumer too slow (%d dropped so far)",
                self.capacity,
                self.events_dropped,
            )

    def _wake_consumer(self) -> None:
        if self.handler is not None:
            self.schedule_delivery()
            return
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def wait_for_event(self) -> None:
        """Return when an event is queued or the session has ended."""
        waiter = self.waiter
        if waiter is None or waiter.done():
            waiter = self.waiter = self.loop.create_future()
        # Shared by every sleeping consumer: shielded, so that cancelling one of them (a timeout
        # around one recv()) never cancels the others.
        self.sleepers += 1
        try:
            await asyncio.shield(waiter)
        finally:
            self.sleepers -= 1

    def schedule_delivery(self) -> None:
        if not self.delivery_scheduled:
            self.delivery_scheduled = True
            self.loop.call_soon(self._deliver)

    def _deliver(self) -> None:
        """Hand the queued events to the handler, one at a time and in order (as native)."""
        self.delivery_scheduled = False
        events = self.events
        while events:
            handler = self.handler
            if handler is None:
                return
            event = self.take()
            try:
                handler(event)
            except Exception as exc:  # noqa: BLE001 - reported to the loop, as asyncio does
                self.loop.call_exception_handler({"message": HANDLER_RAISED, "exception": exc})
            except BaseException:
                if events:
                    self.schedule_delivery()
                raise

    # --- commands (called synchronously from the handle) ----------------------------------------

    def enqueue(self, command: _Command) -> None:
        self.commands.append(command)
        self._wake_supervisor()

    def check_can_enqueue(self) -> None:
        if self.stopped:
            raise StoppedError()
        if len(self.commands) >= COMMAND_QUEUE_CAPACITY:
            raise BusyError()

    def stop(self) -> None:
        """End the task: on a live connection after writing the commands queued so far (within
        STOP_GRACE), else at once, even mid-reconnect or mid-handshake."""
        if self.stopped:
            return
        self.stopped = True
        # The reader stops with the socket: nothing is received (and counted) after stop().
        self._stop_reader()
        if self.live:
            self._wake_supervisor()
            self.loop.call_later(STOP_GRACE, self.task.cancel)
        else:
            self.task.cancel()
        self._wake_consumer()

    # --- what became of orders -------------------------------------------------------------

    def _unacked(self, order: _Order, reason: str) -> None:
        """Report an order this socket cannot account for; never dropped (bypasses capacity)."""
        logger.warning("order %s (id %r) unacknowledged: %s", order[1], order[0], reason)
        self.push_final(OrderUnacked(order[0], order[1], reason))

    def _unack_pending(self, reason: str) -> None:
        # Cleared in place: the reader holds this deque.
        pending = list(self.pending)
        self.pending.clear()
        for order in pending:
            self._unacked(order, reason)

    def _unsend_queued(self, reason: str) -> None:
        commands, self.commands = self.commands, deque()
        for command in commands:
            if isinstance(command, _Send) and command.order is not None:
                self._unacked(command.order, reason)

    def _settle(self, message: OrderResult | ErrorMessage, main: bool) -> None:
        """An ack settles the pending order it answers: by id, or the oldest id-less one; on
        the old connection of a rotation, one of the orders written there."""
        pending = self.pending if main else self.old_pending
        request = message.id
        for index, (order_id, _) in enumerate(pending):
            if order_id == request:
                del pending[index]
                if not main:
                    self.rot_wake.set()
                return

    def stop_threadsafe(self) -> None:
        # stop() from another thread (or the handle collected there, or after the loop closed):
        # asyncio objects may only be touched on the loop's thread, which must also be woken.
        # From another thread the stop takes effect at the loop's next iteration.
        if self.stopped:
            return
        if self.loop.is_closed():
            self.stopped = True  # nothing can run any more; commands must be refused
        elif threading.get_ident() == self.loop_thread:
            self.stop()
        else:
            try:
                self.loop.call_soon_threadsafe(self.stop)
            except RuntimeError:
                self.stopped = True  # the loop closed meanwhile

    # --- the background task -------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            self._start_reader()
            await self._supervise()
        except asyncio.CancelledError:
            logger.debug("managed websocket stopped")
        except Exception as exc:  # a bug must end the socket visibly, not hang it
            logger.exception("managed websocket task failed")
            self.push_final(Disconnected(f"internal error: {exc!r}"))
        finally:
            self.stopped = True
            # A task collected after its loop closed (see _loop_closed) can schedule nothing.
            if not self.loop.is_closed():
                await self._end()

    async def _end(self) -> None:
        self._cancel_rotation(_policy.SOCKET_STOPPED_BEFORE_ACK)
        self._stop_reader()
        if self.writing is not None and self._withdraw_pending(self.writing):
            self._unacked(self.writing, _policy.SOCKET_STOPPED_WHILE_WRITING)
        self._unack_pending(_policy.SOCKET_STOPPED_BEFORE_ACK)
        self._unsend_queued(_policy.NOT_SENT_STOPPED)
        self._wake_consumer()
        await close_gracefully(self.conn)

    def _task_done(self, _: object) -> None:
        # A task cancelled before its first step (a shutdown handler cancelling every task) never
        # enters `_run`, whose `finally` would then never close the connection: this does.
        # After a normal end every step is a no-op.
        self.stopped = True
        self._unsend_queued(_policy.NOT_SENT_STOPPED)
        self._wake_consumer()
        abort(self.conn)
        self.loop_gone.detach()
        timer = self.loop_watch()
        if timer is not None:
            timer.cancel()

    def _loop_closed(self) -> None:
        # Nothing on this loop runs again, not even a transport's abort(): shut the socket down
        # directly, so that the peer sees the end now and not when the transport is collected.
        # Through a duplicate, because uvloop's transport sockets refuse shutdown().
        self.stopped = True
        transport = self.conn.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is None:
            return
        with contextlib.suppress(OSError, ValueError):
            dup = socket.fromfd(sock.fileno(), sock.family, sock.type)
            with dup:
                dup.shutdown(socket.SHUT_RDWR)

    def _finish(self, reason: str) -> None:
        logger.warning("managed websocket disconnected: %s", reason)
        self.push_final(Disconnected(reason))

    def _wake_supervisor(self, _: object = None) -> None:
        wakeup = self.wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _sleep_until_woken(self, timeout: float | None) -> None:
        wakeup = self.wakeup = self.loop.create_future()
        timer = None if timeout is None else self.loop.call_later(timeout, self._wake_supervisor)
        try:
            await wakeup
        finally:
            self.wakeup = None
            if timer is not None:
                timer.cancel()

    async def _supervise(self) -> None:
        idle_timeout = self.config.idle_timeout
        keepalive = self.config.keepalive_interval
        while True:
            # Python 3.11's wait_for can swallow a cancellation that races the inner result, so
            # stop() is also checked here, not only delivered as a CancelledError.
            if self.stopped:
                # Flush: what was accepted before stop() is written before the close (the
                # stop timer cancels this after STOP_GRACE).
                while self.commands:
                    if not await self._apply(self.commands.popleft()):
                        return
                return
            if self.commands:
                if not await self._apply(self.commands.popleft()):
                    return
                continue
            reader = self.reader
            if reader is not None and reader.done():
                switched = self.rot_switched
                if self.rot_new is not None and switched is not None:
                    # The old connection ended during the overlap: the new one takes over.
                    await asyncio.shield(switched)
                    continue
                reason = self.loss or _policy.STREAM_ENDED
                self._cancel_rotation(_policy.lost_before_ack(reason))
                if not await self._reconnect(reason):
                    return
                continue
            timeout = None
            # A notice seen while a rotation is under way waits for its end.
            if self.rotate_for is not None and self.rotation is None:
                reason, self.rotate_for = self.rotate_for, None
                self._start_rotation(reason)
            max_age = self.config.max_connection_age
            if max_age > 0 and self.rotation is None:
                until_age = max(self.conn_opened_at + max_age, self.rotation_retry)
                until_age -= time.monotonic()
                if until_age <= 0:
                    self._start_rotation("max_connection_age")
                    continue
                timeout = until_age
            if idle_timeout > 0:
                until_idle = self.last_message_at + idle_timeout - time.monotonic()
                timeout = until_idle if timeout is None else min(timeout, until_idle)
                if until_idle <= 0:
                    reason = _policy.idle_timeout(idle_timeout)
                    if not await self._reconnect(reason):
                        return
                    continue
            if keepalive > 0:
                until_keepalive = self.last_sent_at + keepalive - time.monotonic()
                if until_keepalive <= 0:
                    await self._send_keepalive()
                    continue
                timeout = until_keepalive if timeout is None else min(timeout, until_keepalive)
            await self._sleep_until_woken(timeout)

    async def _send_keepalive(self) -> None:
        request_id = _policy.KEEPALIVE_ID_BASE + self.next_keepalive % 2**32
        self.next_keepalive += 1
        try:
            await self._send(client_frame("PING", request_id, has_params=False))
        except Exception as exc:  # noqa: BLE001 - the reader reports the loss
            logger.debug("keepalive send failed (%r), connection presumed lost", exc)
            self.last_sent_at = time.monotonic()  # no retry loop on a dead connection
            return
        ids = self.keepalive_ids
        if len(ids) >= MAX_OUTSTANDING_KEEPALIVES:
            del ids[next(iter(ids))]
        ids[request_id] = None
        self.keepalives_sent += 1

    def _intercept(self, message: Message) -> bool:
        """True when `message` must not reach the user: the pong of one of our keepalives."""
        if isinstance(message, Pong):
            ids = self.keepalive_ids
            return bool(ids) and message.id is not None and ids.pop(message.id, 0) is None
        if isinstance(message, Status) and message.status == "disconnecting":
            logger.warning(
                "server is disconnecting this connection (%s), reason: %s",
                message.client_id,
                message.reason or "none given",
            )
            self.rotate_for = message.reason or "disconnecting"
            self._wake_supervisor()
        return False

    def _start_reader(self) -> None:
        self.loss = None
        self.last_message_at = time.monotonic()
        # A fresh connection: the server's idle clock starts now, and the old connection's
        # keepalive pongs can no longer arrive.
        self.last_sent_at = self.last_message_at
        self.keepalive_ids.clear()
        self.reader = self.loop.create_task(self._read(self.conn))
        self.reader.add_done_callback(self._wake_supervisor)

    async def _read(self, conn: ClientConnection) -> None:
        """The hot path: receive, parse, queue. Wakes the consumer at most once per wait. Also
        reads the other connection of a rotation (`conn` is then not `self.conn`)."""
        recv = conn.recv
        parse = parse_message
        monotonic = time.monotonic
        wall_clock = time.time
        intercept = self._intercept
        enqueue = self._enqueue
        books = self.books
        try:
            while True:
                frame = await recv()
                read_at = monotonic()
                read_wall = wall_clock()
                main = conn is self.conn
                if main:
                    self.last_message_at = read_at
                message = parse(frame)
                cls = message.__class__
                if main and (cls is Pong or cls is Status) and intercept(message):
                    continue
                if (cls is OrderResult or cls is ErrorMessage) and (
                    self.pending or self.old_pending
                ):
                    self._settle(message, main)  # type: ignore[arg-type]
                # The wire size (characters for a text frame: no encode on the hot path). An
                # empty queue always takes the event, so a frame above the budget still arrives.
                size = len(frame)
                dedup = self.dedup
                if dedup is not None:  # only while two connections are read
                    self._admit(dedup, message, size, main == dedup.switched)
                    continue
                # The book sees what is delivered (after a rotation's dedup), never a duplicate.
                book_event = None
                if cls is DepthUpdate and books:
                    book_event = self._apply_book(message)  # type: ignore[arg-type]
                enqueue(message, size, read_at, read_wall)
                if book_event is not None:
                    self.push(book_event)
        except ConnectionClosed as exc:
            if conn is self.conn:
                self.loss = close_reason(exc)
        except Exception as exc:  # noqa: BLE001 - any transport failure means reconnect
            if conn is self.conn:
                self.loss = close_reason(exc)

    def _stop_reader(self) -> None:
        reader, self.reader = self.reader, None
        if reader is not None and not reader.done():
            reader.remove_done_callback(self._wake_supervisor)
            reader.cancel()

    def _drop_connection(self) -> None:
        self._stop_reader()
        abort(self.conn)

    async def _send(self, frame: str) -> None:
        """Send a frame, or raise _WriteFailed: websockets' own failures all mean the connection
        is gone, and so does a transport found closing right after the write (asyncio drops a
        write on a socket the peer has reset without telling the writer). `written` tells
        whether bytes left meanwhile (`CountingConnection.bytes_out`).
        """
        conn = self.conn
        before = conn.bytes_out
        idle = self.config.idle_timeout
        try:
            if idle > 0:
                # A peer that stops reading must not freeze the socket: as in the native
                # backend, a send stalled for idle_timeout counts as a lost connection.
                try:
                    await asyncio.wait_for(conn.send(frame), idle)
                except asyncio.TimeoutError:
                    raise ConnectionError(_policy.send_stalled(idle)) from None
            else:
                await conn.send(frame)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise _WriteFailed(close_reason(exc), conn.bytes_out != before) from exc
        transport = conn.transport
        if transport is None or transport.is_closing():
            raise _WriteFailed(
                "the connection was closing; the frame was not delivered", conn.bytes_out != before
            )
        self.last_sent_at = time.monotonic()

    def _oversized(self, frame: str) -> int | None:
        size = len(frame.encode())
        return size if size > self.config.max_message_size else None

    async def _apply(self, command: _Command) -> bool:
        """Apply one command; False when the socket has ended."""
        if isinstance(command, _Send):
            return await self._send_with_retry(command)
        if isinstance(command, _Resubscribe):
            logger.info("order book out of sync; resubscribing %s", command.topics)
            try:
                await self._send(client_frame("UNSUBSCRIBE", None, command.topics))
                await self._send(client_frame("SUBSCRIBE", None, command.topics))
            except _WriteFailed as exc:  # the reader reports the loss
                logger.debug("resubscribe failed (%s), connection presumed lost", exc.reason)
            return True
        if isinstance(command, _Unsubscribe):
            topics = self.applied.remove_present(command.topics)
            method = "UNSUBSCRIBE"
        else:
            topics = self.applied.insert_new(command.topics)
            method = "SUBSCRIBE"
        if not topics:
            return True
        frame = client_frame(method, command.id, topics)
        size = self._oversized(frame)
        if size is not None:
            # Not a transport failure: reconnecting would not help. The topics stay in the
            # replay set, as in the SDK, so a later replay reports it.
            logger.error("%s frame of %d bytes exceeds max_message_size; not sent", method, size)
            return True
        try:
            await self._send(frame)
        except _WriteFailed as exc:  # the replay after the reconnect covers it
            logger.debug("%s send failed (%s); the reconnect will replay", method, exc.reason)
        other = self.rot_new
        if other is not None:  # the overlap of a rotation: the new connection follows too
            try:
                await other.send(client_frame(method, None, topics))
            except Exception as exc:  # noqa: BLE001 - its reader reports the loss
                logger.debug("%s on the rotation's new connection failed (%r)", method, exc)
        return True

    async def _write_order(self, command: _Send) -> None:
        """`_send`, tracking the order it carries. It is pending from before the write: the
        write may yield to the reader, which can read the order's ack before it returns."""
        order = self.writing = command.order
        if order is not None:
            self.pending.append(order)
        try:
            await self._send(command.frame)
        except _WriteFailed:
            if order is not None and not self._withdraw_pending(order):
                return  # acked while its write failed: settled; the reader reports the loss
            raise
        except asyncio.CancelledError:
            if order is not None and self._withdraw_pending(order):
                self._unacked(order, _policy.SOCKET_STOPPED_WHILE_WRITING)
            raise
        finally:
            self.writing = None

    def _withdraw_pending(self, order: _Order) -> bool:
        """Takes this very entry out of `pending`; False when an ack settled it already."""
        for index in range(len(self.pending) - 1, -1, -1):
            if self.pending[index] is order:
                del self.pending[index]
                return True
        return False

    async def _send_with_retry(self, command: _Send) -> bool:
        order = command.order
        max_age = self.config.order_max_age
        if order is not None and max_age is not None:
            waited = time.monotonic() - command.queued_at
            if waited > max_age:
                self._unacked(order, _policy.too_old(waited, max_age))
                return True
        size = self._oversized(command.frame)
        if size is not None:
            logger.error(
                "%s frame of %d bytes exceeds max_message_size; not sent", command.method, size
            )
            return True
        try:
            await self._write_order(command)
            return True
        except _WriteFailed as exc:
            reason = _policy.send_failed(command.method, exc.reason)
            retry = not (exc.written and order is not None)
            if retry:
                logger.warning("%s; reconnecting to send it once more", reason)
            else:
                # Bytes of the order left: the exchange may have it, so it is never resent.
                self._unacked(order, _policy.lost_while_writing(exc.reason))  # type: ignore[arg-type]
        if self.stopped:
            if retry and order is not None:
                self._unacked(order, _policy.not_sent_while_stopping(reason))
            return False
        if not await self._reconnect(reason):
            if retry and order is not None:
                self._unacked(order, _policy.NOT_SENT_STOPPED)
            return False
        if not retry:
            return True
        try:
            await self._write_order(command)
        except _WriteFailed as exc:  # the SDK gives up after one retry
            if order is not None:
                self._unacked(order, _policy.retry_failed(exc.reason))
            else:
                logger.warning(
                    "%s retry after reconnect also failed (%s)", command.method, exc.reason
                )
        return True

    async def _reconnect(self, reason: str) -> bool:
        """The reconnect procedure. True with a new connection up and replayed; False when the
        socket has ended (Disconnected queued)."""
        lost_at = time.monotonic()
        self._cancel_rotation(_policy.lost_before_ack(reason))
        self.live = False
        self._drop_connection()
        logger.warning("connection lost (%s), reconnecting", reason)
        # Before the first `Reconnecting`: a consumer that sees it must find the books out of sync.
        self.books.connection_lost(lost_at)
        unacked = _policy.lost_before_ack(reason)
        config = self.config
        backoff = self.backoff
        # API.md: a reconnect whose connection died before backoff_reset_after counts as a failed
        # attempt for the backoff (not for max_retries), so accept-then-drop servers get
        # exponential relief.
        backoff.connection_lost(lost_at - self.connected_since, self.connected_by_reconnect)
        attempt = 0
        while True:
            attempt += 1
            if config.max_retries is not None and attempt > config.max_retries:
                self._unack_pending(unacked)  # max_retries=0: no Reconnecting came first
                reason = _policy.exhausted(config.max_retries)
                self._unsend_queued(_policy.not_sent(reason))
                self._finish(reason)
                return False
            delay = backoff.delay()
            logger.info(
                "reconnect attempt %d in %.3fs (backoff %.3fs)", attempt, delay, backoff.current
            )
            self.push(Reconnecting(reason, attempt, delay))
            if attempt == 1:
                self._unack_pending(unacked)
            await asyncio.sleep(delay)
            try:
                self.conn = await open_connection(self.url, config, self.tls)
                if self.stopped:
                    return False
            except ConnectError as exc:
                logger.warning("reconnect attempt %d failed: %s", attempt, exc)
                reason = _policy.reconnect_attempt_failed(attempt, str(exc))
                backoff.failed()
                continue
            replayed = await self._replay()
            if replayed is None:
                return False
            if isinstance(replayed, str):
                abort(self.conn)
                reason = _policy.reconnect_attempt_failed(attempt, _policy.replay_lost(replayed))
                backoff.failed()
                continue
            break
        now = time.monotonic()
        self.live = True
        self.connected_since = now
        self.conn_opened_at = now
        self.rotation_retry = 0.0
        self.connected_by_reconnect = True
        self.reconnects += 1
        self._start_reader()
        logger.info("reconnected after %d attempt(s), %.3fs down", attempt, now - lost_at)
        self.push(Reconnected(attempt, now - lost_at))
        return True

    async def _replay(self) -> bool | str | None:
        """Send the whole replay set as ONE subscribe with id null. True: sent (or nothing to
        send); a str: the connection failed, why (try again); None: the socket has ended."""
        if not self.applied:
            return True
        topics = list(self.applied)
        frame = client_frame("SUBSCRIBE", None, topics)
        size = self._oversized(frame)
        if size is not None:
            abort(self.conn)
            reason = _policy.replay_too_large(size, self.config.max_message_size)
            self._unsend_queued(_policy.not_sent(reason))
            self._finish(reason)
            return None
        logger.info("replaying %d subscription(s)", len(topics))
        try:
            await self._send(frame)
        except _WriteFailed as exc:
            logger.warning("replay lost the new connection (%s); retrying", exc.reason)
            return exc.reason
        return True

    # --- rotation (make-before-break) -------------------------------------------------------

    def _enqueue(
        self,
        message: Message,
        size: int,
        read_at: float | None = None,
        read_wall: float | None = None,
    ) -> None:
        """Queue a message (an empty queue always takes one, so a frame above the byte budget
        still arrives). A message of a conflated topic takes the place of its topic's older
        undelivered message, in place: O(1) and bounded (see API.md, Conflation)."""
        self.messages_received += 1
        if read_at is None or read_wall is None:
            read_at, read_wall = time.monotonic(), time.time()
        sent = getattr(message, "event_time", None)
        if sent is not None:
            # A clock behind the exchange's (skew) counts as no delay, not as a huge one.
            self.exchange_delay.record(read_at, max(0, int(read_wall * 1e6) - sent))
        events = self.events
        slots = self.conflation.slots.get(message.__class__) if self.conflation.slots else None
        symbol = ""
        if slots is not None and (symbol := message.symbol) in slots:  # type: ignore[attr-defined]
            seq = slots[symbol]
            if seq is not None and seq >= self.base:
                index = seq - self.base
                after = self.queued_bytes - self.sizes[index] + size
                if len(events) == 1 or after <= self.max_bytes:
                    events[index] = message
                    self.sizes[index] = size
                    self.stamps[index] = read_at
                    self.queued_bytes = after
                    self.events_conflated += 1
                else:
                    self._count_drop()
                return
        else:
            slots = None
        if len(events) < self.capacity and (
            not events or self.queued_bytes + size <= self.max_bytes
        ):
            if slots is not None:
                slots[symbol] = self.base + len(events)
            events.append(message)
            self.sizes.append(size)
            self.stamps.append(read_at)
            self.queued_bytes += size
            if self.waiter is not None or self.handler is not None:
                self._wake_consumer()
        else:
            self._count_drop()

    def _apply_book(self, message: DepthUpdate) -> BookGap | BookResynced | None:
        """Apply a depth message to its book; a gap also queues the resubscribe of its topic."""
        event, resubscribe = self.books.apply(message, self.last_message_at)
        if resubscribe:
            self.enqueue(_Resubscribe(resubscribe))
        return event

    def _admit(self, dedup: Dedup, message: Message, size: int, from_new: bool) -> None:
        out: list[tuple[Any, int]] = []
        dedup.admit((message, size), from_new, out)
        for item, item_size in out:
            book_event = (
                self._apply_book(item) if type(item) is DepthUpdate and self.books else None
            )
            self._enqueue(item, item_size)
            if book_event is not None:
                self.push(book_event)
        if self.rot_new is not None and dedup.caught_up():
            self.rot_wake.set()

    def _start_rotation(self, reason: str) -> None:
        logger.info("rotating to a new connection (%s)", reason)
        # Filtering from the start: what the old connection delivers while the new one opens
        # is what the new one may repeat.
        self.dedup = Dedup()
        self.rotation = self.loop.create_task(self._rotate(reason))

    def _unack_old(self, reason: str) -> None:
        old, self.old_pending = list(self.old_pending), deque()
        for order in old:
            self._unacked(order, reason)

    def _close_in_background(self, conn: CountingConnection) -> None:
        task = self.loop.create_task(close_gracefully(conn))
        self.closing.add(task)
        task.add_done_callback(self.closing.discard)

    def _end_overlap(self) -> None:
        self.rot_new = None
        switched, self.rot_switched = self.rot_switched, None
        if switched is not None and not switched.done():
            switched.set_result(None)

    def _cancel_rotation(self, reason: str) -> None:
        """Abandon a rotation: its other connection is dropped, the orders waiting on the old
        one become OrderUnacked(reason)."""
        task, self.rotation = self.rotation, None
        if task is not None and not task.done():
            task.cancel()
        for conn in (self.rot_new, self.rot_old):
            if conn is not None:
                abort(conn)
        self.rot_old = None
        self.dedup = None
        self._end_overlap()
        self._unack_old(reason)

    def _rotation_failed(self, why: str) -> None:
        logger.warning("rotation failed, staying on the current connection: %s", why)
        self.dedup = None
        self._end_overlap()
        self.rotation_retry = time.monotonic() + max(self.config.max_backoff, ROTATION_MIN_RETRY)
        self.rotation = None
        self._wake_supervisor()

    async def _wait_rotation(self, deadline: float) -> None:
        self.rot_wake.clear()
        try:
            await asyncio.wait_for(self.rot_wake.wait(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            pass

    async def _rotate(self, reason: str) -> None:
        """Open, replay, overlap, switch, drain: see `bullet_ws.pure.rotation`."""
        try:
            new = await open_connection(self.url, self.config, self.tls)
        except ConnectError as exc:
            self._rotation_failed(str(exc))
            return
        if self.stopped or self.rotation is not asyncio.current_task():
            abort(new)
            return
        if self.applied:
            try:
                await new.send(client_frame("SUBSCRIBE", None, list(self.applied)))
            except Exception as exc:  # noqa: BLE001 - any failure: the rotation failed
                abort(new)
                self._rotation_failed(f"the new connection was lost: {close_reason(exc)}")
                return
        old, old_reader = self.conn, self.reader
        if old_reader is None or old_reader.done():
            abort(new)  # the old one is already gone: the supervisor reconnects
            self._rotation_failed("the current connection ended first")
            return
        dedup = self.dedup
        if dedup is None:  # cancelled meanwhile
            abort(new)
            return
        dedup.replay_acked = dedup.nothing_replayed = not self.applied
        self.rot_switched = self.loop.create_future()
        self.rot_new = new
        self.dedup = dedup
        opened = time.monotonic()
        wake = self.rot_wake.set
        new_reader = self.loop.create_task(self._read(new))
        new_reader.add_done_callback(lambda _: wake())
        old_reader.add_done_callback(lambda _: wake())
        deadline = opened + ROTATION_CATCH_UP
        lost: str | None = None
        while True:
            if new_reader.done():
                abort(new)
                self._rotation_failed("the new connection was lost")
                return
            if old_reader.done():
                lost = self.loss or _policy.STREAM_ENDED
                break
            if dedup.caught_up() or time.monotonic() >= deadline:
                break
            await self._wait_rotation(deadline)
        # The switch: no await from here to the Rotated event.
        caught_up = dedup.caught_up()
        out: list[tuple[Any, int]] = []
        dedup.force_switch(out)
        for item, size in out:
            self._enqueue(item, size)
        old_reader.remove_done_callback(self._wake_supervisor)
        self.conn = new
        self.reader = new_reader
        new_reader.add_done_callback(self._wake_supervisor)
        self.old_pending.extend(self.pending)
        self.pending.clear()
        self.rot_old = old
        self.rotate_for = None  # a notice seen on the old one during the overlap was the old's
        now = time.monotonic()
        self.last_message_at = self.last_sent_at = self.conn_opened_at = now
        self.keepalive_ids.clear()
        self.rotations += 1
        logger.info(
            "rotated to the new connection (%s) after %.3fs of overlap%s",
            reason,
            now - opened,
            "" if caught_up else "; not every stream had caught up",
        )
        self.push(Rotated(reason, now - opened))
        self._end_overlap()
        self._wake_supervisor()
        if lost is not None:
            self._unack_old(_policy.lost_before_ack(lost))
        # The old connection is read for the acks of its orders, then closed.
        drain_deadline = now + ROTATION_DRAIN
        while self.old_pending and not old_reader.done() and time.monotonic() < drain_deadline:
            await self._wait_rotation(drain_deadline)
        old_reader.cancel()
        self.rot_old = None
        self._close_in_background(old)
        self._unack_old(_policy.rotated_away())
        if not caught_up:  # keep dropping what the new one repeats, for a while
            await asyncio.sleep(max(0.0, drain_deadline - time.monotonic()))
        self.dedup = None
        self.rotation = None
        self._wake_supervisor()  # a notice that came meanwhile starts the next rotation


class ManagedWebSocket:
    """An auto-reconnecting Bullet WebSocket (pure-Python backend). Get one from `connect()`.

    Commands are synchronous and fire-and-forget: they queue a command for the background task
    (StoppedError once stopped, BusyError when 256 are queued; bad arguments raise TypeError or
    ValueError and queue nothing). Server messages, `Reconnecting`, `Reconnected` and
    `Disconnected` arrive through `recv()`, `recv_batch()` or `async for`.
    """

    __slots__ = ("__weakref__", "_finalizer", "_session")

    def __init__(self, session: _Session) -> None:
        self._session = session
        self._finalizer = weakref.finalize(self, session.stop_threadsafe)

    def __repr__(self) -> str:
        state = "stopped" if self._session.stopped else "running"
        return f"<ManagedWebSocket {self._session.url!r} {state}>"

    # --- commands -------------------------------------------------------------------------------

    def subscribe(
        self, topics: Iterable[str], id: int | None = None, conflate: bool = False
    ) -> None:
        """Subscribe; only topics not yet active are sent (nothing if none are new).

        `conflate=True` (bookTicker, markPrice and depth topics only) keeps only each topic's
        newest undelivered message while the consumer is behind; a local setting that also
        applies to (or, with False, is removed from) topics already active.
        """
        session = self._session
        wanted = _validate.topics_arg(topics)
        request_id = _validate.id_arg(id)
        conflated = _validate.conflate_arg(wanted, conflate)
        session.check_can_enqueue()
        requested = session.requested.copy()
        new = requested.insert_new(wanted)
        if new:
            encoded = sum(map(json_string_size, new))
            session.check_size(
                "topics", "SUBSCRIBE", topics_frame_size("SUBSCRIBE", request_id, len(new), encoded)
            )
            session.check_size("topics", "subscription replay", requested.replay_frame_size())
            session.requested = requested
            session.enqueue(_Subscribe(new, request_id))
            session.books.topics_added(new, time.monotonic())
        session.conflation.set(wanted, conflated)

    def unsubscribe(self, topics: Iterable[str], id: int | None = None) -> None:
        """Unsubscribe; only active topics are sent and dropped from the replay set."""
        session = self._session
        unwanted = _validate.topics_arg(topics)
        request_id = _validate.id_arg(id)
        session.check_can_enqueue()
        requested = session.requested.copy()
        active = requested.remove_present(unwanted)
        if active:
            encoded = sum(map(json_string_size, active))
            session.check_size(
                "topics",
                "UNSUBSCRIBE",
                topics_frame_size("UNSUBSCRIBE", request_id, len(active), encoded),
            )
            session.requested = requested
            session.enqueue(_Unsubscribe(active, request_id))
            session.books.topics_removed(active, time.monotonic())
            session.conflation.set(active, False)

    def book(self, symbol: str) -> OrderBook:
        """The live order book of `symbol`, kept from its subscribed depth topic
        (`SYMBOL@depth5|10|20`); `BookNotFound` (a KeyError) when there is none.

        Its levels are kept from its subscribe until its first depth message 5 s or more after
        it (`BOOK_UNREAD_GRACE`), and for good from the first call: called right after
        `subscribe` it misses nothing, whatever came first. First called once the levels were
        dropped, it is not synced until the next snapshot (periodic; asked for after a second
        without one)."""
        book = self._session.books.book(_validate.symbol_arg(symbol), time.monotonic())
        if book is None:
            raise BookNotFound(symbol)
        return book

    def _send_order(self, method: str, tx: str | bytes, id: int | None) -> None:
        payload = _validate.tx_arg(tx)
        request_id = _validate.id_arg(id)
        self._session.check_can_enqueue()
        frame = client_frame(method, request_id, {"tx": payload})
        self._session.check_size("tx", method, len(frame))  # ASCII: characters are bytes
        self._session.enqueue(_Send(method, frame, (request_id, _ORDER_NAMES[method])))

    def submit(self, tx: str | bytes, id: int | None = None) -> None:
        """Send SUBMIT with a signed transaction (base64 str or raw bytes): the way forward for
        every order action. The ack is an `OrderResult` with `method == "submit"`."""
        self._send_order("SUBMIT", tx, id)

    def order_place(self, tx: str | bytes, id: int | None = None) -> None:
        """Send ORDER.PLACE with a signed transaction (base64 str or raw bytes); deprecated
        upstream in favour of `submit`, still on the wire."""
        self._send_order("ORDER.PLACE", tx, id)

    def order_cancel(self, tx: str | bytes, id: int | None = None) -> None:
        """Send ORDER.CANCEL with a signed transaction (base64 str or raw bytes)."""
        self._send_order("ORDER.CANCEL", tx, id)

    def order_amend(self, tx: str | bytes, id: int | None = None) -> None:
        """Send ORDER.AMEND with a signed transaction (base64 str or raw bytes)."""
        self._send_order("ORDER.AMEND", tx, id)

    def order_cancel_all(self, tx: str | bytes, id: int | None = None) -> None:
        """Send ORDER.CANCEL_ALL with a signed transaction (base64 str or raw bytes)."""
        self._send_order("ORDER.CANCEL_ALL", tx, id)

    def list_subscriptions(self, id: int | None = None) -> None:
        """Ask the server for its subscription list (answered by ListSubscriptionsResult)."""
        request_id = _validate.id_arg(id)
        self._session.check_can_enqueue()
        frame = client_frame("LIST_SUBSCRIPTIONS", request_id, has_params=False)
        self._session.enqueue(_Send("LIST_SUBSCRIPTIONS", frame))

    def ping(self, id: int | None = None) -> None:
        """Send an application-level PING (answered by Pong)."""
        request_id = _validate.id_arg(id)
        self._session.check_can_enqueue()
        self._session.enqueue(_Send("PING", client_frame("PING", request_id, has_params=False)))

    # --- events ---------------------------------------------------------------------------------

    def set_handler(self, handler: Callable[[Event], object] | None) -> None:
        """Push delivery: `handler(event)` for every event, in order, from a loop callback once
        per burst (see the native class). `recv()`, `recv_batch()` and `async for` raise
        RuntimeError while it is set; None returns to them, with what is still queued."""
        handler = _validate.handler_arg(handler)
        session = self._session
        if handler is not None and session.sleepers:
            raise RuntimeError(HANDLER_WHILE_WAITING)
        session.handler = handler
        if handler is not None and session.events:
            session.schedule_delivery()

    async def recv(self) -> Event | None:
        """The next event, or None once the socket has stopped and the queue is drained."""
        session = self._session
        if session.handler is not None:
            raise RuntimeError(HANDLER_SET)
        events = session.events
        while True:
            if events:
                return session.take()
            if session.stopped:
                return None
            await session.wait_for_event()

    async def recv_batch(self, max_events: int = 1024) -> list[Event]:
        """Every queued event up to `max_events` (waits for at least one); [] once stopped."""
        limit = _validate.max_events_arg(max_events)
        session = self._session
        if session.handler is not None:
            raise RuntimeError(HANDLER_SET)
        events = session.events
        while not events:
            if session.stopped:
                return []
            await session.wait_for_event()
        return session.take_some(limit)

    def __aiter__(self) -> ManagedWebSocket:
        return self

    async def __anext__(self) -> Event:
        event = await self.recv()
        if event is None:
            raise StopAsyncIteration
        return event

    # --- lifecycle ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the background task. On a live connection, the commands accepted so far are
        written first (within STOP_GRACE, 1 s); mid-reconnect it stops at once, and queued
        orders become `OrderUnacked("not sent: ...")`. Queued events stay readable; then recv()
        returns None. Callable from any thread."""
        self._session.stop_threadsafe()

    async def close(self) -> None:
        """stop() and wait until the background task has ended."""
        session = self._session
        session.stop()
        await asyncio.wait({session.task})

    async def __aenter__(self) -> ManagedWebSocket:  # noqa: PYI034
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def topics(self) -> frozenset[str]:
        """The active topics (replayed after every reconnect), as of the last call."""
        return frozenset(self._session.requested)

    @property
    def stats(self) -> Stats:
        session = self._session
        now = time.monotonic()
        return Stats(
            messages_received=session.messages_received,
            events_dropped=session.events_dropped,
            reconnects=session.reconnects,
            queued=len(session.events),
            keepalives_sent=session.keepalives_sent,
            rotations=session.rotations,
            events_conflated=session.events_conflated,
            exchange_delay=session.exchange_delay.summary(now),
            delivery_delay=session.delivery_delay.summary(now),
        )


async def open_managed(ws_url: str, config: ManagedWsConfig) -> ManagedWebSocket:
    """The pure backend's opener for `Connect`: the initial connect (never retried), then the
    background task. If cancelled during the connect, the half-open connection is dropped."""
    tls = ssl_context(ws_url, config)
    conn = await open_connection(ws_url, config, tls)
    return ManagedWebSocket(_Session(ws_url, config, tls, conn))
