"""``suites/compression.yaml``, reduced: the digits CNN trained for a few epochs, five of its
variants, and the directions of the effects that do not depend on a seed or on how long it
trained — never the figures themselves (README "The compression tables" has those)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench.results.record import Record
from bench.results.table import render_report
from bench.run.session import run_suite
from bench.suite.spec import load_suite
from tests.test_session import DEVICES, write_suite

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "suites" / "compression.yaml"
VARIANTS = ("fp32", "int8", "int4-int8", "pruned50", "pruned90")


def reduced(tmp_path: Path) -> Path:
    """The suite file with only ``digits_cnn``, :data:`VARIANTS` and short training; TFLite
    Micro runs fp32 and int8 only."""
    data = yaml.safe_load(SUITE.read_text())
    model = next(m for m in data["models"] if m["id"] == "digits_cnn")
    model["train"] = {**model["train"], "epochs": 15}
    data["models"] = [model]
    data["variants"] = [v for v in data["variants"] if v["id"] in VARIANTS]
    for variant in data["variants"]:
        for step in variant.get("steps", []):
            if "prune" in step:
                step["prune"]["epochs"] = 4
    data["include"] = [{"model": "digits_cnn", "device": "host-litert"},
                       {"model": "digits_cnn", "variant": "fp32"},
                       {"model": "digits_cnn", "variant": "int8"}]
    data["exclude"] = []
    data["settings"] = {**data["settings"], "repeats": 5, "warmup": 1}
    return write_suite(tmp_path, data)


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Record]:
    tmp = tmp_path_factory.mktemp("compression")
    suite = load_suite(reduced(tmp))
    run = run_suite(suite, tmp / "results", devices_dirs=[DEVICES])
    found = {r.cell_id: r for r in run.records()}
    failed = {c: r.error for c, r in found.items() if r.status != "ok"}
    assert not failed, failed
    return found


def cell(records: dict[str, Record], variant: str, device: str = "host-litert") -> Record:
    return records[f"digits_cnn/{variant}@{device}"]


def test_the_full_suite_is_valid() -> None:
    suite = load_suite(SUITE)
    assert {m.id for m in suite.models} >= {"digits_cnn", "digits_teacher", "digits_student_s0"}
    assert any(t.aggregate for t in suite.report)


@pytest.mark.slow
def test_the_cnn_learns_the_digits(records: dict[str, Record]) -> None:
    assert cell(records, "fp32").value("accuracy") > 0.8  # ten classes: chance is 0.1
    # TFLite Micro runs the same int8 model to the same predictions as LiteRT
    assert cell(records, "int8", "tflm-reference").value("accuracy") == pytest.approx(
        cell(records, "int8").value("accuracy"), abs=2 / 269)


@pytest.mark.slow
def test_fewer_weight_bits_make_a_smaller_file(records: dict[str, Record]) -> None:
    size = {v: cell(records, v).value("model_size") for v in ("fp32", "int8", "int4-int8")}
    assert size["int4-int8"] < size["int8"] < size["fp32"]
    # int8 activations: a smaller arena in TFLite Micro than float32 ones
    assert (cell(records, "int8", "tflm-reference").value("arena_used")
            < cell(records, "fp32", "tflm-reference").value("arena_used"))


@pytest.mark.slow
def test_more_pruning_compresses_better_and_costs_accuracy(records: dict[str, Record]) -> None:
    half, most = cell(records, "pruned50"), cell(records, "pruned90")
    assert half.value("sparsity") == pytest.approx(0.5, abs=0.02)
    assert most.value("sparsity") == pytest.approx(0.9, abs=0.02)
    assert half.value("model_size") == most.value("model_size")  # zeros are stored in full
    assert most.value("model_size_gzip") < half.value("model_size_gzip")
    assert most.value("accuracy") < half.value("accuracy")


@pytest.mark.slow
def test_the_suites_report_tables_render(records: dict[str, Record], tmp_path: Path) -> None:
    suite = load_suite(reduced(tmp_path))
    text = render_report(list(records.values()),
                         [t.model_dump(mode="json") for t in suite.report])
    assert "digits_cnn/pruned90@host-litert" in text and "(no cells)" in text  # no students
