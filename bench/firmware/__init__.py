"""Firmware for emulated Cortex-M boards: TFLite Micro + CMSIS-NN, cross-compiled per core.

* :mod:`~bench.firmware.sources`: the pinned third-party sources (a local bundle or upstream).
* :mod:`~bench.firmware.machines`: the QEMU machines, their cores and memory maps.
* :mod:`~bench.firmware.library`: the TFLite Micro library per core, cached by content key.
* :mod:`~bench.firmware.resolver`: an op resolver with exactly a model's ops.
* :mod:`~bench.firmware.project`: a firmware project folder (model, API, board code, linker
  script, Makefile) a user can take to a real board.
* :mod:`~bench.firmware.image`: build it; sizes from the ELF; failures with the tool's reason.
* :mod:`~bench.firmware.emulator`: boot it under ``qemu-system-arm`` with its UART on a pty.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.artifacts.cache import default_root
from bench.errors import Unsupported


class FirmwareError(RuntimeError):
    """A firmware could not be built or booted; the message gives the tool's reason."""


class FirmwareUnsupported(FirmwareError, Unsupported):
    """The model cannot become a firmware for this device (it does not fit its flash or RAM,
    TFLite Micro has no kernel for an op): the cell is skipped with this reason."""


def cache_root() -> Path:
    """Where sources, libraries and firmware builds are kept: ``$EDGEBENCH_FIRMWARE_CACHE``,
    else ``firmware/`` under the edgebench cache."""

    found = os.environ.get("EDGEBENCH_FIRMWARE_CACHE")
    return Path(found) if found else default_root() / "firmware"
