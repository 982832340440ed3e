//! The native `ManagedWebSocket` and its awaitables.
//!
//! The socket task (tokio) never touches Python. It queues parsed events and, only when the loop
//! announced that it is about to sleep, rings an eventfd that asyncio watches with `add_reader`:
//! one wake-up per burst, no GIL on tokio threads. A loop without `add_reader` (Windows' Proactor
//! loop) gets the same rings through a helper thread instead (see `spawn_ring_relay`). On the loop thread, `recv()` returns an
//! awaitable that completes at once when an event is queued (no Future); only a wait that has to
//! sleep creates one asyncio Future: one per sleeping waiter, so that cancelling one waiter never
//! cancels another.

use std::mem::ManuallyDrop;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::{
    PyNotImplementedError, PyOSError, PyStopAsyncIteration, PyStopIteration, PyTypeError,
    PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyFrozenSet, PyInt, PyList};

use super::messages::to_python;
use super::wakefd::WakeFd;
use crate::bridge::{ConnectState, Event, EventQueue, LogLevel};
use crate::config::{Config, MAX_DURATION, MAX_SIZE};
use crate::latency::{LatencySummary, Window, LATENCY_WINDOW};
use crate::managed::{CommandError, ManagedHandle, Shutdown};
use crate::protocol::OrderMethod;
use crate::runtime::{fork_generation, runtime};
use crate::transport::{ConnectErrorKind, WsConnector};

pyo3::import_exception!(bullet_ws.errors, ConnectError);
pyo3::import_exception!(bullet_ws.errors, ConnectTimeout);
pyo3::import_exception!(bullet_ws.errors, HandshakeError);
pyo3::import_exception!(bullet_ws.errors, StoppedError);
pyo3::import_exception!(bullet_ws.errors, BusyError);

/// Python objects looked up once.
struct Classes {
    reconnecting: Py<PyAny>,
    reconnected: Py<PyAny>,
    disconnected: Py<PyAny>,
    rotated: Py<PyAny>,
    order_unacked: Py<PyAny>,
    stats: Py<PyAny>,
    latency_summary: Py<PyAny>,
    logger: Py<PyAny>,
    max_events_arg: Py<PyAny>,
}

fn classes(py: Python<'_>) -> PyResult<&Classes> {
    static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();
    CLASSES.get_or_try_init(py, || {
        let events = py.import("bullet_ws.events")?;
        Ok(Classes {
            reconnecting: events.getattr("Reconnecting")?.unbind(),
            reconnected: events.getattr("Reconnected")?.unbind(),
            disconnected: events.getattr("Disconnected")?.unbind(),
            rotated: events.getattr("Rotated")?.unbind(),
            order_unacked: events.getattr("OrderUnacked")?.unbind(),
            stats: events.getattr("Stats")?.unbind(),
            latency_summary: events.getattr("LatencySummary")?.unbind(),
            logger: py
                .import("logging")?
                .call_method1("getLogger", ("bullet_ws",))?
                .unbind(),
            max_events_arg: py
                .import("bullet_ws._validate")?
                .getattr("max_events_arg")?
                .unbind(),
        })
    })
}

