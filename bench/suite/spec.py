"""Typed models of a suite file, parsed once; plugin names and parameters checked up front.

Every problem is reported with the file, the field path and the bad value, e.g.
``suites/x.yaml: models[0].dataset.name: unknown dataset 'har_synth'; did you mean
'har_synthetic'?``.
"""

from __future__ import annotations

import os
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from bench import registry
from bench.errors import Id, Seed, SpecError, Strict, hint, pydantic_problems, read_yaml, unknown
from bench.models.train import TrainSpec
from bench.results.metrics import UNITS
from bench.suite.constraints import Constraint, known_names, rule_problems
from bench.variants.base import order_problems

#: File suffixes of suite files (the pytest plugin collects these).
SUITE_SUFFIXES = (".yaml", ".yml")


#: Model files a suite's `path` may name: Keras, LiteRT, ONNX and PyTorch.
MODEL_SUFFIXES = (".keras", ".h5", ".tflite", ".onnx", ".pt", ".pth", ".pt2")


class DatasetRef(Strict):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    seed: Seed = 0


class ModelEntry(Strict):
    """A model: a registered builder trained on a data set, or a saved file benchmarked as is."""

    id: Id
    builder: str | None = None
    path: Path | None = Field(None, strict=False)
    params: dict[str, Any] = Field(default_factory=dict)
    dataset: DatasetRef | None = None
    train: TrainSpec = Field(default_factory=TrainSpec)
    #: load a `.h5`/`.keras` file even if it holds code that runs when loaded (Lambda layers,
    #: custom objects), or a PyTorch `.pt`/`.pth`/`.pt2` file (unpickled); only for a file
    #: whose source you trust. The record notes it.
    trust_code: bool = Field(False, strict=True)

    def model_post_init(self, _context: Any) -> None:
        if (self.builder is None) == (self.path is None):
            raise ValueError("give exactly one of `builder` (a registered name) or `path` "
                             f"(a {'/'.join(MODEL_SUFFIXES)} file)")
        if self.trust_code and self.path is None:
            raise ValueError("`trust_code` applies to a model file (`path`), not a builder")
        if self.path is not None and self.path.suffix.lower() not in MODEL_SUFFIXES:
            raise ValueError(f"path {str(self.path)!r}: expected a "
                             f"{', '.join(MODEL_SUFFIXES[:-1])} or {MODEL_SUFFIXES[-1]} file")


