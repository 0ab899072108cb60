"""A board behind MLPerf Tiny's IO manager (energy mode): the host talks to the interface board,
which relays ``dut <command>%`` to the DUT's UART and answers ``m-dut-passthrough(<command>)``,
``m-ready``, then each DUT line prefixed ``[dut]: `` (the DUT's own ``m-ready`` included).

:class:`IOManagerLink` is a :class:`~bench.board.link.BoardLink` whose commands go through the
relay: the same deadlines and checks apply to the DUT's lines once the prefix is taken off.
Inputs load in chunks of 26 bytes, as MLPerf Tiny's runner sends them with a monitor in the path.
The DUT's side of the relay is slow (9600 baud in MLPerf Tiny's energy mode: a 640-value results
line takes seconds, and the relay forwards whole lines), so each deadline allows the wire time of
the command and of the answer it can bring (a results line of the model's outputs for ``infer``).
"""

from __future__ import annotations

from bench.board import protocol as p
from bench.board.link import BITS_PER_BYTE, BoardLink, SerialOptions

PREFIX = "[dut]: "
PASSTHROUGH = "m-dut-passthrough("
#: Bytes per ``db`` chunk behind an IO manager (the published runner's figure).
CHUNK_BYTES = 26
#: The DUT's UART speed in MLPerf Tiny's energy mode.
DUT_BAUD = 9600
#: Characters a results line may spend on one value (``-1234.567,`` and some to spare).
RESULTS_CHARS_PER_VALUE = 12
#: Characters of an answer's protocol lines besides a results line (four of 120), for their
#: wire time.
ANSWER_CHARS = 480


class PassthroughSplitter(p.LineSplitter):
    """Lines of the DUT as the IO manager relays them: the relay's acknowledgement and its
    ``m-ready`` are dropped, the ``[dut]: `` prefix taken off; the IO manager's own lines pass."""

    def __init__(self) -> None:
        super().__init__()
        self.relay_ready_due = False

    def feed(self, data: bytes) -> list[str]:
        out = []
        for line in super().feed(data):
            if line.startswith(PASSTHROUGH):
                self.relay_ready_due = True
                continue
            if self.relay_ready_due and line == p.READY:
                self.relay_ready_due = False
                continue
            if line.startswith(PREFIX.strip()):
                line = line[len(PREFIX.strip()):].strip()
                if not line:
                    continue
            out.append(line)
        return out


class IOManagerLink(BoardLink):
    """The DUT through an IO manager on ``opts.port`` (at the IO manager's baud), the DUT's
    UART at ``dut_baud``."""

    def __init__(self, opts: SerialOptions, dut_baud: int = DUT_BAUD) -> None:
        super().__init__(opts)
        self.splitter = PassthroughSplitter()
        self.dut_baud = dut_baud
        self.results_chars = 0

    def wire_s(self, chars: int) -> float:
        """Seconds ``chars`` characters take on the DUT's UART."""
        return chars * BITS_PER_BYTE / self.dut_baud

    def expect_outputs(self, elements: int) -> None:
        super().expect_outputs(elements)
        self.results_chars = max(self.results_chars, RESULTS_CHARS_PER_VALUE * elements)

    def command(self, text: str, timeout: float | None = None,
                booting: bool = False) -> list[str]:
        try:
            p.command(text)  # the DUT's own 80-character limit
        except p.ProtocolError as exc:
            raise self.fail(str(exc)) from exc
        limit = self.opts.timeout_s if timeout is None else timeout
        wire = self.wire_s(len(text) + 1 + ANSWER_CHARS)
        return super().command(f"dut {text}", limit + wire, booting)

    def load(self, data: bytes) -> None:
        done = False
        for cmd in p.load_commands(data, CHUNK_BYTES):
            done = "m-load-done" in self.command(cmd) or done
        if not done:
            raise self.fail(f"no m-load-done after loading {len(data)} bytes")

    def infer_lines(self, n: int, warmup: int, timeout: float
                    ) -> tuple[int, list[float], list[str]]:
        """``infer N W`` through the relay: 0 µs for the window (energy-mode firmware prints no
        ``m-lap-us``: the monitor's edges time it), the results and every line."""
        lines = self.command(f"infer {n} {warmup}", timeout + self.wire_s(self.results_chars))
        found = [r for r in map(p.results, lines) if r is not None]
        if "m-infer-done" not in lines or not found:
            raise self.fail(f"`infer {n} {warmup}%` gave no m-infer-done and m-results lines")
        return 0, found[-1], lines
