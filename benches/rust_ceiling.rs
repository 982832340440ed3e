//! rust-ceiling: the bullet_ws crate's transport and parser consuming the mock's feed with no Python
//! at all. This is the physical limit of this machine for the benchmark's scenarios: every frame is
//! read by tokio-tungstenite and parsed into a typed `ServerMessage` exactly as the native backend
//! does on its tokio thread, then handed to a trivial handler (count, read `event_time`).
//!
//! Built and run by `benches/run.py` (`cargo build --release --example rust_ceiling`); by hand:
//!
//!   rust_ceiling throughput URL TOPIC N
//!   rust_ceiling latency    URL TOPIC SAMPLES WARMUP OUT_FILE
//!   rust_ceiling order      URL TOPIC TICKS WARMUP EVERY TX
//!
//! `order` (S5, tick to order): every EVERY-th aggTrade gets a `SUBMIT` of TX whose id is the
//! tick's `event_time`, built by the crate's `ClientMessage` and written at once; it ends after
//! TICKS ticks (WARMUP of them included) and the ack of every order. The mock measures the round trip from its records.
//!
//! Prints one JSON object on stdout. Runs on a current-thread tokio runtime: one thread does
//! everything, so its thread CPU time is the "loop thread" figure and the process CPU the total.
//! `WsConnector::connect` consumes the `connected` status, as for the native backend.

use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bullet_ws::config::Config;
use bullet_ws::protocol::{ClientMessage, OrderMethod, ServerMessage};
use bullet_ws::transport::{Connection, Connector, WsConnector};

fn thread_cpu_us() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e6 + ts.tv_nsec as f64 / 1e3
}

