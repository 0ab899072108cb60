"""End to end: the real Streamlit server, started as ``edgebench leaderboard`` starts it
(:func:`leaderboard.command`), in headless Chromium (Debian's, via Playwright).

Every page of :data:`leaderboard.PAGES` is opened through the sidebar as a user would; each
fails on a Streamlit exception box, on any warning or error in the browser console (where Vega
reports ``Infinite extent`` and the like) and on a request leaving the machine, and each chart
must have drawn the expected number of marks (counted in its SVG, none at a NaN position).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

import leaderboard
from bench.results.store import Store
from leaderboard import ranking
from tests.test_leaderboard_data import DEVICES, RUN_B, _record, make_store

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at "
                       "/usr/bin/chromium (make chromium, or apt-get install -y chromium)"),
]

#: Per chart, in page order: how many marks of each kind it must draw.
Marks = dict[str, int]


@dataclass(frozen=True)
class Expect:
    """What a page shows over :func:`make_store`'s two runs."""

    grids: int  # visible data grids
    charts: list[Marks] = field(default_factory=list)


EXPECT: dict[str, Expect] = {
    "Leaderboard": Expect(grids=1),
    # host-litert (first device): kws fp32 and int8 in two runs = 4 cells; one front line
    "Trade-offs": Expect(grids=1, charts=[{"symbol": 4, "line": 1}]),
    # flash and RAM: kws/fp32, kws/int8, big/fp32 as bars (none squashed to a hairline), the
    # board's capacity as a rule
    "Devices": Expect(grids=1, charts=[{"rect": 3, "thin": 0, "rule": 1}] * 2),
    "Run detail": Expect(grids=2),  # metrics, constraints
    "Compare": Expect(grids=1),
    # kws/fp32@host-litert in both runs: two points on one line, no change point (the runs
    # keep no samples or spread to test a change against)
    "History": Expect(grids=1, charts=[{"symbol": 2, "line": 1, "rule": 0}]),
    "Deploy advisor": Expect(grids=1),  # cells meeting every requirement (all: collapsed)
}

COUNT_MARKS = """() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')].map(c => ({
  symbol: c.querySelectorAll('g.mark-symbol.role-mark > path').length,
  rect: c.querySelectorAll('g.mark-rect.role-mark > path').length,
  line: c.querySelectorAll('g.mark-line.role-mark > path').length,
  rule: c.querySelectorAll('g.mark-rule.role-mark > line').length,
  thin: [...c.querySelectorAll('g.mark-rect.role-mark > path')].filter(e => {
        const b = e.getBBox(); return Math.min(b.width, b.height) < 2; }).length,
  nan: [...c.querySelectorAll('svg *')].filter(e => ['transform', 'd', 'x1', 'x2', 'y1', 'y2']
        .some(a => (e.getAttribute(a) || '').includes('NaN'))).length,
}))"""
#: Records what the data grids draw on their canvas (text, font, colour), since their
#: accessible DOM table holds raw values, not what a user sees.
RECORD_CANVAS_TEXT = """window.__drawn = [];
const fillText = CanvasRenderingContext2D.prototype.fillText;
CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
  window.__drawn.push({text: String(text), font: this.font, fill: String(this.fillStyle)});
  return fillText.call(this, text, ...rest);
};"""
#: True once ``n`` data grids are visible and each has drawn its first header and its last
#: row's first cell.
GRIDS_DRAWN = """n => {
  const grids = [...document.querySelectorAll('[data-testid="stDataFrame"]')]
    .filter(g => g.checkVisibility());
  return grids.length === n && grids.every(g => {
    const cells = [g.querySelector('thead th'), g.querySelector('tbody tr:last-child td')];
    return cells[0] && cells.every(c => !c || !c.textContent  // an empty grid's row is blank
                                   || window.__drawn.some(d => d.text === c.textContent));
  });
}"""
CHARTS_DRAWN = """n => {
  const charts = document.querySelectorAll('[data-testid="stVegaLiteChart"]');
  return charts.length === n && [...charts].every(c => c.querySelector('svg g.role-frame')); }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer on {url} in {timeout} s")


@contextmanager
def serving(store: Path, workdir: Path) -> Iterator[str]:
    """The leaderboard over ``store``, started with the CLI's command line from ``workdir``
    (not the checkout: the installed package must be enough); yields its URL."""
    port = _free_port()
    env = {**os.environ, leaderboard.RESULTS_ENV: str(store), "EDGEBENCH_DEVICES": str(DEVICES)}
    with (workdir / "streamlit.log").open("w") as log:
        proc = subprocess.Popen(leaderboard.command(port=port, address="127.0.0.1"), env=env,
                                cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_healthy(f"http://127.0.0.1:{port}", proc)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class Watch:
    """What a browser page did besides drawing: console warnings/errors, requests elsewhere."""

    console: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@contextmanager
def opened(browser: Any, url: str) -> Iterator[tuple[Any, Watch]]:
    """A fresh tab on ``url``'s home page, watched; requests off this machine are blocked."""
    watch = Watch()
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    page.add_init_script(RECORD_CANVAS_TEXT)

    def route(r: Any) -> None:
        if urlparse(r.request.url).hostname == "127.0.0.1":
            r.continue_()
        else:
            watch.outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: m.type in ("warning", "error")
            and watch.console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: watch.console.append(f"pageerror: {e}"))
    try:
        page.goto(url)
        settle(page, leaderboard.PAGES[0][1])
        yield page, watch
    finally:
        context.close()


