"""Suite → cells: the cartesian product of models × variants × devices, filtered by
include/exclude rules, in a stable order with stable ids (``model/variant@device``)."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from bench.suite.spec import MatrixRule, Suite


@dataclass(frozen=True)
class Cell:
    model: str
    variant: str
    device: str

    @property
    def id(self) -> str:
        return f"{self.model}/{self.variant}@{self.device}"


def _matches(rule: MatrixRule, cell: Cell) -> bool:
    return (fnmatchcase(cell.model, rule.model) and fnmatchcase(cell.variant, rule.variant)
            and fnmatchcase(cell.device, rule.device))


def plan(suite: Suite) -> list[Cell]:
    """The cells a suite runs. A cell is kept when it matches an ``include`` rule (or there are
    none) and no ``exclude`` rule. The reference variant of each model runs first, so that
    deltas against it can be computed as soon as the other variants finish."""
    variants = sorted(suite.variants, key=lambda v: v.id != suite.settings.reference_variant)
    cells = []
    for m in suite.models:
        for v in variants:
            for d in suite.devices:
                cell = Cell(m.id, v.id, d)
                if suite.include and not any(_matches(r, cell) for r in suite.include):
                    continue
                if any(_matches(r, cell) for r in suite.exclude):
                    continue
                cells.append(cell)
    return cells
