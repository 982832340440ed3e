//! The socket task: it owns the connection, applies the commands in order, hands messages over
//! in bursts, keeps the books and the order ledger, and reconnects or rotates when needed.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio::time::{sleep, sleep_until, timeout, timeout_at, Instant};

use super::direct::DirectPath;
use super::inbound::{settle, Inbound};
use super::rotation::{Dedup, Item};
use super::topics::TopicSet;
use super::{Command, Shutdown, KEEPALIVE_ID_BASE, STOP_GRACE};
use crate::backoff::Backoff;
use crate::book::Books;
use crate::config::Config;
use crate::event_queue::{ConnectState, Event, EventQueue, LogLevel};
use crate::protocol::{ClientMessage, ServerMessage};
use crate::transport::{ConnectError, ConnectErrorKind, Connection, Connector, Lost};
use crate::wire::{send_failed, OwedLoss, SentOrder, Wire};

/// Keepalive ids awaiting their pong. A server that never answers must not grow the list.
pub const MAX_OUTSTANDING_KEEPALIVES: usize = 16;

/// A bug in the task must end the socket visibly, never leave the consumer waiting forever.
pub(super) async fn guarded(task: impl Future<Output = ()>, events: Arc<EventQueue>) {
    if let Err(panic) = std::panic::AssertUnwindSafe(task).catch_unwind().await {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let reason = format!("internal error: {what}");
        if events.connect_state() == ConnectState::Pending {
            events.set_connect_state(ConnectState::Failed(ConnectError::new(
                ConnectErrorKind::Io,
                reason.clone(),
            )));
        }
        events.log(LogLevel::Error, format!("socket task failed: {reason}"));
        events.push_final(Event::Disconnected { reason });
        events.finish();
    }
}

/// Messages handed over per lock of the event queue; bounds the latency a burst adds.
const BURST: usize = 256;
/// A slow consumer makes drops continuous; one warning per second is enough.
pub const DROP_WARNING_EVERY: Duration = Duration::from_secs(1);
/// How often the task looks whether the loop, owning the reads, left bytes waiting on the
/// socket: after two looks with no read of the loop between them, it takes the reads back.
pub const LOOP_READ_CHECK: Duration = Duration::from_millis(50);
/// A polite close frame must not delay anything.
pub const CLOSE_GRACE: Duration = Duration::from_millis(250);

pub(super) struct Task<C: Connector> {
    connector: Arc<C>,
    config: Config,
    events: Arc<EventQueue>,
    commands: mpsc::Receiver<Command>,
    shutdown: Arc<Shutdown>,
    backoff: Backoff,
    rng: fastrand::Rng,
    replay: TopicSet,
    last_drop_warning: Option<Instant>,
    drops_since_warning: u64,
    /// The orders pending on the current connection, our keepalives, a rotation asked for:
    /// shared with the reads on the loop's thread (`Config::loop_reads`).
    pub(super) inbound: Arc<Inbound>,
    /// Set once stopping: writes go on until then, never longer.
    stop_deadline: Option<Instant>,
    /// Last frame sent on the current connection (or its opening): the keepalive clock.
    last_sent: Instant,
    next_keepalive: u64,
    /// Orders written on the connection a rotation left, still read for their acks.
    old_pending: VecDeque<PendingOrder>,
    pub(super) books: Arc<Books>,
    pub(super) direct: Arc<DirectPath>,
    /// The current connection's stream while it is open to direct writes.
    published: Option<Arc<Wire>>,
    /// The loop may own the reads of `published` (`Config::loop_reads`, no rotation).
    loop_allowed: bool,
}

type PendingOrder = SentOrder;

/// A frame to send once more on the next connection.
struct Retry {
    frame: String,
    order: Option<PendingOrder>,
}

/// What became of a command.
enum Applied {
    Done,
    Stopped,
    /// The connection is gone; `retry` is a frame whose write failed before any byte left.
    Lost {
        reason: String,
        retry: Option<Retry>,
    },
}

enum SendFailure {
    Stopped,
    /// `written`: some bytes went to the kernel during the attempt, so the peer may have it all.
    Lost {
        reason: String,
        written: bool,
    },
}

pub(super) fn order_of(message: &ClientMessage) -> Option<PendingOrder> {
    match message {
        ClientMessage::Order { method, id, .. } => Some((*id, method.name())),
        _ => None,
    }
}

/// The clocks of the connection being served.
struct ConnClock {
    connected_at: Instant,
    /// The idle clock: the last message received.
    last_message: Instant,
    /// Whether this connection came from a reconnect (its early loss then doubles the backoff).
    reconnected: bool,
    /// After a failed rotation, the next may not start before this.
    rotation_retry: Option<Instant>,
}

impl ConnClock {
    fn new() -> Self {
        let now = Instant::now();
        ConnClock {
            connected_at: now,
            last_message: now,
            reconnected: false,
            rotation_retry: None,
        }
    }

    /// A connection starts being served: after a reconnect or a rotation's switch.
    fn fresh(&mut self) {
        (self.connected_at, self.last_message) = (Instant::now(), Instant::now());
        self.rotation_retry = None;
    }
}

/// What woke the loop.
#[allow(clippy::large_enum_variant)]
enum Step<C: Connection> {
    Shutdown,
    Message((ServerMessage, usize)),
    Lost(Lost),
    /// A direct write broke the connection (the reason of the loss).
    Broken(String),
    Command(Option<Command>),
    Idle,
    Keepalive,
    Rotation(RotationStep<C>),
    RotationDeadline,
    Age,
    Wanted,
    LoopCheck,
}

/// How long the new connection of a rotation may take to catch up with the old one (every
/// sequenced stream continuing without a gap) before the switch is made anyway.
pub const ROTATION_CATCH_UP: Duration = Duration::from_secs(5);
/// How long the old connection is still read after the switch, for the acks of the orders
/// written on it; then it is closed and they become `OrderUnacked`.
pub const ROTATION_DRAIN: Duration = Duration::from_secs(5);
/// The least wait before a failed rotation is tried again.
pub const MIN_RETRY: Duration = Duration::from_secs(1);

