"""Firmware export: C array texts, cell lookup in the store and cache, the CLI, and g++."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.artifacts.cache import Cache
from bench.artifacts.export import c_identifier, export_c, find_artifact
from bench.cli import main
from bench.results.metrics import Metric
from bench.results.record import Record
from bench.results.resolve import resolve
from bench.results.store import Store
from tests.tflite_models import MLPERF

FAKE = b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 3 + b"\x07"

MAIN_CC = r"""
#include <cstdint>
#include <cstdio>
#include <cstring>
#include "model_data.h"

int main() {
  if (NAME_len != EXPECTED_LEN) { std::printf("len %u\n", NAME_len); return 1; }
  if (std::memcmp(NAME + 4, "TFL3", 4) != 0) { std::printf("identifier\n"); return 2; }
  if (reinterpret_cast<std::uintptr_t>(NAME) % 16 != 0) { std::printf("alignment\n"); return 3; }
  if (NAME[NAME_len - 1] != LAST_BYTE) { std::printf("last byte\n"); return 4; }
  std::printf("ok %u\n", NAME_len);
  return 0;
}
"""


def test_export_c_texts():
    header, source = export_c(FAKE, "g_model", 4096, "x.tflite")
    assert "#ifndef EDGEBENCH_G_MODEL_MODEL_DATA_H_" in header and header.rstrip().endswith(
        "#endif  // EDGEBENCH_G_MODEL_MODEL_DATA_H_")
    assert "extern const unsigned char g_model[];" in header
    assert "extern const unsigned int g_model_len;" in header
    assert "4096 bytes" in header and "g_model_arena_bytes = 4096;" in header
    assert "alignas(16) const unsigned char g_model[] = {" in source
    assert f"const unsigned int g_model_len = {len(FAKE)};" in source
    assert source.count("0x") == len(FAKE)
    first = source.split("{\n", 1)[1].splitlines()[0]
    assert first == "  0x1c, 0x00, 0x00, 0x00, 0x54, 0x46, 0x4c, 0x33, 0x00, 0x01, 0x02, 0x03,"
    header, _ = export_c(FAKE, "g_model", None)
    assert "not measured" in header and "arena_bytes" not in header


def test_export_matches_xxd(tmp_path: Path):
    if shutil.which("xxd") is None:
        pytest.skip("xxd not installed")
    path = tmp_path / "m.tflite"
    path.write_bytes(FAKE)
    xxd = subprocess.run(["xxd", "-i", path.name], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout
    _, source = export_c(FAKE, "m_tflite", None)
    body = lambda text: text.split("{\n", 1)[1].split("\n}")[0].strip()  # noqa: E731
    assert body(source) == body(xxd)


def test_export_rejects_bad_input():
    with pytest.raises(ValueError, match="TFL3"):
        export_c(b"\x00" * 16, "g_model", None)
    with pytest.raises(ValueError, match="not a C identifier"):
        export_c(FAKE, "har-mlp", None)
    assert c_identifier("har_mlp/int8@tflm-reference") == "har_mlp_int8_tflm_reference"
    assert c_identifier("8bit") == "m_8bit"


def test_compiles_with_host_compiler(tmp_path: Path):
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("no g++")
    model = MLPERF / "kws_ref_model_int8.tflite"  # a real model when the shared folder is there
    if not model.is_file():
        model = tmp_path / "fake.tflite"
        model.write_bytes(FAKE)
    data = model.read_bytes()
    assert main(["export", str(model), "--format", "c", "--out", str(tmp_path),
                 "--name", "g_model", "--arena", "2048"]) == 0
    (tmp_path / "main.cc").write_text(MAIN_CC.replace("NAME", "g_model")
                                      .replace("EXPECTED_LEN", f"{len(data)}u")
                                      .replace("LAST_BYTE", str(data[-1])))
    flags = ["-std=c++17", "-Wall", "-Wextra", "-Werror"]
    for unit in ("model_data.cc", "main.cc"):
        subprocess.run([gxx, *flags, "-c", unit], cwd=tmp_path, check=True)
    subprocess.run([gxx, "model_data.o", "main.o", "-o", "check"], cwd=tmp_path, check=True)
    run = subprocess.run(["./check"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
    assert run.stdout.strip() == f"ok {len(data)}"


def _record(cell: str, sha: str | None, arena: float | None, status: str = "ok") -> Record:
    model_variant, _, device = cell.partition("@")
    model, variant = model_variant.split("/")
    metrics = {"model_size": Metric(float(len(FAKE)), "B", "build")}
    if arena is not None:
        metrics["arena_used"] = Metric(arena, "B", "tflm")
    return Record(suite="s", run_id="r", cell_id=cell, model=model, variant=variant,
                  device=device, runner="tflm" if "tflm" in device else "litert",
                  status=status, artifact_sha256=sha, metrics=metrics,
                  error=None if status == "ok" else {"kind": "build", "message": "boom"})


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Store, Cache]:
    cache = Cache(tmp_path / "cache")
    artifact = cache.artifact("k" * 64)
    artifact.parent.mkdir(parents=True)
    artifact.write_bytes(FAKE)
    (artifact.parent / "other.tflite").write_bytes(FAKE + b"x")
    sha = hashlib.sha256(FAKE).hexdigest()
    store = Store(tmp_path / "results")
    run = store.create("s", {})
    run.append(_record("har_mlp/int8@host-litert", sha, None))
    run.append(_record("har_mlp/int8@tflm-reference", sha, 3456.0))
    run.append(_record("har_mlp/bad@host-litert", None, None, status="failed"))
    return store, cache


def test_resolve_cell_in_latest_run(stored):
    store, cache = stored
    found = resolve("har_mlp/int8@host-litert", store, cache)
    assert found.tflite == FAKE and found.arena_bytes == 3456  # from the tflm record
    assert found.name == "har_mlp_int8" and "har_mlp/int8@host-litert" in found.source
    assert resolve("har_mlp/int8", store, cache).arena_bytes == 3456
    with pytest.raises(LookupError, match="no cell"):
        resolve("har_mlp/int9@host-litert", store, cache)
    with pytest.raises(LookupError, match="boom"):
        resolve("har_mlp/bad@host-litert", store, cache)
    with pytest.raises(LookupError, match="no artifact"):
        find_artifact("0" * 64, cache)


def test_cli_export_cell(stored, tmp_path: Path, capsys):
    store, cache = stored
    out = tmp_path / "fw"
    assert main(["export", "har_mlp/int8@tflm-reference", "--out", str(out), "--results",
                 str(store.root), "--cache", str(cache.root)]) == 0
    header = (out / "model_data.h").read_text()
    assert "har_mlp_int8_arena_bytes = 3456;" in header
    assert f"har_mlp_int8_len = {len(FAKE)};" in (out / "model_data.cc").read_text()
    assert "arena 3456 B" in capsys.readouterr().out
    assert main(["export", "nothing/here@x", "--results", str(store.root), "--cache",
                 str(cache.root)]) == 2
    assert main(["export", str(tmp_path / "missing.tflite")]) == 2
    assert main(["export", "har_mlp/int8@tflm-reference", "--name", "bad-name", "--out",
                 str(out), "--results", str(store.root), "--cache", str(cache.root)]) == 2
