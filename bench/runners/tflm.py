"""TFLite Micro runner: the reference kernels through the ``tflite-micro`` Python interpreter.

``evaluate`` (method ``tflm``) gives the arena RAM a microcontroller build needs, task metrics
through TFLite Micro and its agreement with LiteRT (outputs, and per layer:
``details["agreement"]``, :mod:`bench.runners.agreement`); ``measure`` gives the host's time for the
reference kernels. A too-small arena makes interpreter creation raise ``RuntimeError``; the
smallest arena is still searched in subprocess probes, since native code may also abort.
Arena figures come from the Python interpreter's recording allocator, whose bookkeeping lives in
the arena; a firmware build with the plain allocator may need a few hundred bytes less.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from bench import breadcrumb
from bench.artifacts.tflite_info import ModelInfo, inspect, main_graph_ops
from bench.datasets.base import Dataset
from bench.errors import Unsupported
from bench.results.metrics import metric, task_metrics
from bench.runners.agreement import compare_layers, worst_input
from bench.runners.base import MetricMap, Runner, RunnerSkip, RunRequest
from bench.runners.io import (
    AGREEMENT_SAMPLES,
    Detailed,
    IOSpec,
    OpenedModel,
    batch_predict,
    captured_fds,
    latency_stats,
    load_artifact,
    output_max_diff,
    sample_inputs,
    timed_invokes,
)
from bench.runners.layers import NO_PROFILER
from bench.runners.litert import LiteRTModel

log = logging.getLogger(__name__)

FP16_REASON = ("TFLite Micro has no float16 DEQUANTIZE kernel: float16-weight models fail to "
               "prepare")
ARENA_START = 256 * 1024
ARENA_MAX = 64 * 1024 * 1024
ARENA_GROWTH = 4
GRANULE = 16  # arena_min resolution (TFLite Micro aligns arena buffers to 16 bytes)
PROBE_TIMEOUT_S = 120.0
_SHORTAGE = re.compile(r"(?i)failed to (allocate|resize)|missing: \d+|too small")
_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")
_REFUSED = re.compile(r"failed to prepare|Didn't find op|not supported|unsupported|"
                      r"Failed to get registration")


class TFLMError(RuntimeError):
    """TFLite Micro could not prepare or run a model; the message quotes its log."""

    def __init__(self, message: str, log_text: str = "") -> None:
        super().__init__(message)
        self.log_text = log_text

    @property
    def arena_shortage(self) -> bool:
        """Whether TFLite Micro's log says the arena was too small."""
        return bool(_SHORTAGE.search(self.log_text))

    @property
    def refused(self) -> bool:
        """Whether TFLite Micro refused the model at prepare time (no kernel for an op or for
        its input types), as opposed to running short of arena or failing otherwise."""
        return not self.arena_shortage and bool(_REFUSED.search(self.log_text))


class TFLMRefused(TFLMError, Unsupported):
    """TFLite Micro has no kernel for the model (it said so when preparing it): the cell is
    skipped with TFLite Micro's own words."""


def refusal(info: ModelInfo) -> str | None:
    """Why TFLite Micro cannot run a model, read from the model alone (None: it may): float16
    tensors, hybrid (dynamic-range) ops, int4 weights where its kernels take none."""
    if info.has_float16:
        return FP16_REASON
    for use in info.op_uses:
        first = use.inputs[0] if use.inputs else None
        weights = [t for t in use.inputs[1:] if t is not None and t.constant]
        if use.op == "DEQUANTIZE" and first is not None and first.dtype == "int4":
            return ("TFLite Micro's DEQUANTIZE takes no int4 input: int4 weights dequantized "
                    "to float (weight-only int4) fail to prepare")
        if (first is not None and not first.constant and first.dtype == "float32"
                and any(w.dtype in ("int8", "int4") for w in weights)):
            kind = next(w.dtype for w in weights if w.dtype in ("int8", "int4"))
            return (f"hybrid (dynamic-range) model: {use.op} takes float32 inputs with {kind} "
                    f"weights, and TFLite Micro has no hybrid kernels")
        if (use.op == "FULLY_CONNECTED" and len(use.inputs) > 1 and use.inputs[1] is not None
                and use.inputs[1].dtype == "int4" and use.inputs[1].scales > 1):
            return ("TFLite Micro's FULLY_CONNECTED takes int4 filters with one scale per "
                    "tensor only; this model has a scale per output channel")
    return None