def settle(page: Any, title: str) -> None:
    """Wait until ``title``'s page has rendered and its script has finished."""
    page.get_by_role("heading", name=title, level=1).wait_for(timeout=TIMEOUT_MS)
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(
        state="attached", timeout=TIMEOUT_MS)


def go(page: Any, title: str) -> None:
    """Open a page through the sidebar navigation."""
    page.evaluate("window.__drawn = []")
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    settle(page, title)


def check_page(page: Any, watch: Watch, title: str) -> list[Marks]:
    """The checks every page passes; returns its charts' mark counts."""
    expect = EXPECT[title]
    assert page.locator('[data-testid="stException"]').count() == 0, \
        page.locator('[data-testid="stException"]').first.inner_text()
    page.wait_for_function(CHARTS_DRAWN, arg=len(expect.charts), timeout=TIMEOUT_MS)
    marks = page.evaluate(COUNT_MARKS)
    for i, (got, want) in enumerate(zip(marks, expect.charts, strict=True)):
        assert got["nan"] == 0, f"{title} chart {i}: marks at NaN positions"
        assert {k: got[k] for k in want} == want, f"{title} chart {i}: drew {got}"
    page.wait_for_function(GRIDS_DRAWN, arg=expect.grids, timeout=TIMEOUT_MS)
    shown = {d["text"].strip() for d in drawn(page)}
    assert not {"None", "nan", "NaN", "<NA>"} & shown, f"{title}: an empty cell shows a word"
    assert not watch.console, f"{title}: browser console: {watch.console}"
    assert not watch.outside, f"{title}: requests off this machine: {watch.outside}"
    return marks


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as mp:
        store = make_store(tmp / "results", mp)
    with serving(store, tmp) as url:
        yield url


def test_every_page_is_checked() -> None:
    assert [title for _, title, _ in leaderboard.PAGES] == list(EXPECT)


@pytest.mark.parametrize("title", list(EXPECT))
def test_page_in_chromium(browser: Any, demo_url: str, title: str) -> None:
    with opened(browser, demo_url) as (page, watch):
        if title != leaderboard.PAGES[0][1]:
            go(page, title)
        check_page(page, watch, title)
        PAGE_CHECKS[title](page)


def drawn(page: Any) -> list[dict[str, str]]:
    """Text the page drew on canvases since it was opened: ``text``, ``font``, ``fill``."""
    return page.evaluate("window.__drawn")


def _grid_text(page: Any, text: str) -> None:
    """Wait until the data grid's accessible table holds a cell containing ``text``."""
    page.locator('[data-testid="stDataFrame"] td[role="gridcell"]').filter(
        has_text=text).first.wait_for(state="attached", timeout=TIMEOUT_MS)


