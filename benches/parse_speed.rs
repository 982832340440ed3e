//! Parse cost of one frame on this machine:
//! `cargo run --release --example parse_speed [FILE.jsonl [LINE [N]]]` (default: the live aggTrade,
//! tests/data/live_2026.jsonl line 1). Run it under `valgrind --tool=callgrind` for instruction
//! counts that do not depend on the machine's load.
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let file = args.next().unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/live_2026.jsonl").to_owned()
    });
    let line: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let n: u32 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let text = std::fs::read_to_string(&file).unwrap();
    let frame = text.lines().nth(line - 1).unwrap().to_owned();
    let t = Instant::now();
    let mut kinds = 0usize;
    for _ in 0..n {
        let m = bullet_ws::protocol::parse_str(std::hint::black_box(&frame));
        kinds = kinds.wrapping_add(m.name().len());
    }
    let dt = t.elapsed();
    println!(
        "{} ({} bytes): {:.0} ns/frame ({kinds})",
        bullet_ws::protocol::parse_str(&frame).name(),
        frame.len(),
        dt.as_nanos() as f64 / n as f64
    );
}
