"""What ``pytest --benchmark`` says on the terminal besides pytest's own dots: each suite's cell
count when collection ends, a line as each suite finishes (its time and outcomes), and the slow
suites it left out with the command that runs them."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

#: The marker on cells of the project's slow suites (``[tool.edgebench] slow_suites``).
SLOW_MARKER = "edgebench_slow"


def outcome(report: pytest.TestReport) -> str | None:
    """The pytest outcome a report settles (None: not yet)."""
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.failed:
        return "error" if report.when != "call" else "failed"
    if report.skipped:
        return "skipped"
    return "passed" if report.when == "call" else None


@dataclass(eq=False)  # a registered pytest plugin: hashed by identity
class SuiteProgress:
    """Per-suite tallies, fed by the controller's reports (pytest-xdist workers' included);
    registered as a pytest plugin, it writes a suite's line when its last cell is done."""

    config: Any
    total: Counter[str] = field(default_factory=Counter)  # suite path → cells selected
    left_out: Counter[str] = field(default_factory=Counter)  # suite path → cells deselected
    done: Counter[str] = field(default_factory=Counter)
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    settled: dict[str, str] = field(default_factory=dict)  # nodeid → outcome

    def selected(self, items: list[pytest.Item], suite_of: Any) -> None:
        self.total = Counter(s for s in map(suite_of, items) if s is not None)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        line = self.report(report)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if line and reporter is not None:
            reporter.ensure_newline()
            reporter.write_line(line)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """Under pytest-xdist the workers collect: the first one's cells are the totals."""
        if not self.total:
            self.total = Counter(i.split("::", 1)[0] for i in ids
                                 if i.split("::", 1)[0].endswith((".yaml", ".yml")))

    def collection_lines(self) -> list[str]:
        lines = [f"edgebench: {path}: {n} cells" for path, n in self.total.items()]
        lines += [f"edgebench: {path}: {n} cells left out (slow suite)"
                  for path, n in self.left_out.items()]
        return lines

    def report(self, report: pytest.TestReport) -> str | None:
        """Account one report; the suite's closing line when this was its last cell."""
        suite = report.nodeid.split("::", 1)[0]
        if suite not in self.total:
            return None
        self.started.setdefault(suite, time.monotonic())
        settled = outcome(report)
        if settled is not None and report.nodeid not in self.settled:
            self.settled[report.nodeid] = settled
        if report.when != "teardown":
            return None
        result = self.settled.get(report.nodeid, "error" if report.failed else "passed")
        self.outcomes.setdefault(suite, Counter())[result] += 1
        self.done[suite] += 1
        if self.done[suite] != self.total[suite]:
            return None
        took = time.monotonic() - self.started[suite]
        counts = ", ".join(f"{n} {what}" for what, n in sorted(self.outcomes[suite].items()))
        return f"edgebench: {suite}: {self.total[suite]} cells in {_duration(took)} ({counts})"

    def summary_lines(self) -> list[str]:
        if not self.left_out:
            return []
        listed = ", ".join(f"{path} ({n} cells)" for path, n in self.left_out.items())
        return [f"left out the slow suites ([tool.edgebench] slow_suites): {listed}",
                "run everything with `pytest --benchmark --edgebench-all`, only the slow suites "
                f"with `pytest --benchmark -m {SLOW_MARKER}`, or one by naming its file "
                "(`pytest --benchmark <suite.yaml>`)"]


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"
