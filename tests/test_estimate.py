from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bench.cli import main
from bench.estimate import calibrate as cal
from bench.estimate.analysis import analyse
from bench.estimate.model import (
    Coefficients,
    EstimateError,
    Target,
    arena_estimate,
    estimate,
    load_coefficients,
)
from bench.runners.base import RunRequest
from tests.tflite_models import SHARED, mlperf_model

CSV = SHARED / "data" / "mlperf_tiny_results.csv"
M4 = Target("l4r5", "cortex-m4f", 120.0, "x-cube-ai", active_mw=40.0, flash_kb=2048, ram_kb=640)
DEVICE_YAML = """id: {id}
core: cortex-m4f
clock_mhz: 120
memory: {{flash_kb: 2048, ram_kb: 640}}
power: {{active_mw: 40.0}}
runtime: x-cube-ai
connection: {{kind: estimate}}
"""


def _csv() -> Path:
    if not CSV.is_file():
        pytest.skip(f"calibration data not found at {CSV}")
    return CSV


def _models() -> dict[str, Path]:
    return {"kws": mlperf_model("kws_ref_model_int8.tflite"),
            "vww": mlperf_model("vww_96_int8.tflite"),
            "ic": mlperf_model("ic_resnet8_int8.tflite"), "ad": mlperf_model("ad01_int8.tflite")}


@pytest.fixture(scope="module")
def kws():  # noqa: ANN201 - an Analysis
    return analyse(mlperf_model("kws_ref_model_int8.tflite").read_bytes())


def test_packaged_table() -> None:
    table = load_coefficients()
    assert table.meta["schema"] == 1 and table.meta["data"]["sha256"]
    assert {"runtime.tflm", "runtime.x-cube-ai", "core.cortex-m4f", "beta"} <= set(table.params)
    assert table.rounds["v1.3"] == table.reference_round
    assert "packaged" in table.provenance()["table"]


def test_estimate_kws_on_m4(kws) -> None:  # noqa: ANN001
    e = estimate(kws, M4)
    # published X-CUBE-AI on this core and clock, v1.2 / v1.3: 43.2 / 43.4 ms
    assert 43.3 / 1.35 < e.latency_ms < 43.3 * 1.35
    assert e.energy_uj == pytest.approx(40.0 * e.latency_ms)
    assert sum(e.breakdown_ms.values()) == pytest.approx(e.latency_ms)
    out = e.to_json()
    for key in ("latency_ms", "energy_uj", "macs", "params", "flash_bytes", "ram_bytes",
                "fits_flash", "fits_ram", "method", "coefficients"):
        assert key in out
    assert out["method"] == "estimated" and out["macs"] == kws.macs
    assert out["flash_bytes"] == kws.size + out["flash"]["runtime_code_bytes"]
    assert out["ram"]["arena_method"] == "activation-estimate"
    assert out["fits_flash"] and out["fits_ram"] and not out["warnings"]
    assert out["coefficients"]["core_calibrated"] and out["coefficients"]["round"] == "v1.3"


def test_faster_cores_and_clocks(kws) -> None:  # noqa: ANN001
    base = estimate(kws, M4).latency_ms
    assert estimate(kws, Target("x", "cortex-m4f", 240.0, "x-cube-ai")).latency_ms == \
        pytest.approx(base / 2)
    assert estimate(kws, Target("x", "cortex-m7", 120.0, "x-cube-ai")).latency_ms < base
    assert estimate(kws, Target("x", "cortex-m0plus", 120.0, "x-cube-ai")).latency_ms > 2 * base


def test_no_power_no_energy_and_memory_checks(kws) -> None:  # noqa: ANN001
    small = Target("tiny", "cortex-m4f", 80.0, "tflm", flash_kb=64, ram_kb=16)
    e = estimate(kws, small, arena_bytes=20_000, arena_method="given")
    assert e.energy_uj is None and e.to_json()["energy"]["active_mw"] is None
    assert e.ram_bytes == 20_000 + 4096 and e.details["ram"]["arena_method"] == "given"
    assert e.fits_flash is False and e.fits_ram is False
    assert estimate(kws, Target("x", "cortex-m4f", 80.0, "tflm")).fits_ram is None
    assert arena_estimate(kws) > kws.peak_activation_bytes


