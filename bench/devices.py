"""Device files (``devices/<id>.yaml``): load, validate, find; which runner serves a device."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bench.spec import ID_PATTERN, SpecError, pydantic_problems, read_yaml

#: Which runner serves each connection kind.
RUNNER_FOR_KIND = {"host": "litert", "tflm": "tflm", "serial": "serial", "estimate": "estimate"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Memory(Strict):
    flash_kb: float | None = Field(None, gt=0)
    ram_kb: float | None = Field(None, gt=0)


class Power(Strict):
    active_mw: float | None = Field(None, gt=0)
    sleep_mw: float | None = Field(None, ge=0)
    voltage_v: float | None = Field(None, gt=0)
    battery_mah: float | None = Field(None, gt=0)


class Connection(BaseModel):
    """How the harness reaches the device; options beyond ``kind`` go to its runner."""

    model_config = ConfigDict(extra="allow")
    kind: Literal["host", "tflm", "serial", "estimate"]


class Device(Strict):
    id: str = Field(pattern=ID_PATTERN)
    name: str = ""
    core: str
    clock_mhz: float | None = Field(None, gt=0)
    memory: Memory = Field(default_factory=Memory)
    power: Power | None = None
    runtime: str
    connection: Connection
    source: Path | None = Field(None, exclude=True)

    @property
    def runner(self) -> str:
        return RUNNER_FOR_KIND[self.connection.kind]

    @property
    def options(self) -> dict[str, Any]:
        return self.connection.model_dump(exclude={"kind"})


def load_device(path: Path | str) -> Device:
    path = Path(path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise SpecError(path, [("", "a device file is a mapping with `id`, `core`, …")])
    try:
        device = Device.model_validate(data)
    except ValidationError as e:
        raise SpecError(path, pydantic_problems(e)) from None
    if device.id != path.stem:
        raise SpecError(path, [("id", f"{device.id!r} does not match the file name "
                                      f"{path.name!r} (expected id: {path.stem})")])
    device.source = path.resolve()
    return device


def search_dirs(extra: list[Path] | None = None, suite_file: Path | None = None) -> list[Path]:
    """Where device files are looked up, first match wins: ``extra`` (``--devices-dir``),
    ``$EDGEBENCH_DEVICES`` (``:``-separated), ``./devices``, and ``devices/`` beside or above
    the suite file."""
    dirs = list(extra or [])
    dirs += [Path(p) for p in os.environ.get("EDGEBENCH_DEVICES", "").split(os.pathsep) if p]
    dirs.append(Path.cwd() / "devices")
    if suite_file is not None:
        dirs += [suite_file.parent / "devices", suite_file.parent.parent / "devices"]
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def find_device(device_id: str, dirs: list[Path]) -> Device:
    """Load ``<id>.yaml`` from the first directory that has it; a clear error otherwise."""
    for d in dirs:
        candidate = d / f"{device_id}.yaml"
        if candidate.is_file():
            return load_device(candidate)
    known = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.yaml")})
    close = difflib.get_close_matches(device_id, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    where = ", ".join(str(d) for d in dirs)
    raise LookupError(f"unknown device {device_id!r}{hint} (known: {', '.join(known) or 'none'}; "
                      f"searched {where})")
