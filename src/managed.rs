//! The managed socket: a background task that owns the connection, replays subscriptions after
//! every reconnect, and never lets a slow consumer stall the socket. The behaviour is the Bullet
//! SDK's `ManagedWebsocket` (see docs/PROTOCOL.md §5.4), with the backoff fix of `backoff.rs`,
//! `Reconnected` events, and bounds on sizes. Nothing here knows about Python.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::book::Books;
use crate::config::{Config, COMMAND_CAPACITY};
use crate::event_queue::EventQueue;
use crate::protocol::client::{json_string_len, topics_frame_len};
use crate::protocol::{ClientMessage, OrderMethod};
use crate::transport::Connector;
use crate::wire::Direct;
pub use crate::wire::LoopRead;
use direct::DirectPath;
use inbound::Inbound;

mod direct;
mod inbound;
mod rotation;
mod shutdown;
mod task;
mod topics;

#[cfg(all(test, target_os = "linux"))]
mod loop_reads_tests;

pub use rotation::MAX_HELD as ROTATION_MAX_HELD;
pub use shutdown::Shutdown;
use task::{guarded, order_of, Task};
pub use task::{
    CLOSE_GRACE, DROP_WARNING_EVERY, MAX_OUTSTANDING_KEEPALIVES, MIN_RETRY, ROTATION_CATCH_UP,
    ROTATION_DRAIN,
};
use topics::TopicSet;

/// Reads on the event loop's thread (`Config::loop_reads`), for the Python glue.
#[derive(Clone)]
pub struct LoopReader(Arc<Inbound>);

impl LoopReader {
    /// Takes over the reads of the current connection when the task allows it. When it just
    /// did: the socket to watch (a duplicate, which the loop closes when it stops watching); it
    /// must then read at once, and whenever the socket is readable.
    pub fn claim(&self) -> Option<crate::tcp::Lent> {
        self.0.claim()
    }

    /// Gives the reads back to the task: the loop could not watch the socket.
    pub fn give_back(&self) {
        self.0.give_back()
    }

    /// Whether the loop owns the reads of the current connection (a lock and an atomic load).
    pub fn owns(&self) -> bool {
        self.0.owns()
    }

    /// Reads, parses and queues what the socket has, as the task would have.
    pub fn read(&self) -> LoopRead {
        self.0.read_on_loop()
    }
}

