"""`bullet-ws demo`: the managed socket surviving a misbehaving exchange, live in the terminal.

The demo starts the fake exchange (`bullet_ws.testing.MockExchange`) on loopback, connects a
managed socket to it (native backend unless told otherwise), subscribes to aggTrade, depth20 and
bookTicker on two symbols, and injects faults on a schedule: a close frame, a TCP reset, a zombie
connection (silent but open, caught by ``idle_timeout``) and an accept-then-drop storm. Each fault
counts as survived once the socket reconnected, the mock recorded the replay ``SUBSCRIBE`` (id
null, every active topic) on the new connection and market data flows again. Before them, a
``depth_gap`` shows the order books noticing a skipped update and healing it (``BookGap``, then
``BookResynced``); it is reported, not scored.

The view is redrawn in place (ANSI) when stdout is a terminal; otherwise it prints plain lines: the
lifecycle events as they happen and a status line every second. The run ends with a summary. The
exit status is 0 when every injected fault was survived, 1 otherwise (or when the connection
failed).

Everything here is for humans; nothing in the library depends on it.
"""

from __future__ import annotations

from bullet_ws._demo.faults import FAULTS
from bullet_ws._demo.run import DemoOptions, run_demo
from bullet_ws._demo.settings import DEMO_CONFIG, SYMBOLS, demo_topics

__all__ = ["DEMO_CONFIG", "FAULTS", "SYMBOLS", "DemoOptions", "demo_topics", "run_demo"]
