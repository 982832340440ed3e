//! The process-wide tokio runtime, and what becomes of it across `fork()`.
//!
//! One runtime (one I/O thread) serves every socket of the process. A forked child inherits its
//! memory but none of its threads: every task in it is frozen, and any lock its threads held at
//! the fork stays held. So the child forgets it (without dropping it: that would wait for
//! threads that do not exist) and builds a fresh one on first use, and the sockets it inherited
//! must never touch their task's side again: the fork generation tells them apart.

use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use tokio::runtime::Runtime;

/// Never freed: a runtime lives as long as its process (or, after a fork, is abandoned).
static RUNTIME: AtomicPtr<Runtime> = AtomicPtr::new(ptr::null_mut());
/// Bumped in every forked child: anything made under an older generation belongs to the parent.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
#[cfg(unix)]
static FORK_HANDLER: std::sync::Once = std::sync::Once::new();

/// The process's runtime, started on first use (again in a forked child).
pub fn runtime() -> &'static Runtime {
    let current = RUNTIME.load(Ordering::Acquire);
    if !current.is_null() {
        // SAFETY: a stored runtime is never freed.
        return unsafe { &*current };
    }
    install_fork_handler();
    let fresh = Box::into_raw(Box::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bullet-ws-io")
            .enable_all()
            .build()
            .expect("cannot start the bullet-ws tokio runtime"),
    ));
    match RUNTIME.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: stored, hence never freed.
        Ok(_) => unsafe { &*fresh },
        Err(winner) => {
            // Another thread started one first; ours never ran a task.
            // SAFETY: `fresh` came from Box::into_raw above and was not shared.
            drop(unsafe { Box::from_raw(fresh) });
            // SAFETY: stored, hence never freed.
            unsafe { &*winner }
        }
    }
}

/// Changes in a forked child: compare with the value taken when an object was made.
pub fn fork_generation() -> u64 {
    FORK_GENERATION.load(Ordering::Acquire)
}

/// Runs in the child right after `fork()`, before anything else: only async-signal-safe work.
#[cfg(unix)]
extern "C" fn after_fork_in_child() {
    RUNTIME.store(ptr::null_mut(), Ordering::Release);
    FORK_GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// pthread_atfork rather than `os.register_at_fork`: it also covers forks made outside Python's
/// `os.fork()` (a C extension's), and runs before any Python code in the child.
#[cfg(unix)]
fn install_fork_handler() {
    FORK_HANDLER.call_once(|| {
        // SAFETY: registers a handler that only touches atomics; the library is never unloaded.
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
        }
    });
}

/// No fork() off Unix.
#[cfg(not(unix))]
fn install_fork_handler() {}
