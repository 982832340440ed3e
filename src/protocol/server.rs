//! Server → client messages, told apart exactly as the SDK's untagged `ServerMessage` does
//! (PROTOCOL.md §3.2): the tagged control messages first, then market data by field shape in a fixed
//! order, then the untagged error, and `Unknown` for everything else. Parsing never fails.
//!
//! One pass captures every known key as a borrowed raw slice; each candidate then decodes only the
//! slices it needs with serde's strict typing (u64 is a non-negative integer, never a float or bool;
//! an optional field may be absent or null; a present field of the wrong type fails the candidate).

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Wire strings are mostly short (prices, symbols, flags): stored inline, not on the heap.
pub type Str = compact_str::CompactString;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub event_time: u64,
    pub status: Str,
    pub client_id: Str,
    pub reason: Option<Str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pong {
    pub id: Option<u64>,
    pub event_time: u64,
}

/// Subscribe and unsubscribe acknowledgements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResult {
    pub id: Option<u64>,
    pub event_time: u64,
    pub result: Str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSubscriptions {
    pub id: Option<u64>,
    pub event_time: u64,
    pub topics: Vec<Str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderResult {
    /// `place`, `cancel`, `amend` or `cancel_all`.
    pub method: &'static str,
    pub id: Option<u64>,
    pub event_time: u64,
    pub tx_id: Str,
    pub status: Str,
    pub order_ids: Vec<u64>,
    pub client_order_ids: Vec<u64>,
}

impl OrderResult {
    pub fn is_success(&self) -> bool {
        matches!(
            self.status.as_str(),
            "processed" | "published" | "submitted" | "finalized"
        )
    }
}

/// Both error shapes: tagged (`e:"error"`) and untagged (order errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMessage {
    pub id: Option<u64>,
    pub event_time: u64,
    /// The number on the wire; unlike the SDK we do not fold unlisted codes into -1000.
    pub code: i32,
    pub msg: Str,
    pub param: Option<Str>,
}

