//! What the mock saw on each connection, readable while it runs.

/// Who ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedBy {
    Server,
    Client,
}

impl ClosedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            ClosedBy::Server => "server",
            ClosedBy::Client => "client",
        }
    }
}

/// One data message from the client, as received (reassembled if fragmented).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFrame {
    /// Monotonic seconds (CLOCK_MONOTONIC, as Python's `time.monotonic()`).
    pub at: f64,
    pub data: Vec<u8>,
    pub binary: bool,
}

/// One upgraded connection. Times are monotonic seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionRecord {
    /// 0-based order of completed upgrades.
    pub index: usize,
    /// `ws_<index>`: the `clientId` of the `connected` status.
    pub client_id: String,
    pub opened_at: f64,
    pub closed_at: Option<f64>,
    /// Text and binary messages, in arrival order.
    pub frames: Vec<ClientFrame>,
    /// Pong frames received (answers to the server's pings).
    pub pongs: u64,
    /// Ping frames received from the client.
    pub pings: u64,
    /// Code of the client's close frame, if it sent one with a code.
    pub close_code: Option<u16>,
    pub closed_by: Option<ClosedBy>,
    /// Every frame the server queued on this connection (status, acks, data, control).
    pub frames_sent: u64,
}

impl ConnectionRecord {
    pub(crate) fn new(index: usize, opened_at: f64) -> Self {
        Self {
            index,
            client_id: format!("ws_{index}"),
            opened_at,
            closed_at: None,
            frames: Vec::new(),
            pongs: 0,
            pings: 0,
            close_code: None,
            closed_by: None,
            frames_sent: 0,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed_at.is_some()
    }
}
