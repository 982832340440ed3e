//! `_core._MockServer`: the fake exchange of `crates/mock`, for `bullet_ws.testing.MockExchange`.
//!
//! The mock runs on its own thread and runtime and never touches Python; the blocking calls
//! here (stop, waits) release the GIL while they block.

use std::time::Duration;

use bullet_ws_mock::{ClosedBy, ConnectionRecord, DropHow, Fault, MockConfig, OrderReject, Scope};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<MockServer>()
}

/// A running fake Bullet exchange (native). Use `bullet_ws.testing.MockExchange` instead.
#[pyclass(frozen, module = "bullet_ws._core", name = "_MockServer")]
struct MockServer {
    server: bullet_ws_mock::MockServer,
    host: String,
}

#[pymethods]
impl MockServer {
    /// Binds and starts serving at once; raises OSError if the address cannot be bound.
    #[new]
    #[pyo3(signature = (host="127.0.0.1".to_string(), port=0, rate=Some(20.0), symbols=None,
                        max_messages=None, preencode=false, ping_interval=None, max_topics=None,
                        legacy_shapes=false, idle_close=None, max_duration=None,
                        shared_sequence=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        host: String,
        port: u16,
        rate: Option<f64>,
        symbols: Option<Vec<String>>,
        max_messages: Option<u64>,
        preencode: bool,
        ping_interval: Option<f64>,
        max_topics: Option<usize>,
        legacy_shapes: bool,
        idle_close: Option<f64>,
        max_duration: Option<f64>,
        shared_sequence: bool,
    ) -> PyResult<Self> {
        let defaults = MockConfig::default();
        let period =
            |name: &str, secs: Option<f64>| secs.map(|s| seconds_arg(name, s, false)).transpose();
        if let Some(r) = rate.filter(|r| !(MockConfig::MIN_RATE..=MockConfig::MAX_RATE).contains(r))
        {
            return Err(PyValueError::new_err(format!(
                "rate must be in {}..{} or None, got {r}",
                MockConfig::MIN_RATE,
                MockConfig::MAX_RATE
            )));
        }
        let config = MockConfig {
            host: host.clone(),
            port,
            rate,
            symbols: symbols.unwrap_or(defaults.symbols),
            max_messages,
            preencode,
            ping_interval: period("ping_interval", ping_interval)?,
            max_topics,
            legacy_shapes,
            idle_close: period("idle_close", idle_close)?,
            max_duration: period("max_duration", max_duration)?,
            shared_sequence,
            ..defaults
        };
        let server = bullet_ws_mock::MockServer::start(config).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidInput => PyValueError::new_err(e.to_string()),
            _ => PyOSError::new_err(e.to_string()),
        })?;
        Ok(Self { server, host })
    }

    /// `ws://HOST:PORT/ws` with the bound address.
    #[getter]
    fn url(&self) -> String {
        self.server.url()
    }

    #[getter]
    fn host(&self) -> &str {
        &self.host
    }

    #[getter]
    fn port(&self) -> u16 {
        self.server.addr().port()
    }

    #[getter]
    fn running(&self) -> bool {
        self.server.is_running()
    }

    /// Closes the listener and every connection and joins the mock's thread. Idempotent.
    fn stop(&self, py: Python<'_>) {
        py.detach(|| self.server.stop());
    }

    /// Applies a fault; see `MockExchange.fault`. Returns the number of connections hit (scope
    /// "current") or queued for (scope "next").
    #[pyo3(signature = (kind, scope="current", count=1, params=None))]
    fn fault(
        &self,
        kind: &str,
        scope: &str,
        count: i64,
        params: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<usize> {
        let mut params = Params::new(params)?;
        if count < 1 || count > i64::from(u32::MAX) {
            return Err(PyValueError::new_err(format!(
                "count must be >= 1, got {count}"
            )));
        }
        let count = count as u32;
        let (fault, scope_count) = match kind {
            // For "ping", `count` is the number of ping frames; scope "next" hits one connection.
            "ping" => (
                Fault::Ping {
                    count,
                    payload: params.bytes("payload")?.unwrap_or_default(),
                },
                1,
            ),
            _ => (parse_fault(kind, &mut params)?, count),
        };
        params.finish(kind)?;
        let scope = match scope {
            "current" => Scope::Current,
            "next" => Scope::Next { count: scope_count },
            other => {
                return Err(PyValueError::new_err(format!(
                    "scope must be 'current' or 'next', got {other:?}"
                )))
            }
        };
        self.server
            .fault(fault, scope)
            .map_err(|e| PyValueError::new_err(e.0))
    }

    /// Drops the faults queued with scope "next" that no connection has taken yet.
    fn clear_faults(&self) {
        self.server.clear_faults();
    }

    #[getter]
    fn refusing(&self) -> bool {
        self.server.refusing()
    }

    fn set_refusing(&self, on: bool) {
        self.server.set_refusing(on);
    }

    #[getter]
    fn tcp_accepts(&self) -> u64 {
        self.server.tcp_accepts()
    }

    #[getter]
    fn handshakes(&self) -> u64 {
        self.server.handshakes()
    }

    /// Every connection record as a dict, in accept order.
    fn connections<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let records = self.server.connections();
        let dicts = records
            .iter()
            .map(|r| record_dict(py, r))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, dicts)
    }

    /// One record as a dict, or None if there is no connection `index` (yet).
    fn connection<'py>(
        &self,
        py: Python<'py>,
        index: usize,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.server
            .connection(index)
            .map(|r| record_dict(py, &r))
            .transpose()
    }

    /// True once at least `n` upgrades happened; False after `timeout` seconds.
    fn wait_handshakes(&self, py: Python<'_>, n: u64, timeout: f64) -> PyResult<bool> {
        let t = timeout_arg(timeout)?;
        Ok(py.detach(|| self.server.wait_handshakes(n, t)))
    }

    /// True once connection `index` received at least `n` data frames; False after `timeout`.
    fn wait_frames(&self, py: Python<'_>, index: usize, n: usize, timeout: f64) -> PyResult<bool> {
        let t = timeout_arg(timeout)?;
        Ok(py.detach(|| self.server.wait_frames(index, n, t)))
    }

    /// True once connection `index` is closed; False after `timeout` seconds.
    fn wait_closed(&self, py: Python<'_>, index: usize, timeout: f64) -> PyResult<bool> {
        let t = timeout_arg(timeout)?;
        Ok(py.detach(|| self.server.wait_closed(index, t)))
    }

    fn __repr__(&self) -> String {
        format!("_MockServer(url={:?})", self.server.url())
    }
}

