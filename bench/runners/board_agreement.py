"""Agreement with LiteRT of a firmware driven over the MLPerf Tiny protocol (edgebench's own:
the ``qemu`` runner's emulated boards, and attached boards flashed with it for the ``serial``
runner): ``output_max_diff`` of its raw outputs (``m-results-raw-[…]``, printed after each
``infer``) and, on the input whose outputs differ most, ``details["agreement"]``
(:mod:`bench.runners.agreement`) from each operator's output (``tensor N%``).

The traffic is bounded by the link's speed: :func:`agreement_samples` inputs, as many as move in
:data:`AGREEMENT_S` (at least 5, at most ``AGREEMENT_SAMPLES``), and :func:`layer_budget` bytes
of operator outputs.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from bench.board.link import BoardError, BoardLink
from bench.results.metrics import Metric
from bench.runners.agreement import AGREEMENT_BYTES, compare_layers, worst_input
from bench.runners.io import AGREEMENT_SAMPLES, IOSpec, output_max_diff

#: Seconds of link traffic the output comparison may take, and the layer comparison after it.
AGREEMENT_S = 20.0
#: Characters a results line prints per output value (two lines: results and raw results).
OUT_CHARS = 12
#: Characters ``tensor N%`` prints per byte of an operator's output (hex, 64 bytes a line).
TENSOR_CHARS = 2.25


def agreement_samples(input_bytes: int, output_elements: int, in_char_s: float,
                      out_char_s: float) -> int:
    """Inputs the agreement check runs: up to ``AGREEMENT_SAMPLES``, as many as the link moves
    in ``AGREEMENT_S`` (at least 5): an input loads as hex (2 characters a byte, ``in_char_s``
    each), its outputs print in two results lines (``out_char_s`` a character). A 16,384-output
    model on QEMU ran 100 (94 s) before outputs counted."""
    each = 2 * input_bytes * in_char_s + OUT_CHARS * output_elements * out_char_s
    return min(AGREEMENT_SAMPLES, max(5, int(AGREEMENT_S / max(each, 1e-9))))


def layer_budget(out_char_s: float) -> int:
    """Bytes of operator outputs the layer comparison reads: what prints in ``AGREEMENT_S``,
    at most :data:`~bench.runners.agreement.AGREEMENT_BYTES`."""
    return min(AGREEMENT_BYTES, int(AGREEMENT_S / (TENSOR_CHARS * max(out_char_s, 1e-12))))


def raw_outputs(lines: list[str], spec: IOSpec) -> np.ndarray | None:
    """The ``m-results-raw-[…]`` values (integers, or float bits in hex); None without one."""
    body = next((ln[len("m-results-raw-["):-1] for ln in lines
                 if ln.startswith("m-results-raw-[") and ln.endswith("]")), None)
    if body is None:
        return None
    words = [w for w in body.split(",") if w]
    if spec.is_integer:
        return np.asarray([int(w) for w in words], np.int64)
    return np.asarray([int(w, 16) for w in words], np.uint32).view(np.float32)


def line_kinds(lines: list[str]) -> str:
    """What a response held, without its values (``m-lap-us, m-results``): the same for one
    firmware on every machine."""
    kinds = dict.fromkeys(re.sub(r"-(\[.*|[-\d.]+)$", "", ln)[:40] for ln in lines)
    return ", ".join(kinds) or "nothing"


def firmware_outputs(link: BoardLink, inputs: list[tuple[np.ndarray, ...]], spec: IOSpec,
                     out_char_s: float) -> list[np.ndarray]:
    """Each input loaded and run with ``infer 1 0``: the firmware's raw outputs; a
    :class:`BoardError` when it prints none (a firmware other than edgebench's)."""
    found = []
    for (x,) in inputs:
        link.load(x.tobytes())
        timeout = link.opts.timeout_s + OUT_CHARS * int(np.prod(spec.shape)) * out_char_s
        lines = link.infer_lines(1, 0, timeout)[2]
        raw = raw_outputs(lines, spec)
        if raw is None:
            raise link.fail(f"the firmware printed no raw outputs (m-results-raw-[…]): "
                            f"`infer 1 0%` answered {line_kinds(lines)}")
        found.append(raw)
    return found


def output_agreement(link: BoardLink, lite: Any, tflite: bytes,
                     inputs: list[tuple[np.ndarray, ...]], method: str, source: str, how: str,
                     out_char_s: float) -> tuple[Metric, dict[str, Any]]:
    """``output_max_diff`` of the firmware's raw outputs against LiteRT's (``lite``, a
    :class:`~bench.runners.litert.LiteRTModel` of ``tflite``) on ``inputs``, and
    ``details["agreement"]`` (:func:`layer_agreement`). A firmware printing no raw outputs
    raises :class:`BoardError`."""
    spec = lite.out_specs[0]
    target = firmware_outputs(link, inputs, spec, out_char_s)
    reference = [np.asarray(lite.run([x])[0]).reshape(-1) for (x,) in inputs]
    return (output_max_diff(target, reference, spec, method),
            layer_agreement(link, tflite, inputs, target, reference, source, method, how,
                            layer_budget(out_char_s), out_char_s))


def layer_agreement(link: BoardLink, tflite: bytes, inputs: list[tuple[np.ndarray, ...]],
                    target: list[np.ndarray], reference: list[np.ndarray], source: str,
                    method: str, how: str, budget: int = AGREEMENT_BYTES,
                    out_char_s: float = 0.0) -> dict[str, Any]:
    """``details["agreement"]`` on the input whose outputs differ most from LiteRT's (the first
    of them): each operator's output printed by the firmware (``tensor N%``) against LiteRT's.
    Never fails the cell: a firmware that cannot print them gives ``{"method", "reason"}``."""
    chosen = worst_input(target, reference)
    (x,) = inputs[chosen]
    timeout = link.opts.timeout_s + TENSOR_CHARS * budget * out_char_s
    try:
        link.load(x.tobytes())
        found = compare_layers(tflite, [x], lambda i: link.op_output(i, timeout).data,
                               target[chosen], method, source, budget)
    except BoardError as exc:
        return {"method": method, "reason": f"the firmware printed no operator outputs (built "
                                            f"without profiling?): {exc.what}"}
    except (RuntimeError, ValueError) as exc:
        return {"method": method, "reason": f"the layers could not be compared: {exc}"}
    found["input"] = {"sample": chosen, "of": len(inputs)}
    found["how"] = how
    return found
