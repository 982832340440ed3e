//! Market-data generators: one [`Feed`] per subscribed topic, writing whole WebSocket frames.
//!
//! Frames are formatted by hand into the output buffer (no serde, no intermediate String) because
//! the data path has to build millions of them per second. Values are a cheap random walk: they
//! look like market data, they are not meant to be consistent.

use std::collections::BTreeMap;

use crate::frame;

/// Depth streams send a full snapshot of their book after this many updates, as the live
/// server sends periodic snapshots (PROTOCOL.md §3.6).
pub const DEPTH_SNAPSHOT_EVERY: u64 = 100;

/// Which payload a feed produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    AggTrade,
    Depth(usize),
    BookTicker,
    MarkPrice,
    ForceOrder,
}

/// The per-topic generator state. `seq` is the per-topic sequence the client can check for gaps:
/// aggTrade `a`, depth `u`, bookTicker `u` (all start at 1 on each subscription, or, with
/// `shared_sequence`, at the server-wide id due when the subscription was made).
#[derive(Debug, Clone)]
pub struct Feed {
    symbol: String,
    kind: FeedKind,
    seq: u64,
    rng: u64,
    /// Mid price in hundredths.
    mid: u64,
    /// aggTrade in the shape before 2026-05-23 (real DEX fields, no `ft z Z rs`).
    legacy: bool,
    /// Ids come from the server's shared clock ([`Feed::write_shared`]): depth then moves one
    /// id per frame, and the first frame of a subscription is the snapshot.
    shared: bool,
    /// Under `shared`, the frame being written is the subscription's first.
    first: bool,
    /// A depth stream's book, from its first snapshot on.
    book: Option<DepthBook>,
    /// The next depth update skips a sequence (the `depth_gap` fault).
    gap: bool,
}

/// A depth frame's bids and asks: (price in hundredths, quantity in thousandths, 0 = remove).
type Sides = [Vec<(u64, u64)>; 2];

/// The book a depth stream describes: its snapshots are this state, its updates change it.
/// Levels sit at fixed distances from the price of the first snapshot, so the book stays within
/// `levels` levels a side and a snapshot always carries all of it.
#[derive(Debug, Clone)]
struct DepthBook {
    anchor: u64,
    /// Price in hundredths -> quantity in thousandths (never zero: zero removes the level).
    bids: BTreeMap<u64, u64>,
    asks: BTreeMap<u64, u64>,
    last_u: u64,
    updates_since_snapshot: u64,
}

const ADDRESS: &str = "4XN8Apf9powArmYLH1DRb2QvmyuYuvZp4qtdU8AtCavU";

impl Feed {
    pub fn new(symbol: &str, kind: FeedKind, seed: u64, legacy: bool) -> Self {
        let mid = match symbol {
            "BTC-USD" => 6_425_000,
            "ETH-USD" => 310_000,
            "SOL-USD" => 14_500,
            _ => 10_000,
        };
        Self {
            symbol: symbol.to_string(),
            kind,
            seq: 0,
            rng: seed | 1,
            mid,
            legacy,
            shared: false,
            first: false,
            book: None,
            gap: false,
        }
    }

    /// The last id written under `shared_sequence` (0 before the first frame).
    pub fn shared_seq(&self) -> u64 {
        self.seq
    }

    /// Appends the frame of shared id `seq` (`shared_sequence`): the caller walks the ids.
    pub fn write_shared(&mut self, out: &mut Vec<u8>, now_us: u64, seq: u64) {
        self.first = !self.shared;
        self.shared = true;
        self.seq = seq - 1;
        self.write_frame(out, now_us);
    }

    /// Makes the next depth update skip a sequence: one update is applied to the book but not
    /// sent, so the next `pu` is not the `u` the client saw last. False for other streams.
    pub fn skip_depth_update(&mut self) -> bool {
        self.gap = matches!(self.kind, FeedKind::Depth(_));
        self.gap
    }

    pub fn kind(&self) -> FeedKind {
        self.kind
    }