fn process_cpu_us() -> f64 {
    // SAFETY: zeroed rusage is a valid out-parameter for getrusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// The market event's stamp, or None for acks and the like.
fn event_time(m: &ServerMessage) -> Option<u64> {
    match m {
        ServerMessage::AggTrade(t) => Some(t.event_time),
        ServerMessage::DepthUpdate(d) => Some(d.event_time),
        ServerMessage::BookTicker(b) => Some(b.event_time),
        ServerMessage::MarkPrice(p) => Some(p.event_time),
        _ => None,
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: rust_ceiling throughput URL TOPIC N | rust_ceiling latency URL TOPIC SAMPLES WARMUP OUT_FILE \
         | rust_ceiling order URL TOPIC TICKS WARMUP EVERY TX"
    );
    std::process::exit(2)
}

async fn open(url: &str, topic: &str) -> bullet_ws::transport::WsConnection {
    let config = Config::default();
    let connector = WsConnector::new(url, &config).expect("connector");
    let mut conn = connector.connect().await.expect("connect");
    let sub = format!(r#"{{"method":"SUBSCRIBE","id":1,"params":["{topic}"]}}"#);
    conn.send(sub).await.expect("subscribe");
    conn
}

async fn throughput(url: &str, topic: &str, n: u64) {
    let mut conn = open(url, topic).await;
    let mut count: u64 = 0;
    let mut last_e: u64 = 0;
    let (mut t0, mut cpu0, mut th0) = (Instant::now(), 0.0, 0.0);
    while count < n {
        let (m, _size) = conn.recv().await.expect("connection lost");
        if let Some(e) = event_time(&m) {
            if count == 0 {
                t0 = Instant::now();
                cpu0 = process_cpu_us();
                th0 = thread_cpu_us();
            }
            count += 1;
            last_e = last_e.max(e);
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let (cpu, th) = (process_cpu_us() - cpu0, thread_cpu_us() - th0);
    let measured = (n - 1).max(1) as f64;
    println!(
        "{{\"ok\":true,\"messages\":{n},\"seconds\":{secs},\"msgs_per_s\":{},\"cpu_us_per_msg\":{},\"loop_cpu_us_per_msg\":{},\"last_event_time\":{last_e}}}",
        measured / secs,
        cpu / measured,
        th / measured
    );
    conn.close().await;
}

async fn latency(url: &str, topic: &str, samples: usize, warmup: usize, out: &str) {
    let mut conn = open(url, topic).await;
    let mut lat: Vec<i64> = Vec::with_capacity(samples);
    let mut seen = 0usize;
    while lat.len() < samples {
        let (m, _size) = conn.recv().await.expect("connection lost");
        if let Some(e) = event_time(&m) {
            let d = now_us() - e as i64;
            seen += 1;
            if seen > warmup {
                lat.push(d);
            }
        }
    }
    let mut f = std::fs::File::create(out).expect("output file");
    let mut buf = Vec::with_capacity(lat.len() * 8);
    for v in &lat {
        buf.extend_from_slice(&v.to_le_bytes());
    }
    f.write_all(&buf).expect("write samples");
    println!(
        "{{\"ok\":true,\"samples\":{},\"samples_file\":\"{out}\"}}",
        lat.len()
    );
    conn.close().await;
}

async fn tick_to_order(url: &str, topic: &str, total: u64, warmup: u64, every: u64, tx: &str) {
    let mut conn = open(url, topic).await;
    let (mut ticks, mut orders, mut acks) = (0u64, 0u64, 0u64);
    // The inbound half (stamp to handler entry, as in `latency`), after the warm-up.
    let mut inbound: Vec<i64> = Vec::with_capacity(total as usize);
    // Stamp to the return of the order's send.
    let mut sent: Vec<i64> = Vec::with_capacity(total as usize);
    while ticks < total || acks < orders {
        let (m, _size) = conn.recv().await.expect("connection lost");
        match m {
            ServerMessage::AggTrade(t) => {
                let d = now_us() - t.event_time as i64;
                ticks += 1;
                if ticks > warmup {
                    inbound.push(d);
                }
                // What a strategy reads before it decides.
                std::hint::black_box((&t.price, &t.quantity, t.trade_time, t.agg_trade_id));
                if ticks % every == 0 {
                    let order = ClientMessage::Order {
                        method: OrderMethod::Submit,
                        id: Some(t.event_time),
                        tx: tx.to_string(),
                    };
                    conn.send(order.to_json()).await.expect("send order");
                    orders += 1;
                    if ticks > warmup {
                        sent.push(now_us() - t.event_time as i64);
                    }
                }
            }
            ServerMessage::OrderResult(_) => acks += 1,
            _ => {}
        }
    }
    inbound.sort_unstable();
    sent.sort_unstable();
    let q = |xs: &[i64], f: f64| {
        xs.get(((f * xs.len() as f64) as usize).min(xs.len().saturating_sub(1)))
            .map_or("null".to_string(), i64::to_string)
    };
    println!(
        "{{\"ok\":true,\"ticks\":{ticks},\"orders\":{orders},\"acks\":{acks},\"inbound_p50\":{},\"inbound_p99\":{},\"sent_p50\":{},\"sent_p99\":{}}}",
        q(&inbound, 0.5),
        q(&inbound, 0.99),
        q(&sent, 0.5),
        q(&sent, 0.99)
    );
    conn.close().await;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match args.get(1).map(String::as_str) {
        Some("throughput") if args.len() == 5 => {
            let n: u64 = args[4].parse().unwrap_or_else(|_| usage());
            rt.block_on(throughput(&args[2], &args[3], n));
        }
        Some("latency") if args.len() == 7 => {
            let samples: usize = args[4].parse().unwrap_or_else(|_| usage());
            let warmup: usize = args[5].parse().unwrap_or_else(|_| usage());
            rt.block_on(latency(&args[2], &args[3], samples, warmup, &args[6]));
        }
        Some("order") if args.len() == 8 => {
            let total: u64 = args[4].parse().unwrap_or_else(|_| usage());
            let warmup: u64 = args[5].parse().unwrap_or_else(|_| usage());
            let every: u64 = args[6].parse().unwrap_or_else(|_| usage());
            if every == 0 {
                usage();
            }
            rt.block_on(tick_to_order(
                &args[2], &args[3], total, warmup, every, &args[7],
            ));
        }
        _ => usage(),
    }
}
