//! The seed's rules under paused tokio time, against an in-memory exchange whose every connect
//! attempt and every frame is recorded with its virtual time.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::*;
use crate::event_queue::Notify as Wake;
use crate::event_queue::{ConnectState, Event, LogLevel};
use crate::protocol::parse_str;
use crate::protocol::ServerMessage;
use crate::transport::{ConnectError, ConnectErrorKind, Connection, Lost};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Plan {
    Accept,
    Refuse,
    /// Accepts, but the first send fails (the connection is already dead).
    DeadOnSend,
    /// Accepts, but sends never complete (the peer stopped reading; the socket buffer is full).
    StuckOnSend,
    /// Accepts; the first send reaches the server, then fails (the peer reset after reading).
    LostAfterWrite,
}

#[derive(Default)]
struct NetState {
    /// Plans for the next attempts; when empty, `default_plan`.
    plans: VecDeque<Plan>,
    default_plan: Option<Plan>,
    attempts: Vec<Instant>,
    conns: Vec<ConnSide>,
}

struct ConnSide {
    to_client: mpsc::UnboundedSender<Result<ServerMessage, Lost>>,
    sent: Arc<Mutex<Vec<String>>>,
}

#[derive(Clone, Default)]
struct FakeNet(Arc<Mutex<NetState>>);

impl FakeNet {
    fn plan(&self, plans: &[Plan]) {
        self.0.lock().plans.extend(plans.iter().copied());
    }
    fn default_plan(&self, plan: Plan) {
        self.0.lock().default_plan = Some(plan);
    }
    fn attempts(&self) -> Vec<Instant> {
        self.0.lock().attempts.clone()
    }
    fn conn_count(&self) -> usize {
        self.0.lock().conns.len()
    }
    fn sent(&self, conn: usize) -> Vec<String> {
        self.0.lock().conns[conn].sent.lock().clone()
    }
    fn push(&self, conn: usize, text: &str) {
        let _ = self.0.lock().conns[conn]
            .to_client
            .send(Ok(parse_str(text)));
    }
    fn kill(&self, conn: usize, lost: Lost) {
        let _ = self.0.lock().conns[conn].to_client.send(Err(lost));
    }
}

struct FakeConn {
    from_server: mpsc::UnboundedReceiver<Result<ServerMessage, Lost>>,
    sent: Arc<Mutex<Vec<String>>>,
    dead_on_send: bool,
    stuck_on_send: bool,
    lost_after_write: bool,
    written: u64,
}

impl Connection for FakeConn {
    async fn recv(&mut self) -> Result<(ServerMessage, usize), Lost> {
        match self.from_server.recv().await {
            Some(r) => r.map(|m| (m, 0)),
            None => Err(Lost::Ended),
        }
    }
    async fn send(&mut self, text: String) -> Result<(), Lost> {
        if self.dead_on_send {
            return Err(Lost::Error("broken pipe".into()));
        }
        if self.lost_after_write {
            self.written += text.len() as u64;
            self.sent.lock().push(text);
            return Err(Lost::Error("connection reset by peer".into()));
        }
        if self.stuck_on_send {
            std::future::pending::<()>().await;
        }
        self.written += text.len() as u64;
        self.sent.lock().push(text);
        Ok(())
    }
    fn bytes_written(&self) -> u64 {
        self.written
    }
    async fn close(self) {}
}

impl Connector for FakeNet {
    type Conn = FakeConn;
    async fn connect(&self) -> Result<FakeConn, ConnectError> {
        let mut st = self.0.lock();
        st.attempts.push(Instant::now());
        let plan = st
            .plans
            .pop_front()
            .or(st.default_plan)
            .unwrap_or(Plan::Accept);
        if plan == Plan::Refuse {
            return Err(ConnectError::new(
                ConnectErrorKind::Io,
                "connection refused",
            ));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let sent = Arc::new(Mutex::new(Vec::new()));
        st.conns.push(ConnSide {
            to_client: tx,
            sent: sent.clone(),
        });
        Ok(FakeConn {
            from_server: rx,
            sent,
            dead_on_send: plan == Plan::DeadOnSend,
            stuck_on_send: plan == Plan::StuckOnSend,
            lost_after_write: plan == Plan::LostAfterWrite,
            written: 0,
        })
    }
}

struct TokioWake(Arc<tokio::sync::Notify>);
impl Wake for TokioWake {
    fn notify(&self) {
        self.0.notify_one();
    }
}

struct Harness {
    net: FakeNet,
    handle: ManagedHandle,
    wake: Arc<tokio::sync::Notify>,
}

impl Harness {
    async fn start(config: Config) -> Harness {
        Harness::start_on(FakeNet::default(), config).await
    }

    async fn start_on(net: FakeNet, config: Config) -> Harness {
        let wake = Arc::new(tokio::sync::Notify::new());
        let queue = Arc::new(EventQueue::new(
            config.channel_capacity,
            Box::new(TokioWake(wake.clone())),
        ));
        let handle = ManagedHandle::spawn(
            &tokio::runtime::Handle::current(),
            net.clone(),
            config,
            queue,
        );
        let h = Harness { net, handle, wake };
        h.until(|h| h.handle.events().connect_state() != ConnectState::Pending)
            .await;
        assert_eq!(h.handle.events().connect_state(), ConnectState::Connected);
        h
    }

    /// The next event, waiting in virtual time (bounded).
    async fn next(&self) -> Option<Event> {
        let deadline = Instant::now() + Duration::from_secs(3600);
        loop {
            if let Some(e) = self.handle.events().pop() {
                return Some(e);
            }
            if self.handle.events().is_ended() {
                return None;
            }
            let notified = self.wake.notified();
            if !self.handle.events().prepare_wait() {
                continue;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("no event within an hour of virtual time");
            }
        }
    }

    async fn next_non_message(&self) -> Option<Event> {
        loop {
            match self.next().await {
                Some(Event::Message(_)) => continue,
                other => return other,
            }
        }
    }

