//! WebSocket framing (RFC 6455), server side: frames out are unmasked, frames in are masked.
//!
//! Written by hand (not tungstenite) so that the data path can append many frames to one buffer
//! and so that faults can put arbitrary, even invalid, bytes on the wire.

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// Appends a frame header (FIN set) announcing `len` payload bytes.
pub fn write_header(out: &mut Vec<u8>, opcode: u8, len: u64) {
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if len <= u64::from(u16::MAX) {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// Appends a whole frame.
pub fn write_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    write_header(out, opcode, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// Starts a text frame whose payload is written next, straight into `out`; returns the mark
/// that [`end_text`] needs. Saves building the payload elsewhere and copying it.
pub fn begin_text(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    // Room for the 16-bit length form, the common size of market data.
    out.extend_from_slice(&[0x80 | OP_TEXT, 126, 0, 0]);
    start
}

/// Fixes the header written by [`begin_text`] now that the payload length is known.
pub fn end_text(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start - 4;
    if len < 126 {
        out[start + 1] = len as u8;
        out.copy_within(start + 4.., start + 2);
        out.truncate(out.len() - 2);
    } else if len <= usize::from(u16::MAX) {
        out[start + 2..start + 4].copy_from_slice(&(len as u16).to_be_bytes());
    } else {
        out[start + 1] = 127;
        let mut ext = [0u8; 8];
        ext.copy_from_slice(&(len as u64).to_be_bytes());
        out.splice(start + 2..start + 4, ext);
    }
}

/// The payload of a close frame: the code, then the UTF-8 reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

/// One complete message (or control frame) received from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// Close code (None when the frame had no payload) and reason bytes.
    Close(Option<u16>, Vec<u8>),
}

/// A violation of the framing rules; the connection is closed with `close_code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub close_code: u16,
    pub what: &'static str,
}

/// Incremental decoder of client frames, reassembling fragmented messages.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    pos: usize,
    partial: Option<(u8, Vec<u8>)>,
    max_message: usize,
}

