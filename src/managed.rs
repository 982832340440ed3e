//! The managed socket: a background task that owns the connection, replays subscriptions after
//! every reconnect, and never lets a slow consumer stall the socket. The behaviour is the Bullet
//! SDK's `ManagedWebsocket` (see docs/PROTOCOL.md §5.4), with the backoff fix of `backoff.rs`,
//! `Reconnected` events, and bounds on sizes. Nothing here knows about Python.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use parking_lot::Mutex;
use tokio::sync::{mpsc, Notify};
use tokio::time::{sleep, timeout, Instant};

use crate::backoff::Backoff;
use crate::bridge::{ConnectState, Event, EventQueue, LogLevel};
use crate::config::{Config, COMMAND_CAPACITY};
use crate::protocol::client::{json_string_len, topics_frame_len};
use crate::protocol::{ClientMessage, OrderMethod, ServerMessage};
use crate::transport::{ConnectError, ConnectErrorKind, Connection, Connector, Lost};

/// Why a command was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    Stopped,
    Busy,
    /// Its frame (or, for a subscribe, the replay frame it would make) exceeds
    /// `max_message_size`: it could never be sent, so it is refused at the call.
    TooLarge {
        argument: &'static str,
        frame: &'static str,
        size: usize,
        max: usize,
    },
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandError::Stopped => f.write_str("managed websocket is stopped"),
            CommandError::Busy => f.write_str("managed websocket command channel is full"),
            // The pure backend's text is identical (python/bullet_ws/pure/managed.py).
            CommandError::TooLarge {
                argument,
                frame,
                size,
                max,
            } => write!(
                f,
                "{argument}: the {frame} frame would be {size} bytes, over max_message_size ({max})"
            ),
        }
    }
}

#[derive(Debug)]
enum Command {
    Subscribe(Vec<String>, Option<u64>),
    Unsubscribe(Vec<String>, Option<u64>),
    /// Orders are retried once on a new connection when their send fails.
    Order(ClientMessage),
    /// Requests that are simply lost with their connection.
    Request(ClientMessage),
}

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

/// Topics in subscription order, for `topics` and for the replay.
#[derive(Default, Debug, Clone)]
struct TopicSet {
    order: Vec<String>,
    members: HashSet<String>,
    /// The members' summed `json_string_len`: the replay frame's size without building it.
    encoded: usize,
}

impl TopicSet {
    fn insert_new(&mut self, topics: Vec<String>) -> Vec<String> {
        let new: Vec<String> = topics
            .into_iter()
            .filter(|t| self.members.insert(t.clone()))
            .collect();
        self.encoded += new.iter().map(|t| json_string_len(t)).sum::<usize>();
        self.order.extend(new.iter().cloned());
        new
    }

    fn remove_present(&mut self, topics: Vec<String>) -> Vec<String> {
        let gone: Vec<String> = topics
            .into_iter()
            .filter(|t| self.members.remove(t))
            .collect();
        if !gone.is_empty() {
            self.encoded -= gone.iter().map(|t| json_string_len(t)).sum::<usize>();
            self.order.retain(|t| self.members.contains(t));
        }
        gone
    }

    fn replay_frame_len(&self) -> usize {
        topics_frame_len("SUBSCRIBE", None, self.order.len(), self.encoded)
    }
}

/// The user's handle. Commands are fire-and-forget: they are queued for the task and return.
/// Dropping the handle stops the task.
pub struct ManagedHandle {
    commands: mpsc::Sender<Command>,
    shutdown: Arc<Shutdown>,
    events: Arc<EventQueue>,
    /// Deduplicated at call time so that `topics()` reflects a call at once; the task applies the
    /// commands in order, so its replay set never runs ahead of a queued subscribe.
    topics: Mutex<TopicSet>,
    max_message_size: usize,
}

impl ManagedHandle {
    /// Spawns the task, which opens the first connection (not retried, as in the SDK) and reports
    /// the outcome through `events.connect_state()`.
    pub fn spawn<C: Connector>(
        runtime: &tokio::runtime::Handle,
        connector: C,
        config: Config,
        events: Arc<EventQueue>,
    ) -> Self {
        let (commands, rx) = mpsc::channel(COMMAND_CAPACITY);
        let shutdown = Arc::new(Shutdown::default());
        let max_message_size = config.max_message_size;
        let task = Task::new(connector, config, events.clone(), rx, shutdown.clone());
        runtime.spawn(guarded(task.run(), events.clone()));
        ManagedHandle {
            commands,
            shutdown,
            events,
            topics: Mutex::new(TopicSet::default()),
            max_message_size,
        }
    }

