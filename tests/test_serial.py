"""The serial runner against the virtual board on real pseudo-terminals (and loopback TCP)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import serial
import yaml

from bench.board import protocol as p
from bench.board.link import BoardError, BoardLink
from bench.datasets.base import Dataset
from bench.runners.base import RunRequest
from bench.runners.serial import SERIAL, evaluate, measure
from bench.virtual.board import simulated_latency_us
from tests.conftest import MCU_DEVICE, ROOT

DEVICE = MCU_DEVICE
FAST = {"timeout_s": 2.0, "min_window_s": 0.05}

StartBoard = Callable[..., str]


@pytest.fixture
def start_board() -> Iterator[StartBoard]:
    """Start ``edgebench board serve`` in a subprocess; returns the port it prints."""
    procs: list[subprocess.Popen[str]] = []

    def start(model: Path, *args: str) -> str:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench", "board", "serve", str(model), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        procs.append(proc)
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("port: "):
            proc.kill()
            raise AssertionError(f"board did not start: {line!r} {proc.stderr.read()}")
        return line.split(" ", 1)[1].strip()

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def request(artifact: Path, port: str, device: dict | None = None, dataset: Path | None = None,
            **options: object) -> RunRequest:
    return RunRequest(artifact=artifact, dataset=dataset, options={"port": port, **FAST, **options},
                      device=device or {}, warmup=2)


def anomaly_dataset(tmp_path: Path, n: int = 6) -> Path:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3 * n, 640)).astype(np.float32)
    y = np.zeros(3 * n, np.int64)
    y[1::3] = 1
    x[y == 1] *= 3.0  # anomalies: louder windows
    path = tmp_path / "ad.npz"
    Dataset("anomaly", x[:n], y[:n], x[n:2 * n], y[n:2 * n], x[2 * n:], y[2 * n:]).save(path)
    return path


# --- protocol ------------------------------------------------------------------------------------


def test_line_splitter_reassembles_split_lines_and_drops_nul_cr() -> None:
    s = p.LineSplitter(max_line=100)
    assert s.feed(b"m-lap-u") == []
    assert s.feed(b"s-12\0\r\r\nm-re") == ["m-lap-us-12"]
    assert s.feed(b"ady\r\n\r\n") == ["m-ready"]
    with pytest.raises(p.ProtocolError, match="overlong"):
        s.feed(b"x" * 101)


def test_a_long_line_fed_a_byte_at_a_time_is_one_line_and_the_bound_holds() -> None:
    line = b"m-results-[" + b"0.5," * 3000 + b"]"
    s = p.LineSplitter(max_line=len(line))
    out = [ln for i in range(len(line) + 2) for ln in s.feed((line + b"\r\n")[i:i + 1])]
    assert out == [line.decode()] and s.pending == ""
    assert s.feed(b"m-ready\nm-lap-us-1\nm-re") == ["m-ready", "m-lap-us-1"]
    assert s.feed(b"ady\n") == ["m-ready"]
    tight = p.LineSplitter(max_line=100)
    with pytest.raises(p.ProtocolError, match="overlong"):
        for _ in range(101):
            tight.feed(b"x")


def test_load_commands_fit_the_device_buffer() -> None:
    cmds = p.load_commands(bytes(range(200)))
    assert cmds[0] == "db load 200" and len(cmds) == 1 + 7
    assert all(len(p.command(c)) <= p.COMMAND_BUFFER for c in cmds)
    assert bytes.fromhex("".join(c[3:] for c in cmds[1:])) == bytes(range(200))


def test_board_answers_every_command_and_its_errors(ad01: Path) -> None:
    from bench.virtual.board import Board

    board = Board(ad01, model_id="ad01")
    banner = board.boot()
    assert banner[0] == p.BOOT_PERFORMANCE and p.lap_us(banner[1]) is not None
    assert banner[2:] == [p.INIT_DONE, "m-ready"]
    assert board.handle("name") == ["m-name-dut-[edgebench-virtual-board]", "m-ready"]
    assert board.handle("profile")[1:] == ["m-model-[ad01]", "m-ready"]
    assert board.handle("frobnicate 3") == ["e-[Unknown command: frobnicate]", "m-ready"]
    assert board.handle("db load")[0] == "e-[Command 'db load' requires the # of bytes]"
    assert board.handle("db load 0")[0] == "e-[Command 'db load' must be >0 bytes]"
    assert "exceeds buffer maximum" in board.handle(f"db load {p.MAX_INPUT_BYTES + 1}")[0]
    assert board.handle("db load 640") == ["m-[Expecting 640 bytes]", "m-ready"]
    assert board.handle("db abc") == ["e-[Insufficent number of hex digits]", "m-ready"]
    assert board.handle("db zz") == ["e-[Invalid hex digit 'z']", "m-ready"]
    for cmd in p.load_commands(bytes(640))[1:-1]:
        assert board.handle(cmd[:3] + cmd[3:].upper()) == ["m-ready"]  # any case
    assert board.handle(p.load_commands(bytes(640))[-1]) == ["m-load-done", "m-ready"]
    assert board.handle("db print")[0] == "m-buffer-00-00-00-00-00-00-00-00"
    assert board.handle("infer 0 1")[0] == "e-[Inference iterations must be >0]"
    assert board.handle("infer 1 -1")[0] == "e-[Inference warmup must be >=0]"
    lines = board.handle("infer 3")
    assert lines[:3] == ["m-warmup-start-10", "m-warmup-done", "m-infer-start-3"]
    t0, t1 = p.lap_us(lines[3]), p.lap_us(lines[4])
    assert t0 is not None and t1 is not None and t1 >= t0
    assert lines[5] == "m-infer-done" and lines[-1] == "m-ready"
    values = p.results(lines[6])
    assert values is not None and len(values) == 640
    assert board.handle("results") == [lines[6], "m-ready"]


# --- the core path -------------------------------------------------------------------------------


def test_measure_with_simulated_clock_reports_the_simulated_latency(
        start_board: StartBoard, ad01: Path, device: dict) -> None:
    port = start_board(ad01, "--device", str(DEVICE), "--clock", "simulated",
                       "--model-id", "ad01")
    fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
    assert os.isatty(fd)  # a real terminal, not a pipe
    os.close(fd)
    out = measure(request(ad01, port, device, model="ad01"))
    expected_ms = simulated_latency_us(ad01.read_bytes(), device) / 1e3
    assert out["latency_p50"].method == "board" and out["latency_n"].value == 5
    assert out["latency_p50"].value == pytest.approx(expected_ms, rel=0.01)
    # a stock firmware has no per-layer profile, and the record says why
    assert set(out.details) == {"layers_reason"}
    assert "Unknown command: layers" in out.details["layers_reason"]
    assert port not in out.details["layers_reason"]  # the same from every machine


def test_a_firmware_built_with_profiling_gives_each_layers_time(
        start_board: StartBoard, ad01: Path, device: dict) -> None:
    """``layers%`` answered (the virtual board splits an invoke as the estimator does): the
    runner stores each operator's time in ns, the model's shapes and MACs, and the sum check
    against the timed windows' median; ``show --layers`` renders it."""
    from bench.artifacts.tflite_info import main_graph_ops
    from bench.results.layers import render
    from bench.virtual.board import simulated_layer_shares

    port = start_board(ad01, "--device", str(DEVICE), "--clock", "simulated", "--profile")
    out = measure(request(ad01, port, device, windows=3))
    layers, verdict = out.details["layers"], out.details["layers_check"]
    ops = main_graph_ops(ad01.read_bytes(), "ad01")
    assert [x["op"] for x in layers] == [o.op for o in ops]
    assert {x["method"] for x in layers} == {"board"} and verdict["unit"] == "time_ns"
    assert verdict["passed"] and verdict["total_source"] == "timed windows"
    assert verdict["total"] == pytest.approx(out["latency_p50"].value * 1e6, rel=1e-6)
    shares = [share for _, share in simulated_layer_shares(ad01.read_bytes(), device)]
    assert [x["share"] for x in layers] == pytest.approx(shares, abs=1e-3)
    assert all(x["macs"] > 0 for x in layers if x["op"] == "FULLY_CONNECTED")
    table = render("ad01@board", out.details)
    assert f"{len(layers)} layers (board)" in table and "check passed" in table