/// How long a stopping socket keeps writing: the commands queued before `stop()`, and a write
/// already under way. Documented in docs/API.md ("flush on close").
pub const STOP_GRACE: Duration = Duration::from_secs(1);
/// Keepalive pings take their ids from the top 2**32 ids of u64, which the Python commands refuse
/// (`_validate.id_arg`): a pong in this range that answers an outstanding keepalive can then be
/// swallowed without ever hiding the pong of a user's `ping(id)`.
pub const KEEPALIVE_ID_BASE: u64 = u64::MAX - (u32::MAX as u64);

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
            // The pure backend takes the same text from `bullet_ws._policy.too_large`.
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
    /// Everything but subscriptions (which the replay covers): orders, `SUBMIT`, pings and
    /// subscription lists. When the write fails, the socket reconnects and sends it once more,
    /// as the SDK does with its `Send` command (and with `ping` since 0.0.42).
    Send(ClientMessage, Instant),
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
    books: Arc<Books>,
    direct: Arc<DirectPath>,
    inbound: Arc<Inbound>,
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
        let books = task.books.clone();
        let direct = task.direct.clone();
        let inbound = task.inbound.clone();
        runtime.spawn(guarded(task.run(), events.clone()));
        ManagedHandle {
            commands,
            shutdown,
            events,
            topics: Mutex::new(TopicSet::default()),
            max_message_size,
            books,
            direct,
            inbound,
        }
    }

    /// The loop's side of `Config::loop_reads`: claim the reads, read what arrived.
    pub fn loop_reader(&self) -> LoopReader {
        LoopReader(self.inbound.clone())
    }

    /// Commands written on the caller's thread, without a hop to the task, so far.
    pub fn direct_writes(&self) -> u64 {
        self.direct.writes()
    }

    /// Messages read and parsed on the event loop's thread (`Config::loop_reads`).
    pub fn loop_reads(&self) -> u64 {
        self.inbound.loop_reads()
    }

    /// The order books of the subscribed depth topics.
    pub fn books(&self) -> &Arc<Books> {
        &self.books
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
        self.direct.queued();
        self.commands.try_send(command).map_err(|e| {
            self.direct.done();
            match e {
                mpsc::error::TrySendError::Full(_) => CommandError::Busy,
                mpsc::error::TrySendError::Closed(_) => CommandError::Stopped,
            }
        })
    }

    /// Writes `message` on this thread when nothing is queued ahead of it and the connection is
    /// open to it (see `crate::wire`); queues it to the task otherwise, or when the write failed
    /// before any byte left. `frame` is `message.to_json()`.
    fn send(&self, message: ClientMessage, frame: &str) -> Result<(), CommandError> {
        match self
            .direct
            .write(frame, message.method(), order_of(&message))
        {
            Direct::Sent => Ok(()),
            Direct::NotNow | Direct::Failed => self.queue(Command::Send(message, Instant::now())),
        }
    }

    /// Returns the topics actually sent (none when all were active already). `conflate` is
    /// set on every topic of the call (see `EventQueue::set_conflated`), active ones included,
    /// before the SUBSCRIBE can go out, so that its first messages are conflated already; a
    /// refused call leaves it as it was.
    pub fn subscribe(
        &self,
        topics: Vec<String>,
        id: Option<u64>,
        conflate: bool,
    ) -> Result<Vec<String>, CommandError> {
        let was_on = self.events.conflated_among(&topics);
        self.events.set_conflated(&topics, conflate);
        let changed = self.change_topics(
            "SUBSCRIBE",
            id,
            |set| set.insert_new(topics.clone()),
            |new| {
                // Before the SUBSCRIBE can go out: the socket's thread may read its first
                // snapshot before this thread runs again, and a snapshot without a book is lost.
                self.books.topics_added(&new, Instant::now());
                self.queue(Command::Subscribe(new.clone(), id))
                    .inspect_err(|_| self.books.topics_removed(&new, Instant::now()))
            },
        );
        changed.inspect_err(|_| {
            self.events.set_conflated(&topics, false);
            self.events.set_conflated(&was_on, true);
        })
    }

    /// Returns the topics actually sent (only those that were active).
    pub fn unsubscribe(
        &self,
        topics: Vec<String>,
        id: Option<u64>,
    ) -> Result<Vec<String>, CommandError> {
        let gone = self.change_topics(
            "UNSUBSCRIBE",
            id,
            |set| set.remove_present(topics),
            |gone| {
                self.queue(Command::Unsubscribe(gone.clone(), id))?;
                // Under the topics' lock: a subscribe of the same topic right after finds it
                // gone and registers its book again.
                self.books.topics_removed(&gone, Instant::now());
                Ok(())
            },
        )?;
        self.events.set_conflated(&gone, false);
        Ok(gone)
    }

    /// Applies `edit` to the topic set and hands what changed to `send`, which queues the
    /// command; nothing is sent when nothing changed, and the set is left exactly as it was when
    /// the command is refused: too large (its own frame, or the replay frame of the new set), or
    /// not queued.
    fn change_topics(
        &self,
        method: &'static str,
        id: Option<u64>,
        edit: impl FnOnce(&mut TopicSet) -> Vec<String>,
        send: impl FnOnce(Vec<String>) -> Result<(), CommandError>,
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
                .and_then(|()| send(changed.clone()));
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
        let frame = message.to_json();
        self.check_size("tx", method.wire(), frame.len())?;
        self.send(message, &frame)
    }

    pub fn list_subscriptions(&self, id: Option<u64>) -> Result<(), CommandError> {
        self.check_running()?;
        let message = ClientMessage::ListSubscriptions { id };
        let frame = message.to_json();
        self.send(message, &frame)
    }

    pub fn ping(&self, id: Option<u64>) -> Result<(), CommandError> {
        self.check_running()?;
        let message = ClientMessage::Ping { id };
        let frame = message.to_json();
        self.send(message, &frame)
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

    /// The stop signal alone, for an owner that must be able to stop the task without holding
    /// the handle (the Python binding stops it when its event loop closes).
    pub fn stop_signal(&self) -> Arc<Shutdown> {
        self.shutdown.clone()
    }
}

impl Drop for ManagedHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests;
