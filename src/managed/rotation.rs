//! What the user sees while two connections are open during a make-before-break rotation: one
//! stream per topic, without the gap a reconnect leaves and without the duplicates two
//! subscriptions to the same topic give. Pure logic, no I/O; the pure backend's
//! `bullet_ws.pure.rotation` is the same algorithm.
//!
//! Per topic with a sequence id (aggTrade `a`, depth `U`..`u`, bookTicker `u`) the old connection
//! delivers until the new one has caught up: the new one's messages are held back until one of
//! them continues what was delivered (`first <= last + 1`), then the new one delivers and the
//! old one's are dropped. A snapshot on the new connection is delivered at once (it replaces the
//! book). Order updates (no sequence on the wire) are delivered once per (order, execution,
//! status, time, trade). Other messages come from whichever connection is primary; the old one's
//! acks are always delivered, since its orders are still settled on it.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::protocol::ServerMessage;

pub(super) type Item = (ServerMessage, usize);

/// Messages held back per topic while the old connection lags behind the new one. Beyond it the
/// oldest are dropped (a gap), which only a connection stalled for many seconds can cause.
pub const MAX_HELD: usize = 65_536;

#[derive(Default)]
struct Topic {
    last: Option<u64>,
    on_new: bool,
    seen_old: bool,
    held: VecDeque<(u64, u64, Item)>,
}

type OrderKey = (u64, String, String, u64, Option<u64>);

#[derive(Default)]
pub(super) struct Dedup {
    topics: HashMap<(u8, String), Topic>,
    orders: HashSet<OrderKey>,
    /// The new connection is primary: its unsequenced messages are delivered, the old one's not.
    pub switched: bool,
    /// The new connection answered its replay (or there was nothing to replay).
    pub replay_acked: bool,
    pub nothing_replayed: bool,
}

/// (stream kind, symbol, first id, last id, snapshot) of a message with a sequence id.
fn sequence(m: &ServerMessage) -> Option<(u8, &str, u64, u64, bool)> {
    match m {
        ServerMessage::AggTrade(t) => Some((0, &t.symbol, t.agg_trade_id, t.agg_trade_id, false)),
        ServerMessage::DepthUpdate(d) => Some((
            1,
            &d.symbol,
            d.first_update_id,
            d.final_update_id,
            &*d.message_type == "s",
        )),
        // A bookTicker snapshot is one more state of the same sequence: no special case.
        ServerMessage::BookTicker(b) => Some((2, &b.symbol, b.update_id, b.update_id, false)),
        _ => None,
    }
}

impl Dedup {
    /// Passes one message of the old (`from_new` false) or new connection; what must be
    /// delivered, possibly with messages held before, goes to `out` in order.
    pub fn admit(&mut self, item: Item, from_new: bool, out: &mut Vec<Item>) {
        if let Some((kind, symbol, first, last, snapshot)) = sequence(&item.0) {
            let topic = self.topics.entry((kind, symbol.to_owned())).or_default();
            // Once switched, the new connection alone delivers: it carries every subscription
            // (replayed, or mirrored since), the old one may not (subscribed while it drains).
            if from_new {
                Self::from_new(topic, first, last, snapshot, self.switched, item, out);
            } else if !self.switched {
                Self::from_old(topic, last, item, out);
            }
            return;
        }
        match &item.0 {
            ServerMessage::OrderUpdate(o) => {
                let key = (
                    o.order_id,
                    o.execution_type.to_string(),
                    o.status.to_string(),
                    o.trade_time,
                    o.trade_id,
                );
                if self.orders.insert(key) {
                    out.push(item);
                }
            }
            // The old connection's orders are settled on it, whichever is primary.
            ServerMessage::OrderResult(_) | ServerMessage::ErrorMessage(_) if !from_new => {
                out.push(item)
            }
            _ if from_new == self.switched => out.push(item),
            ServerMessage::SubscribeResult(_) | ServerMessage::ErrorMessage(_) if from_new => {
                self.replay_acked = true;
            }
            _ => {}
        }
    }

