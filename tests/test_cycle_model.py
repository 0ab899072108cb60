"""The emulated cycle model: its arithmetic on counts known by construction, the priors and
their sources, the device file's flash fields, and the leave-one-model-out fit (no QEMU: the
reference models' counts are the packaged table's; tests/test_qemu.py rechecks one)."""

from __future__ import annotations

import copy
import json
import statistics
from importlib import resources
from pathlib import Path

import pytest

from bench.board.reference_models import BENCHMARKS
from bench.devices.device import load_device
from bench.errors import SpecError
from bench.firmware import cycles
from bench.firmware.machines import DEFAULT_MACHINE
from tests.conftest import ROOT

RESULTS = ROOT.parent / "shared" / "data" / "mlperf_tiny_results.csv"
#: One inference whose events are known by construction.
COUNTS = {
    "classes": {"load_store": 100, "load_store_multiple": 10, "multiply": 50, "simd": 40,
                "fp": 0, "mve": 0, "divide": 2, "branch": 30, "other": 200},
    "branch_taken": 20,
    "memory": {"flash_read": 30, "flash_write": 0, "sram_read": 80, "sram_write": 40,
               "other_read": 0, "other_write": 0},
}


def test_cycles_are_the_counts_times_the_costs_plus_the_flash_waits() -> None:
    costs = dict.fromkeys(cycles.TERMS, 1.0) | {"divide": 7.0, "branch_taken": 2.0,
                                                "flash_wait": 1.0}
    instructions = 100 + 10 + 50 + 40 + 2 + 30 + 200
    base = instructions + 6 * 2 + 20 * 2 + (30 + 80 + 40)  # divide 7 = 1 + 6; taken; accesses
    none = cycles.MemorySystem(0, "none")
    assert cycles.cycles(COUNTS, costs, none) == pytest.approx(base)
    # 3 wait states, no cache: half the fetches and every flash read wait
    waits = cycles.MemorySystem(3, "none")
    assert cycles.cycles(COUNTS, costs, waits) == pytest.approx(base + 3 * (0.5 * instructions
                                                                            + 30))
    # a cache serving fetches and data leaves a twentieth of fetches and a fifth of reads
    cached = cycles.MemorySystem(3, "instruction+data")
    assert cycles.cycles(COUNTS, costs, cached) == pytest.approx(
        base + 3 * (0.05 * instructions + 0.2 * 30))
    doubled = {t: 2 * c for t, c in costs.items()}
    assert cycles.cycles(COUNTS, doubled, waits) == pytest.approx(
        2 * cycles.cycles(COUNTS, costs, waits))


def test_counts_without_memory_accesses_are_refused() -> None:
    with pytest.raises(cycles.CycleModelError, match="mem=off"):
        cycles.cycles({**COUNTS, "memory": None}, cycles.prior_costs("cortex-m4f"),
                      cycles.MemorySystem())


def test_every_emulated_core_has_priors_each_with_its_source() -> None:
    for core in ("cortex-m4f", "cortex-m7", "cortex-m33", "cortex-m55"):
        assert core in DEFAULT_MACHINE
        entry = cycles.priors()[core]
        assert "Technical Reference Manual" in entry["document"]
        for term in cycles.TERMS:
            assert entry["costs"][term]["source"]
    m4 = cycles.priors()["cortex-m4f"]["costs"]
    assert "DDI 0439B" in m4["load_store_multiple"]["source"]
    assert cycles.prior_costs("cortex-m55")["mve"] == 2  # dual-beat: 4 beats in 2 cycles


def test_cores_without_published_results_say_uncalibrated() -> None:
    for core in ("cortex-m7", "cortex-m55"):
        model = cycles.model_for(core)
        assert model.status == "uncalibrated" and model.note == "cycle model, uncalibrated"
        assert model.costs == cycles.prior_costs(core)
    fitted = cycles.model_for("cortex-m4f")
    assert fitted.status == "fitted" and fitted.note == "cycle model, fitted"
    assert fitted.source["rows"] and fitted.source["priors"]


def test_malformed_priors_name_the_field() -> None:
    data = json.loads(resources.files("bench.firmware").joinpath(cycles.PRIORS).read_text())
    bad = copy.deepcopy(data)
    del bad["cores"]["cortex-m4f"]["costs"]["simd"]["source"]
    with pytest.raises(cycles.CycleModelError, match=r"cores\.cortex-m4f\.costs\.simd: expected"):
        cycles.check_priors(bad, "priors.json")
    bad = copy.deepcopy(data)
    bad["cores"]["cortex-m7"]["costs"]["other"]["cycles"] = -1
    with pytest.raises(cycles.CycleModelError, match=r"priors.json: cores\.cortex-m7\.costs"):
        cycles.check_priors(bad, "priors.json")
    assert cycles.check_priors(data) == cycles.priors()


@pytest.mark.parametrize(("memory", "field", "expected"), [
    ("flash_wait_states: 40", "memory.flash_wait_states", "less than or equal to 15"),
    ("flash_wait_states: -1", "memory.flash_wait_states", "greater than or equal to 0"),
    ("flash_wait_states: two", "memory.flash_wait_states", "valid integer"),
    ("cache: data", "memory.cache", "unknown cache 'data' (known: none, instruction, "
                                    "instruction+data)"),
])
def test_bad_flash_fields_are_refused_with_file_and_field(tmp_path: Path, memory: str,
                                                          field: str, expected: str) -> None:
    path = tmp_path / "board.yaml"
    path.write_text(f"id: board\ncore: cortex-m4f\nclock_mhz: 120\n"
                    f"memory: {{flash_kb: 2048, ram_kb: 640, {memory}}}\nruntime: tflm\n"
                    f"connection: {{kind: estimate}}\n")
    with pytest.raises(SpecError) as caught:
        load_device(path)
    text = str(caught.value)
    assert str(path) in text and f"{field}:" in text and expected in text


