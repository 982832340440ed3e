//! The hand-over of the reads to the event loop's thread (`Config::loop_reads`), against the
//! mock exchange over real TCP: the consumer's side is played by this test's thread.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bullet_ws_mock::{MockConfig, MockServer};
use parking_lot::Mutex;

use super::{LoopReader, ManagedHandle};
use crate::config::Config;
use crate::event_queue::{ConnectState, EventQueue, Notify};
use crate::transport::WsConnector;

/// A consumer that runs the moment its doorbell rings, as one woken on another core (or one that
/// preempts the socket's thread on the same core) does: it claims the reads as it goes back to
/// sleep, before the socket's thread runs on.
struct ClaimOnRing {
    reader: OnceLock<LoopReader>,
    claimed: AtomicBool,
    rings: AtomicUsize,
    rang: Mutex<Option<Sender<()>>>,
}

impl Notify for Arc<ClaimOnRing> {
    fn notify(&self) {
        self.rings.fetch_add(1, Ordering::SeqCst);
        if let Some(reader) = self.reader.get() {
            if let Some(socket) = reader.claim() {
                drop(socket);
                self.claimed.store(true, Ordering::SeqCst);
            }
        }
        if let Some(tx) = &*self.rang.lock() {
            let _ = tx.send(());
        }
    }
}

#[test]
fn a_consumer_woken_by_a_burst_can_claim_the_reads_at_once() {
    let server = MockServer::start(MockConfig {
        rate: Some(200.0),
        ..MockConfig::default()
    })
    .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let config = Config {
        loop_reads: true,
        ..Config::default()
    };
    let (tx, rx) = channel();
    let ring = Arc::new(ClaimOnRing {
        reader: OnceLock::new(),
        claimed: AtomicBool::new(false),
        rings: AtomicUsize::new(0),
        rang: Mutex::new(Some(tx)),
    });
    let events = Arc::new(EventQueue::new(1024, Box::new(ring.clone())));
    let connector = WsConnector::new(&server.url(), &config).unwrap();
    let handle = ManagedHandle::spawn(runtime.handle(), connector, config, events.clone());
    assert!(ring.reader.set(handle.loop_reader()).is_ok());
    handle
        .subscribe(vec!["BTC-USD@aggTrade".into()], Some(1), false)
        .unwrap();
    // Each ring brings a burst the task read; the consumer takes it and sleeps again, claiming
    // the reads as it does. Once claimed, the task rings no more (the loop reads). Counted in
    // sleeps, not messages: a ring comes only to a sleeping consumer, so a starved test thread
    // cannot run out of chances.
    let (mut sleeps, mut messages) = (0, 0);
    while !ring.claimed.load(Ordering::SeqCst) && sleeps < 20 {
        while let Some(_event) = events.pop() {}
        messages = events.stats().messages_received;
        if events.prepare_wait() {
            sleeps += 1;
            rx.recv_timeout(Duration::from_secs(5))
                .expect("a ring within 5 s");
        }
    }
    assert!(
        matches!(events.connect_state(), ConnectState::Connected),
        "{:?}",
        events.connect_state()
    );
    assert!(
        ring.claimed.load(Ordering::SeqCst),
        "no claim made at a ring succeeded ({} rings, {sleeps} sleeps, {messages} messages)",
        ring.rings.load(Ordering::SeqCst)
    );
    handle.stop();
    drop(runtime);
}

/// A rotation's new connection is read by the task before it is published, so no read of it is
/// followed by `Wire::delivered`; once the rotation is over the task allows the loop, holding
/// nothing it read. The loop's claim must then succeed, not wait for the task's next burst.
#[test]
fn the_loop_can_claim_a_connection_the_task_read_before_allowing_it() {
    use crate::protocol::ClientMessage;
    use crate::transport::{Connection, Connector};

    let server = MockServer::start(MockConfig {
        rate: Some(200.0),
        ..MockConfig::default()
    })
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = Config {
            loop_reads: true,
            ..Config::default()
        };
        let connector = WsConnector::new(&server.url(), &config).unwrap();
        let mut conn = tokio::time::timeout(Duration::from_secs(5), connector.connect())
            .await
            .expect("connected within 5 s")
            .unwrap();
        let subscribe = ClientMessage::Subscribe {
            id: Some(1),
            params: vec!["BTC-USD@aggTrade".into()],
        };
        conn.send(subscribe.to_json()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), conn.recv())
            .await
            .expect("a message within 5 s")
            .unwrap();
        let wire = conn.wire().unwrap();
        wire.allow_loop_reads(true);
        assert!(
            wire.claim_reads().is_some(),
            "the loop could not claim the reads"
        );
        assert!(wire.loop_owns_reads());
    });
}
