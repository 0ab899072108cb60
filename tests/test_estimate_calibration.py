"""Calibration: releases, the fit, cross-validation with intervals, calibrating from records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.board.reference_models import REFERENCE_FILES
from bench.cli import main
from bench.devices import releases
from bench.estimate import power
from bench.estimate.analysis import analyse
from bench.estimate.coefficients import Coefficients
from bench.estimate.crossval import Interval, fit_data, leave_models_out, leave_systems_out
from bench.estimate.data import load_results, queries, results_data
from bench.estimate.design import Structure
from bench.estimate.fit import predict, to_json
from bench.estimate.model import Target, estimate, load_coefficients
from bench.results.metrics import Metric
from bench.results.record import Record
from bench.results.store import Store
from tests.tflite_models import MLPERF, SHARED, mlperf_model

CSV = SHARED / "data" / "mlperf_tiny_results.csv"
STRUCTURE = Structure(0.3, False, 0.3, True, robust=1.0)


def _csv() -> Path:
    if not CSV.is_file():
        pytest.skip(f"calibration data not found at {CSV}")
    return CSV


def _models() -> dict[str, Path]:
    return {b: mlperf_model(f) for b, f in REFERENCE_FILES.items()}


@pytest.fixture(scope="module")
def data():  # noqa: ANN201 - the calibration rows
    return results_data(_csv(), _models())


@pytest.mark.parametrize(("text", "version"), [
    ("X-CUBE-AI v7.3.0", "7.3"), ("X-CUBE-AI v9.0", "9.0"), ("9.0.0", "9.0"), ("10.2", "10.2"),
    ("Bosch Hardware-Aware Lowering Engine (HALE) version 1.0.175", "1.0.175"),
    ("LEIP v1.9.3; libs: DMLC Core", "1.9.3"), ("Plumerai Inference Engine 2023.05", "2023.05"),
    ("7", "7.0"), ("Plumerai Inference Engine", None), ("STEDGE-AI Internal version", None),
    ("hls4ml; libs: Vivado HLS 2019.1", None), ("tflite-micro, commit_id:a30942eb03", None)])
def test_release_text_is_normalised(text: str, version: str | None) -> None:
    assert releases.normalise(text) == version


def test_release_resolution() -> None:
    slots = [releases.Slot("7.1", "7.1", "v0.7", 12, 3), releases.Slot("7.3", "7.3", "v1.0", 2, 1),
             releases.Slot("9.0", "9.0", "v1.2", 8, 2)]
    exact = releases.resolve(slots, "9.0")
    assert exact.source == "release" and exact.weights == {"9.0": 1.0} and exact.steps == 0
    thin = releases.resolve(slots, "7.3")
    assert thin.source == "release" and "pooled" in thin.note
    between = releases.resolve(slots, "8.1")
    assert between.source == "nearby releases" and between.weights == {"7.3": 0.5, "9.0": 0.5}
    newer = releases.resolve(slots, "11.0")
    assert newer.weights == {"9.0": 1.0} and newer.steps == 1.0 and "newer" in newer.note
    pooled = releases.resolve(slots, None)
    assert pooled.source == "runtime pooled" and pooled.spread
    assert sum(pooled.weights.values()) == pytest.approx(1.0)
    assert pooled.weights["7.1"] > pooled.weights["7.3"]
    assert releases.resolve([], "9.0").source == "runtime unseen"
    # a published result names its round: placed among the slots by round
    assert releases.resolve(slots, None, "v1.1").weights == {"7.3": 0.5, "9.0": 0.5}


def test_load_results_skips_what_it_cannot_map(tmp_path: Path) -> None:
    head = ("version,system,core,clock_mhz,stack,benchmark,latency_ms,energy_uj,division,board,"
            "software,processor\n")
    rows = ["v1.0,a,Cortex-M4F,120,x-cube-ai,kws,50,,closed,NUCLEO-L4R5ZI,X-CUBE-AI v7.3.0,"
            "32-bit Arm Cortex-M4 (DSP + FPU)",
            "v1.0,a_int8_min_ram,Cortex-M4F,120,x-cube-ai,kws,60,,closed,NUCLEO-L4R5ZI,,",
            "v1.0,a,Cortex-M4F,120,x-cube-ai,sww,,,closed,NUCLEO-L4R5ZI,,",
            "v1.0,b,Cortex-Z9,100,tflm,kws,50,,closed,X,,",
            "v1.0,c,Cortex-M7,216,syntiant,kws,5,,closed,Y,,",
            "v1.0,d,Cortex-M7,216,tflm,kws,5,,open,Y,,",
            # a core the model knows and a runtime it models, but an accelerator beside the
            # core runs the network: its latency is not the core's (it would pull the fit)
            "v1.3,e,Cortex-M33,96,x-cube-ai,kws,16.5,,closed,Z,STEDGE-AI,"
            "Arm Cortex-M33 32-bit RISC core + accel: DSP Co-processor"]
    (tmp_path / "r.csv").write_text(head + "\n".join(rows) + "\n")
    usable, skipped = load_results(tmp_path / "r.csv")
    assert list(usable["core"]) == ["cortex-m4f"] * 2 and sum(skipped.values()) == 5
    assert skipped["an accelerator beside the core runs inference (not modelled)"] == 1
    assert skipped["core not mapped to bench.devices.cores: Cortex-Z9"] == 1
    assert skipped["runtime not modelled: syntiant"] == 1
    assert usable["group"].iloc[0] == "nucleol4r5zi@120MHz/x-cube-ai"
    def text(column: str) -> list[str | None]:
        return [v if isinstance(v, str) else None for v in usable[column]]

    assert text("release") == ["7.3", None] and text("slot") == ["7.3", "@v1.0"]
    assert text("config") == [None, "min_ram"]
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="missing columns"):
        load_results(tmp_path / "bad.csv")


def test_a_csv_without_some_benchmarks_calibrates_on_what_it_has(tmp_path: Path) -> None:
    rows = pd.read_csv(_csv())
    rows[rows["benchmark"] != "kws"].to_csv(tmp_path / "no_kws.csv", index=False)
    models = {b: p for b, p in _models().items() if b != "kws"}
    data = results_data(tmp_path / "no_kws.csv", models)
    assert set(data.rows["benchmark"]) == {"vww", "ic", "ad"} and not data.skipped.get(
        "no --model for benchmark kws")
    partial = results_data(_csv(), models)  # kws rows present, no kws model: skipped, said so
    assert partial.skipped["no --model for benchmark kws"] > 40
    fitted = fit_data(data, STRUCTURE)
    assert np.isfinite(fitted.theta).all() and fitted.sigma < 0.5


def test_the_fit_and_the_estimator_agree(data) -> None:  # noqa: ANN001
    fitted = fit_data(data, STRUCTURE)
    table = Coefficients.from_json({
        "schema": 2, "kind": "edgebench estimator coefficients", **to_json(fitted, digits=12),
        "intervals": {k: Interval().to_json() for k in ("known_model", "new_model")}}, "test")
    pred = predict(table.fitted, queries(data, table.fitted.slots))
    analyses = {b: analyse(p.read_bytes()) for b, p in _models().items()}
    rows = data.rows[(data.rows["dtype"] == "int8") & data.rows["release"].notna()
                     & data.rows["config"].isna()].head(12)
    assert len(rows) == 12
    for i, row in rows.iterrows():
        target = Target(row["board"], row["core"], row["clock_mhz"], row["runtime"],
                        runtime_version=row["release"])
        e = estimate(analyses[row["benchmark"]], target, table)
        assert e.latency.value == pytest.approx(np.exp(pred.log_ms[i]), rel=1e-6)
    # a board with published results has its own factor; a new board keeps the prior's width
    assert "board.nucleol4r5zi" in fitted.names
    seen = estimate(analyses["kws"], Target("nucleo-l4r5zi", "cortex-m4f", 120, "x-cube-ai",
                                            runtime_version="9.0"), table)
    new = estimate(analyses["kws"], Target("my-board", "cortex-m4f", 120, "x-cube-ai",
                                           runtime_version="9.0"), table)
    assert new.details["interval"]["sd_log"] > seen.details["interval"]["sd_log"]


def test_leave_out_errors_and_intervals(data) -> None:  # noqa: ANN001
    lmo = leave_models_out(data, STRUCTURE)
    ape = (lmo["pred_ms"] / lmo["latency_ms"] - 1).abs() * 100
    assert set(lmo["benchmark"]) == {"kws", "vww", "ic", "ad"}
    assert ape.median() <= 20  # the issue's leave-one-model-out target
    groups = ["nucleol4r5zi@120MHz/x-cube-ai", "nucleou575zi@160MHz/bosch-hale"]
    lso = leave_systems_out(data, STRUCTURE, groups)
    assert set(lso["fold"]) == set(groups)
    assert (lso["low_ms"] < lso["pred_ms"]).all() and (lso["pred_ms"] < lso["high_ms"]).all()
    held = lso[lso["group"] == groups[0]]  # its releases are shared by other systems
    assert (held["resolution"] == "release").all()
    assert ((held["pred_ms"] / held["latency_ms"] - 1).abs().median()) < 0.25


def test_calibrate_command_from_published_results(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "coef.json"
    devices = Path(__file__).resolve().parents[1] / "devices"
    assert main(["calibrate", "--results", str(_csv()), "--models-dir", str(MLPERF),
                 "--devices-dir", str(devices), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "skipped" in printed and "RISC-V" in printed and "inner cross-validation" in printed
    xcube = next(line for line in printed.splitlines() if line.startswith("x-cube-ai"))
    assert "7.1, 7.3, 8.0, 8.1, 9.0" in xcube
    table = load_coefficients(out)
    assert table.meta["systems"] and table.meta["fitted"]
    assert table.intervals["known_model"].residuals > 150
    packaged = load_coefficients()
    assert table.fitted.names == packaged.fitted.names  # the shipped table is this command's
    np.testing.assert_allclose(table.fitted.theta, packaged.fitted.theta, atol=1e-4)
    # the power spreads too: the datasheet one from the shipped device files' datasheet
    # figures against the same boards' published power, wider than a figure measured there
    assert table.power == packaged.power
    spreads = table.power["log_sd"]
    assert spreads["datasheet"] > spreads["measured"] > 0
    assert spreads["datasheet"] != power.DATASHEET_LOG_SD  # fitted, not the nominal figure
    assert main(["calibrate", "--results", str(_csv()), "--model", "qq=1", "--out", "x"]) == 2
    assert main(["calibrate", "--out", "x"]) == 2  # no data at all


# --- the user's own records ----------------------------------------------------------------

BOARD_YAML = """id: my-board
core: cortex-m4f
clock_mhz: 100
memory: {flash_kb: 1024, ram_kb: 256}
runtime: tflm
connection: {kind: serial, port: /dev/null}
"""


def _run_with_records(root: Path, latencies: dict[str, float], method: str = "board") -> Path:
    run = Store(root / "results").create("mine", {})
    for bench, ms in latencies.items():
        path = mlperf_model(REFERENCE_FILES.get(bench, "sww_ref_model.tflite"))
        import hashlib

        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        run.append(Record(suite="mine", run_id=run.run_id, cell_id=f"{bench}/int8@my-board",
                          model=bench, variant="int8", device="my-board", runner="serial",
                          status="ok", artifact_sha256=sha,
                          metrics={"latency_p50": Metric(ms, "ms", method)}))
    run.release()
    return run.path


def test_calibrate_from_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "my-board.yaml").write_text(BOARD_YAML)
    board = Target("my-board", "cortex-m4f", 100.0, "tflm")
    packaged = load_coefficients()
    analyses = {b: analyse(mlperf_model(f).read_bytes())
                for b, f in {**REFERENCE_FILES, "sww": "sww_ref_model.tflite"}.items()}
    before = {b: estimate(a, board, packaged).latency.value for b, a in analyses.items()}
    measured = {b: 1.6 * ms for b, ms in before.items()}  # this board is 1.6× slower
    run = _run_with_records(tmp_path, measured)
    _run_with_records(tmp_path / "est", {"kws": 1.0}, method="estimated")  # never calibrates
    out = tmp_path / "mine.json"
    args = ["calibrate", "--records", str(run), "--records", str(tmp_path / "est"),
            "--devices-dir", str(tmp_path / "devices"), "--artifacts", str(MLPERF),
            "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "method 'estimated'" in printed
    mine = load_coefficients(out)
    assert mine.params["board.myboard"] > 0.25  # log 1.6 = 0.47, shrunk by its prior
    assert mine.meta["evaluation"]["refit_of"] == packaged.source
    after = {b: estimate(a, board, mine).latency.value for b, a in analyses.items()}
    for b in analyses:  # the refit moved every model, sww included, towards the board
        assert abs(np.log(after[b] / measured[b])) < abs(np.log(before[b] / measured[b]))
    assert mine.releases("x-cube-ai") == packaged.releases("x-cube-ai")
    # the device file points at its table
    yaml = BOARD_YAML.replace("id: my-board", "id: my-board2") + f"estimate: {{coefficients: " \
                                                                   f"{out}}}\n"
    (tmp_path / "devices" / "my-board2.yaml").write_text(yaml)
    assert main(["estimate", str(mlperf_model("kws_ref_model_int8.tflite")), "--device",
                 "my-board2", "--devices-dir", str(tmp_path / "devices"), "--format",
                 "json"]) == 0
    assert json.loads(capsys.readouterr().out)["coefficients"]["table"] == str(out)
    nothing = ["calibrate", "--records", str(tmp_path / "est"), "--devices-dir",
               str(tmp_path / "devices"), "--out", str(out)]
    assert main(nothing) == 2


def test_holdout_records_calibrate_the_new_model_interval_and_never_the_fit(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Records of models that run 3× slower than estimated, given as holdout: the new-model
    interval reaches higher; the fit and the known-model interval are the same as without."""
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "my-board.yaml").write_text(BOARD_YAML)
    board = Target("my-board", "cortex-m4f", 100.0, "tflm")
    slow = {b: 3 * estimate(analyse(mlperf_model(f).read_bytes()), board).latency.value
            for b, f in {**REFERENCE_FILES, "sww": "sww_ref_model.tflite"}.items()}
    run = _run_with_records(tmp_path, slow, method="emulated")
    fit = ["calibrate", "--results", str(_csv()), "--models-dir", str(MLPERF)]
    assert main([*fit, "--out", str(tmp_path / "plain.json")]) == 0
    held = [*fit, "--holdout-records", str(run), "--devices-dir", str(tmp_path / "devices"),
            "--artifacts", str(MLPERF)]
    assert main([*held, "--out", str(tmp_path / "held.json")]) == 0
    assert "5 holdout rows of 5 models never fitted" in capsys.readouterr().out
    plain, with_holdout = (load_coefficients(tmp_path / f) for f in ("plain.json", "held.json"))
    np.testing.assert_array_equal(plain.fitted.theta, with_holdout.fitted.theta)
    assert plain.intervals["known_model"] == with_holdout.intervals["known_model"]
    assert with_holdout.intervals["new_model"].z_high > plain.intervals["new_model"].z_high + 0.3
    assert str(run / "records.jsonl") in with_holdout.meta["data"]["holdout_records"]
    refit = ["calibrate", "--records", str(run), "--holdout-records", str(run), "--devices-dir",
             str(tmp_path / "devices"), "--artifacts", str(MLPERF), "--out", str(tmp_path / "x")]
    assert main(refit) == 2
    assert "a refit keeps its table's intervals" in capsys.readouterr().err


