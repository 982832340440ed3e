//! Core events and errors as Python sees them: the event classes of `bullet_ws.events` and the
//! exceptions of `bullet_ws.errors`, looked up once.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use super::messages::to_python;
use crate::event_queue::Event;
use crate::latency::LatencySummary;
use crate::managed::CommandError;

pyo3::import_exception!(bullet_ws.errors, ConnectError);
pyo3::import_exception!(bullet_ws.errors, ConnectTimeout);
pyo3::import_exception!(bullet_ws.errors, HandshakeError);
pyo3::import_exception!(bullet_ws.errors, StoppedError);
pyo3::import_exception!(bullet_ws.errors, BusyError);

/// Python objects looked up once.
pub(super) struct Classes {
    pub(super) reconnecting: Py<PyAny>,
    pub(super) reconnected: Py<PyAny>,
    pub(super) disconnected: Py<PyAny>,
    pub(super) rotated: Py<PyAny>,
    pub(super) order_unacked: Py<PyAny>,
    pub(super) stats: Py<PyAny>,
    pub(super) latency_summary: Py<PyAny>,
    pub(super) logger: Py<PyAny>,
    pub(super) max_events_arg: Py<PyAny>,
    /// The order methods' rules and error texts, for what `order_args` does not accept at once.
    pub(super) tx_arg: Py<PyAny>,
    pub(super) id_arg: Py<PyAny>,
    /// `bullet_ws._policy`'s texts of the errors `set_handler` brings.
    pub(super) handler_set: Py<PyAny>,
    pub(super) handler_while_waiting: Py<PyAny>,
    pub(super) handler_raised: Py<PyAny>,
    /// `contextvars.Context.run`, unbound.
    pub(super) context_run: Py<PyAny>,
}

pub(super) fn classes(py: Python<'_>) -> PyResult<&Classes> {
    static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();
    CLASSES.get_or_try_init(py, || {
        let events = py.import("bullet_ws.events")?;
        let validate = py.import("bullet_ws._validate")?;
        let policy = py.import("bullet_ws._policy")?;
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
            max_events_arg: validate.getattr("max_events_arg")?.unbind(),
            tx_arg: validate.getattr("tx_arg")?.unbind(),
            id_arg: validate.getattr("id_arg")?.unbind(),
            handler_set: policy.getattr("HANDLER_SET")?.unbind(),
            handler_while_waiting: policy.getattr("HANDLER_WHILE_WAITING")?.unbind(),
            handler_raised: policy.getattr("HANDLER_RAISED")?.unbind(),
            context_run: py
                .import("contextvars")?
                .getattr("Context")?
                .getattr("run")?
                .unbind(),
        })
    })
}

pub(super) fn event_to_python(py: Python<'_>, event: Event) -> PyResult<Bound<'_, PyAny>> {
    match event {
        Event::Message(m) => to_python(py, m),
        Event::Reconnecting {
            reason,
            attempt,
            delay,
        } => classes(py)?
            .reconnecting
            .bind(py)
            .call1((reason, attempt, delay.as_secs_f64())),
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
pub(super) fn latency_to_python(
    py: Python<'_>,
    summary: Option<LatencySummary>,
) -> PyResult<Py<PyAny>> {
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

pub(super) fn command_error(e: CommandError) -> PyErr {
    match e {
        CommandError::Stopped => StoppedError::new_err(e.to_string()),
        CommandError::Busy => BusyError::new_err(e.to_string()),
        CommandError::TooLarge { .. } => PyValueError::new_err(e.to_string()),
    }
}
