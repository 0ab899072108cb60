"""Is a timing stable enough to trust? Warnings, with their likely causes, for a spread that is
too wide or for worker processes whose medians disagree."""

from __future__ import annotations

import numpy as np

from bench.results.formatting import duration
from bench.results.samples import Samples

#: interquartile range ÷ median above which a cell's timings are called unstable (a robust
#: spread: a few interrupted invokes of a sub-microsecond model do not count, a wide body does)
MAX_SPREAD = 0.10
#: relative gap between the slowest and fastest process median above which they disagree
MAX_PROCESS_GAP = 0.10


def instability(samples: Samples) -> list[str]:
    """Warnings for ``samples`` (none when they look stable)."""
    warnings = []
    values = samples.all
    if len(values) >= 2:
        q1, median, q3 = (float(q) for q in np.percentile(values, [25, 50, 75]))
        spread = (q3 - q1) / median if median > 0 else 0.0
        if spread > MAX_SPREAD:
            warnings.append(
                f"unstable timing: the interquartile range is {spread:.0%} of the median (over "
                f"{MAX_SPREAD:.0%}); likely causes: other processes sharing the CPU, frequency "
                "scaling or throttling, or invokes too short for the clock")
    medians = samples.process_medians_ms()
    if len(medians) >= 2 and min(medians) > 0:
        gap = max(medians) / min(medians) - 1
        if gap > MAX_PROCESS_GAP:
            warnings.append(
                f"unstable timing: worker processes' medians differ by {gap:.0%} "
                f"({duration(min(medians))}–{duration(max(medians))}; over {MAX_PROCESS_GAP:.0%}); "
                "likely causes: load that came and went, frequency changes between "
                "processes, or memory layout; pin the CPU and fix its governor")
    return warnings
