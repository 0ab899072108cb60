"""MLPerf Tiny's energy mode end to end on the virtual energy bench (`edgebench board serve
--mode energy`: the DUT behind an IO manager and an LPM01A-compatible monitor, each on a real
pseudo-terminal, in a subprocess): edgebench's serial runner, a whole suite, every monitor
fault, and a peer host client written from the published runner's energy procedure.
Needs ``../shared`` for the reference model (skips without it)."""

from __future__ import annotations

import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import serial
import yaml

from bench.monitors.base import MonitorError, traces_from_json
from bench.runners.base import RunRequest
from bench.runners.serial import measure
from bench.virtual.board import PULSE_S, PowerModel, simulated_latency_us
from tests.conftest import MCU_DEVICE, ROOT

DEVICE = MCU_DEVICE
FAST = {"timeout_s": 3.0, "min_window_s": 0.3, "model": "ad01"}
VOLTAGE = 1.8
#: The DUT's UART in these tests (MLPerf Tiny's 9600 would spend 4 s on each of ad01's results).
DUT_BAUD = 460800

StartBench = Callable[..., tuple[str, str, subprocess.Popen]]


@pytest.fixture
def start_bench() -> Iterator[StartBench]:
    """``edgebench board serve --mode energy`` in a subprocess: (IO manager port, monitor
    port, process); each must stop at SIGTERM (no process left behind)."""
    procs: list[subprocess.Popen[str]] = []

    def start(model: Path, *args: str) -> tuple[str, str, subprocess.Popen]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench", "board", "serve", str(model), "--mode", "energy",
             "--device", str(DEVICE), "--clock", "simulated", "--dut-baud", str(DUT_BAUD),
             *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        procs.append(proc)
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        lines = [proc.stdout.readline(), proc.stdout.readline()] if ready else []
        ports = {k: v.strip() for k, _, v in (line.partition(": ") for line in lines)}
        if set(ports) != {"port", "monitor"}:
            proc.kill()
            raise AssertionError(f"bench did not start: {ports} {proc.stderr.read()}")
        return ports["port"], ports["monitor"], proc

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(10) == 0, "the bench did not stop cleanly at SIGTERM"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def energy_device(device: dict, port: str, monitor: str, **monitor_options: object) -> dict:
    return {**device, "connection": {"kind": "serial", "port": port, **FAST},
            "energy": {"monitor": {"kind": "virtual", "port": monitor, "voltage_v": VOLTAGE,
                                   "timeout_s": 2.0, **monitor_options}, "boot_s": 0.1,
                       "dut_baud": DUT_BAUD}}


def request(artifact: Path, dev: dict) -> RunRequest:
    return RunRequest(artifact=artifact, dataset=None, options=dev["connection"] | {},
                      device=dev, warmup=2)


def monitor_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("lpm01a")]


def test_the_runner_measures_the_benchs_energy_as_the_traces_integral(
        start_bench: StartBench, ad01: Path, device: dict) -> None:
    port, monitor, _ = start_bench(ad01, "--model-id", "ad01")
    out = measure(request(ad01, energy_device(device, port, monitor)))

    assert out["energy_uj"].method == "emulated"  # a power model, never `board`
    assert out["power_mw"].method == "emulated" and out["latency_p50"].method == "emulated"
    info = out.details["energy"]
    assert info["monitor"] == "virtual" and info["voltage_v"] == VOLTAGE
    assert len(info["windows"]) == 5 and info["dropped_share"] == 0
    assert all(w["duration_s"] >= FAST["min_window_s"] for w in info["windows"])

    windows = traces_from_json(out.trace)
    assert len(windows) == 5
    integrals = []
    for w, figures in zip(windows, info["windows"], strict=True):
        span = w["current_a"][w["start"]:w["stop"]]
        integral_uj = span.sum() * w["voltage_v"] / w["rate_hz"] * 1e6 / w["inferences"]
        assert figures["energy_uj"] == pytest.approx(integral_uj, rel=0.01)
        assert len(w["events"]) >= 2 and w["events"][-2:] == [w["start"], w["stop"]]
        integrals.append(integral_uj)
    assert out["energy_uj"].value == pytest.approx(float(np.median(integrals)), rel=0.01)

    # and it is the board's power model within 1 %: its active current at the monitor's
    # voltage over the simulated latency, plus the opening timestamp pulse shared by N
    model = PowerModel.from_device(device)
    latency_s = simulated_latency_us(ad01.read_bytes(), device) / 1e6
    n = info["inferences"]
    expected_uj = model.active_a * VOLTAGE * (latency_s + PULSE_S / n) * 1e6
    assert out["energy_uj"].value == pytest.approx(expected_uj, rel=0.01)
    # a window's span also holds the host's scheduling delays (idle: they cost no energy to
    # speak of, but lengthen the span and so lower the mean power), a few ms in a 0.3 s window
    # on a loaded machine
    assert out["latency_p50"].value == pytest.approx(latency_s * 1e3 + PULSE_S * 1e3 / n,
                                                     rel=0.05)
    assert out["power_mw"].value == pytest.approx(model.active_a * VOLTAGE * 1e3, rel=0.05)
    assert monitor_threads() == []