    fn check_size(
        &self,
        argument: &'static str,
        frame: &'static str,
        size: usize,
    ) -> Result<(), CommandError> {
        if size > self.max_message_size {
            return Err(CommandError::TooLarge {
                argument,
                frame,
                size,
                max: self.max_message_size,
            });
        }
        Ok(())
    }

    pub fn events(&self) -> &Arc<EventQueue> {
        &self.events
    }

    fn check_running(&self) -> Result<(), CommandError> {
        // `ended` is set before the task drops its receiver: a consumer that saw the end must
        // never be able to queue a command.
        if self.shutdown.is_set() || self.events.is_ended() || self.commands.is_closed() {
            Err(CommandError::Stopped)
        } else {
            Ok(())
        }
    }

    fn queue(&self, command: Command) -> Result<(), CommandError> {
        self.commands.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => CommandError::Busy,
            mpsc::error::TrySendError::Closed(_) => CommandError::Stopped,
        })
    }

    /// Returns the topics actually sent (none when all were active already).
    pub fn subscribe(
        &self,
        topics: Vec<String>,
        id: Option<u64>,
    ) -> Result<Vec<String>, CommandError> {
        self.change_topics(
            "SUBSCRIBE",
            id,
            |set| set.insert_new(topics),
            |new| Command::Subscribe(new, id),
        )
    }

    /// Returns the topics actually sent (only those that were active).
    pub fn unsubscribe(
        &self,
        topics: Vec<String>,
        id: Option<u64>,
    ) -> Result<Vec<String>, CommandError> {
        self.change_topics(
            "UNSUBSCRIBE",
            id,
            |set| set.remove_present(topics),
            |gone| Command::Unsubscribe(gone, id),
        )
    }

    /// Applies `edit` to the topic set and queues the command for what changed; nothing is
    /// queued when nothing changed, and the set is left exactly as it was when the command is
    /// refused: too large (its own frame, or the replay frame of the new set), or not queued.
    fn change_topics(
        &self,
        method: &'static str,
        id: Option<u64>,
        edit: impl FnOnce(&mut TopicSet) -> Vec<String>,
        command: impl FnOnce(Vec<String>) -> Command,
    ) -> Result<Vec<String>, CommandError> {
        self.check_running()?;
        let mut set = self.topics.lock();
        let before = set.clone();
        let changed = edit(&mut set);
        if !changed.is_empty() {
            let encoded = changed.iter().map(|t| json_string_len(t)).sum();
            let size = topics_frame_len(method, id, changed.len(), encoded);
            let queued = self
                .check_size("topics", method, size)
                .and_then(|()| {
                    self.check_size("topics", "subscription replay", set.replay_frame_len())
                })
                .and_then(|()| self.queue(command(changed.clone())));
            if let Err(e) = queued {
                *set = before;
                return Err(e);
            }
        }
        Ok(changed)
    }

    pub fn order(
        &self,
        method: OrderMethod,
        tx: String,
        id: Option<u64>,
    ) -> Result<(), CommandError> {
        self.check_running()?;
        let message = ClientMessage::Order { method, id, tx };
        self.check_size("tx", method.wire(), message.to_json().len())?;
        self.queue(Command::Order(message))
    }

    pub fn list_subscriptions(&self, id: Option<u64>) -> Result<(), CommandError> {
        self.check_running()?;
        self.queue(Command::Request(ClientMessage::ListSubscriptions { id }))
    }

    pub fn ping(&self, id: Option<u64>) -> Result<(), CommandError> {
        self.check_running()?;
        self.queue(Command::Request(ClientMessage::Ping { id }))
    }

    pub fn topics(&self) -> Vec<String> {
        self.topics.lock().order.clone()
    }

    /// Ends the task at its next await point, even mid-reconnect; queued commands are not sent.
    pub fn stop(&self) {
        self.shutdown.trigger();
    }

    pub fn is_stopped(&self) -> bool {
        self.shutdown.is_set() || self.events.is_ended()
    }
}

