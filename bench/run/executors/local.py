"""Executors decide where a plan of cells runs; the session decides what runs and records it.

An executor takes the cells to run and yields one :class:`~bench.run.cellwork.Outcome` per cell, in
any order, as each finishes. Executors are plugins (``edgebench.executors`` entry points, see
:data:`bench.registry.executors`); ``local`` runs everything here, one build and one cell at a
time, in worker subprocesses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from itertools import groupby
from typing import Protocol

from bench.run.build import plan_build
from bench.run.cellwork import CellFailure, CellWork, MeasureHook, Outcome, now
from bench.suite.matrix import Cell

log = logging.getLogger(__name__)


class Executor(Protocol):
    """Runs cells somewhere; yields each cell's outcome once (any order)."""

    name: str

    def outcomes(self, work: CellWork, cells: list[Cell],
                 measure: MeasureHook | None = None) -> Iterator[Outcome]: ...


class LocalExecutor:
    """This machine, one build and one cell at a time: each (model, variant) is built once,
    then its cells run on their devices in plan order."""

    name = "local"

    def outcomes(self, work: CellWork, cells: list[Cell],
                 measure: MeasureHook | None = None) -> Iterator[Outcome]:
        models = {m.id: m for m in work.suite.models}
        variants = {v.id: v for v in work.suite.variants}
        for (model_id, variant_id), group in groupby(cells, key=lambda c: (c.model, c.variant)):
            group = list(group)
            started = now()
            try:
                build = plan_build(models[model_id], variants[variant_id], models)
                artifact = work.artifact(build)
            except CellFailure as e:
                yield from (work.failed(cell, started, e) for cell in group)
                continue
            except (OSError, ValueError) as e:
                yield from (work.failed(cell, started, CellFailure("artifact", str(e)))
                            for cell in group)
                continue
            for cell in group:
                try:
                    yield work.run(cell, build, artifact, measure)
                except Exception as e:  # a harness bug in one cell must not end the suite
                    log.exception("cell %s", cell.id)
                    yield work.failed(cell, started, CellFailure(
                        "internal", f"{type(e).__name__}: {e}"), artifact.metrics)


LOCAL = LocalExecutor()
