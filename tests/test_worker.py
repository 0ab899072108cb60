from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import worker


@pytest.fixture(autouse=True)
def _targets_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))


def test_returns_the_value() -> None:
    assert worker.call("worker_targets:add", {"a": 2, "b": 3}, timeout_s=60) == 5


def test_exception_keeps_type_and_message() -> None:
    with pytest.raises(worker.WorkerError) as e:
        worker.call("worker_targets:fail", {"message": "converter says no"}, timeout_s=60)
    assert e.value.kind == "error"
    assert e.value.type == "RuntimeError"
    assert "converter says no" in str(e.value)
    assert "Traceback" in e.value.detail


@pytest.mark.parametrize(("target", "signal_name"), [("segfault", "SIGSEGV"),
                                                     ("abort", "SIGABRT")])
def test_crash_becomes_a_clear_error(target: str, signal_name: str) -> None:
    with pytest.raises(worker.WorkerError) as e:
        worker.call(f"worker_targets:{target}", {}, timeout_s=60)
    assert e.value.kind == "crashed"
    assert signal_name in str(e.value)
    if target == "segfault":
        assert "about to dereference NULL" in str(e.value)  # the last output is kept


def test_exit_without_result() -> None:
    with pytest.raises(worker.WorkerError, match="exited with status 3"):
        worker.call("worker_targets:exit_quietly", {}, timeout_s=60)


def test_hang_is_killed_at_the_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(worker.WorkerError) as e:
        worker.call("worker_targets:hang", {"seconds": 60}, timeout_s=2)
    assert e.value.kind == "timeout"
    assert "2 s" in str(e.value)
    assert time.monotonic() - started < 30


def test_worker_dies_with_a_killed_parent(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    code = ("from bench import worker; worker.call('worker_targets:hang', "
            f"{{'seconds': 120, 'pid_file': {str(pid_file)!r}}}, timeout_s=300)")
    parent = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the worker never started"
        time.sleep(0.1)
    child = int(pid_file.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("the worker outlived its killed parent")


def test_modules_in_the_working_directory_never_run_in_the_worker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "shadow-ran"
    for name in ("concurrent", "json"):  # named like the standard library modules it uses
        (tmp_path / f"{name}.py").write_text(
            f"import pathlib\npathlib.Path({str(marker)!r}).write_text({name!r})\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", f"{Path(__file__).parent}{os.pathsep}")  # "" = the cwd
    assert worker.call("worker_targets:thread_sum", {"values": [1, 2, 3]}, timeout_s=60) == 6
    assert not marker.exists(), f"{marker.read_text()}.py from the working directory ran"


def test_a_killed_run_leaves_no_worker_folder(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    pid_file = tmp_path / "child.pid"
    code = ("from bench import worker; worker.call('worker_targets:hang', "
            f"{{'seconds': 120, 'pid_file': {str(pid_file)!r}}}, timeout_s=300)")
    parent = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "TMPDIR": str(temp)})
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the worker never started"
        time.sleep(0.1)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    left = list(temp.glob("edgebench-worker-*"))
    assert len(left) == 1  # SIGKILL: nobody could clean up
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    assert worker.call("worker_targets:add", {"a": 1, "b": 1}, timeout_s=60) == 2
    assert list(temp.glob("edgebench-worker-*")) == []  # the stale folder went, and its own
