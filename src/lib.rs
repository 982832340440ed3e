//! bullet-ws core: the Bullet exchange's managed WebSocket on tokio. Plain Rust; the PyO3 layer
//! lives in `python/` behind the `python` feature.
//!
//! The modules in the order data flows through them:
//!
//! ```text
//! config      the validated settings and the bounds both backends share
//! runtime     the one tokio runtime per process (and what fork() does to it)
//! transport   one connection: TCP, TLS, the upgrade, the `connected` handshake, frames in/out
//! wire        a connection's stream, shared by the socket task and callers' direct writes
//! protocol    frames -> ServerMessage (the SDK's order of attempts) and commands -> frames
//! managed     the socket task: reconnects (backoff), replay, rotation, keepalive, order ledger;
//!             and its handle, which queues commands from any thread
//! book        local order books kept from depth messages on the socket thread
//! event_queue bounded hand-off of events to the consumer, one wake per burst, conflation
//! latency     the delay histograms behind `Stats.exchange_delay` and `delivery_delay`
//! python      (feature `python`) the doorbell, awaitables and classes the asyncio loop sees
//! ```

pub mod config;
pub mod runtime;

pub mod tcp;
pub mod transport;
pub mod wire;

pub mod protocol;

pub mod backoff;
pub mod managed;

pub mod book;

mod chunked_deque;
pub mod event_queue;
pub mod latency;

#[cfg(feature = "python")]
mod python;
