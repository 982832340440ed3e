"""The README's benchmark tables and the ratios its prose quotes are rendered from the run they
quote (`benches/readme_tables.py`): a figure copied by hand, or a run replaced without its
tables, is caught here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benches" / "readme_tables.py"


def tables(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_readme_tables_are_those_of_their_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    for kind in (
        "table s1",
        "table s5",
        "table s2",
        "table instructions",
        "ratios s5",
        "ratios s2",
    ):
        assert f"<!-- {kind} from benches/results/" in readme, kind
    done = tables("--check")
    assert done.returncode == 0, done.stderr


def test_a_figure_edited_by_hand_is_named_and_rendered_again(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- table s5 from ")
    row = readme.index("| picows + msgspec |", start)
    line = readme[row : readme.index("\n", row)]
    edited = readme[:row] + "| picows + msgspec | 1 / 2 | 3 / 4 |" + readme[row + len(line) :]
    copy = tmp_path / "README.md"
    copy.write_text(edited)

    done = tables("--check", "--readme", str(copy))
    assert done.returncode == 1
    assert "table s5 from benches/results/" in done.stderr
    assert "table s1 " not in done.stderr and "table s2 " not in done.stderr

    done = tables("--readme", str(copy))
    assert done.returncode == 0, done.stderr
    assert copy.read_text() == readme


def test_a_ratio_edited_by_hand_is_named_and_rendered_again(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- ratios s2 from ")
    at = readme.index("is ", start) + len("is ")
    figure = readme[at : readme.index("x", at)]
    edited = readme[:at] + "0.50" + readme[at + len(figure) :]
    assert edited != readme
    copy = tmp_path / "README.md"
    copy.write_text(edited)

    done = tables("--check", "--readme", str(copy))
    assert done.returncode == 1
    changed = [line for line in done.stderr.splitlines() if "differs" in line]
    assert len(changed) == 1 and "ratios s2 from benches/results/" in changed[0], done.stderr

    done = tables("--readme", str(copy))
    assert done.returncode == 0, done.stderr
    assert copy.read_text() == readme
