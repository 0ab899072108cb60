"""Hostile or careless suite and device files get a short, clear error naming the file and the
field; nothing expands without bound, and numbers are numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench.devices.device import load_device
from bench.errors import MAX_DEPTH, SpecError, parse_yaml, read_yaml
from bench.results.store import Store
from bench.run.session import Session
from bench.suite.spec import load_suite

ROOT = Path(__file__).resolve().parents[1]
SUITE = {"name": "s", "models": [{"id": "m", "builder": "har_mlp",
                                  "dataset": {"name": "har_synthetic"}}],
         "devices": ["host-litert"]}
BOARD = {"id": "b", "core": "cortex-m4f", "clock_mhz": 80, "runtime": "tflm",
         "memory": {"flash_kb": 1024, "ram_kb": 256}, "power": {"active_mw": 20},
         "connection": {"kind": "estimate"}}


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """"Billion laughs": each level an anchor of ``width`` aliases of the one before."""
    lines = ['a0: &a0 "lol"']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def error_of(load, path: Path) -> SpecError:  # noqa: ANN001 - load_suite or load_device
    with pytest.raises(SpecError) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(str(path)) and len(message) < 2000, message[:3000]
    return info.value


@pytest.mark.parametrize("load", [load_suite, load_device], ids=["suite", "device"])
def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path, load) -> None:  # noqa: ANN001
    path = tmp_path / "b.yaml"
    path.write_text(alias_bomb())
    assert len(path.read_bytes()) < 1000
    error = error_of(load, path)
    assert "through its aliases (limit 100,000)" in str(error)


def test_anchors_within_bounds_still_work() -> None:
    assert parse_yaml("a: &x {k: 1}\nb: *x\n") == {"a": {"k": 1}, "b": {"k": 1}}


def test_a_self_referencing_alias_is_refused() -> None:
    with pytest.raises(yaml.YAMLError, match="refers to the node that contains it"):
        parse_yaml("a: &x [1, *x]\n")


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 100_000])
def test_deep_nesting_is_a_clear_error(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("[" * depth + "]" * depth)
    error = error_of(load_suite, path)
    assert "nested deeper than 64 levels" in str(error) or "nested too deeply" in str(error)


def test_encodings(tmp_path: Path) -> None:
    utf16 = tmp_path / "utf16.yaml"
    utf16.write_bytes(yaml.safe_dump(SUITE).encode("utf-16"))
    assert "UTF-16 byte-order mark" in str(error_of(load_suite, utf16))
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"name: s\ndescription: caf\xe9\n")
    assert "byte 0xe9 at line 2 is not UTF-8" in str(error_of(load_suite, latin1))
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfname: s\n")
    assert read_yaml(bom) == {"name": "s"}


def test_an_oversized_file_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * (2 << 20))
    assert "larger than 1024 KB" in str(error_of(load_suite, path))


def write(tmp_path: Path, data: dict, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def problems(error: SpecError) -> dict[str, str]:
    return dict(error.problems)


def test_a_huge_id_is_refused_and_not_echoed_whole(tmp_path: Path) -> None:
    long_id = "m" * 200_000
    suite = {**SUITE, "models": [{**SUITE["models"][0], "id": long_id}]}
    found = problems(error_of(load_suite, write(tmp_path, suite)))
    assert "at most 100 characters" in found["models[0].id"]


@pytest.mark.parametrize("device_id", ["../host-litert", "a/b", "/etc/passwd", ".."])
def test_device_ids_are_single_path_safe_names(tmp_path: Path, device_id: str) -> None:
    found = problems(error_of(load_suite, write(tmp_path, {**SUITE, "devices": [device_id]})))
    assert "devices[0]" in found and "pattern" in found["devices[0]"]


@pytest.mark.parametrize(("settings", "field"), [
    ({"timeout_s": float("inf")}, "settings.timeout_s"),
    ({"timeout_s": float("nan")}, "settings.timeout_s"),
    ({"repeats": True}, "settings.repeats"),
    ({"warmup": "3"}, "settings.warmup"),
    ({"inferences_per_s": float("inf")}, "settings.inferences_per_s"),
])
def test_suite_numbers_refuse_nan_infinity_booleans_and_strings(
        tmp_path: Path, settings: dict, field: str) -> None:
    found = problems(error_of(load_suite, write(tmp_path, {**SUITE, "settings": settings})))
    assert field in found, found


@pytest.mark.parametrize(("change", "field"), [
    ({"clock_mhz": float("inf")}, "clock_mhz"),
    ({"power": {"active_mw": float("inf")}}, "power.active_mw"),
    ({"memory": {"flash_kb": True, "ram_kb": 256}}, "memory.flash_kb"),
    ({"connection": {"kind": "serial", "port": "/dev/null", "baud": float("nan")}},
     "connection.baud"),
])
def test_device_numbers_refuse_nan_infinity_and_booleans(tmp_path: Path, change: dict,
                                                         field: str) -> None:
    found = problems(error_of(load_device, write(tmp_path, {**BOARD, **change}, "b.yaml")))
    assert field in found, found


def test_a_suite_that_plans_no_cell_is_an_error(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, {**SUITE, "exclude": [{"model": "*"}]}))
    with pytest.raises(SpecError, match="exclude: no cell left to run"):
        Session(suite, Store(tmp_path / "results"), devices_dirs=[ROOT / "devices"])
