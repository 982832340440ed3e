//! The hand-off from the socket task to whoever consumes its events (the asyncio loop thread, or a
//! plain Rust thread). The producer never blocks and never needs the consumer's lock for long:
//! events go into a queue bounded in events and in bytes (new events are dropped and counted when
//! they do not fit, so a slow consumer can never stall the socket nor grow memory without bound),
//! and the consumer is woken at most once per burst: only when it announced that it is about to
//! sleep.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::chunked_deque::ChunkedDeque;
use crate::latency::{event_time, LatencySummary, Window};
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
    /// Watches the current connection's socket too (None: none), so that the consumer can wake
    /// when bytes arrive, in parallel with the socket task, instead of after it
    /// (`Config::inbound_spin`). Optional.
    fn watch_socket(&self, _fd: Option<i32>) {}
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
    /// Messages of conflated topics replaced by a newer one before delivery.
    pub events_conflated: u64,
    /// Receive time (wall clock) minus the message's `E`, over `LATENCY_WINDOW`.
    pub exchange_delay: Option<LatencySummary>,
    /// From the frame's read to its hand-over to the consumer, over `LATENCY_WINDOW`.
    pub delivery_delay: Option<LatencySummary>,
}

/// An event, the wire size it counts against the byte budget (0 for lifecycle events), and when
/// its burst was read (ns since the queue's epoch, one clock read per burst; 0 for lifecycle
/// events).
type Entry = (Event, usize, u64);

struct State {
    events: ChunkedDeque<Entry>,
    /// The sequence number of `events[0]`: entries are numbered as pushed, so that a conflation
    /// slot stays valid while entries are appended and is known stale once the consumer took it.
    base: u64,
    conflation: Conflation,
    exchange_delay: Window,
    logs: Vec<(LogLevel, String)>,
    connect: ConnectState,
    ended: bool,
}

/// The conflated topics and, per kind of message and symbol, the sequence number of its newest
/// message still in the producer's deque.
#[derive(Default)]
struct Conflation {
    topics: HashSet<String>,
    /// Indexed by `topic_key`'s kind; the symbol's entry exists while one of its topics of that
    /// kind is conflated, so the hot path never allocates.
    slots: [HashMap<String, Option<u64>>; 3],
}

/// Which conflatable kind a topic is (bookTicker, markPrice, depth), and its symbol.
fn topic_key(topic: &str) -> Option<(usize, &str)> {
    let (symbol, stream) = topic.split_once('@')?;
    let kind = match stream {
        "bookTicker" => 0,
        "markPrice" => 1,
        "depth5" | "depth10" | "depth20" => 2,
        _ => return None,
    };
    (!symbol.is_empty() && !symbol.starts_with('!')).then_some((kind, symbol))
}

impl Conflation {
    fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

    fn set(&mut self, topics: &[String], on: bool) {
        let mut changed = false;
        for topic in topics {
            if topic_key(topic).is_some() {
                changed |= if on {
                    self.topics.insert(topic.clone())
                } else {
                    self.topics.remove(topic)
                };
            }
        }
        if !changed {
            return;
        }
        let mut wanted: [HashSet<&str>; 3] = Default::default();
        for (kind, symbol) in self.topics.iter().filter_map(|t| topic_key(t)) {
            wanted[kind].insert(symbol);
        }
        for (slots, wanted) in self.slots.iter_mut().zip(&wanted) {
            slots.retain(|symbol, _| wanted.contains(symbol.as_str()));
            for symbol in wanted {
                if !slots.contains_key(*symbol) {
                    slots.insert((*symbol).to_owned(), None);
                }
            }
        }
    }

    /// The slot of a message of a conflated topic; None for every other message.
    fn slot(&mut self, message: &ServerMessage) -> Option<&mut Option<u64>> {
        let (kind, symbol) = match message {
            ServerMessage::BookTicker(m) => (0, &m.symbol),
            ServerMessage::MarkPrice(m) => (1, &m.symbol),
            ServerMessage::DepthUpdate(m) => (2, &m.symbol),
            _ => return None,
        };
        self.slots[kind].get_mut(symbol.as_str())
    }
}

