"""pytest front door: ``pytest --benchmark`` runs the project's suites, each cell a test item.

A thin layer over :class:`bench.run.session.Session`. ``--benchmark`` without a path runs the suites
the project lists (``[tool.edgebench] suites`` in ``pyproject.toml``, :mod:`bench.suite.project`)
instead of its ``testpaths``; with paths, or without the flag, suite files named on the command
line (or found under a directory named there) are collected, one item per cell named by its cell id
(``model/variant@device``), so ``-k``, ``-x`` and ``--lf`` select cells. Each item runs its cell
through the session into one run folder per suite per pytest session (builds are cached by the
harness, so the second cell of a build is cheap). Cells on a host LiteRT device are timed
in-process through pytest-benchmark's ``benchmark`` fixture (pedantic mode, warmup and rounds
from the suite settings) and that timing is the record's latency; the record's other metrics go
into ``extra_info``. A failed cell or a missed constraint fails the item with the validation
table; a check the suite expects the cell to miss (``expect:``) is an xfail with the suite's
reason, and an xpass when it passes; a cell the runtime cannot run is a skip with the runtime's
reason.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import textable
from bench.devices.connections import primary_runner
from bench.errors import SpecError, read_yaml
from bench.pytest.progress import SLOW_MARKER, SuiteProgress
from bench.registry import load_ref
from bench.results.compare import compare_runs, machines_differ
from bench.results.expected import verdict
from bench.results.metrics import Metric
from bench.results.record import Record
from bench.results.store import Run, Store, new_run_id
from bench.run.cellwork import CellFailure
from bench.run.session import Session
from bench.runners.base import RunRequest
from bench.runners.io import latency_stats, load_artifact, sample_inputs
from bench.suite.constraints import render_validation
from bench.suite.matrix import Cell
from bench.suite.project import ProjectConfigError, project_suites, slow_suites
from bench.suite.spec import SUITE_SUFFIXES, load_suite

log = logging.getLogger(__name__)

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgebench", "edgebench suites")
    group.addoption("--benchmark", action="store_true", dest="edgebench_benchmark",
                    help="run suites as benchmarks: those named, else the project's "
                         "([tool.edgebench] suites in pyproject.toml, default suites/*.yaml)")
    group.addoption("--edgebench-all", action="store_true",
                    help="with --benchmark and no path: run the slow suites too "
                         "([tool.edgebench] slow_suites)")
    group.addoption("--edgebench-results", default="results", metavar="DIR",
                    help="result store for the records of collected suites (default: results)")
    group.addoption("--edgebench-devices-dir", action="append", default=None, metavar="DIR",
                    help="extra folder of device files (repeatable)")
    group.addoption("--edgebench-compare", nargs="?", const="previous", default=None,
                    metavar="RUN",
                    help="after the session, compare each suite's run with RUN (default: the "
                         "suite's previous run): changes, 95%% intervals, significance")
    group.addoption("--edgebench-compare-fail", action="store_true",
                    help="with --edgebench-compare: fail the session on a regression "
                         "(significant and beyond the tolerance)")
    group.addoption("--edgebench-tolerance", type=float, default=0.05, metavar="FRACTION",
                    help="relative change below which nothing is a regression (default 0.05)")


RUN_ID = pytest.StashKey[str]()
COMPARED = pytest.StashKey[list[str]]()
#: The project's slow suites (resolved paths) when ``--benchmark`` runs the project's suites.
SLOW = pytest.StashKey[list[Path]]()
PROGRESS = pytest.StashKey[SuiteProgress]()


def _pyproject(config: pytest.Config) -> Path:
    """The pyproject.toml that holds the project's ``[tool.edgebench]`` table."""
    inipath = config.inipath
    if inipath is not None and inipath.name == "pyproject.toml":
        return inipath
    return config.rootpath / "pyproject.toml"


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    """``--benchmark`` without a path: the project's suites become the command-line paths
    (so its ``testpaths``, the unit tests, are not collected)."""
    known = early_config.known_args_namespace
    if not getattr(known, "edgebench_benchmark", False) or known.file_or_dir:
        return

    try:
        suites = project_suites(_pyproject(early_config))
        early_config.stash[SLOW] = slow_suites(_pyproject(early_config))
    except ProjectConfigError as e:
        raise pytest.UsageError(f"--benchmark: {e}") from None
    args.extend(str(path) for path in suites)


