from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from bench.cli import main
from bench.estimate.analysis import Analysis, OpInfo, analyse
from bench.estimate.coefficients import Coefficients
from bench.estimate.interval import GAUSS_Z
from bench.estimate.model import (
    EstimateError,
    Target,
    estimate,
    load_coefficients,
)
from bench.runners.base import RunRequest
from tests.tflite_models import mlperf_model

M4 = Target("l4r5", "cortex-m4f", 120.0, "x-cube-ai", active_mw=40.0, flash_kb=2048, ram_kb=640,
            runtime_version="9.0")
DEVICE_YAML = """id: {id}
core: cortex-m4f
clock_mhz: 120
memory: {{flash_kb: 2048, ram_kb: 640}}
power: {{active_mw: 40.0}}
runtime: x-cube-ai
runtime_version: {version}
connection: {{kind: estimate}}
"""


@pytest.fixture(scope="module")
def kws():  # noqa: ANN201 - an Analysis
    return analyse(mlperf_model("kws_ref_model_int8.tflite").read_bytes())


def width(e) -> float:  # noqa: ANN001 - an Estimate
    """Relative width of the latency interval (high / low)."""
    return e.latency.high / e.latency.low


def test_packaged_table(kws) -> None:  # noqa: ANN001
    table = load_coefficients()
    assert table.meta["schema"] == 2 and table.meta["data"]["sha256"]
    assert {"runtime.tflm", "runtime.x-cube-ai", "core.cortex-m4f", "beta"} <= set(table.params)
    assert table.releases("x-cube-ai")[:3] == ["7.1", "7.3", "8.0"]
    assert "10.2" in table.releases("x-cube-ai")
    assert set(table.intervals) == {"known_model", "new_model"}
    for iv in table.intervals.values():  # calibrated on held-out residuals, not the default
        assert iv.residuals > 100 and iv.z_low < 0 < iv.z_high
    assert kws.sha256 in table.model_hashes
    # the models' MACs, not MACs plus the outputs and gathered elements the shape terms count
    assert table.meta["data"]["models"]["kws"]["macs"] == kws.macs == 2_664_780
    assert len(table.fitted.names) == table.fitted.cov.shape[0]
    assert "packaged" in table.provenance()["table"]


def test_estimate_kws_on_m4_with_its_release(kws) -> None:  # noqa: ANN001
    e = estimate(kws, M4)
    # published X-CUBE-AI 9.0 on this core and clock (NUCLEO-L4R5ZI, v1.2): 43.19 ms
    assert 43.19 / 1.3 < e.latency.value < 43.19 * 1.3
    assert e.latency.low < 43.19 < e.latency.high
    assert e.latency.low < e.latency.value < e.latency.high
    assert e.energy.value == pytest.approx(40.0 * e.latency.value)
    # energy's interval: the latency's half-width and the power figure's (a datasheet figure:
    # this board is not in the table) added in quadrature
    table = load_coefficients()
    energy = e.details["energy"]
    assert energy["source"] == "datasheet" and energy["active_mw"] == 40.0
    psd = table.power["log_sd"]["datasheet"]
    assert energy["power_log_sd"] == pytest.approx(psd) and 0.1 < psd < 1.5
    (z_low, z_high), sd = e.details["interval"]["z"], e.details["interval"]["sd_log"]
    below = math.hypot(z_low * sd, GAUSS_Z * psd)
    above = math.hypot(z_high * sd, GAUSS_Z * psd)
    assert e.energy.low == pytest.approx(e.energy.value * math.exp(-below), rel=1e-3)
    assert e.energy.high == pytest.approx(e.energy.value * math.exp(above), rel=1e-3)
    assert e.energy.low < 40.0 * e.latency.low and e.energy.high > 40.0 * e.latency.high
    assert sum(e.breakdown_ms.values()) == pytest.approx(e.latency.value)
    out = e.to_json()
    for key in ("latency_ms", "latency_ms_low", "latency_ms_high", "energy_uj", "energy_uj_low",
                "energy_uj_high", "interval", "release", "macs", "params", "flash_bytes",
                "ram_bytes", "fits_flash", "fits_ram", "method", "coefficients"):
        assert key in out
    assert out["method"] == "estimated" and out["macs"] == kws.macs
    assert out["interval"]["kind"] == "known_model" and out["interval"]["level"] == 0.8
    assert out["release"]["source"] == "release" and out["release"]["releases"] == ["9.0"]
    assert out["flash_bytes"] == kws.size + out["flash"]["runtime_code_bytes"]
    assert out["ram"]["arena_method"] == "activation-estimate"
    assert out["fits_flash"] and out["fits_ram"] and not out["warnings"]
    assert out["coefficients"]["core_calibrated"] and out["coefficients"]["runtime_calibrated"]