enum Phase<K> {
    /// The connect runs in its own task, so the current connection is served meanwhile.
    Opening(tokio::task::JoinHandle<Result<K, ConnectError>>),
    /// Replayed: both are read, the old one is still the current one.
    Overlap { new: K },
    /// Switched: the old one is read for the acks of its orders (`None` once closed).
    Draining { old: Option<K> },
}

struct Rotation<K> {
    reason: String,
    phase: Phase<K>,
    dedup: Dedup,
    deadline: Option<Instant>,
    expired: bool,
    opened_at: Instant,
    /// Every stream had caught up at the switch: no filtering is needed once the old is gone.
    caught_up: bool,
}

impl<K: Connection> Rotation<K> {
    /// The filter for the current connection's messages, from the start of the rotation: what
    /// the old connection delivers while the new one opens is what the new one may repeat.
    fn dedup(&mut self) -> Option<&mut Dedup> {
        Some(&mut self.dedup)
    }

    fn second(&mut self) -> Option<&mut K> {
        match &mut self.phase {
            Phase::Overlap { new } => Some(new),
            Phase::Draining { old } => old.as_mut(),
            Phase::Opening(_) => None,
        }
    }
}

#[allow(clippy::large_enum_variant)]
enum RotationStep<K> {
    Opened(Result<K, ConnectError>),
    Received((ServerMessage, usize)),
    Lost(Lost),
}

/// The loss a direct write caused, or left for the task to find; pending without a wire.
async fn owed(wire: Option<&Wire>, idle: Duration) -> String {
    match wire {
        Some(w) => match w.settle_owed(idle).await {
            OwedLoss::Failed(reason) => reason,
            OwedLoss::Stalled(method) => send_failed(method, &stalled(idle)),
        },
        None => std::future::pending().await,
    }
}

/// Why a write that the peer would not take was given up.
fn stalled(idle: Duration) -> String {
    format!("send stalled for idle_timeout ({:.3}s)", idle.as_secs_f64())
}

/// Resolves at `at` once the loop owns the reads of `wire` (the claim wakes the task): no timer
/// runs while the task reads, or where the loop never claims.
async fn loop_check(wire: Option<&Wire>, at: Instant) {
    match wire {
        Some(w) => {
            w.owned_by_loop().await;
            sleep_until(at).await
        }
        None => std::future::pending().await,
    }
}

/// The next thing the rotation's other connection has for the loop; pending without one.
async fn rotation_step<K: Connection>(rot: &mut Option<Rotation<K>>) -> RotationStep<K> {
    let Some(r) = rot.as_mut() else {
        return std::future::pending().await;
    };
    if let Phase::Opening(task) = &mut r.phase {
        return RotationStep::Opened(task.await.unwrap_or_else(|e| {
            Err(ConnectError::new(
                ConnectErrorKind::Io,
                format!("connect task failed: {e}"),
            ))
        }));
    }
    match r.second() {
        Some(conn) => match conn.recv().await {
            Ok(m) => RotationStep::Received(m),
            Err(l) => RotationStep::Lost(l),
        },
        None => std::future::pending().await,
    }
}

impl<C: Connector> Task<C> {
    pub(super) fn new(
        connector: C,
        config: Config,
        events: Arc<EventQueue>,
        commands: mpsc::Receiver<Command>,
        shutdown: Arc<Shutdown>,
    ) -> Self {
        let books = Arc::<Books>::default();
        Task {
            backoff: Backoff::new(&config),
            connector: Arc::new(connector),
            config,
            events: events.clone(),
            commands,
            shutdown,
            rng: fastrand::Rng::new(),
            replay: TopicSet::default(),
            last_drop_warning: None,
            drops_since_warning: 0,
            stop_deadline: None,
            last_sent: Instant::now(),
            next_keepalive: 0,
            old_pending: VecDeque::new(),
            inbound: Arc::new(Inbound::new(books.clone(), events.clone())),
            books,
            direct: Arc::default(),
            published: None,
            loop_allowed: false,
        }
    }

    /// Reports an order that this socket cannot account for; never dropped.
    fn unacked(&self, (id, method): PendingOrder, reason: String) {
        self.log(
            LogLevel::Warning,
            format!("order {method} (id {id:?}) unacknowledged: {reason}"),
        );
        self.events
            .push_unconditional(Event::OrderUnacked { id, method, reason });
    }

    /// Every written order still waiting for its ack becomes `OrderUnacked`.
    fn unack_pending(&mut self, reason: &str) {
        let pending = std::mem::take(&mut self.inbound.ledger().pending);
        for order in pending {
            self.unacked(order, reason.to_owned());
        }
    }

    fn unack_old_pending(&mut self, reason: &str) {
        for order in std::mem::take(&mut self.old_pending) {
            self.unacked(order, reason.to_owned());
        }
    }

    /// Commands still queued will never be sent: their orders become `OrderUnacked`.
    fn unsend_queued(&mut self, reason: &str) {
        while let Ok(cmd) = self.commands.try_recv() {
            self.direct.done();
            if let Command::Send(message, _) = cmd {
                if let Some(order) = order_of(&message) {
                    self.unacked(order, reason.to_owned());
                }
            }
        }
    }

    /// Opens the current connection to direct writes and to the consumer's watch of its socket
    /// (each when configured), unless that is done already.
    fn publish(&mut self, conn: &C::Conn) {
        let watch = self.watches_socket();
        if self.published.is_some() || (!self.config.direct_write && !watch) {
            return;
        }
        if let Some(wire) = conn.wire() {
            if self.config.direct_write {
                self.direct.publish(wire.clone());
            }
            if watch {
                self.events.watch_socket(wire.raw_fd());
            }
            if self.config.loop_reads {
                self.inbound.publish(Some(wire.clone()));
            }
            self.published = Some(wire);
            self.loop_allowed = false;
        }
    }

    /// The consumer watches the socket: to wait for the task's burst, or to read it itself.
    fn watches_socket(&self) -> bool {
        !self.config.inbound_spin.is_zero() || self.config.loop_reads
    }