def unsupported(tflite: bytes, options: dict[str, Any]) -> str | None:
    """Skip reason for models TFLite Micro cannot run (:func:`refusal`)."""
    try:
        info = inspect(tflite)
    except ValueError:
        return None  # a corrupt artifact is a failure, reported by the phase itself
    return refusal(info)


def versions() -> dict[str, str]:
    """TFLite Micro, and LiteRT (the reference of ``output_max_diff``)."""
    out: dict[str, str] = {}
    for dist in ("tflite-micro", "ai-edge-litert"):
        with contextlib.suppress(PackageNotFoundError):
            out[dist] = version(dist)
    out["evaluate"] = "2"  # 2: the per-layer agreement (evaluations cached before lack it)
    return out


def _log_excerpt(text: str, lines: int = 6) -> str:
    kept = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " | ".join(kept[-lines:]) or "no log"


class TFLMModel(OpenedModel):
    """A TFLite Micro interpreter with a fixed arena; one sample (batch 1) per invoke."""

    def __init__(self, model: bytes, info: ModelInfo, arena_size: int,
                 source: str = "model", preserve: bool = False) -> None:
        from tflite_micro import runtime

        config = runtime.InterpreterConfig
        kind = config.kPreserveAllTensors if preserve else config.kAllocationRecording

        self.arena_size, self.info, self.log = arena_size, info, ""
        ops = sum(info.op_counts.values())
        breadcrumb.leave(f"TFLite Micro: preparing the model, {ops} ops")
        with captured_fds() as captured:
            try:
                self.interpreter = runtime.Interpreter.from_bytes(
                    model, arena_size=arena_size, intrepreter_config=kind)
                error: Exception | None = None
            except (RuntimeError, ValueError) as exc:
                error = exc
        self.log = captured[0]
        if error is not None:
            failure = TFLMError(f"TFLite Micro cannot prepare {source} with a {arena_size}-byte "
                                f"arena: {error}: {_log_excerpt(self.log)}", self.log)
            if failure.refused:
                raise TFLMRefused(f"TFLite Micro refuses the model when preparing it: "
                                  f"{_log_excerpt(self.log, 3)}", self.log) from error
            raise failure from error
        self.in_specs = [IOSpec.from_details(self.interpreter.get_input_details(i))
                         for i in range(len(info.inputs))]
        self.out_specs = [IOSpec.from_details(self.interpreter.get_output_details(i))
                          for i in range(len(info.outputs))]

    def set_inputs(self, raw: list[np.ndarray]) -> None:
        for i, x in enumerate(raw):
            self.interpreter.set_input(x, i)

    def invoke(self) -> None:
        breadcrumb.leave(f"TFLite Micro: invoking the model, {sum(self.info.op_counts.values())}"
                         " ops")
        self.interpreter.invoke()

    def get_outputs(self) -> list[np.ndarray]:
        return [np.array(self.interpreter.get_output(i)) for i in range(len(self.out_specs))]

    def reset(self) -> None:
        self.interpreter.reset()

    def arena_used(self) -> int:
        """The arena total ``print_allocations()`` reports (call after an invoke)."""
        with captured_fds() as captured:
            self.interpreter.print_allocations()
        found = _TOTAL.search(captured[0])
        if found is None:
            raise TFLMError(f"no arena total in print_allocations(): {_log_excerpt(captured[0])}")
        return int(found.group(1))


