"""The leaderboard's data layer over a small hand-written store (no training)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from bench.devices.energy import battery_days_at_rate
from bench.results import store as store_mod
from bench.results.metrics import HIGHER_IS_BETTER, TASK_METRICS, UNITS, higher_is_better, metric
from bench.results.record import ConstraintResult, Record
from leaderboard import advice, data, ranking

DEVICES = Path(__file__).resolve().parents[1] / "devices"

RUN_A = "demo/20260101T000000Z-aaaa"
RUN_B = "demo/20260102T000000Z-bbbb"


def _record(run_id: str, model: str, variant: str, device: str, *, status: str = "ok",
            size: float = 50_000, arena: float | None = 4096, latency: float = 1.0,
            accuracy: float | None = 0.9, estimated: bool = False,
            error: dict[str, str] | None = None, passed: bool | None = True) -> Record:
    how = "estimated" if estimated else "measured"
    metrics = {"model_size": metric("model_size", size, "measured")}
    if status == "ok":
        metrics["latency_p50"] = metric("latency_p50", latency, how)
        if arena is not None:
            metrics["arena_used"] = metric("arena_used", arena, "tflm" if not estimated else how)
        if accuracy is not None:
            metrics["accuracy"] = metric("accuracy", accuracy, "measured")
        if estimated:
            metrics["energy_uj"] = metric("energy_uj", latency * 40, "estimated")
    return Record(suite="demo", run_id=run_id, cell_id=f"{model}/{variant}@{device}", model=model,
                  variant=variant, device=device,
                  runner="estimate" if estimated else "litert", status=status,  # type: ignore[arg-type]
                  error=error, metrics=metrics,
                  constraints={"flash_kb": ConstraintResult("model_size", "≤ 512", size / 1024,
                                                            passed)},
                  provenance={"git_commit": "abc123", "host": {"node": "testhost"}})


def make_store(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two runs of suite ``demo``: run B regresses kws/int8's latency and accuracy."""
    ids = iter([RUN_A.split("/")[1], RUN_B.split("/")[1]])
    monkeypatch.setattr(store_mod, "new_run_id", lambda: next(ids))
    st = store_mod.Store(root)
    for run_id, int8_latency, int8_acc in ((RUN_A.split("/")[1], 0.5, 0.90),
                                           (RUN_B.split("/")[1], 0.9, 0.85)):
        run = st.create("demo", {"reference_variant": "fp32"})
        for rec in [
            _record(run_id, "kws", "fp32", "host-litert", size=100_000, latency=1.0,
                    accuracy=0.9123),
            _record(run_id, "kws", "int8", "host-litert", size=30_000, latency=int8_latency,
                    accuracy=int8_acc),
            _record(run_id, "kws", "fp32", "nucleo-l4r5zi", size=100_000, arena=70_000,
                    latency=170.0, accuracy=0.9123, estimated=True),
            _record(run_id, "kws", "int8", "nucleo-l4r5zi", size=30_000, arena=24_000,
                    latency=80.0, accuracy=int8_acc, estimated=True),
            _record(run_id, "big", "fp32", "nucleo-l4r5zi", size=3_000_000, arena=800_000,
                    latency=900.0, accuracy=0.95, estimated=True, passed=False),
            _record(run_id, "kws", "fp16", "tflm-reference", status="skipped",
                    error={"kind": "unsupported", "message": "no float16 DEQUANTIZE kernel"}),
        ]:
            run.append(rec)
    return root


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_store(tmp_path / "results", monkeypatch)


@pytest.fixture
def df(store: Path) -> pd.DataFrame:
    return data.load_frame(store)


def test_load_frame_derived_columns(df: pd.DataFrame) -> None:
    assert len(df) == 12
    assert set(df["run"]) == {RUN_A, RUN_B}
    row = df[(df["run"] == RUN_B) & (df["cell_id"] == "kws/int8@host-litert")].iloc[0]
    assert row["Δaccuracy"] == pytest.approx(0.85 - 0.9123)
    assert row["size_ratio"] == pytest.approx(100_000 / 30_000)
    assert row["method"] == "measured"
    assert df[df["device"] == "nucleo-l4r5zi"]["method"].eq("estimated").all()
    assert df[df["model"] == "big"]["checks"].iloc[0].startswith("✗ 0/1")
    assert df[df["variant"] == "fp32"]["Δaccuracy"].dropna().eq(0).all()


