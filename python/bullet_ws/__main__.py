"""``python -m bullet_ws``: the ``bullet-ws`` command line (`bullet_ws.cli`)."""

from __future__ import annotations

import sys

from bullet_ws.cli import main

if __name__ == "__main__":
    sys.exit(main())