def pytest_configure(config: pytest.Config) -> None:
    """One run id per pytest session, shared by pytest-xdist workers (one run folder per
    suite); the slow-suite marker; the per-suite progress (on the controller)."""
    workerinput = getattr(config, "workerinput", None)
    config.stash[RUN_ID] = (workerinput or {}).get("edgebench_run_id") or new_run_id()
    config.addinivalue_line("markers", f"{SLOW_MARKER}: cells of the project's slow suites "
                                       "([tool.edgebench] slow_suites)")
    if workerinput is None:
        config.stash[PROGRESS] = SuiteProgress(config)
        config.pluginmanager.register(config.stash[PROGRESS], "edgebench-progress")


def _suite_of(item: pytest.Item) -> str | None:
    return item.nodeid.split("::", 1)[0] if isinstance(item, CellItem) else None


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """``--benchmark`` on the project's suites leaves the slow ones out unless
    ``--edgebench-all`` or a ``-m`` expression selects cells."""
    progress = config.stash.get(PROGRESS, None)
    slow = set(config.stash.get(SLOW, []))
    if slow and not config.getoption("edgebench_all") and not config.option.markexpr:
        dropped = [i for i in items if isinstance(i, CellItem) and i.path.resolve() in slow]
        kept = [i for i in items if not (isinstance(i, CellItem) and i.path.resolve() in slow)]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept
            if progress is not None:
                progress.left_out = Counter(s for s in map(_suite_of, dropped) if s)
    if progress is not None:
        progress.selected(items, _suite_of)


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    progress = config.stash.get(PROGRESS, None)
    return progress.collection_lines() if progress is not None else []


def _names_suites(config: pytest.Config) -> bool:
    """True when a command-line path (``--benchmark``'s included) is a YAML file or a folder
    (which may hold suites)."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return False
    base = config.invocation_params.dir
    for arg in config.args:
        path = base / arg.split("::", 1)[0]
        if path.suffix in SUITE_SUFFIXES or path.is_dir():
            return True
    return False


def _compare_session_runs(config: pytest.Config) -> tuple[list[str], bool]:
    """``--edgebench-compare``: each suite run this session wrote against its baseline; the
    report's lines and whether any change is a regression."""

    store = Store(config.getoption("edgebench_results"))
    wanted, lines, regressed = config.getoption("edgebench_compare"), [], False
    every = store.runs()  # oldest first
    for run in [r for r in every if r.run_id == config.stash[RUN_ID]]:
        if wanted == "previous":
            earlier = [r for r in every if r.suite == run.suite]
            earlier = earlier[:[r.run_id for r in earlier].index(run.run_id)]
            baseline = earlier[-1] if earlier else None
        else:
            baseline = store.find(wanted)
        if baseline is None:
            lines.append(f"{run.suite}: no earlier run to compare with")
            continue
        changes = compare_runs(baseline, run, tolerance=config.getoption("edgebench_tolerance"))
        regressed |= any(c.verdict == "regression" for c in changes)
        rows = [[c.cell_id, c.metric, c.change_text(), c.interval_text(), c.p_text(),
                 c.verdict] for c in changes if c.verdict != "same"]
        lines.append(f"{baseline.suite}/{baseline.run_id} → {run.run_id}")
        lines.append(textable.render(["cell", "metric", "change", "95% interval", "p",
                                      "verdict"], rows) if rows else "no changes")
        why = machines_differ(baseline, run)
        if why:
            lines.append(f"warning: {why}")
    return lines, regressed


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if config.getoption("edgebench_compare") is None or hasattr(config, "workerinput"):
        return
    lines, regressed = _compare_session_runs(config)
    config.stash[COMPARED] = lines
    if regressed and config.getoption("edgebench_compare_fail") and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    progress = config.stash.get(PROGRESS, None)
    if progress is not None and progress.summary_lines():
        terminalreporter.section("edgebench: left out")
        for line in progress.summary_lines():
            terminalreporter.write_line(line)
    lines = config.stash.get(COMPARED, None)
    if lines:
        terminalreporter.section("edgebench compare")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist (controller side): hand the session's run id to each worker."""
    node.workerinput["edgebench_run_id"] = node.config.stash[RUN_ID]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``-n`` (no explicit ``--dist``, or ``--dist loadgroup``), deal suite cells by board
    and by model (:mod:`bench.pytest.xdist`)."""
    explicit = any(a.startswith(("--dist", "-d")) for a in config.invocation_params.args)
    dist = config.getoption("dist")
    if not _names_suites(config) or not (dist == "loadgroup" or (dist == "load" and not explicit)):
        return None
    from bench.pytest.xdist import CellScheduling

    return CellScheduling(config, log)


def _named_on_command_line(config: pytest.Config, path: Path) -> bool:
    """True when ``path`` or one of its folders was given as an argument (not via testpaths)."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return False
    base = config.invocation_params.dir
    for arg in config.args:
        target = (base / arg.split("::", 1)[0]).resolve()
        if path == target or target in path.parents:
            return True
    return False


