"""Optional extras: import a library that only an extra installs, or say which extra to install."""

from __future__ import annotations

import importlib
from typing import Any

#: The extra that installs each optional module.
EXTRA_OF = {"torch": "torch", "onnx": "onnx", "onnx2tf": "onnx", "onnxruntime": "onnx"}


class MissingExtra(ImportError):
    """An optional library is not installed; the message is the command that installs it."""


def install_command(extra: str) -> str:
    return f"pip install 'edgebench[{extra}]'"


def require(module: str, what: str) -> Any:
    """Import ``module``, or raise :class:`MissingExtra` saying that ``what`` needs its extra."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        extra = EXTRA_OF.get(module.split(".")[0], module)
        raise MissingExtra(f"{what} need the {extra!r} extra, which is not installed "
                           f"({e.name or module} is missing): {install_command(extra)}") from None