def test_flash_fields_default_and_say_where_they_come_from() -> None:
    board = load_device(ROOT / "devices" / "nucleo-l4r5zi.yaml").model_dump()
    stated = cycles.memory_system(board)
    assert (stated.wait_states, stated.cache) == (5, "instruction+data")
    assert set(stated.provenance.values()) == {"device file"}
    plain = cycles.memory_system(load_device(ROOT / "devices" / "qemu-cortex-m55.yaml")
                                 .model_dump())
    assert (plain.wait_states, plain.cache) == (cycles.DEFAULT_WAIT_STATES,
                                                cycles.DEFAULT_CACHE)
    assert set(plain.provenance.values()) == {"default"}
    # the emulated M7 is priced as the board it stands for (ST's examples: 6 wait states at
    # 280 MHz, L1 caches on)
    for name in ("nucleo-h7a3zi-q", "qemu-cortex-m7"):
        m7 = cycles.memory_system(load_device(ROOT / "devices" / f"{name}.yaml").model_dump())
        assert (m7.wait_states, m7.cache) == (6, "instruction+data")


def synthetic_rows(core: str, costs: dict[str, float], memory: cycles.MemorySystem,
                   clock_mhz: float = 100.0) -> list[dict[str, object]]:
    counts = cycles.reference_counts()[core]
    return [{"core": core, "system": "Board", "version": "v1.0", "software": "tflm",
             "benchmark": b, "clock_mhz": clock_mhz,
             "latency_ms": cycles.cycles(counts[b], costs, memory) / (clock_mhz * 1e3)}
            for b in BENCHMARKS]


def test_leave_one_model_out_recovers_costs_the_data_were_made_with() -> None:
    memory = cycles.MemorySystem(2, "instruction")
    multipliers = {"compute": 1.2, "load_store": 1.5, "control": 1.3, "other": 1.4,
                   "flash_wait": 1.1}
    rows = synthetic_rows("cortex-m4f", cycles.costs_from("cortex-m4f", multipliers), memory)
    entry = cycles.fit(rows, cycles.reference_counts(), {"Board": memory})["cortex-m4f"]
    assert [e["benchmark"] for e in entry["loo"]] == list(BENCHMARKS)
    # three models for five multipliers: the ridge leaves a little of the held-out one
    assert entry["loo_max_abs_pct"] < 5.0
    scaled = cycles.fit(rows, cycles.reference_counts(), {"Board": memory}, ridge=1e6)
    assert scaled["cortex-m4f"]["loo_median_abs_pct"] > entry["loo_median_abs_pct"]
    for row in entry["rows"]:
        assert row["fitted_ms"] == pytest.approx(row["latency_ms"], rel=0.02)

    # one model twice as slow as the costs say: held out, it alone misses by half
    rows[3] = {**rows[3], "latency_ms": 2 * rows[3]["latency_ms"]}
    entry = cycles.fit(rows, cycles.reference_counts(), {"Board": memory},
                       ridge=10.0)["cortex-m4f"]
    held = {e["benchmark"]: e["error_pct"] for e in entry["loo"]}
    assert held[BENCHMARKS[3]] < -40
    assert entry["loo_median_abs_pct"] == pytest.approx(
        statistics.median(abs(e) for e in held.values()), abs=0.051)


@pytest.mark.skipif(not RESULTS.is_file(), reason="published MLPerf Tiny results not found")
def test_the_packaged_fit_is_what_the_published_results_give() -> None:
    rows = cycles.published_tflm(str(RESULTS))
    stored = cycles.fitted()["cores"]
    memories = {row["system"]: cycles.MemorySystem(row["memory"]["flash_wait_states"],
                                                   row["memory"]["cache"])
                for entry in stored.values() for row in entry["rows"]}
    again = cycles.fit(rows, cycles.reference_counts(), memories)
    assert set(again) == set(stored) >= {"cortex-m4f", "cortex-m33"}
    for core, entry in again.items():
        assert entry["loo"] == stored[core]["loo"]
        assert entry["costs"] == stored[core]["costs"]


def test_a_core_without_reference_counts_prices_a_stand_ins_mix_or_none() -> None:
    memory = cycles.MemorySystem()
    m7 = cycles.model_for("cortex-m7")
    assert m7.reference_mix() in ("cortex-m7", "cortex-m4f")
    refs = cycles.reference_counts()[m7.reference_mix()]
    expected = (sum(cycles.cycles(c, m7.costs, memory) for c in refs.values())
                / sum(c["instructions"] for c in refs.values()))
    assert m7.reference_cpi(memory) == pytest.approx(expected)
    # the M7's priors dual-issue: fewer cycles an instruction than the M4F's on the same mix
    m4_priors = cycles.CycleModel("cortex-m4f", cycles.prior_costs("cortex-m4f"), "x", {})
    assert m7.reference_cpi(memory) < m4_priors.reference_cpi(memory)
    if "cortex-m55" not in cycles.reference_counts():
        assert cycles.model_for("cortex-m55").reference_cpi(memory) is None
