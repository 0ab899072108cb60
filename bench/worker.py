"""Run a step that may crash or hang (native TF, LiteRT, TFLite Micro code) in a subprocess.

``call("module:function", payload, timeout_s)`` starts ``python -P -m bench.worker``, which
calls ``function(**payload)`` and writes its JSON result. A segfault, abort, hang or Python
exception in the child becomes a :class:`WorkerError` in the parent with a clear message; the
parent process is never at risk.

The child never imports from the working directory (``-P``; an empty ``PYTHONPATH`` entry is
dropped too), so a ``concurrent.py`` lying where ``edgebench run`` starts cannot shadow the
standard library. Its exchange folder ``edgebench-worker-<pid>-*`` is removed on return, and
folders left by a killed run (owner pid gone) are removed by the next call.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

CHILD_ENV = {
    "TF_USE_LEGACY_KERAS": "1",  # tf-keras is the Keras of the build/convert steps
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "PYTHONUNBUFFERED": "1",
}
TEMP_PREFIX = "edgebench-worker-"
_TEMP_OWNER = re.compile(re.escape(TEMP_PREFIX) + r"(\d+)-")


class WorkerError(Exception):
    """A worker that did not return a result.

    ``kind``: ``error`` (the step raised; ``type`` names the exception), ``crashed`` (killed by
    a signal or exited without a result), ``timeout``."""

    def __init__(self, kind: str, message: str, *, type: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.kind, self.type, self.detail = kind, type, detail


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _die_with_parent() -> None:
    """In the child before exec: on Linux, get SIGKILL when the parent dies (a killed run)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def python_command(*args: str) -> list[str]:
    """``python -P …``: this interpreter, not importing from the working directory."""
    return [sys.executable, "-P", *args]


def child_env() -> dict[str, str]:
    """The parent's environment plus :data:`CHILD_ENV`; ``PYTHONPATH`` without its empty or
    ``.`` entries (each means the working directory)."""
    env = {**os.environ, **CHILD_ENV}
    if "PYTHONPATH" in env:
        kept = [p for p in env["PYTHONPATH"].split(os.pathsep) if p not in ("", ".")]
        env["PYTHONPATH"] = os.pathsep.join(kept)
    return env


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (someone else's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temp(root: Path | None = None) -> list[Path]:
    """Remove this user's ``edgebench-worker-<pid>-*`` folders whose owner process is gone
    (a run killed with SIGKILL cannot clean up); return them."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    for folder in root.glob(TEMP_PREFIX + "*"):
        match = _TEMP_OWNER.match(folder.name)
        try:
            mine = folder.is_dir() and folder.stat().st_uid == os.getuid()
        except OSError:
            continue
        if match and mine and not pid_alive(int(match[1])):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def call(ref: str, payload: dict[str, Any], timeout_s: float) -> Any:
    """Call ``ref`` with ``payload`` in a fresh subprocess; return its JSON-able result."""
    remove_stale_temp()
    with tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}-") as tmp:
        req, resp, err = Path(tmp, "request.json"), Path(tmp, "result.json"), Path(tmp, "stderr")
        req.write_text(json.dumps({"ref": ref, "payload": payload}))
        env = child_env()
        with err.open("wb") as err_file:
            proc = subprocess.Popen(
                python_command("-m", "bench.worker", str(req), str(resp)),
                stdin=subprocess.DEVNULL, stdout=err_file, stderr=err_file, env=env,
                start_new_session=True,  # its own process group, so a timeout kills it all
                preexec_fn=_die_with_parent,
            )
            started = time.monotonic()
            try:
                proc.wait(timeout=timeout_s)
            except BaseException as e:  # timeout, Ctrl-C, …: never leave the child running
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                if not isinstance(e, subprocess.TimeoutExpired):
                    raise
                raise WorkerError("timeout", f"no result after {timeout_s:g} s (timeout_s); "
                                  "the worker was killed",
                                  detail=_tail(err.read_text(errors="replace"))) from None
        stderr = err.read_text(errors="replace")
        if resp.exists():
            result = json.loads(resp.read_text())
            if result["ok"]:
                return result["value"]
            e = result["error"]
            raise WorkerError("error", e["message"], type=e["type"], detail=e["traceback"])
        elapsed = time.monotonic() - started
        if proc.returncode < 0:
            how = f"crashed with {_signal_name(proc.returncode)}"
        else:
            how = f"exited with status {proc.returncode} without a result"
        raise WorkerError("crashed", f"worker {how} after {elapsed:.1f} s; last output:\n"
                          f"{_tail(stderr)}", detail=stderr[-4000:])


def _child(request_path: str, result_path: str) -> None:
    from bench.registry import load_ref

    request = json.loads(Path(request_path).read_text())
    try:
        value = load_ref(request["ref"])(**request["payload"])
        result: dict[str, Any] = {"ok": True, "value": value}
    except Exception as e:  # the step's own failure: report it, keep the type and traceback
        result = {"ok": False, "error": {"type": type(e).__name__, "message": str(e) or
                                         type(e).__name__, "traceback": traceback.format_exc()}}
    tmp = Path(result_path + ".tmp")
    tmp.write_text(json.dumps(result))
    tmp.rename(result_path)


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: native libraries sometimes crash while unloading
