"""Which packages may import which: the layers of ARCHITECTURE.md, read from the AST.

Every import counts, imports inside functions included (only ``if TYPE_CHECKING:`` blocks are
left out: they never run). A package may import its own modules and those of lower layers only;
two packages of one layer do not import each other.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.test_import_cycles import ROOT, import_graph

#: Lowest first. Keep in step with ARCHITECTURE.md's "Layers" table (a test checks it).
LAYERS: list[tuple[str, ...]] = [
    ("bench.errors", "bench.textable"),
    ("bench.registry",),
    ("bench.worker",),
    ("bench.artifacts",),
    ("bench.results",),
    ("bench.datasets",),
    ("bench.models",),
    ("bench.variants",),
    ("bench.suite",),
    ("bench.devices", "bench.board"),
    ("bench.estimate", "bench.firmware"),
    ("bench.runners",),
    ("bench.run",),
    ("bench.virtual", "bench.pytest", "leaderboard"),
    ("bench.cli",),
    ("bench", "bench.__main__"),
]

#: Imports of the project's own modules made inside functions. Most keep ``import bench`` and
#: a command's start light (TensorFlow, pandas); the number may only go down.
LOCAL_IMPORTS_CEILING = 66


def package_of(module: str) -> str:
    """The layer entry a module belongs to (``bench.run.cellwork`` → ``bench.run``)."""
    if module.startswith("leaderboard"):
        return "leaderboard"
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else parts[0]


def layer_of() -> dict[str, int]:
    return {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


def violations(graph: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    out = []
    for module, targets in sorted(graph.items()):
        here = package_of(module)
        for target in sorted(targets):
            there = package_of(target)
            if there != here and layers[there] >= layers[here]:
                out.append(f"{module} -> {target} ({here}, layer {layers[here]}, may not "
                           f"import {there}, layer {layers[there]})")
    return out


def test_every_package_has_a_layer() -> None:
    packages = {package_of(m) for m in import_graph()}
    assert packages - set(layer_of()) == set(), "add the new package to LAYERS"
    assert set(layer_of()) - packages == set(), "a layer names a package that is gone"


def test_the_check_catches_an_upward_import() -> None:
    layers = layer_of()
    assert violations({"bench.runners.litert": {"bench.run.stream"}}, layers)
    assert violations({"bench.devices.device": {"bench.board.link"}}, layers)  # same layer
    assert not violations({"bench.run.stream": {"bench.runners.replay"}}, layers)


def test_no_import_runs_up_a_layer() -> None:
    found = violations(import_graph(), layer_of())
    assert not found, "imports against the layers:\n" + "\n".join(found)


def local_imports() -> list[str]:
    """``path:line`` of every import of the project's own modules inside a function."""
    found = []
    for pkg in ("bench", "leaderboard"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            tree = ast.parse(path.read_text())
            for fn in ast.walk(tree):
                if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(fn):
                    name = (node.module if isinstance(node, ast.ImportFrom) else
                            node.names[0].name if isinstance(node, ast.Import) else None)
                    if name and name.split(".")[0] in ("bench", "leaderboard"):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return sorted(set(found))


def test_function_local_imports_of_the_project_do_not_grow() -> None:
    found = local_imports()
    assert len(found) <= LOCAL_IMPORTS_CEILING, (
        f"{len(found)} function-local imports of bench/leaderboard modules (ceiling "
        f"{LOCAL_IMPORTS_CEILING}): import at module level unless the module is heavy")


def test_architecture_lists_the_layers() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    table = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = [r for r in table.splitlines() if re.match(r"\|\s*\d+\s*\|", r)]
    documented = [tuple(re.findall(r"`([\w.]+)`", row.split("|")[2])) for row in rows]
    assert documented == list(reversed(LAYERS)), "ARCHITECTURE.md's Layers table and LAYERS differ"


def test_architecture_names_every_package_folder() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    folders = sorted(p.parent.relative_to(ROOT).as_posix() + "/"
                     for p in (ROOT / "bench").rglob("__init__.py"))
    missing = [f for f in folders if f"`{f}`" not in text and "templates" not in f]
    assert not missing, f"ARCHITECTURE.md does not describe {missing}"