/// Logs waiting for the consumer are bounded too: a consumer that never drains cannot grow us.
const MAX_PENDING_LOGS: usize = 256;

pub struct EventQueue {
    state: Mutex<State>,
    /// The consumer's side: refilled from `state.events` by swapping whole deques, so that the
    /// consumer takes the shared lock once per burst, not once per event.
    taken: Mutex<Consumer>,
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
    events_conflated: AtomicU64,
    /// The zero of the entries' `read_ns` and of the latency windows' clock.
    epoch: Instant,
    notifier: Box<dyn Notify>,
}

struct Consumer {
    events: ChunkedDeque<Entry>,
    delivery_delay: Window,
}

impl EventQueue {
    pub fn new(capacity: usize, notifier: Box<dyn Notify>) -> Self {
        EventQueue {
            state: Mutex::new(State {
                events: ChunkedDeque::default(),
                base: 0,
                conflation: Conflation::default(),
                exchange_delay: Window::default(),
                logs: Vec::new(),
                connect: ConnectState::Pending,
                ended: false,
            }),
            taken: Mutex::new(Consumer {
                events: ChunkedDeque::default(),
                delivery_delay: Window::default(),
            }),
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
            events_conflated: AtomicU64::new(0),
            epoch: Instant::now(),
            notifier,
        }
    }

