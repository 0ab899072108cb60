"""Emulated boards: the real firmware (TFLite Micro + CMSIS-NN for Cortex-M4F, the MLPerf Tiny
API) built with the Arm toolchain and booted in qemu-system-arm, driven over the protocol.

The third-party sources come from ``../shared/third_party`` (skipped when it is absent). The
library is built once per test session (for cortex-m4+fp, only the kernels these models use)
in the session's ``firmware_cache``, which the front door's emulated suite shares.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from bench.firmware import FirmwareError, cycles
from bench.firmware.image import Firmware, LinkOverflowError, build_for_device
from bench.firmware.machines import MACHINES
from bench.firmware.resolver import MissingOpError
from bench.runners import board_agreement, qemu
from bench.runners.base import RunRequest
from bench.runners.board_agreement import raw_outputs
from bench.runners.layers import firmware_layers
from tests.conftest import ROOT
from tests.tflite_models import build, mlperf_model

THIRD_PARTY = ROOT.parent / "shared" / "third_party"
DEVICE = yaml.safe_load((ROOT / "devices" / "qemu-cortex-m4f.yaml").read_text())


@pytest.fixture(scope="session")
def firmware_env(firmware_cache: Path) -> Iterator[Path]:
    """``$EDGEBENCH_THIRD_PARTY`` and the session's firmware cache (``firmware_cache``)."""
    if not THIRD_PARTY.is_dir():
        pytest.skip(f"third-party sources not found in {THIRD_PARTY}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEBENCH_THIRD_PARTY", str(THIRD_PARTY))
        mp.setenv("EDGEBENCH_FIRMWARE_CACHE", str(firmware_cache))
        yield firmware_cache


@pytest.fixture(scope="session")
def ad01(firmware_env: Path) -> Path:
    return mlperf_model("ad01_int8.tflite")


@pytest.fixture(scope="session")
def ad_firmware(ad01: Path) -> Firmware:
    memory = DEVICE["memory"]
    return build_for_device(ad01.read_bytes(), "mps2-an386", memory["flash_kb"],
                            memory["ram_kb"], "ad01_int8")


def request(artifact: Path, dataset: Path | None = None, **options: object) -> RunRequest:
    return RunRequest(artifact=artifact, dataset=dataset,
                      options={**DEVICE["connection"], **options}, device=DEVICE, warmup=1)