@pytest.mark.parametrize(("fault", "says"), [
    ("garbage", "unreadable answer to `htc`"),
    ("silence", "no answer to `htc` within 2.0 s"),
    ("drop", "the monitor dropped samples"),
    ("stop", "the monitor stopped streaming mid-window"),
])
def test_a_failing_monitor_fails_the_measurement_with_its_port(
        start_bench: StartBench, ad01: Path, device: dict, fault: str, says: str) -> None:
    port, monitor, _ = start_bench(ad01, "--model-id", "ad01", "--monitor-fault", fault)
    with pytest.raises(MonitorError) as err:
        measure(request(ad01, energy_device(device, port, monitor)))
    assert says in str(err.value) and monitor in str(err.value)
    assert "expected" in str(err.value) and "received" in str(err.value)
    assert monitor_threads() == []


def test_an_absent_monitor_names_its_port(start_bench: StartBench, ad01: Path, device: dict,
                                          tmp_path: Path) -> None:
    port, _, _ = start_bench(ad01, "--model-id", "ad01")
    absent = str(tmp_path / "ttyACM7")
    with pytest.raises(MonitorError, match=re.escape(absent) + ": cannot open the monitor's"):
        measure(request(ad01, energy_device(device, port, absent)))


# --- a suite end to end --------------------------------------------------------------------------


def bench_devices(start_bench: StartBench, ad01: Path, device: dict, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict]:
    """A virtual energy bench serving ``ad01`` and a devices folder holding its device file
    (``energy-bench``), with the serial runner registered: (folder, device file's contents)."""
    import bench.registry

    monkeypatch.setitem(bench.registry.runners._entries, "serial",
                        "bench.runners.serial:SERIAL")
    port, monitor, _ = start_bench(ad01, "--model-id", "ad01")
    devices = tmp_path / "devices"
    devices.mkdir()
    dev = {**yaml.safe_load(DEVICE.read_text()), "id": "energy-bench",
           **{k: v for k, v in energy_device(device, port, monitor).items()
              if k in ("connection", "energy")}}
    (devices / "energy-bench.yaml").write_text(yaml.safe_dump(dev))
    return devices, dev