def test_filters_and_display_table(df: pd.DataFrame) -> None:
    shown = data.apply_filters(df, {"run": [RUN_A], "method": ["estimated"], "model": []})
    assert set(shown["cell_id"]) == {"kws/fp32@nucleo-l4r5zi", "kws/int8@nucleo-l4r5zi",
                                     "big/fp32@nucleo-l4r5zi"}
    table = data.display_table(shown)
    assert "model_size [KB]" in table.columns and "latency_p50 [ms]" in table.columns
    assert "Δaccuracy vs fp32" in table.columns  # the runs' manifests name fp32
    big = table[table["cell_id"] == "big/fp32@nucleo-l4r5zi"].iloc[0]
    assert big["model_size [KB]"] == pytest.approx(3_000_000 / 1024)
    assert data.options(df, "status") == ["ok", "skipped"]


def test_store_signature_changes_with_the_store(store: Path, df: pd.DataFrame) -> None:
    before = data.store_signature(store)
    path = store / RUN_B / "records.jsonl"
    path.write_text(path.read_text() + path.read_text().splitlines()[0] + "\n")
    os.utime(path, ns=(1, 1))
    assert data.store_signature(store) != before
    assert len(data.load_frame(store)) == 13


def test_pareto_front() -> None:
    pts = pd.DataFrame({"lat": [1, 2, 3, 4, 2.5], "acc": [0.8, 0.9, 0.85, 0.95, 0.9]})
    front = data.pareto_front(pts, "lat", "acc", higher_better=True)
    assert front["lat"].tolist() == [1, 2, 4]
    low = data.pareto_front(pts.rename(columns={"acc": "mae"}), "lat", "mae", False)
    assert low["lat"].tolist() == [1]


def test_fit_table(df: pd.DataFrame) -> None:
    fit = data.fit_table(df[df["run"] == RUN_A], 2048, 640).set_index(["model", "variant"])
    assert bool(fit.loc[("kws", "int8"), "fits"]) and not bool(fit.loc[("big", "fp32"), "fits"])
    assert fit.loc[("big", "fp32"), "fits_flash"] is False
    host = data.fit_table(df, None, None)
    assert host["fits"].all()


def test_compare_runs_flags_regressions(df: pd.DataFrame) -> None:
    table = data.compare_runs(df, RUN_A, RUN_B, ["latency_p50", "accuracy", "model_size"])
    bad = set(table[table["regressed"]]["cell"])
    assert bad == {"kws/int8@host-litert", "kws/int8@nucleo-l4r5zi"}
    row = table[table["cell"] == "kws/int8@host-litert"].iloc[0]
    assert row["regressed:latency_p50"] and row["regressed:accuracy"]
    assert not row["regressed:model_size"]


def test_device_table_reads_capacities() -> None:
    devs = data.device_table([DEVICES]).set_index("device")
    assert devs.loc["nucleo-l4r5zi", "flash_kb"] == 2048
    assert devs.loc["nucleo-l4r5zi", "ram_kb"] == 640


def test_advisor_branches(df: pd.DataFrame) -> None:
    devs = data.device_table([DEVICES])
    fast = advice.advise(df, devs, advice.Requirements(model="kws", latency_budget_ms=50))
    assert fast.recommendation == "edge"
    assert set(fast.cells[fast.cells["meets_all"]]["device"]) == {"host-litert"}
    assert fast.steps[0][1] == "yes"
    big = advice.advise(df, devs, advice.Requirements(model="big", privacy_critical=True))
    assert big.recommendation == "hybrid" and "privacy" in big.summary
    assert "none of 1 cell (1 estimated)" in big.steps[-1][2]  # an estimate is not "measured"
    cloud = advice.advise(df, devs, advice.Requirements(model="big", latency_budget_ms=2000))
    assert cloud.recommendation == "cloud"
    relaxed = advice.advise(df, devs, advice.Requirements(model="kws", latency_budget_ms=500))
    assert relaxed.recommendation == "hybrid"


