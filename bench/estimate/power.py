"""A board's power while inferring: its own parameter, with where it comes from and how sure it is.

Sources, most trusted first (:func:`resolve`):

* ``records`` — the user's energy records of this board (``edgebench calibrate --records``);
* ``measured`` — the device file's ``active_mw`` with ``active_source: measured``;
* ``published`` — published MLPerf Tiny energy results of this board (energy ÷ latency);
* ``datasheet`` — the device file's ``active_mw`` (a run-mode figure, the default);
* ``core typical`` — the median mW/MHz of the board's core in the published results.

Each has its own spread (log sd), which widens the energy interval beside the latency's: a
figure measured on that board strays as far as one board's systems stray from each other, a
datasheet figure as far as datasheets stray from what their boards draw inferring (and as far
as a board's systems stray, in quadrature), a core's typical figure as far as its boards stray
from the typical figure of its other boards. Each is fitted on a table's own calibration rows
(:func:`table_block`), so a held-out board never sizes its own.

Power follows clock and supply: ``P(f, V) = static + (P₀ − static) · f/f₀ · (V/V₀)^k``
(:func:`scale`; ``k`` = 2 for dynamic C·V²·f where V feeds the core). A figure stated or
measured at one clock or supply serves the same chip at another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.estimate.interval import GAUSS_Z

if TYPE_CHECKING:  # an estimate imports this module, and pandas costs it 0.35 s
    import pandas as pd

#: The spread assumed where the data has no core measured on two systems (log units: ×/÷ 1.5).
DEFAULT_LOG_SD = math.log(1.5)
#: How far a datasheet run-mode figure strays from what the board draws running inference,
#: for a table whose data have no board with both (nominal: the shipped device files'
#: datasheet figures against the published power of the same boards, NUCLEO-L4R5ZI 39.6
#: against 44 mW, EK-RA6M4 65.3 against 72.5, NUCLEO-U575ZI-Q 10.3 against 26.2: root mean
#: square log ratio 0.54). A table fitted on such boards has its own (:func:`datasheet_log_sd`).
DATASHEET_LOG_SD = 0.55
#: The least spread of a figure measured on the board itself (meter, supply, temperature).
MEASURED_FLOOR = 0.05
SOURCES = {
    "records": "your energy records of this board",
    "measured": "the device file's active_mw, measured on this board",
    "published": "published MLPerf Tiny energy results of this board (energy ÷ latency)",
    "datasheet": "the device file's active_mw, a datasheet figure",
    "core typical": "the median mW/MHz of its core in published MLPerf Tiny energy results",
}
#: Which spread (``log_sd`` key of a table's ``power``) each source has.
SPREAD = {"records": "measured", "measured": "measured", "published": "measured",
          "datasheet": "datasheet", "core typical": "typical"}


def scale(mw: float, *, from_mhz: float, to_mhz: float, from_v: float | None = None,
          to_v: float | None = None, static_mw: float = 0.0, exponent: float = 2.0) -> float:
    """``mw`` at ``from_mhz`` (and ``from_v``) moved to ``to_mhz`` (and ``to_v``): the dynamic
    part ``mw − static_mw`` scales as f·V^exponent, the static part stays. Without both
    voltages the supply is taken as unchanged."""
    ratio = to_mhz / from_mhz
    if from_v and to_v:
        ratio *= (to_v / from_v) ** exponent
    static = min(static_mw, mw)
    return static + (mw - static) * ratio


@dataclass(frozen=True)
class PowerSpec:
    """What a device file says about power while inferring (its ``power`` block)."""

    clock_mhz: float
    active_mw: float | None = None
    voltage_v: float | None = None
    active_at_mhz: float | None = None
    active_at_v: float | None = None
    static_mw: float = 0.0
    voltage_exponent: float = 2.0
    active_source: str = "datasheet"

    @classmethod
    def from_block(cls, power: dict[str, Any] | None, clock_mhz: float) -> PowerSpec:
        p = power or {}
        return cls(clock_mhz, p.get("active_mw"), p.get("voltage_v"), p.get("active_at_mhz"),
                   p.get("active_at_v"), float(p.get("static_mw") or 0.0),
                   float(p.get("voltage_exponent", 2.0)),
                   str(p.get("active_source") or "datasheet"))

    def to(self, mw: float, at_mhz: float, at_v: float | None) -> float:
        """``mw`` at ``at_mhz`` / ``at_v`` scaled to this device's clock and supply (a supply
        not known on either side is taken as unchanged)."""
        return scale(mw, from_mhz=at_mhz, to_mhz=self.clock_mhz, from_v=at_v,
                     to_v=self.voltage_v, static_mw=self.static_mw,
                     exponent=self.voltage_exponent)


@dataclass(frozen=True)
class PowerFigure:
    """The power an energy estimate uses: mW at the device's clock and supply, its spread
    (log sd), its source (:data:`SOURCES`) and what it was derived from."""

    mw: float
    log_sd: float
    source: str
    basis: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"power_mw": round(self.mw, 4), "source": self.source,
                "power_log_sd": round(self.log_sd, 4), "from": SOURCES[self.source],
                **self.basis}


def resolve(spec: PowerSpec, board: str, core: str, table: dict[str, Any]) -> PowerFigure | None:
    """The most trusted power figure for a device (:data:`SOURCES`), scaled to its clock and
    supply; None when there is none. ``table`` is a coefficient table's ``power`` block
    (``boards``, ``cores``, ``log_sd``)."""
    sd = {**default_spreads(), **table.get("log_sd", {})}
    measured = (table.get("boards") or {}).get(board)
    own = spec.active_mw is not None

    def from_board(m: dict[str, Any]) -> PowerFigure:
        at_mhz = float(m["clock_mhz"])
        mw = spec.to(float(m["mw_per_mhz"]) * at_mhz, at_mhz, m.get("voltage_v"))
        return PowerFigure(mw, max(sd[SPREAD[m["source"]]], MEASURED_FLOOR), m["source"],
                           {"at_mhz": at_mhz, "at_v": m.get("voltage_v"),
                            "mw_at_that_clock": round(float(m["mw_per_mhz"]) * at_mhz, 4),
                            "systems": m.get("systems"), "rows": m.get("rows")})

    def from_file() -> PowerFigure:
        assert spec.active_mw is not None
        at_mhz = spec.active_at_mhz or spec.clock_mhz
        at_v = spec.active_at_v or spec.voltage_v
        source = "measured" if spec.active_source == "measured" else "datasheet"
        return PowerFigure(spec.to(spec.active_mw, at_mhz, at_v),
                           max(sd[SPREAD[source]], MEASURED_FLOOR), source,
                           {"active_mw": spec.active_mw, "at_mhz": at_mhz, "at_v": at_v})

    if measured is not None and measured.get("source") == "records":
        return from_board(measured)
    if own and spec.active_source == "measured":
        return from_file()
    if measured is not None:
        return from_board(measured)
    if own:
        return from_file()
    per_mhz = (table.get("cores") or {}).get(core)
    if per_mhz:
        return PowerFigure(float(per_mhz) * spec.clock_mhz, sd["typical"], "core typical",
                           {"mw_per_mhz": float(per_mhz), "core": core})
    return None


def check_block(block: Any) -> None:
    """A coefficient table's ``power`` block, checked before use (a table is a file: bad
    input gets a clear error, not a crash mid-estimate); raises ValueError."""
    if block is None:
        return
    if not isinstance(block, dict):
        raise ValueError(f"power: expected a mapping, got {type(block).__name__}")

    def positive(where: str, value: Any, zero: bool = False) -> None:
        ok = isinstance(value, int | float) and not isinstance(value, bool) \
            and math.isfinite(value) and (value >= 0 if zero else value > 0)
        if not ok:
            raise ValueError(f"power.{where}: expected a {'non-negative' if zero else 'positive'}"
                             f" number, got {str(value)[:40]!r}")

    for board, m in (block.get("boards") or {}).items():
        if not isinstance(m, dict):
            raise ValueError(f"power.boards.{board}: expected a mapping")
        positive(f"boards.{board}.mw_per_mhz", m.get("mw_per_mhz"))
        positive(f"boards.{board}.clock_mhz", m.get("clock_mhz"))
        if m.get("voltage_v") is not None:
            positive(f"boards.{board}.voltage_v", m["voltage_v"])
        if m.get("source") not in ("published", "records"):
            raise ValueError(f"power.boards.{board}.source: expected published or records, "
                             f"got {str(m.get('source'))[:40]!r}")
    for core, v in (block.get("cores") or {}).items():
        positive(f"cores.{core}", v)
    for kind, v in (block.get("log_sd") or {}).items():
        positive(f"log_sd.{kind}", v, zero=True)


def default_spreads() -> dict[str, float]:
    """The spreads a table without its own assumes (log sd by kind)."""
    return {"measured": 2 * MEASURED_FLOOR, "datasheet": DATASHEET_LOG_SD,
            "typical": DEFAULT_LOG_SD}


def energy_bounds(mw: float | np.ndarray, log_ms: float | np.ndarray,
                  z: tuple[float, float], sd: float | np.ndarray, power_sd: float | np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Energy interval (µJ) for power ``mw`` and log latency ``log_ms``: each side's half-width
    is the latency's (its calibrated ``z`` × ``sd``) and the power figure's (the Gaussian 80 %
    quantile × ``power_sd``, a root mean square of held-out log errors) added in quadrature —
    two independent errors."""
    p = GAUSS_Z * np.asarray(power_sd, dtype=float)
    below = np.sqrt((z[0] * np.asarray(sd)) ** 2 + p ** 2)
    above = np.sqrt((z[1] * np.asarray(sd)) ** 2 + p ** 2)
    return mw * np.exp(log_ms - below), mw * np.exp(log_ms + above)


