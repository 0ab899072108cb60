"""How ``make test`` deals the test modules to its pytest-xdist workers (``-n 2 --dist
loadgroup -m "not realtime"``; the ``realtime`` ones then run in one process): a module at a
time, so a module's shared fixtures (trained models, Chromium and a Streamlit server, a Ray
cluster) are made by one worker only; the modules of one of :data:`GROUPS` on one worker, one
after the other; the longest first, so neither worker is left with a long module at the end.

(pytest-xdist's own ``xdist_group`` marks do not group under pytest 9: the group is appended to
a node id pytest no longer lets a plugin change.)
"""

from __future__ import annotations

from typing import Any

import pytest

#: Modules that must run on one worker: Ray's (each starts Ray on this machine). The emulated
#: boards' modules need not: test_qemu, dealt second, builds the session's TFLite Micro library
#: (``firmware_cache``, locked) while the front door trains, which then finds it built.
GROUPS = {"test_listening": "ray", "test_ray_cluster": "ray", "test_ray_local": "ray"}
#: Modules whose virtual boards and power monitors keep real time (a window calibrated on the
#: host clock, a sample stream at 1 kHz): under ``make test`` they run after the parallel part,
#: on their own (``-m realtime``), since the other worker's bursts starve them.
REALTIME = ("test_board_peer", "test_energy_bench", "test_monitors", "test_ray_cluster",
            "test_serial")
#: The longest modules (cold, on two cores: ``pytest --durations``), dealt first.
FIRST = ("test_front_door", "test_qemu", "test_listening", "test_ray_cluster", "test_ray_local",
         "test_estimate_calibration", "test_frameworks", "test_session", "test_distill",
         "test_executor", "test_stream", "test_leaderboard_browser", "test_pytest_plugin")


def module_of(nodeid: str) -> str:
    """``tests/test_x.py::test_y[z]`` → ``test_x``."""
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")


def mark_realtime(items: list[pytest.Item]) -> None:
    """Mark the tests of :data:`REALTIME`'s modules ``realtime``."""
    for item in items:
        if module_of(item.nodeid) in REALTIME:
            item.add_marker(pytest.mark.realtime)


def first_the_longest(items: list[pytest.Item]) -> None:
    """Reorder ``items`` in place: :data:`FIRST`'s modules first, in that order."""
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(module_of(item.nodeid), len(FIRST)))  # stable


def scheduler(config: pytest.Config, log: Any) -> Any:
    """A scheduler dealing whole modules (or :data:`GROUPS`) in collection order."""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = module_of(nodeid)
            return GROUPS.get(module, module)

    config.option.loadscopereorder = False  # collection order: the longest first
    return ModuleScheduling(config, log)
