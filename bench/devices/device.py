"""Device files (``devices/<id>.yaml``): load, validate, find, list; which runner serves a device.

Required in every file: ``id`` (= the file name), ``core`` (a core of
:data:`bench.devices.cores.CORES`), ``runtime`` (a name of :data:`RUNTIMES`) and ``connection``.
Boards (every core but ``host``)
must also state ``clock_mhz`` and ``memory.flash_kb`` / ``memory.ram_kb``: the estimator and the
fit checks need them. A ``host`` device is the machine running edgebench, measured rather than
estimated, so its clock and memory are optional (when given, the fit checks still apply).
``power`` is optional everywhere; without ``power.active_mw`` there is no estimated energy.
``energy: {monitor: {kind, …}, boot_s}`` puts a board in MLPerf Tiny's energy mode: behind an
IO manager (the serial connection's port), supplied and measured by a registered power monitor
(its options checked when the file is read).
Sources for the figures go in YAML comments, not in fields.

A board may name an emulation target, ``emulate: {machine: mps2-an386}`` (the options of a
``qemu`` connection): the device ``<id>-emulated`` is then the same board measured by running
its firmware in QEMU, beside whatever its own connection gives (an estimate, a serial port).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bench import registry
from bench.devices.connections import option_problems, primary_runner
from bench.devices.cores import get_core
from bench.devices.releases import normalise
from bench.errors import (
    Id,
    PositiveFloat,
    SpecError,
    Strict,
    hint,
    one_of,
    pydantic_problems,
    read_yaml,
    shorten,
    unknown,
)

#: Inference stacks a device may run (``runtime``). The names from ``tflm`` to ``hls4ml`` are the
#: ``stack`` names of the MLPerf Tiny results the estimator is calibrated on.
RUNTIMES: dict[str, str] = {
    "tflm": "TensorFlow Lite Micro (CMSIS-NN kernels on Arm cores), interpreter + arena",
    "x-cube-ai": "STMicroelectronics X-CUBE-AI / ST Edge AI, C code generated per model",
    "microtvm": "Apache TVM microTVM, ahead-of-time compiled",
    "plumerai": "Plumerai Inference Engine",
    "bosch-hale": "Bosch Hardware-Aware Lowering Engine (HALE)",
    "onnc": "Skymizer ONNC compiler",
    "leip": "Latent AI LEIP compiler (application processors)",
    "syntiant": "Syntiant NDP SDK (neural decision processors)",
    "hls4ml": "hls4ml (FPGA)",
    "esp-nn": "TensorFlow Lite Micro with Espressif's ESP-NN kernels (esp-tflite-micro)",
    "litert": "LiteRT (TensorFlow Lite) interpreter on an application processor",
    "tflite-runtime": "the legacy tflite-runtime interpreter package",
    "other": "any other stack (no runtime-specific estimate coefficients)",
}


#: Bounds of a device file's figures: wide enough for any board or host edgebench meets (1 KB
#: to 1 TB of memory, 1 kHz to 10 GHz, a microwatt to a kilowatt), narrow enough that a typo
#: like 1e30 is refused instead of making an estimate print 1.4e-28 ms.
KB_MAX = 1e9
CLOCK_MHZ = (1e-3, 1e4)
MW_MAX = 1e6


#: ``memory.cache`` of a device file: what serves flash accesses without its wait states.
FLASH_CACHES: dict[str, str] = {
    "none": "every flash access waits",
    "instruction": "an instruction cache or prefetch accelerator serves fetches",
    "instruction+data": "a cache serves fetches and data (constants, weights) read from flash",
}
FLASH_WAIT_STATES_MAX = 15


class Memory(Strict):
    flash_kb: float | None = Field(None, ge=1, le=KB_MAX,
                                   description="flash for the model + code, KB (1 to 1e9)")
    ram_kb: float | None = Field(None, ge=1, le=KB_MAX, description="on-chip RAM, KB (1 to 1e9)")
    flash_wait_states: int | None = Field(None, ge=0, le=FLASH_WAIT_STATES_MAX,
                                          description="wait states of a flash access at "
                                                      "clock_mhz (0 to 15; default 0), for the "
                                                      "emulated cycle model")
    cache: Annotated[str, one_of("cache", FLASH_CACHES)] | None = Field(
        None, description="what caches flash accesses: none, instruction or instruction+data "
                          "(default none), for the emulated cycle model")


class Power(Strict):
    """Power figures; ``active_mw`` may be stated at another clock or supply than the board's
    (``active_at_mhz`` / ``active_at_v``): the estimator scales its dynamic part as f·V^k
    (:mod:`bench.estimate.power`), so one chip's figure serves every clock it runs at."""

    active_mw: float | None = Field(None, ge=1e-3, le=MW_MAX, description="typical power while "
                                    "inferring, mW (0.001 to 1e6)")
    sleep_mw: float | None = Field(None, ge=0, le=MW_MAX, description="power asleep between "
                                   "inferences, mW (0 to 1e6)")
    voltage_v: float | None = Field(None, ge=0.1, le=1000, description="supply voltage of these "
                                    "figures, V (0.1 to 1000)")
    battery_mah: float | None = Field(None, ge=1e-3, le=1e9,
                                      description="battery capacity, mAh (0.001 to 1e9)")
    active_source: Literal["datasheet", "measured"] = Field(
        "datasheet", description="where active_mw comes from: a datasheet run-mode figure, or "
                                 "measured on this board while inferring (a narrower interval)")
    active_at_mhz: float | None = Field(None, gt=0, le=10_000, description="the clock active_mw "
                                        "was stated at, MHz (default: the device's clock_mhz)")
    active_at_v: float | None = Field(None, gt=0, le=50, description="the supply active_mw was "
                                      "stated at, V (default: voltage_v)")
    static_mw: float = Field(0.0, ge=0, description="the part of active_mw that neither clock "
                                                    "nor supply scales (leakage, regulators), mW")
    voltage_exponent: float = Field(2.0, ge=0, le=2, description="dynamic power ∝ f·V^k: 2 "
                                    "where V feeds the core, 1 behind a linear regulator, 0 "
                                    "behind a switching one")

    @model_validator(mode="after")
    def _scalable(self) -> Power:
        if self.active_mw is not None and self.static_mw >= self.active_mw:
            raise ValueError(f"static_mw ({self.static_mw:g}) must be below active_mw "
                             f"({self.active_mw:g}): it is the part that does not scale")
        if self.active_at_v is not None and self.voltage_v is None:
            raise ValueError("active_at_v needs voltage_v (the supply the board runs at) to "
                             "scale active_mw to it")
        return self