def test_releases_held_out_inside_the_data_size_the_missing_release_z(data) -> None:  # noqa: ANN001
    """Each release of the training data held out in turn (every system that ran it): its rows
    are predicted without it, so making one release 10× faster moves exactly that fold's
    residuals by log 10 — and the procedure's ``release not in the data`` z follows it."""
    from bench.estimate.crossval import procedure, release_key, release_residuals

    xcube = data.subset(data.rows["runtime"] == "x-cube-ai")
    keys = release_key(xcube.rows)
    fast = xcube.subset(np.ones(len(keys), bool))
    fast.rows.loc[(keys == "x-cube-ai/8.0").to_numpy(), "latency_ms"] /= 10
    plain, faster = (release_residuals(d, STRUCTURE) for d in (xcube, fast))
    assert sorted(set(plain["held_release"])) == sorted(set(keys))
    assert len(plain) == len(xcube.rows)  # every row held out once, with its release
    assert (plain["held_release"] == release_key(plain)).all()
    assert not (plain["resolution"] == "release").any()  # never its own release's effect
    held = faster["held_release"] == "x-cube-ai/8.0"
    np.testing.assert_allclose(faster.loc[held, "log_pred"], plain.loc[held, "log_pred"])
    shift = np.log(faster.loc[held, "latency_ms"]) - np.log(plain.loc[held, "latency_ms"])
    np.testing.assert_allclose(shift, -np.log(10))
    z = (np.log(faster["latency_ms"]) - faster["log_pred"]) / faster["sd"]
    # seven releases weigh the same: the 10th percentile falls among the fast release's rows
    missing = procedure(fast, (STRUCTURE,)).intervals["known_model"].for_doubt(
        "release not in the data")
    assert z[held].min() <= missing.z_low <= z[held].max()
    assert missing.z_low < z[~held].min()
    assert "each release held out" in missing.source


