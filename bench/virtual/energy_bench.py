"""The virtual energy bench: a DUT in energy mode behind an IO manager, and an LPM01A-compatible
monitor, each host-facing side on its own pseudo-terminal.

As MLPerf Tiny wires it: the host talks to the IO manager (115200 baud), which relays each
``dut <command>%`` to the DUT's UART (9600 baud in energy mode) and answers
``m-dut-passthrough(<command>)``, ``m-ready``, then the DUT's lines prefixed ``[dut]: `` up to
``[dut]: m-ready``; ``name%`` names it, ``setbaud N%`` / ``checkbaud%`` set and report the
DUT-side baud, anything else gets ``m-ready``. The DUT's side is paced as a UART at that baud
(a command reaches the DUT, and each of its lines comes back, after its bytes' wire time: at 9600
baud a 100-character results line takes about 0.1 s, which is when a host's monitor stream
catches up with the window's last edge). The DUT prints no ``m-lap-us`` in energy mode: its
timestamps are edges on the pin wired to the monitor, which streams the board's current from its
power model (:class:`~bench.virtual.board.PowerModel`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from bench.board import protocol as p
from bench.board.iomanager import BITS_PER_BYTE, DUT_BAUD
from bench.virtual.board import Board, PtyLink, _send
from bench.virtual.monitor import VirtualLPM01A

log = logging.getLogger(__name__)

PASSTHROUGH_PREFIX = "[dut]: "
IO_MANAGER_NAME = "edgebench virtual IO manager"


class IOManager:
    """The interface board's command menu, relaying to a :class:`Board`."""

    def __init__(self, board: Board, dut_baud: int = DUT_BAUD) -> None:
        self.board, self.dut_baud = board, dut_baud

    def wire_s(self, text: str) -> float:
        """How long ``text`` (and its line end) takes on the DUT's UART."""
        return (len(text) + 2) * BITS_PER_BYTE / self.dut_baud

    def handle(self, text: str) -> list[str]:
        """The lines answering one command (without its ``%``); a ``dut`` command is answered
        once it has crossed the DUT's UART and the DUT has handled it."""
        word, _, rest = text.strip().partition(" ")
        if word == "dut":
            time.sleep(self.wire_s(rest.strip()))
            replies = self.board.handle(rest.strip())
            return [f"m-dut-passthrough({rest.strip()})", p.READY,
                    *(PASSTHROUGH_PREFIX + line for line in replies)]
        if word == "name":
            return [f"m-[{IO_MANAGER_NAME}]", p.READY]
        if word == "setbaud":
            try:
                baud = int(rest)
            except ValueError:
                baud = 0
            if not 300 <= baud <= 10_000_000:
                return [f"e-[setbaud needs a baud rate, got {rest[:20]!r}]", p.READY]
            self.dut_baud = baud
            return [f"set baud to: {self.dut_baud}", p.READY]
        if word == "checkbaud":
            return [f"baud is: {self.dut_baud}", p.READY]
        return [p.READY]


class EnergyBench:
    """The three parts, sharing the board's power timeline; :meth:`serve` runs them."""

    def __init__(self, board: Board, monitor_fault: str | None = None,
                 dut_baud: int = DUT_BAUD) -> None:
        if board.power is None or board.mode != "energy":
            raise ValueError("the energy bench needs a board in energy mode with a power model")
        self.board = board
        self.io = IOManager(board, dut_baud)
        self.link = PtyLink()
        self.monitor = VirtualLPM01A(board.power.timeline, fault=monitor_fault)

    def serve(self, announce: Callable[[str, str], None],
              stop: Callable[[], bool] = lambda: False) -> None:
        """Serve until ``stop()``: the monitor in a thread, the IO manager here."""
        done = threading.Event()
        monitor = threading.Thread(target=self.monitor.serve,
                                   args=(lambda: done.is_set() or stop(),),
                                   name="virtual monitor", daemon=True)
        monitor.start()
        announce(self.link.address, self.monitor.address)
        self.board.boot()  # the banner goes to the DUT's UART, which the IO manager ignores
        rng = random.Random(0)
        cmd = bytearray()
        try:
            while not stop():
                for byte in self.link.read(0.2):
                    if byte == ord("%"):
                        text = cmd.decode("ascii", errors="replace").strip()
                        cmd.clear()
                        for line in self.io.handle(text):
                            if line.startswith(PASSTHROUGH_PREFIX):  # at the DUT's pace
                                time.sleep(self.io.wire_s(line[len(PASSTHROUGH_PREFIX):]))
                            _send(self.link, self.board, [line], rng)
                    elif byte not in b"\r\n" and len(cmd) < 4 * p.COMMAND_BUFFER:
                        cmd.append(byte)
        finally:
            done.set()
            monitor.join(2.0)  # its read loop wakes within 0.2 s
            self.monitor.close()