/// Seconds as a Duration in [0.001, 86400] (or [0, 86400] with `zero_ok`): anything else, NaN and
/// 1e300 included, is a ValueError naming the argument, never a panic of the conversion.
fn seconds_arg(name: &str, secs: f64, zero_ok: bool) -> PyResult<Duration> {
    // Checked before any conversion: Duration::from_secs_f64 panics on what it cannot hold,
    // and a zero period panics tokio's interval.
    let max = MockConfig::MAX_PERIOD.as_secs_f64();
    let min = if zero_ok {
        0.0
    } else {
        MockConfig::MIN_PERIOD.as_secs_f64()
    };
    if !(secs.is_finite() && secs >= min && secs <= max) {
        return Err(PyValueError::new_err(format!(
            "{name} must be a number of seconds in [{min}, {max}], got {secs:?}"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn timeout_arg(timeout: f64) -> PyResult<Duration> {
    let high = MockConfig::MAX_DURATION.as_secs_f64();
    if !(0.0..=high).contains(&timeout) {
        return Err(PyValueError::new_err(format!(
            "timeout must be in 0..{high:.0} seconds, got {timeout}"
        )));
    }
    Ok(Duration::from_secs_f64(timeout))
}

fn parse_fault(kind: &str, p: &mut Params<'_>) -> PyResult<Fault> {
    Ok(match kind {
        "close" => {
            let code = p.int("code")?.unwrap_or(1000);
            if !(1000..=4999).contains(&code) {
                return Err(PyValueError::new_err(format!(
                    "code must be a close code in 1000..4999, got {code}"
                )));
            }
            let reason = p.string("reason")?.unwrap_or_default();
            if reason.len() > 123 {
                return Err(PyValueError::new_err(format!(
                    "reason must be at most 123 UTF-8 bytes, got {}",
                    reason.len()
                )));
            }
            Fault::Close {
                code: code as u16,
                reason,
            }
        }
        "reset" => Fault::Reset,
        "fin" => Fault::Fin,
        "silence" => Fault::Silence {
            answer_pings: p.boolean("answer_pings")?.unwrap_or(true),
        },
        "disconnecting" => Fault::Disconnecting {
            reason: p.string("reason")?.unwrap_or_else(|| "idle_timeout".into()),
            delay: p.seconds("delay")?.unwrap_or_default(),
        },
        "send_text" => Fault::SendText(p.required_bytes("data")?),
        "send_binary" => Fault::SendBinary(p.required_bytes("data")?),
        "oversize" => Fault::Oversize(p.required_size("size")? as usize),
        "huge_header" => Fault::HugeHeader {
            length: p.size("length")?.unwrap_or(1 << 40),
        },
        "refuse" => Fault::Refuse,
        "stall_handshake" => Fault::StallHandshake,
        "accept_drop" => Fault::AcceptDrop(match p.string("how")?.as_deref().unwrap_or("fin") {
            "fin" => DropHow::Fin,
            "reset" => DropHow::Reset,
            "close" => DropHow::Close,
            other => {
                return Err(PyValueError::new_err(format!(
                    "how must be 'fin', 'reset' or 'close', got {other:?}"
                )))
            }
        }),
        "no_status" => Fault::NoStatus,
        "depth_gap" => Fault::DepthGap,
        "wrong_first" => Fault::WrongFirst(p.required_bytes("data")?),
        "reject_orders" => Fault::RejectOrders(OrderReject {
            code: p.int("code")?.unwrap_or(-2010),
            msg: p
                .string("msg")?
                .unwrap_or_else(|| "new order rejected".into()),
        }),
        other => {
            return Err(PyValueError::new_err(format!(
                "kind must be one of {}, got {other:?}",
                FAULT_KINDS.join(", ")
            )))
        }
    })
}

const FAULT_KINDS: [&str; 17] = [
    "close",
    "reset",
    "fin",
    "silence",
    "disconnecting",
    "send_text",
    "send_binary",
    "oversize",
    "huge_header",
    "ping",
    "refuse",
    "stall_handshake",
    "accept_drop",
    "no_status",
    "wrong_first",
    "reject_orders",
    "depth_gap",
];

/// Fault parameters, taken one by one; whatever is left over is an unknown parameter.
struct Params<'py> {
    items: Vec<(String, Bound<'py, PyAny>)>,
}

impl<'py> Params<'py> {
    fn new(dict: Option<&Bound<'py, PyDict>>) -> PyResult<Self> {
        let mut items = Vec::new();
        if let Some(d) = dict {
            for (k, v) in d.iter() {
                items.push((k.extract::<String>()?, v));
            }
        }
        Ok(Self { items })
    }

    fn take(&mut self, name: &str) -> Option<Bound<'py, PyAny>> {
        let i = self.items.iter().position(|(k, _)| k == name)?;
        Some(self.items.remove(i).1)
    }

    fn finish(self, kind: &str) -> PyResult<()> {
        match self.items.first() {
            Some((name, _)) => Err(PyValueError::new_err(format!(
                "{name}: unknown parameter for fault {kind:?}"
            ))),
            None => Ok(()),
        }
    }

    fn int(&mut self, name: &str) -> PyResult<Option<i64>> {
        let Some(v) = self.take(name) else {
            return Ok(None);
        };
        if v.is_instance_of::<pyo3::types::PyBool>() {
            return Err(PyValueError::new_err(format!(
                "{name} must be an int, got a bool"
            )));
        }
        v.extract::<i64>()
            .map(Some)
            .map_err(|_| PyValueError::new_err(format!("{name} must be an int, got {v}")))
    }

    fn size(&mut self, name: &str) -> PyResult<Option<u64>> {
        match self.take(name) {
            None => Ok(None),
            Some(v) if v.is_instance_of::<pyo3::types::PyBool>() => Err(PyValueError::new_err(
                format!("{name} must be an int >= 0, got a bool"),
            )),
            Some(v) => v
                .extract::<u64>()
                .map(Some)
                .map_err(|_| PyValueError::new_err(format!("{name} must be an int >= 0, got {v}"))),
        }
    }

    /// A delay in seconds (int or float, not bool), in [0, 86400].
    fn seconds(&mut self, name: &str) -> PyResult<Option<Duration>> {
        let Some(v) = self.take(name) else {
            return Ok(None);
        };
        if v.is_instance_of::<pyo3::types::PyBool>() {
            return Err(PyValueError::new_err(format!(
                "{name} must be a number, got a bool"
            )));
        }
        let secs = v
            .extract::<f64>()
            .map_err(|_| PyValueError::new_err(format!("{name} must be a number, got {v}")))?;
        seconds_arg(name, secs, true).map(Some)
    }

    fn required_size(&mut self, name: &str) -> PyResult<u64> {
        self.size(name)?
            .ok_or_else(|| PyValueError::new_err(format!("{name} is required")))
    }

    fn boolean(&mut self, name: &str) -> PyResult<Option<bool>> {
        let Some(v) = self.take(name) else {
            return Ok(None);
        };
        v.extract::<bool>()
            .map(Some)
            .map_err(|_| PyValueError::new_err(format!("{name} must be a bool, got {v}")))
    }

    fn string(&mut self, name: &str) -> PyResult<Option<String>> {
        let Some(v) = self.take(name) else {
            return Ok(None);
        };
        v.extract::<String>()
            .map(Some)
            .map_err(|_| PyValueError::new_err(format!("{name} must be a str, got {v}")))
    }

    /// `str` (sent as UTF-8) or `bytes` (sent as is, even if not UTF-8).
    fn bytes(&mut self, name: &str) -> PyResult<Option<Vec<u8>>> {
        let Some(v) = self.take(name) else {
            return Ok(None);
        };
        if let Ok(s) = v.cast::<PyString>() {
            return Ok(Some(s.to_str()?.as_bytes().to_vec()));
        }
        if let Ok(b) = v.cast::<PyBytes>() {
            return Ok(Some(b.as_bytes().to_vec()));
        }
        Err(PyValueError::new_err(format!(
            "{name} must be str or bytes, got {v}"
        )))
    }

    fn required_bytes(&mut self, name: &str) -> PyResult<Vec<u8>> {
        self.bytes(name)?
            .ok_or_else(|| PyValueError::new_err(format!("{name} is required")))
    }
}

fn record_dict<'py>(py: Python<'py>, r: &ConnectionRecord) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("index", r.index)?;
    d.set_item("client_id", &r.client_id)?;
    d.set_item("opened_at", r.opened_at)?;
    d.set_item("closed_at", r.closed_at)?;
    let text: Vec<_> = r.frames.iter().filter(|f| !f.binary).collect();
    let frames = text.iter().map(|f| String::from_utf8_lossy(&f.data));
    d.set_item("frames", PyList::new(py, frames)?)?;
    d.set_item("frame_times", PyList::new(py, text.iter().map(|f| f.at))?)?;
    let binary = r
        .frames
        .iter()
        .filter(|f| f.binary)
        .map(|f| PyBytes::new(py, &f.data));
    d.set_item("binary_frames", PyList::new(py, binary)?)?;
    d.set_item("pongs", r.pongs)?;
    d.set_item("pings", r.pings)?;
    d.set_item("close_code", r.close_code)?;
    d.set_item("closed_by", r.closed_by.map(ClosedBy::as_str))?;
    d.set_item("frames_sent", r.frames_sent)?;
    Ok(d)
}
