//! Clocks: wall-clock µs for the wire (`E`, `T`), monotonic seconds for the records.

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch, as the exchange stamps `E`.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Seconds on CLOCK_MONOTONIC: the clock of Python's `time.monotonic()`, so that records can be
/// compared with times taken in the test.
pub fn monotonic() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}
