"""MLPerf Tiny / EEMBC serial protocol: framing and parsing shared by the runner and the board.

Host → device: ASCII tokens terminated by ``%`` (80-character device buffer). Device → host:
lines ending ``\\r\\n``; every response ends with ``m-ready``; errors start with ``e-``.
See ``shared/protocol/mlperf-tiny-serial.md``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: The device's command buffer (characters, ``%`` included).
COMMAND_BUFFER = 80
#: Bytes per ``db <hex>%`` chunk, so each command stays under the buffer.
CHUNK_BYTES = 31
#: The input buffer maximum of the reference firmware (96*96*3).
MAX_INPUT_BYTES = 96 * 96 * 3
#: Longest device line the host accepts (an ``m-results`` line of a large output fits).
MAX_LINE = 65536
READY = "m-ready"
PROFILE = "ULPMark for tinyML Firmware V0.0.1"
BOOT_PERFORMANCE = "m-timestamp-mode-performance"
BOOT_ENERGY = "m-timestamp-mode-energy"
INIT_DONE = "m-init-done"
#: Lines only a (re)booting device prints.
BOOT_MARKERS = (BOOT_PERFORMANCE, BOOT_ENERGY, INIT_DONE)

_LAP = re.compile(r"^m-lap-us-(\d+)$")
_RESULTS = re.compile(r"^m-results-\[(.*)\]$")
_LAYERS_HZ = re.compile(r"^m-layers-hz-(\d+)$")
_LAYER = re.compile(r"^m-layer-(\d+)-(.+)-(\d+)$")
_LAYERS_TOTAL = re.compile(r"^m-layers-total-(\d+)$")
_LAYERS_DROPPED = re.compile(r"^m-layers-dropped-(\d+)$")
_TENSOR = re.compile(r"^m-tensor-(\d+)-(\d+)-(\d+)-(\d+)$")
_TENSOR_DATA = "m-tensor-data-"
_BRACKET = re.compile(r"^m-(?:name-dut|model|profile)-\[(.*)\]$")


class ProtocolError(ValueError):
    """A line the protocol does not allow where it appeared."""


def command(text: str) -> bytes:
    """The bytes of one command (``%`` appended); :class:`ProtocolError` when too long."""
    data = f"{text}%".encode("ascii")
    if len(data) > COMMAND_BUFFER:
        raise ProtocolError(f"command of {len(data)} characters exceeds the device's "
                            f"{COMMAND_BUFFER}-character buffer: {text[:40]}…")
    return data


def load_commands(data: bytes, chunk: int = CHUNK_BYTES) -> list[str]:
    """``db load N`` followed by ``db <hex>`` chunks of at most ``chunk`` bytes."""
    if not data:
        raise ProtocolError("an input must have at least one byte")
    return [f"db load {len(data)}"] + [f"db {data[i:i + chunk].hex()}"
                                       for i in range(0, len(data), chunk)]


def lap_us(line: str) -> int | None:
    """The microseconds of an ``m-lap-us-N`` line, else None."""
    found = _LAP.match(line)
    return int(found.group(1)) if found else None


@dataclass(frozen=True)
class LayerTicks:
    """A firmware's answer to ``layers%``: each operator's ticks of one invoke, on a clock of
    ``hz`` ticks per second, and the whole invoke's."""

    hz: int
    ops: tuple[tuple[str, int], ...]  # (TFLite Micro's operator name, ticks), in order
    total: int
    dropped: int = 0  # operators the firmware had no room for


def layer_ticks(lines: Sequence[str]) -> LayerTicks:
    """Parse the ``m-layers-hz-``, ``m-layer-<i>-<op>-<ticks>`` and ``m-layers-total-`` lines;
    :class:`ProtocolError` when they are missing, out of order or malformed."""
    hz, total, dropped, ops = None, None, 0, []
    for line in lines:
        if not line.startswith("m-layer"):
            continue
        if found := _LAYERS_HZ.match(line):
            hz = int(found.group(1))
        elif found := _LAYER.match(line):
            if int(found.group(1)) != len(ops):
                raise ProtocolError(f"layer line {line!r} out of order (expected index "
                                    f"{len(ops)})")
            ops.append((found.group(2), int(found.group(3))))
        elif found := _LAYERS_TOTAL.match(line):
            total = int(found.group(1))
        elif found := _LAYERS_DROPPED.match(line):
            dropped = int(found.group(1))
        else:
            raise ProtocolError(f"malformed layers line {line!r}")
    if not hz or total is None:
        raise ProtocolError("no m-layers-hz and m-layers-total lines in the reply to `layers%`")
    return LayerTicks(hz, tuple(ops), total, dropped)


@dataclass(frozen=True)
class OpOutput:
    """A firmware's answer to ``tensor N%``: operator ``op``'s first output as it ended, the
    model's tensor ``tensor`` (TfLiteType number ``type``), raw bytes."""

    op: int
    tensor: int
    type: int
    data: bytes


