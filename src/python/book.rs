//! `OrderBook`: a read-only view of a book kept by the socket task (`crate::book`), and the
//! book events as the Python classes of `bullet_ws.events`.
//!
//! A read copies under the book's lock only the levels asked for, then builds the Python objects
//! after releasing it, so the socket task never waits on Python.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyList, PyString, PyTuple};
use tokio::time::{Duration, Instant};

use crate::book::{Book, BookEvent, Books};
use crate::protocol::parse_str;
use crate::protocol::server::Level;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add(
        "RESUBSCRIBE_EVERY",
        crate::book::RESUBSCRIBE_EVERY.as_secs_f64(),
    )?;
    m.add("BOOK_UNREAD_GRACE", crate::book::UNREAD_GRACE.as_secs_f64())?;
    m.add_class::<OrderBook>()?;
    m.add_class::<BookFeeder>()?;
    Ok(())
}

struct Classes {
    gap: Py<PyAny>,
    resynced: Py<PyAny>,
}

fn classes(py: Python<'_>) -> PyResult<&Classes> {
    static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();
    CLASSES.get_or_try_init(py, || {
        let events = py.import("bullet_ws.events")?;
        Ok(Classes {
            gap: events.getattr("BookGap")?.unbind(),
            resynced: events.getattr("BookResynced")?.unbind(),
        })
    })
}

pub fn event_to_python(py: Python<'_>, event: BookEvent) -> PyResult<Bound<'_, PyAny>> {
    match event {
        BookEvent::Gap {
            symbol,
            expected,
            got,
        } => classes(py)?
            .gap
            .bind(py)
            .call1((symbol.as_str(), expected, got)),
        BookEvent::Resynced { symbol, downtime } => classes(py)?
            .resynced
            .bind(py)
            .call1((symbol.as_str(), downtime.as_secs_f64())),
    }
}

fn level<'py>(py: Python<'py>, l: &Level) -> PyResult<Bound<'py, PyAny>> {
    Ok(PyTuple::new(py, [PyString::new(py, &l.0), PyString::new(py, &l.1)])?.into_any())
}

fn levels<'py>(py: Python<'py>, ls: Vec<Level>) -> PyResult<Bound<'py, PyList>> {
    let items = ls
        .iter()
        .map(|l| level(py, l))
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

/// `n` of `bids(n)`/`asks(n)`: None or an int >= 0. Anything else goes to the shared validator,
/// which raises the pure backend's error.
fn count_arg(n: Option<&Bound<'_, PyAny>>) -> PyResult<Option<usize>> {
    let Some(n) = n.filter(|n| !n.is_none()) else {
        return Ok(None);
    };
    if n.is_exact_instance_of::<pyo3::types::PyInt>() {
        if let Ok(n) = n.extract::<usize>() {
            return Ok(Some(n));
        }
    }
    let checked = validator(n.py())?.bind(n.py()).call1((n,))?;
    // A valid count beyond usize is "all of them".
    Ok(Some(checked.extract::<usize>().unwrap_or(usize::MAX)))
}

fn validator(py: Python<'_>) -> PyResult<&Py<PyAny>> {
    static COUNT_ARG: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    COUNT_ARG.get_or_try_init(py, || {
        Ok(py
            .import("bullet_ws._validate")?
            .getattr("count_arg")?
            .unbind())
    })
}

/// The live order book of one symbol, kept by the socket (see docs/API.md "Order book").
#[pyclass(frozen, module = "bullet_ws._core", name = "OrderBook")]
pub struct OrderBook(pub Arc<Book>);

#[pymethods]
impl OrderBook {
    #[getter]
    fn symbol(&self) -> &str {
        self.0.symbol()
    }

    /// Up to `n` bids (all with None), best first, as (price, quantity) wire strings.
    #[pyo3(signature = (n=None))]
    fn bids<'py>(
        &self,
        py: Python<'py>,
        n: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let n = count_arg(n)?;
        levels(py, self.0.read(|s| s.bids(n)))
    }

    /// Up to `n` asks (all with None), best first, as (price, quantity) wire strings.
    #[pyo3(signature = (n=None))]
    fn asks<'py>(
        &self,
        py: Python<'py>,
        n: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let n = count_arg(n)?;
        levels(py, self.0.read(|s| s.asks(n)))
    }

    #[getter]
    fn best_bid<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.0
            .read(|s| s.best_bid())
            .map(|l| level(py, &l))
            .transpose()
    }

    #[getter]
    fn best_ask<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.0
            .read(|s| s.best_ask())
            .map(|l| level(py, &l))
            .transpose()
    }

    #[getter]
    fn last_update_id(&self) -> u64 {
        self.0.read(|s| s.last_update_id())
    }

    #[getter]
    fn event_time(&self) -> u64 {
        self.0.read(|s| s.event_time())
    }

    #[getter]
    fn is_synced(&self) -> bool {
        self.0.read(|s| s.is_synced())
    }

    fn __repr__(&self) -> String {
        let (synced, id, bid, ask) = self.0.read(|s| {
            (
                s.is_synced(),
                s.last_update_id(),
                s.best_bid(),
                s.best_ask(),
            )
        });
        let side =
            |l: Option<Level>| l.map_or("None".into(), |l| format!("('{}', '{}')", l.0, l.1));
        format!(
            "<OrderBook {} synced={} last_update_id={} best_bid={} best_ask={}>",
            self.0.symbol(),
            if synced { "True" } else { "False" },
            id,
            side(bid),
            side(ask)
        )
    }
}

/// A test hook: the socket task's book logic without a socket, fed frame by frame with the
/// time given in seconds (from any origin), so that tests can drive both backends alike.
#[pyclass(module = "bullet_ws._core", name = "_BookFeeder")]
pub struct BookFeeder {
    books: Books,
    origin: Instant,
}

impl BookFeeder {
    fn at(&self, now: f64) -> Instant {
        // Negative: before the feeder was made (a book subscribed that long before).
        if now < 0.0 {
            return self
                .origin
                .checked_sub(Duration::from_secs_f64(-now))
                .unwrap_or(self.origin);
        }
        self.origin + Duration::from_secs_f64(now)
    }
}

#[pymethods]
impl BookFeeder {
    #[new]
    fn new() -> Self {
        BookFeeder {
            books: Books::default(),
            origin: Instant::now(),
        }
    }

    fn subscribe(&self, topics: Vec<String>, now: f64) {
        self.books.topics_added(&topics, self.at(now));
    }

    fn unsubscribe(&self, topics: Vec<String>, now: f64) {
        self.books.topics_removed(&topics, self.at(now));
    }

    fn connection_lost(&self, now: f64) {
        self.books.connection_lost(self.at(now));
    }

    /// Applies one frame; returns (the book event or None, the topics to resubscribe).
    fn feed<'py>(
        &self,
        py: Python<'py>,
        frame: &str,
        now: f64,
    ) -> PyResult<(Option<Bound<'py, PyAny>>, Vec<String>)> {
        let message = parse_str(frame);
        let mut resubscribe = Vec::new();
        let event = self.books.apply(&message, self.at(now), &mut resubscribe);
        Ok((
            event.map(|e| event_to_python(py, e)).transpose()?,
            resubscribe,
        ))
    }

    /// The book, read at `now` (its levels are kept from then on, as from `ws.book`).
    #[pyo3(signature = (symbol, now = 0.0))]
    fn book(&self, symbol: &str, now: f64) -> Option<OrderBook> {
        self.books.book(symbol, self.at(now)).map(OrderBook)
    }
}
