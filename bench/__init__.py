"""edgebench: benchmark edge and TinyML models across compression variants and devices."""

from __future__ import annotations

__version__ = "0.1.0"
