"""The listening sockets of a process and its descendants, read from ``/proc`` (Linux): what a
long-running edgebench command makes reachable, for the tests that it stays on loopback."""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp


@dataclass(frozen=True)
class Listening:
    pid: int
    command: str
    address: str
    port: int

    @property
    def loopback(self) -> bool:
        return ipaddress.ip_address(self.address).is_loopback

    def __str__(self) -> str:
        return f"{self.address}:{self.port} ({self.command}, pid {self.pid})"


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def _address(hex_address: str) -> tuple[str, int]:
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = ipaddress.IPv4Address(raw[::-1])
    else:  # four little-endian 32-bit words
        ip = ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
        if ip.ipv4_mapped:
            ip = ip.ipv4_mapped
    return str(ip), int(port, 16)


def _listening_inodes() -> dict[int, tuple[str, int]]:
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == LISTEN:
                out[int(fields[9])] = _address(fields[1])
    return out


def addresses_on(port: int) -> set[str]:
    """The local addresses that listen on TCP ``port``, whichever process holds them."""
    return {address for address, p in _listening_inodes().values() if p == port}


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command(cmdline: bytes) -> str:
    """The program's own name, then its arguments, shortened: the name survives however deep
    the installation's path is (``.../ray/core/src/ray/gcs/gcs_server`` reads ``gcs_server``)."""
    program, *args = cmdline.decode(errors="replace").rstrip("\0").split("\0")
    return " ".join([os.path.basename(program), *args])[:80]


def listening(pid: int) -> list[Listening]:
    """The TCP sockets ``pid`` and its descendants listen on."""
    inodes = _listening_inodes()
    found = []
    for p in descendants(pid):
        try:
            command = _command(Path(f"/proc/{p}/cmdline").read_bytes())
            fds = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{p}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in inodes:
                    found.append(Listening(p, command, *inodes[inode]))
    return sorted(set(found), key=lambda s: (s.port, s.pid))
