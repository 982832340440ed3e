//! Local order books kept from `SYMBOL@depthN` snapshots and diffs, on the socket thread.
//!
//! Every subscribed depth topic has a book (docs/API.md "Order book"). A snapshot (`mt:"s"`)
//! replaces the state; an update applies its levels when its `pu` is the book's last `u`. When it
//! is not, the book has missed something: it stops being synced, reports a [`BookEvent::Gap`],
//! and asks the socket task to unsubscribe and resubscribe its topic (at most once per
//! [`RESUBSCRIBE_EVERY`]), which brings a fresh snapshot and a [`BookEvent::Resynced`].
//!
//! Prices are ordered by exact value: the decimal string becomes an integer scaled by 10**18, so
//! `"100.5"` and `"100.50"` are one level and `"99.9"` sorts below `"100"` (floats would round,
//! text would misorder). The wire strings are kept as sent. A quantity that is numerically zero
//! removes its level (the Binance convention; docs/PROTOCOL.md §10.9 has the evidence).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::time::Instant;

use crate::event_queue::{Event, EventQueue};
use crate::protocol::messages::DepthUpdate;
use crate::protocol::server::{Level, Str};
use crate::protocol::ServerMessage;

/// A topic is resubscribed at most this often: a server that keeps sending broken chains must
/// not be hammered with requests. Shared with the pure backend (tests/test_shared_constants.py).
pub const RESUBSCRIBE_EVERY: Duration = Duration::from_secs(1);

/// A new book keeps its levels until its first read for up to this long after its subscribe:
/// `ws.book()` right after `subscribe()` then misses nothing even when the socket thread got
/// the first snapshot first (a busy machine). Unread by then, it keeps only its sequence.
/// Shared with the pure backend (tests/test_shared_constants.py).
pub const UNREAD_GRACE: Duration = Duration::from_secs(5);

/// Fractional digits kept by [`decimal_key`]; more are allowed only when they are zeros.
const SCALE: usize = 18;
/// Integer digits allowed: 10**20 * 10**18 stays below u128::MAX (3.4 * 10**38).
const MAX_WHOLE: usize = 20;

/// The exact value of a decimal string (`[0-9]+(\.[0-9]+)?`) times 10**18, or None when the
/// string is not such a decimal or does not fit (more than 20 integer digits after leading zeros,
/// or a non-zero digit beyond the 18th fractional one). The pure backend's rule is the same.
pub fn decimal_key(s: &str) -> Option<u128> {
    let bytes = s.as_bytes();
    let (whole, frac) = match bytes.iter().position(|&c| c == b'.') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &bytes[..0]),
    };
    let dotted = whole.len() != bytes.len();
    if whole.is_empty() || (dotted && frac.is_empty()) {
        return None;
    }
    let first = whole.iter().position(|&c| c != b'0').unwrap_or(whole.len());
    let whole = &whole[first..];
    if whole.len() > MAX_WHOLE {
        return None;
    }
    let (kept, beyond) = frac.split_at(frac.len().min(SCALE));
    if beyond.iter().any(|&c| c != b'0') {
        return None;
    }
    // Each half in a u64 (up to 19 digits each; 20 integer digits take two steps), then one
    // u128 multiply-add: a book applies two of these per level, on the socket thread.
    let digits = |part: &[u8]| -> Option<u64> {
        part.iter().try_fold(0u64, |v, &c| {
            c.is_ascii_digit().then(|| v * 10 + u64::from(c - b'0'))
        })
    };
    let (high, low) = whole.split_at(whole.len().saturating_sub(19));
    let whole = u128::from(digits(high)?) * 10u128.pow(19) + u128::from(digits(low)?);
    let frac = u128::from(digits(kept)?) * 10u128.pow((SCALE - kept.len()) as u32);
    Some(whole * 10u128.pow(SCALE as u32) + frac)
}

/// What a book tells the user, queued right after the message that caused it.
#[derive(Debug, Clone, PartialEq)]
pub enum BookEvent {
    /// An update whose `pu` (`got`) was not the book's last `u` (`expected`).
    Gap {
        symbol: Str,
        expected: u64,
        got: u64,
    },
    /// A book that had lost its sync (a gap, a reconnect) got its snapshot.
    Resynced { symbol: Str, downtime: Duration },
}

