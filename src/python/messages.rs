//! Server messages as frozen Python classes. Each wraps the core's parsed struct and converts a
//! field only when it is read; `repr`, `==` and `__match_args__` follow the spec's field order,
//! identical to the pure backend's classes. The classes themselves are generated from
//! `spec/messages.toml` into `message_classes.rs`; the machinery they use is here.

use pyo3::exceptions::PyTypeError;
use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

pub(super) use super::message_classes::to_python;
pub(super) use crate::protocol::server::is_success;
use crate::protocol::server::Str;
use crate::protocol::{parse_bytes, parse_str};

/// A field value as Python sees it.
pub(super) trait Attr {
    fn attr<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>>;
}

impl Attr for Str {
    fn attr<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyString::new(py, self).into_any())
    }
}

impl Attr for &'static str {
    fn attr<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyString::intern(py, self).into_any())
    }
}

macro_rules! attr_by_value {
    ($($t:ty),*) => {$(
        impl Attr for $t {
            fn attr<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                Ok(self.into_pyobject(py)?.to_owned().into_any())
            }
        }
    )*};
}
attr_by_value!(u64, u16, i32, i64, bool);

impl<T: Attr> Attr for Option<T> {
    fn attr<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Some(v) => v.attr(py),
            None => Ok(py.None().into_bound(py)),
        }
    }
}

/// A list of `items`, filled in place: no vector of intermediate references (a depth20 side is
/// 20 levels, a batch up to 1024 events, made on the loop thread). An error drops the rest.
pub(super) fn list_of<'py>(
    py: Python<'py>,
    items: impl ExactSizeIterator<Item = PyResult<Bound<'py, PyAny>>>,
) -> PyResult<Bound<'py, PyAny>> {
    let len = items.len();
    // SAFETY: PyList_New returns a list of `len` NULL slots, or NULL with an error set; each
    // slot is set once with an owned reference, which PyList_SetItem steals (it checks the
    // index). A list dropped on an error with NULL slots left is valid (list_dealloc skips them).
    let list =
        unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyList_New(len as ffi::Py_ssize_t))? };
    let mut filled = 0;
    for item in items {
        // SAFETY: see above.
        if unsafe {
            ffi::PyList_SetItem(list.as_ptr(), filled as ffi::Py_ssize_t, item?.into_ptr())
        } != 0
        {
            return Err(PyErr::fetch(py));
        }
        filled += 1;
    }
    // `len()` is a promise safe code may break; a NULL slot must never reach Python.
    if filled != len {
        return Err(pyo3::exceptions::PySystemError::new_err(
            "list_of: fewer items than len()",
        ));
    }
    Ok(list)
}

impl<T: Attr> Attr for Vec<T> {
    fn attr<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        list_of(py, self.iter().map(|v| v.attr(py)))
    }
}

impl Attr for (Str, Str) {
    fn attr<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (price, qty) = (self.0.attr(py)?, self.1.attr(py)?);
        // SAFETY: PyTuple_New(2) returns a tuple of two NULL slots (or NULL with an error set),
        // each set once below with an owned reference, which PyTuple_SetItem steals.
        let level = unsafe {
            let level = Bound::from_owned_ptr_or_err(py, ffi::PyTuple_New(2))?;
            ffi::PyTuple_SetItem(level.as_ptr(), 0, price.into_ptr());
            ffi::PyTuple_SetItem(level.as_ptr(), 1, qty.into_ptr());
            level
        };
        // Two strings, and a tuple never changes: it can never be part of a cycle. Untracked now
        // rather than at the collector's next pass: a batch of messages holds many of them, and
        // every collection would otherwise walk them all.
        // SAFETY: `level` is a live tuple, a GC type; untracking it is always allowed.
        unsafe { ffi::PyObject_GC_UnTrack(level.as_ptr().cast()) };
        Ok(level)
    }
}

/// Base class of every server message.
#[pyclass(frozen, subclass, module = "bullet_ws._core")]
pub struct Message;

#[pymethods]
impl Message {
    /// The id this message answers, if any.
    #[getter]
    fn request_id(&self) -> Option<u64> {
        None
    }

    #[getter]
    fn is_error(&self) -> bool {
        false
    }
}

/// Base class of the records inside messages (`MarketStatusEntry`, `DegenPosition`).
#[pyclass(frozen, subclass, module = "bullet_ws._core")]
pub struct Record;

/// The Python objects of a class's cached fields, made when first read: `m.bids is m.bids`, as
/// with the pure backend's plain attributes, and a list of levels is built once however often it
/// is read. A cached object is a Python reference held by an object the cycle collector does not
/// track (see `new_message`): a list that is made to contain its own message is never freed.
pub struct Cache<const N: usize>([OnceLock<Py<PyAny>>; N]);

impl<const N: usize> Default for Cache<N> {
    fn default() -> Self {
        Cache(std::array::from_fn(|_| OnceLock::new()))
    }
}

