//! The rules the pure backend shares with the core, exported so that tests hold
//! `bullet_ws._policy` to them: the constants, and the backoff's sequence (tests/test_policy.py).

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::backoff::Backoff;
use crate::config::{Config, COMMAND_CAPACITY, MIN_BACKOFF};
use crate::latency::{Window, LATENCY_WINDOW};
use crate::managed::{
    CLOSE_GRACE, DROP_WARNING_EVERY, KEEPALIVE_ID_BASE, MAX_OUTSTANDING_KEEPALIVES, MIN_RETRY,
    ROTATION_CATCH_UP, ROTATION_DRAIN, ROTATION_MAX_HELD, STOP_GRACE,
};

fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|e| PyValueError::new_err(format!("{name}: {value} is not a duration ({e})")))
}

/// The backoff's state through `steps`, for comparison with `bullet_ws._policy.Backoff`: a step
/// is `None` (an attempt failed) or `(uptime, reconnected)` (a connection ended). Returns, before
/// the first step and after each, the base delay and the largest jitter of the next sleep.
#[pyfunction]
fn _backoff_trace(
    initial: f64,
    maximum: f64,
    reset_after: f64,
    steps: Vec<Option<(f64, bool)>>,
) -> PyResult<Vec<(f64, f64)>> {
    let mut backoff = Backoff::new(&Config {
        initial_backoff: seconds("initial", initial)?,
        max_backoff: seconds("maximum", maximum)?,
        backoff_reset_after: seconds("reset_after", reset_after)?,
        ..Config::default()
    });
    let mut trace = vec![];
    let mut record =
        |b: &Backoff| trace.push((b.current().as_secs_f64(), b.max_jitter_ms() as f64 / 1000.0));
    record(&backoff);
    for step in steps {
        match step {
            None => backoff.failed(),
            Some((uptime, reconnected)) => {
                backoff.connection_lost(seconds("uptime", uptime)?, reconnected)
            }
        }
        record(&backoff);
    }
    Ok(trace)
}

/// The native latency window fed with `(seconds, microseconds)` samples, summarised at `at`
/// seconds: for tests that hold both backends to the same quantisation.
#[pyfunction]
fn _latency_window(py: Python<'_>, samples: Vec<(f64, u64)>, at: f64) -> PyResult<Py<PyAny>> {
    let ns = |secs: f64| (secs * 1e9) as u64;
    let mut window = Window::default();
    for (t, us) in samples {
        window.record(ns(t), us);
    }
    super::convert::latency_to_python(py, window.summary(ns(at)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("LATENCY_WINDOW", LATENCY_WINDOW.as_secs_f64())?;
    m.add_function(wrap_pyfunction!(_latency_window, m)?)?;
    m.add("STOP_GRACE", STOP_GRACE.as_secs_f64())?;
    m.add("KEEPALIVE_ID_BASE", KEEPALIVE_ID_BASE)?;
    m.add("COMMAND_CAPACITY", COMMAND_CAPACITY)?;
    m.add("MIN_BACKOFF", MIN_BACKOFF.as_secs_f64())?;
    m.add("CLOSE_GRACE", CLOSE_GRACE.as_secs_f64())?;
    m.add("DROP_WARNING_INTERVAL", DROP_WARNING_EVERY.as_secs_f64())?;
    m.add("MAX_OUTSTANDING_KEEPALIVES", MAX_OUTSTANDING_KEEPALIVES)?;
    m.add("ROTATION_CATCH_UP", ROTATION_CATCH_UP.as_secs_f64())?;
    m.add("ROTATION_DRAIN", ROTATION_DRAIN.as_secs_f64())?;
    m.add("ROTATION_MIN_RETRY", MIN_RETRY.as_secs_f64())?;
    m.add("ROTATION_MAX_HELD", ROTATION_MAX_HELD)?;
    m.add_function(wrap_pyfunction!(_backoff_trace, m)?)?;
    Ok(())
}
