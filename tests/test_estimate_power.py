"""A board's power while inferring: sources and their precedence, f·V² scaling, the energy
interval's spread by source, intervals per source of doubt, power from energy records."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from bench.devices.device import device_problems
from bench.estimate import power
from bench.estimate.analysis import analyse
from bench.estimate.coefficients import Coefficients
from bench.estimate.interval import DOUBT_MINIMUM, GAUSS_Z, Interval, doubt_of
from bench.estimate.model import EstimateError, Target, estimate, load_coefficients
from bench.results.metrics import Metric
from bench.results.record import Record
from bench.results.store import Store
from tests.tflite_models import MLPERF, mlperf_model

BOARD = "nucleol4r5zi"  # board key of device id nucleo-l4r5zi
SPREADS = {"measured": 0.15, "datasheet": 0.55, "typical": 0.8}


@pytest.fixture(scope="module")
def kws():  # noqa: ANN201 - an Analysis
    return analyse(mlperf_model("kws_ref_model_int8.tflite").read_bytes())


def table_with(boards: dict[str, Any], cores: dict[str, float] | None = None) -> Coefficients:
    """The packaged table with another ``power`` block."""
    meta = load_coefficients().meta
    block = {"boards": boards, "cores": cores if cores is not None else {"cortex-m4f": 0.35},
             "log_sd": SPREADS}
    return Coefficients.from_json({**meta, "power": block}, "test table")


def target(power_block: dict[str, Any] | None, clock: float = 120.0, core: str = "cortex-m4f",
           device: str = "nucleo-l4r5zi") -> Target:
    return Target(device, core, clock, "x-cube-ai", active_mw=(power_block or {}).get(
        "active_mw"), runtime_version="9.0", power=power_block)


def test_dynamic_power_scales_with_clock_and_the_square_of_the_supply() -> None:
    # 40 mW at 120 MHz and 3.3 V, 4 mW of it static: at 60 MHz and 1.8 V
    moved = power.scale(40.0, from_mhz=120, to_mhz=60, from_v=3.3, to_v=1.8, static_mw=4.0)
    assert moved == pytest.approx(4.0 + 36.0 * 0.5 * (1.8 / 3.3) ** 2)
    # behind a linear regulator the current stays: linear in the supply
    linear = power.scale(40.0, from_mhz=120, to_mhz=120, from_v=3.3, to_v=1.8, exponent=1)
    assert linear == pytest.approx(40.0 * 1.8 / 3.3)
    # a supply unknown on either side is taken as unchanged
    assert power.scale(40.0, from_mhz=120, to_mhz=60, from_v=None, to_v=1.8) == pytest.approx(20)


def test_a_figure_at_another_clock_and_supply_serves_the_same_chip(kws) -> None:  # noqa: ANN001
    table = table_with({})
    stated = {"active_mw": 40.0, "voltage_v": 1.8, "active_at_mhz": 120, "active_at_v": 3.3,
              "static_mw": 4.0}
    slow = estimate(kws, target(stated, clock=60.0, device="my-l4r5"), table)
    expected_mw = 4.0 + 36.0 * (60 / 120) * (1.8 / 3.3) ** 2
    assert slow.energy.value == pytest.approx(expected_mw * slow.latency.value, rel=1e-6)
    energy = slow.details["energy"]
    assert energy["source"] == "datasheet" and energy["power_mw"] == pytest.approx(expected_mw,
                                                                                   rel=1e-3)
    assert energy["at_mhz"] == 120 and energy["at_v"] == 3.3
    # without the conditions the figure is the board's own at its clock: unscaled
    plain = estimate(kws, target({"active_mw": 40.0}, clock=60.0, device="my-l4r5"), table)
    assert plain.energy.value == pytest.approx(40.0 * plain.latency.value)


def test_published_power_of_the_board_beats_its_datasheet_and_is_narrower(kws) -> None:  # noqa: ANN001
    published = {BOARD: {"mw_per_mhz": 0.4, "clock_mhz": 120.0, "voltage_v": None, "systems": 4,
                         "rows": 40, "source": "published"}}
    datasheet = estimate(kws, target({"active_mw": 30.0}, device="my-l4r5"), table_with(published))
    used = estimate(kws, target({"active_mw": 30.0}), table_with(published))
    assert datasheet.details["energy"]["source"] == "datasheet"
    assert used.details["energy"]["source"] == "published"
    assert used.details["energy"]["power_mw"] == pytest.approx(48.0)
    assert used.energy.value == pytest.approx(48.0 * used.latency.value)
    assert used.details["energy"]["systems"] == 4 and used.details["energy"]["active_mw"] == 30.0

    def spread(e) -> float:  # noqa: ANN001 - log width of the energy interval
        return math.log(e.energy.high / e.energy.low)

    assert spread(used) < spread(datasheet)  # measured on that board: narrower
    # the published figure at 120 MHz serves the same board at 80 MHz (4 mW static)
    slower = estimate(kws, target({"active_mw": 30.0, "static_mw": 4.0}, clock=80.0),
                      table_with(published))
    assert slower.details["energy"]["power_mw"] == pytest.approx(4.0 + 44.0 * 80 / 120)


def test_sources_in_order_of_trust(kws) -> None:  # noqa: ANN001
    def source(block: dict[str, Any] | None, boards: dict[str, Any], core: str = "cortex-m4f"
               ) -> str | None:
        return estimate(kws, target(block, core=core), table_with(boards)).details["energy"][
            "source"]

    published = {BOARD: {"mw_per_mhz": 0.4, "clock_mhz": 120, "source": "published"}}
    records = {BOARD: {"mw_per_mhz": 0.3, "clock_mhz": 120, "source": "records"}}
    measured = {"active_mw": 45.0, "active_source": "measured"}
    assert source(measured, records) == "records"
    assert source(measured, published) == "measured"
    assert source({"active_mw": 45.0}, published) == "published"
    assert source({"active_mw": 45.0}, {}) == "datasheet"
    assert source(None, {}) == "core typical"
    assert source(None, {}, core="cortex-m55") is None


def test_energy_interval_adds_the_power_spread_by_source(kws) -> None:  # noqa: ANN001
    """Each side's half-width: the latency's and the power figure's in quadrature, the power's
    spread that of its source."""
    table = table_with({})
    for block, kind in (({"active_mw": 40.0}, "datasheet"),
                        ({"active_mw": 40.0, "active_source": "measured"}, "measured"),
                        (None, "typical")):
        e = estimate(kws, target(block, device="my-l4r5"), table)
        (z_low, z_high), sd = e.details["interval"]["z"], e.details["interval"]["sd_log"]
        p = GAUSS_Z * SPREADS[kind]
        assert e.details["energy"]["power_log_sd"] == pytest.approx(SPREADS[kind])
        assert math.log(e.energy.value / e.energy.low) == pytest.approx(
            math.hypot(z_low * sd, p), rel=1e-3)  # z and sd as printed: rounded
        assert math.log(e.energy.high / e.energy.value) == pytest.approx(
            math.hypot(z_high * sd, p), rel=1e-3)


def test_power_from_calibration_rows() -> None:
    rows = pd.DataFrame([
        {"group": g, "board": b, "core": "cortex-m4f", "clock_mhz": 100.0, "latency_ms": 10.0,
         "energy_uj": mw * 10.0, "source": "results"}
        for g, b, mw in (("a", "b1", 40.0), ("a", "b1", 44.0), ("b", "b1", 50.0),
                         ("c", "b2", 20.0))])
    boards = power.boards(rows)
    # each system weighs the same: the median of a's 42 and b's 50
    assert boards["b1"]["mw_per_mhz"] == pytest.approx(0.46)
    assert boards["b1"]["systems"] == 2 and boards["b1"]["source"] == "published"
    assert boards["b2"]["mw_per_mhz"] == pytest.approx(0.2)
    # a row against the median of its board's other systems, each system weighing the same
    a = np.log(np.array([40.0, 44.0]) / 50.0)
    b = math.log(50.0 / 42.0)
    expected = math.sqrt((np.mean(a ** 2) + b ** 2) / 2)
    assert power.board_log_sd(rows) == pytest.approx(expected)
    # no energy at all (records of latency only): no boards, the default spreads
    bare = power.table_block(rows.assign(energy_uj=np.nan))
    assert bare["boards"] == {} and bare["cores"] == {}
    assert bare["log_sd"]["typical"] == pytest.approx(power.DEFAULT_LOG_SD, abs=1e-4)
    # records of a board replace its published figures
    mine = pd.concat([rows, pd.DataFrame([{"group": "mine", "board": "b1", "core": "cortex-m4f",
                                           "clock_mhz": 50.0, "power_mw": 10.0,
                                           "voltage_v": 1.8, "source": "records (board)"}])])
    b1 = power.boards(mine)["b1"]
    assert b1["source"] == "records" and b1["mw_per_mhz"] == pytest.approx(0.2)
    assert b1["clock_mhz"] == 50.0 and b1["voltage_v"] == 1.8


def _power_rows(systems: list[tuple[str, str, str, float, float]]) -> pd.DataFrame:
    """Calibration rows (group, board, core, clock MHz, mW): one row each."""
    return pd.DataFrame([{"group": g, "board": b, "core": c, "clock_mhz": mhz,
                          "latency_ms": 10.0, "energy_uj": mw * 10.0, "source": "results"}
                         for g, b, c, mhz, mw in systems])


def test_the_typical_spread_is_between_boards_not_between_one_boards_systems() -> None:
    """A core's typical figure serves a board nothing measured: its spread is each board
    against the typical figure of its core's *other* boards, however many systems a board
    ran (their differences are the ``measured`` spread)."""
    one_board = _power_rows([("a", "b1", "cortex-m4f", 100.0, 20.0),
                             ("b", "b1", "cortex-m4f", 100.0, 80.0)])
    # two systems of one board: no second board, so no spread known for the core
    assert power.log_sd(one_board) == power.DEFAULT_LOG_SD
    rows = _power_rows([("a", "b1", "cortex-m4f", 100.0, 40.0),
                        ("b", "b1", "cortex-m4f", 100.0, 60.0),
                        ("c", "b2", "cortex-m4f", 100.0, 20.0),
                        ("d", "b3", "cortex-m7", 100.0, 90.0)])
    # b1's own 0.5 mW/MHz (median of its systems) against b2's 0.2, and b2 against b1's rows
    expected = math.log(0.5 / 0.2)
    assert power.log_sd(rows) == pytest.approx(expected)
    assert power.table_block(rows)["log_sd"]["typical"] == pytest.approx(expected, abs=1e-4)


def test_the_datasheet_spread_is_fitted_on_boards_with_both_figures() -> None:
    """How far datasheets stray from what boards draw: boards with a datasheet figure and
    published power, the figure scaled to the published clock, plus a system's own stray
    (``measured``) in quadrature: never narrower than a figure measured on the board."""
    rows = _power_rows([("a", "b1", "cortex-m4f", 100.0, 50.0),
                        ("b", "b2", "cortex-m33", 200.0, 30.0),
                        ("c", "b3", "cortex-m7", 100.0, 70.0)])
    sheets = {"b1": {"active_mw": 40.0, "active_at_mhz": 100.0},
              # stated at 50 MHz: 15 mW moves to 42 at the published 200 MHz (static 6 stays)
              "b2": {"active_mw": 15.0, "active_at_mhz": 50.0, "static_mw": 6.0},
              "b9": {"active_mw": 1.0, "active_at_mhz": 100.0}}  # a board with no results
    gaps = [math.log(50.0 / 40.0), math.log(30.0 / (6.0 + 9.0 * 4))]
    gap = math.sqrt(np.mean(np.square(gaps)))
    assert power.datasheet_log_sd(rows, sheets, 0.1) == pytest.approx(math.hypot(gap, 0.1))
    assert power.datasheet_log_sd(rows, sheets, 0.0) == pytest.approx(gap)
    block = power.table_block(rows, sheets)
    assert block["log_sd"]["datasheet"] == pytest.approx(
        math.hypot(gap, block["log_sd"]["measured"]), abs=1e-4)
    assert block["log_sd"]["datasheet"] > block["log_sd"]["measured"]
    # a datasheet that matches its board exactly still leaves the systems' stray
    exact = {"b1": {"active_mw": 50.0, "active_at_mhz": 100.0}}
    assert power.datasheet_log_sd(rows, exact, 0.2) == pytest.approx(0.2)
    # no board with both figures: the nominal spread
    assert power.datasheet_log_sd(rows, {"b9": sheets["b9"]}, 0.1) == power.DATASHEET_LOG_SD
    assert power.table_block(rows)["log_sd"]["datasheet"] == power.DATASHEET_LOG_SD


def test_a_malformed_power_block_is_a_clear_error() -> None:
    meta = load_coefficients().meta
    bad = {"boards": {BOARD: {"mw_per_mhz": -1, "clock_mhz": 120, "source": "published"}}}
    with pytest.raises(EstimateError, match=r"power.boards.nucleol4r5zi.mw_per_mhz: expected a "
                                            r"positive number"):
        Coefficients.from_json({**meta, "power": bad}, "t.json")
    odd = {"boards": {BOARD: {"mw_per_mhz": 1, "clock_mhz": 120, "source": "guessed"}}}
    with pytest.raises(EstimateError, match="expected published or records"):
        Coefficients.from_json({**meta, "power": odd}, "t.json")


@pytest.mark.parametrize(("power_block", "where", "message"), [
    ({"active_mw": 10, "static_mw": 12}, "power", "static_mw (12) must be below active_mw (10)"),
    ({"active_mw": 10, "active_at_v": 1.8}, "power", "active_at_v needs voltage_v"),
    ({"active_mw": 10, "voltage_exponent": 3}, "power.voltage_exponent", "less than or equal"),
    ({"active_mw": 10, "active_at_mhz": 0}, "power.active_at_mhz", "greater than 0"),
    ({"active_mw": 10, "active_source": "guess"}, "power.active_source", "'datasheet' or"),
])
def test_device_file_power_fields_are_checked(power_block: dict[str, Any], where: str,
                                              message: str) -> None:
    data = {"id": "b", "core": "cortex-m4f", "clock_mhz": 80, "runtime": "tflm",
            "memory": {"flash_kb": 1, "ram_kb": 1}, "connection": {"kind": "estimate"},
            "power": power_block}
    device, problems = device_problems(data, Path("b.yaml"))
    assert device is None
    assert any(loc == where and message in why for loc, why in problems), problems


def test_interval_per_source_of_doubt() -> None:
    """Held-out rows whose release the data lack stray further than those whose release they
    have: they get their own, wider z where they have enough residuals."""
    rng = np.random.default_rng(0)
    n = 200
    known = rng.normal(0, 0.5, n)
    unknown = rng.normal(-0.5, 2.0, 2 * DOUBT_MINIMUM)
    res = pd.DataFrame({"latency_ms": np.exp(np.concatenate([known, unknown])),
                        "log_pred": 0.0, "sd": 1.0,
                        "resolution": ["release"] * n + ["nearby releases"] * len(unknown)})
    iv = Interval.from_residuals(res, "test")
    near = iv.for_doubt(doubt_of("nearby releases"))
    here = iv.for_doubt(doubt_of("release"))
    assert near.z_low < iv.z_low < 0 < iv.z_high < near.z_high  # widened where it strays
    assert near.residuals == 2 * DOUBT_MINIMUM
    # never narrowed below the overall (inner folds understate a one-system-out estimate's z)
    assert (here.z_low, here.z_high) == (iv.z_low, iv.z_high)
    back = Interval.from_json(json.loads(json.dumps(iv.to_json())))  # as a table stores it
    assert back.for_doubt("release not in the data").z_low == pytest.approx(near.z_low, abs=1e-4)
    few = Interval.from_residuals(res.iloc[: n + DOUBT_MINIMUM - 1], "test")
    assert few.for_doubt("release not in the data") == few  # too few: the overall z


def test_a_missing_release_is_sized_on_whole_releases_held_out() -> None:
    """The ``release not in the data`` z comes from folds that hold whole releases out (each
    release weighing the same), not from the odd systems whose release their fold lacked, and
    is not widened to the overall z; too few such rows leave the interval alone."""
    rng = np.random.default_rng(1)
    systems = pd.DataFrame({  # 200 rows near their prediction, one odd system 3 sd off
        "latency_ms": np.exp(np.concatenate([rng.normal(0, 0.5, 200), np.full(20, -3.0)])),
        "log_pred": 0.0, "sd": 1.0, "group": [f"s{i % 20}" for i in range(200)] + ["odd"] * 20,
        "resolution": ["release"] * 200 + ["nearby releases"] * 20})
    iv = Interval.from_residuals(systems, "systems", by="group")
    assert iv.for_doubt("release not in the data").z_low < -2.5  # the odd system sets it
    # five releases held out: four of ten rows, one of a hundred, each exactly on its z
    z = {"a": -0.4, "b": -0.2, "c": 0.0, "d": 0.2, "e": 0.4}
    n = {"a": 10, "b": 10, "c": 100, "d": 10, "e": 10}
    held = pd.DataFrame([{"latency_ms": math.exp(v * 0.5), "log_pred": 0.0, "sd": 0.5,
                          "held_release": k, "resolution": "nearby releases"}
                         for k, v in z.items() for _ in range(n[k])])
    sized = iv.sized_by("release not in the data", held, "each release held out",
                        by="held_release")
    missing = sized.for_doubt("release not in the data")
    # each release weighs the same: −0.4 … +0.4, not the rows' −0.2 … +0.2
    assert (missing.z_low, missing.z_high) == (pytest.approx(-0.4), pytest.approx(0.4))
    assert missing.z_low > iv.z_low and missing.residuals == sum(n.values())
    assert "each release held out (140 residuals of 5)" in missing.source
    assert sized.by_doubt["release known"] == iv.by_doubt["release known"]
    back = Interval.from_json(json.loads(json.dumps(sized.to_json())))  # as a table stores it
    assert back.for_doubt("release not in the data").z_high == pytest.approx(0.4)
    few = held[held["held_release"] == "a"].iloc[: DOUBT_MINIMUM - 1]
    assert iv.sized_by("release not in the data", few, "x", by="held_release") == iv
    known = held.assign(resolution="release")  # rows of another source of doubt size nothing
    assert iv.sized_by("release not in the data", known, "x", by="held_release") == iv


def test_an_estimate_uses_the_z_of_its_source_of_doubt(kws) -> None:  # noqa: ANN001
    meta = load_coefficients().meta
    intervals = json.loads(json.dumps(meta["intervals"]))
    intervals["known_model"]["by_doubt"] = {
        "release known": {"z_low": -0.5, "z_high": 0.5, "residuals": 100},
        "release not in the data": {"z_low": -2.0, "z_high": 1.5, "residuals": 20}}
    table = Coefficients.from_json({**meta, "intervals": intervals}, "t")
    stated = estimate(kws, target({"active_mw": 40.0}), table)
    assert stated.details["interval"]["doubt"] == "release known"
    assert stated.details["interval"]["z"] == [-0.5, 0.5]
    nearby = estimate(kws, Target("x", "cortex-m4f", 120.0, "x-cube-ai", runtime_version="8.5"),
                      table)
    assert nearby.details["release"]["source"] == "nearby releases"
    assert nearby.details["interval"]["doubt"] == "release not in the data"
    assert nearby.details["interval"]["z"] == [-2.0, 1.5]
    # no release stated: pooled, its spread in the sd; no held-out row was ever pooled
    pooled = estimate(kws, Target("x", "cortex-m4f", 120.0, "x-cube-ai"), table)
    assert pooled.details["release"]["source"] == "runtime pooled"
    overall = table.intervals["known_model"]
    assert pooled.details["interval"]["z"] == [round(overall.z_low, 3), round(overall.z_high, 3)]


BOARD_YAML = """id: my-board
core: cortex-m4f
clock_mhz: 100
memory: {flash_kb: 1024, ram_kb: 256}
power: {active_mw: 20.0, voltage_v: 1.8}
runtime: tflm
connection: {kind: serial, port: /dev/null}
"""


def _records(root: Path, rows: list[tuple[str, dict[str, Metric]]]) -> Path:
    run = Store(root / "results").create("mine", {})
    for bench, metrics in rows:
        path = mlperf_model({"kws": "kws_ref_model_int8.tflite", "ad": "ad01_int8.tflite"}[bench])
        run.append(Record(suite="mine", run_id=run.run_id, cell_id=f"{bench}/int8@my-board",
                          model=bench, variant="int8", device="my-board", runner="serial",
                          status="ok", artifact_sha256=hashlib.sha256(path.read_bytes())
                          .hexdigest(), metrics=metrics))
    run.release()
    return run.path


def test_calibrate_records_with_energy(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    """Energy records give the board its own power: estimates of it use ``records`` power,
    whatever its datasheet says; an energy-mode record without latency still counts."""
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "my-board.yaml").write_text(BOARD_YAML)
    run = _records(tmp_path, [
        ("kws", {"latency_p50": Metric(50.0, "ms", "board"),
                 "energy_uj": Metric(1500.0, "µJ", "board")}),  # 30 mW
        ("ad", {"energy_uj": Metric(64.0, "µJ", "board"),
                "power_mw": Metric(32.0, "mW", "board")}),  # energy mode: power, no latency
        ("kws", {"latency_p50": Metric(50.0, "ms", "board"),
                 "energy_uj": Metric(9999.0, "µJ", "estimated")}),  # never calibrates power
    ])
    out = tmp_path / "mine.json"
    assert main(["calibrate", "--records", str(run), "--devices-dir", str(tmp_path / "devices"),
                 "--artifacts", str(MLPERF), "--out", str(out)]) == 0
    capsys.readouterr()
    mine = load_coefficients(out)
    board = mine.power["boards"]["myboard"]
    assert board["source"] == "records" and board["voltage_v"] == 1.8
    assert board["mw_per_mhz"] * board["clock_mhz"] == pytest.approx(31.0)  # median of 30, 32
    assert mine.power["cores"] == load_coefficients().power["cores"]  # the base table's kept
    yaml = BOARD_YAML + f"estimate: {{coefficients: {out}}}\n"
    (tmp_path / "devices" / "my-board.yaml").write_text(yaml)
    assert main(["estimate", str(mlperf_model("kws_ref_model_int8.tflite")), "--device",
                 "my-board", "--devices-dir", str(tmp_path / "devices"), "--format",
                 "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["energy"]["source"] == "records"
    assert result["energy"]["power_mw"] == pytest.approx(31.0, rel=1e-3)
    assert result["energy_uj"] == pytest.approx(31.0 * result["latency_ms"], rel=1e-3)


def test_the_evaluation_prices_energy_as_a_user_of_the_held_out_board_would() -> None:
    """A held-out system's power comes from the training rows (its board under other systems)
    or a device file's datasheet figure, never from its own energy results."""
    from bench.board.reference_models import REFERENCE_FILES
    from bench.estimate.crossval import leave_systems_out
    from bench.estimate.data import results_data
    from bench.estimate.design import Structure
    from bench.estimate.evaluate import energy_by_system, with_errors
    from tests.tflite_models import SHARED

    csv = SHARED / "data" / "mlperf_tiny_results.csv"
    if not csv.is_file():
        pytest.skip(f"calibration data not found at {csv}")
    data = results_data(csv, {b: mlperf_model(f) for b, f in REFERENCE_FILES.items()})
    groups = ["nucleol4r5zi@120MHz/x-cube-ai", "ekra6m4@200MHz/tflm"]
    lso = leave_systems_out(data, Structure(0.3, False, 0.3, True, robust=1.0), groups)
    sheets = {"ekra6m4": {"active_mw": 65.3, "active_at_mhz": 200.0},
              "nucleol4r5zi": {"active_mw": 39.6, "active_at_mhz": 120.0}}
    res = with_errors(lso, data, "group", sheets)
    res = res[res["energy_uj"].notna()]
    l4, ra = (res[res["group"] == g] for g in groups)
    assert set(l4["power_source"]) == {"published"}
    others = data.rows[(data.rows["board"] == "nucleol4r5zi") & (data.rows["group"] != groups[0])]
    systems = (others["energy_uj"] / others["latency_ms"]).groupby(others["group"]).median()
    assert l4["power_mw"].iloc[0] == pytest.approx(systems.median(), rel=1e-3)
    assert set(ra["power_source"]) == {"datasheet"} and (ra["power_mw"] == 65.3).all()
    # its spread: the datasheets of the *training* boards against their published power
    train = data.rows[data.rows["group"] != groups[1]]
    measured = power.board_log_sd(train)
    assert ra["power_sd"].iloc[0] == pytest.approx(
        power.datasheet_log_sd(train, sheets, measured), abs=1e-4)  # as the table rounds it
    assert ra["power_sd"].iloc[0] != pytest.approx(  # never its own board's gap
        power.datasheet_log_sd(data.rows, sheets, measured), abs=1e-3)
    np.testing.assert_allclose(ra["pred_uj"], 65.3 * ra["pred_ms"], rtol=1e-9)
    # an energy error splits into the latency's and the power's
    np.testing.assert_allclose(res["latency_log_error"] + res["power_log_error"],
                               np.log(res["pred_uj"] / res["energy_uj"]), rtol=1e-9)
    by_system = {s["system"]: s for s in energy_by_system(res)}
    assert set(by_system) == set(groups) and by_system[groups[1]]["rows"] == len(ra)
    published = ra["energy_uj"] / ra["latency_ms"]
    assert by_system[groups[1]]["power_off"] == pytest.approx(
        (np.exp(np.log(65.3 / published).median()) - 1) * 100, abs=0.06)
    # without the datasheet: the core's typical figure from the other systems, wider
    bare = with_errors(lso, data, "group", {})
    bare = bare[(bare["group"] == groups[1]) & bare["energy_uj"].notna()]
    assert set(bare["power_source"]) == {"core typical"}
    assert (bare["power_sd"] > ra["power_sd"].iloc[0]).all()
