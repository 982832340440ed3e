//! The native `ManagedWebSocket`: the Python face of `crate::managed::ManagedHandle`. Events
//! reach the loop through the doorbell (`doorbell.rs`) and the awaitables (`awaitable.rs`); see
//! there for the one-wake-per-burst rule.

use std::mem::ManuallyDrop;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFrozenSet, PyInt, PyString};

use super::awaitable::{Awaiting, Wait};
use super::convert::{classes, command_error, latency_to_python, ConnectError};
use super::doorbell::{add_reader, spawn_ring_relay, Deliver, Doorbell, LoopSide};
use super::wakefd::WakeFd;
use crate::config::{Config, MAX_DURATION, MAX_SIZE};
use crate::event_queue::EventQueue;
use crate::managed::{CommandError, ManagedHandle, KEEPALIVE_ID_BASE};
use crate::protocol::OrderMethod;
use crate::runtime::{fork_generation, runtime};
use crate::transport::WsConnector;

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
        direct_write: config.getattr("direct_write")?.extract()?,
        inbound_spin: duration(config, "inbound_spin")?,
        loop_reads: config.getattr("loop_reads")?.extract()?,
    })
}

/// The native managed socket. Construct it through `bullet_ws.connect()`.
#[pyclass(
    frozen,
    subclass,
    module = "bullet_ws._core",
    name = "ManagedWebSocket"
)]
pub struct ManagedWebSocket {
    /// Dropped only in the process that made it (see `LoopSide::orphaned`).
    handle: ManuallyDrop<ManagedHandle>,
    side: Arc<LoopSide>,
    /// The last `__anext__` awaitable, handed out again once nothing else holds it.
    next_wait: Mutex<Option<Py<Wait>>>,
}

impl ManagedWebSocket {
    /// An order command. Its arguments are checked here, on the tick-to-order path, without a
    /// Python frame: a `str` of base64 and an int id in range are taken at once, and anything
    /// else goes to `bullet_ws._validate` (`tx_arg`, `id_arg`), whose rules and error texts both
    /// backends share. It converts `bytes` and int subclasses, and refuses the rest.
    fn order(
        &self,
        method: OrderMethod,
        tx: &Bound<'_, PyAny>,
        id: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let py = tx.py();
        let tx = match tx.cast::<PyString>().ok().and_then(|s| s.to_str().ok()) {
            Some(text) if is_base64(text) => text.to_owned(),
            _ => classes(py)?.tx_arg.bind(py).call1((tx,))?.extract()?,
        };
        let id = match id {
            None => None,
            Some(id) => match id.cast_exact::<PyInt>().ok().and_then(|i| i.extract().ok()) {
                Some(n) if n < KEEPALIVE_ID_BASE => Some(n),
                _ => classes(py)?.id_arg.bind(py).call1((id,))?.extract()?,
            },
        };
        self.live()?.order(method, tx, id).map_err(command_error)
    }

    /// The handle, unless the socket was inherited across fork(): then StoppedError.
    fn live(&self) -> PyResult<&ManagedHandle> {
        if self.side.orphaned() {
            return Err(command_error(CommandError::Stopped));
        }
        Ok(&self.handle)
    }

    fn wait(&self, wait: Awaiting) -> Wait {
        Wait {
            side: self.side.clone(),
            wait,
            asleep: AtomicBool::new(false),
        }
    }
}

/// Only the socket holds this object.
fn only_ours(wait: &Py<Wait>) -> bool {
    // SAFETY: a live object (held by the caller), and the GIL is held (a `Python` token is
    // needed to reach any pyclass method that calls this).
    unsafe { pyo3::ffi::Py_REFCNT(wait.as_ptr()) == 1 }
}

pub(super) fn refuse_pull_with_handler(py: Python<'_>, side: &LoopSide) -> PyResult<()> {
    if side.has_handler.load(Ordering::Acquire) {
        return Err(PyRuntimeError::new_err(
            classes(py)?.handler_set.clone_ref(py),
        ));
    }
    Ok(())
}