def test_uncalibrated_and_invalid_targets(kws) -> None:  # noqa: ANN001
    e = estimate(kws, Target("s3", "esp32s3-xtensa-lx7", 240.0, "esp-nn"))
    assert len(e.details["warnings"]) == 2 and e.latency_ms > 0
    assert not e.details["coefficients"]["runtime_calibrated"]
    with pytest.raises(EstimateError, match="measured, never estimated"):
        estimate(kws, Target("h", "host", 1000.0, "tflm"))
    with pytest.raises(EstimateError, match="no clock_mhz"):
        estimate(kws, Target("h", "cortex-m4f", None, "tflm"))
    with pytest.raises(KeyError, match="cortex-m4f"):
        estimate(kws, Target("h", "cortex-m4x", 100.0, "tflm"))


def test_other_table(tmp_path: Path, kws) -> None:  # noqa: ANN001
    table = load_coefficients()
    data = {**table.meta, "parameters": {**table.params, "c0": table.params["c0"] + math.log(2)}}
    path = tmp_path / "table.json"
    path.write_text(json.dumps(data))
    slower = estimate(kws, M4, load_coefficients(path))
    assert 1.9 < slower.latency_ms / estimate(kws, M4).latency_ms < 2.0  # overhead unchanged
    assert slower.details["coefficients"]["table"] == str(path)
    path.write_text(json.dumps({"schema": 99}))
    with pytest.raises(EstimateError, match="schema"):
        load_coefficients(path)


