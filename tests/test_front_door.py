"""The front door: every shipped suite, reduced, passes ``pytest --benchmark`` and
``edgebench run`` on a fresh cache — what a runtime cannot run is a skip naming the runtime's
reason, what a suite misses on purpose is an expected miss (xfail), and nothing fails.

Reduced: the cells that carry those facts (and an ordinary one or two) of each suite, models
trained for a few epochs, a few timed repeats. The suites' task-metric constraints (accuracy,
MAE against fp32) are left out: a model trained for three epochs says nothing about them; size,
memory and latency checks, and the suites' ``expect:`` rules, are kept as shipped. The emulated
suite (slow: TFLite Micro built for a Cortex-M) runs one cell when the Arm toolchain, QEMU and
the pinned third-party sources are at hand; its firmware cache is the session's (the model
caches stay fresh).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.suite.matrix import plan
from bench.suite.spec import load_suite
from tests.conftest import ROOT

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.slow

DEVICES = ROOT / "devices"
SUITES = ROOT / "suites"
THIRD_PARTY = ROOT.parent / "shared" / "third_party"
#: Per shipped suite, the cells its reduced version keeps (globs on model, variant, device).
KEEP: dict[str, list[dict[str, str]]] = {
    # fp32 / fp16 / int8 on LiteRT and TFLite Micro: fp16 in TFLite Micro is unsupported
    "quickstart": [{"model": "har_mlp"}],
    # the variants TFLite Micro cannot run (hybrid, int4 DEQUANTIZE, channelwise int4 filters)
    # beside the one int4 it runs, on both devices
    "compression": [{"model": "digits_cnn", "variant": v} for v in (
        "fp32", "fp16", "dynamic_int8", "int4-weights", "int4-int8", "int4-int8-channel")],
    # the HVAC forest's expected flash miss, the int4 TFLite Micro runs
    "seeds": [{"model": "hvac_forest"}, {"model": "har_mlp", "variant": "fp32"},
              {"model": "har_mlp", "variant": "int4"}],
    # the EK-RA6M4's expected misses (fp32 VWW's RAM, fp32 AD's flash) and AD int8, which fits
    "mlperf-tiny": [{"model": "vww_mobilenet_v1", "variant": "fp32", "device": "ek-ra6m4"},
                    {"model": "ad_fc_autoencoder", "device": "ek-ra6m4"}],
    "emulated": [{"model": "ad_fc_autoencoder", "device": "qemu-cortex-m4f"}],
    # the three frameworks' int8 on the host
    "frameworks": [{"variant": "int8", "device": "host-litert"}],
}
#: What the reduced suites must show: a skip with the runtime's reason, an expected miss.
UNSUPPORTED = {
    "quickstart.yaml::har_mlp/fp16@tflm-reference": "float16",
    "compression.yaml::digits_cnn/fp16@tflm-reference": "float16",
    "compression.yaml::digits_cnn/dynamic_int8@tflm-reference": "hybrid (dynamic-range) model",
    "compression.yaml::digits_cnn/int4-weights@tflm-reference": "DEQUANTIZE takes no int4",
    "compression.yaml::digits_cnn/int4-int8-channel@tflm-reference":
        "int4 filters with one scale per tensor only",
}
EXPECTED_MISSES = ["mlperf-tiny.yaml::vww_mobilenet_v1/fp32@ek-ra6m4",
                   "mlperf-tiny.yaml::ad_fc_autoencoder/fp32@ek-ra6m4",
                   "seeds.yaml::hvac_forest/fp32@host-litert"]
TASK_CONSTRAINTS = {"accuracy", "mae", "rmse", "auc", "f1", "f1_macro"}


def _emulation_ready() -> bool:
    return (THIRD_PARTY.is_dir() and shutil.which("qemu-system-arm") is not None
            and shutil.which("arm-none-eabi-gcc") is not None)


def _short(step: dict[str, Any]) -> None:
    """Few epochs for the training inside a variant step (pruning, clustering, QAT, …)."""
    for params in step.values():
        if isinstance(params, dict) and "epochs" in params:
            params["epochs"] = min(params["epochs"], 2)


def reduced(name: str) -> dict[str, Any]:
    """The shipped suite ``name``, reduced (see the module docstring)."""
    path = SUITES / f"{name}.yaml"
    data = yaml.safe_load(path.read_text())
    rules = KEEP[name]
    cells = [c for c in plan(load_suite(path)) if any(
        fnmatchcase(c.model, r.get("model", "*")) and fnmatchcase(c.variant, r.get("variant", "*"))
        and fnmatchcase(c.device, r.get("device", "*")) for r in rules)]
    assert cells, f"{name}: the reduction keeps no cell"
    data["include"] = [{"model": c.model, "variant": c.variant, "device": c.device}
                       for c in cells]
    data["exclude"] = []
    for model in data["models"]:
        if "path" in model:  # the reduced suite is written elsewhere
            model["path"] = str(SUITES / model["path"])
        if "epochs" in model.get("train", {}):
            model["train"] = {**model["train"], "epochs": min(model["train"]["epochs"], 3)}
    for variant in data["variants"]:
        for step in variant.get("steps", []):
            _short(step)
    data["constraints"] = {k: v for k, v in data.get("constraints", {}).items()
                           if k not in TASK_CONSTRAINTS}
    data["settings"] = {**data.get("settings", {}), "repeats": 5, "warmup": 1, "processes": 1}
    return data


def write_project(root: Path) -> list[str]:
    """A project holding the reduced suites, configured as this one (emulated: slow)."""
    (root / "suites").mkdir()
    names = [n for n in KEEP if n != "emulated" or _emulation_ready()]
    for name in names:
        (root / "suites" / f"{name}.yaml").write_text(yaml.safe_dump(reduced(name),
                                                                     sort_keys=False))
    (root / "pyproject.toml").write_text(
        '[tool.edgebench]\nsuites = ["suites/*.yaml"]\n'
        + ('slow_suites = ["suites/emulated.yaml"]\n' if "emulated" in names else ""))
    return names


def test_every_shipped_suite_has_a_valid_reduced_version(tmp_path: Path) -> None:
    assert sorted(KEEP) == sorted(p.stem for p in SUITES.glob("*.yaml"))
    for name in KEEP:  # a valid suite (its expect: rules still match cells) of fewer cells
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(reduced(name), sort_keys=False))
        assert 0 < len(plan(load_suite(path))) < len(plan(load_suite(SUITES / f"{name}.yaml")))


def test_the_shipped_suites_pass_pytest_benchmark_and_edgebench_run(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, firmware_cache: Path) -> None:
    project = pytester.path
    names = write_project(project)
    if "emulated" in names:  # the session's TFLite Micro library, built once (test_qemu's)
        monkeypatch.setenv("EDGEBENCH_THIRD_PARTY", str(THIRD_PARTY))
        monkeypatch.setenv("EDGEBENCH_FIRMWARE_CACHE", str(firmware_cache))
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)  # under -n: the inner run is no xdist worker
    result = pytester.runpytest("--benchmark", "--edgebench-all", "-rsxX",
                                f"--edgebench-devices-dir={DEVICES}",
                                "--edgebench-results=results")
    out = result.stdout.str()
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, out
    assert outcomes.get("xpassed", 0) == 0, out
    for cell, reason in UNSUPPORTED.items():  # a skip naming the runtime's reason
        assert any(line.startswith("SKIPPED") and cell.split("::")[1] + ": unsupported: " in line
                   and reason in line for line in result.outlines), (cell, out)
    xfailed = [line for line in result.outlines if line.startswith("XFAIL")]
    for cell in EXPECTED_MISSES:
        assert any(f"suites/{cell}" in line for line in xfailed), (cell, out)
    assert outcomes["xfailed"] == len(EXPECTED_MISSES)
    for name in names:  # the progress line of every suite
        assert any(line.startswith(f"edgebench: suites/{name}.yaml: ") and " cells in " in line
                   for line in result.outlines), (name, out)

    # edgebench run (the builds are cached by now): the same verdicts, exit 0, said so
    for name in names:
        run = subprocess.run([sys.executable, "-m", "bench", "run",
                              str(project / "suites" / f"{name}.yaml"), "-q",
                              "--results", str(project / "results"),
                              "--devices-dir", str(DEVICES)],
                             capture_output=True, text=True, timeout=3000, cwd=ROOT)
        assert run.returncode == 0, f"{name}:\n{run.stdout}\n{run.stderr}"
        assert "no unexpected failure" in run.stdout, run.stdout
        latest = sorted((project / "results" / name).glob("*/records.jsonl"))[-1]
        records = [json.loads(line) for line in latest.read_text().splitlines()]
        assert not [r["cell_id"] for r in records if r["status"] == "failed"]
