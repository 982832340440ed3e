//! Autobahn conformance client: drives a fuzzing server (Autobahn's `wstest -m fuzzingserver`, or
//! kosoku's `run_fuzzingserver`) with the native transport's exact tokio-tungstenite settings
//! (`bullet_ws::transport::ws_config`) and echoes every text and binary message back.
//!
//! Usage: `autobahn_client [BASE_URL] [AGENT] [MAX_MESSAGE_SIZE]`, e.g.
//! `cargo run --example autobahn_client -- ws://127.0.0.1:9001 bullet-ws`.
//! Runs GET /getCaseCount, then /runCase?case=N&agent=AGENT for N in 1..=count, then
//! /updateReports?agent=AGENT. `MAX_MESSAGE_SIZE` defaults to the client's default (4 MiB); the
//! performance group (9.x) sends messages up to 16 MiB and needs a larger one.
//!
//! Like the managed socket, a connection that fails (protocol error, oversized message, ...) is
//! closed politely within a grace period, then dropped. Prints one line per case to stderr.

use std::time::Duration;

use bullet_ws::config::Config;
use bullet_ws::transport::ws_config;
use futures_util::{SinkExt, StreamExt};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// As the managed socket's `CLOSE_GRACE`: a late close handshake is abandoned after this.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

async fn open(
    url: &str,
    cfg: WebSocketConfig,
) -> Res<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>>
{
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(cfg), true).await?;
    Ok(ws)
}

async fn case_count(base: &str, cfg: WebSocketConfig) -> Res<u32> {
    let mut ws = open(&format!("{base}/getCaseCount"), cfg).await?;
    let mut count = None;
    while let Some(msg) = ws.next().await {
        match msg? {
            Message::Text(t) => count = Some(t.as_str().trim().parse()?),
            Message::Close(_) => break,
            _ => {}
        }
    }
    count.ok_or_else(|| "no case count received".into())
}

/// One case: echo until the peer closes or the connection fails. Returns how it ended.
async fn run_case(base: &str, n: u32, agent: &str, cfg: WebSocketConfig) -> Res<String> {
    let mut ws = open(&format!("{base}/runCase?case={n}&agent={agent}"), cfg).await?;
    let mut echoed = 0u64;
    let end = loop {
        match ws.next().await {
            None => break "ended".to_owned(),
            Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                if let Err(e) = ws.send(m).await {
                    break format!("send error: {e}");
                }
                echoed += 1;
            }
            // Pings are answered by tungstenite, the close reply is queued by it too.
            Some(Ok(_)) => {}
            Some(Err(e)) => break format!("error: {e}"),
        }
    };
    let _ = timeout(CLOSE_GRACE, ws.close(None)).await;
    Ok(format!("echoed {echoed}, {end}"))
}

async fn update_reports(base: &str, agent: &str, cfg: WebSocketConfig) -> Res<()> {
    let mut ws = open(&format!("{base}/updateReports?agent={agent}"), cfg).await?;
    while let Some(msg) = ws.next().await {
        if msg.is_err() {
            break;
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let base = base.trim_end_matches('/').to_owned();
    let agent = args.next().unwrap_or_else(|| "bullet-ws".to_owned());
    let mut config = Config::default();
    if let Some(size) = args.next() {
        config.max_message_size = size.parse()?;
    }
    let cfg = ws_config(&config);

    let count = case_count(&base, cfg).await?;
    eprintln!("autobahn_client: {count} cases against {base} as {agent}");
    for n in 1..=count {
        match run_case(&base, n, &agent, cfg).await {
            Ok(how) => eprintln!("case {n}: {how}"),
            Err(e) => eprintln!("case {n}: connect failed: {e}"),
        }
    }
    update_reports(&base, &agent, cfg).await?;
    eprintln!("autobahn_client: done");
    Ok(())
}
