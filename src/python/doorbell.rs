//! The loop's side of a socket: its doorbell callback (registered with `add_reader`, or rung by a
//! relay thread on loops without it), the socket's own callback while the loop reads it, the
//! waiters they wake and the logs they flush. The socket task (tokio) never touches any of it:
//! it only rings the `WakeFd`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pyo3::exceptions::{PyException, PyNotImplementedError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::convert::{classes, event_to_python};
use super::waiter::Waiter;
use super::wakefd::WakeFd;
use crate::event_queue::{EventQueue, LogLevel, Notify};
use crate::managed::{LoopRead, LoopReader, Shutdown};
use crate::runtime::fork_generation;
use crate::tcp::{lent_number, Lent};

/// What the loop side shares with its reader callback (never with the tokio side).
pub(super) struct LoopSide {
    pub(super) queue: Arc<EventQueue>,
    pub(super) wake: Arc<WakeFd>,
    pub(super) event_loop: Py<PyAny>,
    /// A finished asyncio Future of this loop, result None: what a woken Task's wake-up is
    /// handed (`waiter.rs`).
    pub(super) resolved: Py<PyAny>,
    /// One `Waiter` per sleeping wait; the doorbell wakes them all.
    pub(super) waiters: Mutex<Vec<Py<Waiter>>>,
    /// Pull waits (`recv`, `recv_batch`, `__anext__`) asleep and not yet resumed to their end:
    /// what `set_handler` refuses for. `waiters` cannot tell it: every ring resolves (and
    /// forgets) all of them, even one that brought nothing, and the wait sleeps again after.
    pub(super) pulling: AtomicUsize,
    pub(super) reader_registered: Mutex<bool>,
    /// Rings reach the loop through the helper thread, which also empties the doorbell.
    pub(super) relayed: AtomicBool,
    pub(super) stop: Arc<Shutdown>,
    /// The fork generation this socket was made in (`crate::runtime`).
    pub(super) generation: u64,
    /// `inbound_spin`: how long the doorbell waits, off the GIL, for the socket task's burst
    /// after bytes arrived on the socket; zero: the socket is not watched.
    pub(super) spin: Duration,
    /// `recv_batch`'s buffer, kept between batches: a fresh one would grow to hundreds of
    /// kilobytes by doubling on each batch of a flood.
    pub(super) batch: Mutex<Vec<crate::event_queue::Event>>,
    /// `set_handler`'s callable: while set, the doorbell hands it every event, and the pull
    /// methods refuse (`has_handler` is the lock-free look they take).
    pub(super) handler: Mutex<Option<Py<PyAny>>>,
    pub(super) has_handler: AtomicBool,
    /// `loop_reads`: this thread reads the socket itself while its consumer waits.
    pub(super) reader: Option<LoopReader>,
    /// The reads were just claimed: read on the next call, for what the task left buffered.
    pub(super) read_again: AtomicBool,
    /// While the loop owns the reads: the socket (a duplicate of its descriptor) that the loop
    /// watches with `add_reader`, level-triggered, with a `SocketReader`.
    pub(super) watching: Mutex<Option<Lent>>,
    /// The loop refused to watch a socket: the reads stay with the task from then on, rather than
    /// go back and forth at every sleep.
    pub(super) watch_refused: AtomicBool,
}

impl LoopSide {
    /// Inherited across fork(): the task lives in the parent, and its queue, channel and stop
    /// signal may be locked for ever by threads that do not exist here. Nothing shared with the
    /// task may be touched; the socket behaves as stopped and ended.
    pub(super) fn orphaned(&self) -> bool {
        fork_generation() != self.generation
    }

    pub(super) fn flush_logs(&self, py: Python<'_>) -> PyResult<()> {
        let logs = self.queue.take_logs();
        if logs.is_empty() {
            return Ok(());
        }
        let logger = classes(py)?.logger.bind(py);
        for (level, message) in logs {
            let level = match level {
                LogLevel::Debug => 10,
                LogLevel::Info => 20,
                LogLevel::Warning => 30,
                LogLevel::Error => 40,
            };
            logger.call_method1("log", (level, message))?;
        }
        Ok(())
    }

