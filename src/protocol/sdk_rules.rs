//! What the SDK's serde refuses anywhere in a frame, where our one-pass capture does not look.
//!
//! The SDK's `ServerMessage` is an untagged enum: serde buffers the whole frame (every key and
//! every value, ignored ones too) before trying a variant, and that buffering decodes every
//! string and recurses into every array and object. So a lone surrogate escape (`"\ud800"`)
//! anywhere, or nesting deeper than serde_json's recursion limit anywhere, makes the frame
//! `Unknown`. Our capture skips the values it ignores with serde's `IgnoredAny`, which checks
//! neither; this scan restores the SDK's answer. It runs only on frames that serde has already
//! accepted and that did not take the flat fast path (which refuses escapes and nesting itself),
//! so the hot path never pays for it.

/// serde_json's recursion limit: its 128th nested array or object is refused.
pub const MAX_DEPTH: usize = 127;

/// Why the SDK would refuse this (syntactically valid) JSON text, if it would.
pub fn refusal(text: &str) -> Option<&'static str> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some("recursion limit exceeded");
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'"' => match string_end(bytes, i + 1) {
                Some(end) => {
                    i = end;
                    continue;
                }
                None => return Some("lone surrogate in hex escape"),
            },
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index after the string that starts at `i` (after its opening quote), or `None` when
/// it holds a lone surrogate escape (the caller's error).
fn string_end(bytes: &[u8], mut i: usize) -> Option<usize> {
    // A high surrogate just seen: the very next thing must be its low half's escape.
    let mut pending_high = false;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return (!pending_high).then_some(i + 1),
            b'\\' if bytes.get(i + 1) == Some(&b'u') => {
                let unit = hex4(bytes.get(i + 2..i + 6)?)?;
                match unit {
                    0xD800..=0xDBFF if !pending_high => pending_high = true,
                    0xDC00..=0xDFFF if pending_high => pending_high = false,
                    0xD800..=0xDFFF => return None,
                    _ if pending_high => return None,
                    _ => {}
                }
                i += 6;
                continue;
            }
            _ if pending_high => return None,
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    Some(i)
}

fn hex4(digits: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(digits).ok()?;
    u16::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_are_refused_and_pairs_are_not() {
        for lone in [
            r#"["\ud800"]"#,
            r#"["\udc00"]"#,
            r#"["a\ud800b"]"#,
            r#"["\ud800\u0041"]"#,
            r#"["\udc00\ud800"]"#,
            r#"["\ud800\ud800"]"#,
            r#"{"\ud800":1}"#,
            r#"{"a":{"b":["\udfff"]}}"#,
        ] {
            assert!(refusal(lone).is_some(), "{lone}");
        }
        for fine in [
            r#"["\ud83d\ude00"]"#,
            r#"["\\ud800"]"#,
            r#"["\u0041\n\"\\"]"#,
            r#"{"\ud800\udc00":"\uDBFF\uDFFF"}"#,
        ] {
            assert_eq!(refusal(fine), None, "{fine}");
        }
    }

    #[test]
    fn nesting_is_refused_beyond_serde_json_s_limit() {
        let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(refusal(&nest(MAX_DEPTH)), None);
        assert!(refusal(&nest(MAX_DEPTH + 1)).is_some());
        let obj = |n: usize| format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n));
        assert_eq!(refusal(&obj(MAX_DEPTH)), None);
        assert!(refusal(&obj(MAX_DEPTH + 1)).is_some());
        // Brackets inside strings do not nest.
        assert_eq!(refusal(&format!(r#"["{}"]"#, "[".repeat(500))), None);
        // serde_json itself agrees on where the limit is.
        assert!(serde_json::from_str::<serde_json::Value>(&nest(MAX_DEPTH)).is_ok());
        assert!(serde_json::from_str::<serde_json::Value>(&nest(MAX_DEPTH + 1)).is_err());
    }
}
