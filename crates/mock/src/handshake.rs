//! The HTTP/1.1 upgrade request (RFC 6455 §4.2), server side.

use base64::Engine as _;
use sha1::{Digest, Sha1};

/// Bytes of request head we are willing to buffer before giving up with 431.
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// Need more bytes.
    Incomplete,
    /// A valid upgrade; `head_len` bytes of the buffer belong to the request head.
    Upgrade { key: String, head_len: usize },
    /// Not an upgrade we accept: answer with this response and close.
    Reject(Vec<u8>),
}

/// Parses the request head at the start of `buf`.
pub fn parse(buf: &[u8]) -> Request {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.len() > MAX_REQUEST_HEAD {
            return Request::Reject(response(431, "Request Header Fields Too Large", ""));
        }
        return Request::Incomplete;
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, version) = (parts.next(), parts.nth(1));
    if method != Some("GET") || !version.is_some_and(|v| v.starts_with("HTTP/1.1")) {
        return Request::Reject(response(400, "Bad Request", ""));
    }
    let mut upgrade = false;
    let mut connection_upgrade = false;
    let mut key = None;
    let mut version_13 = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "upgrade" => upgrade = value.eq_ignore_ascii_case("websocket"),
            "connection" => {
                connection_upgrade = value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            }
            "sec-websocket-key" => key = Some(value.to_string()),
            "sec-websocket-version" => version_13 = value == "13",
            _ => {}
        }
    }
    if !upgrade || !connection_upgrade {
        return Request::Reject(response(
            426,
            "Upgrade Required",
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
        ));
    }
    match key {
        Some(key) if version_13 && !key.is_empty() => Request::Upgrade {
            key,
            head_len: end + 4,
        },
        _ => Request::Reject(response(
            400,
            "Bad Request",
            "Sec-WebSocket-Version: 13\r\n",
        )),
    }
}

/// `Sec-WebSocket-Accept` for a client key.
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// The 101 response completing the upgrade.
pub fn switching_protocols(key: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    )
    .into_bytes()
}

fn response(status: u16, text: &str, extra_headers: &str) -> Vec<u8> {
    let body = format!("{status} {text}\n");
    format!(
        "HTTP/1.1 {status} {text}\r\n{extra_headers}Content-Type: text/plain\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPGRADE: &str = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
        Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn rfc_example_key() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn parses_upgrade_and_keeps_trailing_bytes_out_of_the_head() {
        let mut buf = UPGRADE.as_bytes().to_vec();
        assert_eq!(parse(&buf[..20]), Request::Incomplete);
        buf.extend_from_slice(b"\x81\x80");
        match parse(&buf) {
            Request::Upgrade { key, head_len } => {
                assert_eq!(key, "dGhlIHNhbXBsZSBub25jZQ==");
                assert_eq!(head_len, UPGRADE.len());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_plain_get_with_426_and_garbage_with_400() {
        let Request::Reject(r) = parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") else {
            panic!()
        };
        assert!(r.starts_with(b"HTTP/1.1 426 "));
        let Request::Reject(r) = parse(b"POST /ws HTTP/1.1\r\n\r\n") else {
            panic!()
        };
        assert!(r.starts_with(b"HTTP/1.1 400 "));
        let no_key = UPGRADE.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "");
        let Request::Reject(r) = parse(no_key.as_bytes()) else {
            panic!()
        };
        assert!(r.starts_with(b"HTTP/1.1 400 "));
    }
}
