use super::*;
use crate::event_queue::Notify;
use crate::protocol::parse_str;

struct Quiet;
impl Notify for Quiet {
    fn notify(&self) {}
}

fn depth(mt: &str, pu: u64, u: u64, bids: &[(&str, &str)], asks: &[(&str, &str)]) -> ServerMessage {
    let side = |levels: &[(&str, &str)]| {
        let items: Vec<String> = levels
            .iter()
            .map(|(p, q)| format!(r#"["{p}","{q}"]"#))
            .collect();
        format!("[{}]", items.join(","))
    };
    let frame = format!(
        r#"{{"e":"depthUpdate","E":{u},"T":1,"s":"BTC-USD","U":{},"u":{u},"pu":{pu},"b":{},"a":{},"mt":"{mt}"}}"#,
        pu + 1,
        side(bids),
        side(asks)
    );
    let message = parse_str(&frame);
    assert!(matches!(message, ServerMessage::DepthUpdate(_)), "{frame}");
    message
}

fn books(now: Instant) -> Books {
    let books = Books::default();
    books.topics_added(&["BTC-USD@depth10".into(), "BTC-USD@aggTrade".into()], now);
    books
}

fn apply(books: &Books, m: &ServerMessage, now: Instant) -> (Option<BookEvent>, Vec<String>) {
    let mut resubscribe = Vec::new();
    let event = books.apply(m, now, &mut resubscribe);
    (event, resubscribe)
}

fn lv(p: &str, q: &str) -> Level {
    (p.into(), q.into())
}

#[test]
fn decimal_keys_are_exact_and_strict() {
    let e18 = 1_000_000_000_000_000_000u128;
    assert_eq!(decimal_key("0"), Some(0));
    assert_eq!(decimal_key("100"), Some(100 * e18));
    assert_eq!(decimal_key("100.5"), decimal_key("100.50"));
    assert_eq!(decimal_key("000100.500"), decimal_key("100.5"));
    assert_eq!(decimal_key("0.000000000000000001"), Some(1));
    assert_eq!(decimal_key("0.0000000000000000010000"), Some(1));
    assert_eq!(
        decimal_key("99999999999999999999.999999999999999999"),
        Some(100_000_000_000_000_000_000 * e18 - 1)
    );
    assert!(decimal_key("99.9") < decimal_key("100"));
    assert!(decimal_key("0.1") < decimal_key("0.10000000000000001"));
    for bad in [
        "",
        ".",
        "1.",
        ".5",
        "-1",
        "+1",
        "1e5",
        " 1",
        "1 ",
        "1,5",
        "1.2.3",
        "0x10",
        "NaN",
        "١",
        "0.0000000000000000001",
        "100000000000000000000",
        "1_000",
    ] {
        assert_eq!(decimal_key(bad), None, "{bad:?}");
    }
    assert!(decimal_key("00000000000000000000000000001").is_some());
}

#[test]
fn snapshot_then_updates_keep_numeric_order_and_wire_strings() {
    let t = Instant::now();
    let books = books(t);
    let book = books
        .book("BTC-USD", t)
        .expect("a depth topic makes a book");
    assert!(books.book("ETH-USD", t).is_none());
    assert!(!book.read(|s| s.is_synced()));
    // Updates before the first snapshot are not applied.
    apply(&books, &depth("u", 0, 3, &[("1", "1")], &[]), t);
    assert_eq!(book.read(|s| s.bids(None)), vec![]);
    let snap = depth(
        "s",
        0,
        10,
        &[("99.9", "1"), ("100", "2"), ("9.99", "3"), ("1.0", "0")],
        &[("100.5", "4"), ("1000", "5"), ("200", "6")],
    );
    assert_eq!(apply(&books, &snap, t), (None, vec![]));
    book.read(|s| {
        assert!(s.is_synced());
        assert_eq!(s.last_update_id(), 10);
        assert_eq!(
            s.bids(None),
            vec![lv("100", "2"), lv("99.9", "1"), lv("9.99", "3")]
        );
        assert_eq!(s.asks(Some(2)), vec![lv("100.5", "4"), lv("200", "6")]);
        assert_eq!(s.best_bid(), Some(lv("100", "2")));
        assert_eq!(s.best_ask(), Some(lv("100.5", "4")));
    });
    let up = depth(
        "u",
        10,
        12,
        &[("100.0", "7"), ("99.9", "0.000"), ("bad", "1"), ("5", "x")],
        &[("100.5", "0"), ("150", "1.5")],
    );
    assert_eq!(apply(&books, &up, t), (None, vec![]));
    book.read(|s| {
        assert_eq!(s.bids(None), vec![lv("100.0", "7"), lv("9.99", "3")]);
        assert_eq!(
            s.asks(None),
            vec![lv("150", "1.5"), lv("200", "6"), lv("1000", "5")]
        );
        assert_eq!((s.last_update_id(), s.event_time()), (12, 12));
        assert_eq!(s.bids(Some(0)), vec![]);
    });
}

#[test]
fn a_gap_unsyncs_resubscribes_at_most_once_a_second_and_a_snapshot_resyncs() {
    let t = Instant::now();
    let books = books(t);
    let book = books.book("BTC-USD", t).unwrap();
    apply(&books, &depth("s", 0, 5, &[("10", "1")], &[("11", "1")]), t);
    apply(&books, &depth("u", 5, 6, &[("10", "2")], &[]), t);
    let (event, resub) = apply(&books, &depth("u", 7, 8, &[("10", "3")], &[]), t);
    assert_eq!(
        event,
        Some(BookEvent::Gap {
            symbol: "BTC-USD".into(),
            expected: 6,
            got: 7
        })
    );
    assert_eq!(resub, vec!["BTC-USD@depth10".to_string()]);
    assert!(!book.read(|s| s.is_synced()));
    // Later updates are ignored, no more events; the stale levels stay readable.
    let ms = Duration::from_millis;
    assert_eq!(
        apply(&books, &depth("u", 8, 9, &[("10", "4")], &[]), t + ms(500)),
        (None, vec![])
    );
    assert_eq!(book.read(|s| s.bids(None)), vec![lv("10", "2")]);
    // No snapshot a second later: resubscribe once more.
    assert_eq!(
        apply(&books, &depth("u", 9, 10, &[], &[]), t + ms(1000)).1,
        vec!["BTC-USD@depth10".to_string()]
    );
    let (event, resub) = apply(&books, &depth("s", 0, 1, &[("9", "1")], &[]), t + ms(1250));
    assert_eq!(
        event,
        Some(BookEvent::Resynced {
            symbol: "BTC-USD".into(),
            downtime: ms(1250)
        })
    );
    assert!(resub.is_empty());
    assert!(book.read(|s| s.is_synced()));
    // A second gap within the second after the last resubscribe waits for the cooldown.
    let (event, resub) = apply(&books, &depth("u", 3, 4, &[], &[]), t + ms(1500));
    assert!(matches!(
        event,
        Some(BookEvent::Gap {
            expected: 1,
            got: 3,
            ..
        })
    ));
    assert!(resub.is_empty());
    assert!(apply(&books, &depth("u", 4, 5, &[], &[]), t + ms(1900))
        .1
        .is_empty());
    assert_eq!(
        apply(&books, &depth("u", 5, 6, &[], &[]), t + ms(2000)).1,
        vec!["BTC-USD@depth10".to_string()]
    );
    // A periodic snapshot of a synced book replaces it without an event.
    apply(&books, &depth("s", 0, 7, &[("8", "1")], &[]), t + ms(2100));
    assert_eq!(
        apply(&books, &depth("s", 7, 8, &[("7", "1")], &[]), t + ms(2200)),
        (None, vec![])
    );
    assert_eq!(book.read(|s| s.bids(None)), vec![lv("7", "1")]);
}

#[test]
fn an_unread_book_follows_the_sequence_and_keeps_levels_from_its_first_read() {
    let t = Instant::now();
    let ms = |n: u64| t + Duration::from_millis(n);
    // Subscribed a grace ago: nobody read it in time, so its levels go with its next message.
    let books = books(t - UNREAD_GRACE);
    apply(&books, &depth("s", 0, 1, &[("10", "1")], &[]), t);
    let (event, resub) = apply(&books, &depth("u", 3, 4, &[], &[]), ms(100));
    assert!(matches!(
        event,
        Some(BookEvent::Gap {
            expected: 1,
            got: 3,
            ..
        })
    ));
    assert_eq!(resub, vec!["BTC-USD@depth10".to_string()]);
    let (event, _) = apply(&books, &depth("s", 0, 5, &[("10", "2")], &[]), ms(200));
    assert!(matches!(event, Some(BookEvent::Resynced { .. })));
    let book = books.book("BTC-USD", ms(300)).unwrap();
    book.read(|s| {
        assert!(!s.is_synced());
        assert_eq!((s.bids(None), s.last_update_id()), (vec![], 5));
    });
    assert_eq!(
        apply(&books, &depth("u", 5, 6, &[], &[]), ms(400)),
        (None, vec![])
    );
    // The second counts from the read (ms(300)), not from the last resubscribe (ms(100)).
    assert_eq!(
        apply(&books, &depth("u", 6, 7, &[], &[]), ms(1200)),
        (None, vec![])
    );
    let (_, resub) = apply(&books, &depth("u", 7, 8, &[], &[]), ms(1300));
    assert_eq!(resub, vec!["BTC-USD@depth10".to_string()]);
    let snap = depth("s", 0, 9, &[("10", "3"), ("9", "1")], &[]);
    assert_eq!(apply(&books, &snap, ms(1400)), (None, vec![]));
    book.read(|s| {
        assert!(s.is_synced());
        assert_eq!(s.bids(None), vec![lv("10", "3"), lv("9", "1")]);
    });
}

#[test]
fn a_book_read_within_its_grace_has_every_level_even_after_its_snapshot() {
    let t = Instant::now();
    let books = books(t);
    apply(&books, &depth("s", 0, 1, &[("10", "1")], &[]), t);
    apply(
        &books,
        &depth("u", 1, 2, &[("9", "2")], &[]),
        t + UNREAD_GRACE / 2,
    );
    // Read after the grace, but no message came after it: nothing was skipped.
    let book = books.book("BTC-USD", t + UNREAD_GRACE * 2).unwrap();
    book.read(|s| {
        assert!(s.is_synced());
        assert_eq!(s.bids(None), vec![lv("10", "1"), lv("9", "2")]);
    });
    apply(
        &books,
        &depth("u", 2, 3, &[("9", "0")], &[]),
        t + UNREAD_GRACE * 3,
    );
    book.read(|s| assert_eq!(s.bids(None), vec![lv("10", "1")]));
}

#[test]
fn an_unread_book_drops_its_levels_with_the_first_message_after_its_grace() {
    let t = Instant::now();
    let books = books(t);
    apply(&books, &depth("s", 0, 1, &[("10", "1")], &[]), t);
    apply(
        &books,
        &depth("u", 1, 2, &[("9", "2")], &[]),
        t + UNREAD_GRACE,
    );
    let book = books.book("BTC-USD", t + UNREAD_GRACE).unwrap();
    book.read(|s| {
        assert!(!s.is_synced(), "waits for the next snapshot");
        assert_eq!((s.bids(None), s.last_update_id()), (vec![], 2));
    });
}

#[test]
fn a_reconnect_unsyncs_until_the_snapshot_and_unsubscribing_drops_the_book() {
    let t = Instant::now();
    let books = books(t);
    let book = books.book("BTC-USD", t).unwrap();
    apply(&books, &depth("s", 0, 5, &[("10", "1")], &[]), t);
    books.connection_lost(t);
    assert!(!book.read(|s| s.is_synced()));
    assert_eq!(
        apply(&books, &depth("u", 5, 6, &[], &[]), t),
        (None, vec![])
    );
    let (event, _) = apply(
        &books,
        &depth("s", 0, 1, &[], &[]),
        t + Duration::from_secs(2),
    );
    assert!(
        matches!(event, Some(BookEvent::Resynced { downtime, .. }) if downtime == Duration::from_secs(2))
    );
    books.topics_removed(&["BTC-USD@depth10".into()], t);
    assert!(books.book("BTC-USD", t).is_none());
    assert!(!book.read(|s| s.is_synced()));
    assert_eq!(
        apply(&books, &depth("u", 1, 2, &[], &[]), t),
        (None, vec![])
    );
}

#[test]
fn deliver_queues_each_book_event_right_after_its_message() {
    let t = Instant::now();
    let books = books(t);
    let queue = EventQueue::new(100, Box::new(Quiet));
    let trade = parse_str(
        r#"{"e":"aggTrade","E":1,"s":"BTC-USD","a":1,"p":"1","q":"1","f":1,"l":1,"T":1,"m":true,"th":"0x"}"#,
    );
    let mut batch = vec![
        (depth("s", 0, 1, &[("1", "1")], &[]), 10),
        (trade.clone(), 10),
        (depth("u", 1, 2, &[], &[]), 10),
        (depth("u", 3, 4, &[], &[]), 10),
        (trade.clone(), 10),
    ];
    let (dropped, resubscribe) = books.deliver(&queue, &mut batch, t, || {});
    assert_eq!(
        (dropped, resubscribe),
        (0, vec!["BTC-USD@depth10".to_string()])
    );
    let mut out = Vec::new();
    queue.pop_batch(100, &mut out);
    let kinds: Vec<&str> = out
        .iter()
        .map(|e| match e {
            Event::Message(ServerMessage::DepthUpdate(_)) => "depth",
            Event::Message(_) => "other",
            Event::Book(BookEvent::Gap { .. }) => "gap",
            _ => "?",
        })
        .collect();
    assert_eq!(kinds, ["depth", "other", "depth", "depth", "gap", "other"]);
    assert_eq!(queue.stats().messages_received, 5);
}

fn refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(p, q)| (p.as_str(), q.as_str())).collect()
}

