//! Misbehaviour on command: what can go wrong, and to which connections.

use std::fmt;
use std::time::Duration;

use crate::session::OrderReject;

/// How `accept_drop` ends the connection right after the `connected` status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropHow {
    /// TCP FIN, no close frame.
    Fin,
    /// TCP RST.
    Reset,
    /// Close frame 1000, then TCP close.
    Close,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Close frame with this code and reason, then close TCP.
    Close {
        code: u16,
        reason: String,
    },
    /// TCP RST (SO_LINGER 0), no close frame.
    Reset,
    /// TCP FIN, no close frame.
    Fin,
    /// Send nothing more (no data, no acks, no close reply); answer client pings or not.
    Silence {
        answer_pings: bool,
    },
    /// `status`/`disconnecting` with this reason, then close 1000 after `delay` (the
    /// connection works normally meanwhile, as on the live server).
    Disconnecting {
        reason: String,
        delay: Duration,
    },
    /// One raw text frame; the bytes need not be UTF-8 nor JSON.
    SendText(Vec<u8>),
    SendBinary(Vec<u8>),
    /// One text frame of exactly this many payload bytes (valid JSON when >= 25 bytes).
    Oversize(usize),
    /// A text frame header announcing `length` bytes, a few payload bytes, then silence.
    HugeHeader {
        length: u64,
    },
    /// `count` ping frames carrying `payload`.
    Ping {
        count: u32,
        payload: Vec<u8>,
    },
    /// Next only: RST at accept, before any byte.
    Refuse,
    /// Next only: accept TCP, never answer the upgrade.
    StallHandshake,
    /// Next only: upgrade, send `connected`, then drop at once.
    AcceptDrop(DropHow),
    /// Next only: upgrade but never send `connected` (the connection otherwise works).
    NoStatus,
    /// Next only: send these bytes as the first text frame instead of `connected`.
    WrongFirst(Vec<u8>),
    /// Answer order requests with an untagged error.
    RejectOrders(OrderReject),
    /// The next update of each depth stream subscribed now skips a sequence: one update is
    /// applied to the stream's book but not sent, so its successor's `pu` breaks the chain.
    DepthGap,
}

impl Fault {
    /// The name used by the Python API.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Close { .. } => "close",
            Fault::Reset => "reset",
            Fault::Fin => "fin",
            Fault::Silence { .. } => "silence",
            Fault::Disconnecting { .. } => "disconnecting",
            Fault::SendText(_) => "send_text",
            Fault::SendBinary(_) => "send_binary",
            Fault::Oversize(_) => "oversize",
            Fault::HugeHeader { .. } => "huge_header",
            Fault::Ping { .. } => "ping",
            Fault::Refuse => "refuse",
            Fault::StallHandshake => "stall_handshake",
            Fault::AcceptDrop(_) => "accept_drop",
            Fault::NoStatus => "no_status",
            Fault::WrongFirst(_) => "wrong_first",
            Fault::RejectOrders(_) => "reject_orders",
            Fault::DepthGap => "depth_gap",
        }
    }

    /// Faults about the opening of a connection, which only make sense for the next ones.
    pub fn next_only(&self) -> bool {
        matches!(
            self,
            Fault::Refuse
                | Fault::StallHandshake
                | Fault::AcceptDrop(_)
                | Fault::NoStatus
                | Fault::WrongFirst(_)
        )
    }
}

/// Which connections a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every connection open (upgraded) now.
    Current,
    /// The next `count` accepted TCP connections (see [`crate::MockServer::fault`]).
    Next { count: u32 },
}

/// A fault that cannot be applied as asked; the message names the argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultError(pub String);

impl fmt::Display for FaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FaultError {}