def open_model(model: bytes, info: ModelInfo, source: str = "model",
               arena_size: int = ARENA_START, preserve: bool = False) -> TFLMModel:
    """An interpreter with a generous arena: ×4 from ``arena_size`` up to 64 MiB on shortage;
    ``preserve``: every tensor kept after an invoke (``kPreserveAllTensors``: ``GetTensor``
    works, ``print_allocations`` does not)."""
    while True:
        try:
            return TFLMModel(model, info, arena_size, source, preserve)
        except TFLMError as exc:
            if not exc.arena_shortage or arena_size * ARENA_GROWTH > ARENA_MAX:
                raise
            arena_size *= ARENA_GROWTH


def measure_arena(data: bytes, source: str = "model", seed: int = 0) -> int:
    """The arena TFLite Micro's recording allocator reports for ``data`` after one invoke on
    seeded generated inputs (native code: call it in a worker)."""
    info = inspect(data, source)
    model = open_model(data, info, source)
    model.run(sample_inputs(None, model.in_specs, 1, seed)[0], info.has_variables)
    return model.arena_used()


def measure_arena_file(path: str) -> int:
    """:func:`measure_arena` of the model file at ``path`` (a worker target)."""
    return measure_arena(Path(path).read_bytes(), path)


def open_stream_model(data: bytes, options: dict[str, Any], source: str = "model") -> TFLMModel:
    """An interpreter for ``data`` (the runner's ``open_model``: streaming replay)."""
    return open_model(data, inspect(data, source), source)


