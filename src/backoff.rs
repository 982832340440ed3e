//! Reconnect delays: exponential backoff with jitter that persists across outages.
//!
//! The SDK's rules: floor 10 ms, doubling after each failed attempt up to the cap, a uniform jitter
//! of 0..=50 % (in whole milliseconds) on every sleep, and a reset to the initial value only after a
//! connection stayed up `reset_after`. We add the SDK's stated intent that its code misses: a
//! reconnected connection that dies before `reset_after` counts as a failure and doubles the backoff,
//! so an accept-then-drop server gets exponential relief instead of a constant hammering.

use std::time::Duration;

use crate::config::{Config, MIN_BACKOFF};

#[derive(Debug, Clone)]
pub struct Backoff {
    current: Duration,
    initial: Duration,
    max: Duration,
    reset_after: Duration,
}

impl Backoff {
    pub fn new(config: &Config) -> Self {
        let initial = config.initial_backoff.max(MIN_BACKOFF);
        Backoff {
            current: initial,
            initial,
            max: config.max_backoff.max(MIN_BACKOFF),
            reset_after: config.backoff_reset_after,
        }
    }

    /// The base delay of the next attempt, before jitter.
    pub fn current(&self) -> Duration {
        self.current
    }

    /// The largest jitter of the next sleep: 50 % of the base, in whole milliseconds.
    pub fn max_jitter_ms(&self) -> u64 {
        (self.current.as_millis() / 2).min(u64::MAX as u128) as u64
    }

    /// The next sleep: the base plus 0..=50 % of it, in whole milliseconds.
    pub fn delay(&self, rng: &mut fastrand::Rng) -> Duration {
        self.current + Duration::from_millis(rng.u64(0..=self.max_jitter_ms()))
    }

    /// A connect attempt failed (or the replay lost the new connection).
    pub fn failed(&mut self) {
        self.current = self.current.saturating_mul(2).min(self.max);
    }

    /// A connection ended after `uptime`; `reconnected` tells whether our backoff opened it.
    pub fn connection_lost(&mut self, uptime: Duration, reconnected: bool) {
        if uptime >= self.reset_after {
            self.current = self.initial;
        } else if reconnected {
            self.failed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(initial_ms: u64, max_ms: u64) -> Config {
        Config {
            initial_backoff: Duration::from_millis(initial_ms),
            max_backoff: Duration::from_millis(max_ms),
            backoff_reset_after: Duration::from_secs(30),
            ..Config::default()
        }
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::new(&config(100, 1000));
        let mut seen = vec![];
        for _ in 0..6 {
            seen.push(b.current().as_millis());
            b.failed();
        }
        assert_eq!(seen, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn zero_is_floored_at_ten_ms() {
        let mut b = Backoff::new(&config(0, 0));
        assert_eq!(b.current(), MIN_BACKOFF);
        b.failed();
        assert_eq!(b.current(), MIN_BACKOFF);
    }

    #[test]
    fn jitter_stays_within_half_and_covers_the_range() {
        let b = Backoff::new(&config(1000, 30_000));
        let mut rng = fastrand::Rng::with_seed(7);
        let delays: Vec<u128> = (0..2000).map(|_| b.delay(&mut rng).as_millis()).collect();
        assert!(delays.iter().all(|d| (1000..=1500).contains(d)));
        assert!(delays.iter().any(|d| *d < 1050) && delays.iter().any(|d| *d > 1450));
    }

    #[test]
    fn reset_only_after_stable_uptime() {
        let mut b = Backoff::new(&config(100, 10_000));
        b.failed();
        b.failed();
        assert_eq!(b.current().as_millis(), 400);
        b.connection_lost(Duration::from_secs(29), false);
        assert_eq!(
            b.current().as_millis(),
            400,
            "the first connection dying early keeps the backoff"
        );
        b.connection_lost(Duration::from_secs(29), true);
        assert_eq!(
            b.current().as_millis(),
            800,
            "a reconnected connection dying early doubles it"
        );
        b.connection_lost(Duration::from_secs(30), true);
        assert_eq!(b.current().as_millis(), 100);
    }
}
