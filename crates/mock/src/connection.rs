//! One accepted TCP connection: the upgrade, then the request/stream/fault loop.
//!
//! The task owns the socket and uses readiness (`readable`/`writable` + `try_*`) rather than
//! `AsyncRead`/`AsyncWrite`, so that reading, writing and timers can be awaited together on a
//! shared `&TcpStream` and a flood of market data never stops the mock from reading requests.

use std::io::{self, ErrorKind};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{interval_at, sleep_until, Instant, MissedTickBehavior};

use crate::clock::now_us;
use crate::config::MockConfig;
use crate::fault::{DropHow, Fault};
use crate::frame::{self, FrameDecoder, Incoming};
use crate::handshake::{self, Request};
use crate::record::{ClientFrame, ClosedBy};
use crate::session::{OrderReject, RequestContext, Session};
use crate::shared::Shared;

/// Market data is built in batches of about this many bytes per write syscall when flooding.
const FLOOD_BATCH: usize = 128 * 1024;
/// Paced streaming pauses (without gaps) while this much output waits for a slow reader.
const MAX_BACKLOG: usize = 4 << 20;
/// How long a server-initiated close waits for the client's close frame / FIN.
const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// A paced schedule that fell further behind than this restarts instead of bursting.
const MAX_LAG: Duration = Duration::from_millis(200);

pub(crate) async fn run(stream: TcpStream, shared: Arc<Shared>, first: Option<Fault>) {
    let _ = stream.set_nodelay(true);
    if first == Some(Fault::StallHandshake) {
        // Hold the socket, read and ignore everything, until the client gives up.
        let mut sink = Vec::new();
        while matches!(read_some(&stream, &mut sink).await, Ok(n) if n > 0) {
            sink.clear();
        }
        return;
    }
    let mut inbox = Vec::with_capacity(4096);
    let key = loop {
        match handshake::parse(&inbox) {
            Request::Upgrade { key, head_len } => {
                inbox.drain(..head_len);
                break key;
            }
            Request::Reject(response) => {
                let _ = write_all(&stream, &response).await;
                shutdown_write(&stream);
                return;
            }
            Request::Incomplete => {}
        }
        if !matches!(read_some(&stream, &mut inbox).await, Ok(n) if n > 0) {
            return;
        }
    };
    if write_all(&stream, &handshake::switching_protocols(&key))
        .await
        .is_err()
    {
        return;
    }
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let (index, reject) = shared.register(commands_tx);
    let mut conn = Conn::new(stream, shared, index, reject);
    conn.decoder.feed(&inbox);
    let closed_by = match conn.open(first).await {
        Some(by) => by,
        None => conn.serve(commands).await,
    };
    conn.finish(closed_by);
}

enum Step {
    Continue,
    Closed(ClosedBy),
}

struct Conn {
    stream: TcpStream,
    shared: Arc<Shared>,
    index: usize,
    client_id: String,
    session: Session,
    decoder: FrameDecoder,
    out: Vec<u8>,
    out_pos: usize,
    frames_sent: u64,
    frames_reported: u64,
    market_sent: u64,
    /// `Some(answer_pings)` once silenced.
    silence: Option<bool>,
    reject: Option<OrderReject>,
    ring: Option<Ring>,
    opened_at: Instant,
    /// Last text message from the client: the clock of `idle_close`.
    last_text: Instant,
    /// When a `disconnecting` notice already sent is followed by the close.
    close_at: Option<Instant>,
}

/// Pre-encoded market frames (option `preencode`), valid for one subscription generation.
struct Ring {
    generation: u64,
    bytes: Vec<u8>,
    ends: Vec<usize>,
    next: usize,
}

impl Conn {
    fn new(
        stream: TcpStream,
        shared: Arc<Shared>,
        index: usize,
        reject: Option<OrderReject>,
    ) -> Self {
        let cfg = &shared.config;
        let session = Session::new(
            cfg.symbols.clone(),
            cfg.max_topics,
            index as u64 + 1,
            cfg.legacy_shapes,
        );
        let decoder = FrameDecoder::new(cfg.max_message_size);
        Self {
            stream,
            client_id: format!("ws_{index}"),
            shared,
            index,
            session,
            decoder,
            out: Vec::with_capacity(FLOOD_BATCH + 64 * 1024),
            out_pos: 0,
            frames_sent: 0,
            frames_reported: 0,
            market_sent: 0,
            silence: None,
            reject,
            ring: None,
            opened_at: Instant::now(),
            last_text: Instant::now(),
            close_at: None,
        }
    }