fn event_to_python(py: Python<'_>, event: Event) -> PyResult<Bound<'_, PyAny>> {
    match event {
        Event::Message(m) => to_python(py, m),
        Event::Reconnecting { reason } => classes(py)?.reconnecting.bind(py).call1((reason,)),
        Event::Reconnected { attempts, downtime } => classes(py)?
            .reconnected
            .bind(py)
            .call1((attempts, downtime.as_secs_f64())),
        Event::Rotated { reason, overlap } => classes(py)?
            .rotated
            .bind(py)
            .call1((reason, overlap.as_secs_f64())),
        Event::Disconnected { reason } => classes(py)?.disconnected.bind(py).call1((reason,)),
        Event::OrderUnacked { id, method, reason } => classes(py)?
            .order_unacked
            .bind(py)
            .call1((id, method, reason)),
        Event::Book(e) => super::book::event_to_python(py, e),
    }
}

/// A `bullet_ws.events.LatencySummary` (seconds), or None.
fn latency_to_python(py: Python<'_>, summary: Option<LatencySummary>) -> PyResult<Py<PyAny>> {
    let Some(s) = summary else {
        return Ok(py.None());
    };
    let secs = |us: u64| us as f64 / 1e6;
    Ok(classes(py)?
        .latency_summary
        .bind(py)
        .call1((secs(s.p50_us), secs(s.p99_us), secs(s.max_us), s.count))?
        .unbind())
}

fn command_error(e: CommandError) -> PyErr {
    match e {
        CommandError::Stopped => StoppedError::new_err(e.to_string()),
        CommandError::Busy => BusyError::new_err(e.to_string()),
        CommandError::TooLarge { .. } => PyValueError::new_err(e.to_string()),
    }
}

/// What the loop side shares with its reader callback (never with the tokio side).
struct LoopSide {
    queue: Arc<EventQueue>,
    wake: Arc<WakeFd>,
    event_loop: Py<PyAny>,
    /// One Future per sleeping waiter; the doorbell resolves them all.
    waiters: Mutex<Vec<Py<PyAny>>>,
    reader_registered: Mutex<bool>,
    /// Rings reach the loop through the helper thread, which also empties the doorbell.
    relayed: AtomicBool,
    stop: Arc<Shutdown>,
    /// The fork generation this socket was made in (`crate::runtime`).
    generation: u64,
}

impl LoopSide {
    /// Inherited across fork(): the task lives in the parent, and its queue, channel and stop
    /// signal may be locked for ever by threads that do not exist here. Nothing shared with the
    /// task may be touched; the socket behaves as stopped and ended.
    fn orphaned(&self) -> bool {
        fork_generation() != self.generation
    }

    fn flush_logs(&self, py: Python<'_>) -> PyResult<()> {
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

    /// A new Future to sleep on; the doorbell resolves it. Waiters that were cancelled (their
    /// Future is done) are forgotten here, so that the list stays as short as the live waiters.
    fn sleep_future<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let fut = self.event_loop.bind(py).call_method0("create_future")?;
        let mut waiters = self.waiters.lock();
        let mut live = Vec::with_capacity(waiters.len() + 1);
        for w in waiters.drain(..) {
            if !w.bind(py).call_method0("done")?.is_truthy()? {
                live.push(w);
            }
        }
        live.push(fut.clone().unbind());
        *waiters = live;
        Ok(fut)
    }

    fn unregister(&self, py: Python<'_>) {
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
struct Doorbell(Arc<LoopSide>);

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
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        let side = &self.0;
        if side.orphaned() {
            return Ok(());
        }
        if !side.relayed.load(Ordering::Relaxed) {
            side.wake.drain();
        }
        let waiters = std::mem::take(&mut *side.waiters.lock());
        for fut in waiters {
            let fut = fut.bind(py);
            if !fut.call_method0("done")?.is_truthy()? {
                fut.call_method1("set_result", (py.None(),))?;
            }
        }
        let flushed = side.flush_logs(py);
        if side.queue.is_ended() {
            side.unregister(py);
        }
        flushed
    }
}

#[derive(Clone, Copy)]
enum Wait {
    One,
    Next,
    Batch(usize),
    Connected,
    Closed,
}

/// An awaitable that completes without an asyncio Future when its result is ready.
#[pyclass(frozen, module = "bullet_ws._core", name = "_Wait")]
pub struct WaitFor {
    side: Arc<LoopSide>,
    wait: Wait,
}

impl WaitFor {
    fn ready(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if self.side.orphaned() {
            return match self.wait {
                Wait::One | Wait::Closed => Ok(Some(py.None())),
                Wait::Next => Err(PyStopAsyncIteration::new_err(())),
                Wait::Batch(_) => Ok(Some(PyList::empty(py).into_any().unbind())),
                Wait::Connected => Err(ConnectError::new_err(
                    "the socket was opened before fork(): its task stayed in the parent",
                )),
            };
        }
        let q = &self.side.queue;
        match self.wait {
            Wait::One | Wait::Next => {
                if let Some(event) = q.pop() {
                    return Ok(Some(event_to_python(py, event)?.unbind()));
                }
                if q.is_exhausted() {
                    return match self.wait {
                        Wait::Next => Err(PyStopAsyncIteration::new_err(())),
                        _ => Ok(Some(py.None())),
                    };
                }
                Ok(None)
            }
            Wait::Batch(max) => {
                let mut events = Vec::new();
                q.pop_batch(max, &mut events);
                if events.is_empty() && !q.is_exhausted() {
                    return Ok(None);
                }
                let items = events
                    .into_iter()
                    .map(|e| event_to_python(py, e))
                    .collect::<PyResult<Vec<_>>>()?;
                Ok(Some(PyList::new(py, items)?.into_any().unbind()))
            }
            Wait::Connected => match q.connect_state() {
                ConnectState::Pending => Ok(None),
                ConnectState::Connected => Ok(Some(py.None())),
                ConnectState::Failed(e) => Err(match e.kind {
                    ConnectErrorKind::Timeout => ConnectTimeout::new_err(e.message),
                    ConnectErrorKind::Handshake => HandshakeError::new_err(e.message),
                    ConnectErrorKind::Io => ConnectError::new_err(e.message),
                }),
            },
            Wait::Closed => Ok(q.is_ended().then(|| py.None())),
        }
    }

    fn wants_events(&self) -> bool {
        matches!(self.wait, Wait::One | Wait::Next | Wait::Batch(_))
    }
}

#[pymethods]
impl WaitFor {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Either finishes (StopIteration carrying the result) or yields the Future to sleep on.
    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        loop {
            if let Some(result) = self.ready(py)? {
                return Err(PyStopIteration::new_err((result,)));
            }
            // Announce the sleep, then look once more: an event that raced in must not be missed.
            if self.wants_events() && !self.side.queue.prepare_wait() {
                continue;
            }
            self.side.flush_logs(py)?;
            let fut = self.side.sleep_future(py)?;
            fut.setattr(pyo3::intern!(py, "_asyncio_future_blocking"), true)?;
            return Ok(fut.unbind());
        }
    }

    /// Called by a Task that is cancelled while we sleep.
    #[pyo3(signature = (*args))]
    fn throw(&self, args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<Py<PyAny>> {
        let exc = args.get_item(0)?;
        if exc.is_instance_of::<pyo3::exceptions::PyBaseException>() {
            return Err(PyErr::from_value(exc));
        }
        // throw(type[, value]) form
        let value = if args.len() > 1 {
            Some(args.get_item(1)?)
        } else {
            None
        };
        let err = match value {
            Some(v) if v.is_instance_of::<pyo3::exceptions::PyBaseException>() => {
                PyErr::from_value(v)
            }
            Some(v) if !v.is_none() => PyErr::from_value(exc.call1((v,))?),
            _ => PyErr::from_value(exc.call0()?),
        };
        Err(err)
    }

    /// `send(None)` is `__next__`: with `throw` and `close`, this makes the awaitable a
    /// `collections.abc.Coroutine`, so `asyncio.create_task(ws.recv())` works as on the pure
    /// backend.
    #[pyo3(signature = (value, /))]
    fn send(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let _ = value;
        self.__next__(py)
    }

    fn close(&self) {}
}

/// `recv_batch`'s argument: absent means the default, while an explicit None is a TypeError.
pub enum MaxEvents<'py> {
    Default,
    Given(Bound<'py, PyAny>),
}

impl<'a, 'py> FromPyObject<'a, 'py> for MaxEvents<'py> {
    type Error = PyErr;

    fn extract(obj: pyo3::Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(MaxEvents::Given(obj.to_owned()))
    }
}