    /// Bounds the queued events' wire bytes too (`queue_max_bytes`); unbounded by default.
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes.max(1);
        self
    }

    // ---- producer side (the socket task) ----

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Conflates `topics` (bookTicker, markPrice and depth topics; others are ignored) or stops
    /// conflating them. A local setting: it outlives reconnects, as the queue does.
    pub fn set_conflated(&self, topics: &[String], on: bool) {
        self.state.lock().conflation.set(topics, on);
    }

    /// Those of `topics` that are conflated now.
    pub fn conflated_among(&self, topics: &[String]) -> Vec<String> {
        let st = self.state.lock();
        topics
            .iter()
            .filter(|t| st.conflation.topics.contains(t.as_str()))
            .cloned()
            .collect()
    }

    /// Queues a burst of parsed messages (each with its wire size) under one lock; returns how
    /// many were dropped. A message that does not fit is dropped, later smaller ones may still
    /// fit; an empty queue always takes one, so a frame above the byte budget is not starved.
    ///
    /// A message of a conflated topic takes the place of its topic's older message when one is
    /// still in the producer's deque (counted in `events_conflated`): in place, so that the
    /// queue stays bounded and the replacement costs O(1) (removing from the middle would cost
    /// O(n), or tombstones that a flood would pile up). Its topic is then delivered at the
    /// older message's position, never after a newer message of the same topic. Messages the
    /// consumer already took (its own deque) are out of reach: the consumer takes whole bursts.
    ///
    /// The burst is stamped once, as read now: the wall clock for the exchange delay of each
    /// message with an `E`, the monotonic clock for its delivery delay.
    pub fn push_messages(&self, batch: &mut Vec<(ServerMessage, usize)>) -> u64 {
        self.push_burst(batch, Vec::new(), || {})
    }

    /// `push_messages`, with each event of `after` queued right after the message at its index
    /// (the book event a depth message caused); one that does not fit is dropped.
    ///
    /// The whole burst is queued and counted in `messages_received` in one critical section,
    /// which the consumer needs to take any of it: a consumer that took a message finds it
    /// counted, and a reader that waited for the count finds every counted message (and the
    /// book events it caused) queued, dropped or conflated. The consumer is woken once, after
    /// `queued` ran: the consumer may act at once on what that call changed.
    pub fn push_burst(
        &self,
        batch: &mut Vec<(ServerMessage, usize)>,
        after: Vec<(usize, Event)>,
        queued: impl FnOnce(),
    ) -> u64 {
        let n = batch.len() as u64;
        if n == 0 {
            queued();
            return 0;
        }
        let read_ns = self.now_ns();
        let wall_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut st = self.state.lock();
        // A pass by reference: moving each message once more would cost a copy of it.
        let exchange = st.exchange_delay.start_burst(read_ns);
        let mut total = 0usize;
        for (message, size) in batch.iter() {
            total = total.saturating_add(*size);
            // A clock behind the exchange's (skew) counts as no delay, not as a huge one.
            if let Some(sent) = event_time(message) {
                exchange.add(wall_us.saturating_sub(sent));
            }
        }
        let (mut dropped, mut conflated) = (0, 0);
        if after.is_empty() {
            (dropped, conflated) = self.queue_locked(&mut st, batch, total, read_ns);
        } else {
            let mut done = 0;
            for (i, event) in after {
                let mut rest = batch.split_off(i + 1 - done);
                done = i + 1;
                let part = batch.iter().map(|(_, size)| *size).sum();
                let (d, c) = self.queue_locked(&mut st, batch, part, read_ns);
                (dropped, conflated) = (dropped + d, conflated + c);
                if self.in_flight.load(Ordering::Acquire) < self.capacity {
                    st.events.push_back((event, 0, 0));
                    self.in_flight.fetch_add(1, Ordering::SeqCst);
                } else {
                    dropped += 1;
                }
                std::mem::swap(batch, &mut rest);
            }
            let part = batch.iter().map(|(_, size)| *size).sum();
            let (d, c) = self.queue_locked(&mut st, batch, part, read_ns);
            (dropped, conflated) = (dropped + d, conflated + c);
        }
        if conflated > 0 {
            self.events_conflated
                .fetch_add(conflated, Ordering::Relaxed);
        }
        if dropped > 0 {
            self.events_dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        // Last, and read first by `stats()`: what it counts is already queued or accounted for.
        self.messages_received.fetch_add(n, Ordering::Release);
        drop(st);
        queued();
        self.wake_if_waiting();
        dropped
    }

    /// Moves `batch` (whose wire bytes total `total`) into the producer's deque under the
    /// caller's lock; returns the messages dropped and conflated.
    fn queue_locked(
        &self,
        st: &mut State,
        batch: &mut Vec<(ServerMessage, usize)>,
        total: usize,
        read_ns: u64,
    ) -> (u64, u64) {
        let n = batch.len() as u64;
        let mut count = self.in_flight.load(Ordering::Acquire);
        let mut bytes = self.in_flight_bytes.load(Ordering::Acquire);
        let (mut kept, mut added_bytes, mut freed_bytes, mut conflated) = (0, 0, 0, 0u64);
        let all_fit =
            count + batch.len() <= self.capacity && bytes.saturating_add(total) <= self.max_bytes;
        if all_fit && st.conflation.is_empty() {
            // The usual case: the whole burst moves straight into the deque.
            (kept, added_bytes) = (batch.len(), total);
            st.events.extend(
                batch
                    .drain(..)
                    .map(|(m, size)| (Event::Message(m), size, read_ns)),
            );
        } else if st.conflation.is_empty() {
            for (message, size) in batch.drain(..) {
                let fits = count == 0 || bytes.saturating_add(size) <= self.max_bytes;
                if count < self.capacity && fits {
                    st.events
                        .push_back((Event::Message(message), size, read_ns));
                    count += 1;
                    bytes = bytes.saturating_add(size);
                    kept += 1;
                    added_bytes += size;
                }
            }
        }
        // The conflating path (the batch is empty here when the usual one ran).
        for (message, size) in batch.drain(..) {
            let slot = st.conflation.slot(&message);
            let queued = slot.as_deref().copied().flatten();
            if let Some(index) = queued.and_then(|seq| seq.checked_sub(st.base)) {
                let index = index as usize;
                let entry = st.events.get_mut(index).expect("a queued slot");
                let old_size = entry.1;
                // Its own slot is the one entry an over-budget message may take whole.
                let after = bytes - old_size + size;
                if count == 1 || after <= self.max_bytes {
                    freed_bytes += old_size;
                    added_bytes += size;
                    bytes = after;
                    *entry = (Event::Message(message), size, read_ns);
                    conflated += 1;
                }
                continue;
            }
            let fits = count == 0 || bytes.saturating_add(size) <= self.max_bytes;
            if count < self.capacity && fits {
                if let Some(slot) = slot {
                    *slot = Some(st.base + st.events.len() as u64);
                }
                st.events
                    .push_back((Event::Message(message), size, read_ns));
                count += 1;
                bytes = bytes.saturating_add(size);
                kept += 1;
                added_bytes += size;
            }
        }
        // The freed bytes were counted in, and only this lock's holder can take them out.
        self.in_flight_bytes
            .fetch_add(added_bytes, Ordering::SeqCst);
        self.in_flight_bytes
            .fetch_sub(freed_bytes, Ordering::SeqCst);
        self.in_flight.fetch_add(kept, Ordering::SeqCst);
        (n - kept as u64 - conflated, conflated)
    }

    /// Queues a lifecycle event; like the SDK, it is dropped when the queue is full.
    pub fn push_event(&self, event: Event) -> bool {
        let queued = {
            let mut st = self.state.lock();
            if self.in_flight.load(Ordering::Acquire) < self.capacity {
                st.events.push_back((event, 0, 0));
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
            st.events.push_back((event, 0, 0));
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
            st.events.push_back((event, 0, 0));
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

    /// The consumer is awake and about to produce on its own thread (`Config::loop_reads`):
    /// what it queues must not ring its own doorbell. It announces its next sleep as usual.
    pub fn awake(&self) {
        self.waiting.store(false, Ordering::SeqCst);
    }

    /// Refills the consumer's deque when it is empty: one shared lock per burst. The drained
    /// deque goes to the producer, with its spare chunks.
    fn refill(&self, consumer: &mut Consumer) {
        if consumer.events.is_empty() {
            let mut st = self.state.lock();
            std::mem::swap(&mut consumer.events, &mut st.events);
            // Every slot pointing at what was taken is stale now.
            st.base += consumer.events.len() as u64;
        }
    }

    pub fn pop(&self) -> Option<Event> {
        let mut guard = self.taken.lock();
        let consumer = &mut *guard;
        self.refill(consumer);
        let (event, size, read_ns) = consumer.events.pop_front()?;
        if let Event::Message(_) = event {
            let now_ns = self.now_ns();
            let delay = now_ns.saturating_sub(read_ns) / 1_000;
            consumer.delivery_delay.record(now_ns, delay);
        }
        self.in_flight_bytes.fetch_sub(size, Ordering::AcqRel);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        Some(event)
    }

    /// Moves up to `max` events into `out`; the clock is read once for all of them.
    pub fn pop_batch(&self, max: usize, out: &mut Vec<Event>) {
        let mut guard = self.taken.lock();
        let consumer = &mut *guard;
        let mut now_ns = None;
        while out.len() < max {
            self.refill(consumer);
            if consumer.events.is_empty() {
                break;
            }
            let now_ns = *now_ns.get_or_insert_with(|| self.now_ns());
            consumer.delivery_delay.start_burst(now_ns);
            let n = consumer.events.len().min(max - out.len());
            let mut bytes = 0;
            for _ in 0..n {
                let (event, size, read_ns) = consumer.events.pop_front().expect("n are queued");
                if let Event::Message(_) = event {
                    consumer
                        .delivery_delay
                        .add(now_ns.saturating_sub(read_ns) / 1_000);
                }
                bytes += size;
                out.push(event);
            }
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

    /// See `Notify::watch_socket`.
    pub fn watch_socket(&self, fd: Option<i32>) {
        self.notifier.watch_socket(fd);
    }

    /// Events waiting to be taken now (an atomic read: no lock).
    pub fn queued_now(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Whether an event (or the end) is waiting to be taken.
    pub fn has_events(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0 || self.is_ended()
    }

    pub fn stats(&self) -> Stats {
        let now_ns = self.now_ns();
        Stats {
            messages_received: self.messages_received.load(Ordering::Acquire),
            events_dropped: self.events_dropped.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            queued: self.in_flight.load(Ordering::Relaxed) as u64,
            keepalives_sent: self.keepalives_sent.load(Ordering::Relaxed),
            rotations: self.rotations.load(Ordering::Relaxed),
            events_conflated: self.events_conflated.load(Ordering::Relaxed),
            exchange_delay: self.state.lock().exchange_delay.summary(now_ns),
            delivery_delay: self.taken.lock().delivery_delay.summary(now_ns),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
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

    fn ticker(symbol: &str, u: u64) -> ServerMessage {
        crate::protocol::parse_str(&format!(
            r#"{{"e":"bookTicker","u":{u},"E":{u},"T":1,"s":"{symbol}","b":"1","B":"1","a":"2","A":"1","mt":"u"}}"#
        ))
    }

    fn mark(symbol: &str, e: u64) -> ServerMessage {
        crate::protocol::parse_str(&format!(
            r#"{{"e":"markPriceUpdate","E":{e},"s":"{symbol}","p":"1","i":"1","r":"0"}}"#
        ))
    }

    fn update_id(event: &Event) -> (String, u64) {
        match event {
            Event::Message(ServerMessage::BookTicker(m)) => (m.symbol.to_string(), m.update_id),
            Event::Message(ServerMessage::MarkPrice(m)) => (m.symbol.to_string(), m.event_time),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn conflated(q: &EventQueue, topics: &[&str]) {
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        q.set_conflated(&topics, true);
    }

    #[test]
    fn a_conflated_topic_keeps_its_newest_message_in_place() {
        let q = EventQueue::new(100, Box::new(Count::default()));
        conflated(&q, &["BTC@bookTicker", "ETH@markPrice"]);
        let mut batch = vec![
            (ticker("BTC", 1), 10),
            (mark("ETH", 1), 20),
            (pong(1), 5),
            (ticker("BTC", 2), 11),
            (ticker("SOL", 1), 7),
            (mark("ETH", 2), 21),
            (ticker("BTC", 3), 12),
        ];
        assert_eq!(q.push_messages(&mut batch), 0);
        let s = q.stats();
        assert_eq!(
            (s.messages_received, s.events_conflated, s.queued),
            (7, 3, 4)
        );
        assert_eq!(
            q.in_flight_bytes.load(Ordering::SeqCst),
            12 + 21 + 5 + 7,
            "the replaced messages' bytes are released exactly"
        );
        let mut out = vec![];
        q.pop_batch(10, &mut out);
        assert_eq!(
            out[0],
            Event::Message(ticker("BTC", 3)),
            "the slot of BTC, newest"
        );
        assert_eq!(out[1], Event::Message(mark("ETH", 2)));
        assert_eq!(out[2], Event::Message(pong(1)));
        assert_eq!(out[3], Event::Message(ticker("SOL", 1)), "not conflated");
        assert_eq!(q.in_flight_bytes.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn what_the_consumer_took_is_never_replaced_nor_overtaken() {
        let q = EventQueue::new(100, Box::new(Count::default()));
        conflated(&q, &["BTC@bookTicker"]);
        q.push_messages(&mut vec![(ticker("BTC", 1), 1), (ticker("BTC", 2), 1)]);
        q.push_messages(&mut vec![(pong(9), 1)]);
        assert_eq!(q.pop(), Some(Event::Message(ticker("BTC", 2))));
        // The consumer holds the pong now; a new BTC message goes behind it, in a new slot.
        q.push_messages(&mut vec![(ticker("BTC", 3), 1), (ticker("BTC", 4), 1)]);
        let mut out = vec![];
        q.pop_batch(10, &mut out);
        assert_eq!(
            out,
            [Event::Message(pong(9)), Event::Message(ticker("BTC", 4))]
        );
        assert_eq!(q.stats().events_conflated, 2);
    }

    #[test]
    fn replacing_keeps_the_byte_budget_exact() {
        let q = EventQueue::new(100, Box::new(Count::default())).with_max_bytes(100);
        conflated(&q, &["BTC@bookTicker"]);
        let mut batch = vec![
            (pong(1), 50),
            (ticker("BTC", 1), 40),
            (ticker("BTC", 2), 60), // 50 + 60 > 100: dropped, the older stays
            (ticker("BTC", 3), 45), // 50 + 45: replaces
            (pong(2), 10),          // 95 + 10 > 100: dropped
            (pong(3), 5),
        ];
        assert_eq!(q.push_messages(&mut batch), 2);
        let s = q.stats();
        assert_eq!(
            (
                s.messages_received,
                s.events_dropped,
                s.events_conflated,
                s.queued
            ),
            (6, 2, 1, 3)
        );
        assert_eq!(q.in_flight_bytes.load(Ordering::SeqCst), 100);
        let mut out = vec![];
        q.pop_batch(10, &mut out);
        assert_eq!(out[1], Event::Message(ticker("BTC", 3)));
        assert_eq!(q.in_flight_bytes.load(Ordering::SeqCst), 0);
        assert_eq!(q.in_flight.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn conflation_accounting_is_exact_and_order_kept_under_a_flood() {
        // A deterministic flood: each burst queues a mix, the consumer takes a few now and then.
        let q = EventQueue::new(6, Box::new(Count::default())).with_max_bytes(200);
        conflated(&q, &["BTC@bookTicker", "ETH@markPrice"]);
        let mut last: HashMap<String, u64> = HashMap::new();
        let mut delivered = 0u64;
        let mut next = [1u64; 3];
        for round in 0..2000u64 {
            let mut batch = vec![];
            for i in 0..(round % 11 + 1) {
                let k = ((round + i) % 3) as usize;
                let m = match k {
                    0 => ticker("BTC", next[0]),
                    1 => mark("ETH", next[1]),
                    _ => ticker("SOL", next[2]),
                };
                next[k] += 1;
                batch.push((m, 10 + (round % 50) as usize));
            }
            q.push_messages(&mut batch);
            let mut out = vec![];
            q.pop_batch((round % 5) as usize, &mut out);
            for e in &out {
                let (symbol, id) = update_id(e);
                let previous = last.insert(symbol.clone(), id).unwrap_or(0);
                assert!(id > previous, "{symbol}: {id} after {previous}");
            }
            delivered += out.len() as u64;
        }
        let mut out = vec![];
        q.pop_batch(usize::MAX, &mut out);
        delivered += out.len() as u64;
        let s = q.stats();
        assert!(s.events_conflated > 0 && s.events_dropped > 0, "{s:?}");
        assert_eq!(
            s.messages_received,
            delivered + s.events_conflated + s.events_dropped
        );
        assert_eq!(q.in_flight_bytes.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn unconflated_topics_and_switched_off_topics_are_untouched() {
        let q = EventQueue::new(100, Box::new(Count::default()));
        conflated(&q, &["BTC@bookTicker", "BTC@aggTrade"]);
        q.set_conflated(&["BTC@bookTicker".to_string()], false);
        q.push_messages(&mut vec![(ticker("BTC", 1), 1), (ticker("BTC", 2), 1)]);
        assert_eq!(q.stats().events_conflated, 0);
        assert_eq!(q.stats().queued, 2);
    }

    #[test]
    fn latency_is_counted_per_message_with_an_e() {
        let q = EventQueue::new(100, Box::new(Count::default()));
        let now_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        let unknown = crate::protocol::parse_str("not json");
        q.push_messages(&mut vec![
            (mark("BTC", now_us - 2_000), 1),
            (mark("BTC", now_us + 60_000_000), 1), // a clock behind: counts as 0
            (unknown, 1),
        ]);
        let s = q.stats();
        let exchange = s.exchange_delay.expect("two samples");
        assert_eq!(exchange.count, 2);
        assert!(exchange.p50_us == 0 && exchange.max_us >= 2_000);
        assert_eq!(s.delivery_delay, None, "nothing delivered yet");
        let mut out = vec![];
        q.pop_batch(10, &mut out);
        let delivery = q
            .stats()
            .delivery_delay
            .expect("three messages handed over");
        assert_eq!(delivery.count, 3);
        assert!(delivery.p50_us <= delivery.p99_us && delivery.p99_us <= delivery.max_us);
    }

    #[test]
    fn book_events_follow_their_message_and_a_dropped_one_is_counted_once() {
        let gap = |got| {
            Event::Book(crate::book::BookEvent::Gap {
                symbol: "BTC-USD".into(),
                expected: 1,
                got,
            })
        };
        let kinds = |q: &EventQueue| {
            let mut out = vec![];
            q.pop_batch(usize::MAX, &mut out);
            out.iter()
                .map(|e| match e {
                    Event::Message(ServerMessage::Pong(p)) => format!("pong {}", p.id.unwrap_or(0)),
                    Event::Book(crate::book::BookEvent::Gap { got, .. }) => format!("gap {got}"),
                    _ => "other".into(),
                })
                .collect::<Vec<_>>()
        };
        let q = EventQueue::new(10, Box::new(Count::default()));
        let mut batch = vec![(pong(1), 1), (pong(2), 1), (pong(3), 1)];
        assert_eq!(
            q.push_burst(&mut batch, vec![(0, gap(10)), (2, gap(30))], || {}),
            0
        );
        assert_eq!(
            kinds(&q),
            ["pong 1", "gap 10", "pong 2", "pong 3", "gap 30"]
        );

        // Room for two: the first message and its book event; then everything is dropped.
        let q = EventQueue::new(2, Box::new(Count::default()));
        let mut batch = vec![(pong(1), 1), (pong(2), 1), (pong(3), 1)];
        assert_eq!(
            q.push_burst(&mut batch, vec![(0, gap(10)), (1, gap(20))], || {}),
            3
        );
        let s = q.stats();
        assert_eq!((s.messages_received, s.events_dropped, s.queued), (3, 3, 2));
        assert_eq!(kinds(&q), ["pong 1", "gap 10"]);
    }

    /// A consumer that took a message finds it counted in `messages_received`: the count is
    /// made where the message becomes visible, not after.
    #[test]
    fn a_message_taken_is_already_counted() {
        let q = Arc::new(EventQueue::new(1 << 20, Box::new(Count::default())));
        let bursts = 20_000u64;
        let producer = {
            let q = q.clone();
            std::thread::spawn(move || {
                for burst in 0..bursts {
                    let mut batch: Vec<_> = (0..4).map(|i| (pong(burst * 4 + i), 10)).collect();
                    q.push_messages(&mut batch);
                }
            })
        };
        let mut taken = 0u64;
        let mut out = vec![];
        while taken < bursts * 4 {
            out.clear();
            q.pop_batch(usize::MAX, &mut out);
            if out.is_empty() {
                std::hint::spin_loop();
                continue;
            }
            taken += out.len() as u64;
            let counted = q.stats().messages_received;
            assert!(counted >= taken, "took {taken} but {counted} counted");
        }
        producer.join().unwrap();
    }

    /// A reader that waits for `messages_received` and then drains `queued` must find every
    /// counted message: a message is counted once it is queued, dropped or conflated, never
    /// before.
    #[test]
    fn a_counted_message_is_already_queued_dropped_or_conflated() {
        // Queued while there is room, then conflated (BTC) or dropped (pongs) once it is full.
        let q = Arc::new(EventQueue::new(50_000, Box::new(Count::default())));
        conflated(&q, &["BTC@bookTicker"]);
        let done = Arc::new(AtomicBool::new(false));
        let producer = {
            let (q, done) = (q.clone(), done.clone());
            std::thread::spawn(move || {
                for burst in 0..2_000u64 {
                    let mut batch: Vec<_> = (0..64)
                        .map(|i| match i % 4 {
                            0 => (ticker("BTC", burst * 64 + i), 10),
                            _ => (pong(burst * 64 + i), 10),
                        })
                        .collect();
                    q.push_messages(&mut batch);
                }
                done.store(true, Ordering::SeqCst);
            })
        };
        let mut checks = 0u64;
        while !done.load(Ordering::SeqCst) {
            let s = q.stats();
            assert!(
                s.messages_received <= s.queued + s.events_dropped + s.events_conflated,
                "counted {} but queued {}, dropped {}, conflated {}",
                s.messages_received,
                s.queued,
                s.events_dropped,
                s.events_conflated
            );
            checks += 1;
        }
        producer.join().unwrap();
        assert!(checks > 0);
        let s = q.stats();
        assert!(s.events_dropped > 0 && s.events_conflated > 0, "{s:?}");
        assert_eq!(
            s.messages_received,
            s.queued + s.events_dropped + s.events_conflated
        );
    }
}
