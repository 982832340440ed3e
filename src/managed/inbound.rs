//! What becomes of every burst of server messages, whichever thread read it: the socket task,
//! or the event loop's thread while it owns the reads (`Config::loop_reads`). Both look at the
//! messages under the same ledger: the pongs of our keepalives are swallowed, a `disconnecting`
//! notice asks for a rotation, acks settle the pending orders; then the books take their depth
//! messages and the burst is queued. What only the task can do (rotate, resubscribe, warn of
//! drops) is left in the ledger and the task is woken for it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::book::Books;
use crate::event_queue::{EventQueue, LogLevel};
use crate::protocol::ServerMessage;
use crate::tcp::Lent;
use crate::wire::{LoopRead, SentOrder, Wire};

use super::KEEPALIVE_ID_BASE;

/// Frames, and bytes of messages, a read on the loop takes at most: more waiting is a flood (of
/// pings too, which must not hold the loop; of large depth messages, which the task parses in
/// parallel better), and the reads go back to the task (`LoopRead::Flood`).
const LOOP_READ_MAX: (usize, usize) = (256, 64 * 1024);

/// Shared by the task and the loop's reads; the task alone changes it otherwise.
#[derive(Default)]
pub(crate) struct Ledger {
    /// Orders written on the current connection and not acknowledged yet, oldest first.
    pub(crate) pending: VecDeque<SentOrder>,
    /// Keepalive ids awaiting their pong.
    pub(crate) keepalives: VecDeque<u64>,
    /// A `disconnecting` notice seen: its reason starts a rotation.
    pub(crate) rotate_for: Option<String>,
    /// Books that lost their sync, found by a read on the loop: the task resubscribes them.
    pub(crate) resubscribe: Vec<String>,
    /// Events a read on the loop dropped, for the task's warning.
    pub(crate) dropped: u64,
}

pub(crate) struct Inbound {
    ledger: Mutex<Ledger>,
    books: Arc<Books>,
    events: Arc<EventQueue>,
    /// The connection the loop may read (published by the task when `loop_reads` is on).
    current: Mutex<Option<Arc<Wire>>>,
    /// The loop's read buffer, kept between reads.
    batch: Mutex<Vec<(ServerMessage, usize)>>,
    /// Wakes the task for what the loop's reads left in the ledger.
    task: Notify,
    /// When a read on the loop last took a message, in ns since `epoch` (the idle clock).
    last_message_ns: AtomicU64,
    /// Messages the loop's reads queued (or dropped).
    loop_reads: AtomicU64,
    epoch: Instant,
}

impl Inbound {
    pub(crate) fn new(books: Arc<Books>, events: Arc<EventQueue>) -> Self {
        Inbound {
            ledger: Mutex::default(),
            books,
            events,
            current: Mutex::default(),
            batch: Mutex::default(),
            task: Notify::new(),
            last_message_ns: AtomicU64::new(0),
            loop_reads: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    pub(crate) fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock()
    }

    /// Drops our keepalives' pongs from `batch`, notes a `disconnecting` notice, settles the
    /// orders that acks answer. True when the task has something to do (a rotation).
    pub(crate) fn admit(
        &self,
        ledger: &mut Ledger,
        batch: &mut Vec<(ServerMessage, usize)>,
    ) -> bool {
        let mut rotate = false;
        batch.retain(|(message, _)| match message {
            ServerMessage::Pong(p) => match p.id {
                Some(id) if id >= KEEPALIVE_ID_BASE => {
                    match ledger.keepalives.iter().position(|&k| k == id) {
                        Some(i) => {
                            ledger.keepalives.remove(i);
                            false
                        }
                        None => true,
                    }
                }
                _ => true,
            },
            ServerMessage::Status(s) if s.status == "disconnecting" => {
                self.events.log(
                    LogLevel::Warning,
                    format!(
                        "server is disconnecting this connection ({}), reason: {}",
                        s.client_id,
                        s.reason.as_deref().unwrap_or("none given")
                    ),
                );
                ledger.rotate_for = Some(s.reason.as_deref().unwrap_or("disconnecting").to_owned());
                rotate = true;
                true
            }
            _ => true,
        });
        if !ledger.pending.is_empty() {
            settle(&mut ledger.pending, batch);
        }
        rotate
    }

    // ---- the loop's side ----

    /// Publishes the connection the loop may read, or none.
    pub(crate) fn publish(&self, wire: Option<Arc<Wire>>) {
        *self.current.lock() = wire;
    }

    /// The loop takes over the reads of the current connection, when the task allows it; the
    /// socket to watch when it just did.
    pub(crate) fn claim(&self) -> Option<Lent> {
        self.current.lock().as_ref()?.claim_reads()
    }

    pub(crate) fn give_back(&self) {
        if let Some(wire) = &*self.current.lock() {
            wire.give_back_reads();
        }
    }

    pub(crate) fn owns(&self) -> bool {
        self.current
            .lock()
            .as_ref()
            .is_some_and(|wire| wire.loop_owns_reads())
    }

    /// Reads on the loop's thread what the socket has and queues it, as the task would have.
    pub(crate) fn read_on_loop(&self) -> LoopRead {
        let Some(wire) = self.current.lock().clone() else {
            return LoopRead::NotMine;
        };
        let mut batch = self.batch.lock();
        let outcome = wire.read_on_loop(LOOP_READ_MAX, &mut batch, |batch, sent| {
            if batch.is_empty() && sent.is_empty() {
                return;
            }
            if !batch.is_empty() {
                let ns = self.epoch.elapsed().as_nanos() as u64;
                self.last_message_ns.fetch_max(ns, Ordering::Relaxed);
            }
            let mut wake = {
                let mut ledger = self.ledger.lock();
                ledger.pending.extend(sent);
                self.admit(&mut ledger, batch)
            };
            if !batch.is_empty() {
                // The consumer is this thread, awake: what it queues must not ring its doorbell.
                self.events.awake();
            }
            self.loop_reads
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            let (dropped, resubscribe) =
                self.books
                    .deliver(&self.events, batch, Instant::now(), || {});
            if dropped > 0 || !resubscribe.is_empty() {
                let mut ledger = self.ledger.lock();
                ledger.dropped += dropped;
                ledger.resubscribe.extend(resubscribe);
                wake = true;
            }
            if wake {
                self.task.notify_one();
            }
        });
        batch.clear();
        if outcome == LoopRead::Lost {
            // The task reports it.
            self.task.notify_one();
        }
        outcome
    }

    pub(crate) fn loop_reads(&self) -> u64 {
        self.loop_reads.load(Ordering::Relaxed)
    }

    // ---- the task's side ----

    /// Resolves when a read on the loop left the task something to do. Cancel-safe.
    pub(crate) async fn wanted(&self) {
        self.task.notified().await
    }

    /// When a read on the loop last took a message; None before the first.
    pub(crate) fn last_loop_message(&self) -> Option<Instant> {
        match self.last_message_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(self.epoch + std::time::Duration::from_nanos(ns)),
        }
    }
}

/// Acks (order results and errors) settle the pending orders they answer: by id, or, for
/// orders sent without one, the oldest id-less order.
pub(crate) fn settle(pending: &mut VecDeque<SentOrder>, batch: &[(ServerMessage, usize)]) {
    for (message, _) in batch {
        let id = match message {
            ServerMessage::OrderResult(r) => r.id,
            ServerMessage::ErrorMessage(e) => e.id,
            _ => continue,
        };
        if let Some(i) = pending.iter().position(|(p, _)| *p == id) {
            pending.remove(i);
        }
    }
}