// `ManagedWsConfig` validates these bounds already; checked again because a bad value here would
// panic in the socket task later, and the message must still name the field.
fn duration(config: &Bound<'_, PyAny>, name: &str) -> PyResult<Duration> {
    let secs: f64 = config.getattr(name)?.extract()?;
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| *d <= MAX_DURATION)
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "{name} must be in 0..{} seconds, got {secs}",
                MAX_DURATION.as_secs()
            ))
        })
}

fn size(config: &Bound<'_, PyAny>, name: &str) -> PyResult<usize> {
    let value = config.getattr(name)?;
    value
        .extract::<usize>()
        .ok()
        .filter(|n| *n <= MAX_SIZE)
        .ok_or_else(|| PyValueError::new_err(format!("{name} must be in 0..2**40, got {value}")))
}

fn config_from_python(config: &Bound<'_, PyAny>) -> PyResult<Config> {
    let max_retries: Option<u64> = match config.getattr("max_retries")? {
        v if v.is_none() => None,
        // Beyond u64 is forever in practice.
        v => Some(v.extract::<u64>().unwrap_or(u64::MAX)),
    };
    let ca_file: Option<String> = config.getattr("ca_file")?.extract()?;
    Ok(Config {
        initial_backoff: duration(config, "initial_backoff")?,
        max_backoff: duration(config, "max_backoff")?,
        max_retries,
        channel_capacity: size(config, "channel_capacity")?,
        queue_max_bytes: size(config, "queue_max_bytes")?,
        connection_timeout: duration(config, "connection_timeout")?,
        idle_timeout: duration(config, "idle_timeout")?,
        keepalive_interval: duration(config, "keepalive_interval")?,
        backoff_reset_after: duration(config, "backoff_reset_after")?,
        max_connection_age: duration(config, "max_connection_age")?,
        max_message_size: size(config, "max_message_size")?,
        ca_file: ca_file.map(PathBuf::from),
        order_max_age: match config.getattr("order_max_age")? {
            v if v.is_none() => None,
            _ => Some(duration(config, "order_max_age")?),
        },
    })
}