    /// Yields to the task until `cond` holds (virtual time runs meanwhile).
    async fn until(&self, cond: impl Fn(&Harness) -> bool) {
        for _ in 0..100_000 {
            if cond(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("condition not reached");
    }
}

fn config(initial_ms: u64, max_ms: u64) -> Config {
    Config {
        initial_backoff: Duration::from_millis(initial_ms),
        max_backoff: Duration::from_millis(max_ms),
        idle_timeout: Duration::ZERO,
        keepalive_interval: Duration::ZERO,
        backoff_reset_after: Duration::from_secs(30),
        ..Config::default()
    }
}

fn gaps_ms(times: &[Instant]) -> Vec<u128> {
    times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_to_the_cap_with_bounded_jitter() {
    let h = Harness::start(config(100, 1000)).await;
    h.net.default_plan(Plan::Refuse);
    let lost_at = Instant::now();
    h.net.kill(0, Lost::Ended);
    h.until(|h| h.net.attempts().len() >= 8).await;
    let mut times = vec![lost_at];
    times.extend(h.net.attempts()[1..8].iter().copied());
    let gaps = gaps_ms(&times);
    let bases = [100u128, 200, 400, 800, 1000, 1000, 1000];
    for (gap, base) in gaps.iter().zip(bases) {
        assert!(
            (base..=base + base / 2 + 1).contains(gap),
            "gap {gap} for base {base}: {gaps:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn each_attempt_is_announced_with_the_delay_it_waits() {
    let h = Harness::start(config(100, 1000)).await;
    h.net.default_plan(Plan::Refuse);
    h.net.kill(0, Lost::Ended);
    let mut announced = vec![];
    for attempt in 1..=6u64 {
        match h.next().await {
            Some(Event::Reconnecting {
                attempt: got,
                delay,
                ..
            }) => {
                assert_eq!(got, attempt);
                announced.push((Instant::now(), delay));
            }
            other => panic!("attempt {attempt}: {other:?}"),
        }
    }
    let bases = [100u128, 200, 400, 800, 1000, 1000];
    h.until(|h| h.net.attempts().len() > announced.len()).await;
    let attempts = h.net.attempts();
    for (k, ((at, delay), base)) in announced.iter().zip(bases).enumerate() {
        let ms = delay.as_millis();
        assert!(
            (base..=base + base / 2).contains(&ms),
            "{k}: {ms} for {base}"
        );
        // The paused clock: the attempt is made exactly `delay` after it was announced.
        assert_eq!(attempts[k + 1] - *at, *delay, "attempt {}", k + 1);
    }
}

#[tokio::test(start_paused = true)]
async fn zero_backoff_is_floored_at_ten_ms() {
    let h = Harness::start(config(0, 0)).await;
    h.net.default_plan(Plan::Refuse);
    h.net.kill(0, Lost::Ended);
    h.until(|h| h.net.attempts().len() >= 20).await;
    let gaps = gaps_ms(&h.net.attempts()[1..]);
    assert!(gaps.iter().all(|g| (10..=16).contains(g)), "{gaps:?}");
}

#[tokio::test(start_paused = true)]
async fn max_retries_gives_up_with_disconnected() {
    let h = Harness::start(Config {
        max_retries: Some(3),
        ..config(10, 100)
    })
    .await;
    h.net.default_plan(Plan::Refuse);
    h.net.kill(
        0,
        Lost::Closed {
            code: 1001,
            reason: "away".into(),
        },
    );
    // One `Reconnecting` per attempt: the loss, then the failure of the attempt before.
    let reasons = [
        "closed by server (1001): away",
        "reconnect attempt 1 failed: connection refused",
        "reconnect attempt 2 failed: connection refused",
    ];
    for (attempt, want) in (1..).zip(reasons) {
        match h.next().await {
            Some(Event::Reconnecting {
                reason,
                attempt: got,
                ..
            }) => assert_eq!((reason.as_str(), got), (want, attempt)),
            other => panic!("attempt {attempt}: {other:?}"),
        }
    }
    assert_eq!(
        h.next().await,
        Some(Event::Disconnected {
            reason: "exhausted 3 reconnect attempts".into()
        })
    );
    assert_eq!(h.next().await, None, "the stream ends after Disconnected");
    assert_eq!(h.net.attempts().len(), 1 + 3);
}

#[tokio::test(start_paused = true)]
async fn max_retries_zero_gives_up_without_trying() {
    let h = Harness::start(Config {
        max_retries: Some(0),
        ..config(10, 100)
    })
    .await;
    h.net.kill(0, Lost::Ended);
    // No attempt is made, so no `Reconnecting`.
    assert_eq!(
        h.next().await,
        Some(Event::Disconnected {
            reason: "exhausted 0 reconnect attempts".into()
        })
    );
    assert_eq!(h.net.attempts().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn quick_deaths_keep_doubling_and_stable_uptime_resets() {
    let h = Harness::start(config(100, 10_000)).await;
    // Accept-then-drop: each reconnected connection dies at once.
    for conn in 0..5 {
        h.until(|h| h.net.conn_count() > conn).await;
        h.net.kill(conn, Lost::Ended);
    }
    h.until(|h| h.net.conn_count() > 5).await;
    let gaps = gaps_ms(&h.net.attempts());
    let bases = [100u128, 200, 400, 800, 1600];
    for (gap, base) in gaps.iter().zip(bases) {
        assert!(
            (base..=base + base / 2 + 1).contains(gap),
            "gap {gap} for base {base}: {gaps:?}"
        );
    }
    // Stay up for backoff_reset_after, then drop: the next delay starts from initial again.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let before = Instant::now();
    h.net.kill(5, Lost::Ended);
    h.until(|h| h.net.conn_count() > 6).await;
    let gap = (*h.net.attempts().last().unwrap() - before).as_millis();
    assert!((100..=151).contains(&gap), "{gap}");
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_forces_a_reconnect_and_zero_disables_it() {
    let h = Harness::start(Config {
        idle_timeout: Duration::from_millis(200),
        ..config(10, 100)
    })
    .await;
    let start = Instant::now();
    // Messages keep it alive...
    for i in 0..5 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        h.net.push(0, &format!(r#"{{"e":"pong","id":{i},"E":1}}"#));
    }
    // ...silence does not.
    let ev = h.next_non_message().await;
    let waited = start.elapsed().as_millis();
    assert!(
        matches!(ev, Some(Event::Reconnecting { ref reason, .. }) if reason.contains("idle_timeout")),
        "{ev:?}"
    );
    assert!((950..=1000).contains(&waited), "{waited}");

    let quiet = Harness::start(config(10, 100)).await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(quiet.net.attempts().len(), 1);
    assert!(quiet.handle.events().pop().is_none());
}

#[tokio::test(start_paused = true)]
async fn subscriptions_are_deduplicated_and_replayed_once_with_null_id() {
    let h = Harness::start(config(10, 100)).await;
    let t = |s: &str| s.to_string();
    assert_eq!(
        h.handle
            .subscribe(vec![t("A@x"), t("B@x")], Some(1), false)
            .unwrap()
            .len(),
        2
    );
    assert!(h
        .handle
        .subscribe(vec![t("A@x")], Some(2), false)
        .unwrap()
        .is_empty());
    assert!(h
        .handle
        .unsubscribe(vec![t("C@x")], Some(3))
        .unwrap()
        .is_empty());
    assert_eq!(
        h.handle
            .subscribe(vec![t("C@x"), t("A@x")], Some(4), false)
            .unwrap(),
        vec![t("C@x")]
    );
    assert_eq!(
        h.handle.unsubscribe(vec![t("B@x")], Some(5)).unwrap(),
        vec![t("B@x")]
    );
    assert_eq!(h.handle.topics(), vec![t("A@x"), t("C@x")]);
    h.until(|h| h.net.sent(0).len() == 3).await;
    assert_eq!(
        h.net.sent(0),
        [
            r#"{"method":"SUBSCRIBE","id":1,"params":["A@x","B@x"]}"#,
            r#"{"method":"SUBSCRIBE","id":4,"params":["C@x"]}"#,
            r#"{"method":"UNSUBSCRIBE","id":5,"params":["B@x"]}"#,
        ]
    );
    h.net.kill(0, Lost::Ended);
    assert!(matches!(h.next().await, Some(Event::Reconnecting { .. })));
    assert!(matches!(
        h.next().await,
        Some(Event::Reconnected { attempts: 1, .. })
    ));
    assert_eq!(
        h.net.sent(1),
        [r#"{"method":"SUBSCRIBE","id":null,"params":["A@x","C@x"]}"#]
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_order_send_is_retried_once_on_the_new_connection() {
    let net = FakeNet::default();
    // The first connection is already dead when the order goes out; the next one works.
    net.plan(&[Plan::DeadOnSend, Plan::Accept]);
    let h = Harness::start_on(net, config(10, 100)).await;
    h.handle
        .order(OrderMethod::Place, "AAEC".into(), Some(7))
        .unwrap();
    let ev = h.next().await;
    assert!(
        matches!(ev, Some(Event::Reconnecting { ref reason, .. }) if reason.starts_with("ORDER.PLACE send failed")),
        "{ev:?}"
    );
    assert!(matches!(h.next().await, Some(Event::Reconnected { .. })));
    h.until(|h| h.net.conn_count() == 2 && !h.net.sent(1).is_empty())
        .await;
    assert_eq!(
        h.net.sent(1),
        [r#"{"method":"ORDER.PLACE","id":7,"params":{"tx":"AAEC"}}"#]
    );
    assert!(h.net.sent(0).is_empty());
    // The failure path's reasons and logs name the method and the I/O error, never the tx
    // (the Python log-leak test cannot force this path: it races the reset).
    let logs = h.handle.events().take_logs();
    assert!(!logs.is_empty());
    for (level, line) in logs {
        assert!(
            level == LogLevel::Debug || !line.contains("AAEC"),
            "{level:?} {line}"
        );
    }
    assert!(!format!("{ev:?}").contains("AAEC"), "{ev:?}");
}

/// Since SDK 0.0.42, `ping` follows the order path, and so do `SUBMIT` and our
/// `list_subscriptions`: a failed write reconnects and sends the frame once more.
#[tokio::test(start_paused = true)]
async fn failed_submit_ping_and_list_sends_are_retried_once() {
    type Call = fn(&ManagedHandle) -> Result<(), CommandError>;
    let cases: [(Call, &str); 3] = [
        (
            |h| h.order(OrderMethod::Submit, "AAEC".into(), Some(7)),
            r#"{"method":"SUBMIT","id":7,"params":{"tx":"AAEC"}}"#,
        ),
        (|h| h.ping(Some(8)), r#"{"method":"PING","id":8}"#),
        (
            |h| h.list_subscriptions(Some(9)),
            r#"{"method":"LIST_SUBSCRIPTIONS","id":9}"#,
        ),
    ];
    for (call, frame) in cases {
        let net = FakeNet::default();
        net.plan(&[Plan::DeadOnSend, Plan::Accept]);
        let h = Harness::start_on(net, config(10, 100)).await;
        call(&h.handle).unwrap();
        let method = frame.split('"').nth(3).unwrap();
        let ev = h.next().await;
        assert!(
            matches!(ev, Some(Event::Reconnecting { ref reason, .. }) if reason.starts_with(&format!("{method} send failed"))),
            "{ev:?}"
        );
        assert!(matches!(h.next().await, Some(Event::Reconnected { .. })));
        h.until(|h| h.net.conn_count() == 2 && !h.net.sent(1).is_empty())
            .await;
        assert_eq!(h.net.sent(1), [frame]);
    }
}

#[tokio::test(start_paused = true)]
async fn a_subscribe_that_would_make_the_replay_too_large_is_refused() {
    let h = Harness::start(Config {
        max_message_size: 100,
        ..config(10, 100)
    })
    .await;
    // {"method":"SUBSCRIBE","id":null,"params":[...]}: 44 bytes, 19 per topic, commas: 83, then 103.
    for i in 0..2 {
        h.handle
            .subscribe(vec![format!("SYMBOL-{i}@aggTrade")], None, false)
            .unwrap();
    }
    let refused = h
        .handle
        .subscribe(vec!["SYMBOL-2@aggTrade".into()], None, false);
    assert!(
        matches!(
            refused,
            Err(CommandError::TooLarge {
                argument: "topics",
                frame: "subscription replay",
                size: 103,
                max: 100
            })
        ),
        "{refused:?}"
    );
    assert_eq!(
        h.handle.topics(),
        ["SYMBOL-0@aggTrade", "SYMBOL-1@aggTrade"]
    );
    // Its own frame too large (with a 20-digit id), though the replay would fit.
    let refused = h.handle.unsubscribe(
        vec!["SYMBOL-0@aggTrade".into(), "SYMBOL-1@aggTrade".into()],
        Some(u64::MAX),
    );
    assert!(
        matches!(
            refused,
            Err(CommandError::TooLarge {
                frame: "UNSUBSCRIBE",
                ..
            })
        ),
        "{refused:?}"
    );
    h.until(|h| h.net.sent(0).len() == 2).await;
    h.net.kill(0, Lost::Ended);
    assert!(matches!(h.next().await, Some(Event::Reconnecting { .. })));
    assert!(matches!(h.next().await, Some(Event::Reconnected { .. })));
    h.until(|h| h.net.conn_count() == 2 && h.net.sent(1).len() == 1)
        .await;
    assert_eq!(
        h.net.sent(1),
        [r#"{"method":"SUBSCRIBE","id":null,"params":["SYMBOL-0@aggTrade","SYMBOL-1@aggTrade"]}"#]
    );
}

#[tokio::test(start_paused = true)]
async fn stop_ends_the_task_during_a_long_backoff() {
    let h = Harness::start(config(10_000, 10_000)).await;
    h.net.kill(0, Lost::Ended);
    assert!(matches!(h.next().await, Some(Event::Reconnecting { .. })));
    let t0 = Instant::now();
    h.handle.stop();
    assert_eq!(h.next().await, None);
    assert!(t0.elapsed() < Duration::from_millis(5));
    assert_eq!(h.net.attempts().len(), 1, "no attempt after stop");
    assert_eq!(
        h.handle.subscribe(vec!["A@x".into()], None, false),
        Err(CommandError::Stopped)
    );
}

#[tokio::test(start_paused = true)]
async fn full_command_queue_is_busy() {
    let h = Harness::start(config(10, 100)).await;
    // The task is not polled while we hold the thread, so the queue fills.
    let topics = vec!["A@x".to_string(), "B@x".to_string(), "C@x".to_string()];
    h.handle.subscribe(topics.clone(), None, false).unwrap();
    let results: Vec<_> = (0..300).map(|i| h.handle.ping(Some(i))).collect();
    assert!(results[..COMMAND_CAPACITY - 1].iter().all(|r| r.is_ok()));
    assert_eq!(results[COMMAND_CAPACITY - 1], Err(CommandError::Busy));
    // A command that could not be queued leaves the topic set exactly as it was, order included.
    assert_eq!(
        h.handle.unsubscribe(vec!["A@x".into()], None),
        Err(CommandError::Busy)
    );
    assert_eq!(
        h.handle.subscribe(vec!["D@x".into()], None, false),
        Err(CommandError::Busy)
    );
    assert_eq!(h.handle.topics(), topics);
}

#[tokio::test(start_paused = true)]
async fn slow_consumer_drops_new_events_and_counts_them() {
    let h = Harness::start(Config {
        channel_capacity: 10,
        ..config(10, 100)
    })
    .await;
    for i in 0..25 {
        h.net.push(0, &format!(r#"{{"e":"pong","id":{i},"E":1}}"#));
    }
    h.until(|h| h.handle.events().stats().messages_received == 25)
        .await;
    let s = h.handle.events().stats();
    assert_eq!((s.events_dropped, s.queued), (15, 10));
    assert_eq!(
        h.handle
            .events()
            .pop()
            .map(|e| matches!(e, Event::Message(m) if m.request_id() == Some(0))),
        Some(true)
    );
}

#[tokio::test(start_paused = true)]
async fn initial_connect_is_not_retried() {
    let net = FakeNet::default();
    net.plan(&[Plan::Refuse]);
    let queue = Arc::new(EventQueue::new(
        10,
        Box::new(TokioWake(Arc::new(tokio::sync::Notify::new()))),
    ));
    let handle = ManagedHandle::spawn(
        &tokio::runtime::Handle::current(),
        net.clone(),
        config(10, 100),
        queue,
    );
    for _ in 0..1000 {
        if handle.events().is_ended() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        matches!(handle.events().connect_state(), ConnectState::Failed(e) if e.kind == ConnectErrorKind::Io)
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(net.attempts().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_the_task_ends_the_socket_with_disconnected() {
    let queue = Arc::new(EventQueue::new(
        10,
        Box::new(TokioWake(Arc::new(tokio::sync::Notify::new()))),
    ));
    let q = queue.clone();
    let task = async move {
        q.set_connect_state(ConnectState::Connected);
        panic!("boom");
    };
    tokio::spawn(guarded(task, queue.clone())).await.unwrap();
    assert_eq!(
        queue.pop(),
        Some(Event::Disconnected {
            reason: "internal error: boom".into()
        })
    );
    assert!(queue.is_exhausted());
}

#[tokio::test(start_paused = true)]
async fn a_send_that_never_completes_cannot_freeze_stop_or_the_socket() {
    // With the idle timer on, a stalled send counts as a lost connection.
    let net = FakeNet::default();
    net.plan(&[Plan::StuckOnSend, Plan::Accept]);
    let h = Harness::start_on(
        net,
        Config {
            idle_timeout: Duration::from_secs(5),
            ..config(10, 100)
        },
    )
    .await;
    h.handle
        .order(OrderMethod::Place, "AAEC".into(), Some(1))
        .unwrap();
    let ev = h.next_non_message().await;
    assert!(
        matches!(ev, Some(Event::Reconnecting { ref reason, .. }) if reason.contains("send stalled")),
        "{ev:?}"
    );
    h.until(|h| h.net.conn_count() == 2 && !h.net.sent(1).is_empty())
        .await;
    assert_eq!(
        h.net.sent(1),
        [r#"{"method":"ORDER.PLACE","id":1,"params":{"tx":"AAEC"}}"#]
    );

    // With it off, stop() still ends the task: a write under way gets STOP_GRACE, no more.
    let net = FakeNet::default();
    net.plan(&[Plan::StuckOnSend]);
    let h = Harness::start_on(net, config(10, 100)).await;
    h.handle.ping(Some(1)).unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let t0 = Instant::now();
    h.handle.stop();
    assert_eq!(h.next().await, None);
    assert!(t0.elapsed() <= STOP_GRACE + Duration::from_millis(5));
}

fn unacked(ev: Option<Event>) -> (Option<u64>, &'static str, String) {
    match ev {
        Some(Event::OrderUnacked { id, method, reason }) => (id, method, reason),
        other => panic!("expected OrderUnacked, got {other:?}"),
    }
}

/// The peer read the order, then the connection broke: the exchange may have it, so it is never
/// sent again; the strategy hears `OrderUnacked` and reconciles.
#[tokio::test(start_paused = true)]
async fn an_order_whose_bytes_left_is_never_resent() {
    let net = FakeNet::default();
    net.plan(&[Plan::LostAfterWrite, Plan::Accept]);
    let h = Harness::start_on(net, config(10, 100)).await;
    h.handle
        .order(OrderMethod::Submit, "AAEC".into(), Some(7))
        .unwrap();
    let (id, method, reason) = unacked(h.next().await);
    assert_eq!((id, method), (Some(7), "submit"));
    assert!(
        reason.starts_with("connection lost while writing"),
        "{reason}"
    );
    assert!(matches!(h.next().await, Some(Event::Reconnecting { .. })));
    assert!(matches!(h.next().await, Some(Event::Reconnected { .. })));
    h.handle.ping(Some(8)).unwrap();
    h.until(|h| h.net.conn_count() == 2 && !h.net.sent(1).is_empty())
        .await;
    assert_eq!(h.net.sent(0).len(), 1);
    assert_eq!(h.net.sent(1), [r#"{"method":"PING","id":8}"#]);
}

/// Written orders whose connection ends before their ack are reported; acked ones are not, and
/// an id-less order is settled by an id-less ack.
#[tokio::test(start_paused = true)]
async fn written_orders_without_an_ack_are_reported_when_the_connection_ends() {
    let h = Harness::start(config(10, 100)).await;
    for id in [Some(1), Some(2), None, Some(3)] {
        h.handle
            .order(OrderMethod::Place, "AAEC".into(), id)
            .unwrap();
    }
    h.until(|h| h.net.sent(0).len() == 4).await;
    let ack = |id: &str| {
        format!(
            r#"{{"e":"ORDER.PLACE","id":{id},"E":1,"results":{{"tx_id":"0x","status":"processed"}}}}"#
        )
    };
    h.net.push(0, &ack("2"));
    h.net.push(0, &ack("null"));
    h.net.push(
        0,
        r#"{"id":3,"E":1,"error":{"code":-2010,"msg":"rejected"}}"#,
    );
    for _ in 0..3 {
        assert!(matches!(h.next().await, Some(Event::Message(_))));
    }
    h.net.kill(0, Lost::Ended);
    assert!(matches!(
        h.next().await,
        Some(Event::Reconnecting { attempt: 1, .. })
    ));
    let (id, method, reason) = unacked(h.next().await);
    assert_eq!((id, method), (Some(1), "place"));
    assert_eq!(
        reason,
        "connection lost before the ack: stream ended without a close frame"
    );
    assert!(matches!(h.next().await, Some(Event::Reconnected { .. })));
}

/// Commands accepted before stop() are written before the close, and written orders whose ack
/// did not come are reported.
#[tokio::test(start_paused = true)]
async fn stop_flushes_the_queued_commands_first() {
    let h = Harness::start(config(10, 100)).await;
    h.handle
        .order(OrderMethod::Submit, "AAEC".into(), Some(1))
        .unwrap();
    h.handle
        .order(OrderMethod::CancelAll, "AAED".into(), Some(2))
        .unwrap();
    h.handle.stop();
    let mut seen = Vec::new();
    while let Some(ev) = h.next().await {
        seen.push(unacked(Some(ev)));
    }
    assert_eq!(
        h.net.sent(0),
        [
            r#"{"method":"SUBMIT","id":1,"params":{"tx":"AAEC"}}"#,
            r#"{"method":"ORDER.CANCEL_ALL","id":2,"params":{"tx":"AAED"}}"#,
        ]
    );
    let ids: Vec<_> = seen
        .iter()
        .map(|(id, m, r)| (*id, *m, r.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            (Some(1), "submit", "socket stopped before the ack"),
            (Some(2), "cancel_all", "socket stopped before the ack"),
        ]
    );
}

/// Stopped while reconnecting: queued orders were never written, and say so.
#[tokio::test(start_paused = true)]
async fn orders_queued_during_an_outage_are_reported_unsent_at_stop() {
    let h = Harness::start(config(10_000, 10_000)).await;
    h.net.kill(0, Lost::Ended);
    assert!(matches!(h.next().await, Some(Event::Reconnecting { .. })));
    h.handle
        .order(OrderMethod::Place, "AAEC".into(), Some(5))
        .unwrap();
    h.handle.stop();
    let (id, _, reason) = unacked(h.next().await);
    assert_eq!(
        (id, reason.as_str()),
        (Some(5), "not sent: the socket stopped")
    );
    assert_eq!(h.next().await, None);
    assert_eq!(h.net.conn_count(), 1);
}

/// `order_max_age`: an order that waited out an outage longer than that is not sent.
#[tokio::test(start_paused = true)]
async fn orders_older_than_order_max_age_are_not_sent() {
    let h = Harness::start(Config {
        order_max_age: Some(Duration::from_secs(1)),
        ..config(5_000, 5_000)
    })
    .await;
    h.net.kill(0, Lost::Ended);
    assert!(matches!(h.next().await, Some(Event::Reconnecting { .. })));
    h.handle
        .order(OrderMethod::Place, "AAEC".into(), Some(5))
        .unwrap();
    h.handle.ping(Some(6)).unwrap();
    assert!(matches!(h.next().await, Some(Event::Reconnected { .. })));
    let (id, _, reason) = unacked(h.next().await);
    assert_eq!(id, Some(5));
    assert!(
        reason.contains("longer than order_max_age (1.000s)"),
        "{reason}"
    );
    h.until(|h| h.net.conn_count() == 2 && !h.net.sent(1).is_empty())
        .await;
    assert_eq!(h.net.sent(1), [r#"{"method":"PING","id":6}"#]);
}

fn ping_ids(sent: &[String]) -> Vec<u64> {
    sent.iter()
        .filter_map(|f| {
            let v: serde_json::Value = serde_json::from_str(f).ok()?;
            (v["method"] == "PING").then(|| v["id"].as_u64()).flatten()
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn keepalive_pings_after_the_interval_without_a_send_and_swallows_its_pongs() {
    let h = Harness::start(Config {
        keepalive_interval: Duration::from_secs(1),
        ..config(10, 100)
    })
    .await;
    let start = Instant::now();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let base = KEEPALIVE_ID_BASE;
    assert_eq!(ping_ids(&h.net.sent(0)), [base, base + 1, base + 2]);
    assert_eq!(h.handle.events().stats().keepalives_sent, 3);

    // Its pongs are swallowed (and not counted as received); others are delivered, also one
    // in the reserved range that answers no outstanding keepalive.
    h.net
        .push(0, &format!(r#"{{"e":"pong","id":{base},"E":1}}"#));
    h.net
        .push(0, &format!(r#"{{"e":"pong","id":{},"E":1}}"#, base + 1000));
    h.net
        .push(0, &format!(r#"{{"e":"pong","id":{base},"E":1}}"#));
    h.net.push(0, r#"{"e":"pong","id":5,"E":1}"#);
    // Plain messages ring no doorbell in this harness: wait on the counter, then pop.
    h.until(|h| h.handle.events().stats().messages_received == 3)
        .await;
    let ids: Vec<_> = std::iter::from_fn(|| h.handle.events().pop())
        .map(|e| match e {
            Event::Message(m) => m.request_id(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, [Some(base + 1000), Some(base), Some(5)]);

    // Every send resets the clock: a user command half-way moves the next keepalive.
    assert!(start.elapsed() < Duration::from_millis(3600));
    h.handle.ping(Some(5)).unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(ping_ids(&h.net.sent(0)), [base, base + 1, base + 2, 5]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        ping_ids(&h.net.sent(0)),
        [base, base + 1, base + 2, 5, base + 3]
    );
}

#[tokio::test(start_paused = true)]
async fn keepalive_zero_sends_nothing_and_a_new_connection_restarts_the_clock() {
    let quiet = Harness::start(config(10, 100)).await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(quiet.net.sent(0).is_empty());
    assert_eq!(quiet.handle.events().stats().keepalives_sent, 0);

    let h = Harness::start(Config {
        keepalive_interval: Duration::from_secs(1),
        ..config(10, 100)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(ping_ids(&h.net.sent(0)).len(), 1);
    h.net.kill(0, Lost::Ended);
    h.until(|h| h.net.conn_count() == 2).await;
    let reconnected_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(
        h.net.sent(1).is_empty(),
        "the new connection's clock started at its open"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ping_ids(&h.net.sent(1)), [KEEPALIVE_ID_BASE + 1]);
    assert!(reconnected_at.elapsed() < Duration::from_millis(1200));
}

fn trade(a: u64) -> String {
    format!(
        r#"{{"e":"aggTrade","E":1,"s":"BTC-USD","a":{a},"p":"1","q":"1","f":1,"l":1,"T":1,"m":true,"th":"0x"}}"#
    )
}

/// Every event queued now: aggTrade ids, and the lifecycle events.
fn drain(h: &Harness) -> (Vec<u64>, Vec<Event>) {
    let (mut ids, mut other) = (Vec::new(), Vec::new());
    while let Some(e) = h.handle.events().pop() {
        match e {
            Event::Message(ServerMessage::AggTrade(t)) => ids.push(t.agg_trade_id),
            Event::Message(_) => {}
            e => other.push(e),
        }
    }
    (ids, other)
}

const DISCONNECTING: &str =
    r#"{"e":"status","E":1,"status":"disconnecting","clientId":"ws_0","reason":"max_duration"}"#;

#[tokio::test(start_paused = true)]
async fn a_disconnecting_status_rotates_without_gap_or_duplicate() {
    let h = Harness::start(config(10, 100)).await;
    h.handle
        .subscribe(vec!["BTC-USD@aggTrade".into()], Some(1), false)
        .unwrap();
    h.until(|h| h.net.sent(0).len() == 1).await;
    for a in 1..=5 {
        h.net.push(0, &trade(a));
    }
    h.net.push(0, DISCONNECTING);
    // The new connection is opened and replayed while the old one still delivers.
    h.until(|h| h.net.conn_count() == 2 && h.net.sent(1).len() == 1)
        .await;
    assert_eq!(
        h.net.sent(1),
        [r#"{"method":"SUBSCRIBE","id":null,"params":["BTC-USD@aggTrade"]}"#]
    );
    h.net
        .push(1, r#"{"e":"subscribe","id":null,"E":1,"result":"success"}"#);
    for a in 8..=10 {
        h.net.push(1, &trade(a)); // ahead of the old one: held back
    }
    for a in 6..=9 {
        h.net.push(0, &trade(a)); // 8 and 9 reach what the new one holds
    }
    h.net.push(1, &trade(11));
    h.net.push(0, &trade(10)); // the old one's after the switch: dropped
    h.until(|h| h.handle.events().stats().rotations == 1).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let (ids, other) = drain(&h);
    assert_eq!(ids, (1..=11).collect::<Vec<_>>());
    assert!(
        matches!(&other[..], [Event::Rotated { reason, .. }] if reason == "max_duration"),
        "{other:?}"
    );
    assert_eq!(h.net.attempts().len(), 2);
    // Commands now go to the new connection.
    h.handle.ping(Some(3)).unwrap();
    h.until(|h| h.net.sent(1).len() == 2).await;
    assert_eq!(h.net.sent(0).len(), 1);
    let warnings = h.handle.events().take_logs();
    assert!(
        warnings
            .iter()
            .any(|(l, m)| *l == LogLevel::Warning && m.contains("max_duration")),
        "{warnings:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn max_connection_age_rotates_and_a_failed_rotation_falls_back_to_reconnect() {
    let h = Harness::start(Config {
        max_connection_age: Duration::from_secs(60),
        ..config(10, 100)
    })
    .await;
    let start = Instant::now();
    h.until(|h| h.net.conn_count() == 2).await;
    assert!(start.elapsed() >= Duration::from_secs(60));
    // Nothing subscribed: live at once.
    h.until(|h| h.handle.events().stats().rotations == 1).await;
    let (_, other) = drain(&h);
    assert!(
        matches!(&other[..], [Event::Rotated { reason, .. }] if reason == "max_connection_age"),
        "{other:?}"
    );

    // The next rotation cannot connect: the current connection goes on, and its loss is an
    // ordinary outage.
    h.net.plan(&[Plan::Refuse]);
    h.net.push(1, DISCONNECTING);
    h.until(|h| h.net.attempts().len() == 3).await;
    h.net.kill(
        1,
        Lost::Closed {
            code: 1000,
            reason: String::new(),
        },
    );
    assert!(matches!(
        h.next_non_message().await,
        Some(Event::Reconnecting { .. })
    ));
    assert!(matches!(
        h.next_non_message().await,
        Some(Event::Reconnected { .. })
    ));
    assert_eq!(h.handle.events().stats().rotations, 1);
    assert_eq!(h.handle.events().stats().reconnects, 1);
}

#[tokio::test(start_paused = true)]
async fn an_order_on_the_old_connection_is_settled_there_or_reported() {
    let h = Harness::start(config(10, 100)).await;
    h.handle
        .order(OrderMethod::Submit, "AAEC".into(), Some(7))
        .unwrap();
    h.until(|h| h.net.sent(0).len() == 1).await;
    h.net.push(0, DISCONNECTING);
    h.until(|h| h.handle.events().stats().rotations == 1).await;
    // The old connection is still read: the ack arrives there.
    h.net.push(
        0,
        r#"{"e":"SUBMIT","id":7,"E":1,"results":{"tx_id":"0x","status":"submitted","order_ids":[1],"client_order_ids":[]}}"#,
    );
    h.until(|h| h.handle.events().stats().messages_received >= 2)
        .await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let mut acks = 0;
    while let Some(e) = h.handle.events().pop() {
        match e {
            Event::Message(ServerMessage::OrderResult(r)) => acks += usize::from(r.id == Some(7)),
            Event::OrderUnacked { .. } => panic!("{e:?}"),
            _ => {}
        }
    }
    assert_eq!(acks, 1);

    // One written just before the next switch, never acked: reported after the drain time.
    h.handle
        .order(OrderMethod::Submit, "AAEC".into(), Some(8))
        .unwrap();
    h.until(|h| h.net.sent(1).len() == 1).await;
    h.net.push(1, DISCONNECTING);
    h.until(|h| h.handle.events().stats().rotations == 2).await;
    let switched = Instant::now();
    loop {
        match h.next_non_message().await {
            Some(Event::OrderUnacked { id, reason, .. }) => {
                assert_eq!(id, Some(8));
                assert!(reason.contains("rotated away"), "{reason}");
                break;
            }
            Some(_) => continue,
            None => panic!("ended"),
        }
    }
    assert!(switched.elapsed() >= ROTATION_DRAIN - Duration::from_millis(10));
}

#[tokio::test(start_paused = true)]
async fn a_notice_on_the_new_connection_while_the_old_one_drains_rotates_again_after() {
    let h = Harness::start(config(10, 100)).await;
    h.handle
        .order(OrderMethod::Submit, "AAEC".into(), Some(7))
        .unwrap();
    h.until(|h| h.net.sent(0).len() == 1).await;
    h.net.push(0, DISCONNECTING);
    h.until(|h| h.handle.events().stats().rotations == 1).await;
    // The old connection drains (order 7 has no ack yet) when the new one gets its own notice.
    h.net.push(1, DISCONNECTING);
    h.until(|h| h.handle.events().stats().rotations == 2).await;
    assert_eq!(h.net.attempts().len(), 3);
    // One notice, one rotation: nothing is left over to start another.
    tokio::time::sleep(ROTATION_DRAIN * 3).await;
    assert_eq!(h.net.attempts().len(), 3);
}

fn depth_frame(mt: &str, pu: u64, u: u64) -> String {
    format!(
        r#"{{"e":"depthUpdate","E":{u},"T":1,"s":"BTC-USD","U":{},"u":{u},"pu":{pu},"b":[["10.5","1"]],"a":[],"mt":"{mt}"}}"#,
        pu + 1
    )
}

#[tokio::test(start_paused = true)]
async fn a_depth_gap_resubscribes_its_topic_at_most_once_a_second() {
    let h = Harness::start(config(10, 100)).await;
    h.handle
        .subscribe(vec!["BTC-USD@depth5".into()], Some(1), false)
        .unwrap();
    let book = h
        .handle
        .books()
        .book("BTC-USD", Instant::now())
        .expect("a book at once");
    h.until(|h| h.net.sent(0).len() == 1).await;
    h.net.push(0, &depth_frame("s", 0, 1));
    h.net.push(0, &depth_frame("u", 1, 2));
    h.net.push(0, &depth_frame("u", 4, 5));
    let gap = crate::book::BookEvent::Gap {
        symbol: "BTC-USD".into(),
        expected: 2,
        got: 4,
    };
    assert_eq!(h.next_non_message().await, Some(Event::Book(gap)));
    h.until(|h| h.net.sent(0).len() == 3).await;
    assert_eq!(
        h.net.sent(0)[1..],
        [
            r#"{"method":"UNSUBSCRIBE","id":null,"params":["BTC-USD@depth5"]}"#,
            r#"{"method":"SUBSCRIBE","id":null,"params":["BTC-USD@depth5"]}"#,
        ]
    );
    assert!(!book.read(|s| s.is_synced()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.net.push(0, &depth_frame("s", 0, 1));
    assert!(matches!(
        h.next_non_message().await,
        Some(Event::Book(crate::book::BookEvent::Resynced { downtime, .. }))
            if downtime == Duration::from_millis(300)
    ));
    assert!(book.read(|s| s.is_synced()));
    // A second gap within the second: reported, but the resubscribe waits for the limit.
    h.net.push(0, &depth_frame("u", 7, 8));
    assert!(matches!(
        h.next_non_message().await,
        Some(Event::Book(crate::book::BookEvent::Gap { .. }))
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.net.sent(0).len(), 3);
    tokio::time::sleep(Duration::from_millis(700)).await;
    h.net.push(0, &depth_frame("u", 8, 9));
    h.until(|h| h.net.sent(0).len() == 5).await;
    // After a reconnect, the replay alone brings the snapshot: no resubscribe of its own.
    h.net.kill(0, Lost::Ended);
    assert!(matches!(
        h.next_non_message().await,
        Some(Event::Reconnecting { .. })
    ));
    assert!(matches!(
        h.next_non_message().await,
        Some(Event::Reconnected { .. })
    ));
    assert_eq!(
        h.net.sent(1),
        [r#"{"method":"SUBSCRIBE","id":null,"params":["BTC-USD@depth5"]}"#]
    );
}

/// A topic subscribed while the old connection drains its orders is carried by the new one
/// alone: its messages are delivered as they come, not held for the old one until the rotation
/// ends and drops them.
#[tokio::test(start_paused = true)]
async fn a_topic_subscribed_while_the_old_connection_drains_is_delivered() {
    let h = Harness::start(config(10, 100)).await;
    h.handle
        .subscribe(vec!["BTC-USD@aggTrade".into()], Some(1), false)
        .unwrap();
    h.handle
        .order(OrderMethod::Submit, "AAEC".into(), Some(7))
        .unwrap();
    h.until(|h| h.net.sent(0).len() == 2).await;
    h.net.push(0, &trade(1));
    h.net.push(0, DISCONNECTING);
    h.until(|h| h.net.conn_count() == 2 && h.net.sent(1).len() == 1)
        .await;
    h.net
        .push(1, r#"{"e":"subscribe","id":null,"E":1,"result":"success"}"#);
    h.net.push(0, &trade(2));
    h.until(|h| h.handle.events().stats().messages_received == 3)
        .await;
    h.net.push(1, &trade(2)); // level with the old one: the switch
    h.until(|h| h.handle.events().stats().rotations == 1).await;
    // Order 7 keeps the old connection open, unacknowledged.
    h.handle
        .subscribe(vec!["ETH-USD@aggTrade".into()], Some(2), false)
        .unwrap();
    h.until(|h| h.net.sent(1).len() == 2).await;
    let eth = |a: u64| trade(a).replace("BTC-USD", "ETH-USD");
    for a in 5..=7 {
        h.net.push(1, &eth(a));
    }
    h.net.push(1, &trade(3));
    h.net.push(
        0,
        r#"{"e":"SUBMIT","id":7,"E":1,"results":{"tx_id":"0x","status":"submitted","order_ids":[1],"client_order_ids":[]}}"#,
    );
    h.net.push(1, &eth(8));
    h.net.push(1, &trade(4)); // the new connection's last: everything before it was admitted
    let (mut trades, mut acked) = (Vec::new(), false);
    while !(acked && trades.last() == Some(&("BTC-USD".to_string(), 4))) {
        match h.next().await {
            Some(Event::Message(ServerMessage::AggTrade(t))) => {
                trades.push((t.symbol.to_string(), t.agg_trade_id))
            }
            Some(Event::Message(ServerMessage::OrderResult(r))) => acked |= r.id == Some(7),
            Some(Event::OrderUnacked { .. }) => panic!("order 7 unacknowledged"),
            Some(_) => {}
            None => panic!("ended"),
        }
    }
    let of = |s: &str| -> Vec<u64> { trades.iter().filter(|t| t.0 == s).map(|t| t.1).collect() };
    assert_eq!(of("BTC-USD"), [1, 2, 3, 4]);
    assert_eq!(of("ETH-USD"), [5, 6, 7, 8]);
}
