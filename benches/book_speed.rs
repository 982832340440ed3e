//! What the order books cost the socket task per frame: `cargo run --release --example book_speed`.
//!
//! Bursts of 256 parsed frames go through `Books::deliver` into an event queue (drained after
//! each burst), against `EventQueue::push_messages` alone: aggTrade with no book, aggTrade with a
//! depth book subscribed (the book pass only looks at each message's kind), and depth10 updates
//! applied to a book.
use std::sync::Arc;
use std::time::Instant;

use bullet_ws::book::Books;
use bullet_ws::event_queue::{EventQueue, Notify};
use bullet_ws::protocol::{parse_str, ServerMessage};

struct Quiet;
impl Notify for Quiet {
    fn notify(&self) {}
}

fn depth(pu: u64, u: u64, mt: &str, i: u64) -> String {
    let level = |side: u64, k: u64| {
        format!(
            r#"["{}.{:02}","{}.{:03}"]"#,
            64000 + side * 100 + (k % 10) * 7,
            k % 100,
            1 + k % 9,
            (i * 7 + k) % 1000
        )
    };
    let (bids, asks): (Vec<String>, Vec<String>) = if mt == "s" {
        (
            (0..10).map(|k| level(0, k)).collect(),
            (0..10).map(|k| level(1, k)).collect(),
        )
    } else {
        (
            (0..2).map(|k| level(0, i + k)).collect(),
            (0..2).map(|k| level(1, i + k)).collect(),
        )
    };
    format!(
        r#"{{"e":"depthUpdate","E":1,"T":1,"s":"BTC-USD","U":{},"u":{u},"pu":{pu},"b":[{}],"a":[{}],"mt":"{mt}"}}"#,
        pu + 1,
        bids.join(","),
        asks.join(",")
    )
}

/// ns per frame.
fn run(books: Option<&Books>, frames: &[ServerMessage], rounds: usize) -> f64 {
    let queue = EventQueue::new(1 << 20, Box::new(Quiet));
    let mut out = Vec::new();
    let t = Instant::now();
    for _ in 0..rounds {
        for burst in frames.chunks(256) {
            let mut batch: Vec<(ServerMessage, usize)> =
                burst.iter().map(|m| (m.clone(), 100)).collect();
            match books {
                Some(b) => {
                    b.deliver(&queue, &mut batch, tokio::time::Instant::now(), || {});
                }
                None => {
                    queue.push_messages(&mut batch);
                }
            }
            queue.pop_batch(usize::MAX, &mut out);
            out.clear();
        }
    }
    let n = (frames.len() * rounds) as f64;
    t.elapsed().as_nanos() as f64 / n
}

fn main() {
    let trade = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/agg_trade.jsonl"
    ))
    .unwrap();
    let trade = parse_str(trade.lines().nth(1).unwrap());
    let trades = vec![trade; 4096];
    let mut depths = vec![parse_str(&depth(0, 1, "s", 0))];
    for i in 1..4096u64 {
        depths.push(parse_str(&depth(i, i + 1, "u", i)));
    }
    let no_books = Books::default();
    let with_book = Arc::new(Books::default());
    with_book.topics_added(&["BTC-USD@depth10".into()], tokio::time::Instant::now());
    // The machine is shared: the best of several runs is the cost, the rest is noise.
    let cases: [(&str, Option<&Books>, &[ServerMessage]); 5] = [
        ("aggTrade, push_messages (baseline)", None, &trades),
        ("aggTrade, deliver, no book", Some(&no_books), &trades),
        ("aggTrade, deliver, a depth book", Some(&with_book), &trades),
        ("depth10 diffs, push_messages (baseline)", None, &depths),
        (
            "depth10 diffs, deliver into a book",
            Some(&with_book),
            &depths,
        ),
    ];
    let mut best = [f64::MAX; 5];
    for _ in 0..7 {
        for (i, (_, books, frames)) in cases.iter().enumerate() {
            best[i] = best[i].min(run(*books, frames, 50));
        }
    }
    for ((name, _, _), ns) in cases.iter().zip(best) {
        println!("{name:<42} {ns:>7.1} ns/frame (best of 7)");
    }
}
