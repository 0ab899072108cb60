"""Quickstart wall time, cold (empty cache) and warm (everything cached). Prints the figures.

Usage: python benchmarks/quickstart_wall.py [SUITE]
Target: the cold run under 10 minutes on a 2-core machine; the warm run at least 10x faster.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed_run(suite: Path, cache: Path, results: Path) -> float:
    env = {**os.environ, "EDGEBENCH_CACHE": str(cache)}
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "bench", "run", str(suite), "--results",
                    str(results), "-q"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def main() -> None:
    suite = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "suites" / "quickstart.yaml"
    with tempfile.TemporaryDirectory(prefix="edgebench-bench-") as tmp:
        cache, results = Path(tmp, "cache"), Path(tmp, "results")
        cold = timed_run(suite, cache, results)
        warm = timed_run(suite, cache, results)
    print(f"quickstart wall time: cold {cold:.1f} s, warm {warm:.1f} s, "
          f"warm speed-up {cold / warm:.1f}x (target: cold < 600 s, speed-up >= 10x)")


if __name__ == "__main__":
    main()