def _qemu_children() -> list[int]:
    """Pids of qemu-system-arm processes whose parent is this process."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split()
        except OSError:
            continue
        if fields[1] == "(qemu-system-arm)" and int(fields[3]) == os.getpid():
            found.append(int(fields[0]))
    return found


def _int8(path: Path, *layers: object) -> Path:
    """``layers`` (tf_keras, the first an ``Input``) as an int8 model (int8 input and output)
    calibrated on 4 seeded uniform samples, written to ``path``."""
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(list(layers))
    rng = np.random.default_rng(0)

    def samples() -> Iterator[list[np.ndarray]]:
        for _ in range(4):
            yield [rng.uniform(-1, 1, (1, *model.input_shape[1:])).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = samples
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path.write_bytes(converter.convert())
    return path


def test_ad_firmware_boots_and_answers_the_protocol(ad_firmware: Firmware, ad01: Path) -> None:
    assert ad_firmware.elf.is_file() and (ad_firmware.folder / "Makefile").is_file()
    assert ad_firmware.ops == ["FULLY_CONNECTED"]
    assert ad_firmware.model_id == "ad01"  # the MLPerf Tiny id of the reference model
    with qemu.board(request(ad01), ad_firmware) as link:
        assert link.command("name") == ["m-name-dut-[unspecified]"]
        assert link.command("profile") == ["m-profile-[ULPMark for tinyML Firmware V0.0.1]",
                                           f"m-model-[{ad_firmware.model_id}]"]
        arena = link.command("arena")
        link.load(bytes(640))
        window_us, results, lines = link.infer_lines(3, 1, 30.0)
    assert arena[0] == f"m-arena-used-{ad_firmware.arena_used}"
    assert arena[1] == f"m-arena-size-{ad_firmware.arena_size}"
    assert len(results) == 640 and window_us > 0
    assert [line for line in lines if line.startswith("m-warmup-start-")] == ["m-warmup-start-1"]
    assert not _qemu_children()


def test_32_bit_arena_differs_from_x86_64(ad_firmware: Firmware, ad01: Path) -> None:
    from bench.runners.tflm import measure_arena

    x86 = measure_arena(ad01.read_bytes())
    assert ad_firmware.arena_x86 == x86
    assert 0 < ad_firmware.arena_used < x86  # 32-bit pointers and CMSIS-NN buffers
    assert ad_firmware.arena_used <= ad_firmware.arena_size <= ad_firmware.arena_used + 4096
    sections = ad_firmware.sections
    assert ad_firmware.flash_used > ad01.stat().st_size  # the model plus the runtime
    assert ad_firmware.ram_used == sum(sections[s] for s in (".data", ".bss", ".heap",
                                                             ".stack"))
    assert sections[".bss"] > ad_firmware.arena_size


def test_ad_performance_and_accuracy_windows(ad_firmware: Firmware, ad01: Path) -> None:
    from bench.artifacts.tflite_info import inspect
    from bench.runners.io import quantize, sample_inputs
    from bench.runners.serial import input_spec
    from bench.runners.tflm import open_model

    measured = qemu.measure(request(ad01, min_window_s=0.02, windows=3))
    instructions = measured["instructions"].value
    assert 3e5 < instructions < 1.2e6  # the trial counted 583,520 (CMSIS-NN, cortex-m4+fp)
    assert measured["instructions"].method == "emulated"
    # counted without classes: the cycle model on the reference models' mix, the device's
    # flash wait states and cache
    how = measured.details["cycles"]
    model = qemu.provenance(DEVICE, DEVICE["connection"])["emulated"]
    assert how["note"] == model["cycle_model"]["note"] == "cycle model, fitted"
    assert how["from"].startswith("the reference models' instruction mix")
    assert how["memory"]["flash_wait_states"] == DEVICE["memory"]["flash_wait_states"]
    assert how["cpi"] == model["cycle_model"]["reference_cpi"] > 1
    expected_ms = instructions * how["cpi"] / (DEVICE["clock_mhz"] * 1e6) * 1e3
    assert measured["latency_p50"].value == pytest.approx(expected_ms, rel=0.01)

    evaluated = qemu.evaluate(request(ad01))
    assert evaluated["arena_used"].value == ad_firmware.arena_used
    assert evaluated["firmware_flash"].value == ad_firmware.flash_used
    # LiteRT rounds its fully-connected layers differently from TFLite Micro (a few steps)
    assert 0 < evaluated["output_max_diff"].value <= 3
    # … from the first layer on: LiteRT's XNNPACK delegate, not the firmware, since every layer
    # is within a step of LiteRT's built-in kernels
    agreement = evaluated.details["agreement"]
    layers = agreement["layers"]
    assert agreement["output_diff"] == evaluated["output_max_diff"].value  # the worst input
    assert agreement["reference_check"] == 0  # preserving tensors leaves LiteRT's outputs
    assert agreement["compared"] == agreement["layers_total"] == len(layers) == 10
    assert [layer["op"] for layer in layers] == ["FULLY_CONNECTED"] * 10
    beyond = [layer["index"] for layer in layers if layer["max_diff"] > 1]
    assert agreement["first_layer"] == (beyond[0] if beyond else None)
    assert agreement["origin"] == next(la["index"] for la in layers if la["max_diff"] > 0)
    assert agreement["builtin_first_layer"] is None
    assert all(la["builtin_max_diff"] <= 1 for la in layers)
    assert agreement["verdict"].startswith(f"layer {beyond[0]} (FULLY_CONNECTED) is the first"
                                           if beyond else "no layer differs beyond one step")

    # bit-exact with TFLite Micro's x86-64 build on inputs in the model's range
    data = ad01.read_bytes()
    spec = input_spec(request(ad01))
    host = open_model(data, inspect(data))
    rng = np.random.default_rng(1)
    inputs = [quantize(rng.normal(0, 1, (1, 640)).astype(np.float32), spec)]
    inputs += sample_inputs(None, [spec], 2, 0)[0]
    with qemu.board(request(ad01), ad_firmware) as link:
        for x in inputs:
            link.load(x.tobytes())
            raw = raw_outputs(link.infer_lines(1, 0, 30.0)[2], host.out_specs[0])
            np.testing.assert_array_equal(raw, host.run([x])[0].reshape(-1))


def test_task_metrics_come_from_the_firmware(firmware_env: Path,
                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    from bench.artifacts.tflite_info import inspect
    from bench.datasets.base import Dataset
    from bench.runners.io import AGREEMENT_SAMPLES, batch_predict, sample_inputs
    from bench.runners.litert import LiteRTModel
    from bench.runners.tflm import open_model

    models = build(tmp_path_factory.getbasetemp() / "tiny-models")
    out = qemu.evaluate(request(models.dense_int8, models.classification))
    assert out["accuracy"].method == "emulated"
    data = models.dense_int8.read_bytes()
    host = open_model(data, inspect(data))
    predict = batch_predict(lambda x: host.run([x])[0], host.in_specs[0], host.out_specs[0])
    x, y = Dataset.load(models.classification).split("test")
    host_accuracy = float((predict(x).argmax(1) == y).mean())
    assert out["accuracy"].value == pytest.approx(host_accuracy)  # same kernels' results
    assert out["accuracy"].value > 0.5
    # the firmware differs from LiteRT exactly as TFLite Micro's x86-64 build does (its
    # softmax and requantization round differently from LiteRT's by a few steps)
    lite = LiteRTModel(data, {}, "dense_int8")
    inputs = sample_inputs(models.classification, host.in_specs, AGREEMENT_SAMPLES, 0)
    host_diff = max(float(np.abs(host.run(x)[0].astype(int) - lite.run(x)[0].astype(int)).max())
                    for x in inputs)
    assert out["output_max_diff"].value == host_diff
    assert out["output_max_diff"].unit == "steps"


def test_an_op_tflm_lacks_and_a_flash_overflow_skip_their_cells(
        firmware_env: Path, ad01: Path, ad_firmware: Firmware, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """… and the records keep per-layer profiles, which ``show --layers`` prints: AD's sum to
    its inference; a tiny model's do not (the interpreter's work between operators and the
    input copy are a large share of 4,000 instructions), which fails the profile's own check,
    not the cell."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf
    import tf_keras as keras

    from bench import cli
    from bench.run.session import run_suite
    from bench.suite.spec import load_suite

    fn = tf.function(lambda x: tf.nn.gelu(x * 2.0 + 1.0),
                     input_signature=[tf.TensorSpec([1, 8], tf.float32)])
    gelu = tmp_path / "gelu.tflite"
    gelu.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions(
        [fn.get_concrete_function()]).convert())
    tiny = _int8(tmp_path / "tiny.tflite", keras.layers.Input((4,)),
                 keras.layers.Dense(8, activation="relu"),
                 keras.layers.Dense(3, activation="softmax"))
    devices = tmp_path / "devices"
    devices.mkdir()
    small = {**DEVICE, "id": "qemu-small-flash", "memory": {"flash_kb": 128, "ram_kb": 640}}
    (devices / "qemu-small-flash.yaml").write_text(yaml.safe_dump(small))
    suite_file = tmp_path / "emulated.yaml"
    suite_file.write_text(yaml.safe_dump({
        "name": "emulated-failures",
        "models": [{"id": "gelu", "path": str(gelu)}, {"id": "ad01", "path": str(ad01)},
                   {"id": "tiny", "path": str(tiny)}],
        "variants": [{"id": "as-is"}],
        "devices": ["qemu-cortex-m4f", "qemu-small-flash"],
        "settings": {"warmup": 1, "repeats": 5, "timeout_s": 900}}))
    run = run_suite(load_suite(suite_file), tmp_path / "results",
                    devices_dirs=[devices, ROOT / "devices"])
    records = {r.cell_id: r for r in run.records()}
    missing = records["gelu/as-is@qemu-cortex-m4f"]
    assert missing.status == "skipped"  # the runtime cannot run it: unsupported, not a failure
    assert missing.error["kind"] == "unsupported"
    assert "TFLite Micro has no kernel for GELU" in missing.error["message"]
    overflow = records["ad01/as-is@qemu-small-flash"]
    assert overflow.status == "skipped"  # does not fit: unsupported on that device
    found = [int(n) for n in re.findall(r"overflowed by (\d+) bytes",
                                        overflow.error["message"])]
    expected = ad_firmware.flash_used - 128 * 1024
    assert found and found[0] == pytest.approx(expected, abs=2048)
    ok = records["ad01/as-is@qemu-cortex-m4f"]
    assert ok.status == "ok", ok.error
    assert ok.metrics["instructions"].method == "emulated"
    assert ok.metrics["arena_used"].value == ad_firmware.arena_used
    assert ok.details["emulated"]["machine"] == "mps2-an386"

    layers, check = ok.details["layers"], ok.details["layers_check"]
    assert check["passed"] and check["total"] == ok.metrics["instructions"].value
    results = str(tmp_path / "results")
    assert cli.main(["show", run.run_id, "--results", results, "--layers", ok.cell_id]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0] == f"{ok.cell_id}: 10 layers (emulated)"
    assert shown[1].split() == ["#", "op", "input", "shape", "output", "shape", "MACs",
                                "instructions", "share"]
    for line, layer in zip(shown[3:13], layers, strict=True):
        assert line.split() == [str(layer["index"]), "FULLY_CONNECTED",
                                "x".join(map(str, layer["inputs"][0])),
                                "x".join(map(str, layer["outputs"][0])), f"{layer['macs']:,}",
                                f"{layer['instructions']:,.0f}", f"{100 * layer['share']:.1f}",
                                "%"]
    assert shown[13].endswith("check passed (tolerance 1 %)")
    # then where its outputs start to differ from LiteRT's (the evaluate phase's record)
    agreement = ok.details["agreement"]
    assert shown[14] == "" and shown[15].startswith(f"{ok.cell_id}: agreement with LiteRT per "
                                                   f"layer (emulated; largest difference in "
                                                   f"steps")
    assert shown[16].split() == ["#", "op", "tensor", "vs", "LiteRT", "vs", "built-in",
                                 "kernels"]
    for line, layer in zip(shown[18:28], agreement["layers"], strict=True):
        assert line.split()[:4] == [str(layer["index"]), "FULLY_CONNECTED",
                                    str(layer["tensor"]), f"{layer['max_diff']:g}"]
        assert line.count("*") == layer["differs"] + layer["builtin_differs"]
    assert shown[28] == f"verdict: {agreement['verdict']}"

    small_model = records["tiny/as-is@qemu-cortex-m4f"]
    assert small_model.status == "ok", small_model.error
    assert [layer["op"] for layer in small_model.details["layers"]] == [
        "FULLY_CONNECTED", "FULLY_CONNECTED", "SOFTMAX"]
    assert not small_model.details["layers_check"]["passed"]
    assert cli.main(["show", run.run_id, "--results", results, "--layers",
                     small_model.cell_id]) == 0
    assert "check FAILED (tolerance 1 %)" in capsys.readouterr().out
    assert cli.main(["show", run.run_id, "--results", results, "--layers",
                     missing.cell_id]) == 0
    assert capsys.readouterr().out.strip() == (f"{missing.cell_id}: no per-layer profile: the "
                                               f"cell skipped before it was measured")
    assert cli.main(["show", run.run_id, "--results", results, "--layers",
                     "ad01/as-is@nowhere"]) == 2
    assert "did you mean 'ad01/as-is@qemu-cortex-m4f'?" in capsys.readouterr().err


