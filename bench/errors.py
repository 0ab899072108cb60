"""Shared leaves for reading files: the spec error, YAML reading, the strict base model and the
"did you mean" hint. Imports nothing from :mod:`bench`, so every module may use it."""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

#: Ids of suites, models, variants and devices: one path-safe name (they name files).
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
MAX_ID = 100
Id = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=MAX_ID)]

#: Numbers a file gives that end up in NumPy, TensorFlow or an allocation: bounded where the file
#: is read, so a bad one is named there and not found deep in a build.
Seed = Annotated[int, Field(ge=0, le=2**32 - 1, description="0 to 2^32 - 1 (NumPy's range)")]
BatchSize = Annotated[int, Field(ge=1, le=65_536)]
Epochs = Annotated[int, Field(ge=1, le=10_000)]
#: examples a generated data set or a calibration takes
SampleCount = Annotated[int, Field(le=1_000_000)]


class Strict(BaseModel):
    """A file section whose unknown keys are errors and whose numbers are numbers: no booleans
    or strings where a number is expected, no NaN or infinities (strict mode: a ``Path`` field
    takes a string only when it says ``Field(strict=False)``)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class SpecError(Exception):
    """A suite or device file that does not validate; lists every problem with its field."""

    def __init__(self, path: Path | str, problems: list[tuple[str, str]]) -> None:
        self.path, self.problems = str(path), problems
        lines = [f"{self.path}: {loc}: {msg}" if loc else f"{self.path}: {msg}"
                 for loc, msg in problems]
        super().__init__("\n".join(lines))


class Unsupported(Exception):  # noqa: N818 - a verdict, not a fault
    """The runtime cannot run this artifact (hybrid weights in TFLite Micro, a firmware that
    does not fit the device, an op without a kernel…): the cell is *skipped*, with this
    message as the runtime's reason. A real failure is any other exception."""


def hint(name: object, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``known``, or ``""``."""
    if len(str(name)) > MAX_ID:
        return ""
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown(kind: str, name: object, known: Iterable[str]) -> str:
    """``unknown <kind> 'x'; did you mean 'y'? (known: a, b)``."""
    known = list(known)
    return (f"unknown {kind} {shorten(name)!r}{hint(name, known)} "
            f"(known: {', '.join(known) or 'none'})")


def positive(whole: bool = False, what: str = "") -> Any:
    """A field validator: a positive (whole) number; refuses booleans, NaN and infinities."""
    number = "a positive whole number" if whole else "a positive number"

    def check(value: Any) -> Any:
        ok = (not isinstance(value, bool) and isinstance(value, int | float)
              and math.isfinite(value) and value > 0)
        if not ok or (whole and not float(value).is_integer()):
            raise ValueError(f"expected {what}{number} (got {value!r})")
        return int(value) if whole else float(value)

    return BeforeValidator(check)


PositiveFloat = Annotated[float, positive()]
PositiveInt = Annotated[int, positive(whole=True)]


def one_of(kind: str, known: Iterable[str]) -> AfterValidator:
    """A field validator: the value is one of ``known``, else the closest name is suggested."""
    names = list(known)

    def check(value: str) -> str:
        if value not in names:
            raise ValueError(unknown(kind, value, names))
        return value

    return AfterValidator(check)


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
        msg = shorten(e["msg"].removeprefix("Value error, "), 4 * MAX_ECHO)
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] != "value_error" and "input" in e:
            msg += f" (got {shorten(json.dumps(e['input'], default=str))})"
        problems.append((loc, msg))
    return problems


#: Bounds on a YAML file (suites and device files are a few KB).
MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NODES = 100_000
#: How much of an offending input an error message quotes.
MAX_ECHO = 200


def shorten(text: object, limit: int = MAX_ECHO) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


class _YAMLLimit(yaml.YAMLError):
    def __init__(self, message: str, mark: Any = None) -> None:
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        super().__init__(message + where)


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a nesting limit (its composer recurses per level) that refuses
    a key given twice in one mapping (PyYAML keeps the last silently)."""

    depth = 0

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    if key_node.value in seen:
                        raise _YAMLLimit(f"the key {shorten(key_node.value, 60)!r} is given "
                                         "twice in one mapping", key_node.start_mark)
                    seen.add(key_node.value)
        return super().construct_mapping(node, deep)

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _YAMLLimit(f"nested deeper than {MAX_DEPTH} levels",
                                 self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _expanded_size(node: yaml.Node, memo: dict[int, int], open_: set[int]) -> int:
    """Nodes in the document once every alias is expanded (an alias repeats its anchor)."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in open_:
        raise _YAMLLimit("an alias refers to the node that contains it", node.start_mark)
    open_.add(key)
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, memo, open_) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo, open_) + _expanded_size(v, memo, open_)
                       for k, v in node.value)
    else:
        size = 1
    open_.discard(key)
    memo[key] = size
    return size


def _decode(path: Path, raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SpecError(path, [("", "expected UTF-8 text, found a UTF-16 byte-order mark "
                                    "(save the file as UTF-8)")])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise SpecError(path, [("", f"expected UTF-8 text: byte 0x{raw[e.start]:02x} at line "
                                    f"{line} is not UTF-8")]) from None


def parse_yaml(text: str) -> Any:
    """Parse one YAML document safely and boundedly: no tags that build objects, at most
    :data:`MAX_DEPTH` levels and :data:`MAX_NODES` nodes with aliases expanded."""
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {}, set())
        if size > MAX_NODES:
            raise _YAMLLimit(f"the document expands to {size:,} nodes through its aliases "
                             f"(limit {MAX_NODES:,})")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml(path: Path) -> Any:
    """Read and parse a YAML file (UTF-8, at most :data:`MAX_FILE_BYTES`); a missing, oversized
    or malformed file is a :class:`SpecError` that quotes little of it."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise SpecError(path, [("", "no such file")]) from None
    except OSError as e:
        raise SpecError(path, [("", f"cannot read the file: {e.strerror or e}")]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise SpecError(path, [("", f"larger than {MAX_FILE_BYTES // 1024} KB: not a suite or "
                                    "device file")])
    try:
        return parse_yaml(_decode(path, raw))
    except yaml.YAMLError as e:
        raise SpecError(path, [("", f"not valid YAML: {shorten(e, 4 * MAX_ECHO)}")]) from None
    except RecursionError:
        raise SpecError(path, [("", "not valid YAML: nested too deeply")]) from None
