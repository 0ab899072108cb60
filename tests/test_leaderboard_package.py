"""The leaderboard ships in the wheel beside ``bench`` and starts without path tricks."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

from setuptools import find_packages

import leaderboard

ROOT = Path(__file__).resolve().parents[1]


def test_packaged_alongside_bench() -> None:
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"]["find"]
    packages = find_packages(str(ROOT), include=find["include"])
    assert {"bench", "leaderboard", "leaderboard.pages"} <= set(packages)
    assert not [p for p in packages if p.startswith("tests")]


def test_entry_script_is_found_through_the_package() -> None:
    app = leaderboard.app_path()
    assert app.is_file() and app.parent == Path(leaderboard.__file__).parent
    for script, _, _ in leaderboard.PAGES:
        assert (app.parent / "pages" / script).is_file(), script


def _edits_sys_path(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr == "path" and \
                isinstance(node.value, ast.Name) and node.value.id == "sys":
            return True
    return False


def test_no_sys_path_edits() -> None:
    files = [*(ROOT / "leaderboard").rglob("*.py"), ROOT / "benchmarks" / "leaderboard_load.py",
             *(ROOT / "tests").glob("test_leaderboard_*.py")]
    assert [str(f.relative_to(ROOT)) for f in files if _edits_sys_path(f)] == []


def test_no_module_shadows_the_standard_library() -> None:
    # `streamlit run` puts the entry script's folder first on sys.path
    names = {p.stem for p in (ROOT / "leaderboard").iterdir()
             if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert not names & set(sys.stdlib_module_names)


def test_serve_command_is_for_users() -> None:
    cmd = leaderboard.command(port=8765)
    flags = dict(zip(cmd[6::2], cmd[7::2], strict=True))
    # -P: nothing from the working directory is importable in the server
    assert cmd[1:6] == ["-P", "-m", "streamlit", "run", str(leaderboard.app_path())]
    assert flags["--client.toolbarMode"] == "viewer"  # no Deploy button, no developer menu
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8765"
    assert flags["--browser.gatherUsageStats"] == "false"
    assert leaderboard.command(address="0.0.0.0")[leaderboard.command().index(
        "--server.address") + 1] == "0.0.0.0"
