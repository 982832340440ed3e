"""Loop-thread cost of a message object: build it from a frame and read what a strategy reads
(benches/worker.py: aggTrade price, quantity, trade time, id; depth the top 5 levels a side),
none, once or twice. Deterministic under callgrind, which the noisy machine needs:

    valgrind --tool=callgrind --callgrind-out-file=/tmp/a.out \\
        .venv/bin/python benches/attr_cost.py FILE LINE READS N

and the same with N=0; (total(N) - total(0)) / N is the cost per message. The count includes
`parse_message`'s parse of the frame (the socket does it on the tokio thread):
`examples/parse_speed.rs` measures that part alone, to subtract.
"""

import sys

from bullet_ws import _core


def main() -> None:
    path, line, reads, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    with open(path, encoding="utf-8") as f:
        frame = f.read().splitlines()[line - 1]
    parse = _core.parse_message
    agg_trade = _core.AggTrade
    read: object = None
    for _ in range(n):
        m = parse(frame)
        for _ in range(reads):
            if type(m) is agg_trade:
                read = (m.price, m.quantity, m.trade_time, m.agg_trade_id)
            else:
                read = (m.bids[:5], m.asks[:5])
    del read


if __name__ == "__main__":
    main()
