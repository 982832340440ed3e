//! A fake Bullet exchange for tests, demos and benchmarks.
//!
//! Speaks the Bullet WebSocket protocol (docs/PROTOCOL.md) over a hand-written server side of
//! WebSocket on raw tokio sockets, streams market data as fast as a socket takes it, records
//! everything the client sends, and misbehaves on command ([`Fault`]).
//!
//! ```no_run
//! use bullet_ws_mock::{MockConfig, MockServer, Fault, Scope};
//! let mock = MockServer::start(MockConfig::default()).unwrap();
//! println!("{}", mock.url());
//! mock.fault(Fault::Reset, Scope::Current).unwrap();
//! ```

mod clock;
mod config;
mod connection;
mod fault;
pub mod feed;
pub mod frame;
pub mod handshake;
mod record;
mod server;
pub mod session;
mod shared;
pub mod topic;

pub use clock::{monotonic, now_us};
pub use config::MockConfig;
pub use fault::{DropHow, Fault, FaultError, Scope};
pub use record::{ClientFrame, ClosedBy, ConnectionRecord};
pub use server::MockServer;
pub use session::OrderReject;