    fn from_old(topic: &mut Topic, last: u64, item: Item, out: &mut Vec<Item>) {
        topic.seen_old = true;
        if topic.on_new || topic.last.is_some_and(|l| last <= l) {
            return;
        }
        out.push(item);
        topic.last = Some(last);
        // The old one may now have reached what the new one holds.
        while topic.held.front().is_some_and(|h| h.1 <= last) {
            topic.held.pop_front();
        }
        if topic.held.front().is_some_and(|h| h.0 <= last + 1) {
            Self::release(topic, out);
        }
    }

    fn from_new(
        topic: &mut Topic,
        first: u64,
        last: u64,
        snapshot: bool,
        switched: bool,
        item: Item,
        out: &mut Vec<Item>,
    ) {
        // A depth snapshot replaces the book: delivered unless older than what was delivered.
        if snapshot && topic.last.is_none_or(|l| last > l) {
            topic.held.clear();
            topic.on_new = true;
        } else {
            match topic.last {
                // Level with what was delivered: the new stream has caught up (it may never pass
                // the old one when both are read in a fixed order), so it takes over from here.
                Some(l) if last == l => {
                    topic.held.clear();
                    topic.on_new = true;
                    return;
                }
                Some(l) if last < l => return,
                // Switched: nothing else will continue it (a gap only where the old one lagged,
                // as at the switch).
                Some(l) if topic.on_new || first <= l + 1 || switched => topic.on_new = true,
                None if topic.on_new || switched => topic.on_new = true,
                _ => {
                    if topic.held.len() >= MAX_HELD {
                        topic.held.pop_front();
                    }
                    topic.held.push_back((first, last, item));
                    return;
                }
            }
        }
        out.push(item);
        topic.last = Some(last);
    }

    fn release(topic: &mut Topic, out: &mut Vec<Item>) {
        for (_, last, item) in topic.held.drain(..) {
            if topic.last.is_none_or(|l| last > l) {
                out.push(item);
                topic.last = Some(last);
            }
        }
        topic.on_new = true;
    }

    /// Every topic seen on either connection since the rotation began continues on the new
    /// one, and at least one was seen (else a stream that has not shown up yet could still
    /// repeat or skip ids): quiet subscriptions switch at the catch-up deadline instead. With
    /// nothing replayed there is nothing to wait for.
    pub fn caught_up(&self) -> bool {
        self.replay_acked
            && (self.nothing_replayed
                || (!self.topics.is_empty() && self.topics.values().all(|t| t.on_new)))
    }