#[test]
fn random_updates_match_a_reference_book() {
    let mut rng = fastrand::Rng::with_seed(7);
    let t = Instant::now();
    let books = books(t);
    let book = books.book("BTC-USD", t).unwrap();
    // The reference: a plain map of integer cents, filled from the same levels.
    let mut reference: [BTreeMap<u64, String>; 2] = Default::default();
    let price = |cents: u64, rng: &mut fastrand::Rng| match rng.u8(0..3) {
        0 => format!("{}.{:02}", cents / 100, cents % 100),
        1 => format!("{}.{:02}0", cents / 100, cents % 100),
        _ if cents % 100 == 0 => format!("{}", cents / 100),
        _ => format!("{}.{:02}", cents / 100, cents % 100),
    };
    for step in 0..3000u64 {
        let snapshot = step == 0 || rng.u8(0..50) == 0;
        let mut sides: [Vec<(String, String)>; 2] = Default::default();
        if snapshot {
            reference = Default::default();
        }
        for (s, side) in sides.iter_mut().enumerate() {
            for _ in 0..rng.usize(0..6) {
                let cents = if s == 0 {
                    rng.u64(9_000..10_000)
                } else {
                    rng.u64(10_001..11_000)
                };
                let qty = if !snapshot && rng.u8(0..4) == 0 {
                    "0".to_string()
                } else {
                    format!("{}.{}", rng.u32(0..50), rng.u32(1..1000))
                };
                if qty == "0" {
                    reference[s].remove(&cents);
                } else {
                    reference[s].insert(cents, qty.clone());
                }
                side.push((price(cents, &mut rng), qty));
            }
        }
        let m = depth(
            if snapshot { "s" } else { "u" },
            step,
            step + 1,
            &refs(&sides[0]),
            &refs(&sides[1]),
        );
        apply(&books, &m, t);
        let want_bids: Vec<String> = reference[0].values().rev().cloned().collect();
        let want_asks: Vec<String> = reference[1].values().cloned().collect();
        book.read(|s| {
            assert!(s.is_synced());
            let got = |v: Vec<Level>| v.into_iter().map(|l| l.1.to_string()).collect::<Vec<_>>();
            assert_eq!(got(s.bids(None)), want_bids, "step {step}");
            assert_eq!(got(s.asks(None)), want_asks, "step {step}");
            let keys: Vec<u128> = s
                .bids(None)
                .iter()
                .map(|l| decimal_key(&l.0).unwrap())
                .collect();
            let cents: Vec<u128> = reference[0]
                .keys()
                .rev()
                .map(|c| u128::from(*c) * 10u128.pow(16))
                .collect();
            assert_eq!(keys, cents);
        });
    }
}

