"""Serving the app: where its entry script is installed and the ``streamlit run`` command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

#: The environment variable naming the result store the app reads.
RESULTS_ENV = "EDGEBENCH_RESULTS"
#: Streamlit settings for users: the viewer toolbar (no Deploy button, no rerun/settings
#: developer menu), no usage statistics, no reloading when a source file changes.
USER_OPTIONS: dict[str, str] = {
    "client.toolbarMode": "viewer",
    "browser.gatherUsageStats": "false",
    "server.fileWatcherType": "none",
    "server.runOnSave": "false",
}


def app_path() -> Path:
    """The app's entry script, inside the installed ``leaderboard`` package."""
    return Path(str(files("leaderboard").joinpath("app.py")))


def command(port: int = 8501, address: str = "127.0.0.1", headless: bool = True) -> list[str]:
    """The ``streamlit run`` command line serving the app on ``address:port``."""
    options = {"server.port": str(port), "server.address": address,
               "server.headless": "true" if headless else "false", **USER_OPTIONS}
    flags = [arg for name, value in options.items() for arg in (f"--{name}", value)]
    # -P: no module of the working directory is importable in the server
    return [sys.executable, "-P", "-m", "streamlit", "run", str(app_path()), *flags]


def serve(results: Path | str, port: int = 8501, address: str = "127.0.0.1",
          open_browser: bool = False) -> int:
    """Serve the app over the result store ``results`` until interrupted; Streamlit's exit code
    (0 on Ctrl-C). Binds ``address`` only (default: this machine)."""
    results = Path(results).resolve()
    if not results.is_dir():
        raise FileNotFoundError(f"no result store at {results}; run `edgebench run SUITE` first")
    env = {**os.environ, RESULTS_ENV: str(results)}
    print(f"serving {results} on http://{address}:{port}", file=sys.stderr)
    server = subprocess.Popen(command(port, address, headless=not open_browser), env=env)
    # a SIGTERM to this process stops the server too (it left it serving, orphaned)
    previous = signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    try:
        return server.wait()
    except KeyboardInterrupt:  # Ctrl-C reached the server too: let it finish
        server.wait()
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