def _drawn_as(page: Any, text: str) -> list[dict[str, str]]:
    """How ``text`` was drawn on the grid (waiting until it was)."""
    page.wait_for_function("t => window.__drawn.some(d => d.text === t)", arg=text,
                           timeout=TIMEOUT_MS)
    return [d for d in drawn(page) if d["text"] == text]


def _home(page: Any) -> None:
    """The latest run only, ranked; estimated figures marked; no developer toolbar."""
    page.get_by_text(f"5 ok, 1 skipped — 6 cells from {RUN_B}").wait_for(timeout=TIMEOUT_MS)
    _grid_text(page, "tflm-reference")
    # estimated figures: marked and purple; measured ones plain (kws on host-litert: 1 ms)
    assert all(d["fill"] == ranking.ESTIMATED_STYLE.split()[-1] for d in _drawn_as(page, "≈ 170"))
    assert all(d["fill"] != ranking.ESTIMATED_STYLE.split()[-1] for d in _drawn_as(page, "0.9"))
    # ranked on accuracy: kws/fp32 (0.9123) is the best variant, kws/int8 (0.85) is not
    assert all("bold" in d["font"] for d in _drawn_as(page, "0.9123"))
    assert not any("bold" in d["font"] for d in _drawn_as(page, "0.85"))
    rows = page.locator('[data-testid="stDataFrame"] tr[role="row"]')
    assert rows.count() == 7  # header + the latest run's 6 cells (the older run's are filtered)
    page.get_by_text("estimated (no board measured it)").wait_for(timeout=TIMEOUT_MS)
    assert page.locator('[data-testid="stAppDeployButton"]').count() == 0
    assert page.get_by_role("button", name="Deploy").count() == 0
    # the status widget's Stop button (shown while a page computes) is styled away: a stand-in
    # with the widget's test id checks the app's stylesheet is in force
    page.evaluate("""() => document.body.insertAdjacentHTML('beforeend',
        '<div data-testid="stStatusWidget"><button id="stand-in">Stop</button></div>')""")
    assert page.locator("#stand-in").is_hidden()


def _tradeoffs(page: Any) -> None:
    page.get_by_text("4 cells on host-litert; 2 on the Pareto front").wait_for(
        timeout=TIMEOUT_MS)
    titles = page.locator('[data-testid="stVegaLiteChart"] svg g.role-axis-title text')
    assert titles.all_text_contents() == ["latency_p50 [ms]", "accuracy"]  # units in titles


def _devices(page: Any) -> None:
    page.get_by_text("model × variant cells fit").wait_for(timeout=TIMEOUT_MS)
    _grid_text(page, "big/fp32")


def _run_detail(page: Any) -> None:
    page.get_by_role("heading", name="kws/fp32@host-litert").wait_for(timeout=TIMEOUT_MS)
    _grid_text(page, "latency_p50")


def _compare(page: Any) -> None:
    page.get_by_text("2 regressions in 6 cells").wait_for(timeout=TIMEOUT_MS)
    _grid_text(page, "kws/int8@host-litert")


def _history(page: Any) -> None:
    page.get_by_text("runs of").first.wait_for(timeout=TIMEOUT_MS)
    page.get_by_text("0 change points").first.wait_for(timeout=TIMEOUT_MS)
    labels = page.locator('[data-testid="stVegaLiteChart"] g.role-axis-label text')
    # both runs' latency is 900 ms: the one label says so, without trailing zeros
    assert "900" in labels.all_text_contents(), labels.all_text_contents()


def _advisor(page: Any) -> None:
    page.get_by_role("heading", name="Recommendation:").wait_for(timeout=TIMEOUT_MS)
    page.get_by_text("Latency under 100 ms needed?").wait_for(timeout=TIMEOUT_MS)


PAGE_CHECKS = {"Leaderboard": _home, "Trade-offs": _tradeoffs, "Devices": _devices,
               "Run detail": _run_detail, "Compare": _compare, "History": _history,
               "Deploy advisor": _advisor}