def test_estimate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = mlperf_model("ad01_int8.tflite")
    (tmp_path / "board.yaml").write_text(DEVICE_YAML.format(id="board"))
    assert main(["estimate", str(model), "--device", str(tmp_path / "board.yaml"),
                 "--format", "json", "--arena-bytes", "4000"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "estimated" and out["macs"] == 264_192
    assert out["ram"]["arena_bytes"] == 4000 and out["energy_uj"] > 0
    assert main(["estimate", str(model), "--device", "board", "--devices-dir",
                 str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "latency" in text and "estimated" in text and "fits RAM" in text
    assert main(["estimate", str(model), "--device", "nope", "--devices-dir",
                 str(tmp_path)]) == 2


def test_estimate_runner(tmp_path: Path) -> None:
    from bench.registry import load_ref
    from bench.runners import tflm
    from bench.runners.estimate import ESTIMATE, measure, provenance

    device = {"id": "board", "core": "cortex-m4f", "clock_mhz": 120, "runtime": "x-cube-ai",
              "power": {"active_mw": 40.0}, "connection": {"kind": "estimate"}}
    request = RunRequest(artifact=mlperf_model("kws_ref_model_int8.tflite"), dataset=None,
                         device=device)
    metrics = measure(request)
    assert metrics["latency_p50"].method == "estimated" and metrics["latency_p50"].unit == "ms"
    assert metrics["energy_uj"].unit == "µJ"
    assert metrics["energy_uj"].value == pytest.approx(40 * metrics["latency_p50"].value)
    no_power = measure(RunRequest(artifact=request.artifact, dataset=None,
                                  device={**device, "power": None}))
    assert set(no_power) == {"latency_p50"}
    assert provenance(device)["core_calibrated"] and ESTIMATE.name == "estimate"
    assert ESTIMATE.unsupported(b"", {}) is None
    # evaluation is TFLite Micro's own (same function, so the session caches it once)
    assert load_ref(ESTIMATE.evaluate) is tflm.evaluate and load_ref(ESTIMATE.measure) is measure


# --- calibration ---------------------------------------------------------------------------


def test_load_results_skips_what_it_cannot_map(tmp_path: Path) -> None:
    head = "version,system,core,clock_mhz,stack,benchmark,latency_ms,energy_uj,division,board\n"
    rows = ["v1.0,a,Cortex-M4F,120,x-cube-ai,kws,50,,closed,NUCLEO-L4R5ZI",
            "v1.0,a,Cortex-M4F,120,x-cube-ai,sww,,,closed,NUCLEO-L4R5ZI",
            "v1.0,b,Cortex-Z9,100,tflm,kws,50,,closed,X",
            "v1.0,c,Cortex-M7,216,syntiant,kws,5,,closed,Y",
            "v1.0,d,Cortex-M7,216,tflm,kws,5,,open,Y"]
    (tmp_path / "r.csv").write_text(head + "\n".join(rows) + "\n")
    usable, skipped = cal.load_results(tmp_path / "r.csv")
    assert list(usable["core"]) == ["cortex-m4f"] and sum(skipped.values()) == 4
    assert skipped["core not mapped to bench.cores: Cortex-Z9"] == 1
    assert skipped["runtime not modelled: syntiant"] == 1
    assert usable["group"].iloc[0] == "nucleol4r5zi@120MHz/x-cube-ai"
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="missing columns"):
        cal.load_results(tmp_path / "bad.csv")


def test_calibrate_is_deterministic_and_matches_the_estimator(tmp_path: Path) -> None:
    csv, models = _csv(), _models()
    one, two = cal.calibrate(csv, models), cal.calibrate(csv, models)
    assert one["parameters"] == two["parameters"] and one["data"] == two["data"]
    assert one["data"]["rows_used"] > 150 and one["data"]["rows_skipped"]
    assert one["in_sample"]["median_ape"] < 20
    # the vectorised fit and the scalar estimator agree, row by row
    rows, feats, ref = cal._prepare(csv, models)
    fitted = cal.fit(rows, feats, ref)
    table = Coefficients.from_json(one, "test")
    latest = rows[(rows["round"] == rows["runtime"].map(table.runtime_round))
                  & (rows["dtype"] == "int8")].head(12)
    assert len(latest) == 12
    analyses = {b: analyse(p.read_bytes()) for b, p in models.items()}
    for (_, row), ms in zip(latest.iterrows(), fitted.predict_ms(latest, feats), strict=True):
        target = Target("x", row["core"], row["clock_mhz"], row["runtime"])
        assert estimate(analyses[row["benchmark"]], target, table).latency_ms == \
            pytest.approx(ms, rel=1e-9)


def test_leave_out_errors() -> None:
    rows, feats, ref = cal._prepare(_csv(), _models())
    lmo = cal.leave_models_out(rows, feats, ref)
    assert set(lmo["benchmark"]) == set(cal.BENCHMARKS)
    assert lmo["ape"].median() <= 40  # the target over the four left-out models
    groups = ["nucleol4r5zi@120MHz/x-cube-ai", "nucleou575zi@160MHz/bosch-hale"]
    lso = cal.leave_systems_out(rows, feats, ref, groups)
    assert set(lso["group"]) == set(groups) and lso["seen"].all()
    assert np.isfinite(lso["ape"]).all() and lso["energy_ape"].notna().any()
    text = cal.render(cal.summarise(lso, lmo))
    assert "Leave whole systems out" in text and "| all four " in text


def test_calibrate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv, models = _csv(), _models()
    out = tmp_path / "coef.json"
    args = ["calibrate", "--results", str(csv), "--out", str(out)]
    args += [a for b, p in models.items() for a in ("--model", f"{b}={p}")]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "skipped" in printed and "RISC-V" in printed
    table = load_coefficients(out)
    assert table.meta["systems"] and table.meta["fitted"]
    assert main(args[:5] + ["--model", "kws=x"]) == 2
    assert main(["calibrate", "--results", str(csv), "--model", "qq=1", "--out", "x"]) == 2