def test_battery_days_follow_the_library() -> None:
    dev = pd.Series({"battery_mah": 1000.0, "voltage_v": 3.0, "sleep_mw": 0.0,
                     "active_mw": 50.0})
    cell = pd.Series({"energy_uj": 100.0, "latency_p50": 2.0})
    # 1000 mAh × 3 V = 3000 mWh; 100 µJ × 10 Hz = 1 mW → 3000 h = 125 days
    assert advice.battery_days(cell, 10.0, dev) == pytest.approx(125.0)
    # asleep only between inferences (active 2%), as bench.devices.energy models it: 1 + 0.98 × 1 mW
    sleepy = dev.copy()
    sleepy["sleep_mw"] = 1.0
    assert advice.battery_days(cell, 10.0, sleepy) == pytest.approx(3000 / 1.98 / 24)
    assert advice.battery_days(cell, 10.0, sleepy) == battery_days_at_rate(100, 2, 10, 1, 1000, 3)
    # no energy figure: the device's active power × latency
    assert advice.battery_days(pd.Series({"latency_p50": 2.0}), 10.0, dev) == pytest.approx(
        battery_days_at_rate(100, 2, 10, 0, 1000, 3))
    assert advice.battery_days(pd.Series({"energy_uj": float("nan"), "latency_p50": 2.0}), 10.0,
                               dev.drop("active_mw")) is None
    assert advice.battery_days(cell, 1000.0, dev) is None  # 1000 × 2 ms: cannot keep up


def test_battery_days_at_rate() -> None:
    assert battery_days_at_rate(100, 1, 10, 0, 1000, 3) == pytest.approx(125.0)
    with pytest.raises(ValueError, match="cannot keep up"):
        battery_days_at_rate(100, 1, 2000, 0, 1000, 3)
    with pytest.raises(ValueError, match="latency_ms"):
        battery_days_at_rate(100, 0, 1, 0, 1000, 3)


def test_every_metric_has_a_direction() -> None:
    assert HIGHER_IS_BETTER.keys() == UNITS.keys()
    for task in TASK_METRICS.values():
        for name, better in task.items():
            assert higher_is_better(name) is better
            assert higher_is_better(f"{name}_delta") is better
    assert higher_is_better("latency_p50") is False and higher_is_better("battery_days") is True
    assert higher_is_better("threshold") is None and higher_is_better("no_such") is None


def test_reference_variant_comes_from_the_manifest(tmp_path: Path) -> None:
    run = store_mod.Store(tmp_path).create("ref", {"reference_variant": "int8"})
    for rec in [_record(run.run_id, "kws", "fp32", "host", accuracy=0.9),
                _record(run.run_id, "kws", "int8", "host", accuracy=0.8, size=25_000)]:
        run.append(replace(rec, suite="ref"))
    df = data.load_frame(tmp_path).set_index("variant")
    assert set(df["reference"]) == {"int8"}
    assert df.loc["fp32", "Δaccuracy"] == pytest.approx(0.1)
    assert df.loc["int8", "Δaccuracy"] == 0
    assert df.loc["fp32", "size_ratio"] == pytest.approx(25_000 / 50_000)
    assert "Δaccuracy vs int8" in data.display_table(df.reset_index()).columns


def test_compare_runs_follows_metric_direction() -> None:
    df = pd.DataFrame({"run": ["a", "b"], "model": ["m", "m"], "variant": ["v", "v"],
                       "device": ["d", "d"], "status": ["ok", "ok"],
                       "battery_days": [10.0, 5.0], "threshold": [0.1, 0.9],
                       "latency_p50": [2.0, 1.0]})
    row = data.compare_runs(df, "a", "b", ["battery_days", "threshold", "latency_p50"]).iloc[0]
    assert row["regressed:battery_days"]  # higher is better: halving it regresses
    assert not row["regressed:threshold"]  # no direction: never a regression
    assert not row["regressed:latency_p50"]  # faster