#[pymethods]
impl ManagedWebSocket {
    /// Starts the socket task on the running loop; `await ws._wait_connected()` for the outcome.
    #[new]
    fn new(py: Python<'_>, url: &str, config: &Bound<'_, PyAny>) -> PyResult<Self> {
        let mut config = config_from_python(config)?;
        let spin = config.inbound_spin;
        // Reads on the loop: Linux only for now (the paths are Linux-tested).
        let loop_reads = config.loop_reads && cfg!(target_os = "linux");
        config.loop_reads = loop_reads;
        let asyncio = py.import("asyncio")?;
        let event_loop = asyncio.call_method0("get_running_loop")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("loop", &event_loop)?;
        let resolved = asyncio.getattr("Future")?.call((), Some(&kwargs))?;
        resolved.call_method1("set_result", (py.None(),))?;
        let connector =
            WsConnector::new(url, &config).map_err(|e| ConnectError::new_err(e.message))?;
        let wake = Arc::new(
            WakeFd::new(!spin.is_zero())
                .map_err(|e| PyOSError::new_err(format!("eventfd: {e}")))?,
        );
        let queue = Arc::new(
            EventQueue::new(config.channel_capacity, Box::new(wake.clone()))
                .with_max_bytes(config.queue_max_bytes),
        );
        let handle = ManagedHandle::spawn(runtime().handle(), connector, config, queue.clone());
        let side = Arc::new(LoopSide {
            queue,
            wake: wake.clone(),
            event_loop: event_loop.clone().unbind(),
            resolved: resolved.unbind(),
            waiters: Mutex::new(Vec::new()),
            pulling: AtomicUsize::new(0),
            reader_registered: Mutex::new(false),
            relayed: AtomicBool::new(false),
            stop: handle.stop_signal(),
            generation: fork_generation(),
            spin,
            batch: Mutex::new(Vec::new()),
            handler: Mutex::new(None),
            has_handler: AtomicBool::new(false),
            reader: loop_reads.then(|| handle.loop_reader()),
            read_again: AtomicBool::new(false),
            watching: Mutex::new(None),
            watch_refused: AtomicBool::new(false),
        });
        let doorbell = Bound::new(py, Doorbell(side.clone()))?;
        if add_reader(&event_loop, &wake, &doorbell)? {
            *side.reader_registered.lock() = true;
        } else {
            // A relayed ring would be a second hop: the task keeps the reads.
            side.relayed.store(true, Ordering::Relaxed);
            spawn_ring_relay(side.clone(), doorbell.unbind())
                .map_err(|e| PyOSError::new_err(format!("ring relay thread: {e}")))?;
        }
        Ok(ManagedWebSocket {
            handle: ManuallyDrop::new(handle),
            side,
            next_wait: Mutex::new(None),
        })
    }

    fn _wait_connected(&self) -> Wait {
        self.wait(Awaiting::Connected)
    }

    /// The next event, or None once the socket has stopped and the queue is drained.
    fn recv(&self) -> Wait {
        // A fresh object per call: `asyncio.gather(ws.recv(), ws.recv())` tells awaitables apart
        // by identity.
        self.wait(Awaiting::One)
    }

    /// Every queued event up to `max_events` (waits for at least one); [] once stopped.
    #[pyo3(signature = (max_events = MaxEvents::Default))]
    fn recv_batch(&self, py: Python<'_>, max_events: MaxEvents<'_>) -> PyResult<Wait> {
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
        Ok(self.wait(Awaiting::Batch(n)))
    }

    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// `async for` asks for one awaitable per event: the last one is reused when only this
    /// socket holds it (its await is over, so no one can tell), which saves making and freeing
    /// an object per event. One still held (by a Task of `asyncio.gather`, say) is left alone.
    fn __anext__(&self, py: Python<'_>) -> PyResult<Py<Wait>> {
        let mut spare = self.next_wait.lock();
        if let Some(wait) = spare.as_ref().filter(|w| only_ours(w)) {
            // Already ended, unless it was dropped mid-sleep by means that skip `close`.
            wait.get().ended();
            return Ok(wait.clone_ref(py));
        }
        let wait = Py::new(py, self.wait(Awaiting::Next))?;
        *spare = Some(wait.clone_ref(py));
        Ok(wait)
    }