def _is_suite(path: Path) -> bool:
    """A YAML mapping with ``models`` and ``devices`` (other YAML is left alone)."""
    try:
        data = read_yaml(path)
    except SpecError:
        return False
    return isinstance(data, dict) and "models" in data and "devices" in data


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in SUITE_SUFFIXES:
        return None
    if not _named_on_command_line(parent.config, file_path.resolve()) or not _is_suite(file_path):
        return None
    return SuiteFile.from_parent(parent, path=file_path)


class SuiteFile(pytest.File):
    """A suite file: one :class:`CellItem` per cell; owns the session and its run folder."""

    session_: Session
    _run: Run | None = None

    def collect(self) -> Iterator[CellItem]:
        config = self.config
        dirs = config.getoption("edgebench_devices_dir")
        try:
            suite = load_suite(self.path)
            self.session_ = Session(suite, Store(config.getoption("edgebench_results")),
                                    devices_dirs=[Path(d) for d in dirs] if dirs else None)
        except SpecError as e:
            raise self.CollectError(f"invalid edgebench suite\n{e}") from None
        slow = self.path.resolve() in set(config.stash.get(SLOW, []))
        for cell in self.session_.cells:
            item = CellItem.from_parent(self, name=cell.id, cell=cell)
            if slow:
                item.add_marker(SLOW_MARKER)
            yield item

    def run_for(self) -> Run:
        """This pytest session's run folder of the suite, created at the first cell; its
        manifest lists the cells selected in this session."""
        if self._run is None:
            selected = [i.cell for i in self.session.items
                        if isinstance(i, CellItem) and i.parent is self]
            self._run = self.session_.start_run(selected or None,
                                                run_id=self.config.stash[RUN_ID])
            log.info("edgebench: %s → %s", self.path, self._run.path)
        return self._run

    def run_cell(self, cell: Cell, measure: Callable[[Cell, RunRequest],
                                                     dict[str, Metric] | None] | None) -> Record:
        records = list(self.session_.run_cells(self.run_for(), [cell], measure))
        return records[-1]


