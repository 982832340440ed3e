//! The hand-off from the socket task to whoever consumes its events (the asyncio loop thread, or a
//! plain Rust thread). The producer never blocks and never needs the consumer's lock for long:
//! events go into a queue bounded in events and in bytes (new events are dropped and counted when
//! they do not fit, so a slow consumer can never stall the socket nor grow memory without bound),
//! and the consumer is woken at most once per burst: only when it announced that it is about to
//! sleep.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::protocol::ServerMessage;
use crate::transport::ConnectError;

// Messages dominate; boxing them would cost an allocation per message for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Message(ServerMessage),
    /// A reconnect attempt (1-based) is about to be made, after `delay`.
    Reconnecting {
        reason: String,
        attempt: u64,
        delay: Duration,
    },
    Reconnected {
        attempts: u64,
        downtime: Duration,
    },
    /// Moved to a fresh connection without an outage (make-before-break).
    Rotated {
        reason: String,
        overlap: Duration,
    },
    Disconnected {
        reason: String,
    },
    /// An order whose outcome this socket cannot tell (written, then its connection ended before
    /// the ack) or that it did not send (the socket stopped, or `order_max_age` passed).
    OrderUnacked {
        id: Option<u64>,
        method: &'static str,
        reason: String,
    },
    /// A local order book lost or regained its sync (`crate::book`).
    Book(crate::book::BookEvent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
}

/// How the producer wakes a sleeping consumer (an eventfd for asyncio, an unpark for a thread).
pub trait Notify: Send + Sync {
    fn notify(&self);
}

/// Where the initial connect stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectState {
    Pending,
    Connected,
    Failed(ConnectError),
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub messages_received: u64,
    pub events_dropped: u64,
    pub reconnects: u64,
    pub queued: u64,
    pub keepalives_sent: u64,
    pub rotations: u64,
}

/// An event and the wire size it counts against the byte budget (0 for lifecycle events).
type Sized = (Event, usize);

struct State {
    events: VecDeque<Sized>,
    logs: Vec<(LogLevel, String)>,
    connect: ConnectState,
    ended: bool,
}

/// Logs waiting for the consumer are bounded too: a consumer that never drains cannot grow us.
const MAX_PENDING_LOGS: usize = 256;

pub struct EventQueue {
    state: Mutex<State>,
    /// The consumer's side: refilled from `state.events` by swapping whole deques, so that the
    /// consumer takes the shared lock once per burst, not once per event.
    taken: Mutex<VecDeque<Sized>>,
    /// Events in either deque; the capacity bounds their sum.
    in_flight: AtomicUsize,
    capacity: usize,
    /// Wire bytes of the events in either deque; `max_bytes` bounds their sum.
    in_flight_bytes: AtomicUsize,
    max_bytes: usize,
    /// Set by the consumer right before it sleeps; the producer wakes it only then.
    waiting: AtomicBool,
    messages_received: AtomicU64,
    events_dropped: AtomicU64,
    reconnects: AtomicU64,
    keepalives_sent: AtomicU64,
    rotations: AtomicU64,
    notifier: Box<dyn Notify>,
}

impl EventQueue {
    pub fn new(capacity: usize, notifier: Box<dyn Notify>) -> Self {
        EventQueue {
            state: Mutex::new(State {
                events: VecDeque::with_capacity(capacity.min(1024)),
                logs: Vec::new(),
                connect: ConnectState::Pending,
                ended: false,
            }),
            taken: Mutex::new(VecDeque::new()),
            in_flight: AtomicUsize::new(0),
            capacity: capacity.max(1),
            in_flight_bytes: AtomicUsize::new(0),
            max_bytes: usize::MAX,
            waiting: AtomicBool::new(false),
            messages_received: AtomicU64::new(0),
            events_dropped: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            keepalives_sent: AtomicU64::new(0),
            rotations: AtomicU64::new(0),
            notifier,
        }
    }

