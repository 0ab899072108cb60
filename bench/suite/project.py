"""The project's edgebench settings: the ``[tool.edgebench]`` table of ``pyproject.toml``.

``suites`` lists the project's suite files as glob patterns relative to the folder of
``pyproject.toml`` (default ``["suites/*.yaml"]``); ``pytest --benchmark`` runs them.
``slow_suites`` (same form, default none) marks some of them as slow: ``pytest --benchmark``
leaves their cells out and says so, unless ``--edgebench-all`` or a ``-m`` expression (their
cells carry the ``edgebench_slow`` marker) asks for them.
"""

from __future__ import annotations

import glob
import tomllib
from pathlib import Path

#: The suites of a project whose pyproject.toml does not list them.
DEFAULT_SUITES = ("suites/*.yaml",)


class ProjectConfigError(ValueError):
    """A ``[tool.edgebench]`` table that cannot be used."""


def suite_patterns(pyproject: Path, key: str = "suites") -> list[str]:
    """The ``suites`` (or ``slow_suites``) patterns of ``pyproject`` (the default when the file
    or key is absent)."""
    default = list(DEFAULT_SUITES) if key == "suites" else []
    if not pyproject.is_file():
        return default
    try:
        table = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ProjectConfigError(f"{pyproject}: {e}") from None
    tool = table.get("tool", {}).get("edgebench", {})
    patterns = tool.get(key, default) if isinstance(tool, dict) else None
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
        raise ProjectConfigError(f"{pyproject}: [tool.edgebench] {key} must be a list of "
                                 f"glob patterns (strings), not {patterns!r}"[:300])
    return patterns


def _matched(pyproject: Path, key: str) -> list[Path]:
    base = pyproject.parent
    found: list[Path] = []
    for pattern in suite_patterns(pyproject, key):
        matches = sorted(Path(m) for m in glob.glob(str(base / pattern), recursive=True)
                         if Path(m).is_file())
        if not matches:
            raise ProjectConfigError(f"[tool.edgebench] {key}: {pattern!r} matches no file in "
                                     f"{base} (set the {key} in {pyproject.name})")
        found += [m for m in matches if m not in found]
    return found


def project_suites(pyproject: Path) -> list[Path]:
    """The suite files the patterns of ``pyproject`` match, in pattern then name order; a
    pattern that matches no file is an error (it names the pattern and the folder)."""
    return _matched(pyproject, "suites")


def slow_suites(pyproject: Path) -> list[Path]:
    """The project's suites ``slow_suites`` marks as slow (resolved paths); each must be one of
    its ``suites``."""
    listed = {p.resolve() for p in project_suites(pyproject)}
    slow = [p.resolve() for p in _matched(pyproject, "slow_suites")]
    stray = [p for p in slow if p not in listed]
    if stray:
        raise ProjectConfigError(f"[tool.edgebench] slow_suites: {stray[0].name} is not one of "
                                 f"the project's suites (its `suites` patterns)")
    return slow
