//! Client → server messages, serialized exactly as the SDK does: keys `method`, `id`, `params` in
//! that order, compact, `"id":null` when the caller gave none.

use std::fmt::Write;

/// The order RPCs; the action itself is inside the signed transaction. `Submit` is 0.3.0's one
/// method for every action; the other four are deprecated upstream but still on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderMethod {
    Submit,
    Place,
    Cancel,
    Amend,
    CancelAll,
}

impl OrderMethod {
    /// As `OrderResult.method` and `OrderUnacked.method` name it.
    pub fn name(self) -> &'static str {
        match self {
            OrderMethod::Submit => "submit",
            OrderMethod::Place => "place",
            OrderMethod::Cancel => "cancel",
            OrderMethod::Amend => "amend",
            OrderMethod::CancelAll => "cancel_all",
        }
    }

    pub fn wire(self) -> &'static str {
        match self {
            OrderMethod::Submit => "SUBMIT",
            OrderMethod::Place => "ORDER.PLACE",
            OrderMethod::Cancel => "ORDER.CANCEL",
            OrderMethod::Amend => "ORDER.AMEND",
            OrderMethod::CancelAll => "ORDER.CANCEL_ALL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    Subscribe {
        id: Option<u64>,
        params: Vec<String>,
    },
    Unsubscribe {
        id: Option<u64>,
        params: Vec<String>,
    },
    ListSubscriptions {
        id: Option<u64>,
    },
    Ping {
        id: Option<u64>,
    },
    Order {
        method: OrderMethod,
        id: Option<u64>,
        tx: String,
    },
}

impl ClientMessage {
    /// The wire method, as logs and reasons name it.
    pub fn method(&self) -> &'static str {
        match self {
            ClientMessage::Subscribe { .. } => "SUBSCRIBE",
            ClientMessage::Unsubscribe { .. } => "UNSUBSCRIBE",
            ClientMessage::ListSubscriptions { .. } => "LIST_SUBSCRIPTIONS",
            ClientMessage::Ping { .. } => "PING",
            ClientMessage::Order { method, .. } => method.wire(),
        }
    }

    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(64);
        let method = self.method();
        let (ClientMessage::Subscribe { id, .. }
        | ClientMessage::Unsubscribe { id, .. }
        | ClientMessage::ListSubscriptions { id }
        | ClientMessage::Ping { id }
        | ClientMessage::Order { id, .. }) = self;
        out.push_str("{\"method\":\"");
        out.push_str(method);
        out.push_str("\",\"id\":");
        match id {
            Some(id) => {
                let _ = write!(out, "{id}");
            }
            None => out.push_str("null"),
        }
        match self {
            ClientMessage::Subscribe { params, .. } | ClientMessage::Unsubscribe { params, .. } => {
                out.push_str(",\"params\":[");
                for (i, p) in params.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_json_string(&mut out, p);
                }
                out.push(']');
            }
            ClientMessage::Order { tx, .. } => {
                out.push_str(",\"params\":{\"tx\":");
                push_json_string(&mut out, tx);
                out.push('}');
            }
            ClientMessage::ListSubscriptions { .. } | ClientMessage::Ping { .. } => {}
        }
        out.push('}');
        out
    }
}

/// The length of `s` as a JSON string in a client frame (quotes and escapes included).
pub fn json_string_len(s: &str) -> usize {
    let mut out = String::new();
    push_json_string(&mut out, s);
    out.len()
}

/// The exact length of a SUBSCRIBE/UNSUBSCRIBE frame's `to_json()` whose `count` topics have a
/// summed `json_string_len` of `encoded`: sizes can be checked without building the frame.
pub fn topics_frame_len(method: &str, id: Option<u64>, count: usize, encoded: usize) -> usize {
    let id_len = id.map_or("null".len(), |id| id.to_string().len());
    r#"{"method":""#.len()
        + method.len()
        + r#"","id":"#.len()
        + id_len
        + r#","params":["#.len()
        + encoded
        + count.saturating_sub(1)
        + "]}".len()
}