    fn config(&self) -> &MockConfig {
        &self.shared.config
    }

    /// The opening after the upgrade: the `connected` status, or what a fault puts instead.
    async fn open(&mut self, first: Option<Fault>) -> Option<ClosedBy> {
        match first {
            Some(Fault::NoStatus) => None,
            Some(Fault::WrongFirst(data)) => {
                self.queue(frame::OP_TEXT, &data);
                None
            }
            Some(Fault::AcceptDrop(how)) => {
                self.queue_status("connected", None);
                let _ = self.flush_all().await;
                Some(match how {
                    DropHow::Fin => self.fin().await,
                    DropHow::Reset => self.reset(),
                    DropHow::Close => self.close(1000, "").await,
                })
            }
            other => {
                self.queue_status("connected", None);
                match other {
                    Some(fault) => match self.apply(fault).await {
                        Step::Closed(by) => Some(by),
                        Step::Continue => None,
                    },
                    None => None,
                }
            }
        }
    }

    async fn serve(&mut self, mut commands: mpsc::UnboundedReceiver<Fault>) -> ClosedBy {
        let rate = self.config().rate;
        let period = rate.map(|r| Duration::from_secs_f64(1.0 / r));
        let mut pings = self.config().ping_interval.map(|d| {
            let mut i = interval_at(Instant::now() + d, d);
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            i
        });
        let idle_close = self.config().idle_close;
        let max_duration = self.config().max_duration;
        let mut next_due = Instant::now();
        let mut was_paced = false;
        loop {
            if self.flush().is_err() {
                return ClosedBy::Client;
            }
            let streaming = self.can_stream();
            let paced = streaming && period.is_some() && self.backlog() < MAX_BACKLOG;
            if paced && !was_paced {
                next_due = Instant::now();
            }
            was_paced = paced;
            let want_write = self.backlog() > 0 || (streaming && period.is_none());
            // The server's rules: a silenced (zombie) server enforces nothing, and once a
            // notice is out only its close is pending.
            let rules = self.silence.is_none() && self.close_at.is_none();
            let idle_due = idle_close.map(|d| self.last_text + d);
            let lifetime_due = max_duration.map(|d| self.opened_at + d);
            let step = tokio::select! {
                biased;
                fault = commands.recv() => match fault {
                    Some(fault) => self.apply(fault).await,
                    None => Step::Closed(ClosedBy::Server),
                },
                ready = self.stream.readable() => match ready {
                    Ok(()) => self.on_readable().await,
                    Err(_) => Step::Closed(ClosedBy::Client),
                },
                ready = self.stream.writable(), if want_write => match ready {
                    Ok(()) => self.on_writable(),
                    Err(_) => Step::Closed(ClosedBy::Client),
                },
                () = sleep_until(next_due), if paced => {
                    self.emit_due(&mut next_due, period.unwrap_or_default());
                    Step::Continue
                },
                _ = async { pings.as_mut().expect("guarded by is_some").tick().await }, if pings.is_some() => {
                    if self.silence.is_none() {
                        self.queue(frame::OP_PING, b"");
                    }
                    Step::Continue
                },
                () = sleep_until(idle_due.unwrap_or(next_due)), if rules && idle_due.is_some() => {
                    self.disconnecting("idle_timeout", Duration::ZERO).await
                },
                () = sleep_until(lifetime_due.unwrap_or(next_due)), if rules && lifetime_due.is_some() => {
                    self.disconnecting("max_duration", Duration::ZERO).await
                },
                () = sleep_until(self.close_at.unwrap_or(next_due)), if self.close_at.is_some() => {
                    Step::Closed(self.close(1000, "").await)
                },
            };
            if let Step::Closed(by) = step {
                return by;
            }
        }
    }

    fn finish(self, closed_by: ClosedBy) {
        let Conn {
            stream,
            shared,
            index,
            frames_sent,
            ..
        } = self;
        // Close the socket before the record says so: a test that waits for the record may then
        // rely on the client seeing the close.
        drop(stream);
        shared.record(index, |r| r.frames_sent = frames_sent);
        shared.closed(index, closed_by);
    }