    /// A new Future to sleep on (a `Waiter`); the doorbell wakes it. Waiters that were cancelled
    /// are forgotten here, so that the list stays as short as the live waiters.
    pub(super) fn sleep_future<'py>(
        self: &Arc<Self>,
        py: Python<'py>,
    ) -> PyResult<Bound<'py, Waiter>> {
        let fut = Bound::new(
            py,
            Waiter::new(self.event_loop.clone_ref(py), self.resolved.clone_ref(py)),
        )?;
        let mut waiters = self.waiters.lock();
        waiters.retain(|w| !w.get().is_done());
        waiters.push(fut.clone().unbind());
        drop(waiters);
        self.going_to_sleep(py);
        Ok(fut)
    }

    /// Hands the queued events, one at a time and in order, to the handler while one is set,
    /// then arms the ring for the next burst. An exception from the handler goes to the loop's
    /// exception handler (as one from any asyncio callback) and delivery goes on; one that is not
    /// an `Exception` (KeyboardInterrupt) propagates, and `resume` is scheduled to go on later.
    pub(super) fn deliver(
        self: &Arc<Self>,
        py: Python<'_>,
        resume: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let q = &self.queue;
        loop {
            let Some(handler) = self.handler.lock().as_ref().map(|h| h.clone_ref(py)) else {
                return Ok(());
            };
            if let Some(event) = q.pop() {
                let event = event_to_python(py, event)?;
                if let Err(e) = handler.call1(py, (event,)) {
                    self.handler_failed(py, e, resume)?;
                }
                continue;
            }
            if q.is_exhausted() {
                return Ok(());
            }
            if q.prepare_wait() {
                self.going_to_sleep(py);
                return Ok(());
            }
        }
    }

    /// The consumer sleeps: with `inbound_spin` or `loop_reads`, the socket's bytes wake this
    /// thread too. With `loop_reads` the loop claims the reads (again, after the task took them
    /// back) and watches the socket for as long as it owns them; the first read is rung at once,
    /// for what the task left in the stream's buffer.
    fn going_to_sleep(self: &Arc<Self>, py: Python<'_>) {
        if self.relayed.load(Ordering::Relaxed) {
            return;
        }
        if let Some(reader) = self
            .reader
            .as_ref()
            .filter(|_| !self.watch_refused.load(Ordering::Relaxed))
        {
            if reader.owns() {
                return;
            }
            if let Some(socket) = reader.claim() {
                if self.watch(py, socket) {
                    self.read_again.store(true, Ordering::Relaxed);
                    self.wake.notify();
                    return;
                }
                self.watch_refused.store(true, Ordering::Relaxed);
                reader.give_back();
            }
        }
        if !self.spin.is_zero() {
            self.wake.arm();
        }
    }

    /// Watches the socket the loop just claimed with the loop's own selector: one wake-up per
    /// arrival, straight to the read. False when the loop refused it.
    fn watch(self: &Arc<Self>, py: Python<'_>, socket: Lent) -> bool {
        self.unwatch(py);
        let callback = match Bound::new(py, SocketReader(self.clone())) {
            Ok(callback) => callback,
            Err(_) => return false,
        };
        let added = self
            .event_loop
            .bind(py)
            .call_method1("add_reader", (lent_number(&socket), callback));
        if added.is_err() {
            return false;
        }
        *self.watching.lock() = Some(socket);
        true
    }

    /// Stops watching the socket, then closes the duplicate: in this order, so that the loop's
    /// selector never holds a number that another descriptor may be given.
    fn unwatch(&self, py: Python<'_>) {
        let Some(socket) = self.watching.lock().take() else {
            return;
        };
        let _ = self
            .event_loop
            .bind(py)
            .call_method1("remove_reader", (lent_number(&socket),));
        drop(socket);
    }

    /// With `loop_reads`: reads the socket on this thread when bytes arrived (or a read is
    /// owed), and queues its messages without ringing. False when the loop does not own the
    /// reads (the task does: its ring brings the messages).
    fn read_socket(&self, py: Python<'_>, arrived: bool) -> bool {
        let Some(reader) = &self.reader else {
            return false;
        };
        if !(self.read_again.swap(false, Ordering::Relaxed) || arrived) {
            return false;
        }
        match reader.read() {
            LoopRead::NotMine | LoopRead::Lost => {
                // The task took the reads back (the loop was busy) or the connection is going:
                // its rings bring the messages now, until the next claim.
                self.unwatch(py);
                false
            }
            LoopRead::Drained => true,
            // The task reads the flood; the loop claims the reads again when it next waits.
            LoopRead::Flood => {
                self.unwatch(py);
                true
            }
        }
    }

    /// What the doorbell, or the watched socket, woke the loop for: reads the socket when it
    /// is the loop's to read, hands the events to the handler, wakes the waiters.
    fn woken(
        self: &Arc<Self>,
        py: Python<'_>,
        resume: &Bound<'_, PyAny>,
        rang: bool,
        arrived: bool,
    ) -> PyResult<()> {
        let read = self.read_socket(py, arrived);
        let sleeping = self.has_handler.load(Ordering::Acquire) || !self.waiters.lock().is_empty();
        // With `inbound_spin`: bytes arrived on the socket and woke this thread along with the
        // socket task, and no ring came with them: wait a little for the task's burst here,
        // rather than for its ring after it (a second wake-up in series). Only for a sleeping
        // consumer. Nothing came in time (a control frame, a swallowed pong): sleep on, the
        // ring still to come.
        if arrived && !read && !rang && sleeping && !self.spin.is_zero() && !self.queue.has_events()
        {
            let spin = self.spin;
            let came = py.detach(|| {
                let deadline = Instant::now() + spin;
                loop {
                    if self.queue.queued_now() > 0 {
                        return true;
                    }
                    if Instant::now() >= deadline {
                        return false;
                    }
                    std::hint::spin_loop();
                }
            });
            if !came {
                return self.flush_logs(py);
            }
        }
        if self.has_handler.load(Ordering::Acquire) {
            self.deliver(py, resume)?;
        }
        // The waiting Tasks run now, one after the other (`Waiter::wake`).
        let waiters = std::mem::take(&mut *self.waiters.lock());
        let mut waiters = waiters.into_iter();
        while let Some(waiter) = waiters.next() {
            if let Err(e) = Waiter::wake(waiter.bind(py)) {
                Waiter::wake_all_later(waiters, py)?;
                return Err(e);
            }
        }
        let flushed = self.flush_logs(py);
        if self.queue.is_ended() {
            self.unregister(py);
            // A Task woken above may have slept again before the end, whose ring this pass
            // drops with the doorbell: it resumes on the next iteration and sees the end.
            let late = std::mem::take(&mut *self.waiters.lock());
            Waiter::wake_all_later(late, py)?;
        }
        flushed
    }

    fn handler_failed(&self, py: Python<'_>, e: PyErr, resume: &Bound<'_, PyAny>) -> PyResult<()> {
        let event_loop = self.event_loop.bind(py);
        if !e.is_instance_of::<PyException>(py) {
            event_loop.call_method1("call_soon", (resume,))?;
            return Err(e);
        }
        let context = PyDict::new(py);
        context.set_item("message", classes(py)?.handler_raised.clone_ref(py))?;
        context.set_item("exception", e.into_value(py))?;
        event_loop.call_method1("call_exception_handler", (context,))?;
        Ok(())
    }

    pub(super) fn unregister(&self, py: Python<'_>) {
        self.unwatch(py);
        let mut registered = self.reader_registered.lock();
        if *registered {
            *registered = false;
            // The loop may be closed already; then there is nothing to remove.
            if let Some(fd) = self.wake.fileno() {
                let _ = self
                    .event_loop
                    .bind(py)
                    .call_method1("remove_reader", (fd,));
            }
        }
    }
}