def test_evaluate_gives_the_task_metrics_of_the_boards_results(
        start_board: StartBoard, ad01: Path, tmp_path: Path) -> None:
    from bench.artifacts.tflite_info import inspect
    from bench.results.metrics import task_metrics
    from bench.runners.io import batch_predict
    from bench.runners.tflm import open_model

    dataset = anomaly_dataset(tmp_path)
    port = start_board(ad01)
    out = evaluate(request(ad01, port, dataset=dataset))
    assert set(out) >= {"auc", "precision", "recall", "f1", "threshold"}
    assert {m.method for m in out.values()} == {"board"}
    # a stock firmware prints no raw outputs: no agreement with LiteRT, and why, without the
    # port (a local and a Ray record of the cell agree)
    assert "output_max_diff" not in out
    assert out.details == {"agreement": {
        "method": "board", "reason": "the firmware printed no raw outputs (m-results-raw-[…]): "
                                     "`infer 1 0%` answered m-warmup-start, m-warmup-done, "
                                     "m-infer-start, m-lap-us, m-infer-done, m-results"}}
    # the same through TFLite Micro in this process, outputs printed with three decimals
    data = ad01.read_bytes()
    model = open_model(data, inspect(data))
    run = batch_predict(lambda x: model.run([x])[0], model.in_specs[0], model.out_specs[0])
    ref = task_metrics(Dataset.load(dataset),
                       lambda x: np.vectorize(lambda v: float(f"{v:0.3f}"))(run(x)), "tflm")
    assert out["auc"].value == pytest.approx(ref["auc"].value, abs=1e-9)