#: The id suffix of a board's emulated twin (see ``Device.emulate``).
EMULATED_SUFFIX = "-emulated"


class EstimateSettings(Strict):
    """How the estimator treats this device (``estimate:`` in a device file)."""

    coefficients: Path | None = Field(None, strict=False, description="a coefficient table "
                                      "fitted for this device (`edgebench calibrate --records`); "
                                      "relative to the device file")


class EnergySetup(Strict):
    """MLPerf Tiny's energy mode (``energy:`` in a device file): the board, flashed with
    energy-mode firmware, sits behind an IO manager on the connection's port and is supplied
    by a power monitor (``monitor.kind``: `edgebench devices monitors` lists them; the other
    keys are that monitor's options)."""

    monitor: dict[str, Any] = Field(description="`kind` (a registered power monitor) and its "
                                                "options")
    boot_s: PositiveFloat = Field(1.0, description="wait after powering the board before "
                                                   "talking to it, s")
    dut_baud: int = Field(9600, ge=300, le=10_000_000,
                          description="the DUT's UART speed behind the IO manager (MLPerf "
                                      "Tiny's energy mode: 9600); deadlines allow its time")


class Connection(BaseModel):
    """How the harness reaches the device: ``kind`` names a registered runner's connection
    kind (``edgebench devices kinds``); the other keys are that runner's options."""

    model_config = ConfigDict(extra="allow")
    kind: str