pub type Level = (Str, Str);

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct DepthUpdate {
    #[serde(rename = "e")]
    pub event_type: Str,
    #[serde(rename = "E")]
    pub event_time: u64,
    #[serde(rename = "T")]
    pub transaction_time: u64,
    #[serde(rename = "s")]
    pub symbol: Str,
    #[serde(rename = "U")]
    pub first_update_id: u64,
    #[serde(rename = "u")]
    pub final_update_id: u64,
    #[serde(rename = "pu")]
    pub prev_final_update_id: u64,
    #[serde(rename = "b")]
    pub bids: Vec<Level>,
    #[serde(rename = "a")]
    pub asks: Vec<Level>,
    #[serde(rename = "mt")]
    pub message_type: Str,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct AggTrade {
    #[serde(rename = "e")]
    pub event_type: Str,
    #[serde(rename = "E")]
    pub event_time: u64,
    #[serde(rename = "s")]
    pub symbol: Str,
    #[serde(rename = "a")]
    pub agg_trade_id: u64,
    #[serde(rename = "p")]
    pub price: Str,
    #[serde(rename = "q")]
    pub quantity: Str,
    #[serde(rename = "f")]
    pub first_trade_id: u64,
    #[serde(rename = "l")]
    pub last_trade_id: u64,
    #[serde(rename = "T")]
    pub trade_time: u64,
    #[serde(rename = "m")]
    pub is_buyer_maker: bool,
    #[serde(rename = "th")]
    pub tx_hash: Str,
    #[serde(rename = "ua")]
    pub user_address: Str,
    #[serde(rename = "oi")]
    pub order_id: u64,
    #[serde(rename = "mk")]
    pub is_maker: bool,
    #[serde(rename = "ff")]
    pub is_full_fill: bool,
    #[serde(rename = "lq")]
    pub is_liquidation: bool,
    #[serde(rename = "fe")]
    pub fee: Str,
    #[serde(rename = "nf")]
    pub net_fee: Str,
    #[serde(rename = "fa")]
    pub fee_asset: Str,
    #[serde(rename = "co", default)]
    pub client_order_id: Option<u64>,
    #[serde(rename = "sd")]
    pub side: Str,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct BookTicker {
    #[serde(rename = "e")]
    pub event_type: Str,
    #[serde(rename = "u")]
    pub update_id: u64,
    #[serde(rename = "E")]
    pub event_time: u64,
    #[serde(rename = "T")]
    pub transaction_time: u64,
    #[serde(rename = "s")]
    pub symbol: Str,
    #[serde(rename = "b")]
    pub bid_price: Str,
    #[serde(rename = "B")]
    pub bid_qty: Str,
    #[serde(rename = "a")]
    pub ask_price: Str,
    #[serde(rename = "A")]
    pub ask_qty: Str,
    #[serde(rename = "mt")]
    pub message_type: Str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkPrice {
    pub event_type: Str,
    pub event_time: u64,
    pub symbol: Str,
    pub mark_price: Str,
    pub index_price: Str,
    pub funding_rate: Str,
    pub estimated_settle_price: Option<Str>,
    pub next_funding_time: Option<u64>,
    pub tx_hash: Option<Str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForceOrder {
    pub event_type: Str,
    pub event_time: u64,
    pub symbol: Str,
    pub side: Str,
    pub order_type: Str,
    pub time_in_force: Str,
    pub price: Str,
    pub avg_price: Str,
    pub status: Str,
    pub last_filled_qty: Str,
    pub trade_time: u64,
    pub tx_hash: Str,
    pub user_address: Str,
    pub order_id: u64,
    pub trade_id: u64,
    pub quantity: Option<Str>,
    pub filled_qty: Option<Str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderUpdateKind {
    TradeFill,
    PlaceOrder,
    Cancel,
}

impl OrderUpdateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderUpdateKind::TradeFill => "trade_fill",
            OrderUpdateKind::PlaceOrder => "place_order",
            OrderUpdateKind::Cancel => "cancel",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderUpdate {
    pub event_type: Str,
    pub event_time: u64,
    pub kind: OrderUpdateKind,
    pub symbol: Str,
    pub order_id: u64,
    pub client_order_id: Option<u64>,
    pub status: Str,
    pub execution_type: Str,
    pub trade_time: u64,
    pub tx_hash: Str,
    pub user_address: Str,
    pub side: Option<Str>,
    pub order_type: Option<Str>,
    pub time_in_force: Option<Str>,
    pub price: Option<Str>,
    pub quantity: Option<Str>,
    pub last_filled_qty: Option<Str>,
    pub last_filled_price: Option<Str>,
    pub commission: Option<Str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    pub raw: Str,
    pub error: Str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage {
    Status(Status),
    Pong(Pong),
    Error(ErrorMessage),
    Subscribe(MethodResult),
    Unsubscribe(MethodResult),
    ListSubscriptions(ListSubscriptions),
    OrderResult(OrderResult),
    DepthUpdate(DepthUpdate),
    AggTrade(AggTrade),
    BookTicker(BookTicker),
    MarkPrice(MarkPrice),
    ForceOrder(ForceOrder),
    OrderUpdate(OrderUpdate),
    Unknown(Unknown),
}

impl ServerMessage {
    pub fn request_id(&self) -> Option<u64> {
        match self {
            ServerMessage::Pong(m) => m.id,
            ServerMessage::Error(m) => m.id,
            ServerMessage::Subscribe(m) | ServerMessage::Unsubscribe(m) => m.id,
            ServerMessage::ListSubscriptions(m) => m.id,
            ServerMessage::OrderResult(m) => m.id,
            _ => None,
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, ServerMessage::Error(_))
    }

    /// The `connected` status that opens every connection.
    pub fn is_connected_status(&self) -> bool {
        matches!(self, ServerMessage::Status(s) if s.status == "connected")
    }
}

/// What the SDK's serde says when no variant of its untagged enum matches.
pub const NO_VARIANT: &str = "data did not match any variant of untagged enum ServerMessage";

pub fn parse_str(text: &str) -> ServerMessage {
    fast_path(text).unwrap_or_else(|| parse_ordered(text))
}

/// The ordered attempt of §3.2 alone, without the fast path.
fn parse_ordered(text: &str) -> ServerMessage {
    match serde_json::from_str::<Top>(text) {
        Ok(top) => top
            .classify()
            .unwrap_or_else(|| unknown(text, NO_VARIANT.to_owned())),
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

/// The `e` values of the tagged control messages (candidate 1 of §3.2).
const TAGS: &[&str] = &[
    "status",
    "pong",
    "error",
    "subscribe",
    "unsubscribe",
    "list_subscriptions",
    "order.place",
    "ORDER.PLACE",
    "order.cancel",
    "ORDER.CANCEL",
    "order.amend",
    "ORDER.AMEND",
    "order.modify",
    "ORDER.MODIFY",
    "order.cancelAll",
    "ORDER.CANCEL_ALL",
];

/// The market-data hot path: one typed pass for depth, trades and tickers, taken only where its
/// success proves that every earlier candidate of §3.2 fails, so the answer is the same as the
/// ordered attempt. Tagged needs `e` to be a tag. DepthUpdate is candidate 2. AggTrade needs `a` to
/// be an integer, which DepthUpdate's array `a` excludes. BookTicker's string `a` and `b` exclude
/// AggTrade's integer `a` and DepthUpdate's array `b`. `None` means: take the ordered attempt.
fn fast_path(text: &str) -> Option<ServerMessage> {
    let not_tag = |e: &str| !TAGS.contains(&e);
    let valid_mt = |mt: &str| mt == "s" || mt == "u";
    match leading_event_type(text)? {
        "aggTrade" => super::flat::agg_trade(text)
            .or_else(|| serde_json::from_str::<AggTrade>(text).ok())
            .filter(|m| not_tag(&m.event_type))
            .map(ServerMessage::AggTrade),
        "depthUpdate" => super::flat::depth_update(text)
            .or_else(|| serde_json::from_str::<DepthUpdate>(text).ok())
            .filter(|m| not_tag(&m.event_type) && valid_mt(&m.message_type))
            .map(ServerMessage::DepthUpdate),
        "bookTicker" => super::flat::book_ticker(text)
            .or_else(|| serde_json::from_str::<BookTicker>(text).ok())
            .filter(|m| not_tag(&m.event_type) && valid_mt(&m.message_type))
            .map(ServerMessage::BookTicker),
        _ => None,
    }
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

type Raw<'a> = Option<&'a RawValue>;

/// Every top-level key any candidate reads, captured unparsed.
#[derive(Deserialize)]
struct Top<'a> {
    #[serde(borrow, default)]
    e: Raw<'a>,
    #[serde(borrow, default, rename = "E")]
    big_e: Raw<'a>,
    #[serde(borrow, default, rename = "T")]
    big_t: Raw<'a>,
    #[serde(borrow, default)]
    s: Raw<'a>,
    #[serde(borrow, default, rename = "U")]
    big_u: Raw<'a>,
    #[serde(borrow, default)]
    u: Raw<'a>,
    #[serde(borrow, default)]
    pu: Raw<'a>,
    #[serde(borrow, default)]
    b: Raw<'a>,
    #[serde(borrow, default, rename = "B")]
    big_b: Raw<'a>,
    #[serde(borrow, default)]
    a: Raw<'a>,
    #[serde(borrow, default, rename = "A")]
    big_a: Raw<'a>,
    #[serde(borrow, default)]
    mt: Raw<'a>,
    #[serde(borrow, default)]
    p: Raw<'a>,
    #[serde(borrow, default, rename = "P")]
    big_p: Raw<'a>,
    #[serde(borrow, default)]
    q: Raw<'a>,
    #[serde(borrow, default)]
    f: Raw<'a>,
    #[serde(borrow, default)]
    l: Raw<'a>,
    #[serde(borrow, default)]
    m: Raw<'a>,
    #[serde(borrow, default)]
    th: Raw<'a>,
    #[serde(borrow, default)]
    ua: Raw<'a>,
    #[serde(borrow, default)]
    oi: Raw<'a>,
    #[serde(borrow, default)]
    mk: Raw<'a>,
    #[serde(borrow, default)]
    ff: Raw<'a>,
    #[serde(borrow, default)]
    lq: Raw<'a>,
    #[serde(borrow, default)]
    fe: Raw<'a>,
    #[serde(borrow, default)]
    nf: Raw<'a>,
    #[serde(borrow, default)]
    fa: Raw<'a>,
    #[serde(borrow, default)]
    co: Raw<'a>,
    #[serde(borrow, default)]
    sd: Raw<'a>,
    #[serde(borrow, default)]
    i: Raw<'a>,
    #[serde(borrow, default)]
    r: Raw<'a>,
    #[serde(borrow, default)]
    o: Raw<'a>,
    #[serde(borrow, default)]
    id: Raw<'a>,
    #[serde(borrow, default)]
    status: Raw<'a>,
    #[serde(borrow, default, rename = "clientId")]
    client_id: Raw<'a>,
    #[serde(borrow, default)]
    reason: Raw<'a>,
    #[serde(borrow, default)]
    result: Raw<'a>,
    #[serde(borrow, default)]
    results: Raw<'a>,
    #[serde(borrow, default)]
    error: Raw<'a>,
}

/// The keys of the nested `o` object of liquidations and user order updates.
#[derive(Deserialize)]
struct Inner<'a> {
    #[serde(borrow, default)]
    s: Raw<'a>,
    #[serde(borrow, default, rename = "S")]
    big_s: Raw<'a>,
    #[serde(borrow, default)]
    o: Raw<'a>,
    #[serde(borrow, default)]
    f: Raw<'a>,
    #[serde(borrow, default)]
    p: Raw<'a>,
    #[serde(borrow, default)]
    ap: Raw<'a>,
    #[serde(borrow, default, rename = "X")]
    big_x: Raw<'a>,
    #[serde(borrow, default)]
    x: Raw<'a>,
    #[serde(borrow, default)]
    l: Raw<'a>,
    #[serde(borrow, default, rename = "L")]
    big_l: Raw<'a>,
    #[serde(borrow, default, rename = "T")]
    big_t: Raw<'a>,
    #[serde(borrow, default)]
    th: Raw<'a>,
    #[serde(borrow, default)]
    ua: Raw<'a>,
    #[serde(borrow, default)]
    oi: Raw<'a>,
    #[serde(borrow, default)]
    ti: Raw<'a>,
    #[serde(borrow, default)]
    q: Raw<'a>,
    #[serde(borrow, default)]
    z: Raw<'a>,
    #[serde(borrow, default)]
    i: Raw<'a>,
    #[serde(borrow, default)]
    co: Raw<'a>,
    #[serde(borrow, default)]
    n: Raw<'a>,
}

#[derive(Deserialize)]
struct Results<'a> {
    #[serde(borrow, default)]
    tx_id: Raw<'a>,
    #[serde(borrow, default)]
    status: Raw<'a>,
    #[serde(borrow, default)]
    order_ids: Raw<'a>,
    #[serde(borrow, default)]
    client_order_ids: Raw<'a>,
}

#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(borrow, default)]
    code: Raw<'a>,
    #[serde(borrow, default)]
    msg: Raw<'a>,
    #[serde(borrow, default)]
    param: Raw<'a>,
}

/// Decoding of one captured value with serde's strict typing; the common shapes take a fast path
/// that gives the same answer as serde_json without building a deserializer per field.
trait Field: Sized {
    fn decode(text: &str) -> Option<Self>;
}

impl Field for u64 {
    fn decode(text: &str) -> Option<u64> {
        let b = text.as_bytes();
        // Plain digits without a leading zero: the integer serde_json would read.
        if !b.is_empty()
            && b.len() <= 20
            && b.iter().all(u8::is_ascii_digit)
            && (b[0] != b'0' || b.len() == 1)
        {
            return text.parse().ok();
        }
        serde_json::from_str(text).ok()
    }
}

impl Field for i32 {
    fn decode(text: &str) -> Option<i32> {
        let digits = text.strip_prefix('-').unwrap_or(text).as_bytes();
        if !digits.is_empty()
            && digits.len() <= 10
            && digits.iter().all(u8::is_ascii_digit)
            && (digits[0] != b'0' || digits.len() == 1)
        {
            return text.parse().ok();
        }
        serde_json::from_str(text).ok()
    }
}

impl Field for bool {
    fn decode(text: &str) -> Option<bool> {
        match text {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }
}

impl Field for Str {
    fn decode(text: &str) -> Option<Str> {
        let inner = text.strip_prefix('"')?.strip_suffix('"')?;
        if inner.contains('\\') {
            serde_json::from_str(text).ok()
        } else {
            Some(Str::from(inner))
        }
    }
}

impl<T: DeserializeOwned> Field for Vec<T> {
    fn decode(text: &str) -> Option<Vec<T>> {
        serde_json::from_str(text).ok()
    }
}

/// A required field: present, not null, of the right type.
fn req<T: Field>(v: Raw<'_>) -> Option<T> {
    T::decode(v?.get())
}

/// An optional field: `Some(None)` when absent or null, `None` when present with the wrong type.
fn opt<T: Field>(v: Raw<'_>) -> Option<Option<T>> {
    match v {
        None => Some(None),
        Some(raw) => T::decode(raw.get()).map(Some),
    }
}

fn req_str(v: Raw<'_>) -> Option<Str> {
    req(v)
}

fn opt_str(v: Raw<'_>) -> Option<Option<Str>> {
    opt(v)
}

fn req_obj<'a, T: Deserialize<'a>>(v: Raw<'a>) -> Option<T> {
    serde_json::from_str(v?.get()).ok()
}

/// `mt` is an enum of exactly `s` and `u`; anything else fails the candidate.
fn message_type(v: Raw<'_>) -> Option<Str> {
    req_str(v).filter(|m| m == "s" || m == "u")
}

impl<'a> Top<'a> {
    fn classify(&self) -> Option<ServerMessage> {
        self.tagged()
            .or_else(|| self.depth_update())
            .or_else(|| self.agg_trade())
            .or_else(|| self.book_ticker())
            .or_else(|| self.mark_price())
            .or_else(|| self.force_order())
            .or_else(|| self.order_update())
            .or_else(|| self.error_body().map(ServerMessage::Error))
    }

    fn tagged(&self) -> Option<ServerMessage> {
        let tag = req_str(self.e)?;
        let order = |method| self.order_result(method).map(ServerMessage::OrderResult);
        match tag.as_str() {
            "status" => Some(ServerMessage::Status(Status {
                event_time: req(self.big_e)?,
                status: req_str(self.status)?,
                client_id: req_str(self.client_id)?,
                reason: opt_str(self.reason)?,
            })),
            "pong" => Some(ServerMessage::Pong(Pong {
                id: opt(self.id)?,
                event_time: req(self.big_e)?,
            })),
            "error" => self.error_body().map(ServerMessage::Error),
            "subscribe" => self.method_result().map(ServerMessage::Subscribe),
            "unsubscribe" => self.method_result().map(ServerMessage::Unsubscribe),
            "list_subscriptions" => Some(ServerMessage::ListSubscriptions(ListSubscriptions {
                id: opt(self.id)?,
                event_time: req(self.big_e)?,
                topics: req(self.result)?,
            })),
            "order.place" | "ORDER.PLACE" => order("place"),
            "order.cancel" | "ORDER.CANCEL" => order("cancel"),
            "order.amend" | "ORDER.AMEND" | "order.modify" | "ORDER.MODIFY" => order("amend"),
            "order.cancelAll" | "ORDER.CANCEL_ALL" => order("cancel_all"),
            _ => None,
        }
    }

    fn method_result(&self) -> Option<MethodResult> {
        Some(MethodResult {
            id: opt(self.id)?,
            event_time: req(self.big_e)?,
            result: req_str(self.result)?,
        })
    }

    fn order_result(&self, method: &'static str) -> Option<OrderResult> {
        let id = opt(self.id)?;
        let event_time = req(self.big_e)?;
        let r: Results<'_> = req_obj(self.results)?;
        Some(OrderResult {
            method,
            id,
            event_time,
            tx_id: req_str(r.tx_id)?,
            status: req_str(r.status)?,
            order_ids: opt(r.order_ids)?.unwrap_or_default(),
            client_order_ids: opt(r.client_order_ids)?.unwrap_or_default(),
        })
    }

    fn error_body(&self) -> Option<ErrorMessage> {
        let id = opt(self.id)?;
        let event_time = req(self.big_e)?;
        let body: ErrorBody<'_> = req_obj(self.error)?;
        Some(ErrorMessage {
            id,
            event_time,
            code: req(body.code)?,
            msg: req_str(body.msg)?,
            param: opt_str(body.param)?,
        })
    }

    fn depth_update(&self) -> Option<ServerMessage> {
        Some(ServerMessage::DepthUpdate(DepthUpdate {
            event_type: req_str(self.e)?,
            event_time: req(self.big_e)?,
            transaction_time: req(self.big_t)?,
            symbol: req_str(self.s)?,
            first_update_id: req(self.big_u)?,
            final_update_id: req(self.u)?,
            prev_final_update_id: req(self.pu)?,
            bids: req(self.b)?,
            asks: req(self.a)?,
            message_type: message_type(self.mt)?,
        }))
    }

    fn agg_trade(&self) -> Option<ServerMessage> {
        Some(ServerMessage::AggTrade(AggTrade {
            event_type: req_str(self.e)?,
            event_time: req(self.big_e)?,
            symbol: req_str(self.s)?,
            agg_trade_id: req(self.a)?,
            price: req_str(self.p)?,
            quantity: req_str(self.q)?,
            first_trade_id: req(self.f)?,
            last_trade_id: req(self.l)?,
            trade_time: req(self.big_t)?,
            is_buyer_maker: req(self.m)?,
            tx_hash: req_str(self.th)?,
            user_address: req_str(self.ua)?,
            order_id: req(self.oi)?,
            is_maker: req(self.mk)?,
            is_full_fill: req(self.ff)?,
            is_liquidation: req(self.lq)?,
            fee: req_str(self.fe)?,
            net_fee: req_str(self.nf)?,
            fee_asset: req_str(self.fa)?,
            client_order_id: opt(self.co)?,
            side: req_str(self.sd)?,
        }))
    }

    fn book_ticker(&self) -> Option<ServerMessage> {
        Some(ServerMessage::BookTicker(BookTicker {
            event_type: req_str(self.e)?,
            update_id: req(self.u)?,
            event_time: req(self.big_e)?,
            transaction_time: req(self.big_t)?,
            symbol: req_str(self.s)?,
            bid_price: req_str(self.b)?,
            bid_qty: req_str(self.big_b)?,
            ask_price: req_str(self.a)?,
            ask_qty: req_str(self.big_a)?,
            message_type: message_type(self.mt)?,
        }))
    }

    fn mark_price(&self) -> Option<ServerMessage> {
        Some(ServerMessage::MarkPrice(MarkPrice {
            event_type: req_str(self.e)?,
            event_time: req(self.big_e)?,
            symbol: req_str(self.s)?,
            mark_price: req_str(self.p)?,
            index_price: req_str(self.i)?,
            funding_rate: req_str(self.r)?,
            estimated_settle_price: opt_str(self.big_p)?,
            next_funding_time: opt(self.big_t)?,
            tx_hash: opt_str(self.th)?,
        }))
    }

    fn force_order(&self) -> Option<ServerMessage> {
        let event_type = req_str(self.e)?;
        let event_time = req(self.big_e)?;
        let o: Inner<'_> = req_obj(self.o)?;
        Some(ServerMessage::ForceOrder(ForceOrder {
            event_type,
            event_time,
            symbol: req_str(o.s)?,
            side: req_str(o.big_s)?,
            order_type: req_str(o.o)?,
            time_in_force: req_str(o.f)?,
            price: req_str(o.p)?,
            avg_price: req_str(o.ap)?,
            status: req_str(o.big_x)?,
            last_filled_qty: req_str(o.l)?,
            trade_time: req(o.big_t)?,
            tx_hash: req_str(o.th)?,
            user_address: req_str(o.ua)?,
            order_id: req(o.oi)?,
            trade_id: req(o.ti)?,
            quantity: opt_str(o.q)?,
            filled_qty: opt_str(o.z)?,
        }))
    }

    fn order_update(&self) -> Option<ServerMessage> {
        let event_type = req_str(self.e)?;
        let event_time = req(self.big_e)?;
        let o: Inner<'_> = req_obj(self.o)?;
        let mut update = OrderUpdate {
            event_type,
            event_time,
            kind: OrderUpdateKind::Cancel,
            symbol: req_str(o.s)?,
            order_id: req(o.i)?,
            client_order_id: opt(o.co)?,
            status: req_str(o.big_x)?,
            execution_type: req_str(o.x)?,
            trade_time: req(o.big_t)?,
            tx_hash: req_str(o.th)?,
            user_address: req_str(o.ua)?,
            side: None,
            order_type: None,
            time_in_force: None,
            price: None,
            quantity: None,
            last_filled_qty: None,
            last_filled_price: None,
            commission: None,
        };
        // The sub-variant follows field presence, tried in the SDK's order.
        if let Some(fill) = trade_fill(&o) {
            update.kind = OrderUpdateKind::TradeFill;
            (
                update.side,
                update.last_filled_qty,
                update.last_filled_price,
                update.commission,
            ) = (Some(fill.0), Some(fill.1), Some(fill.2), Some(fill.3));
            (update.price, update.quantity) = (fill.4, fill.5);
        } else if let Some(place) = place_order(&o) {
            update.kind = OrderUpdateKind::PlaceOrder;
            update.side = Some(place.0);
            update.order_type = Some(place.1);
            update.time_in_force = Some(place.2);
            update.price = Some(place.3);
            update.quantity = Some(place.4);
        }
        Some(ServerMessage::OrderUpdate(update))
    }
}

type Fill = (Str, Str, Str, Str, Option<Str>, Option<Str>);

fn trade_fill(o: &Inner<'_>) -> Option<Fill> {
    Some((
        req_str(o.big_s)?,
        req_str(o.l)?,
        req_str(o.big_l)?,
        req_str(o.n)?,
        opt_str(o.p)?,
        opt_str(o.q)?,
    ))
}

fn place_order(o: &Inner<'_>) -> Option<(Str, Str, Str, Str, Str)> {
    Some((
        req_str(o.big_s)?,
        req_str(o.o)?,
        req_str(o.f)?,
        req_str(o.p)?,
        req_str(o.q)?,
    ))
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

    fn kind(m: &ServerMessage) -> &'static str {
        match m {
            ServerMessage::Status(_) => "status",
            ServerMessage::Pong(_) => "pong",
            ServerMessage::Error(_) => "error",
            ServerMessage::Subscribe(_) => "subscribe",
            ServerMessage::Unsubscribe(_) => "unsubscribe",
            ServerMessage::ListSubscriptions(_) => "list_subscriptions",
            ServerMessage::OrderResult(_) => "order_result",
            ServerMessage::DepthUpdate(_) => "depth_update",
            ServerMessage::AggTrade(_) => "agg_trade",
            ServerMessage::BookTicker(_) => "book_ticker",
            ServerMessage::MarkPrice(_) => "mark_price",
            ServerMessage::ForceOrder(_) => "force_order",
            ServerMessage::OrderUpdate(_) => "order_update",
            ServerMessage::Unknown(_) => "unknown",
        }
    }

    #[test]
    fn every_sample_parses_to_its_variant() {
        for (file, want) in [
            ("status", "status"),
            ("pong", "pong"),
            ("error", "error"),
            ("subscribe_ack", "subscribe"),
            ("unsubscribe_ack", "unsubscribe"),
            ("list_subscriptions", "list_subscriptions"),
            ("order_result", "order_result"),
            ("depth_update", "depth_update"),
            ("agg_trade", "agg_trade"),
            ("book_ticker", "book_ticker"),
            ("mark_price", "mark_price"),
            ("force_order", "force_order"),
            ("order_trade_update", "order_update"),
            ("sdk_unknown", "unknown"),
        ] {
            for line in samples(file) {
                let m = parse_str(&line);
                assert_eq!(kind(&m), want, "{file}: {line} -> {m:?}");
            }
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
        assert!(!t.is_buyer_maker && t.is_full_fill);
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
        let kinds: Vec<OrderUpdateKind> = samples("order_trade_update")
            .iter()
            .map(|l| match parse_str(l) {
                ServerMessage::OrderUpdate(u) => u.kind,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds[0], OrderUpdateKind::PlaceOrder);
        assert!(kinds.contains(&OrderUpdateKind::Cancel));
        assert!(kinds.contains(&OrderUpdateKind::TradeFill));
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
        let ServerMessage::Error(e) = m else {
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

    /// `line` with the value of its top-level `key` replaced by `value` (flat frames only).
    fn set_value(line: &str, key: &str, value: &str) -> String {
        let needle = format!("\"{key}\":");
        let start = line.find(&needle).unwrap() + needle.len();
        let end = start + line[start..].find([',', '}']).unwrap();
        format!("{}{value}{}", &line[..start], &line[end..])
    }

    /// The fast paths must give exactly what the ordered attempt gives, on odd frames too.
    #[test]
    fn fast_path_agrees_with_the_ordered_attempt() {
        let mut frames: Vec<String> = Vec::new();
        for file in ["agg_trade", "depth_update", "book_ticker"] {
            for line in samples(file) {
                frames.push(line.clone());
                frames.push(line.replace(',', " , ").replace(':', " :\t"));
                frames.push(format!(" {line}\n"));
                frames.push(line.replace("\"s\":\"", "\"s\":\"\\u0042"));
                frames.push(line.replacen("\"E\":", "\"E\":1,\"E\":", 1));
                frames.push(line.replacen('{', "{\"zz\":[1,{\"a\":2}],", 1));
                for bad in [
                    "1.5",
                    "-1",
                    "01",
                    "18446744073709551616",
                    "null",
                    "1e3",
                    "\"1\"",
                    "true",
                ] {
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
                frames.push(line[..line.len() - 1].to_owned());
                frames.push(format!("{line}x"));
                frames.push(line.replace("\"b\":[[", "\"b\":[[ "));
                frames.push(line.replace("\"]]", "\",\"3\"]]"));
            }
        }
        for frame in &frames {
            assert_eq!(parse_str(frame), parse_ordered(frame), "{frame}");
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