def test_tcp_link_and_model_id_check(start_board: StartBoard, ad01: Path) -> None:
    url = start_board(ad01, "--link", "tcp", "--model-id", "ad01")
    assert url.startswith("socket://127.0.0.1:")
    assert measure(request(ad01, url, min_window_s=0.01))["latency_p50"].value > 0
    with pytest.raises(BoardError, match=r"runs model 'ad01', the suite expects 'kws01'"):
        measure(request(ad01, url, model="kws01"))


def test_split_lines_with_stray_nul_and_cr_are_tolerated(
        start_board: StartBoard, ad01: Path, device: dict) -> None:
    port = start_board(ad01, "--device", str(DEVICE), "--clock", "simulated", "--fault", "split")
    out = measure(request(ad01, port, device, windows=3))
    expected_ms = simulated_latency_us(ad01.read_bytes(), device) / 1e3
    assert out["latency_p50"].value == pytest.approx(expected_ms, rel=0.01)


def test_the_tail_of_a_line_cut_by_opening_the_port_is_skipped_once(
        start_board: StartBoard, ad01: Path, device: dict) -> None:
    """A board that boots as its port opens (an emulated one) shows ``-init-done``, the tail of
    its ``m-init-done``, and the banner's ``m-ready`` before the first reply: the handshake
    skips both; the same line later is garbage."""
    port = start_board(ad01, "--device", str(DEVICE), "--clock", "simulated", "--fault", "cut")
    out = measure(request(ad01, port, device, windows=3))
    assert out["latency_p50"].value > 0
    again = start_board(ad01, "--device", str(DEVICE), "--fault", "cut")
    link = BoardLink(SERIAL.parse_options({"port": again, "timeout_s": 1.0}))
    try:
        link.fresh = False  # as if a line had come before: now it is unreadable
        with pytest.raises(BoardError, match=r"unreadable bytes after `name%`.*-init-done"):
            link.handshake()
    finally:
        link.close()


def test_a_lone_m_ready_before_the_first_reply_is_the_end_of_a_missed_banner(
        start_board: StartBoard, ad01: Path) -> None:
    """QEMU drops a pty's output until the port opens: an emulated board was seen sending only
    its banner's ``m-ready`` before the reply to ``name%``, which then read as an empty reply
    ("no m-name-dut-[…] reply"). The handshake skips it; any later lone m-ready is a reply."""
    port = start_board(ad01, "--fault", "late-ready", "--name", "late-board")
    link = BoardLink(SERIAL.parse_options({"port": port, "timeout_s": 2.0}))
    try:
        assert link.handshake() == ("late-board", "ad01")
        assert "m-ready" in link.last  # it did come, first
        assert link.command("name") == ["m-name-dut-[late-board]"]  # replies stay in step
    finally:
        link.close()