    /// Lets the loop own the reads of the published connection while no rotation needs every
    /// message to pass through the task, or takes them back.
    fn allow_loop_reads(&mut self, allowed: bool) {
        let allowed = allowed && self.config.loop_reads;
        if allowed != self.loop_allowed {
            if let Some(wire) = &self.published {
                wire.allow_loop_reads(allowed);
                self.loop_allowed = allowed;
            }
        }
    }

    /// Closes the current connection to direct writes and the watch, before it is lost or
    /// replaced (while its socket is still open): the orders written on it join the ledger, and
    /// none can follow.
    fn withdraw(&mut self) {
        if let Some(wire) = self.published.take() {
            if self.config.loop_reads {
                wire.allow_loop_reads(false);
                self.inbound.publish(None);
                self.loop_allowed = false;
            }
            // While `wire` still holds the socket open: a closed descriptor's number may be
            // reused at once.
            if self.watches_socket() {
                self.events.watch_socket(None);
            }
            let sent = self.direct.withdraw();
            self.inbound.ledger().pending.extend(sent);
            drop(wire);
        }
    }

    /// Orders written directly since the last look join the ledger, in the order written: the
    /// task's own sends come after them (a direct write waits for the queue to be empty).
    fn adopt_direct(&mut self) {
        if let Some(wire) = &self.published {
            wire.take_sent(|sent| self.inbound.ledger().pending.extend(sent));
        }
    }

    /// Writes the commands queued before the stop, until `STOP_GRACE` has passed.
    async fn flush(&mut self, conn: &mut C::Conn) {
        let deadline = Instant::now() + STOP_GRACE;
        self.stop_deadline = Some(deadline);
        while let Ok(cmd) = self.commands.try_recv() {
            self.direct.done();
            if Instant::now() >= deadline {
                if let Command::Send(message, _) = &cmd {
                    if let Some(order) = order_of(message) {
                        self.unacked(order, "not sent: the socket stopped".into());
                    }
                }
                continue;
            }
            if let Applied::Lost { reason, retry } = self.apply(cmd, conn).await {
                if let Some(order) = retry.and_then(|r| r.order) {
                    self.unacked(order, format!("not sent: {reason} while stopping"));
                }
            }
        }
    }

    /// A fresh connection: the server's idle clock starts at its opening, and pongs of the old
    /// one's keepalives can no longer arrive.
    fn connection_opened(&mut self) {
        self.last_sent = Instant::now();
        // What reads on the loop asked of the old connection does not concern this one.
        let mut ledger = self.inbound.ledger();
        ledger.keepalives.clear();
        ledger.rotate_for = None;
        ledger.resubscribe.clear();
    }

    async fn send_keepalive(&mut self, conn: &mut C::Conn) -> Result<(), SendFailure> {
        let id = KEEPALIVE_ID_BASE + (self.next_keepalive & u64::from(u32::MAX));
        self.next_keepalive = self.next_keepalive.wrapping_add(1);
        // Before the write: the loop's thread may read the pong before the write returns here.
        {
            let mut ledger = self.inbound.ledger();
            if ledger.keepalives.len() >= MAX_OUTSTANDING_KEEPALIVES {
                ledger.keepalives.pop_front();
            }
            ledger.keepalives.push_back(id);
        }
        let sent = self
            .send(conn, ClientMessage::Ping { id: Some(id) }.to_json())
            .await;
        if sent.is_err() {
            let mut ledger = self.inbound.ledger();
            if let Some(i) = ledger.keepalives.iter().rposition(|&k| k == id) {
                ledger.keepalives.remove(i);
            }
        }
        sent?;
        self.events.count_keepalive();
        Ok(())
    }

    /// Sends a frame of the task's own, its order (if any) in the ledger from before the write:
    /// the loop's thread may read the ack before the write returns here. A failed write takes it
    /// out again; the caller reports it.
    async fn send_order(
        &mut self,
        conn: &mut C::Conn,
        frame: String,
        order: Option<PendingOrder>,
    ) -> Result<(), SendFailure> {
        if let Some(order) = order {
            // After the direct writes before it: the ledger keeps the wire order.
            self.adopt_direct();
            self.inbound.ledger().pending.push_back(order);
        }
        let sent = self.send(conn, frame).await;
        if let (Err(_), Some(order)) = (&sent, order) {
            let mut ledger = self.inbound.ledger();
            if let Some(i) = ledger.pending.iter().rposition(|o| *o == order) {
                ledger.pending.remove(i);
            }
        }
        sent
    }

    fn log(&self, level: LogLevel, message: String) {
        self.events.log(level, message);
    }

    /// Books that lost their sync get a fresh snapshot: UNSUBSCRIBE then SUBSCRIBE of their
    /// topics, outside the replay set (they stay subscribed). False when the socket must stop;
    /// a lost connection is left to the receiving side to report.
    async fn resubscribe(&mut self, conn: &mut C::Conn, topics: Vec<String>) -> bool {
        self.log(
            LogLevel::Info,
            format!("order book out of sync; resubscribing {topics:?}"),
        );
        for message in [
            ClientMessage::Unsubscribe {
                id: None,
                params: topics.clone(),
            },
            ClientMessage::Subscribe {
                id: None,
                params: topics,
            },
        ] {
            match self.send(conn, message.to_json()).await {
                Ok(()) => {}
                Err(SendFailure::Stopped) => return false,
                Err(SendFailure::Lost { reason, .. }) => {
                    self.log(
                        LogLevel::Debug,
                        format!("resubscribe failed, connection presumed lost: {reason}"),
                    );
                    return true;
                }
            }
        }
        true
    }

    pub(super) async fn run(mut self) {
        if let Some(conn) = self.first_connect().await {
            self.events.set_connect_state(ConnectState::Connected);
            self.serve(conn).await;
        }
        // Every way out of `serve` ends here: the orders written directly join the ledger, and
        // the connection is let go of.
        self.withdraw();
        self.unack_pending("socket stopped before the ack");
        self.unack_old_pending("socket stopped before the ack");
        self.unsend_queued("not sent: the socket stopped");
        self.events.finish();
    }

