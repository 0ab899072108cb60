"""Is a timing change real? Tests on raw samples (Mann–Whitney U, bootstrap interval of the
ratio of medians), a fallback on stored summaries (Welch's t on mean, std, n), and Holm's
correction for comparing many cells at once."""

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
    test: str  # "mann-whitney" (raw samples) or "welch" (mean, std, n)


def on_samples(before: Sequence[float], after: Sequence[float], seed: int = 0) -> Test:
    """Two-sided Mann–Whitney U on the raw durations; the interval is a percentile bootstrap
    of the ratio of medians."""
    from scipy.stats import mannwhitneyu

    a, b = np.asarray(before, np.float64), np.asarray(after, np.float64)
    if len(a) == 0 or len(b) == 0:
        raise ValueError("no samples to compare")
    p = float(mannwhitneyu(a, b, alternative="two-sided").pvalue) if (
        len(a) > 1 or len(b) > 1) else 1.0
    rng = np.random.default_rng(seed)
    ratios = (np.median(rng.choice(b, (BOOTSTRAP, len(b))), axis=1)
              / np.median(rng.choice(a, (BOOTSTRAP, len(a))), axis=1))
    low, high = np.percentile(ratios, [2.5, 97.5])
    change = float(np.median(b) / np.median(a)) - 1
    return Test(change, float(low) - 1, float(high) - 1, 1.0 if math.isnan(p) else p,
                "mann-whitney")


def on_summaries(mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float,
                 n_b: int) -> Test:
    """Welch's t-test on stored summaries (records without raw samples); the interval is the
    delta method's for the ratio of means."""
    from scipy.stats import ttest_ind_from_stats

    if n_a < 2 or n_b < 2 or mean_a <= 0:
        return Test(mean_b / mean_a - 1 if mean_a else math.inf, -math.inf, math.inf, 1.0,
                    "welch")
    p = float(ttest_ind_from_stats(mean_a, std_a, n_a, mean_b, std_b, n_b,
                                   equal_var=False).pvalue)
    ratio = mean_b / mean_a
    se = ratio * math.sqrt((std_a / mean_a) ** 2 / n_a + (std_b / max(mean_b, 1e-300)) ** 2 / n_b)
    return Test(ratio - 1, ratio - 1.96 * se - 1, ratio + 1.96 * se - 1,
                1.0 if math.isnan(p) else p, "welch")


def holm(p_values: Sequence[float], alpha: float = ALPHA) -> list[bool]:
    """Holm–Bonferroni: which of the hypotheses are rejected at family-wise level ``alpha``."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    rejected = [False] * len(p_values)
    for rank, i in enumerate(order):
        if p_values[i] > alpha / (len(p_values) - rank):
            break
        rejected[i] = True
    return rejected
