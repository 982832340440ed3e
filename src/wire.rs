//! The WebSocket stream of one connection, shared by the socket task and the callers' direct
//! writes: an order placed while nothing is queued ahead of it is framed, encrypted and handed to
//! the kernel on the caller's thread, with no hop to the task (issue 15).
//!
//! One lock guards the stream. The task takes it for each poll (never across an await), a
//! direct write for one frame. tungstenite takes a whole frame into its buffer at once, so
//! frames never interleave, and a direct write happens only when the task has nothing ahead of
//! it: no command queued or being written (`outstanding`), no flush of its own under way, none
//! owed. A write the kernel did not take in full is finished by the task (`settle_owed`).

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::config::COMMAND_CAPACITY;
use crate::protocol::ServerMessage;
use crate::tcp::{Lent, Tcp};
use crate::transport::{lost, message_of, Counted, Lost};

/// An order on the wire: its id and `OrderResult.method` name.
pub type SentOrder = (Option<u64>, &'static str);

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<Counted<Tcp>>>;

/// Why the task must give up a connection that direct writes left owing bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwedLoss {
    /// A write failed: the reason of the loss.
    Failed(String),
    /// The bytes of a write of this method did not go within the bound.
    Stalled(&'static str),
}

/// What became of a direct write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direct {
    /// Written (or, when the kernel took part of it, owed to the task's flush): the frame goes
    /// on this connection and nowhere else.
    Sent,
    /// Not attempted: something is ahead of it, or the connection is not open to direct
    /// writes. The caller queues it to the task.
    NotNow,
    /// The write failed before any byte left: the connection is broken and the caller queues
    /// the frame to the task, which sends it as if this attempt had never been.
    Failed,
}

struct State {
    ws: Ws,
    /// Open to direct writes: set by the task while this is its one current connection.
    open: bool,
    /// The task's own write is waiting for the socket: a direct write would go behind it.
    task_flushing: bool,
    /// A direct write of this method left bytes in the stream's buffer at this time: the task
    /// must flush them (any flush that empties the buffer does).
    owed: Option<(&'static str, Instant)>,
    /// A direct write of this method failed so: the connection is finished, and the task
    /// reports it as the loss.
    broken: Option<(&'static str, Lost)>,
    /// Orders written directly, oldest first, not yet taken into the task's ledger.
    sent: Vec<SentOrder>,
    /// Frames written directly since the task last looked (`take_sent`).
    unseen: usize,
    /// The task lets the event loop's thread own the reads (`claim_reads`).
    loop_allowed: bool,
    /// Reads the loop made (`read_on_loop`), and their count when the task last found the
    /// socket readable (`take_back_if_stalled`).
    loop_read_count: u64,
    stalled_at: Option<u64>,
    /// What the loop met that ends the connection, for the task to report.
    handback: Option<Lost>,
    /// The task's last wait on this stream (a read while the loop owns them, a write): woken
    /// when the reads change hands, as the socket's registration changes with them.
    task_waker: Option<Waker>,
    /// The task read messages it has not queued yet (`delivered`): a read of the loop now
    /// could queue newer ones ahead of them, so the loop may not claim the reads.
    task_holds: bool,
}

/// What a read on the loop's thread did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopRead {
    /// The loop does not own the reads (any more): nothing was read.
    NotMine,
    /// Read until the socket had no more.
    Drained,
    /// A close or a failure: what came before it is queued, and the reads went back to the
    /// task, which reports the loss.
    Lost,
    /// Stopped at the bound with more to read: a flood, which the task keeps up with better,
    /// parsing on its own thread while the loop's thread builds the events. The reads went
    /// back to the task, which reads what is left (buffered already, perhaps).
    Flood,
}

pub struct Wire {
    state: Mutex<State>,
    written: Arc<AtomicU64>,
    owed: Notify,
    /// The loop owns the reads: the task does not read until it takes them back. Changed only
    /// under `state`'s lock, with the socket's registration (`set_loop_reads`); read without it
    /// for a lock-free look.
    loop_reads: AtomicBool,
}

impl Wire {
    pub(crate) fn new(ws: Ws, written: Arc<AtomicU64>) -> Self {
        Wire {
            state: Mutex::new(State {
                ws,
                open: false,
                task_flushing: false,
                owed: None,
                broken: None,
                sent: Vec::new(),
                unseen: 0,
                loop_allowed: false,
                loop_read_count: 0,
                stalled_at: None,
                handback: None,
                task_waker: None,
                task_holds: false,
            }),
            written,
            owed: Notify::new(),
            loop_reads: AtomicBool::new(false),
        }
    }