def test_suite_records_measured_energy_with_its_trace_and_a_dead_monitor_fails_one_cell(
        start_bench: StartBench, ad01: Path, device: dict, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.results import samples
    from bench.run.session import run_suite
    from bench.suite.spec import load_suite

    devices, good = bench_devices(start_bench, ad01, device, tmp_path, monkeypatch)
    dead = {**good, "id": "dead-monitor",
            "energy": {"monitor": {"kind": "virtual", "port": str(tmp_path / "nope")}}}
    (devices / "dead-monitor.yaml").write_text(yaml.safe_dump(dead))
    suite_file = tmp_path / "energy.yaml"
    suite_file.write_text(yaml.safe_dump({
        "name": "energy", "models": [{"id": "ad01", "path": str(ad01)}],
        "devices": ["energy-bench", "dead-monitor"], "settings": {"repeats": 5, "warmup": 1}}))
    run = run_suite(load_suite(suite_file), tmp_path / "results", devices_dirs=[devices])
    records = {r.cell_id.split("@")[1]: r for r in run.records()}
    ok, failed = records["energy-bench"], records["dead-monitor"]
    assert ok.status == "ok", ok
    assert ok.metrics["energy_uj"].method == "emulated" and ok.metrics["energy_uj"].unit == "µJ"
    assert ok.metrics["power_mw"].unit == "mW"
    assert ok.details["energy"]["voltage_v"] == VOLTAGE
    trace = traces_from_json(samples.load_trace(run.path, ok.details["trace"]))
    assert len(trace) == 5 and (run.path / ok.details["trace"]).stat().st_size < 2_000_000
    assert failed.status == "failed" and "cannot open the monitor's port" in str(failed.error)
    assert "model_size" in failed.metrics  # what was measured before the monitor failed stays
    assert str(tmp_path / "nope") in str(failed.error)


# --- a peer host client, from the published runner's energy procedure ----------------------------


class PeerEnergyRunner:
    """MLPerf Tiny's energy procedure as its published runner implements it, written here
    (not edgebench's code): the LPM01A set up with ``htc``, ``acqtime inf``, ``eventsrc d7
    fal``, ``output energy``, ``format ascii_dec``, ``freq 1k``, ``volt``, ``pwr on``,
    ``start``; the DUT driven through the IO manager with ``dut <command>%`` and 26-byte
    ``db`` chunks; per window the samples and ``event N ris`` lines gathered since the last
    window, the energy summed between the last two events, divided by the iterations; the
    median over five windows."""

    def __init__(self, io_port: str, monitor_port: str) -> None:
        self.io = serial.Serial(io_port, 115200, timeout=0.1)
        self.pm = serial.Serial(monitor_port, 3686400, timeout=0.05)
        self.samples: list[float] = []
        self.events: list[int] = []
        self.messages: list[str] = []
        self.running = True
        self.pending = b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while self.running:
            self.pending += self.pm.read(4096)
            *lines, self.pending = self.pending.split(b"\n")
            for raw in lines:
                line = raw.decode().strip().replace("PowerShield > ", "")
                if re.match(r"\d{4}[+-]\d{2}", line):
                    self.samples.append(float(line.replace("+", "e+").replace("-", "e-")))
                elif re.match(r"event (\d+) ris", line):
                    self.events.append(len(self.samples))
                elif not line.startswith("TimeStamp") and line:
                    self.messages.append(line)

    def pm_command(self, text: str) -> None:
        self.pm.write(f"{text}\r\n".encode())
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if any(m.startswith("ack") and text.split()[0] in m for m in self.messages):
                self.messages.clear()
                return
            time.sleep(0.01)
        raise AssertionError(f"no ack to {text}: {self.messages}")

    def dut(self, text: str, timeout: float = 60) -> list[str]:
        self.io.write(f"dut {text}%".encode())
        lines: list[str] = []
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            buf += self.io.read(4096)
            *done, buf = buf.split(b"\n")
            lines += [ln.decode().strip() for ln in done if ln.strip()]
            if "[dut]: m-ready" in lines:
                assert lines[:2] == [f"m-dut-passthrough({text})", "m-ready"], lines
                return [ln.replace("[dut]: ", "") for ln in lines[2:-1]]
        raise AssertionError(f"no [dut]: m-ready after {text}: {lines}")

    def run(self, inputs: list[bytes], iterations: int, warmups: int) -> list[float]:
        for cmd in ("htc", "pwr off", "acqtime inf", "trigdelay 0", "trigsrc sw",
                    "eventsrc d7 fal", "output energy", "format ascii_dec", "freq 1k",
                    f"volt {int(VOLTAGE * 1000)}m", "pwr on nostatus", "start"):
            self.pm_command(cmd)
        time.sleep(0.2)
        assert self.dut("name") == ["m-name-dut-[edgebench-virtual-board]"]
        energies = []
        for data in inputs:
            self.dut(f"db load {len(data)}")
            for i in range(0, len(data), 26):
                self.dut(f"db {data[i:i + 26].hex()}")
            self.samples.clear()
            self.events.clear()
            lines = self.dut(f"infer {iterations} {warmups}")
            assert "m-infer-done" in lines and not any("m-lap-us" in ln for ln in lines)
            time.sleep(0.1)
            start, stop = self.events[-2], self.events[-1]
            energies.append(sum(self.samples[start:stop]) / iterations)
        self.pm.write(b"stop\r\n")
        return energies

    def close(self) -> None:
        self.running = False
        self.reader.join(2)
        self.io.close()
        self.pm.close()


def test_a_peer_runner_following_the_published_energy_procedure_agrees(
        start_bench: StartBench, ad01: Path, device: dict) -> None:
    port, monitor, _ = start_bench(ad01, "--model-id", "ad01")
    peer = PeerEnergyRunner(port, monitor)
    rng = np.random.default_rng(1)
    try:
        energies = peer.run([rng.integers(-128, 128, 640, dtype=np.int8).tobytes()
                             for _ in range(5)], iterations=200, warmups=1)
    finally:
        peer.close()
    median_uj = float(np.median(energies)) * 1e6
    model = PowerModel.from_device(device)
    latency_s = simulated_latency_us(ad01.read_bytes(), device) / 1e6
    assert median_uj == pytest.approx(model.active_a * VOLTAGE * latency_s * 1e6, rel=0.05)


# --- Run detail in Chromium ----------------------------------------------------------------------


def test_run_detail_plots_the_energy_trace_in_chromium(
        start_bench: StartBench, ad01: Path, device: dict, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tests import test_leaderboard_browser as web

    if not web.CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    from bench.results import samples
    from bench.run.session import run_suite
    from bench.suite.spec import load_suite

    devices, _ = bench_devices(start_bench, ad01, device, tmp_path, monkeypatch)
    suite_file = tmp_path / "energy.yaml"
    suite_file.write_text(yaml.safe_dump({
        "name": "energy", "models": [{"id": "ad01", "path": str(ad01)}],
        "devices": ["energy-bench"], "settings": {"repeats": 5, "warmup": 1}}))
    run = run_suite(load_suite(suite_file), tmp_path / "results", devices_dirs=[devices])
    (record,) = run.records()
    assert record.status == "ok", record
    edges = len(traces_from_json(samples.load_trace(run.path, record.details["trace"]))[0]
                ["events"])

    with sync_api.sync_playwright() as p, web.serving(tmp_path / "results", tmp_path) as url:
        browser = p.chromium.launch(executable_path=str(web.CHROMIUM), args=web.ARGS)
        try:
            with web.opened(browser, url) as (page, watch):
                web.go(page, "Run detail")
                page.get_by_role("heading", name="Energy", exact=True).wait_for(
                    timeout=web.TIMEOUT_MS)
                page.get_by_text("method emulated").wait_for(timeout=web.TIMEOUT_MS)
                page.get_by_text("not a measurement").wait_for(timeout=web.TIMEOUT_MS)
                page.get_by_text("between the last two timestamp edges").wait_for(
                    timeout=web.TIMEOUT_MS)
                # figures through the formatter: significant digits, the window's unit
                page.get_by_text(re.compile(r"holds \d[\d,.]* µJ per inference over "
                                            r"\d[\d.]* (ms|s)$")).wait_for(
                    timeout=web.TIMEOUT_MS)
                page.wait_for_function(web.CHARTS_DRAWN, arg=1, timeout=web.TIMEOUT_MS)
                (marks,) = page.evaluate(web.COUNT_MARKS)
                assert marks["line"] == 1 and marks["rect"] == 1 and marks["nan"] == 0, marks
                assert marks["rule"] == edges, marks
                page.locator('[data-testid="stVegaLiteChart"]').screenshot(
                    path=str(tmp_path / "run_detail_trace.png"))
                assert page.locator('[data-testid="stException"]').count() == 0
                assert not watch.console, watch.console
                assert not watch.outside, watch.outside
        finally:
            browser.close()


def test_accuracy_runs_through_the_io_manager_with_the_monitor_powering_the_board(
        start_bench: StartBench, ad01: Path, device: dict, tmp_path: Path) -> None:
    from bench.runners.serial import evaluate
    from tests.test_serial import anomaly_dataset

    port, monitor, _ = start_bench(ad01, "--model-id", "ad01")
    dev = energy_device(device, port, monitor)
    req = RunRequest(artifact=ad01, dataset=anomaly_dataset(tmp_path), options=dev["connection"],
                     device=dev, warmup=0)
    metrics = evaluate(req)
    assert metrics["auc"].method == "board" and 0.5 < metrics["auc"].value <= 1.0
    assert monitor_threads() == []


def test_a_window_without_timestamp_edges_says_so(start_bench: StartBench, ad01: Path,
                                                  device: dict) -> None:
    from bench.monitors.base import WindowError

    port, monitor, _ = start_bench(ad01, "--model-id", "ad01", "--fault", "unwired")
    with pytest.raises(WindowError, match=r"holds 0 timestamp edge\(s\); energy mode needs 2"):
        measure(request(ad01, energy_device(device, port, monitor)))
    assert monitor_threads() == []


def test_a_results_line_longer_than_the_timeout_at_the_duts_baud_still_arrives(
        start_bench: StartBench, ad01: Path) -> None:
    """At MLPerf Tiny's 9600 baud the relay takes ~4 s over ad01's 640 values, longer than the
    link's 1 s timeout: the IO manager link's deadline allows the wire time of what it awaits."""
    from bench.board.iomanager import IOManagerLink
    from bench.board.link import SerialOptions

    port, _, _ = start_bench(ad01, "--model-id", "ad01", "--dut-baud", "9600")
    link = IOManagerLink(SerialOptions(port=port, timeout_s=1.0), dut_baud=9600)
    try:
        link.handshake()
        link.load(bytes(640))
        link.expect_outputs(640)
        _, values, _ = link.infer_lines(1, 0, timeout=1.0)
        wire_s = link.wire_s(len(",".join(f"{v:0.3f}" for v in values)))
        assert len(values) == 640 and wire_s > 1.0  # the line outlasted the bare timeout
    finally:
        link.close()