    /// The old connection is leaving: what the new one holds is delivered (a gap only where it
    /// had not caught up), and from now on only its messages count (`admit`).
    pub fn force_switch(&mut self, out: &mut Vec<Item>) {
        for topic in self.topics.values_mut() {
            if !topic.on_new {
                Self::release(topic, out);
            }
        }
        self.switched = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::parse_str;

    fn trade(a: u64) -> Item {
        trade_of("BTC-USD", a)
    }

    fn trade_of(symbol: &str, a: u64) -> Item {
        let text = format!(
            r#"{{"e":"aggTrade","E":1,"s":"{symbol}","a":{a},"p":"1","q":"1","f":1,"l":1,"T":1,"m":true,"th":"0x"}}"#
        );
        (parse_str(&text), 0)
    }

    fn ids(out: &[Item]) -> Vec<u64> {
        out.iter()
            .map(|(m, _)| match m {
                ServerMessage::AggTrade(t) => t.agg_trade_id,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// Read after the old connection in a fixed order, the new one may never get ahead of it:
    /// level with what was delivered is enough to take over, with no gap and no duplicate.
    #[test]
    fn new_level_with_old_takes_over() {
        let mut d = Dedup {
            replay_acked: true,
            ..Dedup::default()
        };
        let mut out = Vec::new();
        for a in 10..13 {
            d.admit(trade(a), false, &mut out);
            d.admit(trade(a), true, &mut out);
        }
        assert!(d.caught_up());
        d.admit(trade(13), false, &mut out); // the old one's copy: dropped
        d.admit(trade(13), true, &mut out);
        assert_eq!(ids(&out), [10, 11, 12, 13]);
    }

    #[test]
    fn new_ahead_of_old_is_held_until_the_old_one_reaches_it() {
        let mut d = Dedup::default();
        let mut out = Vec::new();
        d.admit(trade(10), false, &mut out);
        d.admit(trade(13), true, &mut out);
        d.admit(trade(14), true, &mut out);
        d.admit(trade(11), false, &mut out);
        assert!(!d.caught_up());
        d.admit(trade(12), false, &mut out);
        d.admit(trade(13), false, &mut out); // dropped: the new one delivers from now on
        d.admit(trade(15), true, &mut out);
        d.replay_acked = true;
        assert!(d.caught_up());
        assert!(!Dedup {
            replay_acked: true,
            ..Dedup::default()
        }
        .caught_up());
        assert_eq!(ids(&out), [10, 11, 12, 13, 14, 15]);
    }

    #[test]
    fn new_behind_old_is_dropped_until_it_continues() {
        let mut d = Dedup::default();
        let mut out = Vec::new();
        d.admit(trade(10), false, &mut out);
        d.admit(trade(11), false, &mut out);
        d.admit(trade(9), true, &mut out);
        d.admit(trade(10), true, &mut out);
        d.admit(trade(11), true, &mut out);
        d.admit(trade(12), true, &mut out);
        d.admit(trade(12), false, &mut out);
        d.admit(trade(13), true, &mut out);
        assert_eq!(ids(&out), [10, 11, 12, 13]);
    }

    #[test]
    fn a_forced_switch_releases_what_the_new_one_held() {
        let mut d = Dedup::default();
        let mut out = Vec::new();
        d.admit(trade(10), false, &mut out);
        d.admit(trade(15), true, &mut out);
        d.admit(trade(16), true, &mut out);
        d.force_switch(&mut out);
        d.admit(trade(11), false, &mut out);
        d.admit(trade(16), true, &mut out);
        d.admit(trade(17), true, &mut out);
        assert_eq!(ids(&out), [10, 15, 16, 17]);
    }

    /// A topic first seen after the switch (subscribed while the old connection drains, or quiet
    /// all through the overlap) is the new connection's: delivered, not held for an old one that
    /// will never carry it (held messages end with the rotation).
    #[test]
    fn a_topic_first_seen_after_the_switch_is_delivered_from_the_new_one() {
        let mut d = Dedup::default();
        let mut out = Vec::new();
        d.admit(trade(10), false, &mut out);
        d.admit(trade(10), true, &mut out);
        d.force_switch(&mut out);
        d.admit(trade_of("ETH-USD", 5), true, &mut out);
        d.admit(trade_of("ETH-USD", 6), true, &mut out);
        d.admit(trade_of("ETH-USD", 4), false, &mut out); // the old one's: dropped
        d.admit(trade_of("ETH-USD", 7), true, &mut out);
        assert_eq!(ids(&out), [10, 5, 6, 7]);
    }

    /// After the switch the new connection alone delivers, also a topic the old one delivered
    /// first: what it sends ahead is delivered (a gap only where the old one lagged, as at a
    /// forced switch), not held until the rotation ends and drops it.
    #[test]
    fn after_the_switch_the_new_one_is_not_held_behind_the_old_one() {
        let mut d = Dedup::default();
        let mut out = Vec::new();
        d.admit(trade_of("ETH-USD", 9), false, &mut out);
        d.force_switch(&mut out);
        d.admit(trade(10), false, &mut out); // the old one's, after the switch: dropped
        d.admit(trade(12), true, &mut out);
        d.admit(trade(11), false, &mut out);
        d.admit(trade(13), true, &mut out);
        d.admit(trade_of("ETH-USD", 11), true, &mut out);
        assert_eq!(ids(&out), [9, 12, 13, 11]);
    }
}