def test_an_error_whose_m_ready_comes_late_leaves_the_replies_in_step(
        start_board: StartBoard, ad01: Path) -> None:
    """A firmware ends an ``e-`` reply with ``m-ready`` too; over a slow UART (QEMU's) it comes
    after the error was read. Taken for the next command's end, it shifted every later reply by
    one (an emulated board's ``db`` load then missed its ``m-load-done``)."""
    port = start_board(ad01, "--fault", "slow-error", "--name", "slow-board")
    link = BoardLink(SERIAL.parse_options({"port": port, "timeout_s": 2.0}))
    try:
        link.handshake()
        with pytest.raises(BoardError, match=r"`layers%` failed: e-\[Unknown command: layers\]"):
            link.command("layers")
        assert link.command("name") == ["m-name-dut-[slow-board]"]
        link.load(bytes(640))  # every chunk's reply is its own: m-load-done arrives
    finally:
        link.close()


# --- faults --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "message"), [
    ("garbage", r"unreadable bytes after `name%` \(wrong baud rate\? expected 115200\)"),
    ("silence", r"no m-ready within 1\.0 s after `name%`"),
    ("error", r"`infer \d+ 2%` failed: e-\[Inference failed: injected fault\]"),
    ("reset", r"the board reset during `infer \d+ 2%` \(boot banner 'm-timestamp-mode-perf"),
    ("overlong", r"overlong line"),
])
def test_fault_ends_in_a_clear_error(start_board: StartBoard, ad01: Path, fault: str,
                                     message: str) -> None:
    port = start_board(ad01, "--fault", fault)
    started = time.monotonic()
    with pytest.raises(BoardError, match=message) as err:
        measure(request(ad01, port, timeout_s=1.0))
    assert time.monotonic() - started < 10
    assert str(err.value).startswith(f"{port}: ") and "last lines received" in str(err.value)


def test_no_such_port_and_busy_port(start_board: StartBoard, ad01: Path) -> None:
    with pytest.raises(BoardError, match=r"/dev/no-such-tty: cannot open the port"):
        measure(request(ad01, "/dev/no-such-tty"))
    port = start_board(ad01)
    with serial.Serial(port, exclusive=True), \
            pytest.raises(BoardError, match=r"port busy"):
        measure(request(ad01, port))


def test_usb_id_not_attached_names_the_id(ad01: Path) -> None:
    req = RunRequest(artifact=ad01, dataset=None, options={"usb": "0483:374b"})
    with pytest.raises(BoardError, match=r"no serial port with USB id 0483:374b"):
        measure(req)


# --- a suite end to end --------------------------------------------------------------------------


