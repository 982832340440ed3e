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
    /// aggTrade in the shape before 2026-05-23 (real DEX fields, no `ft z Z rs`) instead of the
    /// live one (placeholders): for comparing the two.
    pub legacy_shapes: bool,
    /// As the live server: a connection whose client sent no text message for this long gets
    /// the `disconnecting` status (reason `idle_timeout`), then a close.
    pub idle_close: Option<Duration>,
    /// Lifetime cap of each connection: `disconnecting` (reason `max_duration`), then a close.
    pub max_duration: Option<Duration>,
    /// Market-data sequences (aggTrade `a`, depth `U`/`u`, bookTicker `u`) follow one clock per
    /// server instead of restarting at 1 per subscription: id `n` of every topic is due at
    /// `n / rate` seconds after the start, and each connection sends every id from the one due
    /// when it subscribed. Two connections open at once therefore carry the same ids at about
    /// the same time, which is what a make-before-break rotation is checked against. `rate` is
    /// then per topic, and must be set.
    pub shared_sequence: bool,
}

impl MockConfig {
    pub const RING_FRAMES: usize = 4096;
    /// Longest period or delay the mock accepts: far beyond any test, and small enough that
    /// adding it to an `Instant` can never overflow.
    pub const MAX_PERIOD: Duration = Duration::from_secs(86_400);
    /// Rates outside this range are refused: below, the period overflows a `Duration`; above,
    /// it rounds to zero and the pacing loop would never yield. `None` is "as fast as possible".
    pub const MIN_RATE: f64 = 1e-6;
    pub const MAX_RATE: f64 = 1e7;
    /// The shortest period (`ping_interval`, `idle_close`, `max_duration`): zero panics tokio's
    /// interval.
    pub const MIN_PERIOD: Duration = Duration::from_millis(1);
    /// The longest wait of the `wait_*` calls; far from `Instant` overflow.
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
        for (name, period) in [
            ("ping_interval", self.ping_interval),
            ("idle_close", self.idle_close),
            ("max_duration", self.max_duration),
        ] {
            if period.is_some_and(|d| !(Self::MIN_PERIOD..=Self::MAX_PERIOD).contains(&d)) {
                return bad(&format!("{name} must be in [0.001, 86400] seconds or None"));
            }
        }
        if self.shared_sequence && (self.rate.is_none() || self.preencode) {
            return bad("shared_sequence needs a rate and no preencode");
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
            legacy_shapes: false,
            idle_close: None,
            max_duration: None,
            shared_sequence: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_must_be_positive_and_bounded() {
        let day = MockConfig::MAX_PERIOD;
        for bad in [Duration::ZERO, day + Duration::from_nanos(1), Duration::MAX] {
            for config in [
                MockConfig {
                    idle_close: Some(bad),
                    ..MockConfig::default()
                },
                MockConfig {
                    max_duration: Some(bad),
                    ..MockConfig::default()
                },
                MockConfig {
                    ping_interval: Some(bad),
                    ..MockConfig::default()
                },
            ] {
                assert!(config.validate().is_err(), "{bad:?}");
            }
        }
        let ok = MockConfig {
            idle_close: Some(day),
            max_duration: Some(Duration::from_millis(1)),
            ..MockConfig::default()
        };
        assert!(ok.validate().is_ok());
    }
}
