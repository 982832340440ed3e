//! End-to-end: a tokio-tungstenite client against the running mock.

use std::time::Duration;

use bullet_ws_mock::{ClosedBy, DropHow, Fault, MockConfig, MockServer, Scope};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const T: Duration = Duration::from_secs(5);

async fn connect(mock: &MockServer) -> Ws {
    tokio_tungstenite::connect_async(mock.url())
        .await
        .expect("connect")
        .0
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(T, ws.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("ok");
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).expect("json");
        }
    }
}

#[tokio::test]
async fn status_subscribe_stream_and_record() {
    let mock = MockServer::start(MockConfig {
        rate: Some(1000.0),
        ..MockConfig::default()
    })
    .unwrap();
    let mut ws = connect(&mock).await;
    let status = next_json(&mut ws).await;
    assert_eq!(
        (status["status"].as_str(), status["clientId"].as_str()),
        (Some("connected"), Some("ws_0"))
    );
    ws.send(Message::text(
        r#"{"method":"SUBSCRIBE","id":1,"params":["BTC-USD@aggTrade","ETH-USD@depth5"]}"#,
    ))
    .await
    .unwrap();
    assert_eq!(next_json(&mut ws).await["result"], "success");
    let (mut trades, mut depth) = (Vec::new(), Vec::new());
    while trades.len() < 20 {
        let m = next_json(&mut ws).await;
        match m["e"].as_str() {
            Some("aggTrade") => trades.push(m["a"].as_u64().unwrap()),
            Some("depthUpdate") => depth.push(m),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(trades, (1..=20).collect::<Vec<_>>());
    assert_eq!(depth[0]["mt"], "s");
    assert!(mock.wait_frames(0, 1, T));
    let rec = mock.connection(0).unwrap();
    assert!(rec.frames[0].data.starts_with(b"{\"method\":\"SUBSCRIBE\""));
    assert!(rec.frames_sent >= 40);
    ws.close(None).await.unwrap();
    assert!(mock.wait_closed(0, T));
    assert_eq!(
        mock.connection(0).unwrap().closed_by,
        Some(ClosedBy::Client)
    );
}

#[tokio::test]
async fn flood_respects_max_messages() {
    let mock = MockServer::start(MockConfig {
        rate: None,
        max_messages: Some(5000),
        ..MockConfig::default()
    })
    .unwrap();
    let mut ws = connect(&mock).await;
    next_json(&mut ws).await;
    ws.send(Message::text(
        r#"{"method":"SUBSCRIBE","id":1,"params":["SOL-USD@aggTrade"]}"#,
    ))
    .await
    .unwrap();
    next_json(&mut ws).await;
    for expected in 1..=5000u64 {
        assert_eq!(next_json(&mut ws).await["a"], expected);
    }
    // Still open and answering after the budget is spent.
    ws.send(Message::text(r#"{"method":"PING","id":7}"#))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["e"], "pong");
}

#[tokio::test]
async fn faults_close_refuse_accept_drop() {
    let mock = MockServer::start(MockConfig::default()).unwrap();
    let mut ws = connect(&mock).await;
    next_json(&mut ws).await;
    assert_eq!(
        mock.fault(
            Fault::Close {
                code: 4000,
                reason: "bye".into()
            },
            Scope::Current
        ),
        Ok(1)
    );
    match tokio::time::timeout(T, ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(f)))) => {
            assert_eq!((u16::from(f.code), f.reason.as_str()), (4000, "bye"))
        }
        other => panic!("{other:?}"),
    }
    assert!(mock.wait_closed(0, T));

    mock.fault(Fault::Refuse, Scope::Next { count: 1 }).unwrap();
    mock.fault(Fault::AcceptDrop(DropHow::Reset), Scope::Next { count: 1 })
        .unwrap();
    assert!(tokio_tungstenite::connect_async(mock.url()).await.is_err());
    let mut ws = connect(&mock).await;
    // The status may or may not arrive before the RST; the stream must end either way.
    let mut ended = false;
    for _ in 0..3 {
        match tokio::time::timeout(T, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(_))) => continue,
            _ => {
                ended = true;
                break;
            }
        }
    }
    assert!(ended);
    assert_eq!(mock.tcp_accepts(), 3);
    assert_eq!(mock.handshakes(), 2);
    assert!(mock.fault(Fault::NoStatus, Scope::Current).is_err());
}