/// Registers the doorbell with `loop.add_reader`; false when the loop has no such thing (it raises
/// NotImplementedError, as Windows' Proactor loop does) or there is no descriptor to watch.
fn add_reader(
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

/// The fallback for loops without `add_reader`: a thread that sleeps on the doorbell and
/// schedules the same callback on the loop with `call_soon_threadsafe`. It takes the GIL once per
/// ring, which tokio threads never do; it ends after the ring that announces the end of the
/// socket task (or when the loop is closed).
/// How often an idle ring relay checks whether its loop has closed.
const RELAY_IDLE_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

fn spawn_ring_relay(side: Arc<LoopSide>, doorbell: Py<Doorbell>) -> std::io::Result<()> {
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

/// The native managed socket. Construct it through `bullet_ws.connect()`.
#[pyclass(
    frozen,
    subclass,
    module = "bullet_ws._core",
    name = "ManagedWebSocket"
)]
pub struct PySocket {
    /// Dropped only in the process that made it (see `LoopSide::orphaned`).
    handle: ManuallyDrop<ManagedHandle>,
    side: Arc<LoopSide>,
}

impl PySocket {
    /// The handle, unless the socket was inherited across fork(): then StoppedError.
    fn live(&self) -> PyResult<&ManagedHandle> {
        if self.side.orphaned() {
            return Err(command_error(CommandError::Stopped));
        }
        Ok(&self.handle)
    }

    fn wait(&self, wait: Wait) -> WaitFor {
        WaitFor {
            side: self.side.clone(),
            wait,
        }
    }
}