impl<const N: usize> Cache<N> {
    pub(super) fn get<'py>(
        &self,
        py: Python<'py>,
        index: usize,
        make: impl FnOnce() -> PyResult<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let cell = &self.0[index];
        if let Some(kept) = cell.get() {
            return Ok(kept.bind(py).clone());
        }
        // Made outside the cell's lock: making it allocates, which can run other Python code
        // (a collection, a finalizer) that may read this same field. Whoever sets it first wins,
        // so every reader sees one object. (pyo3's `PyOnceLock` costs about five times as much
        // on the first read: docs/BENCHMARKS_RESULTS.md, "Attribute cache".)
        let made = make()?.unbind();
        let _ = cell.set(made);
        Ok(cell.get().expect("set just now").bind(py).clone())
    }
}

/// Getters, `__match_args__`, `__repr__` and `__eq__`, in the spec's field order. `repr` and `==`
/// read the parsed data, never the cache.
macro_rules! common_methods {
    ($py:ident, $name:literal, [$($field:ident),*] [$($plain:ident),*] [$($kept:ident = $slot:literal),*] { $($extra:tt)* }) => {
        #[pymethods]
        impl $py {
            $(
                #[getter]
                fn $plain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                    self.0.$plain.attr(py)
                }
            )*

            $(
                #[getter]
                fn $kept<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                    self.1.get(py, $slot, || self.0.$kept.attr(py))
                }
            )*

            #[classattr]
            fn __match_args__(py: Python<'_>) -> PyResult<Py<pyo3::types::PyTuple>> {
                Ok(pyo3::types::PyTuple::new(py, [$(stringify!($field)),*])?.unbind())
            }

            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                let mut out = String::from(concat!($name, "("));
                let mut first = true;
                $(
                    if !first {
                        out.push_str(", ");
                    }
                    first = false;
                    out.push_str(concat!(stringify!($field), "="));
                    out.push_str(&self.0.$field.attr(py)?.repr()?.to_cow()?);
                )*
                let _ = first;
                out.push(')');
                Ok(out)
            }

            fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
                other.cast::<$py>().is_ok_and(|o| o.get().0 == self.0)
            }

            $($extra)*
        }
    };
}

macro_rules! message_class {
    ($py:ident, $name:literal, $inner:ty, $fields:tt $plain:tt $kept:tt $n:literal { $($extra:tt)* }) => {
        #[pyclass(frozen, extends = Message, module = "bullet_ws._core", name = $name)]
        pub struct $py(pub $inner, pub super::messages::Cache<$n>);

        common_methods!($py, $name, $fields $plain $kept { $($extra)* });
    };
}

/// A record is converted as a whole when the field that holds it is read.
macro_rules! record_class {
    ($py:ident, $name:literal, $inner:ty, $fields:tt $plain:tt $kept:tt $n:literal { $($extra:tt)* }) => {
        #[pyclass(frozen, extends = Record, module = "bullet_ws._core", name = $name)]
        pub struct $py(pub $inner, pub super::messages::Cache<$n>);

        common_methods!($py, $name, $fields $plain $kept { $($extra)* });

        impl Attr for $inner {
            fn attr<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                let init = pyo3::PyClassInitializer::from(Record)
                    .add_subclass($py(self.clone(), Default::default()));
                let record = Bound::new(py, init)?.into_any();
                // SAFETY: as for messages (see `new_message`).
                unsafe { pyo3::ffi::PyObject_GC_UnTrack(record.as_ptr().cast()) };
                Ok(record)
            }
        }
    };
}

pub(super) fn new_message<'py, T: pyo3::PyClass<BaseType = Message>>(
    py: Python<'py>,
    value: T,
) -> PyResult<Bound<'py, PyAny>> {
    let init = pyo3::PyClassInitializer::from(Message).add_subclass(value);
    let message = Bound::new(py, init)?.into_any();
    // A message holds Rust data and, once read, the lists and records made from it (`Cache`),
    // which hold only strings and numbers: it is part of a reference cycle only if user code
    // puts it into one of its own lists. The cycle collector has no reason to traverse the
    // millions of them.
    // SAFETY: `message` is a live object of a GC type; untracking it twice is allowed.
    unsafe { pyo3::ffi::PyObject_GC_UnTrack(message.as_ptr().cast()) };
    Ok(message)
}

/// Parses one frame exactly as the socket does; never raises for bad content.
#[pyfunction]
fn parse_message<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let message = if let Ok(text) = data.cast::<PyString>() {
        parse_str(&text.to_cow()?)
    } else if let Ok(bytes) = data.cast::<PyBytes>() {
        parse_bytes(bytes.as_bytes())
    } else {
        return Err(PyTypeError::new_err(format!(
            "data must be str or bytes, got {}",
            data.get_type().name()?
        )));
    };
    to_python(py, message)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Record>()?;
    super::message_classes::register(m)?;
    m.add_function(wrap_pyfunction!(parse_message, m)?)?;
    Ok(())
}
