"""How figures are written, everywhere: terminal tables, ``edgebench estimate``, the leaderboard.

Two rules. A figure keeps its significant digits whatever its magnitude (``0.000812``, never
``0.00``; ``13,706``, never ``1.371e+04``). A duration is written in the unit that puts it
between 1 and 1000 (``812 ns``, ``4.30 µs``, ``82.0 ms``, ``1.50 s``), so a sub-microsecond
latency reads as what it is. Bytes are shown in KB.
"""

from __future__ import annotations

import math

#: Nanoseconds per unit of each duration unit (``us`` is read as ``µs``).
NS_PER = {"ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}
#: Duration units from the smallest, as :func:`duration` writes them.
DURATION_UNITS = ("ns", "µs", "ms", "s")


def significant(value: float, digits: int = 4, trim: bool = True) -> str:
    """``value`` with ``digits`` significant digits: thousands separated (``2,930``), no
    exponent between 1e-4 and 1e9, never rounded to zero (``0.0001234``); ``trim`` drops
    trailing zeros (``0.9`` rather than ``0.9000``)."""
    if value is None or isinstance(value, bool) or not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if not -4 <= magnitude < 9:
        return f"{value:.{digits}g}" if trim else f"{value:.{digits - 1}e}"
    decimals = max(0, digits - 1 - magnitude)
    rounded = round(value, decimals)
    if abs(rounded) >= 10 ** (magnitude + 1):  # 999.96 → 1,000: one decimal fewer
        decimals = max(0, decimals - 1)
    text = f"{rounded:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if trim and "." in text else text


def kilobytes(kb: float) -> str:
    """A size in KB with one decimal (``20.0``, ``6,712.4``), or its significant digits below
    0.1 KB (``0.04297``): a small size never reads as ``0.0``."""
    return f"{kb:,.1f}" if kb == 0 or abs(kb) >= 0.1 else significant(kb, 4)


def duration_unit(value: float, unit: str = "ms") -> str:
    """The unit :func:`duration` writes ``value`` (in ``unit``) in."""
    ns = abs(value) * NS_PER[unit]
    for name in reversed(DURATION_UNITS):
        if ns >= NS_PER[name]:
            return name
    return "ns"


def duration(value: float, unit: str = "ms", digits: int = 3) -> str:
    """A duration given in ``unit`` (s, ms, µs, ns), written in the unit that puts it between
    1 and 1000: ``duration(0.000812) == "812 ns"``, ``duration(82.04) == "82.0 ms"``."""
    if not math.isfinite(value):
        return f"{value} {unit}"
    if value == 0:
        return f"0 {unit}"
    best = duration_unit(value, unit)
    return f"{significant(value * NS_PER[unit] / NS_PER[best], digits, trim=False)} {best}"


def quantity(value: float, unit: str = "", digits: int = 4) -> str:
    """A figure with its unit: durations scaled (:func:`duration`), bytes in KB, whole counts
    in full (``40,710``), anything else with ``digits`` significant digits."""
    if unit in NS_PER:
        return duration(value, unit, digits)
    if unit == "B":
        return f"{kilobytes(value / 1024)} KB"
    if float(value).is_integer() and abs(value) >= 1000:
        text = f"{value:,.0f}"
    else:
        text = significant(value, digits)
    return f"{text} {unit}".strip()


def with_interval(value: float, low: float, high: float, unit: str = "",
                  digits: int = 3) -> str:
    """``82.0 ms (68.3–110)``: a figure and its interval in the figure's unit; a duration's
    bounds share the unit chosen for the figure."""
    if unit in NS_PER:
        best = duration_unit(value, unit)
        scale = NS_PER[unit] / NS_PER[best]
        value, low, high, unit = value * scale, low * scale, high * scale, best
    main = f"{significant(value, digits, trim=False)} {unit}".strip()
    return (f"{main} ({significant(low, digits, trim=False)}–"
            f"{significant(high, digits, trim=False)})")


def signed(value: float, digits: int = 4) -> str:
    """A change with its sign: ``+0.0037``, ``-1.25``."""
    text = significant(value, digits)
    return text if text.startswith("-") else f"+{text}"