    /// Appends the next frame of this topic, stamped `now_us`.
    pub fn write_frame(&mut self, out: &mut Vec<u8>, now_us: u64) {
        self.seq += 1;
        self.walk();
        let mark = frame::begin_text(out);
        let mut w = Json(out);
        match self.kind {
            FeedKind::AggTrade => self.agg_trade(&mut w, now_us),
            FeedKind::Depth(levels) => self.depth(&mut w, now_us, levels),
            FeedKind::BookTicker => self.book_ticker(&mut w, now_us),
            FeedKind::MarkPrice => self.mark_price(&mut w, now_us),
            FeedKind::ForceOrder => self.force_order(&mut w, now_us),
        }
        frame::end_text(out, mark);
    }

    fn is_snapshot(&self) -> bool {
        if self.shared {
            self.first
        } else {
            self.seq == 1
        }
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*: plenty for fake prices, and a handful of cycles.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn walk(&mut self) {
        let step = self.next_rand() % 5;
        self.mid = (self.mid + step).saturating_sub(2).max(100);
    }

    fn agg_trade(&mut self, w: &mut Json<'_>, now: u64) {
        let r = self.next_rand();
        let a = self.seq;
        w.raw(b"{\"e\":\"aggTrade\",\"E\":");
        w.num(now);
        w.raw(b",\"s\":\"");
        w.raw(self.symbol.as_bytes());
        w.raw(b"\",\"a\":");
        w.num(a);
        w.raw(b",\"p\":\"");
        w.cents(self.mid);
        w.raw(b"\",\"q\":\"0.");
        w.digits(r % 1000, 3);
        w.raw(b"\",\"f\":");
        w.num(a * 2);
        w.raw(b",\"l\":");
        w.num(a * 2 + (r >> 10) % 2);
        w.raw(b",\"T\":");
        w.num(now.saturating_sub(700));
        w.raw(b",\"m\":");
        w.boolean(r & 1 == 0);
        w.raw(b",\"th\":\"0x");
        w.hex(r);
        if self.legacy {
            self.legacy_dex_fields(w, a, r);
        } else {
            // The live shape (PROTOCOL.md §10.3): every DEX field is an empty or zero placeholder.
            w.raw(
                b"\",\"ua\":\"\",\"oi\":0,\"mk\":false,\"ff\":false,\"lq\":false,\"fe\":\"0\",\
                  \"nf\":\"0\",\"fa\":\"\",\"co\":0,\"sd\":\"\",\"ft\":\"\",\"z\":\"0\",\"Z\":\"0\",\
                  \"rs\":\"0\"}",
            );
        }
    }

    fn legacy_dex_fields(&self, w: &mut Json<'_>, a: u64, r: u64) {
        w.raw(b"\",\"ua\":\"");
        w.raw(ADDRESS.as_bytes());
        w.raw(b"\",\"oi\":");
        w.num(85_000_000 + a);
        w.raw(b",\"mk\":");
        w.boolean(r & 2 == 0);
        w.raw(b",\"ff\":");
        w.boolean(r & 4 == 0);
        w.raw(b",\"lq\":false,\"fe\":\"0.");
        w.digits((r >> 20) % 10_000, 4);
        w.raw(b"\",\"nf\":\"0.");
        w.digits((r >> 20) % 10_000, 4);
        w.raw(b"\",\"fa\":\"USDC\"");
        if a % 4 == 0 {
            w.raw(b",\"co\":");
            w.num(a / 4);
        }
        w.raw(if r & 1 == 0 {
            b",\"sd\":\"BUY\"}"
        } else {
            b",\"sd\":\"SELL\"}"
        });
    }

    fn depth(&mut self, w: &mut Json<'_>, now: u64, levels: usize) {
        // A snapshot first and every DEPTH_SNAPSHOT_EVERY updates (`U = u = pu + 1`), updates of
        // 1..=3 ids each in between: U = pu + 1, u >= U.
        if self.book.is_none() {
            let mut book = DepthBook {
                anchor: self.mid,
                bids: BTreeMap::new(),
                asks: BTreeMap::new(),
                last_u: 0,
                updates_since_snapshot: 0,
            };
            for level in 0..levels as u64 {
                let offset = (level + 1) * 50;
                book.bids
                    .insert(book.anchor.saturating_sub(offset).max(1), self.quantity());
                book.asks.insert(book.anchor + offset, self.quantity());
            }
            self.book = Some(book);
        }
        let shared = self.shared;
        let snapshot = {
            let book = self.book.as_mut().expect("just made");
            if shared {
                // Under `shared_sequence` the server's clock gives the ids: one per frame.
                book.last_u = self.seq - 1;
            }
            let first = if shared { self.first } else { book.last_u == 0 };
            first || book.updates_since_snapshot >= DEPTH_SNAPSHOT_EVERY
        };
        if !snapshot && !shared && std::mem::take(&mut self.gap) {
            let _ = self.depth_update(levels);
        }
        let (first, last, prev, sides) = if snapshot {
            let book = self.book.as_mut().expect("just made");
            let prev = book.last_u;
            book.last_u += 1;
            book.updates_since_snapshot = 0;
            let bids = book.bids.iter().rev().map(|(p, q)| (*p, *q)).collect();
            let asks = book.asks.iter().map(|(p, q)| (*p, *q)).collect();
            (prev + 1, prev + 1, prev, [bids, asks])
        } else {
            self.depth_update(levels)
        };
        w.raw(b"{\"e\":\"depthUpdate\",\"E\":");
        w.num(now);
        w.raw(b",\"T\":");
        w.num(now.saturating_sub(900));
        w.raw(b",\"s\":\"");
        w.raw(self.symbol.as_bytes());
        w.raw(b"\",\"U\":");
        w.num(first);
        w.raw(b",\"u\":");
        w.num(last);
        w.raw(b",\"pu\":");
        w.num(prev);
        for (key, side) in [&b",\"b\":["[..], &b"],\"a\":["[..]]
            .into_iter()
            .zip(&sides)
        {
            w.raw(key);
            for (i, (price, qty)) in side.iter().enumerate() {
                if i > 0 {
                    w.raw(b",");
                }
                w.raw(b"[\"");
                w.cents(*price);
                w.raw(b"\",\"");
                if *qty == 0 {
                    w.raw(b"0");
                } else {
                    w.num(qty / 1000);
                    w.raw(b".");
                    w.digits(qty % 1000, 3);
                }
                w.raw(b"\"]");
            }
        }
        w.raw(if snapshot {
            b"],\"mt\":\"s\"}"
        } else {
            b"],\"mt\":\"u\"}"
        });
    }

    /// A non-zero quantity in thousandths.
    fn quantity(&mut self) -> u64 {
        1 + self.next_rand() % 20_000
    }

    /// The next update: 1..=3 levels a side, one in seven a removal (quantity 0), applied to the
    /// book. Returns (U, u, pu, [bids, asks]).
    fn depth_update(&mut self, levels: usize) -> (u64, u64, u64, Sides) {
        let span = if self.shared { 0 } else { self.next_rand() % 3 };
        let mut sides: Sides = Default::default();
        for (index, side) in sides.iter_mut().enumerate() {
            let count = 1 + self.next_rand() % 3;
            for _ in 0..count {
                let r = self.next_rand();
                let offset = (r % levels as u64 + 1) * 50;
                let qty = if r % 7 == 0 { 0 } else { self.quantity() };
                let book = self.book.as_mut().expect("a snapshot came first");
                let (price, levels) = if index == 0 {
                    (book.anchor.saturating_sub(offset).max(1), &mut book.bids)
                } else {
                    (book.anchor + offset, &mut book.asks)
                };
                if qty == 0 {
                    levels.remove(&price);
                } else {
                    levels.insert(price, qty);
                }
                side.push((price, qty));
            }
        }
        let book = self.book.as_mut().expect("a snapshot came first");
        let prev = book.last_u;
        book.last_u = prev + 1 + span;
        book.updates_since_snapshot += 1;
        (prev + 1, book.last_u, prev, sides)
    }

    fn book_ticker(&mut self, w: &mut Json<'_>, now: u64) {
        let r = self.next_rand();
        w.raw(b"{\"e\":\"bookTicker\",\"u\":");
        w.num(self.seq);
        w.raw(b",\"E\":");
        w.num(now);
        w.raw(b",\"T\":");
        w.num(now.saturating_sub(900));
        w.raw(b",\"s\":\"");
        w.raw(self.symbol.as_bytes());
        w.raw(b"\",\"b\":\"");
        w.cents(self.mid - 25);
        w.raw(b"\",\"B\":\"0.");
        w.digits(r % 1000, 3);
        w.raw(b"\",\"a\":\"");
        w.cents(self.mid + 25);
        w.raw(b"\",\"A\":\"0.");
        w.digits((r >> 16) % 1000, 3);
        w.raw(if self.is_snapshot() {
            b"\",\"mt\":\"s\"}"
        } else {
            b"\",\"mt\":\"u\"}"
        });
    }

    fn mark_price(&mut self, w: &mut Json<'_>, now: u64) {
        let r = self.next_rand();
        w.raw(b"{\"e\":\"markPriceUpdate\",\"E\":");
        w.num(now);
        w.raw(b",\"s\":\"");
        w.raw(self.symbol.as_bytes());
        w.raw(b"\",\"p\":\"");
        w.cents(self.mid);
        w.raw(b"\",\"i\":\"");
        w.cents(self.mid.saturating_sub(r % 40));
        w.raw(b"\",\"r\":\"0.0000");
        w.digits(r % 10_000, 4);
        w.raw(b"\"");
        if self.seq % 2 == 0 {
            w.raw(b",\"P\":\"");
            w.cents(self.mid + 3);
            w.raw(b"\",\"T\":");
            w.num(now - now % 3_600_000_000 + 3_600_000_000);
            w.raw(b",\"th\":\"0x");
            w.hex(r);
            w.raw(b"\"");
        }
        w.raw(b"}");
    }

    fn force_order(&mut self, w: &mut Json<'_>, now: u64) {
        let r = self.next_rand();
        w.raw(b"{\"e\":\"forceOrder\",\"E\":");
        w.num(now);
        w.raw(b",\"o\":{\"s\":\"");
        w.raw(self.symbol.as_bytes());
        w.raw(if r & 1 == 0 {
            b"\",\"S\":\"SELL\""
        } else {
            b"\",\"S\":\"BUY\""
        });
        w.raw(b",\"o\":\"LIMIT\",\"f\":\"IOC\",\"q\":\"0.");
        w.digits(r % 1000, 3);
        w.raw(b"\",\"z\":\"0.");
        w.digits(r % 1000, 3);
        w.raw(b"\",\"p\":\"");
        w.cents(self.mid - 100);
        w.raw(b"\",\"ap\":\"");
        w.cents(self.mid - 90);
        w.raw(b"\",\"X\":\"FILLED\",\"l\":\"0.");
        w.digits(r % 1000, 3);
        w.raw(b"\",\"T\":");
        w.num(now.saturating_sub(1000));
        w.raw(b",\"th\":\"0x");
        w.hex(r);
        w.raw(b"\",\"ua\":\"");
        w.raw(ADDRESS.as_bytes());
        w.raw(b"\",\"oi\":");
        w.num(86_000_000 + self.seq);
        w.raw(b",\"ti\":");
        w.num(1_770_000 + self.seq);
        w.raw(b"}}");
    }
}

/// Appends JSON fragments; every helper is a few copies, nothing allocates.
struct Json<'a>(&'a mut Vec<u8>);