#[pymethods]
impl PySocket {
    /// Starts the socket task on the running loop; `await ws._wait_connected()` for the outcome.
    #[new]
    fn new(py: Python<'_>, url: &str, config: &Bound<'_, PyAny>) -> PyResult<Self> {
        let config = config_from_python(config)?;
        let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
        let connector =
            WsConnector::new(url, &config).map_err(|e| ConnectError::new_err(e.message))?;
        let wake =
            Arc::new(WakeFd::new().map_err(|e| PyOSError::new_err(format!("eventfd: {e}")))?);
        let queue = Arc::new(
            EventQueue::new(config.channel_capacity, Box::new(wake.clone()))
                .with_max_bytes(config.queue_max_bytes),
        );
        let handle = ManagedHandle::spawn(runtime().handle(), connector, config, queue.clone());
        let side = Arc::new(LoopSide {
            queue,
            wake: wake.clone(),
            event_loop: event_loop.clone().unbind(),
            waiters: Mutex::new(Vec::new()),
            reader_registered: Mutex::new(false),
            relayed: AtomicBool::new(false),
            stop: handle.stop_signal(),
            generation: fork_generation(),
        });
        let doorbell = Bound::new(py, Doorbell(side.clone()))?;
        if add_reader(&event_loop, &wake, &doorbell)? {
            *side.reader_registered.lock() = true;
        } else {
            side.relayed.store(true, Ordering::Relaxed);
            spawn_ring_relay(side.clone(), doorbell.unbind())
                .map_err(|e| PyOSError::new_err(format!("ring relay thread: {e}")))?;
        }
        Ok(PySocket {
            handle: ManuallyDrop::new(handle),
            side,
        })
    }

    fn _wait_connected(&self) -> WaitFor {
        self.wait(Wait::Connected)
    }

    /// The next event, or None once the socket has stopped and the queue is drained.
    fn recv(&self) -> WaitFor {
        // A fresh object per call: `asyncio.gather(ws.recv(), ws.recv())` tells awaitables apart
        // by identity.
        self.wait(Wait::One)
    }

    /// Every queued event up to `max_events` (waits for at least one); [] once stopped.
    #[pyo3(signature = (max_events = MaxEvents::Default))]
    fn recv_batch(&self, py: Python<'_>, max_events: MaxEvents<'_>) -> PyResult<WaitFor> {
        let n = match max_events {
            MaxEvents::Default => 1024,
            MaxEvents::Given(obj) => match obj
                .cast::<PyInt>()
                .ok()
                .and_then(|i| i.extract::<usize>().ok())
            {
                Some(n) if n >= 1 && !obj.is_instance_of::<pyo3::types::PyBool>() => n,
                // The shared validator raises the same error as the pure backend.
                _ => classes(py)?
                    .max_events_arg
                    .bind(py)
                    .call1((obj,))?
                    .extract::<usize>()?,
            },
        };
        Ok(self.wait(Wait::Batch(n)))
    }

    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__(&self) -> WaitFor {
        self.wait(Wait::Next)
    }

    /// Ends the background task at its next await point, even mid-reconnect.
    fn stop(&self) {
        if let Ok(handle) = self.live() {
            handle.stop();
        }
    }

    /// `stop()`, then wait until the background task has ended.
    fn close(&self) -> WaitFor {
        self.stop();
        self.wait(Wait::Closed)
    }

