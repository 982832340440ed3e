//! The stop signal, shared by the handle (any thread) and the task.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// A stop signal that bypasses the command queue, so it works mid-reconnect.
#[derive(Default)]
pub struct Shutdown {
    flag: AtomicBool,
    notify: Notify,
}

impl Shutdown {
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }
}