def test_ranking_latest_runs_and_best_variant(df: pd.DataFrame) -> None:
    assert ranking.latest_runs(df) == [RUN_B]
    latest = df[df["run"] == RUN_B]
    assert ranking.rankable_metrics(latest)[:1] == ["accuracy"]
    assert ranking.default_metric(ranking.rankable_metrics(latest)) == "accuracy"
    b = ranking.board(latest, "latency_p50", ["model_size", "latency_p50", "accuracy"])
    t = b.table
    assert list(t.columns[:5]) == ["model", "variant", "device", "rank", "latency_p50 [ms]"]
    assert t["model"].tolist() == ["big", "kws", "kws", "kws", "kws", "kws"]  # grouped
    best = t[b.best][["model", "variant", "device"]].values.tolist()
    # lower latency is better: int8 wins on both kws devices; big has one variant
    assert best == [["big", "fp32", "nucleo-l4r5zi"], ["kws", "int8", "host-litert"],
                    ["kws", "int8", "nucleo-l4r5zi"]]
    assert t["rank"].isna().sum() == 1  # the skipped cell is not ranked
    est = b.estimated["latency_p50 [ms]"]
    assert est.tolist() == (t["device"] == "nucleo-l4r5zi").tolist()
    by_accuracy = ranking.board(latest, "accuracy", ["accuracy"])
    assert by_accuracy.table[by_accuracy.best]["variant"].tolist() == ["fp32", "fp32", "fp32"]


def test_ranking_style_marks_best_and_estimated(df: pd.DataFrame) -> None:
    b = ranking.board(df[df["run"] == RUN_B], "latency_p50", ["latency_p50", "arena_used"])
    styled = ranking.style(b)
    html = styled.to_html()
    assert "None" not in html and "nan" not in html  # empty cells blank
    assert f"{ranking.ESTIMATED_MARK} 80" in html and f"{ranking.ESTIMATED_MARK} 1<" not in html
    styled._compute()
    col = list(b.table.columns).index("latency_p50 [ms]")
    for row, is_best in enumerate(b.best):
        css = dict(styled.ctx.get((row, col), []))
        assert (css.get("font-weight") == "bold") is bool(is_best)
        assert ("color" in css) is bool(b.estimated["latency_p50 [ms]"][row])


def test_number_shows_thousands_in_full() -> None:
    assert [data.number(v) for v in (100_000.0, 36_000.0, 2929.69, 0.9123, 1.0, 1e-5)] == [
        "100,000", "36,000", "2,930", "0.9123", "1", "1e-05"]
    assert data.number(0.000412) == "0.000412"  # a sub-µs latency in ms is not 0.00


def _timed_runs(root: Path, spreads: list[tuple[float, float]], n: int) -> list[str]:
    """One run of suite ``demo`` per (mean, std) latency of kws/fp32@host-litert (``n``
    samples each, no raw samples kept); their ``demo/<run id>`` names, oldest first."""
    st = store_mod.Store(root)
    names = []
    for mean, std in spreads:
        run = st.create("demo", {"reference_variant": "fp32"})
        rec = _record(run.run_id, "kws", "fp32", "host-litert", latency=mean)
        for name, value in (("latency_mean", mean), ("latency_std", std), ("latency_n", n)):
            rec.metrics[name] = metric(name, value, "measured")
        run.append(rec)
        run.release()
        names.append(f"demo/{run.run_id}")
    return names


def test_a_latency_change_inside_the_noise_is_no_regression(tmp_path: Path) -> None:
    """10 % slower on average but with a spread far wider: Welch's test says noise."""
    runs = _timed_runs(tmp_path, [(1.0, 0.5), (1.1, 0.5)], n=20)
    df = data.load_frame(tmp_path)
    plain = data.compare_runs(df, *runs, ["latency_p50"])
    assert plain.loc[0, "regressed:latency_p50"]  # the fixed tolerance alone would flag it
    timing = data.timing_tests(tmp_path, *runs)
    tested = data.compare_runs(df, *runs, ["latency_p50"], timing=timing)
    assert not tested.loc[0, "regressed:latency_p50"]
    assert tested.loc[0, "latency_p50 verdict"] == "within noise"
    assert tested.loc[0, "latency_p50 p"] > 0.05


def test_an_unstable_latency_is_marked_on_the_board(tmp_path: Path) -> None:
    st = store_mod.Store(tmp_path)
    run = st.create("demo", {"reference_variant": "fp32"})
    steady = _record(run.run_id, "kws", "fp32", "host-litert", latency=1.0)
    shaky = _record(run.run_id, "kws", "int8", "host-litert", latency=0.5)
    shaky.details["warnings"] = ["unstable timing: the std is 40% of the median"]
    for rec in (steady, shaky):
        run.append(rec)
    df = data.load_frame(tmp_path)
    b = ranking.board(df, "latency_p50", ["latency_p50"])
    html = ranking.style(b).to_html()
    assert html.count(ranking.UNSTABLE_MARK) == 1 and f"0.5 {ranking.UNSTABLE_MARK}" in html