class Device(Strict):
    id: Id
    name: str = ""
    core: str = Field(description="`edgebench devices cores` lists the names")
    clock_mhz: float | None = Field(None, ge=CLOCK_MHZ[0], le=CLOCK_MHZ[1],
                                    description="required unless core is `host`; 0.001 to "
                                                "10000")
    memory: Memory = Field(default_factory=Memory)
    power: Power | None = None
    runtime: Annotated[str, one_of("runtime", RUNTIMES)] = Field(
        description="inference stack; `edgebench devices runtimes`")
    runtime_version: str | None = Field(
        None, description="the runtime's release, free text normalised to its version "
                          "(\"X-CUBE-AI v7.3.0\" → 7.3); `edgebench devices runtimes` lists "
                          "the releases the estimator knows")
    connection: Connection
    estimate: EstimateSettings | None = None
    energy: EnergySetup | None = None
    emulate: dict[str, Any] | None = Field(
        None, description="options of a `qemu` connection (e.g. {machine: mps2-an386}): the "
                          "device `<id>-emulated` is this board emulated")
    source: Path | None = Field(None, exclude=True)

    @field_validator("runtime_version", mode="before")
    @classmethod
    def _number_as_text(cls, value: Any) -> Any:
        """``runtime_version: 7.3`` unquoted is a YAML number: read it as the text it was."""
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) \
            else value

    @field_validator("runtime_version")
    @classmethod
    def _a_version(cls, text: str | None) -> str | None:

        if text is None:
            return None
        version = normalise(text)
        if version is None:
            raise ValueError(f"no version number in {shorten(text)!r} (e.g. 7.3 or v2.3.1)")
        return version

    @field_validator("core")
    @classmethod
    def _known_core(cls, core: str) -> str:
        try:
            get_core(core)
        except KeyError as e:
            raise ValueError(e.args[0]) from None
        return core

    @property
    def runner(self) -> str:
        """The name of the runner of this device's .tflite artifacts."""
        runner = primary_runner(self.connection.kind)
        return runner.name if runner else ""

    @property
    def options(self) -> dict[str, Any]:
        return self.connection.model_dump(exclude={"kind"})

    @property
    def is_host(self) -> bool:
        return self.core == "host"

    def emulated(self) -> Device:
        """This board as its ``emulate`` target: id ``<id>-emulated``, a ``qemu`` connection."""
        if self.emulate is None:
            raise LookupError(f"device {self.id!r} names no emulation target (`emulate`)")
        machine = self.emulate.get("machine", "the default machine of its core")
        return self.model_copy(update={
            "id": self.id + EMULATED_SUFFIX, "emulate": None, "runtime": "tflm",
            "runtime_version": None,
            "name": f"{self.name or self.id} (emulated: QEMU {machine})",
            "connection": Connection(kind="qemu", **self.emulate)})


def _board_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Rules pydantic cannot express per field: what a board (not ``core: host``) must state."""
    core = data.get("core")
    if core == "host":
        return []
    if not isinstance(core, str):
        return []  # pydantic reports the missing or mistyped core
    why = "every device but `core: host` states it"
    problems = []
    if data.get("clock_mhz") is None:
        problems.append(("clock_mhz", f"Field required ({why})"))
    memory = data.get("memory")
    if memory is None:
        problems.append(("memory", f"Field required: flash_kb and ram_kb ({why})"))
    elif isinstance(memory, dict):
        problems += [(f"memory.{key}", f"Field required ({why})")
                     for key in ("flash_kb", "ram_kb") if memory.get(key) is None]
    return problems


def _connection_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The connection's kind and runner options, checked when the file is read (not mid-run)."""
    connection = data.get("connection")
    if not isinstance(connection, dict):
        return []
    core = data.get("core")
    is_host = None if not isinstance(core, str) else core == "host"
    problems = option_problems(connection, is_host)
    emulate = data.get("emulate")
    if isinstance(emulate, dict):
        problems += [(loc.replace("connection", "emulate", 1), why) for loc, why in
                     option_problems({**emulate, "kind": "qemu"}, is_host)
                     if loc != "emulate.kind"]
    return problems


