"""The release wheel from a fresh machine's point of view (slow: a release build of the Rust core).

`maturin build --release` must give one abi3 wheel (``cp310-abi3``) that installs with pip into a
fresh ``python -m venv`` (``--no-deps``, plus ``websockets``), imports with the native backend and
runs the ``bullet-ws`` console script, all with a PATH that has no Rust toolchain on it.

Marked ``slow`` and skipped unless selected: run it with ``pytest -m slow tests/test_wheel.py`` (or
set ``BULLET_WS_SLOW=1``); the ``slow`` marker is registered in pyproject.toml. `.ci/run` runs it.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


@pytest.fixture(autouse=True)
def _only_when_selected(request: pytest.FixtureRequest) -> None:
    markexpr = str(request.config.getoption("markexpr", "") or "")
    if "slow" not in markexpr and os.environ.get("BULLET_WS_SLOW") != "1":
        pytest.skip("slow (release build): run with -m slow or BULLET_WS_SLOW=1")


def _run(
    args: Sequence[str | os.PathLike[str]],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: pathlib.Path | None = None,
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(a) for a in args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
        )
    return proc


def _maturin() -> list[str]:
    local = pathlib.Path(sys.executable).with_name("maturin")
    if local.exists():
        return [str(local)]
    found = shutil.which("maturin")
    if found is None:
        pytest.skip("maturin is not installed")
    return [found]


def _toolchain_free_env(venv_bin: pathlib.Path) -> dict[str, str]:
    """The environment of a machine without Rust: the venv first, then the system's bin dirs."""
    path = os.pathsep.join([str(venv_bin), "/usr/local/bin", "/usr/bin", "/bin"])
    for tool in ("cargo", "rustc", "maturin"):
        hit = shutil.which(tool, path=path)
        if hit is not None:  # a system-wide toolchain: drop that directory from PATH
            path = os.pathsep.join(p for p in path.split(os.pathsep) if p != os.path.dirname(hit))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "CARGO_HOME", "RUSTUP_HOME"}
    }
    env["PATH"] = path
    env["PYTHONNOUSERSITE"] = "1"
    return env


def test_release_wheel_installs_and_runs_without_rust(tmp_path: pathlib.Path) -> None:
    dist = tmp_path / "dist"
    # A target dir of its own: a concurrent `maturin develop` on target/ swaps the artifacts
    # maturin reads back (target/maturin/...). Kept between runs, so only the first is slow.
    target = pathlib.Path(
        os.environ.get("BULLET_WS_WHEEL_TARGET_DIR", REPO / "target" / "wheel-test")
    )
    _run(
        [*_maturin(), "build", "--release", "-o", dist, "--target-dir", target],
        timeout=3000,
        cwd=REPO,
    )

    wheels = sorted(dist.glob("*.whl"))
    assert len(wheels) == 1, wheels
    wheel = wheels[0]
    assert re.fullmatch(r"bullet_ws-[0-9][^-]*-cp310-abi3-[^-]+\.whl", wheel.name), wheel.name
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    natives = [n for n in names if re.fullmatch(r"bullet_ws/_core\..*(so|pyd)", n)]
    assert len(natives) == 1, natives
    for needed in (
        "bullet_ws/__init__.py",
        "bullet_ws/__main__.py",
        "bullet_ws/cli.py",
        "bullet_ws/py.typed",
        "bullet_ws/_core.pyi",
        "bullet_ws/pure/__init__.py",
        "bullet_ws/testing/__init__.py",
    ):
        assert needed in names, needed
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as zf:
        scripts = zf.read(entry_points).decode().replace(" ", "").splitlines()
    assert "bullet-ws=bullet_ws.cli:main" in scripts, scripts

    # websockets (the pure backend's one dependency) from the local pip cache or PyPI.
    deps = tmp_path / "deps"
    _run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-d", deps, "websockets>=13"],
        timeout=600,
    )
    (ws_wheel,) = deps.glob("websockets-*")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], timeout=600)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    env = _toolchain_free_env(bin_dir)
    assert shutil.which("cargo", path=env["PATH"]) is None
    assert shutil.which("rustc", path=env["PATH"]) is None
    home = tmp_path / "elsewhere"  # not the checkout: `import bullet_ws` must find the install
    home.mkdir()

    _run(
        [python, "-m", "pip", "install", "--no-index", "--no-deps", wheel, ws_wheel],
        timeout=600,
        env=env,
        cwd=home,
    )
    probe = _run(
        [
            python,
            "-c",
            "import bullet_ws, websockets, bullet_ws.pure; print(bullet_ws.BACKEND, bullet_ws.__file__)",
        ],
        timeout=120,
        env=env,
        cwd=home,
    )
    backend, location = probe.stdout.split()
    assert backend == "native"
    assert pathlib.Path(location).is_relative_to(venv), location

    helped = _run([bin_dir / "bullet-ws", "--help"], timeout=120, env=env, cwd=home)
    for command in ("demo", "stream", "mock-exchange"):
        assert command in helped.stdout

    # The main job, from the installed wheel alone: the demo survives its first faults.
    demo = _run([bin_dir / "bullet-ws", "demo", "--seconds", "4"], timeout=120, env=env, cwd=home)
    assert "summary (native backend" in demo.stdout
    assert re.search(r"^\s*\[ok\]\s+close\b", demo.stdout, flags=re.MULTILINE), demo.stdout
    assert "result: OK" in demo.stdout
