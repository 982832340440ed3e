//! Server messages as frozen Python classes. Each wraps the core's parsed struct and converts a
//! field only when it is read; `repr`, `==` and `__match_args__` follow the API.md field order,
//! identical to the pure backend's classes.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use crate::protocol::server::{self, OrderUpdateKind};
use crate::protocol::{parse_bytes, parse_str, ServerMessage};

/// A field value as Python sees it.
trait Attr {
    fn attr<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>>;
}

impl Attr for server::Str {
    fn attr<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyString::new(py, self).into_any())
    }
}

impl Attr for &'static str {
    fn attr<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyString::intern(py, self).into_any())
    }
}

impl Attr for OrderUpdateKind {
    fn attr<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyString::intern(py, self.as_str()).into_any())
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
attr_by_value!(u64, i32, bool);

impl<T: Attr> Attr for Option<T> {
    fn attr<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Some(v) => v.attr(py),
            None => Ok(py.None().into_bound(py)),
        }
    }
}

impl<T: Attr> Attr for Vec<T> {
    fn attr<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let items = self
            .iter()
            .map(|v| v.attr(py))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(PyList::new(py, items)?.into_any())
    }
}

impl Attr for (server::Str, server::Str) {
    fn attr<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(PyTuple::new(py, [self.0.attr(py)?, self.1.attr(py)?])?.into_any())
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

macro_rules! message_class {
    ($py:ident, $name:literal, $inner:ty, [$($field:ident),* $(,)?] { $($extra:tt)* }) => {
        #[pyclass(frozen, extends = Message, module = "bullet_ws._core", name = $name)]
        pub struct $py(pub $inner);

        #[pymethods]
        impl $py {
            $(
                #[getter]
                fn $field<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                    self.0.$field.attr(py)
                }
            )*

            #[classattr]
            fn __match_args__(py: Python<'_>) -> PyResult<Py<PyTuple>> {
                Ok(PyTuple::new(py, [$(stringify!($field)),*])?.unbind())
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

message_class!(PyStatus, "Status", server::Status, [event_time, status, client_id, reason] {});

message_class!(PyPong, "Pong", server::Pong, [id, event_time] {
    #[getter]
    fn request_id(&self) -> Option<u64> { self.0.id }
});

message_class!(PySubscribeResult, "SubscribeResult", server::MethodResult, [id, event_time, result] {
    #[getter]
    fn request_id(&self) -> Option<u64> { self.0.id }
});

message_class!(PyUnsubscribeResult, "UnsubscribeResult", server::MethodResult, [id, event_time, result] {
    #[getter]
    fn request_id(&self) -> Option<u64> { self.0.id }
});

message_class!(PyListSubscriptionsResult, "ListSubscriptionsResult", server::ListSubscriptions, [id, event_time, topics] {
    #[getter]
    fn request_id(&self) -> Option<u64> { self.0.id }
});

message_class!(PyOrderResult, "OrderResult", server::OrderResult,
    [method, id, event_time, tx_id, status, order_ids, client_order_ids] {
    #[getter]
    fn request_id(&self) -> Option<u64> { self.0.id }
    /// processed, published, submitted and finalized are successes.
    #[getter]
    fn is_success(&self) -> bool { self.0.is_success() }
});

message_class!(PyErrorMessage, "ErrorMessage", server::ErrorMessage, [id, event_time, code, msg, param] {
    #[getter]
    fn request_id(&self) -> Option<u64> { self.0.id }
    #[getter]
    fn is_error(&self) -> bool { true }
});

message_class!(PyDepthUpdate, "DepthUpdate", server::DepthUpdate,
    [event_type, event_time, transaction_time, symbol, first_update_id, final_update_id,
     prev_final_update_id, bids, asks, message_type] {
    #[getter]
    fn is_snapshot(&self) -> bool { self.0.message_type == "s" }
});

message_class!(PyAggTrade, "AggTrade", server::AggTrade,
    [event_type, event_time, symbol, agg_trade_id, price, quantity, first_trade_id, last_trade_id,
     trade_time, is_buyer_maker, tx_hash, user_address, order_id, is_maker, is_full_fill,
     is_liquidation, fee, net_fee, fee_asset, client_order_id, side] {});

message_class!(PyBookTicker, "BookTicker", server::BookTicker,
    [event_type, update_id, event_time, transaction_time, symbol, bid_price, bid_qty, ask_price,
     ask_qty, message_type] {
    #[getter]
    fn is_snapshot(&self) -> bool { self.0.message_type == "s" }
});

message_class!(PyMarkPrice, "MarkPrice", server::MarkPrice,
    [event_type, event_time, symbol, mark_price, index_price, funding_rate, estimated_settle_price,
     next_funding_time, tx_hash] {});

message_class!(PyForceOrder, "ForceOrder", server::ForceOrder,
    [event_type, event_time, symbol, side, order_type, time_in_force, price, avg_price, status,
     last_filled_qty, trade_time, tx_hash, user_address, order_id, trade_id, quantity, filled_qty] {});

message_class!(PyOrderUpdate, "OrderUpdate", server::OrderUpdate,
    [event_type, event_time, kind, symbol, order_id, client_order_id, status, execution_type,
     trade_time, tx_hash, user_address, side, order_type, time_in_force, price, quantity,
     last_filled_qty, last_filled_price, commission] {});

message_class!(PyUnknown, "Unknown", server::Unknown, [raw, error] {});

fn new_message<'py, T: pyo3::PyClass<BaseType = Message>>(
    py: Python<'py>,
    value: T,
) -> PyResult<Bound<'py, PyAny>> {
    let init = pyo3::PyClassInitializer::from(Message).add_subclass(value);
    let message = Bound::new(py, init)?.into_any();
    // A message holds only Rust data, never a Python reference, so it can never be part of a
    // reference cycle: the cycle collector has no reason to traverse the millions of them.
    // SAFETY: `message` is a live object of a GC type; untracking it twice is allowed.
    unsafe { pyo3::ffi::PyObject_GC_UnTrack(message.as_ptr().cast()) };
    Ok(message)
}

/// Builds the Python object of a parsed message (on the loop thread).
pub fn to_python(py: Python<'_>, message: ServerMessage) -> PyResult<Bound<'_, PyAny>> {
    match message {
        ServerMessage::AggTrade(m) => new_message(py, PyAggTrade(m)),
        ServerMessage::DepthUpdate(m) => new_message(py, PyDepthUpdate(m)),
        ServerMessage::BookTicker(m) => new_message(py, PyBookTicker(m)),
        ServerMessage::MarkPrice(m) => new_message(py, PyMarkPrice(m)),
        ServerMessage::ForceOrder(m) => new_message(py, PyForceOrder(m)),
        ServerMessage::OrderUpdate(m) => new_message(py, PyOrderUpdate(m)),
        ServerMessage::Status(m) => new_message(py, PyStatus(m)),
        ServerMessage::Pong(m) => new_message(py, PyPong(m)),
        ServerMessage::Error(m) => new_message(py, PyErrorMessage(m)),
        ServerMessage::Subscribe(m) => new_message(py, PySubscribeResult(m)),
        ServerMessage::Unsubscribe(m) => new_message(py, PyUnsubscribeResult(m)),
        ServerMessage::ListSubscriptions(m) => new_message(py, PyListSubscriptionsResult(m)),
        ServerMessage::OrderResult(m) => new_message(py, PyOrderResult(m)),
        ServerMessage::Unknown(m) => new_message(py, PyUnknown(m)),
    }
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
    m.add_class::<Message>()?;
    m.add_class::<PyStatus>()?;
    m.add_class::<PyPong>()?;
    m.add_class::<PySubscribeResult>()?;
    m.add_class::<PyUnsubscribeResult>()?;
    m.add_class::<PyListSubscriptionsResult>()?;
    m.add_class::<PyOrderResult>()?;
    m.add_class::<PyErrorMessage>()?;
    m.add_class::<PyDepthUpdate>()?;
    m.add_class::<PyAggTrade>()?;
    m.add_class::<PyBookTicker>()?;
    m.add_class::<PyMarkPrice>()?;
    m.add_class::<PyForceOrder>()?;
    m.add_class::<PyOrderUpdate>()?;
    m.add_class::<PyUnknown>()?;
    m.add_function(wrap_pyfunction!(parse_message, m)?)?;
    Ok(())
}
