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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::config::COMMAND_CAPACITY;
use crate::transport::{lost, Counted, Lost};

/// An order on the wire: its id and `OrderResult.method` name.
pub type SentOrder = (Option<u64>, &'static str);

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<Counted<TcpStream>>>;

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
}

pub struct Wire {
    state: Mutex<State>,
    written: Arc<AtomicU64>,
    owed: Notify,
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
            }),
            written,
            owed: Notify::new(),
        }
    }

    /// The socket's descriptor (for the consumer's watch, `Config::inbound_spin`).
    pub fn raw_fd(&self) -> Option<i32> {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            let st = self.state.lock();
            let tcp = match st.ws.get_ref() {
                MaybeTlsStream::Plain(s) => s.get_ref(),
                MaybeTlsStream::Rustls(s) => s.get_ref().0.get_ref(),
                _ => return None,
            };
            Some(tcp.as_raw_fd())
        }
        #[cfg(not(unix))]
        None
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
        std::mem::take(&mut st.sent)
    }

    /// The orders written directly since the last call, oldest first.
    pub fn take_sent(&self) -> Vec<SentOrder> {
        let mut st = self.state.lock();
        st.unseen = 0;
        if st.sent.is_empty() {
            Vec::new()
        } else {
            std::mem::take(&mut st.sent)
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
                Poll::Pending => Poll::Pending,
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
            st.ws
                .poll_next_unpin(cx)
                .map(|r| r.map(|r| r.map_err(lost)))
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
            // A broken stream may still hold the frame whose write failed, which the caller
            // queued to the task: flushing it now could send it twice. Owed bytes still here
            // are those of an order reported unacknowledged: never sent late.
            if st.broken.is_some() || st.owed.is_some() {
                return;
            }
        }
        let _ = poll_fn(|cx| self.state.lock().ws.poll_close_unpin(cx)).await;
        while let Some(Ok(_)) = self.next().await {}
    }
}

/// The loss that a failed write of `method` revealed (`_policy.send_failed`).
pub fn send_failed(method: &str, reason: &dyn std::fmt::Display) -> String {
    format!("{method} send failed: {reason}")
}