def test_history_marks_a_significant_step_only(tmp_path: Path) -> None:
    """Five runs of one cell: steady, steady, a 30 % step with a tight spread, steady, then a
    10 % wobble inside a wide spread. Only the step is a change point."""
    from leaderboard import history

    _timed_runs(tmp_path, [(1.0, 0.01), (1.0, 0.01), (1.3, 0.01), (1.3, 0.01), (1.43, 0.8)],
                n=50)
    runs = history.timed_runs(tmp_path, "demo")
    assert history.cells_with_latency(runs) == ["kws/fp32@host-litert"]
    h = history.cell_history(runs, "kws/fp32@host-litert")
    assert list(h["n"]) == [1, 2, 3, 4, 5]
    assert list(h["change_point"]) == [False, False, True, False, False]
    assert list(h["verdict"]) == ["", "within noise", "slower", "within noise", "within noise"]
    chart = history.history_chart(h, "latency_p50 [ms]").to_dict()
    assert all(str(layer["encoding"]["x"]["field"]).isidentifier() for layer in chart["layer"])


def test_history_without_a_noise_measure_has_no_change_point(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    from leaderboard import history

    make_store(tmp_path, monkeypatch)
    h = history.cell_history(history.timed_runs(tmp_path, "demo"), "kws/int8@host-litert")
    assert list(h["latency"]) == [0.5, 0.9] and not h["change_point"].any()
    assert h["change"].isna().all() and list(h["verdict"]) == ["", ""]


def _layers(unit: str, figures: list[float], ops: list[str] | None = None) -> dict:
    total = sum(figures)
    return {"layers": [{"index": i, "op": (ops or ["CONV_2D"] * len(figures))[i], unit: v,
                        "share": v / total, "method": "emulated"}
                       for i, v in enumerate(figures)]}


def test_layer_change_goes_layer_by_layer_and_refuses_what_does_not_compare() -> None:
    change, unit = data.layer_change(_layers("instructions", [100, 300]),
                                     _layers("instructions", [150, 150]))
    assert unit == "instructions" and list(change["layer"]) == ["0 CONV_2D", "1 CONV_2D"]
    assert list(change["change_pct"]) == pytest.approx([50.0, -50.0])
    assert list(change["share_B_pct"]) == pytest.approx([50.0, 50.0])
    timed = data.layer_change(_layers("time_ns", [2e6, 1e6]), _layers("time_ns", [1e6, 1e6]))
    assert list(timed[0]["A"]) == pytest.approx([2.0, 1.0]) and timed[1] == "time [ms]"
    with pytest.raises(ValueError, match="cell A counts instructions, cell B time"):
        data.layer_change(_layers("instructions", [1, 2]), _layers("time_ns", [1, 2]))
    with pytest.raises(ValueError, match="graphs differ: A has 2 layers, B 3"):
        data.layer_change(_layers("instructions", [1, 2]), _layers("instructions", [1, 2, 3]))
    with pytest.raises(ValueError, match="graphs differ"):
        data.layer_change(_layers("instructions", [1, 2]),
                          _layers("instructions", [1, 2], ["CONV_2D", "ADD"]))
    with pytest.raises(ValueError, match="cell B has no per-layer profile: built without"):
        data.layer_change(_layers("instructions", [1]), {"layers_reason": "built without"})


def test_agreement_rows_show_each_layer_and_say_why_when_there_are_none() -> None:
    from tests.test_leaderboard_browser import builtin_agreement
    from tests.tflite_models import mlperf_model

    found = builtin_agreement(mlperf_model("ad01_int8.tflite").read_bytes())
    table, said = data.agreement_rows({"agreement": found})
    assert len(table) == found["compared"] > 0
    assert table["layer"].iloc[0].startswith("0 ")
    # a runtime computing as LiteRT's built-in kernels: never beyond them
    assert not table["vs built-in kernels"].str.endswith("*").any()
    assert said == found["verdict"]
    assert data.agreement_rows({}) is None
    with pytest.raises(ValueError, match="built without profiling"):
        data.agreement_rows({"agreement": {"method": "emulated",
                                           "reason": "built without profiling"}})
    with pytest.raises(ValueError, match="lacks a valid field"):
        data.agreement_rows({"agreement": {"verdict": "x", "layers": [{"index": 0}]}})