class VariantEntry(Strict):
    """A compression variant: steps applied in order, each ``{step_name: {params}}``."""

    id: Id
    steps: list[dict[str, dict[str, Any] | None]] = Field(default_factory=list)

    @field_validator("steps")
    @classmethod
    def _one_key_per_step(cls, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for step in steps:
            if len(step) != 1:
                raise ValueError(f"each step is a mapping with exactly one key (the step name), "
                                 f"got {sorted(step)}")
        return steps

    def step_list(self) -> list[tuple[str, dict[str, Any]]]:
        return [(name, params or {}) for step in self.steps for name, params in step.items()]

    def order_problems(self) -> list[tuple[int, str]]:
        """``(step index, message)`` for each step out of order: training steps come before
        the one conversion step (each step declares its ``phase``; an unregistered one none)."""

        steps = registry.variant_steps
        return order_problems([(name, getattr(steps.get(name), "phase", None)
                                if name in steps else None) for name, _ in self.step_list()])


class Settings(Strict):
    warmup: int = Field(10, ge=0, le=1_000_000)
    repeats: int = Field(200, ge=1, le=1_000_000)
    timeout_s: float = Field(600, gt=0, le=7 * 86400, description="per step, at most a week")
    #: host timings are taken in this many worker processes, each after its own warmup
    processes: int = Field(3, ge=1, le=100)
    #: each worker process's memory limit; default: half of the machine's memory
    memory_mb: int | None = Field(None, ge=512, le=1 << 24, description="per worker process, "
                                  "MB (default: half of the machine's memory)")
    reference_variant: str = "fp32"
    #: workload rate for average power and battery life on devices with power figures
    inferences_per_s: float | None = Field(None, gt=0)
    #: attached boards: shortest performance window (MLPerf Tiny requires 10 s); a device's own
    #: ``connection.min_window_s`` takes precedence
    min_window_s: float | None = Field(None, gt=0)


class MatrixRule(Strict):
    """Matches cells by glob on model, variant and device ids (omitted = any)."""

    model: str = "*"
    variant: str = "*"
    device: str = "*"

    def matches(self, model: str, variant: str, device: str) -> bool:
        """Whether the rule's globs all match a cell's model, variant and device ids."""
        return (fnmatchcase(model, self.model) and fnmatchcase(variant, self.variant)
                and fnmatchcase(device, self.device))


#: Checks a cell gets on a device with a memory size (:func:`~bench.suite.constraints.device_fit`).
DEVICE_CHECKS = ("fits_flash", "fits_ram")


class Expectation(MatrixRule):
    """A check the cells matching ``model``/``variant``/``device`` (globs) miss on purpose:
    ``run`` and ``show`` print the miss as expected, pytest reports it as an xfail with
    ``why`` (and a pass as an xpass); the leaderboard still shows the miss."""

    #: the check: a constraint of the suite, or ``fits_flash`` / ``fits_ram``
    fails: str
    #: why the miss is expected (shown with it)
    why: str = Field(min_length=1)


#: Report columns computed from two records: this cell against the reference variant.
DERIVED_COLUMNS = {"size_reduction": "model_size", "gzip_reduction": "model_size_gzip",
                   "checks": ""}


class ReportTable(Strict):
    """A comparison table ``edgebench show`` prints: the cells matching ``rows`` (in that
    order) on ``device`` (or every device), with ``columns`` — metric names, ``<metric>_delta``,
    ``size_reduction`` / ``gzip_reduction`` (reference variant's size ÷ this size) or
    ``checks``. With ``aggregate``, each rule (per device) is one line: the mean ± standard
    deviation over the cells it matches (e.g. one model trained at several seeds)."""

    title: str
    rows: list[MatrixRule] = Field(min_length=1)
    device: Id | None = None
    columns: list[str] = Field(min_length=1)
    aggregate: bool = False


class Suite(Strict):
    name: Id
    description: str = ""
    models: list[ModelEntry] = Field(min_length=1)
    variants: list[VariantEntry] = Field(default_factory=lambda: [VariantEntry(id="fp32")])
    devices: list[Id] = Field(min_length=1)
    constraints: dict[str, Constraint] = Field(default_factory=dict)
    settings: Settings = Field(default_factory=Settings)
    include: list[MatrixRule] = Field(default_factory=list)
    exclude: list[MatrixRule] = Field(default_factory=list)
    report: list[ReportTable] = Field(default_factory=list)
    expect: list[Expectation] = Field(default_factory=list)
    source: Path | None = Field(None, exclude=True)

    def keeps(self, model: str, variant: str, device: str) -> bool:
        """Whether the cell is in the matrix: it matches an ``include`` rule (or there are
        none) and no ``exclude`` rule."""
        if self.include and not any(r.matches(model, variant, device) for r in self.include):
            return False
        return not any(r.matches(model, variant, device) for r in self.exclude)


def _check_params(plugin: Any, params: dict[str, Any], loc: str) -> list[tuple[str, str]]:
    try:
        plugin.params.model_validate(params)
    except ValidationError as e:
        return pydantic_problems(e, loc)
    return []


def _check_plugins(suite: Suite) -> list[tuple[str, str]]:
    """Registry names exist and each plugin's parameters validate."""
    problems: list[tuple[str, str]] = []

    def lookup(reg: registry.Registry[Any], name: str, loc: str) -> Any:
        try:
            return reg.get(name)
        except registry.UnknownNameError as e:
            problems.append((loc, str(e)))
            return None

    for i, m in enumerate(suite.models):
        b = None if m.builder is None else lookup(registry.models, m.builder,
                                                  f"models[{i}].builder")
        if b is not None:
            problems += _check_params(b, m.params, f"models[{i}].params")
            if m.dataset is None and b.default_io is None:
                problems.append((f"models[{i}].dataset", f"builder {m.builder!r} needs a data "
                                 "set (it has no default input shape)"))
        if m.dataset is not None:
            ds = lookup(registry.datasets, m.dataset.name, f"models[{i}].dataset.name")
            if ds is not None:
                problems += _check_params(ds, m.dataset.params, f"models[{i}].dataset.params")
            if ds is not None and b is not None and ds.task not in b.tasks:
                problems.append((f"models[{i}].dataset.name",
                                 f"{m.builder} builds {'/'.join(b.tasks)} models but "
                                 f"{m.dataset.name} is a {ds.task} data set"))
    model_ids = [m.id for m in suite.models]
    for i, v in enumerate(suite.variants):
        for j, (name, params) in enumerate(v.step_list()):
            loc = f"variants[{i}].steps[{j}]"
            if step := lookup(registry.variant_steps, name, loc):
                problems += _check_params(step, params, f"{loc}.{name}")
                for ref in getattr(step.params, "model_refs", ()):
                    if ref in params and params[ref] not in model_ids:
                        problems.append((f"{loc}.{name}.{ref}", f"no model {params[ref]!r} in "
                                         f"this suite{hint(params[ref], model_ids)} "
                                         f"(models: {', '.join(model_ids)})"))
    return problems


def _check_ids(suite: Suite) -> list[tuple[str, str]]:
    problems = []
    for field in ("models", "variants"):
        seen: set[str] = set()
        for i, entry in enumerate(getattr(suite, field)):
            if entry.id in seen:
                problems.append((f"{field}[{i}].id", f"duplicate id {entry.id!r}"))
            seen.add(entry.id)
    first: dict[str, int] = {}
    for i, device in enumerate(suite.devices):  # twice would mean two cells with one id
        if device in first:
            problems.append((f"devices[{i}]", f"duplicate device {device!r} (also "
                             f"devices[{first[device]}])"))
        first.setdefault(device, i)
    return problems


def _check_step_order(suite: Suite) -> list[tuple[str, str]]:
    """Training steps before the conversion, one conversion per variant (each step declares
    its ``phase``); unknown step names are left to :func:`_check_plugins`."""
    return [(f"variants[{i}].steps[{j}]", msg) for i, v in enumerate(suite.variants)
            for j, msg in v.order_problems()]


def _check_constraints(suite: Suite) -> list[tuple[str, str]]:
    known, problems = known_names(), []
    for name in suite.constraints:
        if name not in known:
            problems.append((f"constraints.{name}", unknown("metric", name, known)))
    for name, rule in suite.constraints.items():
        problems += [(f"constraints.{name}", msg) for msg in rule_problems(name, rule)]
    for i, table in enumerate(suite.report):
        for j, column in enumerate(table.columns):
            base = column.removesuffix("_delta")
            if column not in DERIVED_COLUMNS and base not in UNITS:
                problems.append((f"report[{i}].columns[{j}]", f"unknown column {column!r} "
                                 f"(metrics, <metric>_delta, {', '.join(DERIVED_COLUMNS)})"))
    variant_ids = {v.id for v in suite.variants}
    for name, rule in suite.constraints.items():
        if rule.min_delta_vs is not None and rule.min_delta_vs not in variant_ids:
            problems.append((f"constraints.{name}.min_delta_vs",
                             f"no variant {rule.min_delta_vs!r} in this suite "
                             f"(variants: {', '.join(sorted(variant_ids))})"))
    return problems


def _check_expectations(suite: Suite) -> list[tuple[str, str]]:
    """Each ``expect`` entry names a check this suite's cells get and matches a cell."""
    problems: list[tuple[str, str]] = []
    checks = [*suite.constraints, *DEVICE_CHECKS]
    cells = [(m.id, v.id, d) for m in suite.models for v in suite.variants
             for d in suite.devices if suite.keeps(m.id, v.id, d)] if suite.expect else []
    for i, rule in enumerate(suite.expect):
        if rule.fails not in checks:
            problems.append((f"expect[{i}].fails", f"{unknown('check', rule.fails, checks)} "
                             "(the suite's constraints, or fits_flash / fits_ram)"))
        if not any(rule.matches(*cell) for cell in cells):
            problems.append((f"expect[{i}]", f"matches no cell of this suite (model "
                             f"{rule.model!r}, variant {rule.variant!r}, device "
                             f"{rule.device!r})"))
    return problems


def load_suite(path: Path | str) -> Suite:
    """Parse and validate a suite file; raise :class:`SpecError` listing every problem."""
    path = Path(path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise SpecError(path, [("", "a suite is a mapping with `name`, `models`, `devices`, …")])
    try:
        suite = Suite.model_validate(data)
    except ValidationError as e:
        raise SpecError(path, pydantic_problems(e)) from None
    problems = (_check_ids(suite) + _check_plugins(suite) + _check_step_order(suite)
                + _check_constraints(suite))
    if not problems:  # the cells are known once ids and rules are sound
        problems = _check_expectations(suite)
    if problems:
        raise SpecError(path, problems)
    suite.source = path.resolve()
    for m in suite.models:  # model files are relative to the suite file
        if m.path is not None and not m.path.is_absolute():
            # absolute, links kept: an error names the file as the suite gives it
            m.path = Path(os.path.abspath(path.parent / m.path))
    return suite


def suite_schema() -> dict[str, Any]:
    """JSON Schema of a suite file (for editor completion)."""
    schema = Suite.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "edgebench suite"
    return schema