/// One side: price key -> the level as sent.
type Side = BTreeMap<u128, Level>;

/// The state behind one book's lock. Readers (the loop thread) only look at the first five
/// fields; the rest is the socket task's bookkeeping.
#[derive(Debug)]
pub struct BookState {
    bids: Side,
    asks: Side,
    last_update_id: u64,
    event_time: u64,
    synced: bool,
    /// When a synced book lost its sync; None while synced and before the first snapshot.
    lost_at: Option<Instant>,
    /// Since when an unsynced book has been waiting for its snapshot.
    waiting_since: Instant,
    last_resubscribe: Option<Instant>,
    /// A resubscribe was due but held back by [`RESUBSCRIBE_EVERY`].
    wanted: bool,
    /// The levels are kept from the first read of the book on ([`Books::book`]), and before it
    /// during [`UNREAD_GRACE`]. Otherwise only the sequence is followed (gaps, resyncs,
    /// resubscribes): a socket whose books nobody reads does not pay for keeping them (a quarter
    /// of the socket thread on depth20).
    levels_kept: bool,
    /// Until when an unread book keeps its levels; None once read or past the grace.
    unread_until: Option<Instant>,
}

/// What applying one message asks of the socket task.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub event: Option<BookEvent>,
    pub resubscribe: bool,
}

impl BookState {
    fn new(now: Instant) -> Self {
        BookState {
            bids: Side::new(),
            asks: Side::new(),
            last_update_id: 0,
            event_time: 0,
            synced: false,
            lost_at: None,
            waiting_since: now,
            last_resubscribe: None,
            wanted: false,
            levels_kept: true,
            unread_until: Some(now + UNREAD_GRACE),
        }
    }

    /// The book is read: its levels are kept from now on. Read first while synced, it waits
    /// for the next snapshot (asked for after [`RESUBSCRIBE_EVERY`] without one), and the
    /// wait reports neither a gap nor a resync.
    fn keep_levels(&mut self, now: Instant) {
        // Read within the grace: every message so far was applied, the levels are whole.
        if self.unread_until.take().is_some() || std::mem::replace(&mut self.levels_kept, true) {
            return;
        }
        if self.synced {
            self.synced = false;
            self.waiting_since = now;
        }
    }

    pub fn is_synced(&self) -> bool {
        self.synced
    }

    pub fn last_update_id(&self) -> u64 {
        self.last_update_id
    }

    pub fn event_time(&self) -> u64 {
        self.event_time
    }

    /// Up to `n` bids (all with None), best (highest) first, copied.
    pub fn bids(&self, n: Option<usize>) -> Vec<Level> {
        take(self.bids.values().rev(), n)
    }

    /// Up to `n` asks (all with None), best (lowest) first, copied.
    pub fn asks(&self, n: Option<usize>) -> Vec<Level> {
        take(self.asks.values(), n)
    }

    pub fn best_bid(&self) -> Option<Level> {
        self.bids.values().next_back().cloned()
    }

    pub fn best_ask(&self) -> Option<Level> {
        self.asks.values().next().cloned()
    }

