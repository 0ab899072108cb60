"""The ``estimate`` runner: boards the harness cannot reach, from the analytic cost model.

``evaluate`` is TFLite Micro's on the same artifact (task metrics and arena: integer kernels
compute the same results on the board); ``measure`` gives the estimated ``latency_p50`` (ms)
and, when the device file states its active power, ``energy_uj`` (µJ), both with method
``estimated`` and the bounds of their 80 % interval (the metric's ``low`` and ``high``). The
coefficient table is the packaged one unless the connection names another
(``connection: {kind: estimate, coefficients: path/to/table.json}``) or the device file does
(``estimate: {coefficients: …}``).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import Field

from bench.devices.releases import normalise, resolve
from bench.errors import Strict
from bench.estimate.analysis import analyse
from bench.estimate.model import Estimate, Target, estimate, load_coefficients
from bench.runners import tflm
from bench.runners.base import MetricMap, Runner, RunRequest
from bench.runners.io import load_artifact

log = logging.getLogger(__name__)


def table_path(device: dict[str, Any], options: dict[str, Any] | None) -> str | None:
    """The connection's ``coefficients``, else the device file's ``estimate.coefficients``."""
    if (options or {}).get("coefficients"):
        return str(options["coefficients"])
    path = (device.get("estimate") or {}).get("coefficients")
    return None if path is None else str(path)


def _estimate(request: RunRequest) -> Estimate:

    data = load_artifact(request.artifact)
    table = load_coefficients(table_path(request.device, request.options))
    return estimate(analyse(data, str(request.artifact)), Target.from_device(request.device),
                    table, model_name=str(request.artifact))


def measure(request: RunRequest) -> MetricMap:
    """Estimated latency (and energy when the device has power), method ``estimated``."""
    result = _estimate(request)
    for warning in result.details["warnings"]:
        log.warning("%s on %s: %s", request.artifact.name, request.device.get("id"), warning)
    out: MetricMap = {"latency_p50": result.latency}
    if result.energy is not None:
        out["energy_uj"] = result.energy
    return out


def provenance(device: dict[str, Any], options: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a record's ``details["estimate"]`` should say: the table used, its fit date and data
    hash, whether the device's core, runtime and board were calibrated, which release effect
    applies, the interval's level, and the power its energy used (mW, source, spread)."""

    table = load_coefficients(table_path(device, options))
    target = Target.from_device(device)
    power = target.power_figure(table)
    release = resolve(table.fitted.slots.get(target.runtime, []),
                      normalise(target.runtime_version))
    return {**table.provenance(), "method": "estimated", "core": target.core,
            "core_calibrated": table.knows("core", target.core), "runtime": target.runtime,
            "runtime_calibrated": table.knows("runtime", target.runtime),
            "runtime_version": target.runtime_version,
            "release": release.to_json(), "board": target.board,
            "board_calibrated": table.knows("board", target.board),
            "interval": {"level": 0.8, "metrics": "latency_p50, energy_uj: low and high"},
            "clock_mhz": target.clock_mhz, "active_mw": target.active_mw,
            "power": None if power is None else power.to_json()}


class EstimateOptions(Strict):
    """An ``estimate`` connection's options."""

    coefficients: str | None = Field(None, description="a coefficient table (JSON) instead of "
                                                       "the packaged one")


ESTIMATE = Runner(
    name="estimate",
    evaluate="bench.runners.tflm:evaluate",  # shared with (and cached as) TFLite Micro's
    measure="bench.runners.estimate:measure",
    method="estimated",
    options=EstimateOptions,
    targets="board",
    provenance=lambda device, options: {"estimate": provenance(device, options)},
    locate_crash=tflm.TFLM.locate_crash,  # its evaluate phase is TFLite Micro's
    unsupported=tflm.unsupported,
    versions=tflm.versions,
    description="analytic latency/energy estimate for a board (MLPerf Tiny-calibrated); "
                "accuracy and arena from TFLite Micro",
)