    /// The socket's descriptor (for the consumer's watch: `Config::loop_reads`, `inbound_spin`).
    pub fn raw_fd(&self) -> Option<i32> {
        socket_fd(&self.state.lock().ws)
    }

    pub fn bytes_written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Writes `frame` on the caller's thread when nothing is ahead of it: `outstanding` counts
    /// the commands queued to the task and not yet written. Never blocks. At most
    /// `COMMAND_CAPACITY` frames go this way between two looks of the task, the bound its queue
    /// puts on commands it has not seen: a caller that floods still meets `Busy`, and the
    /// ledger of orders written here stays bounded.
    pub fn write(
        &self,
        frame: &str,
        method: &'static str,
        order: Option<SentOrder>,
        outstanding: &AtomicUsize,
    ) -> Direct {
        let mut st = self.state.lock();
        if !st.open
            || st.task_flushing
            || st.owed.is_some()
            || st.broken.is_some()
            || st.unseen >= COMMAND_CAPACITY
            || outstanding.load(Ordering::Acquire) != 0
        {
            return Direct::NotNow;
        }
        let before = self.bytes_written();
        // The waker is never woken: a write the kernel does not take in full is the task's to
        // finish (`owed`), with its own waker.
        let mut cx = Context::from_waker(Waker::noop());
        let result = match st.ws.start_send_unpin(Message::text(frame)) {
            Ok(()) => match st.ws.poll_flush_unpin(&mut cx) {
                Poll::Ready(r) => r,
                Poll::Pending => {
                    st.owed = Some((method, Instant::now()));
                    Ok(())
                }
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                st.sent.extend(order);
                st.unseen += 1;
                let owed = st.owed.is_some();
                drop(st);
                if owed {
                    self.owed.notify_one();
                }
                Direct::Sent
            }
            Err(e) => {
                st.broken = Some((method, lost(e)));
                let left = self.bytes_written() != before;
                // Bytes of it left: the exchange may have it, so it is the task's to report
                // when the connection's loss is handled, never to send again.
                if left {
                    st.sent.extend(order);
                }
                drop(st);
                self.owed.notify_one();
                if left {
                    Direct::Sent
                } else {
                    Direct::Failed
                }
            }
        }
    }

    /// Opens or closes the connection to direct writes. Closing returns the orders written
    /// directly that the task has not taken yet: after it, no more can be written.
    pub fn set_open(&self, open: bool) -> Vec<SentOrder> {
        let mut st = self.state.lock();
        st.open = open;
        if !open {
            self.revoke(&mut st);
        }
        std::mem::take(&mut st.sent)
    }

    // ---- reads on the event loop's thread (`Config::loop_reads`) ----

    /// Lets the loop claim the reads, or takes them back (the task then reads again). Called by
    /// the task: with `false` before it needs every message itself (a rotation's filter), with
    /// `true` only when it has queued all it read, also what it read of this connection before
    /// publishing it (a rotation's new one), which no `delivered` followed.
    pub fn allow_loop_reads(&self, allowed: bool) {
        let mut st = self.state.lock();
        st.loop_allowed = allowed;
        if allowed {
            st.task_holds = false;
        } else {
            self.revoke(&mut st);
        }
    }

    fn revoke(&self, st: &mut State) {
        st.loop_allowed = false;
        self.set_loop_reads(st, false);
    }

    /// Hands the reads to the loop or back to the task. The socket is registered with the
    /// reactor for writes alone while the loop reads, so that the socket thread does not wake for
    /// every frame; a registration that fails breaks the connection.
    fn set_loop_reads(&self, st: &mut State, on: bool) {
        if self.loop_owns_reads() == on {
            return;
        }
        st.stalled_at = None;
        match tcp_mut(&mut st.ws).map_or(Ok(()), |tcp| tcp.watch_reads(!on)) {
            Ok(()) => self.loop_reads.store(on, Ordering::Relaxed),
            Err(e) if st.broken.is_none() => {
                st.broken = Some(("read", Lost::Error(format!("socket registration: {e}"))));
                self.owed.notify_one();
            }
            Err(_) => {}
        }
        // Its wait was registered with the registration just dropped.
        if let Some(w) = st.task_waker.take() {
            w.wake();
        }
    }