def test_suite_end_to_end_on_the_virtual_board(start_board: StartBoard, ad01: Path,
                                               tmp_path: Path, device: dict,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.registry
    from bench.run.session import run_suite
    from bench.suite.spec import load_suite

    monkeypatch.setitem(bench.registry.runners._entries, "serial",
                        "bench.runners.serial:SERIAL")
    port = start_board(ad01, "--device", str(DEVICE), "--clock", "simulated",
                       "--model-id", "ad01")
    devices = tmp_path / "devices"
    devices.mkdir()
    board = {**yaml.safe_load(DEVICE.read_text()), "id": "virtual-board",
             "connection": {"kind": "serial", "port": port, "model": "ad01", **FAST}}
    (devices / "virtual-board.yaml").write_text(yaml.safe_dump(board))
    bad = {**board, "id": "dead-board",
           "connection": {"kind": "serial", "port": str(tmp_path / "nope"), **FAST}}
    (devices / "dead-board.yaml").write_text(yaml.safe_dump(bad))
    suite_file = tmp_path / "board.yaml"
    suite_file.write_text(yaml.safe_dump({
        "name": "board", "models": [{"id": "ad01", "path": str(ad01)}],
        "devices": ["virtual-board", "dead-board"], "settings": {"repeats": 5, "warmup": 1}}))
    run = run_suite(load_suite(suite_file), tmp_path / "results", devices_dirs=[devices])
    records = {r.cell_id.split("@")[1]: r for r in run.records()}
    ok, dead = records["virtual-board"], records["dead-board"]
    assert ok.status == "ok", ok
    expected_ms = simulated_latency_us(ad01.read_bytes(), device) / 1e3
    assert ok.value("latency_p50") == pytest.approx(expected_ms, rel=0.01)
    assert dead.status == "failed" and "cannot open the port" in str(dead.error)

    # a board's evaluation is cached only when the device file names its firmware
    def cached_again(connection: dict) -> list[bool]:
        (devices / "virtual-board.yaml").write_text(yaml.safe_dump({**board,
                                                                    "connection": connection}))
        one = load_suite(suite_file).model_copy(update={"devices": ["virtual-board"]})
        runs = [run_suite(one, tmp_path / "results", devices_dirs=[devices]) for _ in range(2)]
        return [r.records()[0].details["evaluation_cached"] for r in runs]

    assert cached_again(board["connection"]) == [False, False]
    assert cached_again({**board["connection"], "firmware": "ad01-v1.0"}) == [False, True]


def test_a_results_line_may_hold_the_models_outputs_up_to_a_ceiling() -> None:
    from bench.board.link import MAX_RESULTS_LINE

    link = BoardLink.__new__(BoardLink)  # only its line splitter is exercised
    link.splitter = p.LineSplitter()
    link.expect_outputs(10)  # a classifier's outputs: the protocol's bound stays
    assert link.splitter.max_line == p.MAX_LINE + 240
    link.expect_outputs(16384)  # a 16×16×64 feature map: about 98,000 characters
    assert link.splitter.feed(b"m-results-[" + b"0.000," * 16384 + b"]\n")
    link.expect_outputs(10**9)  # a shape the model file declares is no licence to buffer GBs
    assert link.splitter.max_line == MAX_RESULTS_LINE


@pytest.mark.parametrize("module, dest, flag", [("bench.virtual.board", "fault", "--fault"),
                                                 ("bench.virtual.monitor", "monitor_fault",
                                                  "--monitor-fault")])
def test_the_cli_and_readme_name_every_fault_of_the_virtual_bench(module: str, dest: str,
                                                                   flag: str) -> None:
    """Every fault the virtual board and its power monitor can play is a choice of ``board
    serve`` and is listed in README."""
    import argparse
    import importlib

    from bench.cli import parser

    faults = importlib.import_module(module).FAULTS

    def sub(p: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
        action = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
        return action.choices[name]

    serve = sub(sub(parser(), "board"), "serve")
    fault = next(a for a in serve._actions if a.dest == dest)
    assert tuple(fault.choices) == faults
    assert f"[{flag} {'|'.join(faults)}]" in (ROOT / "README.md").read_text()


def test_layer_lines_parse_and_bad_ones_are_named() -> None:
    lines = ["m-layers-hz-25000000", "m-layer-0-CONV_2D-4012", "m-layer-1-my-custom-op-71",
             "m-layers-dropped-2", "m-layers-total-4200"]
    got = p.layer_ticks(lines)
    assert got == p.LayerTicks(25_000_000, (("CONV_2D", 4012), ("my-custom-op", 71)), 4200, 2)
    with pytest.raises(p.ProtocolError, match="out of order"):
        p.layer_ticks([lines[0], lines[2], lines[4]])
    with pytest.raises(p.ProtocolError, match="malformed layers line 'm-layer-x'"):
        p.layer_ticks([*lines, "m-layer-x"])
    with pytest.raises(p.ProtocolError, match="no m-layers-hz and m-layers-total"):
        p.layer_ticks(lines[1:3])


def test_operator_output_lines_parse_and_bad_ones_are_named() -> None:
    lines = ["m-tensor-3-17-9-5", "m-tensor-data-0102ff", "m-tensor-data-8000"]
    got = p.op_output(lines)
    assert (got.op, got.tensor, got.type, got.data) == (3, 17, 9, bytes([1, 2, 255, 128, 0]))
    with pytest.raises(p.ProtocolError, match="5 bytes; 3 were printed"):
        p.op_output(lines[:2])
    with pytest.raises(p.ProtocolError, match="malformed m-tensor-data"):
        p.op_output([lines[0], "m-tensor-data-0g"])
    with pytest.raises(p.ProtocolError, match="no m-tensor-"):
        p.op_output(lines[1:])
