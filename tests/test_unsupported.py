"""What a runtime cannot run is a skip with the runtime's reason: known from the artifact before
any work (TFLite Micro's rules), or from the runtime's refusal when it prepares the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.artifacts.tflite_info import inspect
from bench.errors import Unsupported
from bench.firmware.image import LinkOverflowError
from bench.firmware.resolver import MissingOpError
from bench.runners import qemu, tflm
from bench.runners.base import RunRequest
from bench.runners.phase import run_phase
from tests.tflite_models import RefusedByTFLM, build_refused


@pytest.fixture(scope="module")
def refused(tmp_path_factory: pytest.TempPathFactory) -> RefusedByTFLM:
    return build_refused(tmp_path_factory.getbasetemp() / "refused_models")


@pytest.mark.parametrize(("variant", "reason"), [
    ("hybrid", "hybrid (dynamic-range) model: FULLY_CONNECTED takes float32 inputs with int8"),
    ("int4_weight_only", "DEQUANTIZE takes no int4 input"),
    ("int4_channelwise", "int4 filters with one scale per tensor only"),
])
def test_tflm_rules_name_what_it_cannot_run_and_it_really_refuses(
        refused: RefusedByTFLM, variant: str, reason: str) -> None:
    data = getattr(refused, variant).read_bytes()
    assert reason in (tflm.unsupported(data, {}) or "")
    assert reason in (qemu.unsupported(data, {}) or "")  # the firmware has the same kernels
    # The rule is not a guess: TFLite Micro itself refuses the model when preparing it, and
    # that refusal is an Unsupported (a skip), not a failure.
    with pytest.raises(tflm.TFLMRefused, match="failed to prepare") as caught:
        tflm.open_model(data, inspect(data))
    assert isinstance(caught.value, Unsupported) and not caught.value.arena_shortage


def test_tflm_runs_what_the_rules_let_through(refused: RefusedByTFLM) -> None:
    data = refused.int4_tensorwise.read_bytes()
    assert tflm.unsupported(data, {}) is None
    model = tflm.open_model(data, inspect(data))
    assert model.arena_size > 0 and len(model.in_specs) == 1


def test_a_refusal_at_prepare_time_is_a_skipped_phase(refused: RefusedByTFLM) -> None:
    """Even without the rules (here bypassed: the phase opens the model itself), the worker
    phase turns the runtime's refusal into a skip reason; a corrupt model stays an error."""
    out = run_phase("tests.worker_targets:open_in_tflm",
                    RunRequest(refused.hybrid, None).to_json())
    assert "Input type: FLOAT32 with filter type: INT8 not supported" in out["skipped"]


def test_a_phase_skip_comes_from_the_rules_too(refused: RefusedByTFLM, tmp_path: Path) -> None:
    out = run_phase("bench.runners.tflm:measure", RunRequest(refused.int4_weight_only, None,
                                                             warmup=1, repeats=1).to_json())
    assert "DEQUANTIZE takes no int4 input" in out["skipped"]
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(refused.hybrid.read_bytes()[:200])
    with pytest.raises(ValueError, match="not a valid .tflite"):
        run_phase("bench.runners.tflm:measure", RunRequest(corrupt, None).to_json())


def test_firmware_that_cannot_be_built_for_the_device_is_unsupported() -> None:
    overflow = LinkOverflowError("FLASH", 4096, 1 << 20, "region FLASH overflowed")
    assert isinstance(overflow, Unsupported) and "does not fit the device's flash" in str(overflow)
    assert isinstance(MissingOpError(["SVDF"]), Unsupported)