def test_one_figure_from_estimator_to_record_to_page(kws) -> None:  # noqa: ANN001
    """The estimator's latency and energy are the metrics a record stores and every page writes
    (with their interval); the command's JSON keys are read off them."""
    from bench.cli.estimate import _result_table
    from bench.results.metrics import Metric
    from bench.results.record import Record
    from bench.results.table import render

    e = estimate(kws, M4)
    assert isinstance(e.latency, Metric) and isinstance(e.energy, Metric)
    assert (e.latency.unit, e.latency.method) == ("ms", "estimated")
    assert (e.energy.unit, e.energy.method) == ("µJ", "estimated")
    out = e.to_json()
    figures = [k for k in out if k.startswith(("latency_", "energy_"))]
    assert figures == ["latency_ms", "latency_ms_low", "latency_ms_high", "energy_uj",
                       "energy_uj_low", "energy_uj_high"]  # README's keys, in their order
    assert [out[k] for k in figures] == [e.latency.value, e.latency.low, e.latency.high,
                                         e.energy.value, e.energy.low, e.energy.high]
    # a one-MAC layer on a 10 GHz core: well under a microsecond, never "0.00 ms"
    fast = estimate(_one_conv(1, 1, 1, 1, k=1),
                    Target("fast", "cortex-m7", 10_000.0, "tflm", active_mw=40.0))
    assert fast.latency.high < 1e-3
    rows = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1)
                for line in _result_table(fast).splitlines())
    assert rows["latency"] == fast.latency.text() and " ns (" in rows["latency"]
    assert rows["energy"] == fast.energy.text()
    assert not re.search(r"\b0\.0+\b", rows["latency"] + rows["energy"] + rows["time by class"])
    record = Record(suite="s", run_id="r", cell_id="m/v@fast", model="m", variant="v",
                    device="fast", runner="estimate", status="ok",
                    metrics={"latency_p50": fast.latency, "energy_uj": fast.energy})
    assert Record.from_json(record.to_json()).metrics["latency_p50"] == fast.latency
    assert fast.latency.text() in render([record])


def test_runtime_releases(kws) -> None:  # noqa: ANN001
    def at(version: str | None):  # noqa: ANN202
        return estimate(kws, Target("l4r5", "cortex-m4f", 120.0, "x-cube-ai",
                                    runtime_version=version))

    old, new = at("7.1"), at("9.0")
    # the same board and runtime, 97.65 ms with 7.1 and 43.19 ms with 9.0 (published)
    assert old.latency.value / new.latency.value > 1.6
    assert old.latency.low < 97.65 < old.latency.high
    pooled = at(None)
    assert pooled.details["release"]["source"] == "runtime pooled"
    assert new.latency.value < pooled.latency.value < old.latency.value
    assert width(pooled) > width(new)  # the spread of releases widens it
    between = at("X-CUBE-AI v10.0.0")
    assert between.details["release"]["source"] == "nearby releases"
    assert set(between.details["release"]["releases"]) == {"9.0", "10.2"}
    assert width(between) > width(new)
    assert any("release" in w for w in between.details["warnings"])


def test_intervals_are_wider_where_data_is_thin(kws) -> None:  # noqa: ANN001
    base = estimate(kws, M4)
    unseen_core = estimate(kws, Target("s3", "esp32s3-xtensa-lx7", 240.0, "x-cube-ai",
                                       runtime_version="9.0"))
    assert width(unseen_core) > width(base)
    assert not unseen_core.details["coefficients"]["core_calibrated"]
    sww = analyse(mlperf_model("sww_ref_model.tflite").read_bytes())  # not a calibration model
    new_model = estimate(sww, M4)
    assert new_model.details["interval"]["kind"] == "new_model"
    table = load_coefficients()
    assert (table.intervals["new_model"].z_high - table.intervals["new_model"].z_low
            > table.intervals["known_model"].z_high - table.intervals["known_model"].z_low)
    assert any("calibration models" in w for w in new_model.details["warnings"])


