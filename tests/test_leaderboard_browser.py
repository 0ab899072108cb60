"""End to end: the real Streamlit server in headless Chromium (Debian's, via Playwright)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.test_leaderboard_data import make_store

CHROMIUM = Path("/usr/bin/chromium")
APP = Path(__file__).resolve().parents[1] / "leaderboard" / "app.py"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


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


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                    "(apt-get install -y chromium)")
def test_leaderboard_in_chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    store = make_store(tmp_path / "results", monkeypatch)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "EDGEBENCH_RESULTS": str(store)}
    log = (tmp_path / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(url, proc)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                page.goto(url)
                page.get_by_role("heading", name="Leaderboard").wait_for(timeout=60_000)
                grid = page.locator("[data-testid='stDataFrame']")
                grid.wait_for(timeout=60_000)
                page.get_by_text("10 ok, 2 skipped — 12 cells").wait_for(timeout=30_000)
                # the data grid keeps an accessible DOM table beside its canvas
                cells = grid.locator("td[role='gridcell']")
                cells.filter(has_text="kws/int8@nucleo-l4r5zi").first.wait_for(
                    state="attached", timeout=30_000)
                cells.filter(has_text="0.9123").first.wait_for(state="attached", timeout=30_000)
                page.screenshot(path=str(tmp_path / "leaderboard.png"), full_page=True)
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    assert (tmp_path / "leaderboard.png").stat().st_size > 0