    /// The loop takes over the reads, when the task allows it. When it just did, the socket
    /// to watch: the loop must then read at once (the task may have left whole frames in the
    /// stream's buffer), and whenever it is readable.
    pub fn claim_reads(&self) -> Option<Lent> {
        if self.loop_owns_reads() {
            return None;
        }
        let mut st = self.state.lock();
        let can = st.loop_allowed
            && !self.loop_owns_reads()
            && !st.task_holds
            && st.broken.is_none()
            && st.handback.is_none();
        if !can {
            return None;
        }
        let lent = tcp_mut(&mut st.ws)?.lend().ok()?;
        self.set_loop_reads(&mut st, true);
        self.loop_owns_reads().then_some(lent)
    }

    /// The loop gives the reads back (it could not watch the socket).
    pub fn give_back_reads(&self) {
        let mut st = self.state.lock();
        self.set_loop_reads(&mut st, false);
    }

    /// Whether the loop owns the reads now (a lock-free look).
    pub fn loop_owns_reads(&self) -> bool {
        self.loop_reads.load(Ordering::Relaxed)
    }

    /// Resolves when the loop owns the reads (its claim wakes the task). Cancel-safe.
    pub async fn owned_by_loop(&self) {
        poll_fn(|cx| {
            let mut st = self.state.lock();
            if self.loop_owns_reads() {
                return Poll::Ready(());
            }
            park(&mut st, cx);
            Poll::Pending
        })
        .await
    }

    /// The task queued what it read: the loop may claim the reads again.
    pub fn delivered(&self) {
        self.state.lock().task_holds = false;
    }

    /// Called by the task every `LOOP_READ_CHECK`: when bytes have waited on the socket since
    /// the last check and the loop read nothing meanwhile, its thread is busy or blocked, and
    /// the task takes the reads back, so that pings are still answered. True when it did.
    pub fn take_back_if_stalled(&self) -> bool {
        let mut st = self.state.lock();
        if !self.loop_owns_reads() {
            return false;
        }
        let waiting = socket_fd(&st.ws).is_some_and(readable);
        let count = st.loop_read_count;
        if waiting && st.stalled_at == Some(count) {
            self.set_loop_reads(&mut st, false);
            return true;
        }
        st.stalled_at = waiting.then_some(count);
        false
    }

    /// Reads on the caller's (the loop's) thread what the socket has, up to `max` frames
    /// (control frames count: a flood of pings must not hold the loop) or `max_bytes` of
    /// messages, parsed into `batch`; then calls `deliver` with them and with the orders written
    /// directly since the task last looked, still under the stream's lock: a read of the task
    /// that follows cannot queue its messages ahead of these. Reaching a bound hands the reads
    /// to the task (`Flood`); so does a close or a failure, which the task reports.
    pub fn read_on_loop(
        &self,
        (max, max_bytes): (usize, usize),
        batch: &mut Vec<(ServerMessage, usize)>,
        deliver: impl FnOnce(&mut Vec<(ServerMessage, usize)>, Vec<SentOrder>),
    ) -> LoopRead {
        if !self.loop_owns_reads() {
            return LoopRead::NotMine;
        }
        let mut st = self.state.lock();
        if !self.loop_owns_reads() {
            return LoopRead::NotMine;
        }
        if st.broken.is_some() {
            // A direct write broke the connection: the task reports it; the loop stops reading.
            self.revoke(&mut st);
            return LoopRead::NotMine;
        }
        st.loop_read_count += 1;
        if let Some(tcp) = tcp_mut(&mut st.ws) {
            tcp.expect_bytes();
        }
        let mut cx = Context::from_waker(Waker::noop());
        let mut outcome = LoopRead::Flood;
        let mut pinged = false;
        let mut bytes = 0;
        for _ in 0..max {
            if bytes >= max_bytes {
                break;
            }
            let next = match st.ws.poll_next_unpin(&mut cx) {
                Poll::Pending => {
                    outcome = LoopRead::Drained;
                    break;
                }
                Poll::Ready(Some(Ok(frame))) => {
                    pinged |= matches!(frame, Message::Ping(_));
                    message_of(frame)
                }
                Poll::Ready(Some(Err(e))) => Err(lost(e)),
                Poll::Ready(None) => Err(Lost::Ended),
            };
            let lost = match next {
                Ok(Some(message)) => {
                    bytes += message.1;
                    batch.push(message);
                    continue;
                }
                Ok(None) => continue,
                Err(lost) => lost,
            };
            st.handback = Some(lost);
            self.revoke(&mut st);
            outcome = LoopRead::Lost;
            break;
        }
        // tungstenite queued the pong; what the kernel does not take now, the task flushes.
        // Not while the task's own write waits: its flush takes the pong along, and a flush from
        // here would leave tokio-tungstenite with this thread's no-op waker for that write.
        if pinged
            && st.owed.is_none()
            && st.broken.is_none()
            && !st.task_flushing
            && st.ws.poll_flush_unpin(&mut cx).is_pending()
        {
            st.owed = Some(("pong", Instant::now()));
            self.owed.notify_one();
        }
        st.unseen = 0;
        let sent = std::mem::take(&mut st.sent);
        deliver(batch, sent);
        if outcome == LoopRead::Flood {
            // After this burst is queued: the task's reads come after it.
            self.set_loop_reads(&mut st, false);
        }
        outcome
    }

