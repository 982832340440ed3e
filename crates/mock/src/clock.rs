//! Clocks: wall-clock µs for the wire (`E`, `T`), monotonic seconds for the records.

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch, as the exchange stamps `E`.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Seconds on the clock of Python's `time.monotonic()`, so that records can be compared with
/// times taken in the test: CLOCK_MONOTONIC on Linux, mach_absolute_time (CLOCK_UPTIME_RAW) on
/// macOS.
#[cfg(unix)]
pub fn monotonic() -> f64 {
    #[cfg(target_vendor = "apple")]
    const CLOCK: libc::clockid_t = libc::CLOCK_UPTIME_RAW;
    #[cfg(not(target_vendor = "apple"))]
    const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock exists on every supported Unix.
    unsafe {
        libc::clock_gettime(CLOCK, &mut ts);
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Windows: QueryPerformanceCounter, the clock of `time.monotonic()` since CPython 3.13 (older
/// versions read GetTickCount64, which has the same origin but 16 ms steps).
#[cfg(windows)]
pub fn monotonic() -> f64 {
    #[link(name = "kernel32")]
    extern "system" {
        fn QueryPerformanceCounter(count: *mut i64) -> i32;
        fn QueryPerformanceFrequency(frequency: *mut i64) -> i32;
    }
    let (mut count, mut frequency) = (0i64, 1i64);
    // SAFETY: both take a pointer to one writable i64; they cannot fail since Windows XP.
    unsafe {
        QueryPerformanceCounter(&mut count);
        QueryPerformanceFrequency(&mut frequency);
    }
    count as f64 / frequency.max(1) as f64
}