def _host_timed(session: Session, cell: Cell) -> bool:
    """A cell whose runner measures on this host and can open the model in-process (LiteRT):
    timed through pytest-benchmark."""
    runner = primary_runner(session.devices[cell.device].connection.kind)
    return runner is not None and runner.open_model is not None and runner.method == "measured"


def _benchmark_measure(benchmark: Any) -> Callable[[Cell, RunRequest], dict[str, Metric] | None]:
    """A session measure hook timing ``invoke()`` in-process with ``benchmark.pedantic``."""

    def measure(cell: Cell, request: RunRequest) -> dict[str, Metric] | None:
        if request.artifact.suffix != ".tflite":
            return None  # a classical baseline: the native runner times it

        runner = primary_runner(request.device["connection"]["kind"])
        try:
            model = load_ref(runner.open_model)(load_artifact(request.artifact), request.options,
                                                str(request.artifact))
            model.set_inputs(sample_inputs(request.dataset, model.in_specs, 1, request.seed)[0])
            benchmark.pedantic(model.invoke, rounds=request.repeats,
                               warmup_rounds=request.warmup, iterations=1)
        except (RuntimeError, ValueError) as e:
            raise CellFailure("runtime", f"measure: {e}") from None
        stats = getattr(benchmark, "stats", None)
        if stats is None:  # --benchmark-disable (or xdist): let the runner time it
            return None
        return latency_stats([round(s * 1e9) for s in stats.stats.data], runner.method)

    return measure


def _extra_info(record: Record) -> dict[str, Any]:
    info: dict[str, Any] = {"cell": record.cell_id, "run_id": record.run_id,
                            "status": record.status}
    info.update({name: m.value for name, m in record.metrics.items()})
    info["units"] = {name: m.unit for name, m in record.metrics.items()}
    info["methods"] = {name: m.method for name, m in record.metrics.items()}
    return info


class CellItem(pytest.Function):
    """One cell of a suite; host LiteRT cells take the ``benchmark`` fixture."""

    def __init__(self, *, cell: Cell, **kwargs: Any) -> None:
        parent: SuiteFile = kwargs["parent"]
        self.cell = cell
        if _host_timed(parent.session_, cell):
            def run(benchmark: Any) -> None:
                self.check(parent.run_cell(cell, _benchmark_measure(benchmark)), benchmark)
        else:
            def run() -> None:
                self.check(parent.run_cell(cell, None), None)
        run.__name__ = run.__qualname__ = cell.id
        super().__init__(callobj=run, **kwargs)
        if _host_timed(parent.session_, cell):  # a failed or skipped cell is not timed
            self.add_marker(pytest.mark.filterwarnings(
                "ignore:Benchmark fixture was not used"))

    def check(self, record: Record, benchmark: Any) -> None:
        """Skip, fail, xfail or pass the item from the cell's verdict
        (:mod:`bench.results.expected`)."""
        if benchmark is not None and getattr(benchmark, "stats", None) is not None:
            benchmark.extra_info.update(_extra_info(record))
        error = record.error or {}
        v = verdict(record)
        if v.outcome in ("unsupported", "skipped"):
            kind = "unsupported: " if v.outcome == "unsupported" else ""
            pytest.skip(f"{record.cell_id}: {kind}{error.get('message', 'skipped')}")
        if v.outcome == "failed":
            pytest.fail(f"{record.cell_id} failed ({error.get('kind', '?')}): "
                        f"{error.get('message', '')}", pytrace=False)
        if v.outcome == "miss":
            pytest.fail(f"{record.cell_id}: constraint failed: {', '.join(v.unexpected)}\n\n"
                        f"{render_validation(record)}", pytrace=False)
        if v.outcome == "expected miss":
            pytest.xfail(f"{record.cell_id}: {v.reason()}")
        if v.outcome == "unexpected pass":  # an xfail mark added during the call: XPASS
            self.add_marker(pytest.mark.xfail(reason=f"{record.cell_id}: {v.reason()}",
                                              strict=False))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, self.cell.id