    #[getter]
    fn topics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyFrozenSet>> {
        PyFrozenSet::new(py, self.handle.topics())
    }

    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.side.queue.stats();
        classes(py)?.stats.bind(py).call1((
            s.messages_received,
            s.events_dropped,
            s.reconnects,
            s.queued,
            s.keepalives_sent,
            s.rotations,
            s.events_conflated,
            latency_to_python(py, s.exchange_delay)?,
            latency_to_python(py, s.delivery_delay)?,
        ))
    }

    #[getter]
    fn stopped(&self) -> bool {
        self.live().map_or(true, ManagedHandle::is_stopped)
    }

    /// `conflate` is validated by the caller (`bullet_ws._validate.conflate_arg`); it is set
    /// on every topic of the call once the subscribe is accepted, active ones included.
    #[pyo3(signature = (topics, id, conflate = false))]
    fn _subscribe(
        &self,
        topics: Vec<String>,
        id: Option<u64>,
        conflate: bool,
    ) -> PyResult<Vec<String>> {
        let handle = self.live()?;
        let new = handle
            .subscribe(topics.clone(), id)
            .map_err(command_error)?;
        handle.set_conflated(&topics, conflate);
        Ok(new)
    }

    fn _unsubscribe(&self, topics: Vec<String>, id: Option<u64>) -> PyResult<Vec<String>> {
        self.live()?.unsubscribe(topics, id).map_err(command_error)
    }

    fn _order(&self, method: &str, tx: String, id: Option<u64>) -> PyResult<()> {
        let method = match method {
            "submit" => OrderMethod::Submit,
            "place" => OrderMethod::Place,
            "cancel" => OrderMethod::Cancel,
            "amend" => OrderMethod::Amend,
            "cancel_all" => OrderMethod::CancelAll,
            other => {
                return Err(PyTypeError::new_err(format!(
                    "unknown order method {other:?}"
                )))
            }
        };
        self.live()?.order(method, tx, id).map_err(command_error)
    }

    fn _list_subscriptions(&self, id: Option<u64>) -> PyResult<()> {
        self.live()?.list_subscriptions(id).map_err(command_error)
    }

    fn _ping(&self, id: Option<u64>) -> PyResult<()> {
        self.live()?.ping(id).map_err(command_error)
    }

    fn _book(&self, symbol: &str) -> Option<super::book::PyOrderBook> {
        self.handle
            .books()
            .book(symbol)
            .map(super::book::PyOrderBook)
    }
}

impl Drop for PySocket {
    fn drop(&mut self) {
        // An inherited handle is leaked: dropping it would signal a task that is not here.
        if !self.side.orphaned() {
            // Its own Drop stops the task; the doorbell unregisters itself when the task ends.
            // SAFETY: dropped once, here, and never used again.
            unsafe { ManuallyDrop::drop(&mut self.handle) };
        }
    }
}

/// Raises ValueError (naming `url`) when the transport could not use this URL: `connect()` calls
/// it so that such a URL fails at the call, not at `await`.
/// The native latency window fed with `(seconds, microseconds)` samples, summarised at `at`
/// seconds: for tests that hold both backends to the same quantisation.
#[pyfunction]
fn _latency_window(py: Python<'_>, samples: Vec<(f64, u64)>, at: f64) -> PyResult<Py<PyAny>> {
    let ns = |secs: f64| (secs * 1e9) as u64;
    let mut window = Window::default();
    for (t, us) in samples {
        window.record(ns(t), us);
    }
    latency_to_python(py, window.summary(ns(at)))
}

#[pyfunction]
fn _check_url(url: &str) -> PyResult<()> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    url.into_client_request()
        .map(drop)
        .map_err(|e| PyValueError::new_err(format!("url is not usable: {url:?} ({e})")))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("MAX_DURATION", MAX_DURATION.as_secs_f64())?;
    m.add("MAX_SIZE", MAX_SIZE)?;
    // The rules the pure backend must share, checked against its constants by a test.
    m.add("STOP_GRACE", crate::managed::STOP_GRACE.as_secs_f64())?;
    m.add("KEEPALIVE_ID_BASE", crate::managed::KEEPALIVE_ID_BASE)?;
    m.add("COMMAND_CAPACITY", crate::config::COMMAND_CAPACITY)?;
    m.add("MIN_BACKOFF", crate::config::MIN_BACKOFF.as_secs_f64())?;
    m.add("LATENCY_WINDOW", LATENCY_WINDOW.as_secs_f64())?;
    m.add_function(wrap_pyfunction!(_check_url, m)?)?;
    m.add_function(wrap_pyfunction!(_latency_window, m)?)?;
    m.add_class::<PySocket>()?;
    m.add_class::<WaitFor>()?;
    m.add_class::<Doorbell>()?;
    Ok(())
}
