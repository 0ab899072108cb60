"""The virtual board as a peer's host runner sees it.

An MLPerf Tiny host client written here from the protocol document
(``shared/protocol/mlperf-tiny-serial.md``), not edgebench's serial runner, runs the stock
performance script against ``edgebench board serve`` on a real pseudo-terminal; the reference
results are checked against TFLite Micro run directly. Needs ``../shared`` (skips without it).
"""

from __future__ import annotations

import hashlib
import math
import re
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import serial

from bench.board import protocol as p
from bench.board.reference_models import MODEL_IDS
from bench.virtual.clock import SimulatedClock
from tests.conftest import ROOT
from tests.tflite_models import MLPERF, mlperf_model

#: The reference kws01 performance script: five windows (five inputs) of ``infer 70 10``.
WINDOWS, ITERATIONS, WARMUPS = 5, 70, 10
CHUNK = 31  # bytes per ``db`` command, as host runners send them
LAP = re.compile(r"^m-lap-us-(\d+)$")
RESULTS = re.compile(r"^m-results-\[([^]]+)\]$")


class Client:
    """A host runner from the protocol document: ``%``-terminated commands; ``\\r\\n`` lines;
    every reply ends with ``m-ready``."""

    def __init__(self, port: str) -> None:
        self.serial = serial.Serial(port, 115200, timeout=1.0)
        self.serial.reset_input_buffer()  # the boot banner

    def close(self) -> None:
        self.serial.close()

    def send(self, text: str, timeout: float = 60.0) -> list[str]:
        """The reply lines to ``text%`` before ``m-ready``."""
        self.serial.write(f"{text}%".encode("ascii"))
        lines: list[str] = []
        pending = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending += self.serial.read_until(b"\n")
            if not pending.endswith(b"\n"):
                continue  # a read timeout inside a line
            line, pending = pending.decode("ascii").strip(), b""
            if line == "m-ready":
                return lines
            if line:
                lines.append(line)
        raise AssertionError(f"no m-ready within {timeout} s after {text}%: {lines}")

    def load(self, data: bytes) -> None:
        assert self.send(f"db load {len(data)}") == [f"m-[Expecting {len(data)} bytes]"]
        replies = [self.send(f"db {data[i:i + CHUNK].hex()}") for i in range(0, len(data), CHUNK)]
        assert replies[-1] == ["m-load-done"] and not any(replies[:-1])

    def timestamp(self) -> int:
        (line,) = self.send("timestamp")
        found = LAP.match(line)
        assert found, line
        return int(found.group(1))


@dataclass
class Window:
    wall_s: float  # from sending ``infer`` to its ``m-ready``
    t0_us: int
    t1_us: int
    results: list[str]  # the printed values


def infer(client: Client, n: int, w: int) -> Window:
    started = time.monotonic()
    lines = client.send(f"infer {n} {w}", timeout=300)
    wall = time.monotonic() - started
    assert lines[:3] == [f"m-warmup-start-{w}", "m-warmup-done", f"m-infer-start-{n}"], lines
    laps = [int(m.group(1)) for m in map(LAP.match, lines) if m]
    found = [m.group(1) for m in map(RESULTS.match, lines) if m]
    assert len(laps) == 2 and "m-infer-done" in lines and len(found) == 1, lines
    return Window(wall, laps[0], laps[1], found[0].split(","))


