"""Every leaderboard page through Streamlit's AppTest, over a small hand-written store."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import leaderboard
from bench.results.store import Store
from leaderboard import ranking
from leaderboard.plaintext import inline
from tests.test_leaderboard_data import DEVICES, RUN_A, RUN_B, _record, make_store

APP = leaderboard.app_path()
PAGES = APP.parent / "pages"


@pytest.fixture(autouse=True)
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_store(tmp_path / "results", monkeypatch)
    monkeypatch.setenv("EDGEBENCH_RESULTS", str(root))
    monkeypatch.setenv("EDGEBENCH_DEVICES", str(DEVICES))
    st.cache_data.clear()
    yield root
    st.cache_data.clear()


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_leaderboard_shows_the_latest_run_ranked(store: Path) -> None:
    at = page("board")
    table = at.dataframe[0].value
    assert len(table) == 6 and set(table["run"]) == {RUN_B}  # the latest run of the suite
    assert "5 ok, 1 skipped — 6 cells" in at.caption[0].value
    assert at.selectbox(key="rank_by").value == "accuracy"
    assert list(table.columns[:5]) == ["model", "variant", "device", "rank", "accuracy"]
    assert table["model"].tolist() == ["big", "kws", "kws", "kws", "kws", "kws"]
    kws_host = table[(table["model"] == "kws") & (table["device"] == "host-litert")]
    assert kws_host.set_index("variant")["rank"].to_dict() == {"fp32": 1, "int8": 2}
    at.selectbox(key="rank_by").set_value("latency_p50").run()
    table = at.dataframe[0].value
    kws_host = table[(table["model"] == "kws") & (table["device"] == "host-litert")]
    assert kws_host["variant"].tolist() == ["int8", "fp32"]  # faster first
    assert ranking.LEGEND in [c.value for c in at.caption]


def test_leaderboard_filters(store: Path) -> None:
    at = page("board")
    at.multiselect(key="f_run").set_value([RUN_A, RUN_B]).run()
    assert len(at.dataframe[0].value) == 12
    at.multiselect(key="f_run").set_value([RUN_A]).run()
    at.multiselect(key="f_method").set_value(["estimated"]).run()
    table = at.dataframe[0].value
    assert set(zip(table["model"], table["variant"], table["device"], strict=True)) == {
        ("kws", "fp32", "nucleo-l4r5zi"), ("kws", "int8", "nucleo-l4r5zi"),
        ("big", "fp32", "nucleo-l4r5zi")}
    assert table.set_index("model").loc["big", "checks"].startswith("✗")
    at.multiselect(key="f_method").set_value([]).run()
    at.multiselect(key="f_status").set_value(["skipped"]).run()
    table = at.dataframe[0].value
    # the runtime cannot run it: shown as unsupported with its reason, not as an error
    assert table["status"].tolist() == ["unsupported"]
    assert table["note"].tolist() == ["no float16 DEQUANTIZE kernel"]
    int8 = page("board")
    int8.multiselect(key="f_variant").set_value(["int8"]).run()
    delta = int8.dataframe[0].value["Δaccuracy vs fp32"]
    assert delta.round(4).tolist() == [round(0.85 - 0.9123, 4)] * 2
    assert int8.get("download_button")


def test_leaderboard_suite_picker(store: Path) -> None:
    run = Store(store).create("other", {"reference_variant": "int8"},
                              run_id="20260103T000000Z-cccc")
    run.append(replace(_record(run.run_id, "vww", "int8", "host-litert"), suite="other"))
    at = page("board")
    assert at.selectbox(key="suite").options == ["all suites", "demo", "other"]
    table = at.dataframe[0].value  # the latest run of each suite
    assert set(table["run"]) == {RUN_B, f"other/{run.run_id}"} and len(table) == 7
    assert table.columns[0] == "suite"
    at.selectbox(key="suite").set_value("other").run()
    table = at.dataframe[0].value
    assert table["model"].tolist() == ["vww"] and "suite" not in table.columns
    assert at.multiselect(key="f_run").options == [f"other/{run.run_id}"]


def test_cache_invalidated_when_store_changes(store: Path) -> None:
    at = page("board")
    assert len(at.dataframe[0].value) == 6
    path = store / RUN_B / "records.jsonl"
    path.write_text(path.read_text() + path.read_text().splitlines()[0] + "\n")
    at.run()
    assert len(at.dataframe[0].value) == 7


def test_tradeoffs_pareto_front() -> None:
    at = page("tradeoffs")
    at.multiselect(key="f_run").set_value([RUN_A]).run()
    at.selectbox(key="device").set_value("nucleo-l4r5zi").run()
    front = at.dataframe[0].value
    # kws/int8 is faster with a lower accuracy than kws/fp32; big is slower and more accurate
    assert front["cell_id"].tolist() == ["kws/int8@nucleo-l4r5zi", "kws/fp32@nucleo-l4r5zi",
                                         "big/fp32@nucleo-l4r5zi"]
    at.selectbox(key="x").set_value("model_size").run()
    # these records name no data set: one group, and the caption says which models it holds
    assert at.selectbox(key="dataset").options == ["(data set not recorded)"]
    compared = inline("2 models on (data set not recorded): big, kws")
    assert at.caption[0].value == f"Compares {compared}"
    assert f"3 cells on {inline('nucleo-l4r5zi')}" in at.caption[1].value
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")


def test_devices_fit() -> None:
    at = page("devices")
    at.selectbox(key="device").set_value("nucleo-l4r5zi").run()
    assert f"2 of 3 model × variant cells fit {inline('nucleo-l4r5zi')}" in at.caption[0].value
    fit = at.dataframe[0].value.set_index("cell")
    assert len(at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")) == 2
    assert not fit.loc["big/fp32", "fits"] and fit.loc["kws/int8", "fits"]
    assert [m.value for m in at.metric][:2] == ["2048 KB", "640 KB"]
    at.selectbox(key="device").set_value("host-litert").run()
    assert "3 of 3" in at.caption[0].value


def test_run_detail_shows_record() -> None:
    at = page("run_detail")
    at.selectbox(key="run").set_value(RUN_A).run()
    at.selectbox(key="cell").set_value("kws/fp16@tflm-reference").run()
    # the runtime cannot run it: its reason as information, not as an error
    assert inline("unsupported: no float16 DEQUANTIZE kernel") == at.info[0].value
    assert not at.error
    at.selectbox(key="cell").set_value("big/fp32@nucleo-l4r5zi").run()
    constraints = at.dataframe[1].value
    assert constraints["result"].tolist() == ["✗ fail"]
    metrics = at.dataframe[0].value.set_index("metric")
    assert metrics.loc["latency_p50", "method"] == "estimated"
    assert any("abc123" in str(j.value) for j in at.json)


def test_compare_highlights_regressions() -> None:
    at = page("compare")
    assert at.selectbox(key="run_a").value == RUN_A and at.selectbox(key="run_b").value == RUN_B
    assert "2 regressions in 6 cells" in at.error[0].value
    table = at.dataframe[0].value
    assert {"latency_p50 A", "latency_p50 B", "regressed"} <= set(table.columns)
    at.selectbox(key="run_b").set_value(RUN_A).run()
    assert "0 regressions" in at.success[0].value


def test_advisor_recommendations() -> None:
    at = page("advisor")
    at.selectbox(key="model").set_value("kws").run()
    at.number_input(key="budget").set_value(50.0).run()
    assert "Recommendation: edge" in [s.value for s in at.subheader]
    steps = at.table[0].value
    assert steps.iloc[0]["answer"] == "yes"
    cells = at.dataframe[0].value
    assert set(cells["device"]) == {"host-litert"}
    at.selectbox(key="model").set_value("big").run()
    at.checkbox(key="privacy").check().run()
    assert "Recommendation: hybrid" in [s.value for s in at.subheader]
    assert "privacy" in at.warning[0].value
    at.checkbox(key="privacy").uncheck().run()
    at.number_input(key="budget").set_value(2000.0).run()
    assert "Recommendation: cloud" in [s.value for s in at.subheader]


def test_app_navigation_switches_pages() -> None:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception and at.title[0].value == "Leaderboard"
    for script, title, _ in leaderboard.PAGES[1:]:
        at.switch_page(f"pages/{script}").run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.title[0].value == title