    /// Bounds the queued events' wire bytes too (`queue_max_bytes`); unbounded by default.
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes.max(1);
        self
    }

    // ---- producer side (the socket task) ----

    /// Queues a burst of parsed messages (each with its wire size) under one lock; returns how
    /// many were dropped. A message that does not fit is dropped, later smaller ones may still
    /// fit; an empty queue always takes one, so a frame above the byte budget is not starved.
    pub fn push_messages(&self, batch: &mut Vec<(ServerMessage, usize)>) -> u64 {
        let n = batch.len() as u64;
        if n == 0 {
            return 0;
        }
        self.messages_received.fetch_add(n, Ordering::Relaxed);
        let dropped = {
            let mut st = self.state.lock();
            let mut count = self.in_flight.load(Ordering::Acquire);
            let mut bytes = self.in_flight_bytes.load(Ordering::Acquire);
            let (mut kept, mut kept_bytes) = (0, 0);
            for (message, size) in batch.drain(..) {
                let fits = count == 0 || bytes.saturating_add(size) <= self.max_bytes;
                if count < self.capacity && fits {
                    st.events.push_back((Event::Message(message), size));
                    count += 1;
                    bytes = bytes.saturating_add(size);
                    kept += 1;
                    kept_bytes += size;
                }
            }
            self.in_flight_bytes.fetch_add(kept_bytes, Ordering::SeqCst);
            self.in_flight.fetch_add(kept, Ordering::SeqCst);
            n - kept as u64
        };
        if dropped > 0 {
            self.events_dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        self.wake_if_waiting();
        dropped
    }

    /// Queues a lifecycle event; like the SDK, it is dropped when the queue is full.
    pub fn push_event(&self, event: Event) -> bool {
        let queued = {
            let mut st = self.state.lock();
            if self.in_flight.load(Ordering::Acquire) < self.capacity {
                st.events.push_back((event, 0));
                self.in_flight.fetch_add(1, Ordering::SeqCst);
                true
            } else {
                false
            }
        };
        if queued {
            self.wake_if_waiting();
        } else {
            self.events_dropped.fetch_add(1, Ordering::Relaxed);
        }
        queued
    }

    /// An event that must never be dropped (what became of an order), whatever the queue holds.
    /// Bounded all the same: one per order command.
    pub fn push_unconditional(&self, event: Event) {
        {
            let mut st = self.state.lock();
            st.events.push_back((event, 0));
            self.in_flight.fetch_add(1, Ordering::SeqCst);
        }
        self.wake_if_waiting();
    }

    /// The final event: never dropped, whatever the queue holds. The end becomes visible in
    /// the same critical section, so a consumer that has seen this event can never queue a
    /// command that would be silently lost.
    pub fn push_final(&self, event: Event) {
        {
            let mut st = self.state.lock();
            st.events.push_back((event, 0));
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            st.ended = true;
        }
        self.notifier.notify();
    }

    pub fn count_reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_rotation(&self) {
        self.rotations.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_keepalive(&self) {
        self.keepalives_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub fn log(&self, level: LogLevel, message: String) {
        {
            let mut st = self.state.lock();
            if st.logs.len() >= MAX_PENDING_LOGS {
                st.logs.remove(0);
            }
            st.logs.push((level, message));
        }
        self.notifier.notify();
    }

    pub fn set_connect_state(&self, state: ConnectState) {
        self.state.lock().connect = state;
        self.notifier.notify();
    }

    /// The task has ended: consumers see `None` once the queue is drained.
    pub fn finish(&self) {
        self.state.lock().ended = true;
        self.notifier.notify();
    }

    fn wake_if_waiting(&self) {
        if self.waiting.swap(false, Ordering::SeqCst) {
            self.notifier.notify();
        }
    }

    // ---- consumer side ----

    /// Refills the consumer's deque when it is empty: one shared lock per burst.
    fn refill(&self, taken: &mut VecDeque<Sized>) {
        if taken.is_empty() {
            std::mem::swap(taken, &mut self.state.lock().events);
        }
    }

    pub fn pop(&self) -> Option<Event> {
        let mut taken = self.taken.lock();
        self.refill(&mut taken);
        let (event, size) = taken.pop_front()?;
        self.in_flight_bytes.fetch_sub(size, Ordering::AcqRel);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        Some(event)
    }

    /// Moves up to `max` events into `out`.
    pub fn pop_batch(&self, max: usize, out: &mut Vec<Event>) {
        let mut taken = self.taken.lock();
        while out.len() < max {
            self.refill(&mut taken);
            if taken.is_empty() {
                break;
            }
            let n = taken.len().min(max - out.len());
            let mut bytes = 0;
            out.extend(taken.drain(..n).map(|(event, size)| {
                bytes += size;
                event
            }));
            self.in_flight_bytes.fetch_sub(bytes, Ordering::AcqRel);
            self.in_flight.fetch_sub(n, Ordering::AcqRel);
        }
    }

    /// Announces that the consumer is about to sleep. Returns false when there is something to
    /// take already (an event, or the end), in which case the consumer must not sleep.
    pub fn prepare_wait(&self) -> bool {
        self.waiting.store(true, Ordering::SeqCst);
        if self.in_flight.load(Ordering::SeqCst) > 0 || self.is_ended() {
            self.waiting.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    pub fn take_logs(&self) -> Vec<(LogLevel, String)> {
        let mut st = self.state.lock();
        if st.logs.is_empty() {
            Vec::new()
        } else {
            std::mem::take(&mut st.logs)
        }
    }

    pub fn connect_state(&self) -> ConnectState {
        self.state.lock().connect.clone()
    }

    pub fn is_ended(&self) -> bool {
        self.state.lock().ended
    }

    /// Ended and nothing left to hand out.
    pub fn is_exhausted(&self) -> bool {
        self.is_ended() && self.in_flight.load(Ordering::SeqCst) == 0
    }

    pub fn stats(&self) -> Stats {
        Stats {
            messages_received: self.messages_received.load(Ordering::Relaxed),
            events_dropped: self.events_dropped.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            queued: self.in_flight.load(Ordering::Relaxed) as u64,
            keepalives_sent: self.keepalives_sent.load(Ordering::Relaxed),
            rotations: self.rotations.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[derive(Default)]
    struct Count(Arc<AtomicUsize>);
    impl Notify for Count {
        fn notify(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn pong(id: u64) -> ServerMessage {
        crate::protocol::parse_str(&format!(r#"{{"e":"pong","id":{id},"E":1}}"#))
    }

    #[test]
    fn drops_new_events_when_full_and_counts_them() {
        let q = EventQueue::new(3, Box::new(Count::default()));
        let mut batch: Vec<_> = (0..5).map(|i| (pong(i), 10)).collect();
        assert_eq!(q.push_messages(&mut batch), 2);
        assert!(!q.push_event(Event::Reconnecting {
            reason: "x".into(),
            attempt: 1,
            delay: Duration::ZERO,
        }));
        q.push_final(Event::Disconnected {
            reason: "bye".into(),
        });
        let s = q.stats();
        assert_eq!((s.messages_received, s.events_dropped, s.queued), (5, 3, 4));
        let mut out = vec![];
        q.pop_batch(10, &mut out);
        assert_eq!(
            out[0],
            Event::Message(pong(0)),
            "the oldest events are kept"
        );
        assert_eq!(
            out[3],
            Event::Disconnected {
                reason: "bye".into()
            }
        );
    }

    #[test]
    fn drops_by_bytes_and_always_takes_one_into_an_empty_queue() {
        let q = EventQueue::new(100, Box::new(Count::default())).with_max_bytes(100);
        let sizes = [60, 50, 39, 1, 500];
        let mut batch: Vec<_> = sizes.iter().map(|&s| (pong(s as u64), s)).collect();
        assert_eq!(
            q.push_messages(&mut batch),
            2,
            "50 and 500 do not fit after 60"
        );
        assert_eq!(q.stats().queued, 3);
        let mut out = vec![];
        q.pop_batch(10, &mut out);
        assert_eq!(out, [60, 39, 1].map(|s| Event::Message(pong(s))));
        assert_eq!(
            q.push_messages(&mut vec![(pong(7), 500)]),
            0,
            "empty: taken whole"
        );
        assert_eq!(
            q.push_messages(&mut vec![(pong(8), 1)]),
            1,
            "over budget now"
        );
        assert_eq!(q.pop(), Some(Event::Message(pong(7))));
        assert_eq!(
            q.push_messages(&mut vec![(pong(9), 100)]),
            0,
            "the bytes were released"
        );
    }

    #[test]
    fn wakes_once_per_burst_and_only_when_waiting() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let q = EventQueue::new(100, Box::new(Count(wakes.clone())));
        q.push_messages(&mut vec![(pong(1), 10)]);
        assert_eq!(wakes.load(Ordering::SeqCst), 0, "nobody waits: no wake-up");
        assert!(!q.prepare_wait(), "an event is queued: do not sleep");
        q.pop();
        assert!(q.prepare_wait());
        q.push_messages(&mut vec![(pong(2), 10)]);
        q.push_messages(&mut vec![(pong(3), 10)]);
        assert_eq!(wakes.load(Ordering::SeqCst), 1, "one wake for the burst");
    }
}
