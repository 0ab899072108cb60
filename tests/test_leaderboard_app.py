"""Every leaderboard page through Streamlit's AppTest, over a small hand-written store."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.test_leaderboard_data import RUN_A, RUN_B, make_store

PAGES = Path(__file__).resolve().parents[1] / "leaderboard" / "pages"
APP = PAGES.parent / "app.py"


@pytest.fixture(autouse=True)
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_store(tmp_path / "results", monkeypatch)
    monkeypatch.setenv("EDGEBENCH_RESULTS", str(root))
    st.cache_data.clear()
    yield root
    st.cache_data.clear()


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_leaderboard_filters(store: Path) -> None:
    at = page("board")
    table = at.dataframe[0].value
    assert len(table) == 12 and "latency_p50 [ms]" in table.columns
    assert "10 ok, 2 skipped — 12 cells" in at.caption[0].value
    at.multiselect(key="f_run").set_value([RUN_B]).run()
    at.multiselect(key="f_method").set_value(["estimated"]).run()
    table = at.dataframe[0].value
    assert set(table["cell_id"]) == {"kws/fp32@nucleo-l4r5zi", "kws/int8@nucleo-l4r5zi",
                                     "big/fp32@nucleo-l4r5zi"}
    assert table.set_index("cell_id").loc["big/fp32@nucleo-l4r5zi", "checks"].startswith("✗")
    at.multiselect(key="f_method").set_value([]).run()
    at.multiselect(key="f_status").set_value(["skipped"]).run()
    table = at.dataframe[0].value
    assert table["error"].tolist() == ["no float16 DEQUANTIZE kernel"]
    int8 = page("board")
    int8.multiselect(key="f_variant").set_value(["int8"]).run()
    int8.multiselect(key="f_run").set_value([RUN_B]).run()
    delta = int8.dataframe[0].value["Δaccuracy vs fp32"]
    assert delta.round(4).tolist() == [round(0.85 - 0.9123, 4)] * 2
    assert int8.get("download_button")


def test_cache_invalidated_when_store_changes(store: Path) -> None:
    at = page("board")
    assert len(at.dataframe[0].value) == 12
    path = store / RUN_B / "records.jsonl"
    path.write_text(path.read_text() + path.read_text().splitlines()[0] + "\n")
    at.run()
    assert len(at.dataframe[0].value) == 13


def test_tradeoffs_pareto_front() -> None:
    at = page("tradeoffs")
    at.multiselect(key="f_run").set_value([RUN_A]).run()
    at.selectbox(key="device").set_value("nucleo-l4r5zi").run()
    front = at.dataframe[0].value
    # kws/int8 is faster with a lower accuracy than kws/fp32; big is slower and more accurate
    assert front["cell_id"].tolist() == ["kws/int8@nucleo-l4r5zi", "kws/fp32@nucleo-l4r5zi",
                                         "big/fp32@nucleo-l4r5zi"]
    at.selectbox(key="x").set_value("model_size").run()
    assert "3 cells on nucleo-l4r5zi" in at.caption[0].value
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")


def test_devices_fit() -> None:
    at = page("devices")
    at.selectbox(key="device").set_value("nucleo-l4r5zi").run()
    assert "2 of 3 model × variant cells fit nucleo-l4r5zi" in at.caption[0].value
    fit = at.dataframe[0].value.set_index("cell")
    assert not fit.loc["big/fp32", "fits"] and fit.loc["kws/int8", "fits"]
    assert [m.value for m in at.metric][:2] == ["2048 KB", "640 KB"]
    at.selectbox(key="device").set_value("host-litert").run()
    assert "3 of 3" in at.caption[0].value


def test_run_detail_shows_record() -> None:
    at = page("run_detail")
    at.selectbox(key="run").set_value(RUN_A).run()
    at.selectbox(key="cell").set_value("kws/fp16@tflm-reference").run()
    assert "unsupported: no float16 DEQUANTIZE kernel" in at.error[0].value
    at.selectbox(key="cell").set_value("big/fp32@nucleo-l4r5zi").run()
    constraints = at.table[0].value
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
    for path, title in [("pages/tradeoffs.py", "Trade-offs"), ("pages/devices.py", "Devices"),
                        ("pages/run_detail.py", "Run detail"), ("pages/compare.py", "Compare"),
                        ("pages/advisor.py", "Deploy advisor")]:
        at.switch_page(path).run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.title[0].value == title