# --- free text is text --------------------------------------------------------------------------

IMAGE = "![x](https://example.com/a.png)"
LINK = "[t](u)"
HOSTILE_ERROR = f"cannot read {IMAGE}: see {LINK}, https://example.com/b or <b>here</b>"


def hostile_store(root: Path) -> Path:
    """One run whose model id, device id, runner and error message are Markdown."""
    run = Store(root).create("hostile", {"reference_variant": "fp32"},
                             run_id="20260101T000000Z-dddd")
    for rec in [_record(run.run_id, IMAGE, "fp16", LINK, status="failed",
                        error={"kind": "artifact", "message": HOSTILE_ERROR}),
                _record(run.run_id, IMAGE, "fp32", LINK, latency=2.0, accuracy=0.9),
                _record(run.run_id, IMAGE, "int8", LINK, latency=1.0, accuracy=0.8)]:
        run.append(replace(rec, suite="hostile", runner="**bold** <img src=x>"))
    return root


def test_free_text_renders_as_text(browser: Any, tmp_path: Path) -> None:
    with serving(hostile_store(tmp_path / "results"), tmp_path) as url, \
            opened(browser, url) as (page, watch):
        for _, title, _ in leaderboard.PAGES:
            if title != leaderboard.PAGES[0][1]:
                go(page, title)
            if title == "Run detail":  # the failed cell is the run's first: shown by default
                page.get_by_role("heading", name=f"{IMAGE}/fp16@{LINK}").wait_for(
                    timeout=TIMEOUT_MS)
                page.get_by_text(f"artifact: {HOSTILE_ERROR}").wait_for(timeout=TIMEOUT_MS)
            links = page.eval_on_selector_all(
                '[data-testid="stMain"] a, [data-testid="stSidebar"] a',
                "els => els.map(e => e.getAttribute('href'))")
            assert not [h for h in links if h in ("u", "x") or "example.com" in (h or "")], \
                f"{title}: free text became links {links}"
            assert page.locator('img[src*="example.com"], img[src="x"]').count() == 0, title
            strong = page.locator('[data-testid="stMain"] strong')
            assert strong.filter(has_text=re.compile("^bold$")).count() == 0, title
            assert not watch.outside, f"{title}: requests off this machine: {watch.outside}"
            assert not watch.console, f"{title}: browser console: {watch.console}"
            assert page.locator('[data-testid="stException"]').count() == 0, title


# --- one front per data set; a log axis when the sizes span more than 100× ----------------------

def mixed_store(root: Path) -> Path:
    """One run over two data sets (a digits CNN and its teacher; an HAR MLP) and a 6.7 MB
    random forest: flash needs from 3 KB to 6,700 KB."""
    run = Store(root).create("mixed", {"reference_variant": "fp32"},
                             run_id="20260103T000000Z-eeee")
    digits = {"name": "digits", "params": {}, "seed": 0}
    har = {"name": "har_synthetic", "params": {"features": 27, "classes": 5}, "seed": 0}
    hvac = {"name": "hvac_building", "params": {}, "seed": 0}
    for model, variant, size, latency, accuracy, dataset in [
            ("digits_cnn", "fp32", 15_000, 0.05, 0.97, digits),
            ("digits_cnn", "int8", 6_000, 0.02, 0.96, digits),
            ("digits_teacher", "fp32", 55_000, 0.2, 0.98, digits),
            ("har_mlp", "fp32", 12_000, 0.01, 0.90, har),
            ("har_mlp", "int8", 3_000, 0.005, 0.89, har),
            ("hvac_forest", "fp32", 6_700_000, 0.3, None, hvac)]:
        rec = _record(run.run_id, model, variant, "host-litert", size=size, latency=latency,
                      accuracy=accuracy)
        run.append(replace(rec, suite="mixed", details={"dataset": dataset}))
    return root


def _select(page: Any, label: str, option: str) -> None:
    """Choose ``option`` in the selectbox labelled ``label``, as a user would."""
    page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first.click()
    page.get_by_role("option", name=option).click()
    page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]').wait_for(
        state="attached", timeout=TIMEOUT_MS)