    /// Hands the orders written directly since the last call, oldest first, to `adopt`, under
    /// the stream's lock: a read on the loop's thread adopts them under it too, so the ledger
    /// keeps the order they were written in.
    pub fn take_sent(&self, adopt: impl FnOnce(Vec<SentOrder>)) {
        let mut st = self.state.lock();
        st.unseen = 0;
        if !st.sent.is_empty() {
            adopt(std::mem::take(&mut st.sent));
        }
    }

    /// Resolves when a direct write broke the connection, or left bytes that the task then
    /// failed to flush, or could not flush within `stall` (zero: no bound) of the write, as a
    /// stalled write of its own would; pending otherwise. Cancel-safe.
    pub async fn settle_owed(&self, stall: Duration) -> OwedLoss {
        loop {
            let (owed, broken) = {
                let st = self.state.lock();
                (st.owed, st.broken.is_some())
            };
            let since = match (owed, broken) {
                (_, true) => None,
                (Some(owed), false) => Some(owed),
                (None, false) => {
                    self.owed.notified().await;
                    continue;
                }
            };
            let flushed = match since {
                Some((method, since)) if !stall.is_zero() => {
                    let deadline = tokio::time::Instant::from_std(since + stall);
                    match tokio::time::timeout_at(deadline, self.flush_owed()).await {
                        Ok(r) => r,
                        Err(_) => return OwedLoss::Stalled(method),
                    }
                }
                _ => self.flush_owed().await,
            };
            if let Err(reason) = flushed {
                return OwedLoss::Failed(reason);
            }
        }
    }

