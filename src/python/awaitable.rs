//! The awaitables `recv()`, `recv_batch()`, `__anext__`, `close()` and the connect wait return.
//! One completes at once, without a Future, when its result is ready; only a wait that has to
//! sleep creates one (a `Waiter`), one per sleeping waiter, so that cancelling one waiter never
//! cancels another.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::convert::{event_to_python, ConnectError, ConnectTimeout, HandshakeError};
use super::doorbell::LoopSide;
use super::messages::list_of;
use crate::event_queue::ConnectState;
use crate::transport::ConnectErrorKind;

/// What an awaitable waits for.
#[derive(Clone, Copy)]
pub(super) enum Awaiting {
    One,
    Next,
    Batch(usize),
    Connected,
    Closed,
}

/// An awaitable that completes without an asyncio Future when its result is ready.
#[pyclass(frozen, module = "bullet_ws._core", name = "_Wait")]
pub struct Wait {
    pub(super) side: Arc<LoopSide>,
    pub(super) wait: Awaiting,
    /// A pull wait that yielded its sleep Future and has not ended: counted in `side.pulling`.
    pub(super) asleep: AtomicBool,
}

impl Drop for Wait {
    /// A sleeping wait whose Task was dropped without resuming it ends too.
    fn drop(&mut self) {
        self.ended();
    }
}

impl Wait {
    fn ready(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if self.side.orphaned() {
            return match self.wait {
                Awaiting::One | Awaiting::Closed => Ok(Some(py.None())),
                Awaiting::Next => Err(PyStopAsyncIteration::new_err(())),
                Awaiting::Batch(_) => Ok(Some(PyList::empty(py).into_any().unbind())),
                Awaiting::Connected => Err(ConnectError::new_err(
                    "the socket was opened before fork(): its task stayed in the parent",
                )),
            };
        }
        if self.wants_events() {
            // At the await, as on the pure backend (whose pull methods are coroutines).
            super::socket::refuse_pull_with_handler(py, &self.side)?;
        }
        let q = &self.side.queue;
        match self.wait {
            Awaiting::One | Awaiting::Next => {
                if let Some(event) = q.pop() {
                    return Ok(Some(event_to_python(py, event)?.unbind()));
                }
                if q.is_exhausted() {
                    return match self.wait {
                        Awaiting::Next => Err(PyStopAsyncIteration::new_err(())),
                        _ => Ok(Some(py.None())),
                    };
                }
                Ok(None)
            }
            Awaiting::Batch(max) => {
                // Taken out of its lock while Python objects are made: making them can run
                // Python code (a collection, a finalizer), which could start another batch.
                let mut events = std::mem::take(&mut *self.side.batch.lock());
                q.pop_batch(max, &mut events);
                if events.is_empty() && !q.is_exhausted() {
                    *self.side.batch.lock() = events;
                    return Ok(None);
                }
                let list = list_of(py, events.drain(..).map(|e| event_to_python(py, e)));
                *self.side.batch.lock() = events;
                Ok(Some(list?.unbind()))
            }
            Awaiting::Connected => match q.connect_state() {
                ConnectState::Pending => Ok(None),
                ConnectState::Connected => Ok(Some(py.None())),
                ConnectState::Failed(e) => Err(match e.kind {
                    ConnectErrorKind::Timeout => ConnectTimeout::new_err(e.message),
                    ConnectErrorKind::Handshake => HandshakeError::new_err(e.message),
                    ConnectErrorKind::Io => ConnectError::new_err(e.message),
                }),
            },
            Awaiting::Closed => Ok(q.is_ended().then(|| py.None())),
        }
    }

    /// `__next__`'s work: Err(StopIteration) with the result, another error, or the Future.
    fn step(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
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
            fut.get().set_blocking(true);
            return Ok(fut.into_any().unbind());
        }
    }

    /// The wait ends (a result, an error, a cancellation): it no longer counts as pulling.
    pub(super) fn ended(&self) {
        if self.asleep.swap(false, Ordering::Relaxed) {
            self.side.pulling.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn wants_events(&self) -> bool {
        matches!(
            self.wait,
            Awaiting::One | Awaiting::Next | Awaiting::Batch(_)
        )
    }
}

#[pymethods]
impl Wait {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Either finishes (StopIteration carrying the result) or yields the Future to sleep on.
    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let stepped = self.step(py);
        if stepped.is_err() {
            self.ended();
        } else if self.wants_events() && !self.asleep.swap(true, Ordering::Relaxed) {
            self.side.pulling.fetch_add(1, Ordering::Relaxed);
        }
        stepped
    }

    /// Called by a Task that is cancelled while we sleep.
    #[pyo3(signature = (*args))]
    fn throw(&self, args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<Py<PyAny>> {
        self.ended();
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

    fn close(&self) {
        self.ended();
    }
}
