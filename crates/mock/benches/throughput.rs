//! Throughput of the mock's data path: aggTrade frames over loopback with `rate = None`.
//!
//! Two native consumers, each on its own thread against a fresh mock:
//! * `raw`: a blocking socket that only walks the frame headers (the ceiling of the mock itself);
//! * `tungstenite`: tokio-tungstenite on a current-thread runtime (a realistic Rust client).
//!
//! `cargo bench -p bullet_ws_mock --bench throughput [-- --secs 3 --preencode]`

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bullet_ws_mock::{now_us, MockConfig, MockServer};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const SUBSCRIBE: &str = r#"{"method":"SUBSCRIBE","id":1,"params":["BTC-USD@aggTrade"]}"#;

struct Result {
    frames: u64,
    bytes: u64,
    secs: f64,
    /// now - E of sampled frames, µs, sorted.
    lags: Vec<u64>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs = args
        .iter()
        .position(|a| a == "--secs")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let preencode = args.iter().any(|a| a == "--preencode");
    let duration = Duration::from_secs_f64(secs);
    println!("mock throughput, aggTrade, rate=None, preencode={preencode}, {secs}s per run");
    for (name, run) in [
        ("raw", raw as fn(&str, Duration) -> Result),
        ("tungstenite", tungstenite),
    ] {
        let mock = MockServer::start(MockConfig {
            rate: None,
            preencode,
            ..MockConfig::default()
        })
        .expect("start mock");
        let r = run(&mock.url(), duration);
        let pct = |p: usize| r.lags.get(r.lags.len() * p / 100).copied().unwrap_or(0);
        println!(
            "{name:>12}: {:>10.0} frames/s  {:>7.1} MB/s  ({} frames; E lag p50 {} µs, p99 {} µs)",
            r.frames as f64 / r.secs,
            r.bytes as f64 / r.secs / 1e6,
            r.frames,
            pct(50),
            pct(99),
        );
    }
}

/// Handshake by hand, then count frames by walking headers; never looks at most payloads.
fn raw(url: &str, duration: Duration) -> Result {
    let addr = url.trim_start_matches("ws://").trim_end_matches("/ws");
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).ok();
    write!(
        s,
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut have = 0;
    let head_end = loop {
        have += s.read(&mut buf[have..]).expect("read");
        if let Some(p) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    buf.copy_within(head_end..have, 0);
    have -= head_end;
    let mut frame = vec![0x81, 0x80 | SUBSCRIBE.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(SUBSCRIBE.as_bytes()); // zero mask: payload as is
    s.write_all(&frame).unwrap();

    let (mut frames, mut bytes, mut lags) = (0u64, 0u64, Vec::new());
    let mut start = None;
    let mut pos = 0;
    loop {
        // Walk complete frames in buf[pos..have].
        loop {
            let b = &buf[pos..have];
            if b.len() < 2 {
                break;
            }
            let (len, hdr) = match b[1] & 0x7F {
                126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
                127 if b.len() >= 10 => (
                    u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                126 | 127 => break,
                n => (n as usize, 2),
            };
            if b.len() < hdr + len {
                break;
            }
            frames += 1;
            bytes += (hdr + len) as u64;
            if frames % 4096 == 0 {
                if let Some(e) = field_e(&b[hdr..hdr + len]) {
                    lags.push(now_us().saturating_sub(e));
                }
            }
            pos += hdr + len;
        }
        // Two frames (status, ack) before the stream; start the clock after a warm-up.
        if start.is_none() && frames > 10_000 {
            start = Some((Instant::now(), frames, bytes));
        }
        if let Some((t0, f0, b0)) = start {
            let secs = t0.elapsed().as_secs_f64();
            if secs >= duration.as_secs_f64() {
                lags.sort_unstable();
                return Result {
                    frames: frames - f0,
                    bytes: bytes - b0,
                    secs,
                    lags,
                };
            }
        }
        buf.copy_within(pos..have, 0);
        have -= pos;
        pos = 0;
        let n = s.read(&mut buf[have..]).expect("read");
        assert!(n > 0, "mock closed the connection");
        have += n;
    }
}

fn tungstenite(url: &str, duration: Duration) -> Result {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        ws.send(Message::text(SUBSCRIBE)).await.unwrap();
        let (mut frames, mut bytes, mut lags) = (0u64, 0u64, Vec::new());
        let mut start = None;
        while let Some(msg) = ws.next().await {
            let Message::Text(text) = msg.expect("message") else {
                continue;
            };
            frames += 1;
            bytes += text.len() as u64;
            if frames % 4096 == 0 {
                if let Some(e) = field_e(text.as_bytes()) {
                    lags.push(now_us().saturating_sub(e));
                }
            }
            if frames % 1024 == 0 {
                if start.is_none() && frames > 10_000 {
                    start = Some((Instant::now(), frames, bytes));
                }
                if let Some((t0, f0, b0)) = start {
                    let secs = t0.elapsed().as_secs_f64();
                    if secs >= duration.as_secs_f64() {
                        lags.sort_unstable();
                        return Result {
                            frames: frames - f0,
                            bytes: bytes - b0,
                            secs,
                            lags,
                        };
                    }
                }
            }
        }
        panic!("mock closed the connection");
    })
}

/// The `"E":` number of a market-data frame.
fn field_e(json: &[u8]) -> Option<u64> {
    let at = json.windows(4).position(|w| w == b"\"E\":")? + 4;
    let digits = json[at..].iter().take_while(|c| c.is_ascii_digit());
    Some(digits.fold(0u64, |n, c| n * 10 + u64::from(c - b'0')))
}