    /// Runs `fut` unless the stop signal comes first.
    async fn or_shutdown<T>(&self, fut: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            _ = self.shutdown.wait() => None,
            v = fut => Some(v),
        }
    }

    async fn connect(&self) -> Option<Result<C::Conn, ConnectError>> {
        let bound = self.config.connection_timeout;
        let attempt = timeout(bound, self.connector.connect());
        self.or_shutdown(attempt).await.map(|r| {
            r.unwrap_or_else(|_| {
                Err(ConnectError::new(
                    ConnectErrorKind::Timeout,
                    format!(
                        "no `connected` status within connection_timeout ({:.3}s)",
                        bound.as_secs_f64()
                    ),
                ))
            })
        })
    }

    async fn first_connect(&mut self) -> Option<C::Conn> {
        match self.connect().await {
            None => {
                self.events
                    .set_connect_state(ConnectState::Failed(ConnectError::new(
                        ConnectErrorKind::Io,
                        "stopped before the connection was open",
                    )));
                None
            }
            Some(Err(e)) => {
                self.events.set_connect_state(ConnectState::Failed(e));
                None
            }
            Some(Ok(conn)) => {
                self.connection_opened();
                Some(conn)
            }
        }
    }

    async fn serve(&mut self, mut conn: C::Conn) {
        let idle = self.config.idle_timeout;
        let mut clock = ConnClock::new();
        let idle_timer = sleep(if idle.is_zero() {
            Duration::from_secs(3600)
        } else {
            idle
        });
        tokio::pin!(idle_timer);
        let keepalive = self.config.keepalive_interval;
        let keepalive_timer = sleep(if keepalive.is_zero() {
            Duration::from_secs(3600)
        } else {
            keepalive
        });
        tokio::pin!(keepalive_timer);
        let mut batch: Vec<(ServerMessage, usize)> = Vec::with_capacity(BURST);
        let mut next_loop_check = Instant::now();
        let max_age = self.config.max_connection_age;
        let mut rot: Option<Rotation<C::Conn>> = None;

        loop {
            self.publish(&conn);
            self.adopt_direct();
            // A notice seen while a rotation is under way waits for its end.
            if rot.is_none() {
                let asked = self.inbound.ledger().rotate_for.take();
                if let Some(reason) = asked {
                    rot = Some(self.start_rotation(reason));
                }
            }
            // A rotation's filter needs every message of the current connection.
            self.allow_loop_reads(rot.is_none());
            let rot_deadline = rot.as_ref().and_then(|r| r.deadline);
            let age_due = (!max_age.is_zero() && rot.is_none()).then(|| {
                let due = clock.connected_at + max_age;
                clock.rotation_retry.map_or(due, |r| r.max(due))
            });
            let far = Instant::now() + Duration::from_secs(3600);
            let step = tokio::select! {
                _ = self.shutdown.wait() => Step::Shutdown,
                reason = owed(self.published.as_deref(), idle) => Step::Broken(reason),
                r = conn.recv() => match r {
                    Ok(m) => Step::Message(m),
                    Err(lost) => Step::Lost(lost),
                },
                c = self.commands.recv() => Step::Command(c),
                _ = &mut idle_timer, if !idle.is_zero() => Step::Idle,
                _ = &mut keepalive_timer, if !keepalive.is_zero() => Step::Keepalive,
                _ = self.inbound.wanted() => Step::Wanted,
                _ = loop_check(self.published.as_deref(), next_loop_check), if self.loop_allowed => {
                    Step::LoopCheck
                }
                r = rotation_step(&mut rot) => Step::Rotation(r),
                _ = sleep_until(rot_deadline.unwrap_or(far)), if rot_deadline.is_some() => {
                    Step::RotationDeadline
                }
                _ = sleep_until(age_due.unwrap_or(far)), if age_due.is_some() => Step::Age,
            };
            let lost = match step {
                Step::Shutdown | Step::Command(None) => {
                    self.withdraw();
                    self.flush(&mut conn).await;
                    // What a direct write left in the socket's buffer goes too, in the same grace.
                    if let (Some(wire), Some(deadline)) = (conn.wire(), self.stop_deadline) {
                        let _ = timeout_at(deadline, wire.flush_owed()).await;
                    }
                    if let Some(r) = rot.take() {
                        self.drop_rotation(r, "socket stopped before the ack");
                    }
                    let _ = timeout(CLOSE_GRACE, conn.close()).await;
                    return;
                }
                Step::Message(first) => {
                    clock.last_message = Instant::now();
                    batch.push(first);
                    // Take what is already buffered before handing over: one lock, one wake-up.
                    let mut pending_loss = None;
                    while batch.len() < BURST {
                        match conn.recv().now_or_never() {
                            Some(Ok(m)) => batch.push(m),
                            Some(Err(l)) => {
                                pending_loss = Some(l);
                                break;
                            }
                            None => break,
                        }
                    }
                    self.adopt_direct();
                    {
                        let mut ledger = self.inbound.ledger();
                        self.inbound.admit(&mut ledger, &mut batch);
                    }
                    // Only while two connections are read: the usual path stays as cheap.
                    if let Some(dedup) = rot.as_mut().and_then(Rotation::dedup) {
                        let from_new = dedup.switched;
                        let mut out = Vec::with_capacity(batch.len());
                        for item in batch.drain(..) {
                            dedup.admit(item, from_new, &mut out);
                        }
                        batch = out;
                    }
                    let reads_to_hand =
                        self.published.as_deref().filter(|_| self.config.loop_reads);
                    // The loop may claim the reads again before the ring: the consumer it wakes
                    // claims them at once, and one that always outran this thread would never
                    // claim them (on a busy machine, the loop then never read).
                    let (dropped, resubscribe) =
                        self.books
                            .deliver(&self.events, &mut batch, Instant::now(), || {
                                if let Some(wire) = reads_to_hand {
                                    wire.delivered();
                                }
                            });
                    if dropped > 0 {
                        self.warn_drops(dropped);
                    }
                    if !resubscribe.is_empty() && !self.resubscribe(&mut conn, resubscribe).await {
                        return;
                    }
                    match pending_loss {
                        Some(l) => l.to_string(),
                        None => {
                            if self.rotation_progress(&mut rot, &mut conn) {
                                clock.fresh();
                            }
                            continue;
                        }
                    }
                }
                Step::Lost(l) => l.to_string(),
                Step::Broken(reason) => reason,
                Step::Idle => {
                    let last = match self.inbound.last_loop_message() {
                        Some(l) => l.max(clock.last_message),
                        None => clock.last_message,
                    };
                    let deadline = last + idle;
                    if Instant::now() < deadline {
                        idle_timer.as_mut().reset(deadline);
                        continue;
                    }
                    format!(
                        "no message within idle_timeout ({:.3}s)",
                        idle.as_secs_f64()
                    )
                }
                // Sends move the deadline without touching the timer: it re-arms when it fires.
                Step::Keepalive => {
                    // Direct writes count too: they reset the server's idle clock as well.
                    let last = self
                        .direct
                        .last_write()
                        .map_or(self.last_sent, |d| d.max(self.last_sent));
                    let due = last + keepalive;
                    if Instant::now() < due {
                        keepalive_timer.as_mut().reset(due);
                        continue;
                    }
                    match self.send_keepalive(&mut conn).await {
                        Ok(()) => {}
                        Err(SendFailure::Stopped) => return,
                        // The receiving side reports the loss.
                        Err(SendFailure::Lost { reason, .. }) => self.log(
                            LogLevel::Debug,
                            format!("keepalive send failed, connection presumed lost: {reason}"),
                        ),
                    }
                    keepalive_timer.as_mut().reset(Instant::now() + keepalive);
                    continue;
                }
                Step::Age => {
                    rot = Some(self.start_rotation("max_connection_age".into()));
                    continue;
                }
                // What reads on the loop left: a loss (handed back, read next), drops to warn
                // of, books to resubscribe, a rotation (started at the top of the loop).
                Step::Wanted => {
                    let (dropped, resubscribe) = {
                        let mut ledger = self.inbound.ledger();
                        (
                            std::mem::take(&mut ledger.dropped),
                            std::mem::take(&mut ledger.resubscribe),
                        )
                    };
                    if dropped > 0 {
                        self.warn_drops(dropped);
                    }
                    if !resubscribe.is_empty() && !self.resubscribe(&mut conn, resubscribe).await {
                        return;
                    }
                    continue;
                }
                Step::LoopCheck => {
                    if self
                        .published
                        .as_ref()
                        .is_some_and(|w| w.take_back_if_stalled())
                    {
                        self.log(
                            LogLevel::Debug,
                            "the event loop did not read the socket in time: the socket task reads it"
                                .into(),
                        );
                    }
                    next_loop_check = Instant::now() + LOOP_READ_CHECK;
                    continue;
                }
                Step::Rotation(r) => {
                    let Some(current) = rot.as_mut() else {
                        continue;
                    };
                    match self.on_rotation_step(current, r).await {
                        Ok(()) => {}
                        Err(Some(_)) => return,
                        Err(None) => {
                            rot = None;
                            clock.rotation_retry =
                                Some(Instant::now() + self.config.max_backoff.max(MIN_RETRY));
                        }
                    }
                    if self.rotation_progress(&mut rot, &mut conn) {
                        clock.fresh();
                    }
                    continue;
                }
                Step::RotationDeadline => {
                    if let Some(r) = rot.as_mut() {
                        r.expired = true;
                    }
                    if self.rotation_progress(&mut rot, &mut conn) {
                        clock.fresh();
                    }
                    continue;
                }
                Step::Command(Some(cmd)) => {
                    // Subscriptions changed during the overlap go to both connections.
                    let mirror = match (&cmd, rot.as_ref().map(|r| &r.phase)) {
                        (Command::Subscribe(t, _), Some(Phase::Overlap { .. })) => {
                            Some(ClientMessage::Subscribe {
                                id: None,
                                params: t.clone(),
                            })
                        }
                        (Command::Unsubscribe(t, _), Some(Phase::Overlap { .. })) => {
                            Some(ClientMessage::Unsubscribe {
                                id: None,
                                params: t.clone(),
                            })
                        }
                        _ => None,
                    };
                    let applied = self.apply(cmd, &mut conn).await;
                    // Written, failed or dropped: direct writes may follow it now (after a loss,
                    // not before the next connection is published).
                    self.direct.done();
                    match applied {
                        Applied::Done => {
                            if let (
                                Some(m),
                                Some(Rotation {
                                    phase: Phase::Overlap { new, .. },
                                    ..
                                }),
                            ) = (mirror, rot.as_mut())
                            {
                                // A lost new connection shows up on its receiving side.
                                let _ = timeout(CLOSE_GRACE, new.send(m.to_json())).await;
                            }
                            continue;
                        }
                        Applied::Stopped => return,
                        Applied::Lost { reason, retry } => {
                            match self.recover(&mut rot, reason, conn, &mut clock).await {
                                None => return,
                                Some(new) => conn = new,
                            }
                            idle_timer.as_mut().reset(clock.last_message + idle);
                            // A frame whose write failed before any byte left gets one more try.
                            if let Some(Retry { frame, order }) = retry {
                                match self.send_order(&mut conn, frame, order).await {
                                    Ok(()) => {}
                                    Err(SendFailure::Stopped) => {
                                        if let Some(order) = order {
                                            self.unacked(
                                                order,
                                                "socket stopped while writing".into(),
                                            );
                                        }
                                        return;
                                    }
                                    Err(SendFailure::Lost { reason, .. }) => match order {
                                        Some(order) => self.unacked(
                                            order,
                                            format!("retry after reconnect failed: {reason}"),
                                        ),
                                        None => self.log(
                                            LogLevel::Warning,
                                            format!("retry after reconnect failed: {reason}"),
                                        ),
                                    },
                                }
                            }
                            continue;
                        }
                    }
                }
            };
            // The old connection of a rotation ended: the new one, already replayed, takes over.
            if matches!(rot.as_ref().map(|r| &r.phase), Some(Phase::Overlap { .. })) {
                let current = rot.as_mut().expect("just matched");
                self.switch(current, &mut conn, Some(lost));
                clock.fresh();
                if self.rotation_progress(&mut rot, &mut conn) {
                    clock.fresh();
                }
                idle_timer.as_mut().reset(clock.last_message + idle);
                continue;
            }
            match self.recover(&mut rot, lost, conn, &mut clock).await {
                None => return,
                Some(new) => conn = new,
            }
            idle_timer.as_mut().reset(clock.last_message + idle);
        }
    }

    /// A lost connection: abandon a rotation under way (its orders become unacked), then
    /// reconnect with the backoff. None when the socket stopped or gave up.
    async fn recover(
        &mut self,
        rot: &mut Option<Rotation<C::Conn>>,
        lost: String,
        conn: C::Conn,
        clock: &mut ConnClock,
    ) -> Option<C::Conn> {
        self.withdraw();
        if let Some(r) = rot.take() {
            self.drop_rotation(r, &format!("connection lost before the ack: {lost}"));
        }
        let uptime = clock.connected_at.elapsed();
        let new = self
            .reconnect(lost, conn, uptime, clock.reconnected)
            .await?;
        clock.fresh();
        clock.reconnected = true;
        Some(new)
    }

    /// Opens the next connection in the background; the current one serves meanwhile.
    fn start_rotation(&mut self, reason: String) -> Rotation<C::Conn> {
        self.log(
            LogLevel::Info,
            format!("rotating to a new connection ({reason})"),
        );
        let connector = self.connector.clone();
        let bound = self.config.connection_timeout;
        let opening = tokio::spawn(async move {
            timeout(bound, connector.connect())
                .await
                .unwrap_or_else(|_| {
                    Err(ConnectError::new(
                        ConnectErrorKind::Timeout,
                        format!(
                            "no `connected` status within connection_timeout ({:.3}s)",
                            bound.as_secs_f64()
                        ),
                    ))
                })
        });
        Rotation {
            reason,
            phase: Phase::Opening(opening),
            dedup: Dedup::default(),
            deadline: None,
            expired: false,
            opened_at: Instant::now(),
            caught_up: false,
        }
    }

    /// Delivers what a rotation's dedup let through, books first, as the main path does. A
    /// resubscribe it asks for is left to the book's own retry (`RESUBSCRIBE_EVERY`): while
    /// two connections are read, a snapshot asked for on either may be the one the dedup drops.
    fn deliver_rotating(&mut self, out: &mut Vec<Item>) -> u64 {
        let (dropped, resubscribe) = self.books.deliver(&self.events, out, Instant::now(), || {});
        if !resubscribe.is_empty() {
            self.log(
                LogLevel::Debug,
                format!("order book out of sync during a rotation; retried later {resubscribe:?}"),
            );
        }
        dropped
    }

    /// Err(None): the rotation failed (the current connection goes on); Err(Some(())): stopped.
    async fn on_rotation_step(
        &mut self,
        rot: &mut Rotation<C::Conn>,
        step: RotationStep<C::Conn>,
    ) -> Result<(), Option<()>> {
        match step {
            RotationStep::Opened(Err(e)) => {
                self.log(
                    LogLevel::Warning,
                    format!("rotation failed, staying on the current connection: {e}"),
                );
                Err(None)
            }
            RotationStep::Opened(Ok(mut new)) => {
                if !self.replay.order.is_empty() {
                    let frame = ClientMessage::Subscribe {
                        id: None,
                        params: self.replay.order.clone(),
                    }
                    .to_json();
                    match self.send(&mut new, frame).await {
                        Ok(()) => {}
                        Err(SendFailure::Stopped) => return Err(Some(())),
                        Err(SendFailure::Lost { reason, .. }) => {
                            self.log(
                                LogLevel::Warning,
                                format!("rotation failed, the new connection was lost: {reason}"),
                            );
                            return Err(None);
                        }
                    }
                } else {
                    rot.dedup.replay_acked = true;
                    rot.dedup.nothing_replayed = true;
                }
                rot.opened_at = Instant::now();
                rot.deadline = Some(rot.opened_at + ROTATION_CATCH_UP);
                rot.phase = Phase::Overlap { new };
                Ok(())
            }
            RotationStep::Received(first) => {
                let from_new = matches!(rot.phase, Phase::Overlap { .. });
                let mut burst = vec![first];
                let mut loss = None;
                if let Some(second) = rot.second() {
                    while burst.len() < BURST {
                        match second.recv().now_or_never() {
                            Some(Ok(m)) => burst.push(m),
                            Some(Err(l)) => {
                                loss = Some(l);
                                break;
                            }
                            None => break,
                        }
                    }
                }
                if !from_new && !self.old_pending.is_empty() {
                    settle(&mut self.old_pending, &burst);
                }
                let mut out = Vec::with_capacity(burst.len());
                for item in burst {
                    rot.dedup.admit(item, from_new, &mut out);
                }
                let dropped = self.deliver_rotating(&mut out);
                if dropped > 0 {
                    self.warn_drops(dropped);
                }
                match loss {
                    Some(l) => self.second_lost(rot, l),
                    None => Ok(()),
                }
            }
            RotationStep::Lost(l) => self.second_lost(rot, l),
        }
    }

    fn second_lost(&mut self, rot: &mut Rotation<C::Conn>, lost: Lost) -> Result<(), Option<()>> {
        match &mut rot.phase {
            Phase::Overlap { .. } => {
                self.log(
                    LogLevel::Warning,
                    format!("rotation failed, the new connection was lost: {lost}"),
                );
                Err(None)
            }
            Phase::Draining { old } => {
                *old = None;
                self.unack_old_pending(&format!("connection lost before the ack: {lost}"));
                Ok(())
            }
            Phase::Opening(_) => Ok(()),
        }
    }

    /// Moves on when it can: switches once the new connection caught up (or the catch-up time
    /// ran out), closes the old one once its orders are settled (or the drain time ran out),
    /// and ends the rotation when nothing is left to filter. True when it switched.
    fn rotation_progress(
        &mut self,
        rot: &mut Option<Rotation<C::Conn>>,
        conn: &mut C::Conn,
    ) -> bool {
        let Some(r) = rot.as_mut() else {
            return false;
        };
        let mut switched = false;
        if matches!(r.phase, Phase::Overlap { .. }) && (r.expired || r.dedup.caught_up()) {
            self.switch(r, conn, None);
            switched = true;
        }
        if let Phase::Draining { old } = &mut r.phase {
            if old.is_some() && (self.old_pending.is_empty() || r.expired) {
                if let Some(old) = old.take() {
                    tokio::spawn(async move {
                        let _ = timeout(CLOSE_GRACE, old.close()).await;
                    });
                }
                self.unack_old_pending(&format!(
                    "connection closed before the ack: rotated away, no ack within {ROTATION_DRAIN:?}"
                ));
            }
            if old.is_none() && (r.caught_up || r.expired) {
                *rot = None;
            }
        }
        switched
    }

    /// The new connection becomes the current one; `lost`: the old one is gone already.
    fn switch(&mut self, rot: &mut Rotation<C::Conn>, conn: &mut C::Conn, lost: Option<String>) {
        let Phase::Overlap { new } =
            std::mem::replace(&mut rot.phase, Phase::Draining { old: None })
        else {
            return;
        };
        self.withdraw();
        rot.caught_up = rot.dedup.caught_up();
        let mut out = Vec::new();
        rot.dedup.force_switch(&mut out);
        let dropped = self.deliver_rotating(&mut out);
        if dropped > 0 {
            self.warn_drops(dropped);
        }
        let old = std::mem::replace(conn, new);
        // A notice seen on the old connection during the overlap concerned the old one.
        let pending = {
            let mut ledger = self.inbound.ledger();
            ledger.rotate_for = None;
            std::mem::take(&mut ledger.pending)
        };
        self.old_pending.extend(pending);
        self.connection_opened();
        let overlap = rot.opened_at.elapsed();
        match lost {
            Some(reason) => {
                self.unack_old_pending(&format!("connection lost before the ack: {reason}"));
            }
            None => rot.phase = Phase::Draining { old: Some(old) },
        }
        rot.expired = false;
        rot.deadline = Some(Instant::now() + ROTATION_DRAIN);
        self.log(
            LogLevel::Info,
            format!(
                "rotated to the new connection ({}) after {:.3}s of overlap{}",
                rot.reason,
                overlap.as_secs_f64(),
                if rot.caught_up {
                    ""
                } else {
                    "; not every stream had caught up"
                }
            ),
        );
        self.events.count_rotation();
        self.events.push_event(Event::Rotated {
            reason: rot.reason.clone(),
            overlap,
        });
    }

    /// Abandons a rotation: its other connection is closed, and the orders waiting on the old
    /// one become `OrderUnacked(reason)`.
    fn drop_rotation(&mut self, rot: Rotation<C::Conn>, reason: &str) {
        match rot.phase {
            Phase::Opening(task) => task.abort(),
            Phase::Overlap { new: other } | Phase::Draining { old: Some(other) } => {
                tokio::spawn(async move {
                    let _ = timeout(CLOSE_GRACE, other.close()).await;
                });
            }
            Phase::Draining { old: None } => {}
        }
        self.unack_old_pending(reason);
    }

    fn warn_drops(&mut self, dropped: u64) {
        self.drops_since_warning += dropped;
        let now = Instant::now();
        if self
            .last_drop_warning
            .is_none_or(|t| now.duration_since(t) >= DROP_WARNING_EVERY)
        {
            self.log(
                LogLevel::Warning,
                format!(
                    "event queue full (channel_capacity {}): dropped {} events, consumer too slow",
                    self.config.channel_capacity, self.drops_since_warning
                ),
            );
            self.last_drop_warning = Some(now);
            self.drops_since_warning = 0;
        }
    }

    /// Sends one command. Returns `Some((reason, order_to_retry))` when the connection must be
    /// replaced.
    async fn apply(&mut self, cmd: Command, conn: &mut C::Conn) -> Applied {
        let (message, retried) = match cmd {
            Command::Subscribe(topics, id) => {
                let new = self.replay.insert_new(topics);
                if new.is_empty() {
                    return Applied::Done;
                }
                (ClientMessage::Subscribe { id, params: new }, false)
            }
            Command::Unsubscribe(topics, id) => {
                let gone = self.replay.remove_present(topics);
                if gone.is_empty() {
                    return Applied::Done;
                }
                (ClientMessage::Unsubscribe { id, params: gone }, false)
            }
            Command::Send(m, queued_at) => {
                if let (Some(order), Some(max)) = (order_of(&m), self.config.order_max_age) {
                    let waited = queued_at.elapsed();
                    if waited > max {
                        self.unacked(
                            order,
                            format!(
                                "not sent: waited {:.3}s, longer than order_max_age ({:.3}s)",
                                waited.as_secs_f64(),
                                max.as_secs_f64()
                            ),
                        );
                        return Applied::Done;
                    }
                }
                (m, true)
            }
        };
        let method = message.method();
        let order = order_of(&message);
        let frame = message.to_json();
        if frame.len() > self.config.max_message_size {
            self.log(
                LogLevel::Error,
                format!(
                    "not sent: a {method} frame of {} bytes exceeds max_message_size ({})",
                    frame.len(),
                    self.config.max_message_size
                ),
            );
            return Applied::Done;
        }
        let keep = retried.then(|| frame.clone());
        match self.send_order(conn, frame, order).await {
            Ok(()) => Applied::Done,
            Err(SendFailure::Stopped) => {
                if let Some(order) = order {
                    self.unacked(order, "socket stopped while writing".into());
                }
                Applied::Stopped
            }
            // Subscriptions are in the replay set.
            Err(SendFailure::Lost { reason, .. }) if !retried => {
                self.log(
                    LogLevel::Debug,
                    format!("send failed, connection presumed lost: {reason}"),
                );
                Applied::Done
            }
            // Bytes of an order left: the exchange may have it, so it is never sent again.
            Err(SendFailure::Lost {
                reason,
                written: true,
            }) if order.is_some() => {
                if let Some(order) = order {
                    self.unacked(order, format!("connection lost while writing: {reason}"));
                }
                Applied::Lost {
                    reason: send_failed(method, &reason),
                    retry: None,
                }
            }
            Err(SendFailure::Lost { reason, .. }) => {
                if keep.is_some() {
                    // The frame goes again on the next connection: what is left of it here must
                    // never be flushed.
                    conn.poison(&reason);
                }
                Applied::Lost {
                    reason: send_failed(method, &reason),
                    retry: keep.map(|frame| Retry { frame, order }),
                }
            }
        }
    }

    /// Sends one frame, unless the stop signal comes first, or the peer stops reading for longer
    /// than `idle_timeout`: a full socket buffer must never freeze the task.
    async fn send(&mut self, conn: &mut C::Conn, frame: String) -> Result<(), SendFailure> {
        let idle = self.config.idle_timeout;
        let stall = async {
            if idle.is_zero() {
                std::future::pending::<()>().await
            } else {
                sleep(idle).await
            }
        };
        // A write under way when the stop comes may finish within STOP_GRACE: cutting it short
        // could leave half a frame, and an order in an unknown state.
        let stopped = async {
            match self.stop_deadline {
                Some(deadline) => sleep_until(deadline).await,
                None => {
                    self.shutdown.wait().await;
                    sleep(STOP_GRACE).await
                }
            }
        };
        let before = conn.bytes_written();
        let outcome = tokio::select! {
            biased;
            r = conn.send(frame) => r.map_err(|e| e.to_string()),
            _ = stopped => return Err(SendFailure::Stopped),
            _ = stall => Err(stalled(idle)),
        };
        match outcome {
            Ok(()) => {
                self.last_sent = Instant::now();
                Ok(())
            }
            Err(reason) => Err(SendFailure::Lost {
                reason,
                written: conn.bytes_written() != before,
            }),
        }
    }

    /// The reconnect procedure. `None` means the task must end.
    async fn reconnect(
        &mut self,
        reason: String,
        old: C::Conn,
        uptime: Duration,
        reconnected: bool,
    ) -> Option<C::Conn> {
        // A late close handshake must not hold up the new connection.
        tokio::spawn(async move {
            let _ = timeout(CLOSE_GRACE, old.close()).await;
        });
        self.log(
            LogLevel::Warning,
            format!("connection lost ({reason}); reconnecting"),
        );
        let unacked = format!("connection lost before the ack: {reason}");
        // Before the first `Reconnecting`: a consumer that sees it must find the books out of sync.
        self.books.connection_lost(Instant::now());
        self.backoff.connection_lost(uptime, reconnected);
        let lost_at = Instant::now();
        // Why the next attempt is made (`Reconnecting.reason`): the loss, then the last failure.
        // The texts are `bullet_ws._policy`'s.
        let mut reason = reason;
        let mut attempts: u64 = 0;
        loop {
            if self.shutdown.is_set() {
                return None;
            }
            attempts += 1;
            if let Some(max) = self.config.max_retries {
                if attempts > max {
                    // max_retries=0: no attempt, no `Reconnecting`; the orders are still told.
                    self.unack_pending(&unacked);
                    let reason = format!("exhausted {max} reconnect attempts");
                    self.log(LogLevel::Error, format!("giving up: {reason}"));
                    self.unsend_queued(&format!("not sent: {reason}"));
                    self.events.push_final(Event::Disconnected { reason });
                    return None;
                }
            }
            let delay = self.backoff.delay(&mut self.rng);
            self.log(
                LogLevel::Info,
                format!(
                    "reconnect attempt {attempts} in {:.3}s (backoff {:.3}s)",
                    delay.as_secs_f64(),
                    self.backoff.current().as_secs_f64()
                ),
            );
            self.events.push_event(Event::Reconnecting {
                reason: std::mem::take(&mut reason),
                attempt: attempts,
                delay,
            });
            if attempts == 1 {
                self.unack_pending(&unacked);
            }
            self.or_shutdown(sleep(delay)).await?;
            let mut conn = match self.connect().await? {
                Ok(conn) => {
                    self.connection_opened();
                    conn
                }
                Err(e) => {
                    reason = format!("reconnect attempt {attempts} failed: {e}");
                    self.log(LogLevel::Warning, reason.clone());
                    self.backoff.failed();
                    continue;
                }
            };
            if !self.replay.order.is_empty() {
                let frame = ClientMessage::Subscribe {
                    id: None,
                    params: self.replay.order.clone(),
                }
                .to_json();
                if frame.len() > self.config.max_message_size {
                    let reason = format!(
                        "subscription replay failed: the replay frame of {} bytes exceeds max_message_size ({})",
                        frame.len(),
                        self.config.max_message_size
                    );
                    self.log(LogLevel::Error, format!("giving up: {reason}"));
                    self.unsend_queued(&format!("not sent: {reason}"));
                    self.events.push_final(Event::Disconnected { reason });
                    return None;
                }
                match self.send(&mut conn, frame).await {
                    Ok(()) => {}
                    Err(SendFailure::Stopped) => return None,
                    Err(SendFailure::Lost { reason: e, .. }) => {
                        self.log(
                            LogLevel::Warning,
                            format!("replay lost the new connection ({e}); retrying"),
                        );
                        reason = format!(
                            "reconnect attempt {attempts} failed: the subscription replay lost the new connection: {e}"
                        );
                        self.backoff.failed();
                        continue;
                    }
                }
            }
            self.log(
                LogLevel::Info,
                format!(
                    "reconnected after {attempts} attempt(s); replayed {} topic(s)",
                    self.replay.order.len()
                ),
            );
            self.events.count_reconnect();
            self.events.push_event(Event::Reconnected {
                attempts,
                downtime: lost_at.elapsed(),
            });
            return Some(conn);
        }
    }
}
