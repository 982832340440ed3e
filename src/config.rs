//! Configuration of the managed socket: the SDK's `ManagedWsConfig` with its defaults, plus the
//! bounds we add (message size, CA bundle). Validation with field names lives in the Python
//! `ManagedWsConfig`; these are the already-validated values.

use std::path::PathBuf;
use std::time::Duration;

/// Floor for both backoff bounds: a zero backoff would double to zero forever and spin.
pub const MIN_BACKOFF: Duration = Duration::from_millis(10);

/// Commands are low-rate; more than this queued means the task is stuck, so callers get `Busy`.
pub const COMMAND_CAPACITY: usize = 256;

/// The longest duration accepted (1e9 s, about 31 years; `bullet_ws.config.MAX_DURATION`): far
/// from overflowing tokio's `Instant` arithmetic even with the backoff's 50 % jitter on top.
pub const MAX_DURATION: Duration = Duration::from_secs(1_000_000_000);

/// The largest `channel_capacity`, `max_message_size` and `queue_max_bytes` (2**40;
/// `bullet_ws.config.MAX_SIZE`).
pub const MAX_SIZE: usize = 1 << 40;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Failed attempts allowed per outage; `None` retries forever.
    pub max_retries: Option<u64>,
    /// Event queue bound; when full, new events are dropped and counted.
    pub channel_capacity: usize,
    /// Event queue bound in wire bytes; an event that does not fit is dropped and counted.
    pub queue_max_bytes: usize,
    /// Bounds TCP + TLS + upgrade + the first `connected` status.
    pub connection_timeout: Duration,
    /// Reconnect when no server message arrived for this long; zero disables.
    pub idle_timeout: Duration,
    /// Send a keepalive PING when the client sent nothing for this long; zero disables. The
    /// live server closes a connection after 60 s without a message from the client.
    pub keepalive_interval: Duration,
    /// Uptime after which the next outage starts from `initial_backoff` again.
    pub backoff_reset_after: Duration,
    /// A connection this old is replaced by a make-before-break rotation; zero disables. The
    /// live server cuts every connection at 24 h.
    pub max_connection_age: Duration,
    /// Largest message received or sent, in bytes.
    pub max_message_size: usize,
    /// PEM bundle trusted instead of the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// Orders that waited longer than this (through an outage) are not sent but reported as
    /// `OrderUnacked`; `None` sends them however late.
    pub order_max_age: Option<Duration>,
    /// Write orders, pings and subscription lists on the caller's thread when nothing is queued
    /// ahead of them, instead of handing them to the socket task (see `crate::wire`).
    pub direct_write: bool,
    /// After bytes arrive on the socket, the sleeping consumer waits this long for the socket
    /// task's burst instead of for its wake-up; zero: it sleeps until woken (see
    /// `python/wakefd.rs`).
    pub inbound_spin: Duration,
    /// The event loop's thread reads and parses the socket itself, instead of being woken by
    /// the socket task (one wake-up per tick instead of two); the task takes the reads back for
    /// a flood, a rotation, or when the loop leaves bytes unread (see `crate::wire`).
    pub loop_reads: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            max_retries: None,
            channel_capacity: 10_000,
            queue_max_bytes: 64 * 1024 * 1024,
            connection_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            keepalive_interval: Duration::from_secs(20),
            backoff_reset_after: Duration::from_secs(30),
            max_connection_age: Duration::from_secs(84_600),
            max_message_size: 4 * 1024 * 1024,
            ca_file: None,
            order_max_age: None,
            direct_write: true,
            inbound_spin: Duration::ZERO,
            loop_reads: true,
        }
    }
}
