//! One connection's protocol state: answers client requests (PROTOCOL.md §2, §3.4, §3.5) and
//! owns the market-data feeds of its subscriptions.
//!
//! Pure logic, no I/O: [`Session::handle`] turns one client frame into the JSON replies, in order.

use serde_json::{Map, Value};

use crate::feed::{Feed, FeedKind};
use crate::topic::{self, Stream, TopicError};

/// How to answer orders: accept, or reject with an untagged error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderReject {
    pub code: i64,
    pub msg: String,
}

/// What [`Session::handle`] needs from the server around it.
pub struct RequestContext<'a> {
    pub now_us: u64,
    pub reject_orders: Option<&'a OrderReject>,
    /// Allocates exchange order ids (shared by all connections, so ids are unique per server).
    pub next_order_id: &'a dyn Fn() -> u64,
}

#[derive(Debug)]
struct Subscription {
    topic: String,
    stream: Stream,
    feed: Option<Feed>,
}

#[derive(Debug)]
pub struct Session {
    symbols: Vec<String>,
    max_topics: Option<usize>,
    subs: Vec<Subscription>,
    /// Round-robin cursor over the market-data subscriptions.
    cursor: usize,
    /// Bumped on every subscription change, so a pre-encoded ring knows it is stale.
    generation: u64,
    seed: u64,
    last_order_id: Option<u64>,
    legacy_shapes: bool,
    /// Numbers the completed Degen positions (sent as a decimal string, as the server does).
    degen_sequence: u64,
}

/// Order methods and the ack tag each one gets (the method string as sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrderAction {
    /// `SUBMIT`: the action is inside the transaction; the mock takes it as a place that fills.
    Submit,
    Place,
    Cancel,
    Amend,
    CancelAll,
}

