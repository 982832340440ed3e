//! The direct path: commands written on the caller's thread when nothing is queued ahead of
//! them (see `crate::wire`), and the bookkeeping that keeps them in order with the task's own.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::wire::{Direct, SentOrder, Wire};

pub(crate) struct DirectPath {
    /// The task's current connection while it is open to direct writes.
    current: Mutex<Option<Arc<Wire>>>,
    /// Commands queued to the task and not yet written: a direct write waits behind them.
    outstanding: AtomicUsize,
    writes: AtomicU64,
    /// When the last direct write went out, in ns since `epoch` (the keepalive clock).
    last_write_ns: AtomicU64,
    epoch: Instant,
}

impl Default for DirectPath {
    fn default() -> Self {
        DirectPath {
            current: Mutex::default(),
            outstanding: AtomicUsize::new(0),
            writes: AtomicU64::new(0),
            last_write_ns: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

impl DirectPath {
    /// Writes `frame` now when it can; `NotNow` and `Failed` leave it to the queue.
    pub(crate) fn write(
        &self,
        frame: &str,
        method: &'static str,
        order: Option<SentOrder>,
    ) -> Direct {
        let Some(wire) = self.current.lock().clone() else {
            return Direct::NotNow;
        };
        let done = wire.write(frame, method, order, &self.outstanding);
        if done == Direct::Sent {
            self.writes.fetch_add(1, Ordering::Relaxed);
            let ns = self.epoch.elapsed().as_nanos() as u64;
            self.last_write_ns.fetch_max(ns, Ordering::Relaxed);
        }
        done
    }

    /// When the last direct write went out; None before the first.
    pub(crate) fn last_write(&self) -> Option<Instant> {
        match self.last_write_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(self.epoch + std::time::Duration::from_nanos(ns)),
        }
    }

    /// Frames written on callers' threads so far.
    pub(crate) fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// A command is about to be queued: direct writes wait until the task has written it.
    pub(crate) fn queued(&self) {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
    }

    /// A queued command was written, failed, or will never be.
    pub(crate) fn done(&self) {
        self.outstanding.fetch_sub(1, Ordering::AcqRel);
    }

    /// Opens `wire` to direct writes.
    pub(crate) fn publish(&self, wire: Arc<Wire>) {
        wire.set_open(true);
        *self.current.lock() = Some(wire);
    }

    /// Closes the current connection to direct writes; returns the orders written on it that
    /// the task has not taken yet. No direct write can follow until the next `publish`.
    pub(crate) fn withdraw(&self) -> Vec<SentOrder> {
        match self.current.lock().take() {
            Some(wire) => wire.set_open(false),
            None => Vec::new(),
        }
    }
}
