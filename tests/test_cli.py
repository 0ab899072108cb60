"""The ``edgebench`` command line as a whole: ``python -m bench``, every command, shared flags."""

from __future__ import annotations

import argparse
import subprocess
import sys

from bench.cli import parser
from tests.conftest import ROOT

COMMANDS = {"run", "list", "show", "results", "schema", "devices", "export", "stream", "inspect",
            "estimate", "calibrate", "board", "leaderboard"}


def _parsers(p: argparse.ArgumentParser, name: str = "edgebench"):  # noqa: ANN202
    """Every (sub-)parser with its command line prefix."""
    yield name, p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, sp in action.choices.items():
                yield from _parsers(sp, f"{name} {sub}")


def test_python_m_bench_lists_every_command_without_tensorflow() -> None:
    code = ("import sys; from bench.cli import parser; parser();"
            "print(sorted(m for m in ('tensorflow', 'tf_keras', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
    helped = subprocess.run([sys.executable, "-m", "bench", "--help"], capture_output=True,
                            text=True, cwd=ROOT, timeout=60)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: edgebench")
    assert all(name in helped.stdout for name in COMMANDS)
    assert subprocess.run([sys.executable, "-m", "bench", "nope"], capture_output=True,
                          cwd=ROOT, timeout=60).returncode == 2


def test_shared_flags_are_declared_alike() -> None:
    """``--results``, ``--devices-dir`` and ``--cache`` mean the same wherever they appear
    (``calibrate --results`` is a CSV of published results, not the result store)."""
    seen: dict[str, set[tuple[object, ...]]] = {}
    commands = set()
    for name, p in _parsers(parser()):
        commands.add(name.split(" ")[1] if " " in name else "")
        for action in p._actions:
            flag = next((o for o in action.option_strings if o.startswith("--")), None)
            if flag in ("--results", "--devices-dir", "--cache") and name != "edgebench calibrate":
                seen.setdefault(flag, set()).add(
                    (action.default, action.type, type(action), action.help))
    assert commands >= COMMANDS
    assert {flag: len(kinds) for flag, kinds in seen.items()} == {
        "--results": 1, "--devices-dir": 1, "--cache": 1}