impl Session {
    pub fn new(
        symbols: Vec<String>,
        max_topics: Option<usize>,
        seed: u64,
        legacy_shapes: bool,
    ) -> Self {
        Self {
            symbols,
            max_topics,
            subs: Vec::new(),
            cursor: 0,
            generation: 0,
            seed,
            last_order_id: None,
            legacy_shapes,
            degen_sequence: 0,
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The subscribed topics, in subscription order.
    pub fn topics(&self) -> Vec<String> {
        self.subs.iter().map(|s| s.topic.clone()).collect()
    }

    pub fn has_market_data(&self) -> bool {
        self.subs.iter().any(|s| s.feed.is_some())
    }

    /// The `depth_gap` fault: the next update of every depth topic subscribed now skips a
    /// sequence. Returns how many topics it hit.
    pub fn depth_gap(&mut self) -> usize {
        self.subs
            .iter_mut()
            .filter_map(|s| s.feed.as_mut())
            .map(Feed::skip_depth_update)
            .filter(|hit| *hit)
            .count()
    }

    /// Appends the next market-data frame (round robin over the topics); false if none streams.
    pub fn write_market_frame(&mut self, out: &mut Vec<u8>, now_us: u64) -> bool {
        let n = self.subs.len();
        for _ in 0..n {
            let i = self.cursor % n;
            self.cursor = (i + 1) % n;
            if let Some(feed) = self.subs[i].feed.as_mut() {
                feed.write_frame(out, now_us);
                return true;
            }
        }
        false
    }

    /// `shared_sequence`: appends, for every streaming topic, the frames of the ids after its
    /// last one up to `due` (a new subscription starts at `due`), at most `cap` frames in all.
    /// Returns the number of frames written; fewer than due means call again.
    pub fn write_shared_frames(
        &mut self,
        out: &mut Vec<u8>,
        now_us: u64,
        due: u64,
        cap: u64,
    ) -> u64 {
        let mut written = 0;
        for sub in &mut self.subs {
            let Some(feed) = sub.feed.as_mut() else {
                continue;
            };
            let mut next = match feed.shared_seq() {
                0 => due,
                last => last + 1,
            };
            while next <= due && written < cap {
                feed.write_shared(out, now_us, next);
                next += 1;
                written += 1;
            }
        }
        written
    }

    /// Answers one client frame. Never fails: bad input gets an error reply.
    pub fn handle(&mut self, frame: &[u8], ctx: &RequestContext<'_>) -> Vec<String> {
        let now = ctx.now_us;
        let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(frame) else {
            return vec![tagged_error(
                &Value::Null,
                now,
                -1008,
                "invalid request: not a JSON object",
                None,
            )];
        };
        let id = match req.get("id") {
            None | Some(Value::Null) => Value::Null,
            Some(v) if v.is_u64() => v.clone(),
            Some(_) => {
                return vec![tagged_error(
                    &Value::Null,
                    now,
                    -1008,
                    "invalid request: id must be a u64 or null",
                    None,
                )];
            }
        };
        let Some(method) = req.get("method").and_then(Value::as_str) else {
            return vec![tagged_error(
                &id,
                now,
                -1008,
                "invalid request: missing method",
                None,
            )];
        };
        match method {
            "SUBSCRIBE" | "subscribe" => match topic_params(&req) {
                Some(topics) => self.subscribe(&topics, &id, now),
                None => vec![tagged_error(
                    &id,
                    now,
                    -1008,
                    "invalid request: params must be a list of topics",
                    None,
                )],
            },
            "UNSUBSCRIBE" | "unsubscribe" => match topic_params(&req) {
                Some(topics) => self.unsubscribe(&topics, &id, now),
                None => vec![tagged_error(
                    &id,
                    now,
                    -1008,
                    "invalid request: params must be a list of topics",
                    None,
                )],
            },
            "LIST_SUBSCRIPTIONS" | "list_subscriptions" => {
                let topics = Value::from(self.topics());
                vec![format!(
                    r#"{{"e":"list_subscriptions","id":{id},"E":{now},"result":{topics}}}"#
                )]
            }
            "PING" | "ping" => vec![format!(r#"{{"e":"pong","id":{id},"E":{now}}}"#)],
            "SUBMIT" | "submit" => self.order(method, OrderAction::Submit, &req, &id, ctx),
            "ORDER.PLACE" | "order.place" => self.order(method, OrderAction::Place, &req, &id, ctx),
            "ORDER.CANCEL" | "order.cancel" => {
                self.order(method, OrderAction::Cancel, &req, &id, ctx)
            }
            "ORDER.AMEND" | "order.amend" | "order.modify" => {
                self.order(method, OrderAction::Amend, &req, &id, ctx)
            }
            "ORDER.CANCEL_ALL" | "order.cancelAll" => {
                self.order(method, OrderAction::CancelAll, &req, &id, ctx)
            }
            other => vec![tagged_error(
                &id,
                now,
                -1008,
                &format!("unknown method: {other}"),
                None,
            )],
        }
    }

    fn subscribe(&mut self, topics: &[String], id: &Value, now: u64) -> Vec<String> {
        let mut replies = Vec::new();
        let mut snapshots = Vec::new();
        let mut added = 0;
        for t in topics {
            let error = match topic::parse(t, &self.symbols) {
                Err(TopicError::Format) => Some((-1004, "Invalid subscription format".to_string())),
                Err(TopicError::UnknownSymbol(s)) => {
                    Some((-1122, format!("symbol not found: {s}")))
                }
                Ok(_) if self.subs.iter().any(|s| &s.topic == t) => {
                    Some((-1010, "subscription already exists".to_string()))
                }
                Ok(_) if self.max_topics.is_some_and(|m| self.subs.len() >= m) => {
                    Some((-1003, "too many subscriptions".to_string()))
                }
                Ok((stream, symbol)) => {
                    let feed = feed_kind(stream).map(|kind| {
                        self.seed = self.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                        Feed::new(symbol, kind, self.seed, self.legacy_shapes)
                    });
                    self.subs.push(Subscription {
                        topic: t.clone(),
                        stream,
                        feed,
                    });
                    added += 1;
                    if stream == Stream::MarketStatus {
                        snapshots.push(self.market_status_snapshot(now));
                    }
                    None
                }
            };
            if let Some((code, msg)) = error {
                replies.push(tagged_error(id, now, code, &msg, Some(t)));
            }
        }
        if added > 0 || topics.is_empty() {
            self.generation += 1;
            replies.push(method_result("subscribe", id, now));
        }
        replies.extend(snapshots);
        replies
    }

    /// `!marketStatus@arr`'s snapshot: every configured symbol, trading.
    fn market_status_snapshot(&self, now: u64) -> String {
        let markets: Vec<String> = self
            .symbols
            .iter()
            .enumerate()
            .map(|(i, s)| {
                format!(
                    r#"{{"s":{},"i":{},"st":"TRADING"}}"#,
                    Value::from(s.as_str()),
                    i + 1
                )
            })
            .collect();
        format!(
            r#"{{"e":"marketStatusUpdate","E":{now},"mt":"s","m":[{}]}}"#,
            markets.join(",")
        )
    }

    fn subscribers(&self, stream: Stream) -> Vec<&str> {
        self.subs
            .iter()
            .filter(|s| s.stream == stream)
            .filter_map(|s| s.topic.split_once('@').map(|(a, _)| a))
            .collect()
    }

    fn unsubscribe(&mut self, topics: &[String], id: &Value, now: u64) -> Vec<String> {
        // Idempotent, as the SDK documents: unknown topics are simply not there.
        self.subs.retain(|s| !topics.contains(&s.topic));
        self.generation += 1;
        vec![method_result("unsubscribe", id, now)]
    }

    fn order(
        &mut self,
        method: &str,
        action: OrderAction,
        req: &Map<String, Value>,
        id: &Value,
        ctx: &RequestContext<'_>,
    ) -> Vec<String> {
        let now = ctx.now_us;
        let tx = req
            .get("params")
            .and_then(|p| p.get("tx"))
            .and_then(Value::as_str);
        let Some(tx) = tx.filter(|t| !t.is_empty()) else {
            return vec![untagged_error(
                id,
                now,
                -1102,
                "mandatory parameter missing: tx",
                Some("tx"),
            )];
        };
        if let Some(reject) = ctx.reject_orders {
            return vec![untagged_error(id, now, reject.code, &reject.msg, None)];
        }
        let places = matches!(action, OrderAction::Place | OrderAction::Submit);
        let order_id = if places {
            (ctx.next_order_id)()
        } else {
            self.last_order_id.unwrap_or_else(|| (ctx.next_order_id)())
        };
        if places {
            self.last_order_id = Some(order_id);
        }
        let tx_id = tx_hash(tx);
        let mut replies = vec![format!(
            r#"{{"e":{},"id":{id},"E":{now},"results":{{"tx_id":"{tx_id}","status":"submitted","order_ids":[{order_id}],"client_order_ids":[]}}}}"#,
            Value::from(method)
        )];
        if action == OrderAction::Submit {
            let symbol = self
                .symbols
                .first()
                .cloned()
                .unwrap_or_else(|| "BTC-USD".into());
            replies.extend(self.submit_updates(&symbol, order_id, &tx_id, now));
            return replies;
        }
        let symbol = self.symbols.first().map_or("BTC-USD", String::as_str);
        for address in self.subscribers(Stream::UserOrders) {
            let (status, rest) = match action {
                OrderAction::Submit | OrderAction::Place | OrderAction::Amend => (
                    "NEW",
                    r#","S":"BUY","o":"LIMIT","f":"GTC","p":"64000.00","q":"0.010""#,
                ),
                OrderAction::Cancel | OrderAction::CancelAll => ("CANCELED", ""),
            };
            replies.push(format!(
                r#"{{"e":"orderTradeUpdate","E":{now},"o":{{"s":{},"i":{order_id},"X":"{status}","x":"{status}","T":{now},"th":"{tx_id}","ua":{}{rest}}}}}"#,
                Value::from(symbol),
                Value::from(address)
            ));
        }
        replies
    }

    /// What a `SUBMIT` pushes, in the live shapes: per `user.orders` subscriber the new order and
    /// its complete fill (with the fields added on 2026-05-23; `ua` is the empty placeholder),
    /// and per `user.degenPositions` subscriber one completed position.
    fn submit_updates(
        &mut self,
        symbol: &str,
        order_id: u64,
        tx_id: &str,
        now: u64,
    ) -> Vec<String> {
        let mut out = Vec::new();
        let sym = Value::from(symbol);
        for _ in self.subscribers(Stream::UserOrders) {
            out.push(format!(
                r#"{{"e":"orderTradeUpdate","E":{now},"o":{{"s":{sym},"i":{order_id},"X":"NEW","x":"NEW","T":{now},"th":"{tx_id}","ua":"","S":"BUY","o":"LIMIT","f":"GTC","p":"64000.00","q":"0.010"}}}}"#
            ));
            out.push(format!(
                r#"{{"e":"orderTradeUpdate","E":{now},"o":{{"s":{sym},"i":{order_id},"X":"FILLED","x":"TRADE","T":{now},"th":"{tx_id}","ua":"","S":"BUY","ap":"64000.00","l":"0.010","L":"64000.00","n":"0.0256","N":"USDC","m":false,"t":{order_id},"rp":"0","ft":"o","z":"0.010","Z":"640.00","rs":"0"}}}}"#
            ));
        }
        let addresses: Vec<String> = self
            .subscribers(Stream::DegenPositions)
            .into_iter()
            .map(str::to_string)
            .collect();
        for address in addresses {
            self.degen_sequence += 1;
            let seq = self.degen_sequence;
            out.push(format!(
                r#"{{"e":"degenPositionCompleted","E":{now},"sequence":"{seq}","position":{{"id":"{tx_id}#{seq}","address":{},"marketId":1,"asset":"BTC","direction":"LONG","wager":"10.0","realizedPnl":"-0.5","fee":"0.01","status":"closed","closeReason":"user_close","liquidationType":null,"openedTimestampMicros":{},"closedTimestampMicros":{now},"holdTimeMicros":1000000,"closingTxHash":"{tx_id}"}}}}"#,
                Value::from(address.as_str()),
                now.saturating_sub(1_000_000),
            ));
        }
        out
    }
}

fn feed_kind(stream: Stream) -> Option<FeedKind> {
    Some(match stream {
        Stream::AggTrade => FeedKind::AggTrade,
        Stream::Depth(n) => FeedKind::Depth(n),
        Stream::BookTicker => FeedKind::BookTicker,
        Stream::MarkPrice => FeedKind::MarkPrice,
        Stream::ForceOrder => FeedKind::ForceOrder,
        Stream::UserOrders | Stream::DegenPositions | Stream::MarketStatus | Stream::Silent => {
            return None
        }
    })
}

/// `params` as a list of topic strings; a missing `params` is an empty list (as the SDK's type).
fn topic_params(req: &Map<String, Value>) -> Option<Vec<String>> {
    match req.get("params") {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(_) => None,
    }
}

// Replies are formatted by hand to keep the wire's key order (`e` first), which serde_json's
// sorted maps would lose; strings go through `Value` for escaping.

fn method_result(e: &str, id: &Value, now: u64) -> String {
    format!(r#"{{"e":"{e}","id":{id},"E":{now},"result":"success"}}"#)
}

fn error_body(code: i64, msg: &str, param: Option<&str>) -> String {
    let param = param.map_or(String::new(), |p| format!(r#","param":{}"#, Value::from(p)));
    format!(r#"{{"code":{code},"msg":{}{param}}}"#, Value::from(msg))
}

/// `{"e":"error",...}`: subscription and request errors.
pub fn tagged_error(id: &Value, now: u64, code: i64, msg: &str, param: Option<&str>) -> String {
    format!(
        r#"{{"e":"error","id":{id},"E":{now},"error":{}}}"#,
        error_body(code, msg, param)
    )
}

/// `{"id":..,"E":..,"error":..}` without `e`: order errors.
pub fn untagged_error(id: &Value, now: u64, code: i64, msg: &str, param: Option<&str>) -> String {
    format!(
        r#"{{"id":{id},"E":{now},"error":{}}}"#,
        error_body(code, msg, param)
    )
}

/// A deterministic fake tx hash: `0x` + 64 hex digits derived from the tx text.
fn tx_hash(tx: &str) -> String {
    use sha1::{Digest, Sha1};
    let digest = Sha1::digest(tx.as_bytes());
    let mut s = String::with_capacity(66);
    s.push_str("0x");
    for b in digest.iter().chain(digest.iter().take(12)) {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cell::Cell;

    fn session() -> Session {
        Session::new(
            vec!["BTC-USD".into(), "ETH-USD".into(), "SOL-USD".into()],
            Some(4),
            7,
            false,
        )
    }

    fn run(s: &mut Session, req: &str) -> Vec<Value> {
        run_with(s, req, None)
    }

    fn run_with(s: &mut Session, req: &str, reject: Option<&OrderReject>) -> Vec<Value> {
        let counter = Cell::new(100);
        let next = || {
            counter.set(counter.get() + 1);
            counter.get()
        };
        let ctx = RequestContext {
            now_us: 5,
            reject_orders: reject,
            next_order_id: &next,
        };
        s.handle(req.as_bytes(), &ctx)
            .iter()
            .map(|r| serde_json::from_str(r).unwrap())
            .collect()
    }

    #[test]
    fn subscribe_ack_list_unsubscribe() {
        let mut s = session();
        let r = run(
            &mut s,
            r#"{"method":"SUBSCRIBE","id":1,"params":["BTC-USD@aggTrade","ETH-USD@depth10"]}"#,
        );
        assert_eq!(
            r,
            vec![json!({"e":"subscribe","id":1,"E":5,"result":"success"})]
        );
        let r = run(&mut s, r#"{"method":"list_subscriptions","id":2}"#);
        assert_eq!(
            r[0]["result"],
            json!(["BTC-USD@aggTrade", "ETH-USD@depth10"])
        );
        let r = run(
            &mut s,
            r#"{"method":"UNSUBSCRIBE","id":3,"params":["BTC-USD@aggTrade","nope@x"]}"#,
        );
        assert_eq!(
            r,
            vec![json!({"e":"unsubscribe","id":3,"E":5,"result":"success"})]
        );
        assert_eq!(s.topics(), vec!["ETH-USD@depth10"]);
    }

    #[test]
    fn null_and_absent_ids_are_answered_with_null() {
        let mut s = session();
        assert_eq!(
            run(&mut s, r#"{"method":"PING"}"#)[0],
            json!({"e":"pong","id":null,"E":5})
        );
        assert_eq!(
            run(&mut s, r#"{"method":"ping","id":null}"#)[0]["id"],
            Value::Null
        );
        assert_eq!(
            run(&mut s, r#"{"method":"ping","id":18446744073709551615}"#)[0]["id"],
            json!(u64::MAX)
        );
    }

    #[test]
    fn subscribe_errors_are_per_topic_with_one_ack() {
        let mut s = session();
        run(
            &mut s,
            r#"{"method":"SUBSCRIBE","id":1,"params":["BTC-USD@aggTrade"]}"#,
        );
        let r = run(
            &mut s,
            r#"{"method":"SUBSCRIBE","id":2,"params":["BTC-USD@aggTrade","bad","FOO-USD@depth5","SOL-USD@bookTicker"]}"#,
        );
        assert_eq!(r.len(), 4);
        assert_eq!(
            (
                r[0]["error"]["code"].as_i64(),
                r[0]["error"]["param"].as_str()
            ),
            (Some(-1010), Some("BTC-USD@aggTrade"))
        );
        assert_eq!(r[1]["error"]["code"], -1004);
        assert_eq!(r[1]["e"], "error");
        assert_eq!(
            r[2]["error"],
            json!({"code":-1122,"msg":"symbol not found: FOO-USD","param":"FOO-USD@depth5"})
        );
        assert_eq!(
            r[3],
            json!({"e":"subscribe","id":2,"E":5,"result":"success"})
        );
        // Only duplicates: errors, no ack.
        let r = run(
            &mut s,
            r#"{"method":"SUBSCRIBE","id":3,"params":["BTC-USD@aggTrade"]}"#,
        );
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn max_topics_gives_1003() {
        let mut s = session();
        let r = run(
            &mut s,
            r#"{"method":"SUBSCRIBE","id":1,"params":["BTC-USD@aggTrade","BTC-USD@depth5","BTC-USD@markPrice","BTC-USD@forceOrder","BTC-USD@bookTicker"]}"#,
        );
        assert_eq!(r[0]["error"]["code"], -1003);
        assert_eq!(r[0]["error"]["param"], "BTC-USD@bookTicker");
        assert_eq!(r[1]["result"], "success");
    }

    #[test]
    fn bad_requests_get_tagged_1008() {
        let mut s = session();
        for bad in [
            "not json",
            "[1,2]",
            r#"{"id":1}"#,
            r#"{"method":"FLY","id":1}"#,
            r#"{"method":"PING","id":"x"}"#,
            r#"{"method":"SUBSCRIBE","id":1,"params":"BTC-USD@aggTrade"}"#,
        ] {
            let r = run(&mut s, bad);
            assert_eq!(
                (r.len(), r[0]["e"].as_str(), r[0]["error"]["code"].as_i64()),
                (1, Some("error"), Some(-1008)),
                "{bad}"
            );
        }
    }

    #[test]
    fn orders_ack_with_method_tag_and_push_order_updates() {
        let mut s = session();
        let r = run(
            &mut s,
            r#"{"method":"order.modify","id":9,"params":{"tx":"AAEC"}}"#,
        );
        assert_eq!(r.len(), 1);
        assert_eq!(r[0]["e"], "order.modify");
        assert_eq!(r[0]["results"]["status"], "submitted");
        run(
            &mut s,
            r#"{"method":"subscribe","id":1,"params":["addr1@user.orders"]}"#,
        );
        let r = run(
            &mut s,
            r#"{"method":"ORDER.PLACE","id":10,"params":{"tx":"AAEC"}}"#,
        );
        assert_eq!(r[0]["results"]["order_ids"], json!([101]));
        assert_eq!(r[1]["e"], "orderTradeUpdate");
        assert_eq!(
            (r[1]["o"]["ua"].as_str(), r[1]["o"]["o"].as_str()),
            (Some("addr1"), Some("LIMIT"))
        );
        let r = run(
            &mut s,
            r#"{"method":"ORDER.CANCEL","id":11,"params":{"tx":"AAEC"}}"#,
        );
        assert_eq!(r[1]["o"]["X"], "CANCELED");
        assert_eq!(r[1]["o"]["i"], 101);
        assert!(r[1]["o"].get("S").is_none());
    }

    #[test]
    fn rejected_and_malformed_orders_are_untagged() {
        let mut s = session();
        let reject = OrderReject {
            code: -2010,
            msg: "new order rejected".into(),
        };
        let r = run_with(
            &mut s,
            r#"{"method":"ORDER.CANCEL_ALL","id":null,"params":{"tx":"AAEC"}}"#,
            Some(&reject),
        );
        assert_eq!(
            r,
            vec![json!({"id":null,"E":5,"error":{"code":-2010,"msg":"new order rejected"}})]
        );
        let r = run(&mut s, r#"{"method":"ORDER.PLACE","id":1,"params":{}}"#);
        assert!(r[0].get("e").is_none());
        assert_eq!(r[0]["error"]["code"], -1102);
    }

    #[test]
    fn market_frames_round_robin() {
        let mut s = session();
        run(
            &mut s,
            r#"{"method":"SUBSCRIBE","id":1,"params":["BTC-USD@aggTrade","x@user.orders","ETH-USD@markPrice"]}"#,
        );
        let mut out = Vec::new();
        let mut kinds = Vec::new();
        for _ in 0..4 {
            out.clear();
            assert!(s.write_market_frame(&mut out, 1));
            let v: Value = serde_json::from_slice(&out[4..])
                .or_else(|_| serde_json::from_slice(&out[2..]))
                .unwrap();
            kinds.push(v["e"].as_str().unwrap().to_string());
        }
        assert_eq!(
            kinds,
            ["aggTrade", "markPriceUpdate", "aggTrade", "markPriceUpdate"]
        );
    }

    #[test]
    fn submit_fills_and_completes_degen_positions_and_market_status_snapshots() {
        let mut s = session();
        let r = run(
            &mut s,
            r#"{"method":"SUBSCRIBE","id":1,"params":["a1@user.orders","a1@user.degenPositions","!marketStatus@arr"]}"#,
        );
        assert_eq!(r[0]["e"], "subscribe");
        assert_eq!(
            (&r[1]["e"], &r[1]["mt"]),
            (&json!("marketStatusUpdate"), &json!("s"))
        );
        assert_eq!(r[1]["m"].as_array().unwrap().len(), 3);
        let r = run(
            &mut s,
            r#"{"method":"SUBMIT","id":7,"params":{"tx":"AAEC"}}"#,
        );
        assert_eq!((&r[0]["e"], &r[0]["id"]), (&json!("SUBMIT"), &json!(7)));
        assert_eq!(r[1]["o"]["x"], "NEW");
        let fill = &r[2]["o"];
        assert_eq!(
            (&fill["x"], &fill["ua"], &fill["N"]),
            (&json!("TRADE"), &json!(""), &json!("USDC"))
        );
        for key in ["m", "t", "rp", "ap", "ft", "z", "Z", "rs"] {
            assert!(!fill[key].is_null(), "{key}");
        }
        assert_eq!(
            (&r[3]["e"], &r[3]["sequence"]),
            (&json!("degenPositionCompleted"), &json!("1"))
        );
        let r = run(
            &mut s,
            r#"{"method":"submit","id":8,"params":{"tx":"AAED"}}"#,
        );
        assert_eq!(r[3]["sequence"], "2");
    }
}
