"""Bounded workers: each worker process runs under ``settings.memory_mb``; going over fails the
call as ``out of memory (limit N MB)``, and a model whose declared tensors cannot fit is
refused from its flatbuffer before any interpreter allocates them (the reported probe: a
.tflite declaring an input of shape [1, 2^31 - 1])."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from bench import worker
from bench.artifacts import tflite_info
from bench.results.store import Store
from bench.run.session import run_suite
from bench.runners.base import RunRequest
from bench.suite.spec import load_suite
from tests.conftest import ROOT

pytestmark = pytest.mark.usefixtures("tests_importable_in_workers")


DEVICES = ROOT / "devices"
HUGE = [1, 2**31 - 1]


def with_input_shape(data: bytes, shape: list[int]) -> bytes:
    """``data`` (a .tflite) with its first input declaring ``shape``: a crafted model."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    sub = model.subgraphs[0]
    tensor = sub.tensors[sub.inputs[0]]
    tensor.shape = shape
    tensor.shapeSignature = None
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory, tiny_tflite: Path) -> Path:
    path = tmp_path_factory.mktemp("crafted") / "huge_input.tflite"
    path.write_bytes(with_input_shape(tiny_tflite.read_bytes(), HUGE))
    return path


def test_an_allocation_over_the_limit_fails_as_out_of_memory() -> None:
    started = time.monotonic()
    with pytest.raises(worker.WorkerError) as caught:
        worker.call("tests.worker_targets:allocate", {"mb": 4096}, 120, memory_mb=1024)
    assert caught.value.kind == "memory"
    assert str(caught.value).startswith("out of memory (limit 1,024 MB")
    assert time.monotonic() - started < 60
    assert worker.call("tests.worker_targets:allocate", {"mb": 256}, 120, memory_mb=1024) == \
        256 << 20  # under the limit: as before


def test_the_default_limit_is_half_the_machine() -> None:
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") >> 20
    assert abs(worker.default_memory_mb() - max(1024, total_mb // 2)) <= 1


def test_declared_tensor_sizes_are_judged_from_the_flatbuffer(crafted: Path) -> None:
    info = tflite_info.inspect(crafted.read_bytes())
    assert info.largest_tensor[1] == tuple(HUGE) and info.largest_tensor[3] == 4 * (2**31 - 1)
    problem = tflite_info.memory_problem(info, 4096, "m")
    assert problem.startswith(f"m declares tensor {info.largest_tensor[0]!r} of shape "
                              "[1, 2147483647] float32 (8,192 MB), over the worker memory limit "
                              "of 4,096 MB (settings.memory_mb)")


def test_the_crafted_model_fails_its_cells_without_an_interpreter(tmp_path: Path,
                                                                  crafted: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "huge", "models": [{"id": "m", "path": str(crafted)}],
        "devices": ["host-litert", "tflm-reference"],
        "settings": {"memory_mb": 2048, "repeats": 3, "warmup": 1}}))
    started = time.monotonic()
    run = run_suite(load_suite(suite), tmp_path / "results", devices_dirs=[DEVICES])
    records = Store(tmp_path / "results").find(run.run_id).records()
    assert {r.device for r in records} == {"host-litert", "tflm-reference"}
    for record in records:
        assert record.status == "failed" and record.error["kind"] == "memory"
        assert "of shape [1, 2147483647] float32 (8,192 MB), over the worker memory limit of " \
               "2,048 MB (settings.memory_mb)" in record.error["message"]
    assert time.monotonic() - started < 120


def test_tflm_on_the_crafted_model_stops_at_the_limit(tmp_path: Path, crafted: Path) -> None:
    """Without the judge (a runner called directly), the worker's limit still stops it: out of
    memory within seconds, not the ~260 MB/s growth until ``timeout_s``."""
    request = RunRequest(artifact=crafted, dataset=None, options={}, device={}, warmup=1,
                         repeats=3)
    started = time.monotonic()
    with pytest.raises(worker.WorkerError) as caught:
        worker.call("bench.runners.phase:run_phase",
                    {"ref": "bench.runners.tflm:evaluate", "request": request.to_json()}, 300,
                    memory_mb=1024)
    elapsed = time.monotonic() - started
    assert caught.value.kind == "memory", caught.value.detail
    assert str(caught.value).startswith("out of memory (limit 1,024 MB")
    assert elapsed < 120, elapsed