def board_process(model: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """``edgebench board serve`` in a subprocess, and the port it prints."""
    proc = subprocess.Popen([sys.executable, "-m", "bench", "board", "serve", str(model), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("port: "):
        proc.kill()
        raise AssertionError(f"board did not start: {line!r} {proc.stderr.read()}")
    return proc, line.split(" ", 1)[1].strip()


@pytest.fixture
def kws01() -> Path:
    return mlperf_model("kws_ref_model_int8.tflite")


@pytest.fixture
def simulated_kws_board(kws01: Path) -> Iterator[Client]:
    """The issue's set-up: the reference KWS model on a simulated NUCLEO-L4R5ZI, no model id."""
    proc, port = board_process(kws01, "--link", "pty", "--clock", "simulated",
                               "--device", "nucleo-l4r5zi")
    client = Client(port)
    yield client
    client.close()
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tflm_outputs(model: Path, data: bytes) -> np.ndarray:
    """The dequantized outputs (float32, as the firmware's ``DequantizeInt8ToFloat``) of TFLite
    Micro's own Python interpreter on one input."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_file(str(model))
    spec = interpreter.get_input_details(0)
    interpreter.set_input(np.frombuffer(data, spec["dtype"]).reshape(spec["shape"]), 0)
    interpreter.invoke()
    quant = interpreter.get_output_details(0)["quantization_parameters"]
    q = interpreter.get_output(0).reshape(-1).astype(np.int32)
    return (q - quant["zero_points"][0]).astype(np.float32) * np.float32(quant["scales"][0])


def test_stock_performance_script_takes_at_least_the_simulated_time(
        simulated_kws_board: Client, kws01: Path) -> None:
    client = simulated_kws_board
    assert client.send("name") == ["m-name-dut-[edgebench-virtual-board]"]
    assert client.send("profile") == ["m-profile-[ULPMark for tinyML Firmware V0.0.1]",
                                      "m-model-[kws01]"]  # by content, no --model-id
    rng = np.random.default_rng(0)
    inputs = [rng.integers(-128, 128, 490, dtype=np.int8).tobytes() for _ in range(WINDOWS)]

    started = time.monotonic()
    first = client.timestamp()
    windows = []
    for data in inputs:
        client.load(data)
        windows.append(infer(client, ITERATIONS, WARMUPS))
    last = client.timestamp()
    wall_s = time.monotonic() - started

    simulated_s = (last - first) / 1e6  # warmups, windows and loading, as the board's clock says
    timed_s = sum(w.t1_us - w.t0_us for w in windows) / 1e6
    print(f"\nfive-window script: wall {wall_s:.2f} s; board clock {simulated_s:.2f} s "
          f"(timed windows {timed_s:.2f} s, "
          f"{1e3 * timed_s / (WINDOWS * ITERATIONS):.3f} ms an inference)")
    assert wall_s >= simulated_s >= timed_s > 0
    for w in windows:
        assert w.wall_s >= (w.t1_us - w.t0_us) / 1e6

    truncated_somewhere = False
    for data, w in zip(inputs, windows, strict=True):
        values = [float(v) for v in w.results]  # the results lines parse
        assert len(values) == 12
        reference = tflm_outputs(kws01, data)
        # the reference KWS firmware prints three truncated decimals ("0.%d%d%d")
        assert w.results == [f"0.{math.floor(float(v) * 1000):03d}" for v in reference]
        truncated_somewhere |= w.results != [f"{float(v):0.3f}" for v in reference]
    assert truncated_somewhere  # rounding would have printed something else


def test_the_reference_models_are_known_by_content(kws01: Path, tmp_path: Path,
                                                   tiny_tflite: Path) -> None:
    from bench.virtual.board import Board

    renamed = tmp_path / "my_keyword_model.tflite"
    shutil.copy(kws01, renamed)
    assert Board(renamed).handle("profile")[1] == "m-model-[kws01]"
    assert Board(renamed, model_id="kws02").handle("profile")[1] == "m-model-[kws02]"
    assert Board(tiny_tflite).handle("profile")[1] == "m-model-[tiny]"  # the default: the stem
    prefixes = {"kws": "kws01", "vww": "vww01", "ic": "ic01", "ad01": "ad01", "sww": "strww01"}
    shared = {path.name: path for path in MLPERF.glob("*.tflite")}
    found = {name: MODEL_IDS.get(hashlib.sha256(path.read_bytes()).hexdigest())
             for name, path in shared.items()}
    expected = {name: next(i for pre, i in prefixes.items() if name.startswith(pre))
                for name in shared}
    assert found == expected and len(MODEL_IDS) == len(shared)


def test_results_formats_of_the_reference_firmwares() -> None:
    grid = [k / 256 for k in range(256)]  # every int8 softmax output (scale 1/256)
    assert p.format_results_truncated(grid) == (
        "m-results-[" + ",".join(f"0.{math.floor(v * 1000):03d}" for v in grid) + "]")
    # digit by digit, each from its own float32 product, as the C code computes them
    assert p.format_results_truncated([0.0999, 0.69999998, 1.0, -0.125]) == (
        "m-results-[0.099,0.700,0.1000,0.-1-2-5]")
    assert p.format_results([0.0999, 0.69999998, 0.1236]) == "m-results-[0.100,0.700,0.124]"


def test_simulated_clock_never_runs_ahead_of_the_wall() -> None:
    clock = SimulatedClock()
    started = time.perf_counter()
    t0 = clock.now_us()
    t1 = clock.elapse(30_000.4)
    assert t1 - t0 == 30_000 and time.perf_counter() - started >= 0.03
    time.sleep(0.01)  # idle time counts, as on a board's timer
    assert clock.now_us() - t1 >= 10_000
    assert clock.now_us() <= t0 + (time.perf_counter() - started) * 1e6 + 1
