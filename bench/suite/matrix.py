"""Suite → cells: the cartesian product of models × variants × devices, filtered by
include/exclude rules, in a stable order with stable ids (``model/variant@device``)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.suite.spec import MatrixRule, Suite


@dataclass(frozen=True)
class Cell:
    model: str
    variant: str
    device: str

    @property
    def id(self) -> str:
        return f"{self.model}/{self.variant}@{self.device}"


def matching(rule: MatrixRule, cell: Cell) -> bool:
    """Whether the rule's model, variant and device globs all match the cell."""
    return rule.matches(cell.model, cell.variant, cell.device)


def plan(suite: Suite) -> list[Cell]:
    """The cells a suite runs. A cell is kept when it matches an ``include`` rule (or there are
    none) and no ``exclude`` rule. The reference variant of each model runs first, so that
    deltas against it can be computed as soon as the other variants finish."""
    variants = sorted(suite.variants, key=lambda v: v.id != suite.settings.reference_variant)
    cells = []
    for m in suite.models:
        for v in variants:
            for d in suite.devices:
                if suite.keeps(m.id, v.id, d):
                    cells.append(Cell(m.id, v.id, d))
    return cells


def expected_misses(suite: Suite, cell: Cell) -> dict[str, str]:
    """The checks ``cell`` is expected to miss (``expect:``) and why; rules naming one check
    for one cell have their reasons joined."""
    out: dict[str, str] = {}
    for rule in suite.expect:
        if matching(rule, cell):
            out[rule.fails] = f"{out[rule.fails]}; {rule.why}" if rule.fails in out else rule.why
    return out
