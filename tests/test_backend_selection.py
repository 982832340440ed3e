"""Which backend `import bullet_ws` picks, and why (issue 11, issue 18).

The default test run must load the native backend: the suite's "native" half is only worth
something if it really drives the Rust core, so a broken `_native.py` must fail here instead of
quietly handing the pure backend to every native test. Without a wheel for the platform (no
`bullet_ws._core` at all), the import falls back to the pure backend with exactly one
`NativeBackendUnavailable` warning; any other import error propagates.

Set BULLET_WS_EXPECT_BACKEND=pure to run the suite on purpose where no extension is built.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap

import bullet_ws
import pytest

pytestmark = pytest.mark.timeout(60)


def test_the_default_run_loads_the_native_backend() -> None:
    expected = os.environ.get("BULLET_WS_EXPECT_BACKEND", "native")
    assert bullet_ws.BACKEND == expected
    if expected != "native":
        return
    from bullet_ws import _core, _native

    assert bullet_ws.connect is _native.connect
    assert issubclass(bullet_ws.ManagedWebSocket, _core.ManagedWebSocket)
    assert bullet_ws.AggTrade is _core.AggTrade
    assert bullet_ws.parse_message is _core.parse_message


def test_the_version_has_one_source() -> None:
    """Cargo.toml's version, seen through the extension and through the installed metadata."""
    try:
        installed = importlib.metadata.version("bullet-ws")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("bullet-ws is not installed (a plain checkout on sys.path)")
    assert bullet_ws.__version__ == installed
    if bullet_ws.BACKEND == "native":
        from bullet_ws import _core

        assert _core.__version__ == installed
        assert _core.build_profile in ("release", "debug")


# A finder placed before the real ones decides what importing one module does.
FINDER = textwrap.dedent(
    """
    import importlib.abc, sys, warnings

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == {module!r}:
                raise {error}
            return None

    sys.meta_path.insert(0, Finder())
    warnings.simplefilter("always")  # a second warning would show, not be folded into the first
    """
)


def run_python(module: str, error: str, body: str) -> subprocess.CompletedProcess[str]:
    script = FINDER.format(module=module, error=error) + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )


def test_no_extension_falls_back_to_pure_with_exactly_one_warning() -> None:
    result = run_python(
        "bullet_ws._core",
        'ModuleNotFoundError(f"No module named {name!r}", name=name)',
        """
        with warnings.catch_warnings(record=True) as caught:
            import bullet_ws
            import bullet_ws.pure
            import bullet_ws as again
        from bullet_ws import NativeBackendUnavailable

        assert again is bullet_ws and bullet_ws.BACKEND == "pure", bullet_ws.BACKEND
        assert bullet_ws.connect is bullet_ws.pure.connect
        assert [w.category for w in caught] == [NativeBackendUnavailable], caught
        assert issubclass(NativeBackendUnavailable, RuntimeWarning)
        print(caught[0].message)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert "pure-Python backend" in result.stdout


@pytest.mark.parametrize(
    ("module", "error"),
    [
        # A wheel whose extension exists but cannot load.
        ("bullet_ws._core", 'ImportError("undefined symbol: PyFoo_Bar")'),
        # A bug on the native side that happens to be a missing module, but not the extension.
        ("bullet_ws._native", 'ModuleNotFoundError("No module named \'x\'", name="x")'),
        ("bullet_ws._native", "ImportError(\"cannot import name 'y'\")"),
    ],
)
def test_any_other_import_error_propagates(module: str, error: str) -> None:
    result = run_python(
        module,
        error,
        """
        with warnings.catch_warnings(record=True) as caught:
            try:
                import bullet_ws
            except ImportError as exc:
                print("raised", type(exc).__name__, exc)
            else:
                print("imported", bullet_ws.BACKEND)
        assert caught == [], caught
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("raised "), result.stdout