def test_build_errors_name_their_cause(firmware_env: Path, ad01: Path) -> None:
    with pytest.raises(MissingOpError, match="GELU"):
        from bench.firmware.resolver import kernels_for
        from bench.firmware.sources import sources_dir

        kernels_for(("FULLY_CONNECTED", "GELU"), sources_dir() / "tflite-micro")
    with pytest.raises(LinkOverflowError) as raised:
        build_for_device(ad01.read_bytes(), "mps2-an386", 64, 640, "ad01_int8")
    assert raised.value.region == "FLASH" and raised.value.overflow > 200_000
    assert isinstance(raised.value, FirmwareError)


def test_the_firmware_project_builds_on_its_own(ad01: Path, ad_firmware: Firmware,
                                               tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess

    from bench import cli

    out = tmp_path / "project"
    assert cli.main(["firmware", str(ad01), "--device", "nucleo-l4r5zi", "--out", str(out)]) == 0
    # nucleo-l4r5zi emulates on mps2-an386 with the same memory: the same (cached) firmware
    assert f"flash {ad_firmware.flash_used:,} B" in capsys.readouterr().out
    makefile = (out / "Makefile").read_text()
    assert "board-specific part" in makefile and "board_cmsdk.c" in makefile
    subprocess.run(["make", "-s", "-C", str(out), "clean"], check=True)
    subprocess.run(["make", "-s", "-C", str(out), "firmware.elf"], check=True,
                   capture_output=True)
    assert (out / "firmware.elf").stat().st_size > ad01.stat().st_size


def test_qemu_killed_mid_run_fails_with_its_reason(ad_firmware: Firmware, ad01: Path) -> None:
    failure: list[BaseException] = []

    def measure() -> None:
        try:  # ~5 G instructions a window: QEMU is killed long before it ends
            qemu.measure(request(ad01, min_window_s=5.0, windows=1, timeout_s=120.0))
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            failure.append(exc)

    thread = threading.Thread(target=measure)
    thread.start()
    deadline = time.monotonic() + 60
    while not _qemu_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # the run is under way
    (pid,) = _qemu_children()
    os.kill(pid, signal.SIGKILL)
    thread.join(120)
    assert not thread.is_alive()
    assert failure and "was killed by SIGKILL during the run" in str(failure[0])
    assert MACHINES["mps2-an386"].name in str(failure[0])
    assert not _qemu_children()
    assert not Path(f"/proc/{pid}").exists()


def test_an_input_larger_than_the_apis_96x96x3_buffer_loads_and_runs(
        firmware_env: Path, tmp_path: Path) -> None:
    """A 128×128×3 image (49,152 B) through ``db load``: the official API's buffer holds
    96×96×3 (27,648 B) and overflowing it reset the board mid-load; the firmware sizes it to
    the model's input, and the board's output matches TFLite Micro's x86-64 build."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tf_keras as keras

    from bench.artifacts.tflite_info import inspect
    from bench.runners.io import sample_inputs
    from bench.runners.serial import input_spec
    from bench.runners.tflm import open_model

    path = _int8(tmp_path / "image128.tflite", keras.layers.Input((128, 128, 3)),
                 keras.layers.AveragePooling2D(16), keras.layers.Flatten(),
                 keras.layers.Dense(3))
    memory = DEVICE["memory"]
    built = build_for_device(path.read_bytes(), "mps2-an386", memory["flash_kb"],
                             memory["ram_kb"], "image128")
    spec = input_spec(request(path))
    (x,) = sample_inputs(None, [spec], 1, 0)[0]
    assert x.nbytes == 128 * 128 * 3 > 96 * 96 * 3
    host = open_model(path.read_bytes(), inspect(path.read_bytes()))
    with qemu.board(request(path), built) as link:
        link.load(x.tobytes())
        raw = raw_outputs(link.infer_lines(1, 0, 30.0)[2], host.out_specs[0])
    np.testing.assert_array_equal(raw, host.run([x])[0].reshape(-1))


def test_an_output_longer_than_a_protocol_line_is_compared(firmware_env: Path,
                                                            tmp_path: Path) -> None:
    """16,384 int8 outputs print an ``m-results`` line of about 98,000 characters, beyond the
    protocol's 65,536-character line bound: the agreement check and the timed windows failed
    the whole cell. The link now lets a results line hold the model's outputs."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tf_keras as keras

    path = _int8(tmp_path / "wide.tflite", keras.layers.Input((4,)), keras.layers.Dense(16384))
    metrics = qemu.evaluate(request(path))
    # all 16,384 outputs compared with LiteRT's, within CMSIS-NN's rounding (as ad01: ≤ 3)
    assert metrics["output_max_diff"].unit == "steps"
    assert metrics["output_max_diff"].value <= 3
    measured = qemu.measure(request(path, windows=2, min_window_s=0.001))
    assert measured["instructions"].value > 16384  # at least one per output


def test_the_agreement_check_is_bounded_by_the_uart_traffic_both_ways() -> None:
    def agreement_samples(input_bytes: int, output_elements: int) -> int:
        return board_agreement.agreement_samples(input_bytes, output_elements, qemu.IN_CHAR_S,
                                                 qemu.OUT_CHAR_S)

    assert agreement_samples(640, 640) == 100  # ad01: every sample
    assert agreement_samples(96 * 96 * 3, 2) == 7  # vww: a 27 KB input loads as 55 K characters
    assert 5 <= agreement_samples(4, 16384) <= 25  # 16,384 outputs print ~200 K characters
    assert agreement_samples(10**6, 10**6) == 5  # never fewer


def test_ad_layers_sum_to_the_inference_and_are_its_ops(ad_firmware: Firmware, ad01: Path
                                                         ) -> None:
    from bench.artifacts.tflite_info import main_graph_ops
    from bench.results.layers import TOLERANCE

    measured = qemu.measure(request(ad01, min_window_s=0.02, windows=3))
    details = measured.details
    layers, total = details["layers"], measured["instructions"].value
    ops = main_graph_ops(ad01.read_bytes())
    assert [layer["op"] for layer in layers] == [o.op for o in ops] == ["FULLY_CONNECTED"] * 10
    assert [layer["index"] for layer in layers] == list(range(10))
    assert [layer["inputs"] for layer in layers] == [[list(s) for s in o.inputs] for o in ops]
    assert layers[0]["inputs"] == [[1, 640]] and layers[-1]["outputs"] == [[1, 640]]
    for layer in layers:  # a fully-connected layer's MACs: in features × out features
        assert layer["macs"] == layer["inputs"][0][-1] * layer["outputs"][0][-1]
        assert layer["method"] == "emulated" and layer["instructions"] > 0
        assert layer["share"] == pytest.approx(layer["instructions"] / total)
    summed = sum(layer["instructions"] for layer in layers)
    assert abs(summed - total) <= TOLERANCE * total
    check = details["layers_check"]
    assert check["passed"] and check["layers_sum"] == summed and check["total"] == total
    assert abs(check["profiled_invoke"] - total) <= TOLERANCE * total
    # the 640×128 layers do five times the MACs of the 128×128 ones, and take more instructions
    middle = max(layer["instructions"] for layer in layers[1:-1] if layer["macs"] == 128 * 128)
    assert min(layers[0]["instructions"], layers[-1]["instructions"]) > 3 * middle


def test_a_firmware_built_without_profiling_says_so(ad_firmware: Firmware, ad01: Path,
                                                    tmp_path: Path) -> None:
    import dataclasses
    import shutil
    import subprocess

    folder = tmp_path / "no-profile"
    shutil.copytree(ad_firmware.folder, folder)
    config = folder / "firmware_config.h"
    text = config.read_text()
    assert "#define EB_PROFILE 1" in text
    config.write_text(text.replace("#define EB_PROFILE 1", "#define EB_PROFILE 0"))
    subprocess.run(["make", "-s", "-C", str(folder), "clean"], check=True)
    subprocess.run(["make", "-s", "-C", str(folder), "firmware.elf"], check=True,
                   capture_output=True)
    built = dataclasses.replace(ad_firmware, folder=folder)
    with qemu.board(request(ad01), built) as link:
        link.load(bytes(640))
        link.infer_lines(1, 0, 30.0)
        details = firmware_layers(link, ad01.read_bytes(), 5e5, "instructions", "emulated",
                                  lambda hz: 1e9 / hz, "timed windows", "ad01", 30.0)
        x = np.zeros(640, np.int8)
        agreement = board_agreement.layer_agreement(link, ad01.read_bytes(), [(x,)], [x], [x],
                                                    "ad01", qemu.METHOD, qemu.HOW)
    assert set(details) == {"layers_reason"}
    assert "built without profiling (EB_PROFILE 0)" in details["layers_reason"]
    assert set(agreement) == {"method", "reason"}  # the cell goes on without it
    assert "`tensor 0%` failed" in agreement["reason"]
    assert "built without profiling (EB_PROFILE 0)" in agreement["reason"]


def test_the_firmware_prints_each_layers_output_as_tflm_computes_it(
        ad_firmware: Firmware, ad01: Path) -> None:
    """``tensor N%``: operator N's output, read as it ends, equals x86-64 TFLite Micro's
    intermediate tensor (its Python interpreter keeps them all with kPreserveAllTensors)."""
    from tflite_micro import runtime

    from bench.board.link import BoardError

    data = ad01.read_bytes()
    host = runtime.Interpreter.from_bytes(
        data, arena_size=1 << 20,
        intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    x = np.random.default_rng(3).normal(0, 40, (1, 640)).clip(-128, 127).astype(np.int8)
    host.set_input(x, 0)
    host.invoke()
    with qemu.board(request(ad01), ad_firmware) as link:
        link.load(x.tobytes())
        printed = [link.op_output(i, 30.0) for i in range(10)]
        with pytest.raises(BoardError, match="no operator 10: the main graph has 10"):
            link.op_output(10, 30.0)
        with pytest.raises(BoardError, match="tensor takes an operator index"):
            link.command("tensor x")
    for i, out in enumerate(printed):
        want = host.GetTensor(out.tensor, 0)["tensor_data"]
        assert out.op == i and out.type == 9  # kTfLiteInt8
        np.testing.assert_array_equal(np.frombuffer(out.data, np.int8), want.reshape(-1))
    assert printed[-1].data == host.get_output(0).tobytes()


def test_a_model_the_firmware_and_litert_agree_on_has_no_layer_that_differs(
        firmware_env: Path, tmp_path: Path) -> None:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tf_keras as keras

    path = _int8(tmp_path / "pool.tflite", keras.layers.Input((8, 8, 2)),
                 keras.layers.MaxPooling2D(2), keras.layers.Flatten())
    evaluated = qemu.evaluate(request(path))
    assert evaluated["output_max_diff"].value == 0
    agreement = evaluated.details["agreement"]
    assert [la["op"] for la in agreement["layers"]] == ["MAX_POOL_2D", "RESHAPE"]
    assert [la["max_diff"] for la in agreement["layers"]] == [0, 0]
    assert agreement["first_layer"] is None and agreement["origin"] is None
    assert agreement["verdict"] == "no layer differs"


def test_ad_instruction_classes_per_inference_and_per_layer(ad_firmware: Firmware, ad01: Path
                                                            ) -> None:
    measured = qemu.measure(request(ad01, min_window_s=0.02, windows=3,
                                    instruction_classes=True))
    details, total = measured.details, measured["instructions"].value
    assert "instruction_classes_warning" not in details
    counted = details["instruction_classes"]
    assert counted["method"] == "emulated" and counted["inferences"] > 3
    # the marked invoke is the inference but for the input's copy and the calls around it
    assert counted["check"]["timed_windows"] == total
    assert -0.01 < counted["check"]["difference"] <= 0
    mix = counted["classes"]
    assert counted["instructions"] == pytest.approx(sum(mix.values()))
    # CMSIS-NN's int8 fully-connected kernel on the M4: dual 16-bit MACs (SMLAD), SXTB16
    assert mix["multiply"] > 640 * 128 / 2 and mix["simd"] > 0
    assert mix["mve"] == mix["divide"] == 0
    assert 0 < counted["branch_taken"] < mix["branch"]
    memory = counted["memory"]
    assert memory["flash_read"] > 0 and memory["sram_read"] > 0 and memory["sram_write"] > 0
    assert memory["flash_write"] == 0
    layers = details["layers"]
    for layer in layers:  # the plugin's operators are the profile's, to the clock's tick
        assert sum(layer["classes"].values()) == pytest.approx(layer["instructions"],
                                                               rel=0.01, abs=50)
        assert layer["memory"]["flash_read"] > 0  # the layer's weights
    assert layers[0]["classes"]["multiply"] > 4 * layers[1]["classes"]["multiply"]
    # the packaged reference counts (the cycle model's fit rests on them) are this firmware's
    packaged = cycles.reference_counts()["cortex-m4f"]["ad"]
    assert counted["instructions"] == pytest.approx(packaged["instructions"], rel=0.01)
    for name in ("multiply", "simd", "load_store"):
        assert mix[name] == pytest.approx(packaged["classes"][name], rel=0.01)
    # latency from the cycle model on this inference's classes, each layer its cycles
    how = details["cycles"]
    assert how["from"] == "the inference's instruction classes"
    memory = cycles.memory_system(DEVICE)
    assert how["cycles"] == pytest.approx(cycles.model_for("cortex-m4f").cycles(counted, memory))
    assert how["cpi"] == pytest.approx(how["cycles"] / counted["instructions"])
    expected_ms = total * how["cpi"] / (DEVICE["clock_mhz"] * 1e3)
    assert measured["latency_p50"].value == pytest.approx(expected_ms, rel=0.01)
    assert sum(layer["cycles"] for layer in layers) == pytest.approx(how["cycles"], rel=0.02)


def test_a_plugin_that_does_not_build_leaves_plain_counts(ad_firmware: Firmware, ad01: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setenv("CC", "no-such-compiler")
    measured = qemu.measure(request(ad01, min_window_s=0.02, windows=2,
                                    instruction_classes=True))
    assert measured["instructions"].value > 3e5 and measured.details["layers"]
    assert "instruction_classes" not in measured.details
    warning = measured.details["instruction_classes_warning"]
    assert "no host C compiler (no-such-compiler)" in warning
    assert warning.endswith("(plain instruction counts only)")


def test_a_board_flashed_with_edgebenchs_firmware_gives_the_serial_runner_its_agreement(
        ad_firmware: Firmware, ad01: Path) -> None:
    """The emulated firmware's pseudo-terminal taken as an attached board's port: the serial
    runner compares its raw outputs and each layer with LiteRT, as the qemu runner does."""
    from bench.firmware.emulator import boot
    from bench.runners import serial

    with boot(ad_firmware.elf, MACHINES[ad_firmware.machine]) as emulator:
        out = serial.evaluate(RunRequest(artifact=ad01, dataset=None, device={}, warmup=0,
                                         options={"port": emulator.port, "timeout_s": 30.0}))
    diff, agreement = out["output_max_diff"], out.details["agreement"]
    assert diff.method == "board" and diff.unit == "steps"
    assert agreement["method"] == "board" and "board's firmware" in agreement["how"]
    char_s = 10 / 115200  # the link's default baud: fewer inputs than QEMU's own UART takes
    samples = board_agreement.agreement_samples(640, 640, char_s, char_s)
    assert agreement["input"]["of"] == samples < 100
    assert agreement["compared"] == agreement["layers_total"] == 10
    assert [la["op"] for la in agreement["layers"]] == ["FULLY_CONNECTED"] * 10
    assert agreement["output_diff"] <= diff.value  # the worst input's, among those compared
    assert agreement["layers"][-1]["max_diff"] == agreement["output_diff"]