/// The digit-by-digit version the book used before: the reference of the fast one.
fn reference_key(s: &str) -> Option<u128> {
    let bytes = s.as_bytes();
    let (whole, frac) = match bytes.iter().position(|&c| c == b'.') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &bytes[..0]),
    };
    let dotted = whole.len() != bytes.len();
    if whole.is_empty() || (dotted && frac.is_empty()) {
        return None;
    }
    if !whole.iter().chain(frac).all(u8::is_ascii_digit) {
        return None;
    }
    let first = whole.iter().position(|&c| c != b'0').unwrap_or(whole.len());
    let whole = &whole[first..];
    if whole.len() > MAX_WHOLE {
        return None;
    }
    let (kept, beyond) = frac.split_at(frac.len().min(SCALE));
    if beyond.iter().any(|&c| c != b'0') {
        return None;
    }
    let mut value: u128 = 0;
    for &c in whole {
        value = value * 10 + u128::from(c - b'0');
    }
    for i in 0..SCALE {
        value = value * 10 + kept.get(i).map_or(0, |&c| u128::from(c - b'0'));
    }
    Some(value)
}

/// `decimal_key` against the digit-by-digit reference on generated decimal-like strings: digits,
/// dots and other bytes, leading zeros, up to 22 integer and 22 fractional digits.
#[test]
fn decimal_keys_match_the_reference() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let alphabet = b"0123456789000000.x-+e ";
    for _ in 0..200_000 {
        let (w, f) = (next(23) as usize, next(23) as usize);
        let mut s = String::new();
        for i in 0..w + f + 1 {
            let c = if i == w {
                if next(4) == 0 {
                    alphabet[next(alphabet.len() as u64) as usize]
                } else {
                    b'.'
                }
            } else if next(40) == 0 {
                alphabet[next(alphabet.len() as u64) as usize]
            } else {
                b'0' + next(10) as u8
            };
            s.push(c as char);
        }
        if next(3) == 0 {
            s.truncate(w);
        }
        assert_eq!(decimal_key(&s), reference_key(&s), "{s:?}");
    }
}
