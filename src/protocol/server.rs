//! Server → client messages, told apart exactly as the SDK's untagged `ServerMessage` does
//! (PROTOCOL.md §10.2): the tagged control messages first, then the untagged candidates in a fixed
//! order, and `Unknown` for everything else. Parsing never fails.
//!
//! One pass captures every known key as a borrowed raw slice (`messages::Top`); each candidate
//! then decodes only the slices it needs with serde's strict typing (`fields`). The structs, the
//! capture structs and the candidates are generated from `spec/messages.toml`.

pub use super::fields::{Level, Str};
pub use super::messages::*;
use super::sdk_rules;

impl ServerMessage {
    pub fn is_error(&self) -> bool {
        matches!(self, ServerMessage::ErrorMessage(_))
    }

    /// The `connected` status that opens every connection.
    pub fn is_connected_status(&self) -> bool {
        matches!(self, ServerMessage::Status(s) if s.status == "connected")
    }
}

/// The SDK's `TxStatus::is_success`.
pub fn is_success(status: &str) -> bool {
    matches!(
        status,
        "processed" | "published" | "submitted" | "finalized"
    )
}

impl OrderResult {
    pub fn is_success(&self) -> bool {
        is_success(&self.status)
    }
}

/// What the SDK's serde says when no variant of its untagged enum matches.
pub const NO_VARIANT: &str = "data did not match any variant of untagged enum ServerMessage";

pub fn parse_str(text: &str) -> ServerMessage {
    fast_path(text).unwrap_or_else(|| parse_ordered(text))
}

/// The ordered attempt alone, without the fast path.
fn parse_ordered(text: &str) -> ServerMessage {
    match serde_json::from_str::<Top<'_>>(text) {
        Ok(top) => match sdk_rules::refusal(text) {
            Some(why) => unknown(text, why.to_owned()),
            None => top
                .tagged()
                .or_else(|| top.untagged())
                .unwrap_or_else(|| unknown(text, NO_VARIANT.to_owned())),
        },
        Err(e) => unknown(text, e.to_string()),
    }
}

/// Binary frames carry UTF-8 JSON too.
pub fn parse_bytes(bytes: &[u8]) -> ServerMessage {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_str(text),
        Err(e) => unknown(
            &String::from_utf8_lossy(bytes),
            format!("invalid UTF-8: {e}"),
        ),
    }
}

/// The market-data hot path: one typed pass for depth, trades and tickers, taken only where its
/// success proves that every earlier candidate fails, so the answer is the same as the ordered
/// attempt. Tagged needs `e` to be a tag: here `e` is the literal matched below (the flat scanner
/// refuses escapes and repeated keys, serde's capture refuses repeated keys), never a tag.
/// DepthUpdate is the first untagged candidate. AggTrade needs `a` to be an integer, which
/// DepthUpdate's array `a` excludes. BookTicker's string `a` and `b` exclude AggTrade's integer
/// `a` and DepthUpdate's array `b`. MarkPrice is taken only from the flat scanner, which accepts
/// none of the keys that the three before it require (`U`, `q`, `B`). An order ack's `e` is its
/// tag, and the tagged candidate is the first: the flat scanner accepts a subset of what serde's
/// capture and `sdk_rules` accept, and reads the same values. `None` means: take the ordered
/// attempt.
fn fast_path(text: &str) -> Option<ServerMessage> {
    // Early returns rather than Option chains: each step of a chain moves the (large) message.
    Some(match leading_event_type(text)? {
        "aggTrade" => ServerMessage::AggTrade(match flat_agg_trade(text) {
            Some(m) => m,
            None => sdk_typed(text)?.agg_trade()?,
        }),
        "depthUpdate" => ServerMessage::DepthUpdate(match flat_depth_update(text) {
            Some(m) => m,
            None => sdk_typed(text)?.depth_update()?,
        }),
        "bookTicker" => ServerMessage::BookTicker(match flat_book_ticker(text) {
            Some(m) => m,
            None => sdk_typed(text)?.book_ticker()?,
        }),
        "markPriceUpdate" => ServerMessage::MarkPrice(flat_mark_price(text)?),
        tag => ServerMessage::OrderResult(flat_order_result(text, tag, order_result_method(tag)?)?),
    })
}