    pub fn apply(&mut self, symbol: &Str, d: &DepthUpdate, now: Instant) -> Outcome {
        if self.unread_until.is_some_and(|until| now >= until) {
            self.unread_until = None;
            self.levels_kept = false;
            self.bids.clear();
            self.asks.clear();
        }
        if d.message_type == "s" {
            if self.levels_kept {
                replace(&mut self.bids, &d.bids);
                replace(&mut self.asks, &d.asks);
            }
            self.last_update_id = d.final_update_id;
            self.event_time = d.event_time;
            self.wanted = false;
            let event = (!self.synced)
                .then(|| self.lost_at.take())
                .flatten()
                .map(|lost| BookEvent::Resynced {
                    symbol: symbol.clone(),
                    downtime: now.saturating_duration_since(lost),
                });
            self.synced = true;
            return Outcome {
                event,
                resubscribe: false,
            };
        }
        if !self.synced {
            // The snapshot that would sync us may have been lost too (a dropped resubscribe, a
            // server that resumed with updates): ask again once the wait is long enough.
            let overdue = now.saturating_duration_since(self.waiting_since) >= RESUBSCRIBE_EVERY;
            return Outcome {
                event: None,
                resubscribe: (self.wanted || overdue) && self.request_resubscribe(now),
            };
        }
        if d.prev_final_update_id != self.last_update_id {
            let expected = self.last_update_id;
            self.lose_sync(now);
            return Outcome {
                event: Some(BookEvent::Gap {
                    symbol: symbol.clone(),
                    expected,
                    got: d.prev_final_update_id,
                }),
                resubscribe: self.request_resubscribe(now),
            };
        }
        if self.levels_kept {
            update(&mut self.bids, &d.bids);
            update(&mut self.asks, &d.asks);
        }
        self.last_update_id = d.final_update_id;
        self.event_time = d.event_time;
        Outcome::default()
    }

    fn lose_sync(&mut self, now: Instant) {
        if self.synced {
            self.synced = false;
            self.lost_at = Some(now);
        }
        self.waiting_since = now;
    }

    /// True when the topic may be resubscribed now; otherwise it is remembered for later.
    fn request_resubscribe(&mut self, now: Instant) -> bool {
        let cooled = self
            .last_resubscribe
            .is_none_or(|t| now.saturating_duration_since(t) >= RESUBSCRIBE_EVERY);
        if cooled {
            self.last_resubscribe = Some(now);
            self.waiting_since = now;
            self.wanted = false;
        } else {
            self.wanted = true;
        }
        cooled
    }

    /// The connection is gone: the replay's snapshot will bring the book back.
    fn connection_lost(&mut self, now: Instant) {
        self.lose_sync(now);
        self.wanted = false;
        self.last_resubscribe = None;
    }
}

fn take<'a>(levels: impl Iterator<Item = &'a Level>, n: Option<usize>) -> Vec<Level> {
    match n {
        Some(n) => levels.take(n).cloned().collect(),
        None => levels.cloned().collect(),
    }
}

/// A level the book can hold: a decimal price and a decimal quantity (zero = remove). Anything
/// else is skipped: there is no right place for it.
fn level_key(level: &Level) -> Option<(u128, bool)> {
    let price = decimal_key(&level.0)?;
    let qty = decimal_key(&level.1)?;
    Some((price, qty == 0))
}

fn replace(side: &mut Side, levels: &[Level]) {
    side.clear();
    update(side, levels);
}

fn update(side: &mut Side, levels: &[Level]) {
    for level in levels {
        match level_key(level) {
            Some((price, true)) => {
                side.remove(&price);
            }
            Some((price, false)) => {
                side.insert(price, level.clone());
            }
            None => {}
        }
    }
}

/// One symbol's book, shared by the socket task (writer) and the loop thread (readers). One lock
/// per applied message: a reader never sees half an update.
#[derive(Debug)]
pub struct Book {
    symbol: Str,
    state: Mutex<BookState>,
}

impl Book {
    pub fn symbol(&self) -> &str {
        &self.symbol
    }

    /// Runs `f` under the book's lock; keep it short (copy, then build Python objects).
    pub fn read<T>(&self, f: impl FnOnce(&BookState) -> T) -> T {
        f(&self.state.lock())
    }
}

struct Entry {
    book: Arc<Book>,
    /// The depth topics of this symbol (normally one: messages do not say which topic they
    /// belong to, so two depth topics of one symbol feed one book).
    topics: Vec<String>,
}

/// The books of one socket, by symbol.
#[derive(Default)]
pub struct Books {
    entries: RwLock<HashMap<String, Entry>>,
    /// Lets a socket without depth topics skip the book pass with one load.
    count: AtomicUsize,
}

/// The symbol of a `SYMBOL@depth5|10|20` topic.
pub fn depth_symbol(topic: &str) -> Option<&str> {
    let (symbol, stream) = topic.split_once('@')?;
    (!symbol.is_empty() && matches!(stream, "depth5" | "depth10" | "depth20")).then_some(symbol)
}