impl Json<'_> {
    fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn num(&mut self, v: u64) {
        self.0
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }
    fn boolean(&mut self, v: bool) {
        self.raw(if v { b"true" } else { b"false" });
    }
    /// `v` hundredths as a decimal string, e.g. 6425050 → "64250.50".
    fn cents(&mut self, v: u64) {
        self.num(v / 100);
        self.0.push(b'.');
        self.digits(v % 100, 2);
    }
    /// `v` zero-padded to `width` digits.
    fn digits(&mut self, v: u64, width: usize) {
        let mut buf = itoa::Buffer::new();
        let s = buf.format(v);
        for _ in s.len()..width {
            self.0.push(b'0');
        }
        self.0.extend_from_slice(s.as_bytes());
    }
    fn hex(&mut self, v: u64) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for shift in (0..16).rev() {
            self.0.push(HEX[((v >> (shift * 4)) & 0xF) as usize]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn frames(kind: FeedKind, n: usize) -> Vec<Value> {
        frames_of(kind, n, false)
    }

    fn frames_of(kind: FeedKind, n: usize, legacy: bool) -> Vec<Value> {
        let mut feed = Feed::new("BTC-USD", kind, 42, legacy);
        (0..n)
            .map(|_| {
                let mut out = Vec::new();
                feed.write_frame(&mut out, 1_706_745_600_000_000);
                let header = if out[1] == 126 { 4 } else { 2 };
                assert_eq!(out[0], 0x81);
                serde_json::from_slice(&out[header..]).expect("valid JSON")
            })
            .collect()
    }

    /// The live aggTrade has exactly the keys of the frame captured live on testnet
    /// (tests/data/live_2026.jsonl line 1).
    #[test]
    fn agg_trade_has_the_live_shape() {
        let live = r#"{"e":"aggTrade","E":1779600413218736,"s":"SOL-USD","a":13205413,"p":"85.65","q":"0.01","f":13205413,"l":13205413,"T":1779600413211110,"m":true,"th":"0x94764a","ua":"","oi":0,"mk":false,"ff":false,"lq":false,"fe":"0","nf":"0","fa":"","co":0,"sd":"","ft":"","z":"0","Z":"0","rs":"0"}"#;
        let live: serde_json::Map<String, Value> = serde_json::from_str(live).unwrap();
        for (i, m) in frames(FeedKind::AggTrade, 8).iter().enumerate() {
            let keys: Vec<&String> = m.as_object().unwrap().keys().collect();
            assert_eq!(keys, live.keys().collect::<Vec<_>>());
            assert_eq!(m["a"], i as u64 + 1);
            assert_eq!(
                (&m["ua"], &m["co"], &m["rs"]),
                (&live["ua"], &live["co"], &live["rs"])
            );
        }
    }

    #[test]
    fn legacy_agg_trade_ids_count_up_and_fields_are_complete() {
        let msgs = frames_of(FeedKind::AggTrade, 8, true);
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(m["a"], i as u64 + 1);
            for k in [
                "e", "E", "s", "p", "q", "f", "l", "T", "m", "th", "ua", "oi", "mk", "ff", "lq",
                "fe", "nf", "fa", "sd",
            ] {
                assert!(!m[k].is_null(), "missing {k}");
            }
        }
        assert!(msgs.iter().any(|m| m["co"].is_u64()));
        assert!(msgs.iter().any(|m| m.get("co").is_none()));
    }

    #[test]
    fn depth_chains_pu_to_previous_u() {
        let msgs = frames(FeedKind::Depth(5), 250);
        assert_eq!(msgs[0]["mt"], "s");
        assert_eq!(msgs[0]["pu"], 0);
        assert_eq!(msgs[0]["b"].as_array().unwrap().len(), 5);
        for (i, pair) in msgs.windows(2).enumerate() {
            assert_eq!(pair[1]["pu"], pair[0]["u"]);
            assert_eq!(
                pair[1]["U"].as_u64().unwrap(),
                pair[0]["u"].as_u64().unwrap() + 1
            );
            assert!(pair[1]["u"].as_u64() >= pair[1]["U"].as_u64());
            let periodic = (i + 1) as u64 % (DEPTH_SNAPSHOT_EVERY + 1) == 0;
            assert_eq!(
                pair[1]["mt"],
                if periodic { "s" } else { "u" },
                "frame {}",
                i + 1
            );
        }
    }

    type Side = BTreeMap<String, String>;

    /// Applies a depth frame to a client-side book (prices as text: the mock's all have two
    /// decimals and the same integer width here); a zero quantity removes.
    fn apply(book: &mut [Side; 2], m: &Value) {
        if m["mt"] == "s" {
            *book = Default::default();
        }
        for (side, key) in book.iter_mut().zip(["b", "a"]) {
            for level in m[key].as_array().unwrap() {
                let (p, q) = (level[0].as_str().unwrap(), level[1].as_str().unwrap());
                if q.bytes().all(|c| c == b'0' || c == b'.') {
                    assert_eq!(q, "0");
                    side.remove(p);
                } else {
                    side.insert(p.into(), q.into());
                }
            }
        }
    }

    #[test]
    fn depth_snapshots_are_the_state_the_updates_made() {
        let msgs = frames(FeedKind::Depth(10), 1000);
        let mut book: [Side; 2] = Default::default();
        let mut checked = 0;
        let mut removals = 0;
        for m in &msgs {
            if m["mt"] == "s" && !book[0].is_empty() {
                let bids: Vec<Value> = book[0].iter().rev().map(|(p, q)| json!([p, q])).collect();
                let asks: Vec<Value> = book[1].iter().map(|(p, q)| json!([p, q])).collect();
                assert_eq!((&m["b"], &m["a"]), (&Value::from(bids), &Value::from(asks)));
                checked += 1;
            }
            removals += m["b"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|l| l[1] == "0")
                .count();
            apply(&mut book, m);
            assert!(book[0].len() <= 10 && book[1].len() <= 10);
        }
        assert!(checked >= 9 && removals > 50, "{checked} {removals}");
    }

    #[test]
    fn a_depth_gap_skips_one_update_the_book_still_has() {
        let mut feed = Feed::new("BTC-USD", FeedKind::Depth(5), 42, false);
        let mut next = || {
            let mut out = Vec::new();
            feed.write_frame(&mut out, 1);
            let header = if out[1] == 126 { 4 } else { 2 };
            serde_json::from_slice::<Value>(&out[header..]).unwrap()
        };
        let first = next();
        let second = next();
        assert_eq!(second["pu"], first["u"]);
        assert!(feed.skip_depth_update());
        let mut out = Vec::new();
        feed.write_frame(&mut out, 1);
        let header = if out[1] == 126 { 4 } else { 2 };
        let third: Value = serde_json::from_slice(&out[header..]).unwrap();
        let skipped_to = third["pu"].as_u64().unwrap();
        assert!(skipped_to > second["u"].as_u64().unwrap());
        assert_eq!(third["U"].as_u64().unwrap(), skipped_to + 1);
        assert!(!Feed::new("BTC-USD", FeedKind::AggTrade, 1, false).skip_depth_update());
    }

    #[test]
    fn book_ticker_mark_price_force_order_shapes() {
        let bt = frames(FeedKind::BookTicker, 3);
        assert_eq!(
            (bt[0]["mt"].as_str(), bt[1]["mt"].as_str()),
            (Some("s"), Some("u"))
        );
        assert_eq!(bt[2]["u"], 3);
        let mp = frames(FeedKind::MarkPrice, 2);
        assert_eq!(mp[0]["e"], "markPriceUpdate");
        assert!(mp[1]["P"].is_string() && mp[1]["T"].is_u64());
        let fo = frames(FeedKind::ForceOrder, 1);
        assert_eq!(fo[0]["e"], "forceOrder");
        for k in [
            "s", "S", "o", "f", "p", "ap", "X", "l", "T", "th", "ua", "oi", "ti",
        ] {
            assert!(!fo[0]["o"][k].is_null(), "missing o.{k}");
        }
    }
}
