"""A seeded sample of the fuzz corpus (``tests/fuzz_corpus.py``; ``make fuzz`` runs it whole):
broken suite and device files get a clear error naming the file, valid ones load, and no file
gives a traceback or hangs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz_corpus import Case, corpus, judge

SAMPLE = corpus(suites=80, devices=40, seed=1)


@pytest.mark.parametrize("case", SAMPLE, ids=[c.name[:60] for c in SAMPLE])
def test_fuzz_case(case: Case, tmp_path: Path) -> None:
    verdict, detail = judge(case, tmp_path)
    if case.valid is None:  # a random wrong value may happen to be valid
        assert verdict in ("error", "accepted"), detail
    else:
        assert verdict == ("accepted" if case.valid else "error"), detail
