//! The Bullet wire protocol: what the client sends (`client`) and how server frames are told apart
//! (`server`), both exactly as PROTOCOL.md §10 describes.
//! `messages` is generated from `spec/messages.toml` by `scripts/gen_spec.py`.

pub mod client;
mod fields;
mod flat;
pub mod messages;
mod sdk_rules;
pub mod server;

pub use client::{ClientMessage, OrderMethod};
pub use server::{parse_bytes, parse_str, ServerMessage};
