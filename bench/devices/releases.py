"""Runtime releases: normalising version text, ordering releases, and which fitted release
effect an estimate uses.

A *slot* is one fitted release effect of a runtime: a named release (``x-cube-ai`` ``7.3``)
or, where the published result names none, the MLPerf Tiny round it was submitted in
(``plumerai`` ``@v1.0``: the release current at that round). Slots of a runtime are ordered
(by round, then version) and their effects follow a random walk, so a release with little
data is pulled towards its neighbours. :func:`resolve` says which effect a query gets:

* ``release`` — the stated release is a slot;
* ``nearby releases`` — it is not (or the query names only a round): the nearest slots
  before and after it are averaged (or the nearest one extrapolated), with the random walk's
  extra variance;
* ``runtime pooled`` — no release stated, or the runtime has no slot to place it by: the
  row-weighted mean of the runtime's slots, with their spread as extra variance;
* ``runtime unseen`` — the runtime has no slot at all (no calibration data).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_VERSION = re.compile(r"(?<![\w.])v?(\d+(?:\.\d+)+|\d+)(?![\w])", re.IGNORECASE)


def normalise(text: Any) -> str | None:
    """A release as dotted numbers: ``"X-CUBE-AI v7.3.0"`` → ``"7.3"``, ``"v2.3.1"`` →
    ``"2.3.1"``, ``"2023.05"`` → ``"2023.05"``; None when the text holds no version.

    Trailing ``.0`` components beyond ``major.minor`` are dropped, so ``9.0.0`` and ``9.0``
    are one release. Only the part before ``; libs:`` of a results ``software`` field counts.
    """
    if text is None:
        return None
    text = str(text).split(";")[0]
    match = _VERSION.search(text)
    if match is None:
        return None
    parts = match.group(1).split(".")
    if len(parts) == 1:
        parts.append("0")
    while len(parts) > 2 and int(parts[-1]) == 0:
        parts.pop()
    return ".".join(parts)


def version_key(release: str | None) -> tuple[int, ...]:
    """Sortable numbers of a normalised release (``()`` for none)."""
    return tuple(int(p) for p in release.split(".")) if release else ()


def round_key(version: str | None) -> tuple[int, ...]:
    """Sortable numbers of an MLPerf Tiny round (``v1.10`` after ``v1.9``)."""
    return tuple(int(x) for x in re.findall(r"\d+", str(version or ""))) or (0,)


def slot_name(release: str | None, round_: str | None) -> str:
    """The slot of a result: its release, else ``@<round>``."""
    if release:
        return release
    return f"@{round_}" if round_ else "@unknown"


@dataclass(frozen=True)
class Slot:
    """One fitted release effect of a runtime."""

    name: str
    release: str | None
    round: str | None  # the round it was seen in (the earliest, when several)
    rows: int
    systems: int

    @property
    def order(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return round_key(self.round) if self.round else (999,), version_key(self.release)

    def to_json(self) -> dict[str, Any]:
        return {"slot": self.name, "release": self.release, "round": self.round,
                "rows": self.rows, "systems": self.systems}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Slot:
        return cls(str(data["slot"]), data.get("release"), data.get("round"),
                   int(data.get("rows", 0)), int(data.get("systems", 0)))


def param(runtime: str, slot: str) -> str:
    """The parameter name of a slot's effect."""
    return f"release.{runtime}.{slot}"


#: A release with fewer rows than this is reported as pooled with its neighbours.
THIN_ROWS = 4


@dataclass(frozen=True)
class Resolution:
    """Which release effect a query uses: slot weights, extra log-variance, and why."""

    source: str  # release | nearby releases | runtime pooled | runtime unseen
    weights: dict[str, float] = field(default_factory=dict)  # slot name → weight
    steps: float = 0.0  # extra variance in units of the random walk's step variance
    spread: bool = False  # add the slots' spread (pooled)
    used: tuple[str, ...] = ()
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "releases": list(self.used), "note": self.note}


def _between(slots: list[Slot], key: Any, key_of: Any) -> tuple[Slot | None, Slot | None]:
    before = [s for s in slots if key_of(s) <= key]
    after = [s for s in slots if key_of(s) > key]
    return (before[-1] if before else None), (after[0] if after else None)


def _label(slot: Slot) -> str:
    return slot.release or f"as of {slot.round}"


def resolve(slots: list[Slot], release: str | None, round_: str | None = None) -> Resolution:
    """The release effect for a query stating ``release`` (normalised) and/or the round of a
    published result; ``slots`` are the runtime's, in order."""
    if not slots:
        return Resolution("runtime unseen", note="no calibration data for this runtime")
    name = slot_name(release, round_) if (release or round_) else None
    hit = next((s for s in slots if s.name == name), None)
    if hit is not None:
        thin = hit.rows < THIN_ROWS
        return Resolution("release", {hit.name: 1.0}, used=(_label(hit),),
                          note=(f"{hit.rows} results, pooled with nearby releases by the fit"
                                if thin else f"{hit.rows} results"))
    if round_ is not None:  # a published result: place it among all slots by round, release
        ordered = sorted(slots, key=lambda s: s.order)
        key = (round_key(round_), version_key(release))
        prev, nxt = _between(ordered, key, lambda s: s.order)
    elif release is not None:
        named = sorted((s for s in slots if s.release), key=lambda s: version_key(s.release))
        if not named:
            return _pooled(slots, f"release {release} cannot be placed: the data name no "
                                  f"release of this runtime")
        prev, nxt = _between(named, version_key(release), lambda s: version_key(s.release))
    else:
        return _pooled(slots, "no runtime_version stated")
    if prev is not None and nxt is not None:
        return Resolution("nearby releases", {prev.name: 0.5, nxt.name: 0.5}, steps=0.5,
                          used=(_label(prev), _label(nxt)),
                          note=f"between {_label(prev)} and {_label(nxt)}")
    near = prev or nxt
    assert near is not None
    side = "newer" if prev is not None else "older"
    return Resolution("nearby releases", {near.name: 1.0}, steps=1.0, used=(_label(near),),
                      note=f"{side} than any release in the data: {_label(near)}, one "
                           f"release step of extra uncertainty")


def _pooled(slots: list[Slot], why: str) -> Resolution:
    total = sum(max(s.rows, 1) for s in slots)
    weights = {s.name: max(s.rows, 1) / total for s in slots}
    names = [_label(s) for s in slots]
    span = names[0] if len(names) == 1 else f"{names[0]} … {names[-1]}"
    return Resolution("runtime pooled", weights, spread=True, used=tuple(names),
                      note=f"{why}: the runtime's releases in the data pooled ({span})")
