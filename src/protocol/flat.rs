//! A strict scanner for the frames that dominate the feed, market data and order acks: a JSON
//! object whose values are plain strings (no escapes), non-negative integers, booleans, null,
//! arrays of `[price, qty]` string pairs or of integers, or (one level deep, where the message
//! has one) such an object. Anything else (an escape, a float, deeper nesting, an unknown key, a
//! duplicate key, a value of another type than the field's, invalid JSON) makes it give up, and
//! the caller falls back to serde_json, so the result is always the one serde would give; it is
//! only faster on the frames that matter.
//! The per-message slot tables and builders are generated into `messages.rs` from the spec: each
//! slot reads its value with the method of its field's type, so no value is held in between.

use super::fields::{Level, Str};

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

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// The high bit of each byte of `word` that is below `n` (n <= 0x80). Only the lowest flagged
/// byte is exact (a borrow can flag the bytes above it), which is all `stop_from` needs.
#[inline(always)]
fn below(word: u64, n: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS
}

/// The index of the first STOP byte at or after `from`, eight bytes a step: a price or a
/// quantity (5 to 8 bytes, and the quote after it) in one or two.
#[inline(always)]
fn stop_from(bytes: &[u8], from: usize) -> Option<usize> {
    // Placeholders (`""`, `"0"`) are shorter than a step: byte by byte first.
    for i in from..(from + 2).min(bytes.len()) {
        if STOP[usize::from(bytes[i])] {
            return Some(i);
        }
    }
    let mut i = from + 2;
    if i > bytes.len() {
        return None;
    }
    while let Some(chunk) = bytes.get(i..i + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let flags = below(word ^ (ONES * u64::from(b'"')), 1)
            | below(word ^ (ONES * u64::from(b'\\')), 1)
            | below(word, 0x20);
        if flags != 0 {
            return Some(i + flags.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    Some(i + bytes[i..].iter().position(|&b| STOP[usize::from(b)])?)
}

pub(super) struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    #[inline]
    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_ws();
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// A string without escapes or control characters; the quotes are consumed. Not inlined:
    /// inlined into the level loop, its byte loop was compiled to one several times as long.
    #[inline(never)]
    fn plain_str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let end = stop_from(bytes, start)?;
        if bytes[end] != b'"' {
            return None;
        }
        self.pos = end + 1;
        // SAFETY: `start` follows an ASCII quote and `end` is one, so both are char boundaries
        // of `text`: the checks of `&text[start..end]` would only repeat that.
        Some(unsafe { self.text.get_unchecked(start..end) })
    }

    /// An object key, as bytes for the slot tables. Every key of the fast-path messages is one
    /// or two characters: those are read without the string loop.
    #[inline]
    fn key(&mut self) -> Option<&'a [u8]> {
        self.skip_ws();
        let bytes = self.text.as_bytes();
        let at = self.pos;
        let plain = |b: u8| !STOP[usize::from(b)];
        match *bytes.get(at..at + 4)? {
            [b'"', k, b'"', _] if plain(k) => {
                self.pos = at + 3;
                Some(&bytes[at + 1..at + 2])
            }
            [b'"', k1, k2, b'"'] if plain(k1) && plain(k2) => {
                self.pos = at + 4;
                Some(&bytes[at + 1..at + 3])
            }
            _ => self.plain_str().map(str::as_bytes),
        }
    }

    /// A string value.
    #[inline]
    pub(super) fn string(&mut self) -> Option<Str> {
        self.plain_str().map(Str::from)
    }

    /// `mt`: exactly `s` or `u`.
    pub(super) fn message_type(&mut self) -> Option<Str> {
        match self.plain_str()? {
            m @ ("s" | "u") => Some(Str::from(m)),
            _ => None,
        }
    }

    /// A JSON integer that fits u64, as serde reads it: no sign, no leading zero, no fraction.
    #[inline]
    pub(super) fn uint(&mut self) -> Option<u64> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let mut value: u64 = 0;
        while let Some(&b) = bytes.get(self.pos) {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            value = value.checked_mul(10)?.checked_add(u64::from(digit))?;
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

    /// A string that must be `tag`: the event type the caller has already seen.
    pub(super) fn tag(&mut self, tag: &str) -> Option<()> {
        (self.plain_str()? == tag).then_some(())
    }

    /// `[1, 2, ...]`: integers as `uint` reads them.
    pub(super) fn uints(&mut self) -> Option<Vec<u64>> {
        let mut out = Vec::new();
        self.eat(b'[')?;
        self.skip_ws();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(out);
        }
        loop {
            self.skip_ws();
            out.push(self.uint()?);
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

    pub(super) fn boolean(&mut self) -> Option<bool> {
        match self.peek()? {
            b't' => self.literal("true").map(|_| true),
            b'f' => self.literal("false").map(|_| false),
            _ => None,
        }
    }

    /// An optional value: null is None, anything else must be read by `read`.
    #[inline]
    pub(super) fn optional<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<Option<T>> {
        if self.peek()? == b'n' {
            return self.literal("null").map(|_| None);
        }
        read(self).map(Some)
    }

    /// `[["p","q"], ...]`, gathered in a reused buffer so that the list is allocated once, at its
    /// final size (a depth20 side would otherwise grow four times).
    #[inline(never)]
    pub(super) fn levels(&mut self) -> Option<Vec<Level>> {
        self.eat(b'[')?;
        self.skip_ws();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(Vec::new());
        }
        // Drained, not taken: the buffer keeps its capacity, the list gets its exact size.
        #[allow(clippy::drain_collect)]
        LEVELS.with_borrow_mut(|scratch| {
            scratch.clear();
            let out = self
                .levels_into(scratch)
                .map(|()| scratch.drain(..).collect());
            scratch.clear();
            out
        })
    }

    fn levels_into(&mut self, out: &mut Vec<Level>) -> Option<()> {
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
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

thread_local! {
    /// The levels of the side being read. It keeps the capacity of the longest side seen on
    /// this thread (48 bytes a level).
    static LEVELS: std::cell::RefCell<Vec<Level>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Calls `field(slot, scanner)` for each key of the object that is the whole of `text`, where
/// `slot_of` maps the key to its slot (< 64) and `field` reads the value from the scanner. Returns
/// the set of slots seen as a bit mask. Gives up on an unknown or repeated key, or on anything but
/// a well-formed object.
#[inline]
pub(super) fn scan<'a>(
    text: &'a str,
    slot_of: impl Fn(&[u8]) -> Option<usize>,
    field: impl FnMut(usize, &mut Scanner<'a>) -> Option<()>,
) -> Option<u64> {
    let mut s = Scanner { text, pos: 0 };
    let seen = object(&mut s, slot_of, field)?;
    s.skip_ws();
    (s.pos == text.len()).then_some(seen)
}

/// `scan` for the object at the scanner's position (a nested one), leaving the scanner after it.
#[inline]
pub(super) fn object<'a>(
    s: &mut Scanner<'a>,
    slot_of: impl Fn(&[u8]) -> Option<usize>,
    mut field: impl FnMut(usize, &mut Scanner<'a>) -> Option<()>,
) -> Option<u64> {
    let mut seen: u64 = 0;
    s.eat(b'{')?;
    s.skip_ws();
    if s.peek()? == b'}' {
        s.pos += 1;
    } else {
        loop {
            let slot = slot_of(s.key()?)?;
            if seen & (1 << slot) != 0 {
                return None;
            }
            seen |= 1 << slot;
            s.eat(b':')?;
            s.skip_ws();
            field(slot, s)?;
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
    Some(seen)
}

/// Every slot below `n`, minus `optional`.
pub(super) const fn required(n: u32, optional: u64) -> u64 {
    ((1u64 << n) - 1) & !optional
}
