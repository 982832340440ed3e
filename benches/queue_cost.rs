//! Instruction-count probe of the event queue, for callgrind (wall-clock timings are noise on a
//! shared machine): 100 bursts of 256 frames through `EventQueue::push_messages`, each burst then
//! taken by `pop_batch`, as the socket task and the consumer do.
//!
//!   cargo build --release --example queue_cost
//!   valgrind --tool=callgrind target/release/examples/queue_cost [aggTrade|bookTicker|conflated]
//!
//! `conflated`: bookTicker frames of one symbol with that topic conflated.
use bullet_ws::event_queue::{EventQueue, Notify};
use bullet_ws::protocol::{parse_str, ServerMessage};

struct Quiet;
impl Notify for Quiet {
    fn notify(&self) {}
}

fn sample(file: &str) -> ServerMessage {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    parse_str(text.lines().nth(1).unwrap())
}

fn main() {
    let case = std::env::args().nth(1).unwrap_or_else(|| "aggTrade".into());
    let message = match case.as_str() {
        "aggTrade" => sample("agg_trade.jsonl"),
        "bookTicker" | "conflated" => sample("book_ticker.jsonl"),
        other => panic!("unknown case {other}"),
    };
    let queue = EventQueue::new(1 << 20, Box::new(Quiet));
    if case == "conflated" {
        queue.set_conflated(&["BTC-USD@bookTicker".into()], true);
    }
    let mut bursts: Vec<Vec<(ServerMessage, usize)>> = (0..100)
        .map(|_| (0..256).map(|_| (message.clone(), 100)).collect())
        .collect();
    let mut out = Vec::new();
    for burst in &mut bursts {
        queue.push_messages(burst);
        queue.pop_batch(usize::MAX, &mut out);
        out.clear();
    }
    let stats = queue.stats();
    println!(
        "{case}: {} received, {} conflated",
        stats.messages_received, stats.events_conflated
    );
}
