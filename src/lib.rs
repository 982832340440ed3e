//! bullet-ws core: the Bullet exchange's managed WebSocket on tokio. Plain Rust; the PyO3 layer
//! lives in `python/` behind the `python` feature.

pub mod backoff;
pub mod book;
pub mod bridge;
pub mod config;
pub mod latency;
pub mod managed;
pub mod protocol;
pub mod runtime;
pub mod transport;

#[cfg(feature = "python")]
mod python;