    /// Flushes what direct writes left in the stream's buffer; Err: the reason of the loss.
    pub async fn flush_owed(&self) -> Result<(), String> {
        poll_fn(|cx| {
            let mut st = self.state.lock();
            if let Some((method, lost)) = &st.broken {
                return Poll::Ready(Err(send_failed(method, lost)));
            }
            let Some((method, _)) = st.owed else {
                return Poll::Ready(Ok(()));
            };
            match st.ws.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => {
                    st.owed = None;
                    Poll::Ready(Ok(()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(send_failed(method, &lost(e)))),
                Poll::Pending => {
                    park(&mut st, cx);
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// The task abandoned a write whose frame it sends again elsewhere: what is left of it in
    /// the stream's buffer must never be flushed (not even by the close), or it could arrive
    /// twice.
    pub fn poison(&self, reason: &str) {
        let mut st = self.state.lock();
        if st.broken.is_none() {
            st.broken = Some(("write", Lost::Error(reason.to_owned())));
        }
    }

    /// The next frame, polled under the lock one poll at a time.
    pub(crate) async fn next(&self) -> Option<Result<Message, Lost>> {
        poll_fn(|cx| {
            let mut st = self.state.lock();
            if let Some((_, lost)) = &st.broken {
                return Poll::Ready(Some(Err(lost.clone())));
            }
            if let Some(lost) = st.handback.take() {
                return Poll::Ready(Some(Err(lost)));
            }
            if self.loop_owns_reads() {
                park(&mut st, cx);
                return Poll::Pending;
            }
            // Owed bytes move whenever the task reads, also on a connection a rotation left.
            if let Some((method, _)) = st.owed {
                match st.ws.poll_flush_unpin(cx) {
                    Poll::Ready(Ok(())) => st.owed = None,
                    Poll::Ready(Err(e)) => {
                        let l = lost(e);
                        st.broken = Some((method, l.clone()));
                        return Poll::Ready(Some(Err(l)));
                    }
                    Poll::Pending => {}
                }
            }
            let next = st.ws.poll_next_unpin(cx);
            match next {
                Poll::Ready(Some(Ok(Message::Text(_) | Message::Binary(_)))) => {
                    st.task_holds = true
                }
                Poll::Pending => park(&mut st, cx),
                _ => {}
            }
            next.map(|r| r.map(|r| r.map_err(lost)))
        })
        .await
    }

    /// The task's own write: whole frames, after whatever is already in the stream's buffer.
    pub(crate) async fn send(&self, message: Message) -> Result<(), Lost> {
        let mut message = Some(message);
        let result = poll_fn(|cx| {
            let mut st = self.state.lock();
            if let Some((_, lost)) = &st.broken {
                return Poll::Ready(Err(lost.clone()));
            }
            if let Some(m) = message.take() {
                match st.ws.poll_ready_unpin(cx) {
                    Poll::Pending => {
                        message = Some(m);
                        st.task_flushing = true;
                        park(&mut st, cx);
                        return Poll::Pending;
                    }
                    Poll::Ready(Err(e)) => {
                        st.task_flushing = false;
                        return Poll::Ready(Err(lost(e)));
                    }
                    Poll::Ready(Ok(())) => {}
                }
                if let Err(e) = st.ws.start_send_unpin(m) {
                    st.task_flushing = false;
                    return Poll::Ready(Err(lost(e)));
                }
            }
            let r = st.ws.poll_flush_unpin(cx);
            st.task_flushing = r.is_pending();
            if r.is_pending() {
                park(&mut st, cx);
            }
            if let Poll::Ready(Ok(())) = r {
                st.owed = None;
            }
            r.map_err(lost)
        })
        .await;
        if result.is_err() {
            self.state.lock().task_flushing = false;
        }
        result
    }

    /// Sends a close frame and reads up to the peer's reply (the caller bounds the wait).
    pub(crate) async fn close(&self) {
        {
            let mut st = self.state.lock();
            st.open = false;
            self.revoke(&mut st);
            // A broken stream may still hold the frame whose write failed, which the caller
            // queued to the task: flushing it now could send it twice. Owed bytes still here
            // are those of an order reported unacknowledged: never sent late (a pong's may go).
            if st.broken.is_some() || st.owed.is_some_and(|(method, _)| method != "pong") {
                return;
            }
        }
        let _ = poll_fn(|cx| {
            let mut st = self.state.lock();
            let r = st.ws.poll_close_unpin(cx);
            if r.is_pending() {
                park(&mut st, cx);
            }
            r
        })
        .await;
        while let Some(Ok(_)) = self.next().await {}
    }
}

/// The descriptor of the stream's socket.
fn socket_fd(ws: &Ws) -> Option<i32> {
    match ws.get_ref() {
        MaybeTlsStream::Plain(s) => s.get_ref().raw_fd(),
        MaybeTlsStream::Rustls(s) => s.get_ref().0.get_ref().raw_fd(),
        _ => None,
    }
}

fn tcp_mut(ws: &mut Ws) -> Option<&mut Tcp> {
    match ws.get_mut() {
        MaybeTlsStream::Plain(s) => Some(s.get_mut()),
        MaybeTlsStream::Rustls(s) => Some(s.get_mut().0.get_mut()),
        _ => None,
    }
}

/// Keeps the task's waker, for `set_loop_reads` to wake.
fn park(st: &mut State, cx: &Context<'_>) {
    if !st
        .task_waker
        .as_ref()
        .is_some_and(|w| w.will_wake(cx.waker()))
    {
        st.task_waker = Some(cx.waker().clone());
    }
}

/// Whether a read of the socket would not block: bytes, the peer's end, or an error wait.
/// poll(), not a peeking recv: a recv would consume a pending reset, and the read that follows
/// would then see an orderly end instead of the reset.
fn readable(fd: i32) -> bool {
    #[cfg(unix)]
    {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd on the stack; a zero timeout never blocks.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        n > 0 && pfd.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0
    }
    #[cfg(not(unix))]
    {
        let _ = fd;
        false
    }
}

/// The loss that a failed write of `method` revealed (`_policy.send_failed`).
pub fn send_failed(method: &str, reason: &dyn std::fmt::Display) -> String {
    format!("{method} send failed: {reason}")
}
