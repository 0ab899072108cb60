"""A native crash names what was running: the worker's breadcrumb (:mod:`bench.breadcrumb`), the
signal, and for TFLite Micro the op it died in (found by rerunning the model op by op). The
crashers are real crafted models that make TFLite Micro's kernels read out of bounds."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench import worker
from bench.run.session import run_suite
from bench.suite.spec import load_suite
from tests.conftest import ROOT

pytestmark = pytest.mark.usefixtures("tests_importable_in_workers")



def crafted(data: bytes, op: int, weights_shape: list[int]) -> bytes:
    """``data`` with the weights of operator ``op`` declaring ``weights_shape`` while their
    buffer keeps its size: the kernel reads past it (SIGSEGV)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    sub = model.subgraphs[0]
    sub.tensors[sub.operators[op].inputs[1]].shape = weights_shape
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_the_breadcrumb_and_signal_are_in_the_reason() -> None:
    with pytest.raises(worker.WorkerError) as caught:
        worker.call("tests.worker_targets:segfault_in", {"doing": "op 7 (CONV_2D) of 9"}, 60)
    error = caught.value
    assert error.kind == "crashed" and error.signal == "SIGSEGV"
    assert error.doing == "op 7 (CONV_2D) of 9"
    assert str(error).startswith("worker crashed with SIGSEGV after ")
    assert "(op 7 (CONV_2D) of 9)" in str(error)


def test_a_silent_crash_still_has_a_reason() -> None:
    with pytest.raises(worker.WorkerError) as caught:
        worker.call("tests.worker_targets:abort", {}, 60)
    assert str(caught.value).startswith("worker crashed with SIGABRT after ")


def test_tflm_crashes_name_the_op(tmp_path: Path, tiny_tflite: Path) -> None:
    data = tiny_tflite.read_bytes()  # Dense 4→8→3 softmax: FULLY_CONNECTED ×2, SOFTMAX
    (tmp_path / "first.tflite").write_bytes(crafted(data, 0, [8, 400_000]))
    (tmp_path / "second.tflite").write_bytes(crafted(data, 1, [3, 1 << 30]))
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "crash", "devices": ["tflm-reference"],
        "models": [{"id": "first", "path": "first.tflite"},
                   {"id": "second", "path": "second.tflite"}],
        "settings": {"repeats": 3, "warmup": 1, "processes": 1}}))
    run = run_suite(load_suite(suite), tmp_path / "results", devices_dirs=[ROOT / "devices"])
    records = {r.model: r for r in run.records()}
    for model, op in (("first", 0), ("second", 1)):
        record = records[model]
        assert record.status == "failed" and record.error["kind"] == "crashed"
        assert record.error["message"].startswith(
            f"evaluate: SIGSEGV in op {op} (FULLY_CONNECTED) of 3, TFLite Micro invoking it "
            "(found rerunning the model op by op); worker crashed with SIGSEGV"), record.error
