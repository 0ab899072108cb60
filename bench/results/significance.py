"""Is a timing change real? A two-level bootstrap on raw samples (worker processes and their
durations), a fallback on stored summaries (Welch's t on mean, std, n), and Holm's correction
for comparing many cells at once."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05
BOOTSTRAP = 2000


@dataclass(frozen=True)
class Test:
    """One timing comparison: after ÷ before − 1, its 95 % interval, the test's p-value."""

    change: float
    low: float
    high: float
    p_value: float
    test: str  # "bootstrap" (raw samples) or "welch" (mean, std, n)


def _processes(samples: Sequence[float] | Sequence[Sequence[float]]) -> list[np.ndarray]:
    """Samples as one array per worker process (a flat sequence is one process)."""
    if len(samples) and np.ndim(samples[0]) == 0:
        return [np.asarray(samples, np.float64)]
    return [np.asarray(p, np.float64) for p in samples if len(p)]


def _bootstrap_stat(processes: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates of the mean of the processes' medians, resampling both levels:
    the processes (with replacement), and each process's durations (with replacement). With
    few processes the top level's spread is widened by √(k/(k−1)), the usual correction for
    a bootstrap of k values (it would otherwise understate their variance)."""
    medians = np.stack([np.median(rng.choice(p, (BOOTSTRAP, len(p))), axis=1)
                        for p in processes])  # (processes, BOOTSTRAP)
    k = len(processes)
    if k == 1:
        return medians[0]
    pick = rng.integers(0, k, (BOOTSTRAP, k))
    replicate = medians[pick, np.arange(BOOTSTRAP)[:, None]].mean(axis=1)
    centre = medians.mean(axis=0)
    return centre + math.sqrt(k / (k - 1)) * (replicate - centre)


def on_samples(before: Sequence[float] | Sequence[Sequence[float]],
               after: Sequence[float] | Sequence[Sequence[float]], seed: int = 0) -> Test:
    """Compare the typical duration (the mean of each worker process's median) of two sets of
    raw durations with a two-level bootstrap: processes are resampled as well as durations, so
    a run's luck shared by all its invokes (memory layout, frequency) counts as noise, as it
    should. The interval is the bootstrap's 95 % one of after ÷ before − 1; the p-value is
    twice the share of replicates on the other side of no change."""
    a, b = _processes(before), _processes(after)
    if not a or not b:
        raise ValueError("no samples to compare")
    rng = np.random.default_rng(seed)
    ratios = _bootstrap_stat(b, rng) / _bootstrap_stat(a, rng)
    point = np.mean([np.median(p) for p in b]) / np.mean([np.median(p) for p in a])
    low, high = np.percentile(ratios, [2.5, 97.5])
    below, above = np.mean(ratios < 1), np.mean(ratios > 1)
    ties = 1 - below - above
    p = min(1.0, 2 * min(below, above) + ties)
    return Test(float(point) - 1, float(low) - 1, float(high) - 1, float(p), "bootstrap")


def on_summaries(mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float,
                 n_b: int) -> Test:
    """Welch's t-test on stored summaries (records without raw samples); the interval is the
    delta method's for the ratio of means."""
    if n_a < 2 or n_b < 2 or mean_a <= 0:
        return Test(mean_b / mean_a - 1 if mean_a else math.inf, -math.inf, math.inf, 1.0,
                    "welch")
    p = welch_p(mean_a, std_a, n_a, mean_b, std_b, n_b)
    ratio = mean_b / mean_a
    se = ratio * math.sqrt((std_a / mean_a) ** 2 / n_a + (std_b / max(mean_b, 1e-300)) ** 2 / n_b)
    return Test(ratio - 1, ratio - 1.96 * se - 1, ratio + 1.96 * se - 1,
                1.0 if math.isnan(p) else p, "welch")


def welch_p(mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float,
            n_b: int) -> float:
    """The two-sided p-value of Welch's t-test on summaries, as SciPy's
    ``ttest_ind_from_stats(..., equal_var=False)`` computes it (NaN when both spreads are 0 and
    the means equal), without its per-call overhead (a compare of 50,000 cells makes that
    many)."""
    from scipy.special import stdtr

    va, vb = std_a * std_a / n_a, std_b * std_b / n_b
    spread = va + vb
    df_below = va * va / (n_a - 1) + vb * vb / (n_b - 1)
    df = spread * spread / df_below if df_below else 1.0  # SciPy's stand-in for 0 / 0
    if math.isnan(df):
        df = 1.0
    d = mean_a - mean_b
    if not spread:
        if not d:
            return math.nan
        return 0.0
    return float(2 * stdtr(df, -abs(d / math.sqrt(spread))))


def holm(p_values: Sequence[float], alpha: float = ALPHA) -> list[bool]:
    """Holm–Bonferroni: which of the hypotheses are rejected at family-wise level ``alpha``."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    rejected = [False] * len(p_values)
    for rank, i in enumerate(order):
        if p_values[i] > alpha / (len(p_values) - rank):
            break
        rejected[i] = True
    return rejected