    // ----- output -----

    fn backlog(&self) -> usize {
        self.out.len() - self.out_pos
    }

    fn queue(&mut self, opcode: u8, payload: &[u8]) {
        frame::write_frame(&mut self.out, opcode, payload);
        self.frames_sent += 1;
    }

    fn queue_text(&mut self, text: &str) {
        self.queue(frame::OP_TEXT, text.as_bytes());
    }

    fn queue_status(&mut self, status: &str, reason: Option<&str>) {
        // By hand: serde_json would sort the keys, and the wire has `e` first.
        let reason = reason.map_or(String::new(), |r| {
            format!(r#","reason":{}"#, Value::from(r))
        });
        let msg = format!(
            r#"{{"e":"status","E":{},"status":"{status}","clientId":"{}"{reason}}}"#,
            now_us(),
            self.client_id
        );
        self.queue_text(&msg);
    }

    /// Writes what the socket takes now. Err: the client is gone.
    fn flush(&mut self) -> Result<(), ()> {
        while self.backlog() > 0 {
            match self.stream.try_write(&self.out[self.out_pos..]) {
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return Err(()),
            }
        }
        if self.backlog() == 0 {
            self.out.clear();
            self.out_pos = 0;
        }
        self.report_sent();
        Ok(())
    }

    /// Writes everything queued, waiting for the socket (bounded, for close sequences).
    async fn flush_all(&mut self) -> Result<(), ()> {
        let deadline = Instant::now() + CLOSE_LINGER;
        while self.backlog() > 0 {
            self.flush()?;
            if self.backlog() > 0 {
                match tokio::time::timeout_at(deadline, self.stream.writable()).await {
                    Ok(Ok(())) => {}
                    _ => return Err(()),
                }
            }
        }
        Ok(())
    }

    fn report_sent(&mut self) {
        if self.frames_sent != self.frames_reported {
            let n = self.frames_sent;
            self.frames_reported = n;
            self.shared.record(self.index, |r| r.frames_sent = n);
        }
    }

    // ----- market data -----

    fn can_stream(&self) -> bool {
        self.silence.is_none()
            && self.session.has_market_data()
            && !matches!(self.config().max_messages, Some(m) if self.market_sent >= m)
    }

    fn push_market_frame(&mut self, now: u64) {
        if self.config().preencode {
            self.push_ring_frame(now);
        } else {
            self.session.write_market_frame(&mut self.out, now);
        }
        self.market_sent += 1;
        self.frames_sent += 1;
    }

    fn push_ring_frame(&mut self, now: u64) {
        let generation = self.session.generation();
        if !matches!(&self.ring, Some(r) if r.generation == generation) {
            let mut bytes = Vec::new();
            let mut ends = Vec::with_capacity(MockConfig::RING_FRAMES);
            for _ in 0..MockConfig::RING_FRAMES {
                self.session.write_market_frame(&mut bytes, now);
                ends.push(bytes.len());
            }
            self.ring = Some(Ring {
                generation,
                bytes,
                ends,
                next: 0,
            });
        }
        let ring = self.ring.as_mut().expect("just built");
        let start = if ring.next == 0 {
            0
        } else {
            ring.ends[ring.next - 1]
        };
        self.out
            .extend_from_slice(&ring.bytes[start..ring.ends[ring.next]]);
        ring.next = (ring.next + 1) % ring.ends.len();
    }

    /// Paced mode: every frame whose time has come.
    fn emit_due(&mut self, next_due: &mut Instant, period: Duration) {
        if self.config().shared_sequence {
            return self.emit_shared(next_due);
        }
        let now = Instant::now();
        if now.saturating_duration_since(*next_due) > MAX_LAG {
            *next_due = now;
        }
        let stamp = now_us();
        while *next_due <= now && self.can_stream() {
            self.push_market_frame(stamp);
            *next_due += period;
        }
    }

    /// `shared_sequence`: every id due by now, on the server's clock rather than this
    /// connection's, so that connections open at once carry the same ids.
    fn emit_shared(&mut self, next_due: &mut Instant) {
        const CAP: u64 = 4096;
        let rate = self.config().rate.unwrap_or(1.0);
        let started = self.shared.started;
        let due = (Instant::now()
            .saturating_duration_since(started)
            .as_secs_f64()
            * rate) as u64
            + 1;
        let left = self
            .config()
            .max_messages
            .map_or(CAP, |m| m.saturating_sub(self.market_sent).min(CAP));
        let n = self
            .session
            .write_shared_frames(&mut self.out, now_us(), due, left);
        self.market_sent += n;
        self.frames_sent += n;
        // A capped burst goes on at once; otherwise wake when the next id is due.
        *next_due = if n == CAP {
            Instant::now()
        } else {
            started + Duration::from_secs_f64(due as f64 / rate)
        };
    }

    /// Flood mode (rate None) and backlog: write until the socket is full, refilling with
    /// batches of fresh frames, so one syscall carries hundreds of frames.
    fn on_writable(&mut self) -> Step {
        let flood = self.config().rate.is_none();
        loop {
            if self.backlog() == 0 {
                self.out.clear();
                self.out_pos = 0;
                if !(flood && self.can_stream()) {
                    break;
                }
                let stamp = now_us();
                while self.out.len() < FLOOD_BATCH && self.can_stream() {
                    self.push_market_frame(stamp);
                }
            }
            match self.stream.try_write(&self.out[self.out_pos..]) {
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return Step::Closed(ClosedBy::Client),
            }
        }
        self.report_sent();
        Step::Continue
    }

    // ----- input -----

    async fn on_readable(&mut self) -> Step {
        let mut buf = [0u8; 16 * 1024];
        let mut eof = false;
        loop {
            match self.stream.try_read(&mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    self.decoder.feed(&buf[..n]);
                    if n < buf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        loop {
            match self.decoder.next_message() {
                Ok(Some(message)) => {
                    if let Step::Closed(by) = self.on_message(message).await {
                        return Step::Closed(by);
                    }
                }
                Ok(None) => break,
                Err(e) => return Step::Closed(self.close(e.close_code, e.what).await),
            }
        }
        if eof {
            Step::Closed(ClosedBy::Client)
        } else {
            Step::Continue
        }
    }

    async fn on_message(&mut self, message: Incoming) -> Step {
        match message {
            Incoming::Text(data) => self.on_data(data, false),
            Incoming::Binary(data) => self.on_data(data, true),
            Incoming::Ping(payload) => {
                self.shared.record(self.index, |r| r.pings += 1);
                if self.silence.unwrap_or(true) {
                    self.queue(frame::OP_PONG, &payload);
                }
            }
            Incoming::Pong(_) => self.shared.record(self.index, |r| r.pongs += 1),
            Incoming::Close(code, _) => {
                self.shared.record(self.index, |r| r.close_code = code);
                if self.silence.is_none() {
                    let payload = code.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default();
                    self.queue(frame::OP_CLOSE, &payload);
                    let _ = self.flush_all().await;
                }
                shutdown_write(&self.stream);
                self.linger().await;
                return Step::Closed(ClosedBy::Client);
            }
        }
        Step::Continue
    }

    /// A request, text or binary alike (binary is parsed as UTF-8 JSON, as the SDK does).
    fn on_data(&mut self, data: Vec<u8>, binary: bool) {
        if !binary {
            self.last_text = Instant::now();
        }
        let silenced = self.silence.is_some();
        let replies = if silenced {
            Vec::new()
        } else {
            let shared = Arc::clone(&self.shared);
            let next_order_id = move || shared.next_order_id();
            let ctx = RequestContext {
                now_us: now_us(),
                reject_orders: self.reject.as_ref(),
                next_order_id: &next_order_id,
            };
            self.session.handle(&data, &ctx)
        };
        let at = crate::clock::monotonic();
        self.shared.record(self.index, |r| {
            r.frames.push(ClientFrame { at, data, binary })
        });
        for reply in replies {
            self.queue_text(&reply);
        }
    }

    // ----- faults and endings -----

    async fn apply(&mut self, fault: Fault) -> Step {
        match fault {
            Fault::Close { code, reason } => return Step::Closed(self.close(code, &reason).await),
            Fault::Reset => return Step::Closed(self.reset()),
            Fault::Fin => return Step::Closed(self.fin().await),
            Fault::Silence { answer_pings } => self.silence = Some(answer_pings),
            Fault::Disconnecting { reason, delay } => {
                return self.disconnecting(&reason, delay).await;
            }
            Fault::SendText(data) => self.queue(frame::OP_TEXT, &data),
            Fault::SendBinary(data) => self.queue(frame::OP_BINARY, &data),
            Fault::Oversize(size) => self.queue(frame::OP_TEXT, &oversize_payload(size)),
            Fault::HugeHeader { length } => {
                frame::write_header(&mut self.out, frame::OP_TEXT, length);
                self.out.extend_from_slice(b"{\"e\":\"aggTr");
                self.frames_sent += 1;
                // Anything more would be read as part of the announced payload.
                self.silence = Some(false);
            }
            Fault::Ping { count, payload } => {
                for _ in 0..count {
                    self.queue(frame::OP_PING, &payload);
                }
            }
            Fault::RejectOrders(reject) => self.reject = Some(reject),
            Fault::DepthGap => {
                self.session.depth_gap();
            }
            // Opening faults: only reachable through `open`; nothing to do later.
            Fault::Refuse
            | Fault::StallHandshake
            | Fault::AcceptDrop(_)
            | Fault::NoStatus
            | Fault::WrongFirst(_) => {}
        }
        Step::Continue
    }

    /// The live server's notice before it ends a connection: the `disconnecting` status, then
    /// the close, at once or after `delay` (meanwhile the connection works as before).
    async fn disconnecting(&mut self, reason: &str, delay: Duration) -> Step {
        self.queue_status("disconnecting", Some(reason));
        if delay.is_zero() {
            return Step::Closed(self.close(1000, "").await);
        }
        let at = Instant::now() + delay;
        self.close_at = Some(self.close_at.map_or(at, |t| t.min(at)));
        Step::Continue
    }

    /// Close frame, then FIN once the client answered (or after [`CLOSE_LINGER`]).
    async fn close(&mut self, code: u16, reason: &str) -> ClosedBy {
        self.queue(frame::OP_CLOSE, &frame::close_payload(code, reason));
        let _ = self.flush_all().await;
        self.linger().await;
        shutdown_write(&self.stream);
        ClosedBy::Server
    }

    /// FIN without a close frame; keep reading briefly so the close is a clean one.
    async fn fin(&mut self) -> ClosedBy {
        self.out.clear();
        self.out_pos = 0;
        shutdown_write(&self.stream);
        self.linger().await;
        ClosedBy::Server
    }

    fn reset(&mut self) -> ClosedBy {
        let _ = self.stream.set_zero_linger();
        ClosedBy::Server
    }

    /// Reads until the client's close frame or EOF (recording the close code), at most
    /// [`CLOSE_LINGER`].
    async fn linger(&mut self) {
        let deadline = Instant::now() + CLOSE_LINGER;
        let mut buf = Vec::new();
        loop {
            loop {
                match self.decoder.next_message() {
                    Ok(Some(Incoming::Close(code, _))) => {
                        self.shared.record(self.index, |r| r.close_code = code);
                        return;
                    }
                    Ok(Some(Incoming::Pong(_))) => self.shared.record(self.index, |r| r.pongs += 1),
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => return,
                }
            }
            buf.clear();
            match tokio::time::timeout_at(deadline, read_some(&self.stream, &mut buf)).await {
                Ok(Ok(n)) if n > 0 => self.decoder.feed(&buf),
                _ => return,
            }
        }
    }
}

fn oversize_payload(size: usize) -> Vec<u8> {
    const HEAD: &[u8] = b"{\"e\":\"oversize\",\"pad\":\"";
    if size < HEAD.len() + 2 {
        return vec![b'x'; size];
    }
    let mut p = Vec::with_capacity(size);
    p.extend_from_slice(HEAD);
    p.resize(size - 2, b'x');
    p.extend_from_slice(b"\"}");
    p
}

async fn read_some(stream: &TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 8192];
    loop {
        stream.readable().await?;
        match stream.try_read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// TCP FIN now, while the socket stays open for reading.
fn shutdown_write(stream: &TcpStream) {
    // Not connected any more is as good as shut down.
    let _ = socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::oversize_payload;

    #[test]
    fn oversize_is_exact_and_json_when_big_enough() {
        for size in [0, 5, 25, 26, 1000, 70_000] {
            let p = oversize_payload(size);
            assert_eq!(p.len(), size);
            if size >= 25 {
                serde_json::from_slice::<serde_json::Value>(&p).unwrap();
            }
        }
    }
}