# --- from calibration data (pandas) ---------------------------------------------------------


def power_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with a power figure: ``group``, ``board``, ``core``, ``clock_mhz``, ``voltage_v``,
    ``source``, ``mw`` (a record's own ``power_mw``, else energy ÷ latency) and
    ``mw_per_mhz``. Columns other than ``core``, ``group``, ``clock_mhz`` are optional."""
    import pandas as pd

    def col(name: str, default: Any = np.nan) -> pd.Series:
        return rows[name] if name in rows else pd.Series(default, index=rows.index)

    mw = col("energy_uj").astype(float) / col("latency_ms").astype(float)
    mw = col("power_mw").astype(float).fillna(mw)
    out = pd.DataFrame({"group": rows["group"], "board": col("board", None),
                        "core": rows["core"], "clock_mhz": rows["clock_mhz"].astype(float),
                        "voltage_v": col("voltage_v").astype(float),
                        "source": col("source", "results").fillna("results"), "mw": mw})
    out = out[out["mw"].notna() & (out["mw"] > 0)]
    return out.assign(mw_per_mhz=out["mw"] / out["clock_mhz"])


def _per_mhz(rows: pd.DataFrame) -> pd.DataFrame:
    return power_rows(rows)


def _by_core(e: pd.DataFrame) -> pd.Series:
    return e.groupby("core")["mw_per_mhz"].median()


def per_mhz(rows: pd.DataFrame) -> pd.Series:
    """Core → median mW/MHz over the rows with energy."""
    return _by_core(_per_mhz(rows))


def _unit(e: pd.DataFrame) -> pd.Series:
    """Each power row's board (its system where no board is named)."""
    named = e["board"].map(lambda b: isinstance(b, str) and bool(b)).astype(bool)
    return e["board"].where(named, e["group"]).astype(str)


def log_sd(rows: pd.DataFrame) -> float:
    """How far a core's typical figure strays from a board nothing measured: for each board
    of a core measured on two boards or more, log(the board's own mW/MHz — the median over its
    systems — ÷ the typical figure of its core's *other boards*, their rows' median as
    :func:`per_mhz` takes it); the root mean square, each board weighing the same. A board's
    several systems are one board: how they differ is the ``measured`` spread, not this one.
    :data:`DEFAULT_LOG_SD` where no core has two boards."""
    e = _per_mhz(rows)
    logs = []
    for _, c in e.groupby("core"):
        unit = _unit(c)
        if unit.nunique() < 2:
            continue
        for u, own in c.groupby(unit):
            figure = float(own.groupby("group")["mw_per_mhz"].median().median())
            logs.append(math.log(figure / float(c.loc[unit != u, "mw_per_mhz"].median())))
    if not logs:
        return DEFAULT_LOG_SD
    return float(np.sqrt(np.mean(np.square(logs))))


def datasheet_log_sd(rows: pd.DataFrame, datasheets: dict[str, dict[str, Any]],
                     measured: float) -> float:
    """How far a board's datasheet figure strays from what one of its systems draws
    inferring: the gap between datasheet and board — the root mean square, each board
    weighing the same, of log(the board's power in ``rows``, :func:`boards`, ÷ its
    datasheet's ``active_mw`` scaled to that clock), over the boards ``datasheets`` (board key
    → a device file's ``power`` block) and ``rows`` both have — and a system's stray from its
    board's figure (``measured``), in quadrature: a datasheet figure is never surer than one
    measured on the board. :data:`DATASHEET_LOG_SD` where no board has both."""
    gaps = []
    for board, m in boards(rows).items():
        sheet = datasheets.get(board)
        if not sheet or sheet.get("active_mw") is None:
            continue
        at_mhz = float(m["clock_mhz"])
        spec = PowerSpec.from_block(sheet, at_mhz)
        mw = spec.to(float(sheet["active_mw"]), float(sheet.get("active_at_mhz") or at_mhz),
                      sheet.get("active_at_v") or sheet.get("voltage_v"))
        gaps.append(math.log(float(m["mw_per_mhz"]) * at_mhz / mw))
    if not gaps:
        return DATASHEET_LOG_SD
    return float(math.hypot(math.sqrt(float(np.mean(np.square(gaps)))), measured))


def board_log_sd(rows: pd.DataFrame) -> float:
    """How far a power figure measured on a board strays from that board's power under another
    runtime, release or submission: the root mean square of log(row's mW/MHz ÷ the median of
    the board's *other* systems), over boards measured on two systems or more (each system
    weighing the same). ``2 × MEASURED_FLOOR`` where no board has two."""
    e = _per_mhz(rows)
    logs, weights = [], []
    for _, b in e.groupby("board"):
        systems = b.groupby("group")["mw_per_mhz"].median()
        if len(systems) < 2:
            continue
        for group, g in b.groupby("group"):
            others = float(systems.drop(group).median())
            logs += list(np.log(g["mw_per_mhz"] / others))
            weights += [1.0 / len(g)] * len(g)
    if not logs:
        return 2 * MEASURED_FLOOR
    w = np.asarray(weights)
    return max(float(np.sqrt(np.sum(w * np.asarray(logs) ** 2) / w.sum())), MEASURED_FLOOR)


def boards(rows: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Board → its power: median mW/MHz over its systems (each weighing the same), the median
    clock and the supply (when every row states the same), systems, rows and source. A board
    with energy records is measured by them alone (``records``), else ``published``."""
    e = _per_mhz(rows)
    out: dict[str, dict[str, Any]] = {}
    if e.empty:
        return out
    e = e[e["board"].map(lambda b: isinstance(b, str) and bool(b)).astype(bool)]
    for board, b in e.groupby("board", sort=True):
        records = b[b["source"].str.startswith("records")]
        source = "records" if not records.empty else "published"
        b = records if not records.empty else b
        volts = set(b["voltage_v"].dropna())
        out[str(board)] = {
            "mw_per_mhz": round(float(b.groupby("group")["mw_per_mhz"].median().median()), 6),
            "clock_mhz": float(b["clock_mhz"].median()),
            "voltage_v": float(volts.pop()) if len(volts) == 1 and b["voltage_v"].notna().all()
            else None,
            "systems": int(b["group"].nunique()), "rows": int(len(b)), "source": source}
    return out


def table_block(rows: pd.DataFrame, datasheets: dict[str, dict[str, Any]] | None = None
                ) -> dict[str, Any]:
    """A coefficient table's ``power`` block from calibration rows and the datasheet figures
    (board key → a device file's ``power`` block) that size its ``datasheet`` spread."""
    measured = board_log_sd(rows)
    return {"boards": boards(rows),
            "cores": {c: round(float(v), 4) for c, v in per_mhz(rows).items()},
            "log_sd": {"measured": round(measured, 4),
                       "datasheet": round(datasheet_log_sd(rows, datasheets or {}, measured), 4),
                       "typical": round(log_sd(rows), 4)}}