/// The `add_reader` callback. Holds no reference to the socket, so that dropping the socket
/// still stops its task.
#[pyclass(frozen, module = "bullet_ws._core", name = "_Doorbell")]
pub(super) struct Doorbell(pub(super) Arc<LoopSide>);

/// Only the loop holds the doorbell, and both asyncio and uvloop let go of their readers when
/// they close (or are collected): the doorbell's end is the loop's end. A socket whose loop is
/// gone could never deliver another event, so it stops rather than reconnect and replay for no
/// one; this also stops a socket that an exception's reference cycle keeps alive past
/// `asyncio.run()`. Ending normally unregisters the doorbell too, when the task has ended.
impl Drop for Doorbell {
    fn drop(&mut self) {
        if !self.0.orphaned() {
            self.0.stop.trigger();
        }
    }
}

#[pymethods]
impl Doorbell {
    fn __call__(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<()> {
        let side = &slf.get().0;
        if side.orphaned() {
            return Ok(());
        }
        let (rang, arrived) = if side.relayed.load(Ordering::Relaxed) {
            (true, false)
        } else {
            side.wake.drain()
        };
        side.woken(py, slf.as_any(), rang, arrived)
    }
}

/// The callback of the socket the loop watches while it owns the reads (`LoopSide::watch`).
/// Apart from the doorbell, whose end is the loop's end.
#[pyclass(frozen, module = "bullet_ws._core", name = "_SocketReader")]
pub(super) struct SocketReader(Arc<LoopSide>);

#[pymethods]
impl SocketReader {
    fn __call__(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<()> {
        let side = &slf.get().0;
        if side.orphaned() {
            // A child of fork() running the parent's loop: the socket is the parent's to read,
            // and a readable socket watched level-triggered would call this for ever. Only the
            // loop's thread touches the watch, so its lock is free here.
            side.unwatch(py);
            return Ok(());
        }
        side.woken(py, slf.as_any(), false, true)
    }
}

/// What `set_handler` schedules with `call_soon` to deliver the events queued already. Apart
/// from the doorbell: a reference to the doorbell would keep it alive past its loop, and its end
/// is what stops a socket whose loop is gone.
#[pyclass(frozen, module = "bullet_ws._core", name = "_Deliver")]
pub(super) struct Deliver(pub(super) Arc<LoopSide>);

#[pymethods]
impl Deliver {
    fn __call__(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<()> {
        let side = &slf.get().0;
        if side.orphaned() || !side.has_handler.load(Ordering::Acquire) {
            return Ok(());
        }
        side.deliver(py, slf.as_any())?;
        side.flush_logs(py)
    }
}

/// Registers the doorbell with `loop.add_reader`; false when the loop has no such thing (it raises
/// NotImplementedError, as Windows' Proactor loop does) or there is no descriptor to watch.
pub(super) fn add_reader(
    event_loop: &Bound<'_, PyAny>,
    wake: &WakeFd,
    doorbell: &Bound<'_, Doorbell>,
) -> PyResult<bool> {
    let Some(fd) = wake.fileno() else {
        return Ok(false);
    };
    match event_loop.call_method1("add_reader", (fd, doorbell)) {
        Ok(_) => Ok(true),
        Err(e) if e.is_instance_of::<PyNotImplementedError>(event_loop.py()) => Ok(false),
        Err(e) => Err(e),
    }
}

/// How often an idle ring relay checks whether its loop has closed.
const RELAY_IDLE_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// The fallback for loops without `add_reader`: a thread that sleeps on the doorbell and
/// schedules the same callback on the loop with `call_soon_threadsafe`. It takes the GIL once per
/// ring, which tokio threads never do; it ends after the ring that announces the end of the
/// socket task (or when the loop is closed).
pub(super) fn spawn_ring_relay(side: Arc<LoopSide>, doorbell: Py<Doorbell>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("bullet-ws-ring-relay".into())
        .spawn(move || {
            loop {
                // Idle, it looks at the loop once a second: a closed loop will never call the
                // doorbell again, and dropping it is what stops the socket.
                if !side.wake.wait_timeout(RELAY_IDLE_CHECK) {
                    let closed = Python::attach(|py| {
                        side.event_loop
                            .bind(py)
                            .call_method0(pyo3::intern!(py, "is_closed"))
                            .and_then(|c| c.is_truthy())
                            .unwrap_or(true)
                    });
                    if closed || side.queue.is_ended() {
                        break;
                    }
                    continue;
                }
                let ended = side.queue.is_ended();
                let delivered = Python::attach(|py| {
                    side.event_loop
                        .bind(py)
                        .call_method1(
                            pyo3::intern!(py, "call_soon_threadsafe"),
                            (doorbell.bind(py),),
                        )
                        .is_ok()
                });
                if ended || !delivered {
                    break;
                }
            }
            // The last references to Python objects go while attached, not from a bare thread.
            Python::attach(|_| drop((doorbell, side)));
        })
        .map(drop)
}
