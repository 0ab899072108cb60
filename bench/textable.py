"""The one text-table renderer every command prints with. Imports nothing, so any module may use
it."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Literal

Style = Literal["plain", "markdown"]


def render(header: Sequence[object] | None, rows: Sequence[Sequence[object]],
           numeric: Collection[int] = (), style: Style = "plain") -> str:
    """Rows as aligned text: columns as wide as their widest cell, those in ``numeric``
    right-aligned, the rest left-aligned.

    ``plain``: columns two spaces apart, a rule of dashes under the header, no trailing blanks.
    ``markdown``: a pipe table padded so it also reads well in a terminal.
    ``header=None`` prints the rows alone (a key/value listing)."""
    table = [[str(c) for c in row] for row in rows]
    if header is not None:
        table.insert(0, [str(c) for c in header])
    if not table:
        return ""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]

    def cells(row: list[str]) -> list[str]:
        return [c.rjust(w) if i in numeric else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))]

    if style == "markdown":
        lines = ["| " + " | ".join(cells(row)) + " |" for row in table]
        rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    else:
        lines = ["  ".join(cells(row)).rstrip() for row in table]
        rule = "  ".join("-" * w for w in widths)
    if header is not None:
        lines.insert(1, rule)
    return "\n".join(lines)
