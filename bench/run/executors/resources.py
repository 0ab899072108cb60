"""The Ray resources edgebench schedules with, and which devices a host has attached.

Every node that runs edgebench work advertises :data:`QUIET` = :data:`QUIET_UNITS`. Every task
holds one unit of it; a host latency measurement holds all of them, so while it runs no other
edgebench task (build, evaluation, board cell, measurement) runs on that node. A board is a
resource of one unit named after its device id (``board:nucleo-l4r5zi-01``) on the node whose
host it is plugged into, so its cells run there, one at a time.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.devices.connections import primary_runner
from bench.devices.device import Device

QUIET = "edgebench_quiet"
QUIET_UNITS = 1000
BOARD_PREFIX = "board:"
_USB_ID = re.compile(r"[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}")


def board_resource(device_id: str) -> str:
    return f"{BOARD_PREFIX}{device_id}"


def exclusive(device: Device) -> str | None:
    """The thing a device's cells hold one at a time (a serial port), or None: not a board."""
    runner = primary_runner(device.connection.kind)
    return None if runner is None else runner.exclusive(device.options)


def host_timed(device: Device) -> bool:
    """Whether a device's latency is timed on the host CPU running its cells (its runner's
    ``host_timing``: LiteRT's interpreter, TFLite Micro's kernels, native C): that measure
    phase runs alone on its node."""
    runner = primary_runner(device.connection.kind)
    return runner is not None and runner.host_timing


def attached(port: str) -> bool:
    """Whether ``port`` (a device path, a pyserial URL or a USB ``VID:PID``) is on this host.
    A URL reaches a board over the network: it counts as attached where it is configured."""
    if "://" in port:
        return True
    if _USB_ID.fullmatch(port):
        try:
            from serial.tools import list_ports
        except ImportError:
            return False
        vid, pid = (int(x, 16) for x in port.split(":"))
        return any(p.vid == vid and p.pid == pid for p in list_ports.comports())
    return Path(port).exists()


def boards_here(devices: list[Device]) -> dict[str, str]:
    """Board resource → port, for the ``devices`` whose port exists on this host."""
    return {board_resource(d.id): port for d in devices
            if (port := exclusive(d)) is not None and attached(port)}


def node_resources(devices: list[Device]) -> dict[str, float]:
    """The custom resources a node of this host advertises: the quiet share and its boards."""
    return {QUIET: float(QUIET_UNITS), **{name: 1.0 for name in boards_here(devices)}}
