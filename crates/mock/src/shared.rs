//! The state the server's control side (any thread) and its connections (the runtime thread)
//! share: the connection records, the queued faults, and the condition variable the waits use.
//! Its own module so that `server` (which owns it) and `connection` (which updates it) both
//! depend on it instead of on each other.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::mpsc;

use crate::clock::monotonic;
use crate::config::MockConfig;
use crate::fault::Fault;
use crate::record::{ClosedBy, ConnectionRecord};
use crate::session::OrderReject;

/// State shared by the control side (any thread) and the runtime thread.
pub(crate) struct Shared {
    pub config: MockConfig,
    pub(crate) state: Mutex<State>,
    pub(crate) changed: Condvar,
    pub(crate) refusing: AtomicBool,
    pub(crate) order_ids: AtomicU64,
    /// The clock of `shared_sequence`.
    pub started: tokio::time::Instant,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) tcp_accepts: u64,
    pub(crate) handshakes: u64,
    pub(crate) records: Vec<ConnectionRecord>,
    /// Command channels of the open connections, by record index.
    pub(crate) live: Vec<Option<mpsc::UnboundedSender<Fault>>>,
    /// Scope-next faults, applied one per accepted TCP connection, in the order queued.
    pub(crate) next: VecDeque<(Fault, u32)>,
    /// Scope-next `reject_orders`: kept apart so it can combine with a queued fault.
    pub(crate) reject_next: Option<(u32, OrderReject)>,
}

/// What to do with a freshly accepted TCP connection.
pub(crate) enum Admission {
    Refuse,
    Serve(Option<Fault>),
}

impl Shared {
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = f(&mut self.state.lock());
        self.changed.notify_all();
        r
    }

    pub fn next_order_id(&self) -> u64 {
        self.order_ids.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn admit(&self) -> Admission {
        self.update(|st| {
            st.tcp_accepts += 1;
            if self.refusing.load(Ordering::SeqCst) {
                return Admission::Refuse;
            }
            let Some((fault, left)) = st.next.front_mut() else {
                return Admission::Serve(None);
            };
            let fault = fault.clone();
            *left -= 1;
            if *left == 0 {
                st.next.pop_front();
            }
            match fault {
                Fault::Refuse => Admission::Refuse,
                f => Admission::Serve(Some(f)),
            }
        })
    }

    /// Records a completed upgrade; returns its index and whether it must reject orders.
    pub fn register(&self, commands: mpsc::UnboundedSender<Fault>) -> (usize, Option<OrderReject>) {
        self.update(|st| {
            st.handshakes += 1;
            let index = st.records.len();
            st.records.push(ConnectionRecord::new(index, monotonic()));
            st.live.push(Some(commands));
            let reject = match st.reject_next.as_mut() {
                Some((left, reject)) => {
                    let reject = reject.clone();
                    *left -= 1;
                    if *left == 0 {
                        st.reject_next = None;
                    }
                    Some(reject)
                }
                None => None,
            };
            (index, reject)
        })
    }

    pub fn record(&self, index: usize, f: impl FnOnce(&mut ConnectionRecord)) {
        self.update(|st| f(&mut st.records[index]));
    }

    pub fn closed(&self, index: usize, by: ClosedBy) {
        self.update(|st| {
            st.live[index] = None;
            let r = &mut st.records[index];
            if r.closed_at.is_none() {
                r.closed_at = Some(monotonic());
                r.closed_by = Some(by);
            }
        });
    }

    pub(crate) fn wait_for(&self, timeout: Duration, cond: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock();
        while !cond(&st) {
            if self.changed.wait_until(&mut st, deadline).timed_out() {
                return cond(&st);
            }
        }
        true
    }
}