impl Drop for ManagedHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A bug in the task must end the socket visibly, never leave the consumer waiting forever.
async fn guarded(task: impl Future<Output = ()>, events: Arc<EventQueue>) {
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
const DROP_WARNING_EVERY: Duration = Duration::from_secs(1);
/// A polite close frame must not delay anything.
const CLOSE_GRACE: Duration = Duration::from_millis(250);

struct Task<C: Connector> {
    connector: C,
    config: Config,
    events: Arc<EventQueue>,
    commands: mpsc::Receiver<Command>,
    shutdown: Arc<Shutdown>,
    backoff: Backoff,
    rng: fastrand::Rng,
    replay: TopicSet,
    last_drop_warning: Option<Instant>,
    drops_since_warning: u64,
}

/// What became of a command.
enum Applied {
    Done,
    Stopped,
    /// The connection is gone; `retry` is an order frame to send once on the next one.
    Lost {
        reason: String,
        retry: Option<String>,
    },
}

enum SendFailure {
    Stopped,
    Lost(String),
}

/// What woke the loop.
#[allow(clippy::large_enum_variant)]
enum Step {
    Shutdown,
    Message((ServerMessage, usize)),
    Lost(Lost),
    Command(Option<Command>),
    Idle,
}

impl<C: Connector> Task<C> {
    fn new(
        connector: C,
        config: Config,
        events: Arc<EventQueue>,
        commands: mpsc::Receiver<Command>,
        shutdown: Arc<Shutdown>,
    ) -> Self {
        Task {
            backoff: Backoff::new(&config),
            connector,
            config,
            events,
            commands,
            shutdown,
            rng: fastrand::Rng::new(),
            replay: TopicSet::default(),
            last_drop_warning: None,
            drops_since_warning: 0,
        }
    }

    fn log(&self, level: LogLevel, message: String) {
        self.events.log(level, message);
    }

    async fn run(mut self) {
        if let Some(conn) = self.first_connect().await {
            self.events.set_connect_state(ConnectState::Connected);
            self.serve(conn).await;
        }
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
                        "no `connected` status within connection_timeout ({:?})",
                        bound
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
            Some(Ok(conn)) => Some(conn),
        }
    }

    async fn serve(&mut self, mut conn: C::Conn) {
        let idle = self.config.idle_timeout;
        let mut last_message = Instant::now();
        let mut connected_at = Instant::now();
        let mut reconnected = false;
        let idle_timer = sleep(if idle.is_zero() {
            Duration::from_secs(3600)
        } else {
            idle
        });
        tokio::pin!(idle_timer);
        let mut batch: Vec<(ServerMessage, usize)> = Vec::with_capacity(BURST);

        loop {
            let step = tokio::select! {
                _ = self.shutdown.wait() => Step::Shutdown,
                r = conn.recv() => match r {
                    Ok(m) => Step::Message(m),
                    Err(lost) => Step::Lost(lost),
                },
                c = self.commands.recv() => Step::Command(c),
                _ = &mut idle_timer, if !idle.is_zero() => Step::Idle,
            };
            let lost = match step {
                Step::Shutdown | Step::Command(None) => {
                    let _ = timeout(CLOSE_GRACE, conn.close()).await;
                    return;
                }
                Step::Message(first) => {
                    last_message = Instant::now();
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
                    let dropped = self.events.push_messages(&mut batch);
                    if dropped > 0 {
                        self.warn_drops(dropped);
                    }
                    match pending_loss {
                        Some(l) => l.to_string(),
                        None => continue,
                    }
                }
                Step::Lost(l) => l.to_string(),
                Step::Idle => {
                    let deadline = last_message + idle;
                    if Instant::now() < deadline {
                        idle_timer.as_mut().reset(deadline);
                        continue;
                    }
                    format!("no message within idle_timeout ({:?})", idle)
                }
                Step::Command(Some(cmd)) => match self.apply(cmd, &mut conn).await {
                    Applied::Done => continue,
                    Applied::Stopped => return,
                    Applied::Lost { reason, retry } => {
                        let uptime = connected_at.elapsed();
                        match self.reconnect(reason, conn, uptime, reconnected).await {
                            None => return,
                            Some(new) => {
                                conn = new;
                                (connected_at, last_message, reconnected) =
                                    (Instant::now(), Instant::now(), true);
                                idle_timer.as_mut().reset(last_message + idle);
                            }
                        }
                        // The order whose send found the connection dead gets one more try.
                        if let Some(frame) = retry {
                            match self.send(&mut conn, frame).await {
                                Ok(()) => {}
                                Err(SendFailure::Stopped) => return,
                                Err(SendFailure::Lost(e)) => self.log(
                                    LogLevel::Warning,
                                    format!("order lost: resend after reconnect failed: {e}"),
                                ),
                            }
                        }
                        continue;
                    }
                },
            };
            let uptime = connected_at.elapsed();
            match self.reconnect(lost, conn, uptime, reconnected).await {
                None => return,
                Some(new) => {
                    conn = new;
                    (connected_at, last_message, reconnected) =
                        (Instant::now(), Instant::now(), true);
                    idle_timer.as_mut().reset(last_message + idle);
                }
            }
        }
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
        let (message, is_order) = match cmd {
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
            Command::Order(m) => (m, true),
            Command::Request(m) => (m, false),
        };
        let frame = message.to_json();
        if frame.len() > self.config.max_message_size {
            self.log(
                LogLevel::Error,
                format!(
                    "not sent: a {} frame of {} bytes exceeds max_message_size ({})",
                    if is_order { "order" } else { "request" },
                    frame.len(),
                    self.config.max_message_size
                ),
            );
            return Applied::Done;
        }
        let keep = if is_order { Some(frame.clone()) } else { None };
        match self.send(conn, frame).await {
            Ok(()) => Applied::Done,
            Err(SendFailure::Stopped) => Applied::Stopped,
            // Subscriptions are in the replay set; other requests die with their connection.
            Err(SendFailure::Lost(e)) if !is_order => {
                self.log(
                    LogLevel::Debug,
                    format!("send failed, connection presumed lost: {e}"),
                );
                Applied::Done
            }
            Err(SendFailure::Lost(e)) => Applied::Lost {
                reason: format!("order send failed: {e}"),
                retry: keep,
            },
        }
    }

    /// Sends one frame, unless the stop signal comes first, or the peer stops reading for longer
    /// than `idle_timeout`: a full socket buffer must never freeze the task.
    async fn send(&self, conn: &mut C::Conn, frame: String) -> Result<(), SendFailure> {
        let idle = self.config.idle_timeout;
        let stall = async {
            if idle.is_zero() {
                std::future::pending::<()>().await
            } else {
                sleep(idle).await
            }
        };
        tokio::select! {
            biased;
            _ = self.shutdown.wait() => Err(SendFailure::Stopped),
            r = conn.send(frame) => r.map_err(|e| SendFailure::Lost(e.to_string())),
            _ = stall => Err(SendFailure::Lost(format!("send stalled for idle_timeout ({idle:?})"))),
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
        self.events.push_event(Event::Reconnecting { reason });
        self.backoff.connection_lost(uptime, reconnected);
        let lost_at = Instant::now();
        let mut attempts: u64 = 0;
        loop {
            if self.shutdown.is_set() {
                return None;
            }
            attempts += 1;
            if let Some(max) = self.config.max_retries {
                if attempts > max {
                    let reason = format!("exhausted {max} reconnect attempts");
                    self.log(LogLevel::Error, format!("giving up: {reason}"));
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
            self.or_shutdown(sleep(delay)).await?;
            let mut conn = match self.connect().await? {
                Ok(conn) => conn,
                Err(e) => {
                    self.log(
                        LogLevel::Warning,
                        format!("reconnect attempt {attempts} failed: {e}"),
                    );
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
                    self.events.push_final(Event::Disconnected { reason });
                    return None;
                }
                match self.send(&mut conn, frame).await {
                    Ok(()) => {}
                    Err(SendFailure::Stopped) => return None,
                    Err(SendFailure::Lost(e)) => {
                        self.log(
                            LogLevel::Warning,
                            format!("replay lost the new connection ({e}); retrying"),
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

/// The process-wide tokio runtime: one I/O thread beside the user's loop thread.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bullet-ws-io")
            .enable_all()
            .build()
            .expect("cannot start the bullet-ws tokio runtime")
    })
}

#[cfg(test)]
mod tests;