def test_tradeoffs_draw_one_front_per_data_set_and_devices_a_log_axis(
        browser: Any, tmp_path: Path) -> None:
    with serving(mixed_store(tmp_path / "results"), tmp_path) as url, \
            opened(browser, url) as (page, watch):
        go(page, "Trade-offs")
        # the largest group first: the digits models, and the chart says which they are
        page.get_by_text("Compares 2 models on digits: digits_cnn, digits_teacher").wait_for(
            timeout=TIMEOUT_MS)
        page.get_by_text("(1 other data set: choose above)").wait_for(timeout=TIMEOUT_MS)
        page.wait_for_function(CHARTS_DRAWN, arg=1, timeout=TIMEOUT_MS)
        assert page.evaluate(COUNT_MARKS)[0]["symbol"] == 3  # not the HAR cells
        title = page.locator('[data-testid="stVegaLiteChart"] svg g.role-title text')
        assert title.first.text_content() == "2 models on digits: digits_cnn, digits_teacher"
        _select(page, "data set", "har_synthetic (classes=5, features=27)")
        page.get_by_text("Compares 1 model on har_synthetic (classes=5, features=27): "
                         "har_mlp").wait_for(timeout=TIMEOUT_MS)
        page.wait_for_function(
            "() => document.querySelectorAll('[data-testid=\"stVegaLiteChart\"] "
            "g.mark-symbol.role-mark > path').length === 2", timeout=TIMEOUT_MS)

        go(page, "Devices")
        page.wait_for_function(CHARTS_DRAWN, arg=2, timeout=TIMEOUT_MS)
        flash, ram = page.evaluate(COUNT_MARKS)
        # 3 KB to 6,700 KB: on a log axis every bar shows, and the capacity rule is kept
        assert flash["rect"] == 6 and flash["thin"] == 0 and flash["rule"] == 1, flash
        assert flash["nan"] == 0 and ram["nan"] == 0
        axes = page.locator('[data-testid="stVegaLiteChart"] svg g.role-axis-title text')
        titles = axes.all_text_contents()
        assert "flash [KB] (log scale)" in titles
        assert "RAM [KB]" in titles  # every arena is 4 KB: a linear axis
        assert not watch.console, f"browser console: {watch.console}"
        assert not watch.outside, f"requests off this machine: {watch.outside}"


# --- where the time goes ------------------------------------------------------------------------

AD_TICKS = [4012, 940, 940, 939, 71, 218, 939, 939, 939, 4653]


def builtin_agreement(tflite: bytes) -> dict[str, Any]:
    """The per-layer agreement with LiteRT of a runtime computing as LiteRT's built-in kernels
    do (as the emulated firmware does), on one random input of an int8 model."""
    import numpy as np

    from bench.artifacts.tflite_info import main_graph_ops
    from bench.runners.agreement import compare_layers, litert_tensors

    x = np.random.default_rng(0).integers(-128, 128, (1, 640), dtype=np.int8)
    builtin, out = litert_tensors(tflite, [x], delegate=False)
    ops = main_graph_ops(tflite, "ad01_int8.tflite")
    return compare_layers(tflite, [x], lambda i: builtin.get_tensor(ops[i].output_tensors[0]),
                          out, "emulated", "ad01_int8.tflite")


def layers_store(root: Path, runs: list[list[int]] | None = None) -> Path:
    """A run per tick list (one by default) whose first cell, AD's reference model on an
    emulated board, keeps a per-layer profile (its shapes and MACs read from the model,
    instructions as a firmware prints them); its second cell keeps none."""
    from bench.runners.layers import layer_details
    from tests.tflite_models import mlperf_model

    tflite = mlperf_model("ad01_int8.tflite").read_bytes()
    agreement = builtin_agreement(tflite)
    for i, ticks in enumerate(runs or [AD_TICKS]):
        details = layer_details(tflite, [("FULLY_CONNECTED", 40 * t) for t in ticks],
                                "instructions", "emulated", 40 * sum(ticks) * 1.001,
                                "timed windows")
        details["agreement"] = agreement
        run = Store(root).create("layers", {"reference_variant": "fp32"},
                                 run_id=f"2026010{4 + i}T000000Z-ffff")
        rec = _record(run.run_id, "ad01", "int8", "qemu-cortex-m4f", latency=12.9,
                      accuracy=None)
        run.append(replace(rec, suite="layers", runner="qemu", details=details))
        run.append(replace(_record(run.run_id, "ad01", "int8", "host-litert", accuracy=None),
                           suite="layers"))
    return root


