"""Shared leaves for reading files: the spec error, YAML reading, the strict base model and the
"did you mean" hint. Imports nothing from :mod:`bench`, so every module may use it."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

#: Ids of suites, models, variants and devices.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"


class Strict(BaseModel):
    """A file section whose unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class SpecError(Exception):
    """A suite or device file that does not validate; lists every problem with its field."""

    def __init__(self, path: Path | str, problems: list[tuple[str, str]]) -> None:
        self.path, self.problems = str(path), problems
        lines = [f"{self.path}: {loc}: {msg}" if loc else f"{self.path}: {msg}"
                 for loc, msg in problems]
        super().__init__("\n".join(lines))


def hint(name: object, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``known``, or ``""``."""
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown(kind: str, name: object, known: Iterable[str]) -> str:
    """``unknown <kind> 'x'; did you mean 'y'? (known: a, b)``."""
    known = list(known)
    return (f"unknown {kind} {str(name)!r}{hint(name, known)} "
            f"(known: {', '.join(known) or 'none'})")


def format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def pydantic_problems(err: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """A pydantic error as ``(field path, message)`` pairs; unknown keys get the closest name."""
    problems = []
    for e in err.errors():
        loc = format_loc(e["loc"])
        loc = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] != "value_error" and "input" in e:
            msg += f" (got {json.dumps(e['input'], default=str)})"
        problems.append((loc, msg))
    return problems


def read_yaml(path: Path) -> Any:
    """Parse a YAML file safely; a missing or malformed file is a :class:`SpecError`."""
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(path, [("", "no such file")]) from None
    except yaml.YAMLError as e:
        raise SpecError(path, [("", f"not valid YAML: {e}")]) from None
