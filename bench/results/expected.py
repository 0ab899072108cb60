"""A record's verdict: its status with the suite's expected outcomes taken into account.

A suite may say a cell misses a check on purpose (``expect:``; the session copies the checks
and their reasons into the record's ``details["expected"]``). The verdict is what ``run``,
``show``, pytest and the leaderboard all report:

* ``ok``: ran and passed every check it had;
* ``unsupported``: skipped because the runtime cannot run the variant (the runtime's reason);
* ``skipped``: skipped for another reason;
* ``failed``: the cell itself failed (a real failure);
* ``miss``: a check missed that nobody expected to miss (a failure, what CI is for);
* ``expected miss``: every missed check was expected to miss (pytest: xfail);
* ``unexpected pass``: a check expected to miss passed (pytest: xpass).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # read by attribute only: this module stays light for the CLI's start
    from bench.results.record import Record

#: The ``details`` key holding the checks a cell is expected to miss (check → why).
EXPECTED = "expected"
#: Verdicts that are failures (pytest fails them; ``edgebench run`` exits 1).
FAILURES = ("failed", "miss")


def expectations(details: dict[str, Any] | None) -> dict[str, str]:
    """The checks a record is expected to miss and why (well-formed entries only)."""
    found = (details or {}).get(EXPECTED)
    if not isinstance(found, dict):
        return {}
    return {str(k): str(v) for k, v in found.items() if isinstance(v, str)}


@dataclass(frozen=True)
class Verdict:
    outcome: str
    unexpected: tuple[str, ...] = ()  # checks missed that were not expected to miss
    expected: tuple[str, ...] = ()  # checks missed as expected
    passed_anyway: tuple[str, ...] = ()  # checks expected to miss that passed
    why: dict[str, str] = field(default_factory=dict)  # check → the suite's reason

    @property
    def failure(self) -> bool:
        return self.outcome in FAILURES

    def reason(self) -> str:
        """The expectation's reasons for the checks this verdict is about."""
        names = self.expected or self.passed_anyway
        return "; ".join(f"{n}: {self.why[n]}" for n in names if n in self.why)


def verdict(record: Record) -> Verdict:
    """The verdict of one record (see the module docstring)."""
    error = record.error or {}
    if record.status == "failed":
        return Verdict("failed")
    if record.status == "skipped":
        return Verdict("unsupported" if error.get("kind") == "unsupported" else "skipped")
    why = expectations(record.details)
    missed = [n for n, c in record.constraints.items() if c.passed is False]
    unexpected = tuple(n for n in missed if n not in why)
    expected = tuple(n for n in missed if n in why)
    passed = tuple(n for n, c in record.constraints.items() if n in why and c.passed is True)
    if unexpected:
        outcome = "miss"
    elif passed:
        outcome = "unexpected pass"
    elif expected:
        outcome = "expected miss"
    else:
        outcome = "ok"
    return Verdict(outcome, unexpected, expected, passed, why)


def summary(records: list[Record]) -> str:
    """One line on what the checks found: unexpected misses and failures named, expected misses
    and unexpected passes counted (:func:`summary_of` the records' verdicts)."""
    return summary_of([(r.cell_id, verdict(r)) for r in records])


def summary_of(verdicts: list[tuple[str, Verdict]]) -> str:
    """:func:`summary` of ``(cell id, verdict)`` pairs."""
    failed = [c for c, v in verdicts if v.outcome == "failed"]
    missed = [f"{c} ({', '.join(v.unexpected)})" for c, v in verdicts if v.outcome == "miss"]
    expected = sum(bool(v.expected) and not v.unexpected for _, v in verdicts)
    passed = [f"{c} ({', '.join(v.passed_anyway)})" for c, v in verdicts if v.passed_anyway]
    unsupported = sum(v.outcome == "unsupported" for _, v in verdicts)
    parts = []
    if failed or missed:
        parts.append(f"{len(failed) + len(missed)} unexpected failures: "
                     + ", ".join(failed + missed))
    else:
        parts.append("no unexpected failure")
    if expected:
        parts.append(f"{expected} expected misses")
    if passed:
        parts.append(f"{len(passed)} expected to miss but passed: {', '.join(passed)}")
    if unsupported:
        parts.append(f"{unsupported} unsupported by their runtime")
    return "; ".join(parts)