/// The fast path's typed serde pass, for frames the flat scanner gave up on: `None` also when the
/// SDK would refuse the frame (`sdk_rules`), which the ordered attempt then reports.
fn sdk_typed(text: &str) -> Option<Top<'_>> {
    serde_json::from_str::<Top<'_>>(text)
        .ok()
        .filter(|_| sdk_rules::refusal(text).is_none())
}

/// `e` when the frame starts with it (as every server frame does); only a hint for `fast_path`.
fn leading_event_type(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("{\"e\":\"")?;
    let end = rest.as_bytes().iter().take(32).position(|&b| b == b'"')?;
    Some(&rest[..end])
}

fn unknown(raw: &str, error: String) -> ServerMessage {
    ServerMessage::Unknown(Unknown {
        raw: raw.into(),
        error: error.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(name: &str) -> Vec<String> {
        let path = format!("{}/tests/data/{name}.jsonl", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn every_sample_parses_to_its_variant() {
        for (file, want) in [
            ("status", "Status"),
            ("pong", "Pong"),
            ("error", "ErrorMessage"),
            ("subscribe_ack", "SubscribeResult"),
            ("unsubscribe_ack", "UnsubscribeResult"),
            ("list_subscriptions", "ListSubscriptionsResult"),
            ("order_result", "OrderResult"),
            ("depth_update", "DepthUpdate"),
            ("agg_trade", "AggTrade"),
            ("book_ticker", "BookTicker"),
            ("mark_price", "MarkPrice"),
            ("force_order", "ForceOrder"),
            ("order_trade_update", "OrderUpdate"),
            ("sdk_unknown", "Unknown"),
        ] {
            for line in samples(file) {
                let m = parse_str(&line);
                assert_eq!(m.name(), want, "{file}: {line} -> {m:?}");
            }
        }
    }

    /// The frames the live exchange sends today (PROTOCOL.md §10.7), as the SDK 0.0.46 classifies
    /// them.
    #[test]
    fn live_2026_samples_parse_as_the_sdk_does() {
        let names: Vec<&str> = samples("live_2026")
            .iter()
            .map(|l| parse_str(l).name())
            .collect();
        assert_eq!(
            names,
            [
                "AggTrade",
                "OrderUpdate",
                "OrderUpdate",
                "MarketStatus",
                "MarketStatus",
                "DegenPositionCompleted",
                "SubscribeResult",
                "ListSubscriptionsResult",
            ]
        );
        let lines = samples("live_2026");
        let ServerMessage::AggTrade(t) = parse_str(&lines[0]) else {
            panic!()
        };
        assert_eq!(
            (
                t.fill_type.as_deref(),
                t.remaining_qty.as_deref(),
                t.order_id
            ),
            (Some(""), Some("0"), Some(0))
        );
        let ServerMessage::OrderUpdate(u) = parse_str(&lines[2]) else {
            panic!()
        };
        assert_eq!((u.kind, u.user_address), ("trade_fill", None));
        assert_eq!(
            (u.commission_asset.as_deref(), u.is_maker, u.trade_id),
            (Some("USDC"), Some(false), Some(13196983))
        );
        let ServerMessage::DegenPositionCompleted(d) = parse_str(&lines[5]) else {
            panic!()
        };
        assert_eq!(d.sequence, u64::MAX);
        assert_eq!(d.position.liquidation_type.as_deref(), Some("backstop"));
        let ServerMessage::MarketStatus(ms) = parse_str(&lines[4]) else {
            panic!()
        };
        assert_eq!(ms.markets[0].previous_status.as_deref(), Some("TRADING"));
        assert_eq!(ms.markets[1].change.as_deref(), Some("listed"));
    }

    /// Every message is moved at the enum's size from the parse to the queue and out of it: a
    /// large, rare message is boxed (`boxed` in spec/messages.toml) so that the hot market
    /// messages set the size. OrderUpdate unboxed made it 584 bytes.
    #[test]
    fn the_hot_market_messages_set_the_size_of_a_message() {
        use crate::protocol::messages::AggTrade;
        let hot = std::mem::size_of::<AggTrade>();
        assert!(
            std::mem::size_of::<ServerMessage>() <= hot + 8,
            "ServerMessage is {} bytes, AggTrade {hot}: box the large rare variant",
            std::mem::size_of::<ServerMessage>()
        );
    }

    #[test]
    fn live_agg_trade_takes_the_fast_path() {
        for line in samples("live_2026")
            .iter()
            .take(1)
            .chain(&samples("agg_trade"))
        {
            assert!(flat_agg_trade(line).is_some(), "{line}");
        }
        let bare = r#"{"e":"aggTrade","E":1,"s":"X","a":1,"p":"1","q":"1","f":1,"l":1,"T":1,"m":true,"th":"0x"}"#;
        let ServerMessage::AggTrade(t) = parse_str(bare) else {
            panic!()
        };
        assert_eq!((t.user_address, t.is_full_fill, t.fee), (None, None, None));
    }

    #[test]
    fn strict_event_types_of_the_new_messages() {
        let lines = samples("live_2026");
        for (line, from) in [
            (&lines[3], "marketStatusUpdate"),
            (&lines[5], "degenPositionCompleted"),
        ] {
            let other = line.replace(from, "somethingElse");
            assert_eq!(parse_str(&other).name(), "Unknown", "{other}");
        }
        let bad_sequence = lines[5].replace("\"18446744073709551615\"", "\"18446744073709551616\"");
        assert_eq!(parse_str(&bad_sequence).name(), "Unknown");
    }

    #[test]
    fn submit_acks_are_order_results() {
        for tag in ["submit", "SUBMIT"] {
            let frame = format!(
                r#"{{"e":"{tag}","id":7,"E":1,"results":{{"tx_id":"0x1","status":"processed"}}}}"#
            );
            let ServerMessage::OrderResult(r) = parse_str(&frame) else {
                panic!("{frame}")
            };
            assert_eq!((r.method, r.id), ("submit", Some(7)));
        }
    }

    #[test]
    fn agg_trade_fields() {
        let m = parse_str(&samples("agg_trade")[1]);
        let ServerMessage::AggTrade(t) = m else {
            panic!("{m:?}")
        };
        assert_eq!(t.symbol, "BTC-USD");
        assert_eq!(t.agg_trade_id, 884211);
        assert_eq!(t.client_order_id, Some(42));
        assert_eq!(t.price, "64251.0");
        assert!(!t.is_buyer_maker && t.is_full_fill == Some(true));
    }

    #[test]
    fn tagged_but_incomplete_falls_through_to_unknown() {
        // `pong` without `E` is tagged but incomplete; nothing later matches either.
        assert!(matches!(
            parse_str(r#"{"e":"pong","id":4}"#),
            ServerMessage::Unknown(_)
        ));
        // The status tag must not be stolen by the order results.
        let s = parse_str(&samples("status")[0]);
        assert!(s.is_connected_status());
    }

    #[test]
    fn order_results_and_aliases() {
        let lines = samples("order_result");
        let methods: Vec<&str> = lines
            .iter()
            .map(|l| match parse_str(l) {
                ServerMessage::OrderResult(r) => r.method,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            &methods[..5],
            ["place", "amend", "amend", "cancel_all", "cancel"]
        );
        let ServerMessage::OrderResult(r) = parse_str(&lines[3]) else {
            panic!()
        };
        assert!(r.client_order_ids.is_empty() && r.order_ids == [1, 2, 3]);
    }

    #[test]
    fn order_update_kinds_follow_field_presence() {
        let kinds: Vec<&str> = samples("order_trade_update")
            .iter()
            .map(|l| match parse_str(l) {
                ServerMessage::OrderUpdate(u) => u.kind,
                other => panic!("{other:?}"),
            })
            .collect();
        // Line 4 is a fill without `N m t rp`: a cancel under the SDK's rule (PROTOCOL.md §10.4).
        assert_eq!(
            kinds,
            [
                "place_order",
                "place_order",
                "cancel",
                "cancel",
                "place_order"
            ]
        );
    }

    #[test]
    fn u64_exact_and_strict_types() {
        let max = r#"{"e":"pong","id":18446744073709551615,"E":18446744073709551615}"#;
        assert_eq!(parse_str(max).request_id(), Some(u64::MAX));
        for bad in [
            r#"{"e":"pong","id":1,"E":1.0}"#,
            r#"{"e":"pong","id":1,"E":true}"#,
            r#"{"e":"pong","id":1,"E":-1}"#,
            r#"{"e":"pong","id":"1","E":1}"#,
            r#"{"e":"pong","id":1,"E":18446744073709551616}"#,
            r#"[1,2]"#,
            "not json",
            "",
        ] {
            assert!(matches!(parse_str(bad), ServerMessage::Unknown(_)), "{bad}");
        }
        assert_eq!(
            parse_str(r#"{"e":"pong","id":null,"E":1}"#).request_id(),
            None
        );
    }

    #[test]
    fn error_codes_kept_and_escapes_decoded() {
        let m = parse_str(
            r#"{"e":"error","id":1,"E":2,"error":{"code":-4242,"msg":"a\"b\u00e9","param":"x"}}"#,
        );
        let ServerMessage::ErrorMessage(e) = m else {
            panic!("{m:?}")
        };
        assert_eq!(
            (e.code, e.msg.as_str(), e.param.as_deref()),
            (-4242, "a\"bé", Some("x"))
        );
    }

    #[test]
    fn binary_and_invalid_utf8() {
        assert!(matches!(
            parse_bytes(br#"{"e":"pong","id":1,"E":1}"#),
            ServerMessage::Pong(_)
        ));
        let ServerMessage::Unknown(u) = parse_bytes(&[0xff, 0xfe]) else {
            panic!()
        };
        assert!(u.error.contains("UTF-8"));
    }

    /// Where the value of `key` (a scalar or a flat list) is in `line`, at any depth: the start
    /// of the key and the end of the value.
    fn value_span(line: &str, key: &str) -> Option<(usize, usize)> {
        let start = line.find(&format!("\"{key}\":"))?;
        let value = start + key.len() + 3;
        let end = if line[value..].starts_with('[') {
            value + line[value..].find(']')? + 1
        } else {
            value + line[value..].find([',', '}'])?
        };
        Some((start, end))
    }

    /// `line` without `key` and its value.
    fn without(line: &str, key: &str) -> String {
        let Some((start, end)) = value_span(line, key) else {
            return line.to_owned();
        };
        match (line[..start].ends_with(','), line[end..].starts_with(',')) {
            (_, true) => format!("{}{}", &line[..start], &line[end + 1..]),
            (true, false) => format!("{}{}", &line[..start - 1], &line[end..]),
            _ => format!("{}{}", &line[..start], &line[end..]),
        }
    }

    /// `line` with the value of `key` replaced by null.
    fn nulled(line: &str, key: &str) -> String {
        let Some((start, end)) = value_span(line, key) else {
            return line.to_owned();
        };
        format!("{}\"{key}\":null{}", &line[..start], &line[end..])
    }

    /// `line` with the value of its top-level `key` replaced by `value` (flat frames only).
    fn set_value(line: &str, key: &str, value: &str) -> String {
        let needle = format!("\"{key}\":");
        let start = line.find(&needle).unwrap() + needle.len();
        let end = start + line[start..].find([',', '}']).unwrap();
        format!("{}{value}{}", &line[..start], &line[end..])
    }

    /// Values that are not a u64 (`null` passes only where the field is optional): one list, so
    /// that every fast path is held to the same ones.
    const NOT_U64: [&str; 8] = [
        "1.5",
        "-1",
        "01",
        "18446744073709551616",
        "null",
        "1e3",
        "\"1\"",
        "true",
    ];

    /// The fast paths must give exactly what the ordered attempt gives, on odd frames too.
    #[test]
    fn fast_path_agrees_with_the_ordered_attempt() {
        let mut frames: Vec<String> = Vec::new();
        for file in ["agg_trade", "depth_update", "book_ticker", "mark_price"] {
            for line in samples(file) {
                frames.push(line.clone());
                frames.push(line.replace(',', " , ").replace(':', " :\t"));
                frames.push(format!(" {line}\n"));
                frames.push(line.replace("\"s\":\"", "\"s\":\"\\u0042"));
                frames.push(line.replacen("\"E\":", "\"E\":1,\"E\":", 1));
                frames.push(line.replacen('{', "{\"zz\":[1,{\"a\":2}],", 1));
                for bad in NOT_U64 {
                    frames.push(set_value(&line, "E", bad));
                }
                frames.push(set_value(&line, "E", "18446744073709551615"));
                frames.push(set_value(&line, "E", "0"));
                frames.push(line.replace("\"mt\":\"s\"", "\"mt\":\"x\""));
                frames.push(line.replace("\"co\":42", "\"co\":null"));
                frames.push(line.replace("\"co\":42", "\"co\":\"42\""));
                frames.push(line.replace("\"m\":false", "\"m\":0"));
                frames.push(line.replace("\"e\":\"aggTrade\"", "\"e\":\"pong\""));
                frames.push(line.replace("\"e\":\"depthUpdate\"", "\"e\":\"aggTrade\""));
                frames.push(line.replace("\"e\":\"bookTicker\"", "\"e\":\"depthUpdate\""));
                frames.push(line.replace("\"e\":\"aggTrade\"", "\"e\":\"markPriceUpdate\""));
                frames.push(line.replace("\"e\":\"markPriceUpdate\"", "\"e\":\"bookTicker\""));
                frames.push(line.replacen(
                    '{',
                    "{\"U\":1,\"u\":1,\"pu\":0,\"b\":[],\"a\":[],\"T\":1,\"mt\":\"s\",",
                    1,
                ));
                frames.push(line.replacen('{', "{\"P\":null,", 1));
                frames.push(line.replacen('{', "{\"th\":\"0x1\",", 1));
                frames.push(line.replacen("\"E\":", "\"\\u0045\":", 1));
                frames.push(line.replacen("\"s\":", "\"\\u0073\":", 1));
                frames.push(line.replacen('{', "{\"\":1,", 1));
                frames.push(line.replacen('{', "{\"abc\":1,", 1));
                frames.push(line.replacen('{', "{\"é\":1,", 1));
                frames.push(line[..line.len() - 1].to_owned());
                frames.push(format!("{line}x"));
                frames.push(line.replace("\"b\":[[", "\"b\":[[ "));
                frames.push(line.replace("\"]]", "\",\"3\"]]"));
            }
        }
        for frame in &frames {
            assert_eq!(parse_str(frame), parse_ordered(frame), "{frame}");
        }
        // Every prefix: the scanner's reads near the end of the text.
        for file in ["agg_trade", "depth_update", "book_ticker", "mark_price"] {
            for line in samples(file) {
                for end in 0..line.len() {
                    let frame = &line[..end];
                    assert_eq!(parse_str(frame), parse_ordered(frame), "{frame}");
                }
            }
        }
    }

    #[test]
    fn order_acks_take_the_fast_path() {
        for line in samples("order_result") {
            let tag = leading_event_type(&line).unwrap();
            let method = order_result_method(tag).unwrap();
            assert!(flat_order_result(&line, tag, method).is_some(), "{line}");
        }
    }

    /// The order acks' fast path, nested object and integer lists included, on odd frames.
    #[test]
    fn order_ack_fast_path_agrees_with_the_ordered_attempt() {
        let mut frames: Vec<String> = Vec::new();
        for line in samples("order_result") {
            // Spaced after the leading `{"e":"...",`, which the fast path looks for as it is.
            let (head, tail) = line.split_at(line.find(',').unwrap());
            let spaced = [
                tail.replace(',', " , ")
                    .replace(':', " :\t")
                    .replace('[', "[ "),
                tail.replace(']', " ]")
                    .replace('{', "{ ")
                    .replace('}', "\n}"),
            ]
            .map(|tail| format!("{head}{tail}"));
            for frame in [&line].into_iter().chain(&spaced) {
                assert!(fast_path(frame).is_some(), "{frame}");
            }
            frames.push(line.clone());
            frames.extend(spaced);
            frames.push(line.replace("\"id\":", "\"id\":null,\"x\":"));
            for (from, to) in [
                ("\"E\":", "\"E\":1,\"E\":"),
                ("\"status\":", "\"status\":\"dropped\",\"status\":"),
                ("\"status\":\"", "\"status\":\"\\u0070"),
                ("\"tx_id\":", "\"zz\":1,\"tx_id\":"),
                ("\"results\":{", "\"results\":{\"order_ids\":null,"),
                ("\"results\":{", "\"results\":{\"order_ids\":[],"),
                (
                    "\"results\":{",
                    "\"results\":{\"client_order_ids\":[7, 18446744073709551615],",
                ),
                ("\"results\":{", "\"results\":{\"order_ids\":[01],"),
                ("\"results\":{", "\"results\":{\"order_ids\":[-1],"),
                ("\"results\":{", "\"results\":{\"order_ids\":[1.5],"),
                ("\"results\":{", "\"results\":{\"order_ids\":[\"1\"],"),
                ("\"results\":{", "\"results\":{\"order_ids\":[1,],"),
                (
                    "\"results\":{",
                    "\"results\":{\"order_ids\":[18446744073709551616],",
                ),
                ("\"results\":{", "\"results\":{\"order_ids\":{},"),
                ("\"results\":{", "\"results\":{\"x\":{\"y\":[]},"),
                ("\"results\":{", "\"results\":{\"tx_id\":null,"),
                ("\"results\":{", "\"x\":{},\"results\":{"),
                ("\"results\":{", "\"results\":[],\"r\":{"),
                ("\"results\":{", "\"results\":null,\"r\":{"),
                ("\"results\":{\"tx_id\":", "\"results\":{\"\\u0074x_id\":"),
                ("\"tx_id\":\"", "\"tx_id\":1,\"t\":\""),
                ("\"e\":\"", "\"e\":\"x"),
                ("\"e\":\"order.place\"", "\"e\":\"ORDER.PLACE\""),
                ("\"e\":\"order.place\"", "\"e\":\"order.Place\""),
                ("\"e\":\"order.place\",", ""),
                ("\"id\":", "\"e\":\"order.cancel\",\"id\":"),
            ] {
                frames.push(line.replacen(from, to, 1));
            }
            for bad in NOT_U64 {
                frames.push(set_value(&line, "E", bad));
                if line.contains("\"id\":") {
                    frames.push(set_value(&line, "id", bad));
                }
            }
            frames.push(line.replacen("\"id\":", "\"i\":", 1));
            frames.push(line.replacen("\"E\":", "\"F\":", 1));
            // A required key missing, or null, inside `results` and at the top.
            for key in [
                "tx_id",
                "status",
                "order_ids",
                "client_order_ids",
                "E",
                "id",
            ] {
                frames.push(without(&line, key));
                frames.push(nulled(&line, key));
            }
            let results = line.find(",\"results\":").unwrap();
            frames.push(format!("{}}}", &line[..results]));
            frames.push(line.replacen("}}", "}", 1));
            frames.push(format!("{line}}}"));
        }
        for frame in &frames {
            assert_eq!(parse_str(frame), parse_ordered(frame), "{frame}");
        }
        for line in samples("order_result") {
            for end in 0..line.len() {
                let frame = &line[..end];
                assert_eq!(parse_str(frame), parse_ordered(frame), "{frame}");
            }
        }
    }

    /// `fast_path` relies on this: the event types it takes are not tags.
    #[test]
    fn fast_path_event_types_are_not_tags() {
        for e in ["aggTrade", "depthUpdate", "bookTicker", "markPriceUpdate"] {
            assert!(!TAGS.contains(&e), "{e}");
        }
    }

    /// Many levels, long strings (more than one 8-byte step of the scanner) and every position of
    /// a stop byte within a step agree with serde.
    #[test]
    fn flat_scanner_strings_and_long_level_lists() {
        let levels: Vec<String> = (0..45)
            .map(|i| format!(r#"["{}.{i:02}","0.{}"]"#, 64000 + i, "7".repeat(i % 13)))
            .collect();
        let depth = format!(
            r#"{{"e":"depthUpdate","E":1,"T":1,"s":"BTC-USD","U":1,"u":1,"pu":0,"b":[{}],"a":[{}],"mt":"s"}}"#,
            levels.join(","),
            levels[..20].join(",")
        );
        let ServerMessage::DepthUpdate(d) = parse_str(&depth) else {
            panic!("{depth}")
        };
        assert_eq!((d.bids.len(), d.asks.len()), (45, 20));
        assert_eq!(d.bids[44], ("64044.44".into(), "0.77777".into()));
        for len in 0..40 {
            for stop in ["", "\\n", "\\\"", "\u{1}", "\n", "é"] {
                let symbol = format!("{}{stop}", "S".repeat(len));
                let bt = format!(
                    r#"{{"e":"bookTicker","u":1,"E":1,"T":1,"s":"{symbol}","b":"1","B":"2","a":"3","A":"4","mt":"u"}}"#
                );
                assert_eq!(parse_str(&bt), parse_ordered(&bt), "{bt}");
            }
        }
    }

    #[test]
    fn depth_levels_are_pairs_and_mt_is_checked() {
        let three = r#"{"e":"depthUpdate","E":1,"T":1,"s":"X","U":1,"u":1,"pu":0,"b":[["1","2","3"]],"a":[],"mt":"s"}"#;
        assert!(matches!(parse_str(three), ServerMessage::Unknown(_)));
        let ok = three.replace(r#"["1","2","3"]"#, r#"["1","2"]"#);
        assert!(matches!(parse_str(&ok), ServerMessage::DepthUpdate(_)));
        let bad_mt = ok.replace(r#""mt":"s""#, r#""mt":"x""#);
        assert!(matches!(parse_str(&bad_mt), ServerMessage::Unknown(_)));
    }
}
