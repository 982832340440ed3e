//! The PyO3 layer: the only place that knows about Python. The core hands it parsed events;
//! here they become Python objects, on the event loop's thread.
//!
//! ```text
//! socket       ManagedWebSocket: the handle's commands, config conversion, stats
//! wakefd       the eventfd (pipe, condvar) the socket task rings without the GIL
//! doorbell     the loop's side: the add_reader callback (or relay thread), waiters, logs
//! awaitable    _Wait: recv/recv_batch/__anext__/close, complete without a Future when ready
//! waiter       _Waiter: the Future a sleeping _Wait yields, whose Task runs when it is woken
//! convert      core events and errors -> bullet_ws.events / bullet_ws.errors
//! messages     Message/Record bases and field conversion; message_classes is generated
//! book         OrderBook views and the events of the books
//! policy       the constants and backoff the pure backend shares, exported for its tests
//! mock         (feature `mock`) _MockServer, the fake exchange
//! ```

use pyo3::prelude::*;

mod awaitable;
mod book;
mod convert;
mod doorbell;
#[macro_use]
mod messages;
mod message_classes;
#[cfg(feature = "mock")]
mod mock;
mod policy;
mod socket;
mod waiter;
mod wakefd;

#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Cargo.toml is the one source of the version (pyproject.toml takes it from there too).
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // Benchmarks refuse a debug build; a wheel says which one it is.
    m.add(
        "build_profile",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    )?;
    messages::register(m)?;
    socket::register(m)?;
    policy::register(m)?;
    book::register(m)?;
    #[cfg(feature = "mock")]
    mock::register(m)?;
    Ok(())
}

// Message strings and depth levels are allocated on the socket thread and freed on the loop
// thread; mimalloc makes those cross-thread frees cheap where glibc's arenas contend.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
