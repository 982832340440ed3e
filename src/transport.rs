//! One WebSocket connection to the exchange: TCP (+ TLS), the HTTP upgrade, the `connected` status
//! handshake, then frames in (parsed on this thread, off the GIL) and text frames out.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::tcp::Tcp;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::config::Config;
use crate::protocol::{parse_bytes, parse_str, ServerMessage};
use crate::wire::Wire;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectErrorKind {
    /// TCP, DNS or TLS failed.
    Io,
    /// Not done within `connection_timeout`.
    Timeout,
    /// The upgrade was refused, or the first message was not the `connected` status.
    Handshake,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectError {
    pub kind: ConnectErrorKind,
    pub message: String,
}

impl ConnectError {
    pub fn new(kind: ConnectErrorKind, message: impl Into<String>) -> Self {
        ConnectError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why a live connection is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lost {
    Closed { code: u16, reason: String },
    Ended,
    Error(String),
}

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lost::Closed { code, reason } if reason.is_empty() => {
                write!(f, "closed by server ({code})")
            }
            Lost::Closed { code, reason } => write!(f, "closed by server ({code}): {reason}"),
            Lost::Ended => f.write_str("stream ended without a close frame"),
            Lost::Error(e) => write!(f, "transport error: {e}"),
        }
    }
}

/// A live connection, as the managed loop sees it. Implemented by the real WebSocket and by the
/// in-memory fakes of the deterministic tests.
pub trait Connection: Send + 'static {
    /// The next server message and its wire size in bytes (pings, pongs and other control
    /// frames are handled underneath).
    fn recv(&mut self) -> impl Future<Output = Result<(ServerMessage, usize), Lost>> + Send;
    fn send(&mut self, text: String) -> impl Future<Output = Result<(), Lost>> + Send;
    /// Bytes handed to the kernel so far. When it moved during a failed send, the peer may have
    /// the whole frame, and an order must never be sent again automatically.
    fn bytes_written(&self) -> u64;
    /// A polite close, best effort.
    fn close(self) -> impl Future<Output = ()> + Send;
    /// The stream shared with callers' direct writes; None where they are not supported.
    fn wire(&self) -> Option<Arc<Wire>> {
        None
    }
    /// A write was abandoned and its frame goes elsewhere: never flush what is left of it.
    fn poison(&self, _reason: &str) {}
}

/// Opens connections (upgrade + `connected` status); the caller bounds it with its timeout.
pub trait Connector: Send + Sync + 'static {
    type Conn: Connection;
    fn connect(&self) -> impl Future<Output = Result<Self::Conn, ConnectError>> + Send;
}

pub struct WsConnector {
    url: String,
    ws_config: WebSocketConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl WsConnector {
    /// Fails when the CA bundle cannot be read: a bad `ca_file` must not silently fall back.
    pub fn new(url: &str, config: &Config) -> Result<Self, ConnectError> {
        // Schemes are case-insensitive (RFC 3986 §3.1).
        let tls = if url
            .get(..6)
            .is_some_and(|s| s.eq_ignore_ascii_case("wss://"))
        {
            Some(Arc::new(tls_config(config)?))
        } else {
            None
        };
        let ws_config = ws_config(config);
        Ok(WsConnector {
            url: url.to_owned(),
            ws_config,
            tls,
        })
    }
}

/// The tokio-tungstenite settings of every connection (also used by `tests/autobahn/client.rs`,
/// so that the conformance run tests exactly this configuration).
pub fn ws_config(config: &Config) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(crate::tcp::FRAME_READ)
        .max_message_size(Some(config.max_message_size))
        .max_frame_size(Some(config.max_message_size))
}

fn tls_config(config: &Config) -> Result<rustls::ClientConfig, ConnectError> {
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
                ConnectError::new(
                    ConnectErrorKind::Io,
                    format!("cannot read ca_file {}: {e}", path.display()),
                )
            })?;
            for cert in certs {
                let cert = cert.map_err(|e| {
                    ConnectError::new(
                        ConnectErrorKind::Io,
                        format!("bad certificate in {}: {e}", path.display()),
                    )
                })?;
                roots.add(cert).map_err(|e| {
                    ConnectError::new(
                        ConnectErrorKind::Io,
                        format!("bad certificate in {}: {e}", path.display()),
                    )
                })?;
            }
            if roots.is_empty() {
                return Err(ConnectError::new(
                    ConnectErrorKind::Io,
                    format!("ca_file {} holds no certificate", path.display()),
                ));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::new(ConnectErrorKind::Io, format!("TLS setup: {e}")))
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

fn connect_error(e: WsError) -> ConnectError {
    use ConnectErrorKind::*;
    match e {
        WsError::Http(resp) => ConnectError::new(
            Handshake,
            format!("HTTP upgrade refused: status {}", resp.status()),
        ),
        WsError::Tls(e) => ConnectError::new(Io, format!("TLS error: {e}")),
        WsError::Io(e) => match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => ConnectError::new(Io, format!("TLS error: {tls}")),
            None => ConnectError::new(Io, format!("connection failed: {e}")),
        },
        WsError::Url(e) => ConnectError::new(Io, format!("bad URL: {e}")),
        WsError::Protocol(e) => {
            ConnectError::new(Handshake, format!("WebSocket upgrade failed: {e}"))
        }
        other => ConnectError::new(Handshake, format!("WebSocket upgrade failed: {other}")),
    }
}

