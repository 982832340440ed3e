//! Decoding one captured value with serde's strict typing, as the SDK's derives would: u64 is a
//! non-negative integer (never a float or bool), an optional field may be absent or null, and a
//! present field of the wrong type fails the candidate. The common shapes take a shortcut that
//! gives the same answer as serde_json without building a deserializer per field.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Wire strings are mostly short (prices, symbols, flags): stored inline, not on the heap.
pub type Str = compact_str::CompactString;

/// A depth level: (price, quantity), both as the wire's decimal strings.
pub type Level = (Str, Str);

/// A captured value: absent, or the raw JSON text of the value.
pub type Raw<'a> = Option<&'a RawValue>;

pub trait Field: Sized {
    fn decode(text: &str) -> Option<Self>;
}

fn plain_digits(b: &[u8], max_len: usize) -> bool {
    !b.is_empty()
        && b.len() <= max_len
        && b.iter().all(u8::is_ascii_digit)
        && (b[0] != b'0' || b.len() == 1)
}

impl Field for u64 {
    fn decode(text: &str) -> Option<u64> {
        if plain_digits(text.as_bytes(), 20) {
            return text.parse().ok();
        }
        serde_json::from_str(text).ok()
    }
}

impl Field for i32 {
    fn decode(text: &str) -> Option<i32> {
        let digits = text.strip_prefix('-').unwrap_or(text).as_bytes();
        if plain_digits(digits, 10) {
            return text.parse().ok();
        }
        serde_json::from_str(text).ok()
    }
}

impl Field for u16 {
    fn decode(text: &str) -> Option<u16> {
        serde_json::from_str(text).ok()
    }
}

impl Field for i64 {
    fn decode(text: &str) -> Option<i64> {
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
pub fn req<T: Field>(v: Raw<'_>) -> Option<T> {
    T::decode(v?.get())
}

/// An optional field: `Some(None)` when absent or null, `None` when present with the wrong type.
pub fn opt<T: Field>(v: Raw<'_>) -> Option<Option<T>> {
    match v {
        None => Some(None),
        Some(raw) if raw.get() == "null" => Some(None),
        Some(raw) => T::decode(raw.get()).map(Some),
    }
}

/// A required list (levels, strings), decoded by serde itself.
pub fn req_de<T: DeserializeOwned>(v: Raw<'_>) -> Option<T> {
    serde_json::from_str(v?.get()).ok()
}

#[allow(dead_code)] // for a spec that makes such a field optional
pub fn opt_de<T: DeserializeOwned>(v: Raw<'_>) -> Option<Option<T>> {
    serde_json::from_str(v.map_or("null", |raw| raw.get())).ok()
}

/// A nested object captured by its own key struct. Only a JSON object: serde's derive would also
/// take an array of the fields in declaration order, which for a capture struct is meaningless.
pub fn req_obj<'a, T: Deserialize<'a>>(v: Raw<'a>) -> Option<T> {
    let raw = v?.get();
    if !raw.starts_with('{') {
        return None;
    }
    serde_json::from_str(raw).ok()
}

/// A record (a struct inside a message): a JSON object only, as for `req_obj`.
pub fn req_record<T: DeserializeOwned>(v: Raw<'_>) -> Option<T> {
    let raw = v?.get();
    if !raw.starts_with('{') {
        return None;
    }
    serde_json::from_str(raw).ok()
}

#[allow(dead_code)] // for a spec that makes such a field optional
pub fn opt_record<T: DeserializeOwned>(v: Raw<'_>) -> Option<Option<T>> {
    match v {
        None => Some(None),
        some => req_record(some).map(Some),
    }
}

/// A list of records.
pub fn req_records<T: DeserializeOwned>(v: Raw<'_>) -> Option<Vec<T>> {
    let items: Vec<&RawValue> = serde_json::from_str(v?.get()).ok()?;
    items
        .into_iter()
        .map(|item| req_record(Some(item)))
        .collect()
}

#[allow(dead_code)] // for a spec that makes such a field optional
pub fn opt_records<T: DeserializeOwned>(v: Raw<'_>) -> Option<Option<Vec<T>>> {
    match v {
        None => Some(None),
        some => req_records(some).map(Some),
    }
}

/// `mt` is an enum of exactly `s` and `u`; anything else fails the candidate.
pub fn message_type(v: Raw<'_>) -> Option<Str> {
    req::<Str>(v).filter(|m| m == "s" || m == "u")
}

#[allow(dead_code)] // for a spec that makes such a field optional
pub fn opt_message_type(v: Raw<'_>) -> Option<Option<Str>> {
    match opt::<Str>(v)? {
        None => Some(None),
        Some(m) => (m == "s" || m == "u").then_some(Some(m)),
    }
}

/// A u64 sent as a decimal string (so that JavaScript keeps it exact): ASCII digits only.
pub fn req_u64_str(v: Raw<'_>) -> Option<u64> {
    let s = req::<Str>(v)?;
    let b = s.as_bytes();
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.parse().ok()
}

#[allow(dead_code)] // for a spec that makes such a field optional
pub fn opt_u64_str(v: Raw<'_>) -> Option<Option<u64>> {
    match v {
        None => Some(None),
        Some(raw) if raw.get() == "null" => Some(None),
        some => req_u64_str(some).map(Some),
    }
}
