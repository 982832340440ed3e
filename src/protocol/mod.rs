//! The Bullet wire protocol: what the client sends (`client`) and how server frames are told apart
//! (`server`), both exactly as PROTOCOL.md §2 and §3 describe.

pub mod client;
mod flat;
pub mod server;

pub use client::{ClientMessage, OrderMethod};
pub use server::{parse_bytes, parse_str, ServerMessage};
