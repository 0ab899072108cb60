"""``edgebench leaderboard`` listens on this machine only unless ``--address`` says otherwise."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.sockets import addresses_on, free_port


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
def test_the_leaderboard_binds_loopback_by_default(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench", "leaderboard", "--results",
                             str(tmp_path / "results"), "--port", str(port)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline, addresses = time.monotonic() + 60, set()
        while not addresses and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            addresses = addresses_on(port)
        assert addresses == {"127.0.0.1"}, (addresses, proc.poll())
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
def test_sigterm_to_the_leaderboard_stops_its_server(tmp_path: Path) -> None:
    """SIGTERM to ``edgebench leaderboard`` (a service manager's stop) left the Streamlit
    server running, orphaned, on the port."""
    (tmp_path / "results").mkdir()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench", "leaderboard", "--results",
                             str(tmp_path / "results"), "--port", str(port)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not addresses_on(port) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert addresses_on(port)
        proc.terminate()  # this process only, not its group
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while addresses_on(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not addresses_on(port)
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever is left of the group
            os.killpg(proc.pid, 9)
