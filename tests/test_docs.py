"""README.md (and the docs it links) stay in step with the registries and the command line:
every registered builder, data set, step, runner, connection kind, metric and command is
documented, and every one a README table or command names exists."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from bench import registry
from bench.cli import parser
from bench.devices.connections import runners_by_kind
from bench.results.metrics import UNITS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
LINKED = [ROOT / m for m in re.findall(r"\]\((docs/[^)#]+\.md)\)", README)]
DOCS = "\n".join([README, *(p.read_text() for p in LINKED if p.is_file())])


def quoted(name: str) -> bool:
    return f"`{name}`" in DOCS


def table_column(header: str, column: int = 0, text: str = README) -> list[str]:
    """The backquoted names in ``column`` of the README table whose header row starts with
    ``| <header> |``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    names = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cell = line.strip("|").split("|")[column]
        names += re.findall(r"`([^`]+)`", cell)
    return names


def commands() -> dict[str, list[str]]:
    """Top-level command → its sub-commands (empty when it has none)."""
    def sub(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        actions = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        return dict(actions[0].choices) if actions else {}

    return {name: sorted(sub(p)) for name, p in sub(parser()).items()}


def test_linked_docs_exist() -> None:
    assert LINKED and all(p.is_file() for p in LINKED), LINKED


@pytest.mark.parametrize("reg", [registry.models, registry.datasets, registry.variant_steps,
                                 registry.runners, registry.executors], ids=lambda r: r.kind)
def test_every_registered_plugin_is_documented(reg: registry.Registry) -> None:
    missing = [name for name in reg.names() if not quoted(name)]
    assert not missing, f"{reg.kind}s missing from README.md: {missing}"


def test_every_metric_is_documented() -> None:
    missing = [name for name in UNITS if not quoted(name)]
    assert not missing, f"metrics missing from README.md: {missing}"


def test_the_tables_name_only_what_is_registered() -> None:
    assert set(table_column("builder")) <= set(registry.models.names())
    assert set(table_column("data set")) <= set(registry.datasets.names())
    steps = set(registry.variant_steps.names())
    assert set(table_column("step")) <= steps and table_column("step")


def test_connection_kinds_table_matches_the_runner_registry() -> None:
    documented = set(zip(table_column("connection kind"), table_column("connection kind", 1),
                         strict=True))
    registered = {(kind, r.name) for kind, runners in runners_by_kind().items()
                  for r in runners}
    assert documented == registered


def test_every_command_is_documented_and_every_documented_command_exists() -> None:
    known = commands()
    for name, subs in known.items():
        lines = [line for line in README.splitlines() if f"edgebench {name}" in line]
        assert lines, f"`edgebench {name}` is missing from README.md"
        for s in subs:
            assert any(re.search(rf"\b{re.escape(s)}\b", line) for line in lines), (
                f"`edgebench {name} {s}` is missing from README.md")
    named = set(re.findall(r"`edgebench ([a-z][a-z-]*)", README))
    assert named - set(known) == set(), "README names commands that do not exist"


def test_architecture_lists_every_plugin_axis_with_its_base_type() -> None:
    """ARCHITECTURE.md's plugin axes table names each registry of :mod:`bench.registry`, its
    entry point group, and a base type that exists; each registered built-in is of that type."""
    text = (ROOT / "ARCHITECTURE.md").read_text().split("## Plugin axes", 1)[1].split("\n## ")[0]
    rows = [[c.strip().strip("`") for c in r.split("|")[1:-1]] for r in text.splitlines()
            if r.startswith("| ") and "`bench.registry." in r]
    axes = {name: reg for name, reg in vars(registry).items() if isinstance(reg, registry.Registry)}
    assert sorted(r[1].removeprefix("bench.registry.") for r in rows) == sorted(axes)
    for _, reg_name, group, base in rows:
        reg = axes[reg_name.removeprefix("bench.registry.")]
        assert group == reg.entry_point_group
        base_type = registry.load_ref(base)
        assert isinstance(base_type, type), base
        if not getattr(base_type, "_is_protocol", False):
            for name in reg.names():
                assert isinstance(reg.get(name), base_type), (reg.kind, name, base)
