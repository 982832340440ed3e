//! A strict scanner for the market-data frames that dominate the feed: one flat JSON object whose
//! values are plain strings (no escapes), non-negative integers, booleans, null, or arrays of
//! `[price, qty]` string pairs. Anything else (an escape, a float, a nested object, an unknown key,
//! a duplicate key, invalid JSON) makes it give up, and the caller falls back to serde_json, so the
//! result is always the one serde would give; it is only faster on the frames that matter.
//! The per-message slot tables and builders are generated into `messages.rs` from the spec.

use super::fields::{Level, Str};

pub(super) enum Value<'a> {
    Str(&'a str),
    UInt(u64),
    Bool(bool),
    Null,
    Levels(Vec<Level>),
}

/// Bytes that end a plain string: the quote, a backslash (escape: give up), control characters.
static STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_ws();
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// A string without escapes or control characters; the quotes are consumed.
    fn plain_str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let end = start + bytes[start..].iter().position(|&b| STOP[usize::from(b)])?;
        if bytes[end] != b'"' {
            return None;
        }
        self.pos = end + 1;
        // Both ends sit next to an ASCII quote, so they are char boundaries.
        Some(&self.text[start..end])
    }

    /// A JSON integer that fits u64, as serde reads it: no sign, no leading zero, no fraction.
    fn uint(&mut self) -> Option<u64> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let mut value: u64 = 0;
        while let Some(d @ b'0'..=b'9') = bytes.get(self.pos).copied() {
            value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.pos += 1;
        }
        let digits = self.pos - start;
        if digits == 0 || (digits > 1 && bytes[start] == b'0') {
            return None;
        }
        match bytes.get(self.pos) {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(value),
        }
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        let end = self.pos + word.len();
        (self.text.get(self.pos..end)? == word).then(|| self.pos = end)
    }

    /// `[["p","q"], ...]`
    fn levels(&mut self) -> Option<Vec<Level>> {
        self.eat(b'[')?;
        let mut out = Vec::new();
        self.skip_ws();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(out);
        }
        loop {
            self.eat(b'[')?;
            let price = self.plain_str()?;
            self.eat(b',')?;
            let qty = self.plain_str()?;
            self.eat(b']')?;
            out.push((Str::from(price), Str::from(qty)));
            self.skip_ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Some(out);
                }
                _ => return None,
            }
        }
    }

    fn value(&mut self) -> Option<Value<'a>> {
        self.skip_ws();
        match self.peek()? {
            b'"' => self.plain_str().map(Value::Str),
            b'0'..=b'9' => self.uint().map(Value::UInt),
            b't' => self.literal("true").map(|_| Value::Bool(true)),
            b'f' => self.literal("false").map(|_| Value::Bool(false)),
            b'n' => self.literal("null").map(|_| Value::Null),
            b'[' => self.levels().map(Value::Levels),
            _ => None,
        }
    }
}

/// Calls `field(slot, value)` for each key of a flat object, where `slot_of` maps the key to its
/// slot (< 64). Returns the set of slots seen as a bit mask. Gives up on an unknown or repeated
/// key, or on anything but a well-formed object.
pub(super) fn scan<'a>(
    text: &'a str,
    slot_of: impl Fn(&[u8]) -> Option<usize>,
    mut field: impl FnMut(usize, Value<'a>) -> Option<()>,
) -> Option<u64> {
    let mut s = Scanner { text, pos: 0 };
    let mut seen: u64 = 0;
    s.eat(b'{')?;
    s.skip_ws();
    if s.peek()? == b'}' {
        s.pos += 1;
    } else {
        loop {
            let key = s.plain_str()?;
            let slot = slot_of(key.as_bytes())?;
            if seen & (1 << slot) != 0 {
                return None;
            }
            seen |= 1 << slot;
            s.eat(b':')?;
            field(slot, s.value()?)?;
            s.skip_ws();
            match s.peek()? {
                b',' => s.pos += 1,
                b'}' => {
                    s.pos += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    s.skip_ws();
    (s.pos == text.len()).then_some(seen)
}

/// Every slot below `n`, minus `optional`.
pub(super) const fn required(n: u32, optional: u64) -> u64 {
    ((1u64 << n) - 1) & !optional
}

pub(super) fn string(v: Value<'_>) -> Option<Str> {
    match v {
        Value::Str(s) => Some(Str::from(s)),
        _ => None,
    }
}

pub(super) fn uint(v: Value<'_>) -> Option<u64> {
    match v {
        Value::UInt(n) => Some(n),
        _ => None,
    }
}

pub(super) fn boolean(v: Value<'_>) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(b),
        _ => None,
    }
}

pub(super) fn levels(v: Value<'_>) -> Option<Vec<Level>> {
    match v {
        Value::Levels(l) => Some(l),
        _ => None,
    }
}

/// `mt`: exactly `s` or `u`.
pub(super) fn message_type(v: Value<'_>) -> Option<Str> {
    string(v).filter(|m| m == "s" || m == "u")
}

/// An optional value: null is None, anything else must convert.
pub(super) fn optional<'a, T>(
    v: Value<'a>,
    convert: impl FnOnce(Value<'a>) -> Option<T>,
) -> Option<Option<T>> {
    match v {
        Value::Null => Some(None),
        other => convert(other).map(Some),
    }
}