    /// `handler` is validated by the caller (`bullet_ws._validate.handler_arg`).
    fn _set_handler(&self, py: Python<'_>, handler: Option<Py<PyAny>>) -> PyResult<()> {
        let side = &self.side;
        // A kept `__anext__` awaitable that no one else holds can never resume: had it been
        // dropped mid-sleep without `close` (a collected Task), its drop would have ended it.
        if let Some(wait) = self.next_wait.lock().as_ref().filter(|w| only_ours(w)) {
            wait.get().ended();
        }
        if handler.is_some() && side.pulling.load(Ordering::Relaxed) > 0 {
            return Err(PyRuntimeError::new_err(
                classes(py)?.handler_while_waiting.clone_ref(py),
            ));
        }
        let on = handler.is_some();
        *side.handler.lock() = handler;
        side.has_handler.store(on, Ordering::Release);
        if on && !side.orphaned() {
            // What is queued already goes out on the loop's next turn, never inside this call.
            let deliver = Bound::new(py, Deliver(side.clone()))?;
            side.event_loop
                .bind(py)
                .call_method1("call_soon", (deliver,))?;
        }
        Ok(())
    }

    /// Ends the background task at its next await point, even mid-reconnect.
    fn stop(&self) {
        if let Ok(handle) = self.live() {
            handle.stop();
        }
    }

    /// `stop()`, then wait until the background task has ended.
    fn close(&self) -> Wait {
        self.stop();
        self.wait(Awaiting::Closed)
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
            self.live().map_or(0, ManagedHandle::direct_writes),
            self.live().map_or(0, ManagedHandle::loop_reads),
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
        self.live()?
            .subscribe(topics, id, conflate)
            .map_err(command_error)
    }

    fn _unsubscribe(&self, topics: Vec<String>, id: Option<u64>) -> PyResult<Vec<String>> {
        self.live()?.unsubscribe(topics, id).map_err(command_error)
    }

    /// Send SUBMIT, the way forward for every order action (place, cancel, amend, cancel
    /// all, batches): the action is encoded in the signed transaction `tx` (base64 `str` or raw
    /// `bytes`). The ack is an `OrderResult` with `method == "submit"`.
    ///
    /// If the write fails, the socket reconnects and sends it once more.
    #[pyo3(signature = (tx, id=None))]
    fn submit(&self, tx: &Bound<'_, PyAny>, id: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.order(OrderMethod::Submit, tx, id)
    }

    /// Send ORDER.PLACE (deprecated upstream in favour of `submit`, still on the wire);
    /// `tx` is a signed transaction, base64 `str` or raw `bytes`.
    ///
    /// If the write fails, the socket reconnects and sends it once more.
    #[pyo3(signature = (tx, id=None))]
    fn order_place(&self, tx: &Bound<'_, PyAny>, id: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.order(OrderMethod::Place, tx, id)
    }

    /// Send ORDER.CANCEL (see `order_place`).
    #[pyo3(signature = (tx, id=None))]
    fn order_cancel(&self, tx: &Bound<'_, PyAny>, id: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.order(OrderMethod::Cancel, tx, id)
    }

    /// Send ORDER.AMEND (see `order_place`).
    #[pyo3(signature = (tx, id=None))]
    fn order_amend(&self, tx: &Bound<'_, PyAny>, id: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        self.order(OrderMethod::Amend, tx, id)
    }

    /// Send ORDER.CANCEL_ALL (see `order_place`).
    #[pyo3(signature = (tx, id=None))]
    fn order_cancel_all(
        &self,
        tx: &Bound<'_, PyAny>,
        id: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.order(OrderMethod::CancelAll, tx, id)
    }

    fn _list_subscriptions(&self, id: Option<u64>) -> PyResult<()> {
        self.live()?.list_subscriptions(id).map_err(command_error)
    }

    fn _ping(&self, id: Option<u64>) -> PyResult<()> {
        self.live()?.ping(id).map_err(command_error)
    }

    fn _book(&self, symbol: &str) -> Option<super::book::OrderBook> {
        self.handle
            .books()
            .book(symbol, tokio::time::Instant::now())
            .map(super::book::OrderBook)
    }
}

impl Drop for ManagedWebSocket {
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
    m.add_function(wrap_pyfunction!(_check_url, m)?)?;
    m.add_class::<ManagedWebSocket>()?;
    m.add_class::<Wait>()?;
    m.add_class::<Doorbell>()?;
    m.add_class::<Deliver>()?;
    Ok(())
}

/// `bullet_ws._validate._BASE64`'s rule, not empty: whole 4-character groups of the standard
/// alphabet, with one or two `=` only at the end. A test checks the two agree.
fn is_base64(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.is_empty() || bytes.len() % 4 != 0 {
        return false;
    }
    let padding = bytes
        .iter()
        .rev()
        .take(2)
        .take_while(|&&b| b == b'=')
        .count();
    bytes[..bytes.len() - padding]
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}