fn push_json_string(out: &mut String, s: &str) {
    // serde_json's escaping is the reference; a `String` never fails to serialize.
    out.push_str(&serde_json::to_string(s).expect("a string serializes"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_sdk_serialization() {
        let cases = [
            (
                ClientMessage::Subscribe {
                    id: Some(1),
                    params: vec![
                        "BTC-USD@aggTrade".into(),
                        "ETH-USD@depth10".into(),
                        "SOL-USD@bookTicker".into(),
                    ],
                },
                r#"{"method":"SUBSCRIBE","id":1,"params":["BTC-USD@aggTrade","ETH-USD@depth10","SOL-USD@bookTicker"]}"#,
            ),
            (
                ClientMessage::Subscribe {
                    id: None,
                    params: vec!["BTC-USD@depth20".into(), "BTC-USD@markPrice".into()],
                },
                r#"{"method":"SUBSCRIBE","id":null,"params":["BTC-USD@depth20","BTC-USD@markPrice"]}"#,
            ),
            (
                ClientMessage::Unsubscribe {
                    id: Some(2),
                    params: vec!["BTC-USD@aggTrade".into()],
                },
                r#"{"method":"UNSUBSCRIBE","id":2,"params":["BTC-USD@aggTrade"]}"#,
            ),
            (
                ClientMessage::ListSubscriptions { id: Some(3) },
                r#"{"method":"LIST_SUBSCRIPTIONS","id":3}"#,
            ),
            (
                ClientMessage::Ping { id: Some(4) },
                r#"{"method":"PING","id":4}"#,
            ),
            (
                ClientMessage::Order {
                    method: OrderMethod::Place,
                    id: Some(10),
                    tx: "AAECAwQFBgc=".into(),
                },
                r#"{"method":"ORDER.PLACE","id":10,"params":{"tx":"AAECAwQFBgc="}}"#,
            ),
            (
                ClientMessage::Order {
                    method: OrderMethod::CancelAll,
                    id: None,
                    tx: "AAECAwQFBgc=".into(),
                },
                r#"{"method":"ORDER.CANCEL_ALL","id":null,"params":{"tx":"AAECAwQFBgc="}}"#,
            ),
            (
                ClientMessage::Order {
                    method: OrderMethod::Submit,
                    id: Some(7),
                    tx: "deadbeef".into(),
                },
                r#"{"method":"SUBMIT","id":7,"params":{"tx":"deadbeef"}}"#,
            ),
        ];
        for (msg, want) in cases {
            assert_eq!(msg.to_json(), want);
        }
    }

    #[test]
    fn topics_frame_len_is_exact() {
        let topic_sets: [&[&str]; 4] =
            [&[], &["a@b"], &["a\"b@c", "\u{e9}@x", "\n@\t"], &["x@y"; 5]];
        for params in topic_sets {
            for id in [None, Some(0), Some(7), Some(u64::MAX)] {
                let params: Vec<String> = params.iter().map(|s| s.to_string()).collect();
                let encoded = params.iter().map(|p| json_string_len(p)).sum();
                let sub = ClientMessage::Subscribe {
                    id,
                    params: params.clone(),
                };
                let unsub = ClientMessage::Unsubscribe {
                    id,
                    params: params.clone(),
                };
                let n = params.len();
                assert_eq!(
                    topics_frame_len("SUBSCRIBE", id, n, encoded),
                    sub.to_json().len()
                );
                assert_eq!(
                    topics_frame_len("UNSUBSCRIBE", id, n, encoded),
                    unsub.to_json().len()
                );
            }
        }
    }

    #[test]
    fn u64_ids_are_exact_and_strings_escaped() {
        let m = ClientMessage::Subscribe {
            id: Some(u64::MAX),
            params: vec!["a\"b@c".into()],
        };
        assert_eq!(
            m.to_json(),
            r#"{"method":"SUBSCRIBE","id":18446744073709551615,"params":["a\"b@c"]}"#
        );
    }
}