def test_faster_cores_and_clocks(kws) -> None:  # noqa: ANN001
    base = estimate(kws, M4).latency.value
    assert estimate(kws, Target("l4r5", "cortex-m4f", 240.0, "x-cube-ai",
                                runtime_version="9.0")).latency.value == pytest.approx(base / 2)
    assert estimate(kws, Target("x", "cortex-m7", 120.0, "x-cube-ai")).latency.value < \
        estimate(kws, Target("x", "cortex-m4f", 120.0, "x-cube-ai")).latency.value
    assert estimate(kws, Target("x", "cortex-m0plus", 120.0, "x-cube-ai")).latency.value > 2 * base


def test_no_power_no_energy_and_memory_checks(kws) -> None:  # noqa: ANN001
    from bench.estimate.footprint import arena_estimate

    # a core no energy result measured, and no power in the device file: no energy figure
    small = Target("tiny", "cortex-m55", 80.0, "tflm", flash_kb=64, ram_kb=16)
    e = estimate(kws, small, arena_bytes=20_000, arena_method="given")
    assert e.energy is None and e.to_json()["energy_uj"] is e.to_json()["energy_uj_high"] is None
    assert e.details["energy"]["source"] is None
    assert e.ram_bytes == 20_000 + 4096 and e.details["ram"]["arena_method"] == "given"
    assert e.fits_flash is False and e.fits_ram is False
    assert estimate(kws, Target("x", "cortex-m4f", 80.0, "tflm")).fits_ram is None
    assert arena_estimate(kws) > kws.peak_activation_bytes


def test_uncalibrated_and_invalid_targets(kws) -> None:  # noqa: ANN001
    e = estimate(kws, Target("s3", "esp32s3-xtensa-lx7", 240.0, "esp-nn"))
    assert len(e.details["warnings"]) == 2 and e.latency.value > 0
    assert e.details["release"]["source"] == "runtime unseen"
    assert not e.details["coefficients"]["runtime_calibrated"]
    with pytest.raises(EstimateError, match="measured, never estimated"):
        estimate(kws, Target("h", "host", 1000.0, "tflm"))
    with pytest.raises(EstimateError, match="no clock_mhz"):
        estimate(kws, Target("h", "cortex-m4f", None, "tflm"))
    with pytest.raises(KeyError, match="cortex-m4f"):
        estimate(kws, Target("h", "cortex-m4x", 100.0, "tflm"))


def test_other_tables(tmp_path: Path, kws) -> None:  # noqa: ANN001
    table = load_coefficients()
    params = {**table.meta["parameters"]}
    params["c0"] += math.log(2)
    path = tmp_path / "table.json"
    path.write_text(json.dumps({**table.meta, "parameters": params}))
    slower = estimate(kws, M4, load_coefficients(path))
    assert 1.8 < slower.latency.value / estimate(kws, M4).latency.value < 2.0  # op cost unchanged
    assert slower.details["coefficients"]["table"] == str(path)
    path.write_text(json.dumps({**table.meta, "schema": 1}))
    with pytest.raises(EstimateError, match="schema-1.*refit"):
        load_coefficients(path)
    path.write_text(json.dumps({"schema": 99}))
    with pytest.raises(EstimateError, match="not an edgebench coefficient table"):
        load_coefficients(path)
    broken = {**table.meta}
    del broken["covariance"]
    path.write_text(json.dumps(broken))
    with pytest.raises(EstimateError, match="malformed"):
        Coefficients.from_json(broken, str(path))


