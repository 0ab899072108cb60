"""Concurrent writers of one run folder, with real processes: one writer at a time, except the
processes of one pytest session, which share a run on purpose."""

from __future__ import annotations

import json
import platform
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.results.runlock import RunLocked
from bench.results.store import Store
from tests.conftest import ROOT

EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
#: A process that creates (or, given a run id, joins) a run, says so, and holds it until told.
HOLDER = """
import sys
from bench.results.metrics import Metric
from bench.results.record import Record
from bench.results.store import Store
run = Store(sys.argv[1]).create("s", {}, run_id=sys.argv[2] or None)
print(run.path, flush=True)
sys.stdin.readline()
run.append(Record(suite="s", run_id=run.run_id, cell_id=sys.argv[3], model="m", variant="v",
                  device="d", runner="litert", status="ok",
                  metrics={"model_size": Metric(1.0, "B", "measured")}))
print("appended", flush=True)
sys.stdin.readline()
"""


def _holder(root: Path, cell: str, run_id: str = "") -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(root), run_id, cell], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
    return proc, Path(proc.stdout.readline().strip())


def _tell(proc: subprocess.Popen[str], expect: str | None = None) -> None:
    proc.stdin.write("\n")
    proc.stdin.flush()
    if expect is not None:
        assert proc.stdout.readline().strip() == expect


def test_a_second_writer_is_refused_naming_the_holder(tmp_path: Path) -> None:
    root = tmp_path / "results"
    holder, run_path = _holder(root, "a")
    try:
        run = Store(root).latest("s")
        assert run.path == run_path
        with pytest.raises(RunLocked) as refused:
            run.repair_tail()  # what a resume does first
        message = str(refused.value)
        assert f"pid {holder.pid} on {platform.node()}, exclusive" in message
        assert str(run_path) in message
        with pytest.raises(RunLocked):
            Store(root).create("s", {}, run_id=run.run_id)  # joining it is refused too
        _tell(holder, "appended")  # the holder keeps writing
    finally:
        holder.send_signal(signal.SIGKILL)  # a killed writer frees the run at once
        holder.wait()
    run.repair_tail()
    assert [r.cell_id for r in run.records()] == ["a"]
    run.release()


def test_the_processes_of_one_pytest_session_share_a_run(tmp_path: Path) -> None:
    root, run_id = tmp_path / "results", "20260101T000000Z-abcd"
    first, path = _holder(root, "a", run_id)
    second, same = _holder(root, "b", run_id)
    try:
        assert same == path
        with pytest.raises(RunLocked, match="shared"):  # no third writer meanwhile
            Store(root).latest("s").repair_tail()
        _tell(first, "appended")
        _tell(second, "appended")
    finally:
        for proc in (first, second):
            proc.stdin.close()  # end of input: each finishes
            proc.wait(timeout=30)
    assert sorted(r.cell_id for r in Store(root).latest("s").records()) == ["a", "b"]


def test_two_resumes_started_together_write_each_cell_once(tmp_path: Path,
                                                           tiny_tflite: Path) -> None:
    suite_file = tmp_path / "pair.yaml"
    suite_file.write_text(yaml.safe_dump({
        "name": "pair", "devices": ["host-litert"], "settings": {"repeats": 3, "warmup": 1},
        "models": [{"id": f"m{i}", "path": str(tiny_tflite)} for i in range(2)]}))
    root = tmp_path / "results"
    subprocess.run([sys.executable, "-c", "import sys; from bench.results.store import Store; "
                    "Store(sys.argv[1]).create('pair', {'cells': []})", str(root)],
                   check=True, cwd=ROOT)  # a run to resume, made by a process that ended
    command = [EDGEBENCH, "run", str(suite_file), "--results", str(root), "--resume", "-q",
               "--devices-dir", str(ROOT / "devices")]
    procs = [subprocess.Popen(command, cwd=ROOT, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(2)]
    outs = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in outs)
    assert codes == [0, 2], outs
    refused = next(err for code, _, err in outs if code == 2)
    assert "is being written by another edgebench process (pid" in refused
    assert "Traceback" not in refused
    lines = next(root.glob("pair/*/records.jsonl")).read_text().splitlines()
    cells = [json.loads(x)["cell_id"] for x in lines]
    assert sorted(cells) == ["m0/fp32@host-litert", "m1/fp32@host-litert"]