impl Books {
    /// The book of `symbol`, for reading: its levels are kept from this call on (see
    /// `BookState::keep_levels`).
    pub fn book(&self, symbol: &str, now: Instant) -> Option<Arc<Book>> {
        let book = self.entries.read().get(symbol).map(|e| e.book.clone())?;
        book.state.lock().keep_levels(now);
        Some(book)
    }

    /// Topics just subscribed: each depth topic gets its symbol's book (new ones not synced).
    pub fn topics_added(&self, topics: &[String], now: Instant) {
        let mut entries = self.entries.write();
        for topic in topics {
            let Some(symbol) = depth_symbol(topic) else {
                continue;
            };
            let entry = entries.entry(symbol.to_owned()).or_insert_with(|| Entry {
                book: Arc::new(Book {
                    symbol: symbol.into(),
                    state: Mutex::new(BookState::new(now)),
                }),
                topics: Vec::new(),
            });
            if !entry.topics.contains(topic) {
                entry.topics.push(topic.clone());
            }
        }
        self.count.store(entries.len(), Ordering::Release);
    }

    /// Topics just unsubscribed: a symbol left without depth topics loses its book, which stops
    /// being synced (whoever still holds it sees that).
    pub fn topics_removed(&self, topics: &[String], now: Instant) {
        let mut entries = self.entries.write();
        for topic in topics {
            let Some(symbol) = depth_symbol(topic) else {
                continue;
            };
            if let Some(entry) = entries.get_mut(symbol) {
                entry.topics.retain(|t| t != topic);
                if entry.topics.is_empty() {
                    entry.book.state.lock().connection_lost(now);
                    entries.remove(symbol);
                }
            }
        }
        self.count.store(entries.len(), Ordering::Release);
    }

    /// Every book waits for the snapshot the replay of the next connection brings.
    pub fn connection_lost(&self, now: Instant) {
        for entry in self.entries.read().values() {
            entry.book.state.lock().connection_lost(now);
        }
    }

    /// Applies one message to its book, if it is a depth message of a symbol with a book; the
    /// topics to resubscribe go into `resubscribe`.
    pub fn apply(
        &self,
        message: &ServerMessage,
        now: Instant,
        resubscribe: &mut Vec<String>,
    ) -> Option<BookEvent> {
        let ServerMessage::DepthUpdate(d) = message else {
            return None;
        };
        apply_in(&self.entries.read(), d, now, resubscribe)
    }

    /// Applies a burst to the books, then queues it, each book event right after the message
    /// that caused it, and runs `queued` before the consumer is woken. Returns the events dropped
    /// (as `EventQueue::push_messages`) and the topics to resubscribe.
    pub fn deliver(
        &self,
        events: &EventQueue,
        batch: &mut Vec<(ServerMessage, usize)>,
        now: Instant,
        queued: impl FnOnce(),
    ) -> (u64, Vec<String>) {
        let mut resubscribe = Vec::new();
        if self.count.load(Ordering::Acquire) == 0 {
            return (events.push_burst(batch, Vec::new(), queued), resubscribe);
        }
        let mut marks = Vec::new();
        {
            let entries = self.entries.read();
            for (i, (message, _)) in batch.iter().enumerate() {
                if let ServerMessage::DepthUpdate(d) = message {
                    if let Some(event) = apply_in(&entries, d, now, &mut resubscribe) {
                        marks.push((i, Event::Book(event)));
                    }
                }
            }
        }
        (events.push_burst(batch, marks, queued), resubscribe)
    }
}

fn apply_in(
    entries: &HashMap<String, Entry>,
    d: &DepthUpdate,
    now: Instant,
    resubscribe: &mut Vec<String>,
) -> Option<BookEvent> {
    let entry = entries.get(d.symbol.as_str())?;
    let outcome = entry.book.state.lock().apply(&entry.book.symbol, d, now);
    if outcome.resubscribe {
        resubscribe.extend(entry.topics.iter().cloned());
    }
    outcome.event
}

#[cfg(test)]
mod tests;