def op_output(lines: Sequence[str]) -> OpOutput:
    """Parse ``m-tensor-<op>-<tensor>-<type>-<bytes>`` and its ``m-tensor-data-<hex>`` lines;
    :class:`ProtocolError` when the header is missing or the bytes do not add up."""
    header, chunks = None, []
    for line in lines:
        if line.startswith(_TENSOR_DATA):
            chunks.append(line[len(_TENSOR_DATA):])
        elif found := _TENSOR.match(line):
            header = tuple(int(g) for g in found.groups())
    if header is None:
        raise ProtocolError("no m-tensor-<op>-<tensor>-<type>-<bytes> line in the reply to "
                            "`tensor N%`")
    try:
        data = bytes.fromhex("".join(chunks))
    except ValueError as exc:
        raise ProtocolError(f"malformed m-tensor-data line: {exc}") from exc
    op, tensor, kind, size = header
    if len(data) != size:
        raise ProtocolError(f"operator {op}'s output has {size} bytes; {len(data)} were "
                            f"printed")
    return OpOutput(op, tensor, kind, data)


def results(line: str) -> list[float] | None:
    """The values of an ``m-results-[v0,v1,…]`` line, else None."""
    found = _RESULTS.match(line)
    if found is None:
        return None
    body = found.group(1).strip()
    try:
        return [float(v) for v in body.split(",")] if body else []
    except ValueError as exc:
        raise ProtocolError(f"unparsable results line: {line[:80]}") from exc


def bracketed(line: str) -> str | None:
    """The text inside ``m-name-dut-[…]``, ``m-model-[…]`` or ``m-profile-[…]``."""
    found = _BRACKET.match(line)
    return found.group(1) if found else None


def format_results(values: Sequence[float]) -> str:
    """``m-results-[…]`` with ``%0.3f`` (rounded to three decimals), as the IC, VWW and AD
    reference firmwares print them."""
    return "m-results-[" + ",".join(f"{v:0.3f}" for v in values) + "]"


def _c_int(x: np.float32) -> int:
    """C's ``static_cast<int>`` of a float: truncation toward zero."""
    return int(x)


def _c_rem10(n: int) -> int:
    """C's ``n % 10``: the remainder takes the sign of ``n``."""
    return -(-n % 10) if n < 0 else n % 10


def _truncated(v: np.float32) -> str:
    if not np.isfinite(v):
        return f"{float(v):0.3f}"
    ten, hundred, thousand = (np.float32(v * np.float32(k)) for k in (10, 100, 1000))
    return f"0.{_c_int(ten)}{_c_rem10(_c_int(hundred))}{_c_rem10(_c_int(thousand))}"


def format_results_truncated(values: Sequence[float]) -> str:
    """``m-results-[…]`` as the reference KWS firmware's ``th_results`` prints them (for
    platforms without float formatting): ``"0.%d"`` of ``int(v * 10)``, then ``"%d"`` of
    ``int(v * 100) % 10`` and of ``int(v * 1000) % 10``, in float32 and C integer arithmetic.
    For v in [0, 1) that is v truncated to three decimals (each digit from its own product, as
    there); outside it, the same digits the firmware prints."""
    return "m-results-[" + ",".join(_truncated(v) for v in np.asarray(values, np.float32)) + "]"


def is_garbage(line: str) -> bool:
    """Whether a line is not protocol text (wrong baud rate, noise): non-printable characters
    or no ``m-``/``e-`` prefix on a line of mostly symbols."""
    if not line:
        return False
    bad = sum(1 for ch in line if not (32 <= ord(ch) < 127))
    return bad > 0 or not (line.startswith(("m-", "e-")) or line[:1].isalnum())


class LineSplitter:
    """Reassembles device lines from arbitrary reads: splits on ``\\n``, drops ``\\r`` and
    ``\\0``; :class:`ProtocolError` when a line grows beyond ``max_line``."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[str]:
        """Complete lines in ``data`` (plus what was buffered); empty lines are skipped.

        Linear in what arrives: a pty may deliver a long results line a byte at a time, and
        re-splitting the whole buffer on each read made a 98,000-character line take 3 s."""
        *complete, rest = data.replace(b"\0", b"").replace(b"\r", b"").split(b"\n")
        if complete:
            complete[0] = bytes(self._buf) + complete[0]
            self._buf = bytearray(rest)
        else:
            self._buf += rest
        if len(self._buf) > self.max_line:
            head = bytes(self._buf[:60]).decode("latin-1")
            raise ProtocolError(f"overlong line (> {self.max_line} characters without a line "
                                f"end): {head!r}…")
        lines = [ln.decode("latin-1").strip() for ln in complete]
        too_long = [ln for ln in lines if len(ln) > self.max_line]
        if too_long:
            raise ProtocolError(f"overlong line ({len(too_long[0])} characters): "
                                f"{too_long[0][:60]!r}…")
        return [ln for ln in lines if ln]

    @property
    def pending(self) -> str:
        """The incomplete line buffered so far (for error messages)."""
        return bytes(self._buf[:80]).decode("latin-1")
