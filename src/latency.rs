//! Latency statistics: a log-linear histogram of microseconds and a sliding window of two of
//! them. The pure backend (`bullet_ws/pure/latency.py`) implements the same buckets, so both
//! backends quantise alike; a test feeds both the same samples.
//!
//! Buckets: exact below 32 µs, then 32 per power of two (relative width <= 1/32, about 3 %), up
//! to 100 s (larger values land in the last bucket). Quantiles report their bucket's upper bound,
//! so a reported value is never below the true one.

use std::time::Duration;

use crate::protocol::ServerMessage;

/// The span the latency summaries cover (`ws.stats.exchange_delay`, `delivery_delay`): about
/// the last 10 s, as two rotating half-window histograms (a summary covers 5 to 10 s).
pub const LATENCY_WINDOW: Duration = Duration::from_secs(10);

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// The largest value told apart: 100 s in µs.
pub const MAX_US: u64 = 100_000_000;
pub const BUCKETS: usize = bucket_of(MAX_US) + 1;

/// The bucket of a value in µs.
pub const fn bucket_of(us: u64) -> usize {
    let v = if us > MAX_US { MAX_US } else { us };
    if v < SUB {
        return v as usize;
    }
    let shift = 63 - v.leading_zeros() - SUB_BITS;
    (SUB + shift as u64 * SUB + ((v >> shift) - SUB)) as usize
}

/// The largest value (µs) of a bucket: what quantiles report.
pub const fn upper_bound(bucket: usize) -> u64 {
    let b = bucket as u64;
    if b < SUB {
        return b;
    }
    let shift = (b - SUB) / SUB;
    let sub = (b - SUB) % SUB;
    ((SUB + sub + 1) << shift) - 1
}

/// p50, p99 and max (bucket upper bounds, µs) of `count` samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencySummary {
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub count: u64,
}

struct Histogram {
    counts: Box<[u32; BUCKETS]>,
    total: u64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: Box::new([0; BUCKETS]),
            total: 0,
        }
    }

    fn clear(&mut self) {
        if self.total > 0 {
            self.counts.fill(0);
            self.total = 0;
        }
    }
}

/// Samples of about the last `LATENCY_WINDOW`: two half-window histograms, the older dropped
/// as a whole when a new half begins. Times are nanoseconds on any monotonic clock.
pub struct Window {
    halves: [Histogram; 2],
    current: usize,
    /// When the current half began.
    started_ns: u64,
}

const HALF_NS: u64 = LATENCY_WINDOW.as_nanos() as u64 / 2;

impl Default for Window {
    fn default() -> Self {
        Window {
            halves: [Histogram::new(), Histogram::new()],
            current: 0,
            started_ns: 0,
        }
    }
}

impl Window {
    fn advance(&mut self, now_ns: u64) {
        let elapsed = now_ns.saturating_sub(self.started_ns);
        if elapsed < HALF_NS {
            return;
        }
        if elapsed < 2 * HALF_NS {
            self.current ^= 1;
            self.halves[self.current].clear();
            self.started_ns += HALF_NS;
        } else {
            self.halves[0].clear();
            self.halves[1].clear();
            self.started_ns = now_ns;
        }
    }

    /// Counts one sample of `us` microseconds taken at `now_ns`.
    pub fn record(&mut self, now_ns: u64, us: u64) {
        self.advance(now_ns);
        let half = &mut self.halves[self.current];
        let slot = &mut half.counts[bucket_of(us)];
        *slot = slot.saturating_add(1);
        half.total += 1;
    }

    /// For a burst stamped once: only the clock is shared, each sample has its value.
    pub fn start_burst(&mut self, now_ns: u64) -> &mut Self {
        self.advance(now_ns);
        self
    }

    /// `record` without the clock check, after `start_burst`.
    #[inline]
    pub fn add(&mut self, us: u64) {
        let half = &mut self.halves[self.current];
        let slot = &mut half.counts[bucket_of(us)];
        *slot = slot.saturating_add(1);
        half.total += 1;
    }

