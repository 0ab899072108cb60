"""Suites that would build a silently wrong artifact or duplicate cells are refused when read:
step order (training before the one conversion, by each step's declared phase) and a device
listed twice."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench import registry
from bench.run.build import build_artifact
from bench.suite.spec import SpecError, load_suite
from bench.variants.base import StepError, VariantStep


def _load(tmp_path: Path, steps: list[dict], devices: list[str] | None = None) -> object:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({
        "name": "s", "devices": devices or ["host-litert"],
        "models": [{"id": "student", "builder": "har_mlp", "dataset": {"name": "har_synthetic"}},
                   {"id": "teacher", "builder": "har_mlp", "dataset": {"name": "har_synthetic"}}],
        "variants": [{"id": "fp32"}, {"id": "v", "steps": steps}]}))
    return load_suite(path)


@pytest.mark.parametrize(("steps", "message"), [
    ([{"quantize": {"mode": "int8"}}, {"distill": {"teacher": "teacher"}}],
     "variants[1].steps[1]: training step 'distill' comes after the conversion step 'quantize' "
     "(steps[0]), so it would not reach the converted model; put training steps first"),
    ([{"quantize": {"mode": "int8"}}, {"quantize": {"mode": "fp16"}}],
     "variants[1].steps[1]: a second conversion step 'quantize' after 'quantize' (steps[0]); "
     "a variant converts once"),
    ([{"int4": {}}, {"qat": {}}, {"quantize": {"mode": "int8"}}],
     "variants[1].steps[2]: a second conversion step 'quantize' after 'int4' (steps[0])"),
    ([{"quantize": {"mode": "fp32"}}, {"cluster": {}}], "variants[1].steps[1]: training step "
                                                         "'cluster' comes after"),
])
def test_steps_out_of_order_are_suite_errors(tmp_path: Path, steps: list[dict],
                                             message: str) -> None:
    with pytest.raises(SpecError) as e:
        _load(tmp_path, steps)
    assert message in str(e.value)
    if "steps[2]" in message:  # every misplaced step is reported, not only the first
        assert "variants[1].steps[1]: training step 'qat'" in str(e.value)


@pytest.mark.parametrize("steps", [
    [{"distill": {"teacher": "teacher"}}, {"prune": {}}, {"quantize": {"mode": "int8"}}],
    [{"qat": {}}, {"quantize": {"mode": "int8"}}],
    [{"cluster": {}}, {"int4": {}}],
    [{"prune": {}}],
])
def test_training_then_one_conversion_is_accepted(tmp_path: Path, steps: list[dict]) -> None:
    assert _load(tmp_path, steps).variants[1].step_list()[0][0] == next(iter(steps[0]))


def test_a_third_party_step_declares_its_phase(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def noop(state: object, params: object) -> None:
        pass

    monkeypatch.setitem(registry.variant_steps._entries, "sharpen",
                        VariantStep(name="sharpen", apply=noop, phase="train"))
    monkeypatch.setitem(registry.variant_steps._entries, "annotate",
                        VariantStep(name="annotate", apply=noop))  # no phase: anywhere
    with pytest.raises(SpecError, match=r"variants\[1\]\.steps\[1\]: training step 'sharpen'"):
        _load(tmp_path, [{"quantize": {"mode": "int8"}}, {"sharpen": {}}])
    _load(tmp_path, [{"annotate": {}}, {"quantize": {"mode": "int8"}}, {"annotate": {}}])


def test_a_build_outside_a_suite_checks_the_order_too(tiny_tflite: Path, tmp_path: Path) -> None:
    with pytest.raises(StepError, match=r"variant 'v': steps\[1\]: a second conversion step"):
        build_artifact({"id": "m", "path": str(tiny_tflite)},
                       {"id": "v", "steps": [{"int4": {}}, {"quantize": {"mode": "fp16"}}]},
                       {"dataset": None, "model": "k", "artifact": "a"}, str(tmp_path))


def test_a_device_listed_twice_is_a_suite_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as e:
        _load(tmp_path, [], devices=["host-litert", "tflm-reference", "host-litert"])
    assert "devices[2]: duplicate device 'host-litert' (also devices[0])" in str(e.value)
