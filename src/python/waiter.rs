//! What a sleeping wait (`_Wait`) yields to its asyncio Task: a Future of our own. The Task takes
//! any object with the Future protocol (`_asyncio_future_blocking`, `get_loop` or `_loop`,
//! `add_done_callback`, `cancel`, `result`). The doorbell or the socket reader wakes it on the
//! loop's thread and runs the Task's wake-up at once, in the Task's context. An asyncio Future
//! would schedule that wake-up for the loop's next iteration instead: one more pass of the loop
//! (its `epoll_wait` included) before `async for` sees a tick. Only a cancelled waiter schedules
//! its callbacks, as asyncio does.
//!
//! Woken inline, the Task runs inside a loop callback, as a `set_handler` handler does: never
//! inside another Task, which asyncio would refuse.
//!
//! A waiter that finished uncancelled hands its callbacks a finished asyncio Future (`resolved`,
//! one per socket, result None) instead of itself: the Task's C wake-up reads an asyncio
//! Future's result in C, where on any other object it looks `result` up by name and calls it,
//! about 3 k instructions per tick. A cancelled waiter hands itself, whose `result()` raises
//! `CancelledError`.

use parking_lot::Mutex;
use pyo3::exceptions::asyncio::{CancelledError, InvalidStateError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::{PyTraverseError, PyVisit};

use super::convert::classes;

/// A done-callback and the context it runs in.
type Callback = (Py<PyAny>, Py<PyAny>);

#[derive(Default)]
struct State {
    blocking: bool,
    done: bool,
    /// Set by `cancel`: the message `result()` raises `CancelledError` with.
    cancelled: Option<Option<Py<PyAny>>>,
    callbacks: Vec<Callback>,
}

#[pyclass(frozen, module = "bullet_ws._core", name = "_Waiter")]
pub(super) struct Waiter {
    /// `_loop`, a struct member: with no `get_loop`, the Task reads the loop here without a call.
    #[pyo3(get, name = "_loop")]
    event_loop: Py<PyAny>,
    /// What an uncancelled waiter's callbacks are called with (see the module's doc).
    resolved: Py<PyAny>,
    state: Mutex<State>,
}

impl Waiter {
    pub(super) fn new(event_loop: Py<PyAny>, resolved: Py<PyAny>) -> Self {
        Waiter {
            event_loop,
            resolved,
            state: Mutex::new(State::default()),
        }
    }

    pub(super) fn is_done(&self) -> bool {
        self.state.lock().done
    }

    /// Marks the waiter done: its callbacks, or None when it was done already.
    fn finish(&self) -> Option<Vec<Callback>> {
        let mut st = self.state.lock();
        if st.done {
            return None;
        }
        st.done = true;
        Some(std::mem::take(&mut st.callbacks))
    }

    /// The wait may go on: runs the done-callbacks (the Task's wake-up) now. Once.
    pub(super) fn wake(slf: &Bound<'_, Self>) -> PyResult<()> {
        let Some(callbacks) = slf.get().finish() else {
            return Ok(());
        };
        let py = slf.py();
        // `Context.run` unbound: no bound method is made per call.
        let run = &classes(py)?.context_run;
        let resolved = &slf.get().resolved;
        let mut callbacks = callbacks.into_iter();
        while let Some((callback, context)) = callbacks.next() {
            let ran = run.call1(py, (context, callback, resolved));
            if let Err(e) = ran {
                // Only what a Task lets through (KeyboardInterrupt, SystemExit): the rest of
                // the callbacks run later, as asyncio's would.
                Self::schedule_all(slf, callbacks)?;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Wakes the waiter on the loop's next iteration (the callbacks are scheduled).
    pub(super) fn wake_later(slf: &Bound<'_, Self>) -> PyResult<()> {
        match slf.get().finish() {
            Some(callbacks) => Self::schedule_all(slf, callbacks),
            None => Ok(()),
        }
    }

    /// Wakes these waiters on the loop's next iteration.
    pub(super) fn wake_all_later(
        waiters: impl IntoIterator<Item = Py<Self>>,
        py: Python<'_>,
    ) -> PyResult<()> {
        for waiter in waiters {
            Self::wake_later(waiter.bind(py))?;
        }
        Ok(())
    }

    fn schedule_all(
        slf: &Bound<'_, Self>,
        callbacks: impl IntoIterator<Item = Callback>,
    ) -> PyResult<()> {
        for (callback, context) in callbacks {
            slf.get().schedule(slf.py(), callback, context, slf)?;
        }
        Ok(())
    }

    fn schedule(
        &self,
        py: Python<'_>,
        callback: Py<PyAny>,
        context: Py<PyAny>,
        slf: &Bound<'_, Self>,
    ) -> PyResult<()> {
        let kwargs = PyDict::new(py);
        kwargs.set_item(pyo3::intern!(py, "context"), context)?;
        let handed = if self.cancelled() {
            slf.as_any()
        } else {
            self.resolved.bind(py)
        };
        self.event_loop.bind(py).call_method(
            pyo3::intern!(py, "call_soon"),
            (callback, handed),
            Some(&kwargs),
        )?;
        Ok(())
    }
}

#[pymethods]
impl Waiter {
    /// The Task holds its waiter and the waiter the Task's wake-up: a cycle, which the
    /// collector must see through for a Task abandoned asleep (as asyncio's Future lets it).
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.event_loop)?;
        visit.call(&self.resolved)?;
        // Held, the lock is held by this thread in code that makes no Python object: what it
        // guards then goes unreported, which only keeps it alive.
        if let Some(st) = self.state.try_lock() {
            for (callback, context) in &st.callbacks {
                visit.call(callback)?;
                visit.call(context)?;
            }
            if let Some(Some(msg)) = &st.cancelled {
                visit.call(msg)?;
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        let callbacks = std::mem::take(&mut self.state.lock().callbacks);
        drop(callbacks);
    }

    #[getter(_asyncio_future_blocking)]
    fn blocking(&self) -> bool {
        self.state.lock().blocking
    }

    #[setter(_asyncio_future_blocking)]
    pub(super) fn set_blocking(&self, value: bool) {
        self.state.lock().blocking = value;
    }

    /// A callback given no context runs in a copy of the caller's, as asyncio's do (the Task
    /// always gives its own).
    #[pyo3(signature = (callback, *, context = None))]
    fn add_done_callback(
        slf: &Bound<'_, Self>,
        callback: Py<PyAny>,
        context: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let context = match context {
            Some(context) => context,
            None => slf
                .py()
                .import(pyo3::intern!(slf.py(), "contextvars"))?
                .call_method0(pyo3::intern!(slf.py(), "copy_context"))?
                .unbind(),
        };
        let me = slf.get();
        let mut st = me.state.lock();
        if st.done {
            drop(st);
            return me.schedule(slf.py(), callback, context, slf);
        }
        st.callbacks.push((callback, context));
        Ok(())
    }

    /// The comparison runs Python code (`__eq__`), so it runs outside the lock, as does dropping
    /// what is removed.
    fn remove_done_callback(&self, py: Python<'_>, callback: &Bound<'_, PyAny>) -> PyResult<usize> {
        let callbacks = std::mem::take(&mut self.state.lock().callbacks);
        let mut kept = Vec::with_capacity(callbacks.len());
        let mut removed = Vec::new();
        let mut failed = None;
        for entry in callbacks {
            // After a failed comparison, the rest are kept.
            let same = failed.is_none()
                && (entry.0.bind(py).is(callback)
                    || entry.0.bind(py).eq(callback).unwrap_or_else(|e| {
                        failed = Some(e);
                        false
                    }));
            if same {
                removed.push(entry);
            } else {
                kept.push(entry);
            }
        }
        // Callbacks added meanwhile (by an `__eq__`) go after the ones kept.
        let mut st = self.state.lock();
        kept.append(&mut st.callbacks);
        st.callbacks = kept;
        drop(st);
        failed.map_or(Ok(removed.len()), Err)
    }

    #[pyo3(signature = (msg = None))]
    fn cancel(slf: &Bound<'_, Self>, msg: Option<Py<PyAny>>) -> PyResult<bool> {
        {
            let mut st = slf.get().state.lock();
            if st.done {
                return Ok(false);
            }
            st.cancelled = Some(msg);
        }
        Self::wake_later(slf)?;
        Ok(true)
    }

    fn cancelled(&self) -> bool {
        self.state.lock().cancelled.is_some()
    }

    fn done(&self) -> bool {
        self.is_done()
    }

    fn result(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.exception(py)?;
        Ok(py.None())
    }

    /// None once woken; raises as an asyncio Future does when cancelled or still pending.
    fn exception(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let st = self.state.lock();
        if let Some(msg) = &st.cancelled {
            return Err(match msg {
                Some(msg) => CancelledError::new_err((msg.clone_ref(py),)),
                None => CancelledError::new_err(()),
            });
        }
        if !st.done {
            return Err(InvalidStateError::new_err("Result is not ready."));
        }
        Ok(py.None())
    }

    fn __repr__(&self) -> &'static str {
        let st = self.state.lock();
        match (st.done, st.cancelled.is_some()) {
            (_, true) => "<_Waiter cancelled>",
            (true, false) => "<_Waiter finished>",
            (false, false) => "<_Waiter pending>",
        }
    }
}