    /// The summary of the window as of `now_ns`; None when it holds no sample.
    pub fn summary(&mut self, now_ns: u64) -> Option<LatencySummary> {
        self.advance(now_ns);
        let [a, b] = &self.halves;
        let count = a.total + b.total;
        if count == 0 {
            return None;
        }
        // 1-based ranks in integers, so that both backends pick the same sample.
        let rank = |num: u64| (count * num).div_ceil(100);
        let (r50, r99) = (rank(50), rank(99));
        let (mut p50, mut p99, mut max) = (None, None, 0);
        let mut seen = 0u64;
        for (i, (x, y)) in a.counts.iter().zip(b.counts.iter()).enumerate() {
            let n = u64::from(*x) + u64::from(*y);
            if n == 0 {
                continue;
            }
            seen += n;
            if p50.is_none() && seen >= r50 {
                p50 = Some(upper_bound(i));
            }
            if p99.is_none() && seen >= r99 {
                p99 = Some(upper_bound(i));
            }
            max = upper_bound(i);
        }
        Some(LatencySummary {
            p50_us: p50.unwrap_or(max),
            p99_us: p99.unwrap_or(max),
            max_us: max,
            count,
        })
    }
}

/// The message's `E` (µs since the epoch), for the exchange delay; None for a frame that has
/// none (`Unknown`).
pub fn event_time(message: &ServerMessage) -> Option<u64> {
    Some(match message {
        ServerMessage::Status(m) => m.event_time,
        ServerMessage::Pong(m) => m.event_time,
        ServerMessage::ErrorMessage(m) => m.event_time,
        ServerMessage::SubscribeResult(m) => m.event_time,
        ServerMessage::UnsubscribeResult(m) => m.event_time,
        ServerMessage::ListSubscriptionsResult(m) => m.event_time,
        ServerMessage::OrderResult(m) => m.event_time,
        ServerMessage::DepthUpdate(m) => m.event_time,
        ServerMessage::AggTrade(m) => m.event_time,
        ServerMessage::BookTicker(m) => m.event_time,
        ServerMessage::MarkPrice(m) => m.event_time,
        ServerMessage::ForceOrder(m) => m.event_time,
        ServerMessage::OrderUpdate(m) => m.event_time,
        ServerMessage::MarketStatus(m) => m.event_time,
        ServerMessage::DegenPositionCompleted(m) => m.event_time,
        ServerMessage::Unknown(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exact_below_32_then_within_one_32nd() {
        for v in 0..32 {
            assert_eq!(upper_bound(bucket_of(v)), v);
        }
        let mut v = 32;
        while v <= MAX_US {
            let b = bucket_of(v);
            let hi = upper_bound(b);
            assert!(hi >= v, "{v} above its bucket's bound {hi}");
            assert!((hi - v) * 32 <= v, "{v}: bound {hi} more than 1/32 above");
            assert!(
                b == 0 || upper_bound(b - 1) < v,
                "{v} belongs to an earlier bucket"
            );
            v = v * 17 / 16 + 1;
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(BUCKETS, 720);
    }

    /// The same cases as tests/test_latency.py, which checks the pure backend against them.
    #[test]
    fn summary_of_known_samples() {
        let mut w = Window::default();
        assert_eq!(w.summary(0), None);
        for v in 1..=1000u64 {
            w.record(1_000, v * 1000);
        }
        let s = w.summary(2_000).unwrap();
        // Rank 500 is 500 000 µs, rank 990 is 990 000 µs, the max 1 000 000 µs: their bounds.
        assert_eq!(
            (s.p50_us, s.p99_us, s.max_us, s.count),
            (507_903, 999_423, 1_015_807, 1000)
        );
        let mut one = Window::default();
        one.record(0, 7);
        let s = one.summary(0).unwrap();
        assert_eq!((s.p50_us, s.p99_us, s.max_us, s.count), (7, 7, 7, 1));
    }

    #[test]
    fn the_window_forgets_samples_older_than_it() {
        let mut w = Window::default();
        let s = 1_000_000_000;
        w.record(s, 100);
        w.record(6 * s, 200);
        assert_eq!(w.summary(7 * s).unwrap().count, 2, "both halves count");
        assert_eq!(
            w.summary(11 * s).unwrap().count,
            1,
            "the first half is gone"
        );
        assert_eq!(
            w.summary(11 * s).unwrap().max_us,
            203,
            "200 µs, as its bucket bound"
        );
        assert_eq!(w.summary(30 * s), None, "all gone");
    }
}
