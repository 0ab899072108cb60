"""pytest-xdist scheduling of suite cells (``pytest suites/x.yaml -n 2``).

Cells are dealt to workers in groups: every cell on an attached board (a serial port takes one
cell at a time) goes to one worker, and every other cell of a model to one worker, so its build
is made once and its reference variant's record is at hand for deltas and constraints. Other
test items are dealt one by one, as with ``--dist load``. Imported only when xdist is active.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

from bench.devices.connections import primary_runner
from bench.devices.device import find_device, search_dirs
from bench.suite.spec import SUITE_SUFFIXES


class CellScheduling(LoadScopeScheduling):
    """LoadScope scheduling whose scope is a cell's board or its suite's model."""

    def __init__(self, config: pytest.Config, log: object | None = None) -> None:
        super().__init__(config, log)
        dirs = config.getoption("edgebench_devices_dir")
        self._extra = tuple(Path(d) for d in dirs) if dirs else ()
        self._root = config.rootpath

    def _split_scope(self, nodeid: str) -> str:
        path, sep, cell = nodeid.partition("::")
        if not sep or Path(path).suffix not in SUITE_SUFFIXES or "@" not in cell or "/" not in cell:
            return nodeid
        model, device = cell.split("/", 1)[0], cell.rsplit("@", 1)[1]
        board = self._board(path, device)
        return f"board:{board}" if board else f"{path}::{model}"

    @cache  # noqa: B019 - one scheduler per session; a few (path, device) pairs
    def _board(self, path: str, device_id: str) -> str | None:
        """The resource an exclusive device's cells hold one at a time (a serial port), None
        for any other device."""
        try:
            device = find_device(device_id, search_dirs(list(self._extra), self._root / path))
        except Exception:  # noqa: BLE001 - the worker reports a bad device; group by model here
            return None
        runner = primary_runner(device.connection.kind)
        return None if runner is None else runner.exclusive(device.options)
