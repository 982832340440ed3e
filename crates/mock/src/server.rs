//! The server: its own thread and tokio runtime, the accept loop and the waits (the state they
//! share with the connections is `crate::shared`).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::clock::monotonic;
use crate::config::MockConfig;
use crate::connection;
use crate::fault::{Fault, FaultError, Scope};
use crate::record::{ClosedBy, ConnectionRecord};
use crate::shared::{Admission, Shared, State};

/// A running fake exchange. Dropping it stops it.
pub struct MockServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    running: Mutex<Option<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl MockServer {
    /// Binds, then serves on a dedicated thread running its own single-threaded tokio runtime,
    /// so that the mock never shares a thread with the client under test.
    pub fn start(config: MockConfig) -> io::Result<MockServer> {
        config.validate()?;
        let listener = std::net::TcpListener::bind((config.host.as_str(), config.port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            refusing: AtomicBool::new(false),
            order_ids: AtomicU64::new(0),
            started: tokio::time::Instant::now(),
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        let serving = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("bullet-ws-mock-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(_) => return,
                    };
                    tokio::select! {
                        () = accept_loop(listener, serving) => {}
                        _ = stop_rx => {}
                    }
                });
                // Dropping the runtime drops every connection task, which closes its socket.
                drop(runtime);
            })?;
        Ok(MockServer {
            shared,
            addr,
            running: Mutex::new(Some((stop_tx, thread))),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://HOST:PORT/ws`.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn is_running(&self) -> bool {
        self.running.lock().is_some()
    }

    /// Closes the listener and every connection (TCP close, no close frame) and joins the
    /// thread. Idempotent. Open records are marked closed by the server.
    pub fn stop(&self) {
        let Some((stop, thread)) = self.running.lock().take() else {
            return;
        };
        let _ = stop.send(());
        let _ = thread.join();
        let now = monotonic();
        self.shared.update(|st| {
            st.live.iter_mut().for_each(|l| *l = None);
            for r in st.records.iter_mut().filter(|r| r.closed_at.is_none()) {
                r.closed_at = Some(now);
                r.closed_by = Some(ClosedBy::Server);
            }
        });
    }

    /// Applies `fault`. `Scope::Current`: to every open connection now; returns how many.
    /// `Scope::Next { count }`: to each of the next `count` accepted TCP connections; returns
    /// `count`. Next-faults are queued FIFO and each accepted connection takes one (so
    /// `refuse` ×2 then `stall_handshake` ×1 hits three connections in that order), except
    /// `reject_orders`, which applies to the next `count` upgraded connections on top of any other
    /// fault. While [`MockServer::set_refusing`] is on, accepted connections consume nothing.
    pub fn fault(&self, fault: Fault, scope: Scope) -> Result<usize, FaultError> {
        if let Fault::Disconnecting { delay, .. } = &fault {
            if *delay > MockConfig::MAX_PERIOD {
                return Err(FaultError(format!(
                    "delay must be at most 86400 seconds, got {delay:?}"
                )));
            }
        }
        if let Fault::Oversize(size) = fault {
            if size > MockConfig::MAX_OVERSIZE {
                return Err(FaultError(format!(
                    "size must be at most {} (256 MiB), got {size}",
                    MockConfig::MAX_OVERSIZE
                )));
            }
        }
        match scope {
            Scope::Current => {
                if fault.next_only() {
                    return Err(FaultError(format!(
                        "scope: fault '{}' applies only to scope='next'",
                        fault.name()
                    )));
                }
                let st = self.shared.state.lock();
                let live = st.live.iter().flatten();
                Ok(live.filter(|tx| tx.send(fault.clone()).is_ok()).count())
            }
            Scope::Next { count } => {
                if count == 0 {
                    return Err(FaultError("count must be >= 1, got 0".into()));
                }
                self.shared.update(|st| match fault {
                    Fault::RejectOrders(r) => st.reject_next = Some((count, r)),
                    f => st.next.push_back((f, count)),
                });
                Ok(count as usize)
            }
        }
    }

    /// Drops every queued scope-next fault.
    pub fn clear_faults(&self) {
        self.shared.update(|st| {
            st.next.clear();
            st.reject_next = None;
        });
    }

    /// While on, every accepted TCP connection is reset at once.
    pub fn set_refusing(&self, on: bool) {
        self.shared.refusing.store(on, Ordering::SeqCst);
    }

    pub fn refusing(&self) -> bool {
        self.shared.refusing.load(Ordering::SeqCst)
    }

    /// Raw TCP accepts, including refused and stalled ones.
    pub fn tcp_accepts(&self) -> u64 {
        self.shared.state.lock().tcp_accepts
    }

    /// Completed WebSocket upgrades (= number of records).
    pub fn handshakes(&self) -> u64 {
        self.shared.state.lock().handshakes
    }

    pub fn connections(&self) -> Vec<ConnectionRecord> {
        self.shared.state.lock().records.clone()
    }

    pub fn connection(&self, index: usize) -> Option<ConnectionRecord> {
        self.shared.state.lock().records.get(index).cloned()
    }

    /// Blocks until at least `n` upgrades happened; false on timeout.
    pub fn wait_handshakes(&self, n: u64, timeout: Duration) -> bool {
        self.shared.wait_for(timeout, |st| st.handshakes >= n)
    }

    /// Blocks until connection `index` exists and received at least `n` data messages (text or
    /// binary); false on timeout.
    pub fn wait_frames(&self, index: usize, n: usize, timeout: Duration) -> bool {
        self.shared.wait_for(timeout, |st| {
            st.records.get(index).is_some_and(|r| r.frames.len() >= n)
        })
    }

    /// Blocks until connection `index` exists and is closed; false on timeout.
    pub fn wait_closed(&self, index: usize, timeout: Duration) -> bool {
        self.shared.wait_for(timeout, |st| {
            st.records
                .get(index)
                .is_some_and(ConnectionRecord::is_closed)
        })
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors and the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        match shared.admit() {
            Admission::Refuse => {
                let _ = stream.set_zero_linger();
                drop(stream);
            }
            Admission::Serve(first) => {
                tokio::spawn(connection::run(stream, Arc::clone(&shared), first));
            }
        }
    }
}
