"""The project's edgebench settings: the ``[tool.edgebench]`` table of ``pyproject.toml``.

``suites`` lists the project's suite files as glob patterns relative to the folder of
``pyproject.toml`` (default ``["suites/*.yaml"]``); ``pytest --benchmark`` runs them.
"""

from __future__ import annotations

import glob
import tomllib
from pathlib import Path

#: The suites of a project whose pyproject.toml does not list them.
DEFAULT_SUITES = ("suites/*.yaml",)


class ProjectConfigError(ValueError):
    """A ``[tool.edgebench]`` table that cannot be used."""


def suite_patterns(pyproject: Path) -> list[str]:
    """The ``suites`` patterns of ``pyproject`` (the default when the file or key is absent)."""
    if not pyproject.is_file():
        return list(DEFAULT_SUITES)
    try:
        table = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ProjectConfigError(f"{pyproject}: {e}") from None
    tool = table.get("tool", {}).get("edgebench", {})
    patterns = tool.get("suites", list(DEFAULT_SUITES)) if isinstance(tool, dict) else None
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
        raise ProjectConfigError(f"{pyproject}: [tool.edgebench] suites must be a list of "
                                 f"glob patterns (strings), not {patterns!r}")
    return patterns


def project_suites(pyproject: Path) -> list[Path]:
    """The suite files the patterns of ``pyproject`` match, in pattern then name order; a
    pattern that matches no file is an error (it names the pattern and the folder)."""
    base = pyproject.parent
    found: list[Path] = []
    for pattern in suite_patterns(pyproject):
        matches = sorted(Path(m) for m in glob.glob(str(base / pattern), recursive=True)
                         if Path(m).is_file())
        if not matches:
            raise ProjectConfigError(f"[tool.edgebench] suites: {pattern!r} matches no file in "
                                     f"{base} (set the suites in {pyproject.name})")
        found += [m for m in matches if m not in found]
    return found