def _digest(outputs: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for out in outputs:
        h.update(np.ascontiguousarray(out).tobytes())
    return h.hexdigest()


def probe(artifact: Path, arena_size: int, seed: int = 0, timeout: float = PROBE_TIMEOUT_S
          ) -> str | None:
    """Allocate and invoke ``artifact`` with exactly ``arena_size`` bytes in a subprocess.

    Returns the digest of the raw outputs on a seeded generated input, or None when the
    probe failed (exception, abort, or timeout).
    """
    code = "import sys; from bench.runners.tflm import _probe_main; sys.exit(_probe_main())"
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH", "")) if p))
    try:  # -P: nothing from the working directory is importable in the probe
        proc = subprocess.run([sys.executable, "-P", "-c", code, str(artifact), str(arena_size),
                               str(seed)], capture_output=True, text=True, timeout=timeout,
                              env=env, check=False)
    except subprocess.TimeoutExpired:
        log.warning("TFLM probe with a %d-byte arena timed out", arena_size)
        return None
    found = re.search(r"^PROBE-OK ([0-9a-f]{64})$", proc.stdout, re.MULTILINE)
    log.debug("TFLM probe arena=%d rc=%d ok=%s", arena_size, proc.returncode, bool(found))
    return found.group(1) if proc.returncode == 0 and found else None


def _probe_main() -> int:
    """Subprocess entry of :func:`probe`: ``argv = [artifact, arena_size, seed]``."""
    artifact, arena_size, seed = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    data = load_artifact(artifact)
    try:
        model = TFLMModel(data, inspect(data, str(artifact)), arena_size, str(artifact))
        outputs = model.run(sample_inputs(None, model.in_specs, 1, seed)[0])
    except (TFLMError, RuntimeError) as exc:
        sys.stdout.write(f"PROBE-FAILED {exc}\n")
        return 3
    sys.stdout.write(f"PROBE-OK {_digest(outputs)}\n")  # the protocol line probe() parses
    return 0


def find_arena_min(artifact: Path, used: int, known_ok: int, expected: str, seed: int = 0
                   ) -> tuple[int, int]:
    """Smallest arena (multiple of 16 B) whose probe allocates and reproduces ``expected``.

    The printed total ``used`` leaves out temporary allocations made while preparing (they
    live between head and tail): the minimum is ``used`` when the planned activations leave room
    for them, a little more otherwise. So probe ``used`` and ``used - 16`` first; if ``used``
    fails, widen the bracket above it ×4 from +1 KiB, then bisect.
    Returns ``(arena_min, probes)``.
    """
    probes = 0

    def ok(size: int) -> bool:
        nonlocal probes
        probes += 1
        return probe(artifact, size, seed) == expected

    lo = -(-used // GRANULE) * GRANULE  # the printed total, rounded up to the granule
    if ok(lo):  # temporary allocations fit in the planned head: the total may be the minimum
        lo, hi = (0, lo - GRANULE) if ok(lo - GRANULE) else (lo - GRANULE, lo)
    else:
        step, hi = 1024, known_ok
        while lo + step < known_ok:
            if ok(lo + step):
                hi = lo + step
                break
            lo, step = lo + step, step * ARENA_GROWTH
    while hi - lo > GRANULE:
        mid = (lo + hi) // 2 // GRANULE * GRANULE
        if ok(mid):
            hi = mid
        else:
            lo = mid
    log.info("arena_min of %s: %d B (printed total %d B, %d probes)", artifact, hi, used, probes)
    return hi, probes


def _check(data: bytes, request: RunRequest) -> ModelInfo:
    info = inspect(data, str(request.artifact))
    reason = refusal(info)
    if reason:
        raise RunnerSkip(reason)
    return info


def evaluate(request: RunRequest) -> MetricMap:
    """Arena (``arena_used`` printed by the recording allocator, ``arena_min`` from probes),
    task metrics on the test split through TFLite Micro, and ``output_max_diff`` against LiteRT
    on the first test samples (or generated inputs): quantized steps for integer outputs."""

    data = load_artifact(request.artifact)
    info = _check(data, request)
    source = str(request.artifact)
    model = open_model(data, info, source)
    reset = info.has_variables

    reference = _digest(model.run(sample_inputs(None, model.in_specs, 1, request.seed)[0],
                                 reset))
    used = model.arena_used()
    arena_min, _ = find_arena_min(request.artifact, used, model.arena_size, reference,
                                  request.seed)
    out = Detailed({"arena_used": metric("arena_used", used, "tflm"),
                    "arena_min": metric("arena_min", arena_min, "tflm")})

    inputs = sample_inputs(request.dataset, model.in_specs, AGREEMENT_SAMPLES, request.seed)
    tflm_outputs = [model.run(x, reset) for x in inputs]
    lite = LiteRTModel(data, {}, source)
    lite_outputs = [lite.run(x, reset) for x in inputs]
    out["output_max_diff"] = output_max_diff(
        [o for outs in tflm_outputs for o in outs], [o for outs in lite_outputs for o in outs],
        model.out_specs[0], "tflm")
    out.details = {"agreement": layer_agreement(data, info, source, inputs,
                                                [o[0] for o in tflm_outputs],
                                                [o[0] for o in lite_outputs], model.arena_size)}

    if request.dataset is not None:

        predict = batch_predict(lambda x: model.run([x], reset)[0], model.in_specs[0],
                                model.out_specs[0])
        out.update(task_metrics(Dataset.load(request.dataset), predict, "tflm"))
    return out


def layer_agreement(data: bytes, info: ModelInfo, source: str,
                    inputs: list[tuple[np.ndarray, ...]], target: list[np.ndarray],
                    reference: list[np.ndarray], arena_size: int) -> dict[str, Any]:
    """``details["agreement"]`` (:mod:`bench.runners.agreement`) on the input whose first
    outputs differ most from LiteRT's: each operator's output kept by a second interpreter
    (``kPreserveAllTensors``) against LiteRT's. Never fails the cell (``{"reason": …}``)."""
    chosen = worst_input(target, reference)
    try:
        kept = open_model(data, info, source, arena_size, preserve=True)
        kept.run(list(inputs[chosen]))
        ops = main_graph_ops(data, source)

        def output(i: int) -> np.ndarray | None:
            tensor = ops[i].output_tensors[0]
            return np.asarray(kept.interpreter.GetTensor(tensor, 0)["tensor_data"])

        found = compare_layers(data, list(inputs[chosen]), output, target[chosen], "tflm",
                               source)
    except (TFLMError, RuntimeError, ValueError, KeyError) as exc:
        return {"method": "tflm", "reason": f"the layers could not be compared: {exc}"}
    found["input"] = {"sample": chosen, "of": len(inputs)}
    found["how"] = ("TFLite Micro's Python interpreter keeps every tensor "
                    "(InterpreterConfig.kPreserveAllTensors, GetTensor)")
    return found


def measure(request: RunRequest) -> MetricMap:
    """Latency of ``invoke()`` of TFLite Micro's reference kernels **on this host** (method
    ``tflm``): the host's time for the portable kernels, not a board's. No per-layer profile:
    the Python interpreter takes no profiler (``details["layers_reason"]``)."""
    data = load_artifact(request.artifact)
    model = open_model(data, _check(data, request), str(request.artifact))
    model.set_inputs(sample_inputs(request.dataset, model.in_specs, 1, request.seed)[0])
    breadcrumb.leave("TFLite Micro: invoking the model (timed)")
    durations = timed_invokes(model.interpreter.invoke, request.warmup, request.repeats)
    metrics = latency_stats(durations, "tflm")
    metrics.details = {"layers_reason": NO_PROFILER["tflm"]}
    return metrics


def _operators(data: bytes) -> list[tuple[str, list[int]]]:
    """``(op name, output tensor indices)`` of the first subgraph's operators, in order."""
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if isinstance(v, int)}
    model = schema.Model.GetRootAs(data, 0)
    sub = model.Subgraphs(0)
    out = []
    for j in range(sub.OperatorsLength()):
        op = sub.Operators(j)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        outputs = [int(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else []
        out.append((name, outputs))
    return out


def prefix_model(data: bytes, last_op: int) -> bytes:
    """``data`` cut after operator ``last_op`` of its first subgraph: that op's outputs become
    the model's outputs."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    sub = model.subgraphs[0]
    sub.operators = sub.operators[:last_op + 1]
    sub.outputs = [int(i) for i in sub.operators[last_op].outputs if int(i) >= 0]
    builder = flatbuffers.Builder(max(1024, len(data)))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def locate_crash(request: dict[str, Any]) -> None:
    """After a native crash: run the model's first ops alone, then one more each time (op 0;
    ops 0–1; …), leaving a breadcrumb naming the op and the step before each. The first prefix
    that crashes names the op (the worker dies with the breadcrumb in place); returning means
    no prefix crashed, or one failed cleanly (the crash is not an op's alone)."""
    request = RunRequest.from_json(request)
    data = load_artifact(request.artifact)
    ops = _operators(data)
    for k, (name, outputs) in enumerate(ops):
        if not outputs:
            return
        where = f"op {k} ({name}) of {len(ops)}"
        try:
            prefix = prefix_model(data, k)
            info = inspect(prefix)
            breadcrumb.leave(f"{where}, TFLite Micro preparing it")
            model = open_model(prefix, info)
            model.set_inputs(sample_inputs(None, model.in_specs, 1, request.seed)[0])
            breadcrumb.leave(f"{where}, TFLite Micro invoking it")
            model.interpreter.invoke()
        except Exception:  # noqa: BLE001 - a clean failure is not the crash looked for
            return


TFLM = Runner(
    name="tflm",
    evaluate="bench.runners.tflm:evaluate",
    measure="bench.runners.tflm:measure",
    host_timing=True,
    method="tflm",
    open_model="bench.runners.tflm:open_stream_model",
    locate_crash="bench.runners.tflm:locate_crash",
    unsupported=unsupported,
    versions=versions,
    description="TFLite Micro reference kernels on the host: arena RAM, accuracy, agreement",
)