#: The connection kind energy mode speaks through (the IO manager relays the serial protocol).
ENERGY_CONNECTION = "serial"


def _energy_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The ``energy`` block's monitor (a registered kind, its options) and connection."""
    energy = data.get("energy")
    if not isinstance(energy, dict):
        return []
    problems = []
    connection = data.get("connection")
    if isinstance(connection, dict) and connection.get("kind") != ENERGY_CONNECTION:
        problems.append(("energy", f"energy mode talks to the board through an IO manager: "
                                   f"`connection.kind: {ENERGY_CONNECTION}` with the IO "
                                   f"manager's port (got {shorten(connection.get('kind'))!r})"))
    monitor = energy.get("monitor")
    if not isinstance(monitor, dict):
        return problems  # pydantic reports a missing or mistyped monitor
    names = registry.monitors.names()
    kind = monitor.get("kind")
    if kind not in names:
        return [*problems, ("energy.monitor.kind", unknown("power monitor", kind, names))]
    try:
        registry.monitors.get(kind).parse_options(monitor)
    except ValidationError as e:
        problems += pydantic_problems(e, "energy.monitor")
    return problems


def device_problems(data: Any, path: Path) -> tuple[Device | None, list[tuple[str, str]]]:
    """Validate a parsed device file: the device (None when invalid) and every problem found."""
    if not isinstance(data, dict):
        return None, [("", "a device file is a mapping with `id`, `core`, `runtime`, …")]
    problems: list[tuple[str, str]] = []
    device = None
    try:
        device = Device.model_validate(data)
    except ValidationError as e:
        problems += pydantic_problems(e)
    problems += _board_problems(data) + _connection_problems(data) + _energy_problems(data)
    device_id = data.get("id")
    if isinstance(device_id, str) and device_id != path.stem:
        problems.append(("id", f"{shorten(device_id)!r} does not match the file name "
                               f"{path.name!r} "
                               f"(expected id: {path.stem})"))
    return (None if problems else device), problems


def load_device(path: Path | str) -> Device:
    """Parse and validate a device file; :class:`SpecError` lists every problem."""
    path = Path(path)
    device, problems = device_problems(read_yaml(path), path)
    if device is None:
        raise SpecError(path, problems)
    device.source = path.resolve()
    if device.estimate is not None and device.estimate.coefficients is not None:
        device.estimate.coefficients = path.resolve().parent / device.estimate.coefficients
    return device


def device_schema() -> dict[str, Any]:
    """JSON Schema of a device file (the board-only requirements are in the descriptions)."""
    schema = Device.model_json_schema()
    schema["properties"].pop("source", None)  # set by the loader, not written in files
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "edgebench device"
    return schema


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


def device_files(dirs: list[Path]) -> list[Path]:
    """Every ``*.yaml`` in ``dirs``, sorted by id; an id found twice keeps its first folder."""
    found: dict[str, Path] = {}
    for d in dirs:
        for path in sorted(d.glob("*.yaml")) if d.is_dir() else []:
            found.setdefault(path.stem, path)
    return [found[k] for k in sorted(found)]


def list_devices(dirs: list[Path]) -> tuple[list[Device], list[SpecError]]:
    """Load every device file in ``dirs``: the valid devices and the errors of the others."""
    devices, errors = [], []
    for path in device_files(dirs):
        try:
            devices.append(load_device(path))
        except SpecError as e:
            errors.append(e)
    return devices, errors


def find_device(device_id: str, dirs: list[Path]) -> Device:
    """Load ``<id>.yaml`` from the first directory that has it; a clear error otherwise."""
    for d in dirs:
        candidate = d / f"{device_id}.yaml"
        if candidate.is_file():
            return load_device(candidate)
    board = device_id.removesuffix(EMULATED_SUFFIX)
    if board != device_id:
        return find_device(board, dirs).emulated()
    known = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.yaml")})
    where = ", ".join(str(d) for d in dirs)
    raise LookupError(f"unknown device {device_id!r}{hint(device_id, known)} (known: "
                      f"{', '.join(known) or 'none'}; searched {where})")