impl FrameDecoder {
    pub fn new(max_message: usize) -> Self {
        Self {
            buf: Vec::with_capacity(4096),
            pos: 0,
            partial: None,
            max_message,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, `Ok(None)` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Incoming>, FrameError> {
        loop {
            let Some((fin, opcode, payload)) = self.next_frame()? else {
                return Ok(None);
            };
            match opcode {
                OP_PING => return Ok(Some(Incoming::Ping(payload))),
                OP_PONG => return Ok(Some(Incoming::Pong(payload))),
                OP_CLOSE => {
                    let code =
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    let reason = payload.get(2..).unwrap_or_default().to_vec();
                    return Ok(Some(Incoming::Close(code, reason)));
                }
                OP_TEXT | OP_BINARY => {
                    if self.partial.is_some() {
                        return Err(err(1002, "new data frame inside a fragmented message"));
                    }
                    if fin {
                        return Ok(Some(message(opcode, payload)));
                    }
                    self.partial = Some((opcode, payload));
                }
                OP_CONTINUATION => {
                    let Some((first, mut data)) = self.partial.take() else {
                        return Err(err(1002, "continuation frame without a message"));
                    };
                    data.extend_from_slice(&payload);
                    if data.len() > self.max_message {
                        return Err(err(1009, "message too big"));
                    }
                    if fin {
                        return Ok(Some(message(first, data)));
                    }
                    self.partial = Some((first, data));
                }
                _ => return Err(err(1002, "reserved opcode")),
            }
        }
    }

    /// The next raw frame: (fin, opcode, unmasked payload).
    fn next_frame(&mut self) -> Result<Option<(bool, u8, Vec<u8>)>, FrameError> {
        let b = &self.buf[self.pos..];
        if b.len() < 2 {
            return Ok(None);
        }
        let fin = b[0] & 0x80 != 0;
        if b[0] & 0x70 != 0 {
            return Err(err(1002, "reserved bits set"));
        }
        let opcode = b[0] & 0x0F;
        let masked = b[1] & 0x80 != 0;
        let (len, mut at) = match b[1] & 0x7F {
            126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => (
                u64::from_be_bytes(b[2..10].try_into().expect("8 bytes")),
                10,
            ),
            126 | 127 => return Ok(None),
            n => (u64::from(n), 2),
        };
        if opcode >= 0x8 && (!fin || len > 125) {
            return Err(err(1002, "bad control frame"));
        }
        if len > self.max_message as u64 {
            return Err(err(1009, "frame too big"));
        }
        let len = len as usize;
        let mask = if masked {
            if b.len() < at + 4 {
                return Ok(None);
            }
            let m = [b[at], b[at + 1], b[at + 2], b[at + 3]];
            at += 4;
            Some(m)
        } else {
            // Clients must mask; we accept unmasked frames anyway: the mock is lenient with input.
            None
        };
        if b.len() < at + len {
            return Ok(None);
        }
        let mut payload = b[at..at + len].to_vec();
        if let Some(m) = mask {
            for (i, byte) in payload.iter_mut().enumerate() {
                *byte ^= m[i & 3];
            }
        }
        self.pos += at + len;
        Ok(Some((fin, opcode, payload)))
    }
}

fn message(opcode: u8, data: Vec<u8>) -> Incoming {
    if opcode == OP_TEXT {
        Incoming::Text(data)
    } else {
        Incoming::Binary(data)
    }
}

fn err(close_code: u16, what: &'static str) -> FrameError {
    FrameError { close_code, what }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x11, 0x22, 0x33, 0x44];
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        let len = payload.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len <= 0xFFFF {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        out
    }

    #[test]
    fn header_lengths() {
        for (len, header) in [
            (5usize, 2usize),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
        ] {
            let mut out = Vec::new();
            write_frame(&mut out, OP_TEXT, &vec![b'x'; len]);
            assert_eq!(out.len(), header + len, "len {len}");
            assert_eq!(out[0], 0x81);
        }
    }

    #[test]
    fn begin_end_text_fixes_every_length_form() {
        for len in [0usize, 3, 125, 126, 300, 65535, 65536, 70000] {
            let mut out = b"prefix".to_vec();
            let mark = begin_text(&mut out);
            out.resize(out.len() + len, b'a');
            end_text(&mut out, mark);
            let mut expect = b"prefix".to_vec();
            write_frame(&mut expect, OP_TEXT, &vec![b'a'; len]);
            assert_eq!(out, expect, "len {len}");
        }
    }

    #[test]
    fn decodes_masked_text_split_anywhere() {
        let wire = masked(true, OP_TEXT, b"{\"method\":\"PING\"}");
        for split in 0..wire.len() {
            let mut d = FrameDecoder::new(1 << 20);
            d.feed(&wire[..split]);
            let first = d.next_message().unwrap();
            d.feed(&wire[split..]);
            let msg = first.or_else(|| d.next_message().unwrap());
            assert_eq!(msg, Some(Incoming::Text(b"{\"method\":\"PING\"}".to_vec())));
        }
    }

    #[test]
    fn reassembles_fragments_with_interleaved_ping() {
        let mut d = FrameDecoder::new(1 << 20);
        d.feed(&masked(false, OP_TEXT, b"hel"));
        d.feed(&masked(true, OP_PING, b"p"));
        d.feed(&masked(false, OP_CONTINUATION, b"lo "));
        d.feed(&masked(true, OP_CONTINUATION, b"world"));
        assert_eq!(
            d.next_message().unwrap(),
            Some(Incoming::Ping(b"p".to_vec()))
        );
        assert_eq!(
            d.next_message().unwrap(),
            Some(Incoming::Text(b"hello world".to_vec()))
        );
        assert_eq!(d.next_message().unwrap(), None);
    }

    #[test]
    fn long_lengths_and_close() {
        let mut d = FrameDecoder::new(1 << 20);
        let big = vec![b'z'; 70_000];
        d.feed(&masked(true, OP_BINARY, &big));
        d.feed(&masked(true, OP_CLOSE, &close_payload(4001, "bye")));
        assert_eq!(d.next_message().unwrap(), Some(Incoming::Binary(big)));
        assert_eq!(
            d.next_message().unwrap(),
            Some(Incoming::Close(Some(4001), b"bye".to_vec()))
        );
    }

    #[test]
    fn protocol_errors() {
        let mut d = FrameDecoder::new(1 << 20);
        d.feed(&masked(true, OP_CONTINUATION, b"x"));
        assert_eq!(d.next_message().unwrap_err().close_code, 1002);
        let mut d = FrameDecoder::new(10);
        d.feed(&masked(true, OP_TEXT, b"more than ten bytes"));
        assert_eq!(d.next_message().unwrap_err().close_code, 1009);
    }
}