def test_evaluate_prints_error_and_coverage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--results", str(_csv()), "--models-dir", str(MLPERF),
                 "--evaluate", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "inside 80 %" in out and "| all systems" in out and "| kws" in out
    target = next(line for line in out.splitlines()
                  if line.startswith("| Cortex-M, core and runtime seen"))
    coverage = float(target.split("|")[6].strip().rstrip(" %"))
    assert 60 <= coverage <= 100  # a Gaussian interval without calibration: covers, roughly
    assert "nucleol4r5zi@120MHz/x-cube-ai" in out  # the per-system table


def test_a_family_weighs_the_same_however_many_rows_it_has() -> None:
    import pandas as pd

    from bench.estimate.interval import Interval

    z = [0.0] * 100 + [5.0] * 10  # family a: 100 rows on target; b: 10 rows far off
    res = pd.DataFrame({"latency_ms": np.exp(z), "log_pred": 0.0, "sd": 1.0,
                        "family": ["a"] * 100 + ["b"] * 10})
    assert Interval.from_residuals(res, "rows").z_high == pytest.approx(0.0, abs=0.5)
    assert Interval.from_residuals(res, "families", by="family").z_high == pytest.approx(5.0)


def test_holdout_rows_only_ever_widen_the_new_model_interval() -> None:
    from bench.estimate.interval import Interval

    families = Interval(-1.5, 1.0, residuals=200)
    near = Interval(-0.5, 0.5, residuals=31)  # holdout models estimated well
    slow = Interval(-0.5, 2.0, residuals=31)  # holdout models slower than estimated
    assert (Interval.widest([families, near], "x").z_low,
            Interval.widest([families, near], "x").z_high) == (-1.5, 1.0)
    assert (Interval.widest([families, slow], "x").z_low,
            Interval.widest([families, slow], "x").z_high) == (-1.5, 2.0)


def test_too_few_holdout_rows_leave_the_new_model_interval_alone(data) -> None:  # noqa: ANN001
    """Under five holdout rows give no calibration (a Gaussian default): they widen nothing."""
    from bench.estimate.crossval import HOLDOUT_MINIMUM, procedure

    few = data.subset(np.arange(len(data.rows)) < HOLDOUT_MINIMUM - 1)
    few.rows["latency_ms"] *= 10  # far slower than estimated: would widen, were they counted
    alone, with_few = procedure(data), procedure(data, holdout=few)
    assert with_few.intervals["new_model"] == alone.intervals["new_model"]