def test_run_detail_draws_where_the_time_goes(browser: Any, tmp_path: Path) -> None:
    with serving(layers_store(tmp_path / "results"), tmp_path) as url, \
            opened(browser, url) as (page, watch):
        go(page, "Run detail")
        page.get_by_role("heading", name="ad01/int8@qemu-cortex-m4f").wait_for(
            timeout=TIMEOUT_MS)
        page.wait_for_function(CHARTS_DRAWN, arg=1, timeout=TIMEOUT_MS)
        (marks,) = page.evaluate(COUNT_MARKS)
        assert marks["rect"] == 10 and marks["thin"] == 0 and marks["nan"] == 0, marks
        labels = page.locator('[data-testid="stVegaLiteChart"] g.role-axis-label text')
        assert "0 FULLY_CONNECTED" in labels.all_text_contents()
        page.get_by_text("10 layers; they sum to 99.90 % of the inference (pass").wait_for(
            timeout=TIMEOUT_MS)
        verdict = page.locator('[data-testid="stMarkdownContainer"]').filter(
            has=page.locator("strong", has_text="verdict")).first  # agreement with LiteRT
        verdict.wait_for(timeout=TIMEOUT_MS)
        assert re.fullmatch(r"verdict layer \d+ \(FULLY_CONNECTED\) .*differ.*",
                            verdict.inner_text().strip()), verdict.inner_text()
        page.wait_for_function(GRIDS_DRAWN, arg=3, timeout=TIMEOUT_MS)  # + agreement's layers
        _grid_text(page, "9 FULLY_CONNECTED")
        _select(page, "cell", "ad01/int8@host-litert")  # a cell without layers says so
        page.get_by_text("no per-layer profile: this record keeps none").wait_for(
            timeout=TIMEOUT_MS)
        page.get_by_text("no per-layer agreement: its runner compares no layers").wait_for(
            timeout=TIMEOUT_MS)
        page.wait_for_function(GRIDS_DRAWN, arg=2, timeout=TIMEOUT_MS)  # metrics, constraints
        assert page.locator('[data-testid="stVegaLiteChart"]').count() == 0
        assert not watch.console, f"browser console: {watch.console}"
        assert page.locator('[data-testid="stException"]').count() == 0


def test_compare_draws_each_layers_change_between_two_cells(browser: Any,
                                                            tmp_path: Path) -> None:
    faster = [*AD_TICKS[:1], *(t // 2 for t in AD_TICKS[1:4]), *AD_TICKS[4:]]
    with serving(layers_store(tmp_path / "results", [AD_TICKS, faster]), tmp_path) as url, \
            opened(browser, url) as (page, watch):
        go(page, "Compare")
        page.get_by_text("Per-layer change").wait_for(timeout=TIMEOUT_MS)
        _select(page, "cell A", "ad01/int8@qemu-cortex-m4f")  # cell B follows to the same id
        page.get_by_text("each operator's instructions, A then B").wait_for(timeout=TIMEOUT_MS)
        page.wait_for_function(CHARTS_DRAWN, arg=1, timeout=TIMEOUT_MS)
        (marks,) = page.evaluate(COUNT_MARKS)
        assert marks["rect"] == 10 and marks["nan"] == 0, marks
        _grid_text(page, "9 FULLY_CONNECTED")
        _select(page, "cell B", "ad01/int8@host-litert")
        page.get_by_text("cell B has no per-layer profile: its record keeps none").wait_for(
            timeout=TIMEOUT_MS)
        assert not watch.console, f"browser console: {watch.console}"
        assert page.locator('[data-testid="stException"]').count() == 0
