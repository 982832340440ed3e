//! Parse cost of one aggTrade frame on this machine: `cargo run --release --example parse_speed`.
use std::time::Instant;

fn main() {
    let line = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/agg_trade.jsonl"
    ))
    .unwrap();
    let frame = line.lines().nth(1).unwrap().to_owned();
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let t = Instant::now();
    let mut ids = 0u64;
    for _ in 0..n {
        if let bullet_ws::protocol::ServerMessage::AggTrade(a) =
            bullet_ws::protocol::parse_str(std::hint::black_box(&frame))
        {
            ids = ids.wrapping_add(a.agg_trade_id);
        }
    }
    let dt = t.elapsed();
    println!(
        "{} bytes: {:.0} ns/frame ({ids})",
        frame.len(),
        dt.as_nanos() as f64 / n as f64
    );
}