def test_estimate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = mlperf_model("ad01_int8.tflite")
    (tmp_path / "board.yaml").write_text(DEVICE_YAML.format(id="board", version="9.0"))
    assert main(["estimate", str(model), "--device", str(tmp_path / "board.yaml"),
                 "--format", "json", "--arena-bytes", "4000"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "estimated" and out["macs"] == 264_192
    assert out["latency_ms_low"] < out["latency_ms"] < out["latency_ms_high"]
    assert out["ram"]["arena_bytes"] == 4000 and out["energy_uj"] > 0
    assert main(["estimate", str(model), "--device", "board", "--devices-dir",
                 str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "latency" in text and "estimated" in text and "fits RAM" in text
    latency = next(line for line in text.splitlines() if line.startswith("latency"))
    assert " ms (" in latency and "–" in latency  # 4.9 ms (4.1–6.0)
    assert "release: 9.0" in text
    assert main(["estimate", str(mlperf_model("kws_ref_model_int8.tflite")), "--device", "board",
                 "--devices-dir", str(tmp_path)]) == 0
    lines = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1)
                 for line in capsys.readouterr().out.splitlines() if line.startswith("cycles/"))
    assert "depthwise" in lines["cycles/MAC"] and "out_" not in lines["cycles/MAC"]
    assert lines["cycles/output"].startswith("conv ")  # per conv output, not per MAC
    assert lines["cycles/gathered element"].startswith("conv ")
    assert main(["estimate", str(model), "--device", "nope", "--devices-dir",
                 str(tmp_path)]) == 2


def test_an_estimate_imports_neither_pandas_nor_tensorflow() -> None:
    """One ``edgebench estimate`` call stays well under a second: pandas alone costs 0.35 s
    to import (an import in ``bench.estimate.power`` once doubled the call's time)."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = ("import sys, contextlib, io; from bench.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    code = main(['estimate', {str(mlperf_model('kws_ref_model_int8.tflite'))!r}, "
            "'--device', 'nucleo-l4r5zi'])\n"
            "print(code, sorted(m for m in ('pandas', 'tensorflow', 'scipy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, timeout=120)
    assert out.stdout.split("\n")[-2] == "0 []"


def test_a_device_file_names_its_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    table = load_coefficients()
    params = {**table.meta["parameters"], "c0": table.meta["parameters"]["c0"] + math.log(3)}
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "mine.json").write_text(json.dumps({**table.meta,
                                                               "parameters": params}))
    yaml = DEVICE_YAML.format(id="mine", version="9.0")
    yaml += "estimate: {coefficients: tables/mine.json}\n"
    (tmp_path / "mine.yaml").write_text(yaml)
    model = mlperf_model("kws_ref_model_int8.tflite")
    assert main(["estimate", str(model), "--device", str(tmp_path / "mine.yaml"),
                 "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["coefficients"]["table"] == str(tmp_path / "tables" / "mine.json")
    assert out["latency_ms"] > 2.5 * estimate(analyse(model.read_bytes()), M4).latency.value


def test_estimate_runner(tmp_path: Path) -> None:
    from bench.registry import load_ref
    from bench.runners import tflm
    from bench.runners.estimate import ESTIMATE, measure, provenance

    device = {"id": "board", "core": "cortex-m4f", "clock_mhz": 120, "runtime": "x-cube-ai",
              "runtime_version": "9.0", "power": {"active_mw": 40.0},
              "connection": {"kind": "estimate"}}
    request = RunRequest(artifact=mlperf_model("kws_ref_model_int8.tflite"), dataset=None,
                         device=device)
    metrics = measure(request)
    lat = metrics["latency_p50"]
    assert lat.method == "estimated" and lat.unit == "ms"
    assert lat.low < lat.value < lat.high
    assert metrics["energy_uj"].unit == "µJ"
    assert metrics["energy_uj"].value == pytest.approx(40 * lat.value)
    assert metrics["energy_uj"].high > 40 * lat.high  # the power figure's spread widens it
    assert lat.to_json()["low"] == lat.low  # stored in the record
    # the estimator's own figures, as they are: nothing re-assembled on the way
    own = estimate(analyse(request.artifact.read_bytes()), Target.from_device(device))
    assert metrics == {"latency_p50": own.latency, "energy_uj": own.energy}
    no_power = measure(RunRequest(artifact=request.artifact, dataset=None,
                                  device={**device, "core": "cortex-m55", "power": None}))
    assert set(no_power) == {"latency_p50"}  # no figure of its own, none known for its core
    prov = provenance(device)
    assert prov["core_calibrated"] and prov["release"]["source"] == "release"
    assert prov["runtime_version"] == "9.0" and ESTIMATE.name == "estimate"
    assert prov["power"]["source"] == "datasheet" and prov["power"]["power_mw"] == 40.0
    assert ESTIMATE.unsupported(b"", {}) is None
    # evaluation is TFLite Micro's own (same function, so the session caches it once)
    assert load_ref(ESTIMATE.evaluate) is tflm.evaluate and load_ref(ESTIMATE.measure) is measure


def test_devices_runtimes_lists_releases(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "runtimes"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("x-cube-ai"))
    assert "7.1" in line and "10.2" in line
    assert "releases the estimator knows" in out


def test_power_spread_counts_cores_measured_on_two_systems_or_more() -> None:
    import pandas as pd

    from bench.estimate import power

    def rows(systems: list[tuple[str, str, float]]) -> pd.DataFrame:
        return pd.DataFrame([{"core": c, "group": g, "energy_uj": mw_per_mhz * 10 * 100,
                              "latency_ms": 10.0, "clock_mhz": 100.0} for c, g, mw_per_mhz in
                             systems])

    alone = rows([("cortex-m4f", "a", 0.3), ("cortex-m7", "b", 0.5)])
    assert power.log_sd(alone) == power.DEFAULT_LOG_SD  # no core seen twice: no spread known
    pair = rows([("cortex-m4f", "a", 0.2), ("cortex-m4f", "b", 0.8), ("cortex-m7", "c", 9.0)])
    assert power.per_mhz(pair)["cortex-m4f"] == pytest.approx(0.5)
    # each system against the core's *other* systems (a system never predicts itself)
    assert power.log_sd(pair) == pytest.approx(math.log(4.0))


def _one_conv(h: int, w: int, cin: int, cout: int, k: int = 3) -> Analysis:
    """A model of one int8 k×k conv ('same' padding) on an h×w×cin input."""
    out = h * w * cout
    op = OpInfo(index=0, subgraph=0, op="CONV_2D", op_class="conv", dtype="int8",
                macs=out * k * k * cin, params=cout * (k * k * cin + 1),
                input_bytes=h * w * cin, output_bytes=out, output_elements=out,
                kernel=(k, k), channels=cout)
    return Analysis(size=op.params + 1000, params=op.params, ops=(op,),
                    peak_activation_bytes=op.input_bytes + out, variable_bytes=0,
                    input_bytes=op.input_bytes, output_bytes=out, tensors=4, conv_channels=cout)


def test_a_thin_layer_costs_more_per_mac_than_a_deep_one() -> None:
    """One input channel and eight filters run several times dearer per MAC than 32 → 32 under
    TFLite Micro with CMSIS-NN (emulated: 14.0 against 1.93 instructions per MAC,
    ``benchmarks/layer_costs.py``); the packaged table prices the difference."""
    tflm = Target("m4", "cortex-m4f", 120.0, "tflm")
    per_mac = []
    for a in (_one_conv(64, 64, 1, 8), _one_conv(16, 16, 32, 32)):
        e = estimate(a, tflm)
        layer_ms = sum(ms for part, ms in e.breakdown_ms.items() if part != "operator calls")
        per_mac.append(layer_ms * 120e3 / a.macs)
        assert set(e.breakdown_ms) >= {"conv", "out_conv", "patch_conv"}
    assert per_mac[0] > 3 * per_mac[1], per_mac


def test_only_a_k_by_k_conv_gathers_elements() -> None:
    from dataclasses import replace

    from bench.estimate.design import Workload

    conv = _one_conv(16, 16, 3, 8)
    assert Workload.from_analysis(conv).macs[("int8", "patch_conv")] == 16 * 16 * 9 * 3
    transpose = replace(conv, ops=(replace(conv.ops[0], op="TRANSPOSE_CONV", kernel=()),))
    assert ("int8", "patch_conv") not in Workload.from_analysis(transpose).macs
    assert Workload.from_analysis(transpose).mac_count == conv.macs


def test_a_runtimes_layer_factor_scales_the_whole_layer() -> None:
    """A runtime's conv kernels being faster makes its conv outputs and gathering faster too:
    its per-class factor scales a layer's MACs, outputs and gathered elements alike, so their
    shares of a conv's cost are the same on every runtime."""
    conv = _one_conv(32, 32, 8, 16)
    shares = []
    for runtime in ("tflm", "x-cube-ai", "plumerai"):
        b = estimate(conv, Target("m4", "cortex-m4f", 120.0, runtime)).breakdown_ms
        shares.append((b["out_conv"] / b["conv"], b["patch_conv"] / b["conv"]))
    assert shares[0] == pytest.approx(shares[1], rel=1e-6)
    assert shares[0] == pytest.approx(shares[2], rel=1e-6)
