"""Shared pytest setup. The conformance fixtures are added below as the suite grows."""

from __future__ import annotations

import pathlib
import sys

# Run from a plain checkout too: put python/ on the path when bullet_ws is not installed.
_PYTHON_SRC = pathlib.Path(__file__).resolve().parent.parent / "python"
try:
    import bullet_ws  # noqa: F401
except ImportError:
    sys.path.insert(0, str(_PYTHON_SRC))
