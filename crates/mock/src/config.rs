//! Server options.

use std::io;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct MockConfig {
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
    /// Market-data messages per second per connection, over all its streaming topics (round
    /// robin). `None`: as fast as the socket takes them.
    pub rate: Option<f64>,
    /// Symbols that market topics may name; others get -1122.
    pub symbols: Vec<String>,
    /// Market-data frames per connection, after which streaming stops (the connection stays).
    pub max_messages: Option<u64>,
    /// Cycle through a ring of [`MockConfig::RING_FRAMES`] frames built once per subscription
    /// change, instead of building each frame: `E` is then not the send time and the per-topic
    /// sequences repeat every ring.
    pub preencode: bool,
    /// Server ping frames on this period.
    pub ping_interval: Option<Duration>,
    /// Subscriptions per connection; one more gets error -1003.
    pub max_topics: Option<usize>,
    /// Largest client message accepted; a bigger one closes the connection with 1009.
    pub max_message_size: usize,
}

impl MockConfig {
    pub const RING_FRAMES: usize = 4096;
    /// Rates outside this range are refused: below, the period overflows a `Duration`; above,
    /// it rounds to zero and the pacing loop would never yield. `None` is "as fast as possible".
    pub const MIN_RATE: f64 = 1e-6;
    pub const MAX_RATE: f64 = 1e7;
    /// Ping periods outside this range are refused (zero panics tokio's interval; the top keeps
    /// `Instant` arithmetic far from overflow). Also the longest wait of the `wait_*` calls.
    pub const MIN_PING_INTERVAL: Duration = Duration::from_millis(1);
    pub const MAX_DURATION: Duration = Duration::from_secs(1_000_000_000);
    /// The largest `oversize` frame: far above any client limit under test, yet buildable.
    pub const MAX_OVERSIZE: usize = 256 << 20;

    pub(crate) fn validate(&self) -> io::Result<()> {
        let bad = |m: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, m.to_string()));
        if self
            .rate
            .is_some_and(|r| !(Self::MIN_RATE..=Self::MAX_RATE).contains(&r))
        {
            return bad("rate must be in 1e-6..1e7 or None");
        }
        if self
            .ping_interval
            .is_some_and(|d| !(Self::MIN_PING_INTERVAL..=Self::MAX_DURATION).contains(&d))
        {
            return bad("ping_interval must be in 0.001..1e9 seconds or None");
        }
        if self.symbols.iter().any(|s| s.is_empty() || s.contains('@')) {
            return bad("symbols must be non-empty and contain no '@'");
        }
        Ok(())
    }
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 0,
            rate: Some(20.0),
            symbols: vec!["BTC-USD".into(), "ETH-USD".into(), "SOL-USD".into()],
            max_messages: None,
            preencode: false,
            ping_interval: None,
            max_topics: None,
            max_message_size: 16 << 20,
        }
    }
}
