//! The PyO3 layer: the only place that knows about Python. The core hands it parsed events;
//! here they become Python objects, on the event loop's thread.

use pyo3::prelude::*;

mod book;
#[macro_use]
mod messages;
mod message_classes;
#[cfg(feature = "mock")]
mod mock;
mod policy;
mod socket;
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