impl Connector for WsConnector {
    type Conn = WsConnection;

    async fn connect(&self) -> Result<WsConnection, ConnectError> {
        let connector = match &self.tls {
            Some(cfg) => tokio_tungstenite::Connector::Rustls(cfg.clone()),
            None => tokio_tungstenite::Connector::Plain,
        };
        // TCP is opened here rather than by tokio-tungstenite so that the stream can count the
        // bytes the kernel accepts (see `SendError::written`).
        let request = self
            .url
            .as_str()
            .into_client_request()
            .map_err(connect_error)?;
        let uri = request.uri();
        let host = uri
            .host()
            .ok_or_else(|| ConnectError::new(ConnectErrorKind::Io, "bad URL: no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri
            .port_u16()
            .unwrap_or(if self.tls.is_some() { 443 } else { 80 });
        let tcp = Tcp::connect(host.as_str(), port).await.map_err(|e| {
            ConnectError::new(ConnectErrorKind::Io, format!("connection failed: {e}"))
        })?;
        let written = Arc::new(AtomicU64::new(0));
        let counted = Counted {
            inner: tcp,
            written: written.clone(),
        };
        let (ws, _response) = tokio_tungstenite::client_async_tls_with_config(
            request,
            counted,
            Some(self.ws_config),
            Some(connector),
        )
        .await
        .map_err(connect_error)?;
        let mut conn = WsConnection {
            wire: Arc::new(Wire::new(ws, written)),
        };
        // The server's first message must be the `connected` status; it is consumed here.
        match conn.recv().await {
            Ok((m, _)) if m.is_connected_status() => Ok(conn),
            Ok((other, _)) => Err(ConnectError::new(
                ConnectErrorKind::Handshake,
                format!(
                    "first message was not status/connected: got {}",
                    other.name()
                ),
            )),
            Err(lost) => Err(ConnectError::new(
                ConnectErrorKind::Handshake,
                format!("connection lost before the `connected` status: {lost}"),
            )),
        }
    }
}

pub struct WsConnection {
    wire: Arc<Wire>,
}

/// A stream that counts the bytes its writes hand to the kernel.
pub struct Counted<S> {
    inner: S,
    written: Arc<AtomicU64>,
}

impl<S> Counted<S> {
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            self.written.fetch_add(n as u64, Ordering::Relaxed);
        }
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = poll {
            self.written.fetch_add(n as u64, Ordering::Relaxed);
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A frame as the managed loop sees it: a parsed message with its wire size, nothing (pings
/// are answered by tungstenite; control frames are not messages), or the end of the connection
/// (a close frame). Both readers of a connection, the task and the event loop, go through it.
pub(crate) fn message_of(frame: Message) -> Result<Option<(ServerMessage, usize)>, Lost> {
    match frame {
        Message::Text(text) => Ok(Some((parse_str(text.as_str()), text.len()))),
        Message::Binary(bytes) => Ok(Some((parse_bytes(&bytes), bytes.len()))),
        Message::Close(frame) => {
            let (code, reason) = frame
                .map(|f| (u16::from(f.code), f.reason.as_str().to_owned()))
                .unwrap_or((1005, String::new()));
            Err(Lost::Closed { code, reason })
        }
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(None),
    }
}

pub(crate) fn lost(e: WsError) -> Lost {
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => Lost::Ended,
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Lost::Ended,
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => Lost::Error(
            format!("message of {size} bytes exceeds max_message_size ({max_size})"),
        ),
        WsError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            Lost::Error("connection reset by peer".into())
        }
        other => Lost::Error(other.to_string()),
    }
}

impl Connection for WsConnection {
    async fn recv(&mut self) -> Result<(ServerMessage, usize), Lost> {
        loop {
            let next = match self.wire.next().await {
                None => Err(Lost::Ended),
                Some(Ok(frame)) => message_of(frame),
                Some(Err(l)) => Err(l),
            };
            if let Some(message) = next.transpose() {
                return message;
            }
        }
    }

    async fn send(&mut self, text: String) -> Result<(), Lost> {
        self.wire.send(Message::text(text)).await
    }

    fn bytes_written(&self) -> u64 {
        self.wire.bytes_written()
    }

    async fn close(self) {
        // Reads up to the peer's close reply: a socket closed with unread input sends a RST, and
        // a RST makes the peer's kernel discard what it has not read yet, the last orders
        // included. The caller bounds this wait.
        self.wire.close().await;
    }

    fn wire(&self) -> Option<Arc<Wire>> {
        Some(self.wire.clone())
    }

    fn poison(&self, reason: &str) {
        self.wire.poison(reason);
    }
}
