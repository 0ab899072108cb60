"""Leaderboard data layer at scale: write 10,000 synthetic records, load and filter them."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.results.metrics import metric
from bench.results.record import ConstraintResult, Record
from bench.results.store import Store
from leaderboard import data, ranking

N = 10_000


def write_store(root: Path, n: int = N) -> None:
    """``n`` records in 10 runs: 25 models × 4 variants × 4 devices per run."""
    store = Store(root)
    per_run = n // 10
    for r in range(10):
        run = store.create(f"suite{r % 3}", {})
        lines = []
        for i in range(per_run):
            model, variant, device = f"m{i // 16 % 25}", f"v{i // 4 % 4}", f"d{i % 4}"
            variant = "fp32" if variant == "v0" else variant
            rec = Record(suite=run.suite, run_id=run.run_id,
                         cell_id=f"{model}/{variant}@{device}#{i}", model=model, variant=variant,
                         device=device, runner="litert", status="ok" if i % 10 else "skipped",
                         metrics={"model_size": metric("model_size", 1000 + i, "measured"),
                                  "latency_p50": metric("latency_p50", 0.1 * (i % 50 + 1),
                                                        "estimated" if i % 2 else "measured"),
                                  "accuracy": metric("accuracy", 0.8 + (i % 20) / 100, "measured")},
                         constraints={"flash_kb": ConstraintResult("model_size", "≤ 512",
                                                                   1.0, i % 7 != 0)})
            lines.append(rec)
        for rec in lines:
            run.append(rec)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_store(root)
        t0 = time.perf_counter()
        df = data.load_frame(root)
        t1 = time.perf_counter()
        shown = data.apply_filters(df, {"suite": ["suite1"], "variant": ["int8", "v2"],
                                        "method": ["measured"], "status": ["ok"]})
        table = data.display_table(shown)
        t2 = time.perf_counter()
        latest = df[df["run"].isin(ranking.latest_runs(df))]
        board = ranking.style(ranking.board(latest, "accuracy", data.metric_names(latest)))
        html = board.to_html() if hasattr(board, "to_html") else ""
        t3 = time.perf_counter()
        print(f"leaderboard: {len(df)} records loaded in {t1 - t0:.2f} s; "
              f"filtered to {len(table)} rows in {t2 - t1:.3f} s; home table of the latest "
              f"runs ({len(latest)} rows, {len(html) // 1024} KB styled) in {t3 - t2:.2f} s; "
              f"total {t3 - t0:.2f} s")


if __name__ == "__main__":
    main()
