"""The pytest plugin, run for real through ``pytester``: suite files collected as cell items."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

pytest_plugins = ["pytester"]

DEVICES = ROOT / "devices"
FAST = {"repeats": 5, "warmup": 1}


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build cache for the module: cells built by one test are cheap in the next."""
    return tmp_path_factory.mktemp("edgebench-cache")


@pytest.fixture
def bench(pytester: pytest.Pytester, module_cache: Path,
          monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("EDGEBENCH_CACHE", str(module_cache))
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)  # under -n: the inner run is no xdist worker
    return pytester


def write_suite(pytester: pytest.Pytester, name: str, data: dict) -> Path:
    path = pytester.path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, **data}))
    return path


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*args, f"--edgebench-devices-dir={DEVICES}",
                              "--edgebench-results=results")


def tiny_suite(pytester: pytest.Pytester, tiny: Path, name: str = "tiny", **extra: object) -> Path:
    return write_suite(pytester, name, {
        "models": [{"id": "a", "path": str(tiny)}, {"id": "b", "path": str(tiny)}],
        "devices": ["host-litert", "tflm-reference"], "settings": FAST, **extra})


def test_items_are_cells_and_other_yaml_is_ignored(bench: pytest.Pytester,
                                                   tiny_tflite: Path) -> None:
    tiny_suite(bench, tiny_tflite)
    (bench.path / "other.yaml").write_text("models: 1\n")  # a mapping, but no devices
    (bench.path / "list.yml").write_text("- 1\n- 2\n")
    result = run(bench, ".", "--collect-only", "-q")
    result.assert_outcomes()
    assert result.ret == 0
    assert sorted(line for line in result.outlines if "::" in line) == [
        "tiny.yaml::a/fp32@host-litert", "tiny.yaml::a/fp32@tflm-reference",
        "tiny.yaml::b/fp32@host-litert", "tiny.yaml::b/fp32@tflm-reference"]


def test_testpaths_run_does_not_collect_suites(bench: pytest.Pytester,
                                               tiny_tflite: Path) -> None:
    tiny_suite(bench, tiny_tflite)
    bench.makeini("[pytest]\ntestpaths = .\n")
    bench.makepyfile(test_plain="def test_ok():\n    pass\n")
    result = run(bench)
    result.assert_outcomes(passed=1)


def benchmark_project(pytester: pytest.Pytester, tiny: Path, edgebench: str = "") -> None:
    """A project laid out like this one: unit tests under ``tests`` (its testpaths), suites
    under ``suites`` and ``benchmarks``, and ``edgebench`` as its ``[tool.edgebench]`` table."""
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n' + edgebench)
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_unit.py").write_text("def test_unit():\n    pass\n")
    # a conftest of the unit tests, loaded and not applying to suites (as in this project)
    (pytester.path / "tests" / "conftest.py").write_text("import pytest\n")
    for folder, name in [("suites", "s1"), ("suites", "s2"), ("benchmarks", "b1")]:
        (pytester.path / folder).mkdir(exist_ok=True)
        (pytester.path / folder / f"{name}.yaml").write_text(yaml.safe_dump({
            "name": name, "models": [{"id": "m", "path": str(tiny)}],
            "devices": ["host-litert"], "settings": FAST}))


def collected(result: pytest.RunResult) -> list[str]:
    return sorted(line for line in result.outlines if "::" in line)


def test_benchmark_runs_the_default_suites_and_plain_pytest_the_unit_tests(
        bench: pytest.Pytester, tiny_tflite: Path) -> None:
    benchmark_project(bench, tiny_tflite)
    plain = run(bench)
    plain.assert_outcomes(passed=1)
    plain.stdout.fnmatch_lines(["tests/test_unit.py .*"])
    assert not (bench.path / "results").exists()  # no suite ran
    result = run(bench, "--benchmark", "--benchmark-json=out.json")
    result.assert_outcomes(passed=2)  # suites/*.yaml; not the unit test
    benchmarks = json.loads((bench.path / "out.json").read_text())["benchmarks"]
    assert sorted(b["fullname"] for b in benchmarks) == [
        "suites/s1.yaml::m/fp32@host-litert", "suites/s2.yaml::m/fp32@host-litert"]
    assert sorted(p.name for p in (bench.path / "results").iterdir()) == ["s1", "s2"]


def test_benchmark_takes_the_suites_of_the_project_config_or_the_paths_given(
        bench: pytest.Pytester, tiny_tflite: Path) -> None:
    benchmark_project(bench, tiny_tflite,
                      '[tool.edgebench]\nsuites = ["benchmarks/*.yaml", "suites/s2.yaml"]\n')
    configured = run(bench, "--benchmark", "--collect-only", "-q")
    assert collected(configured) == ["benchmarks/b1.yaml::m/fp32@host-litert",
                                     "suites/s2.yaml::m/fp32@host-litert"]
    named = run(bench, "--benchmark", "suites/s1.yaml", "--collect-only", "-q")
    assert collected(named) == ["suites/s1.yaml::m/fp32@host-litert"]
    assert collected(run(bench, "--collect-only", "-q")) == ["tests/test_unit.py::test_unit"]


def test_slow_suites_are_left_out_said_so_and_run_on_request(
        bench: pytest.Pytester, tiny_tflite: Path) -> None:
    benchmark_project(bench, tiny_tflite, '[tool.edgebench]\nslow_suites = ["suites/s2.yaml"]\n')
    result = run(bench, "--benchmark")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines([
        "edgebench: suites/s1.yaml: 1 cells",
        "edgebench: suites/s2.yaml: 1 cells left out (slow suite)",
        "*edgebench: suites/s1.yaml: 1 cells in * s (1 passed)",
        "*edgebench: left out*",
        "left out the slow suites ([[]tool.edgebench[]] slow_suites): suites/s2.yaml (1 cells)",
        "run everything with `pytest --benchmark --edgebench-all`, only the slow suites with "
        "`pytest --benchmark -m edgebench_slow`*"])
    assert sorted(p.name for p in (bench.path / "results").iterdir()) == ["s1"]
    run(bench, "--benchmark", "--edgebench-all").assert_outcomes(passed=2)
    only = run(bench, "--benchmark", "-m", "edgebench_slow")
    only.assert_outcomes(passed=1, deselected=1)
    only.stdout.fnmatch_lines(["*edgebench: suites/s2.yaml: 1 cells in *"])
    assert "left out the slow suites" not in only.stdout.str()
    run(bench, "--benchmark", "suites/s2.yaml").assert_outcomes(passed=1)  # named: it runs


@pytest.mark.parametrize(("table", "message"), [
    ('suites = ["nowhere/*.yaml"]', "*--benchmark: [[]tool.edgebench[]] suites: 'nowhere/*.yaml'"
                                    " matches no file in *"),
    ("suites = 3", "*[[]tool.edgebench[]] suites must be a list of glob patterns*not 3*"),
    ('slow_suites = ["benchmarks/b1.yaml"]',
     "*slow_suites: b1.yaml is not one of the project's suites*"),
    ('slow_suites = "suites/s1.yaml"', "*slow_suites must be a list of glob patterns*"),
])
def test_benchmark_with_a_bad_suites_entry_is_a_usage_error(
        bench: pytest.Pytester, tiny_tflite: Path, table: str, message: str) -> None:
    benchmark_project(bench, tiny_tflite, f"[tool.edgebench]\n{table}\n")
    result = run(bench, "--benchmark")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    run(bench).assert_outcomes(passed=1)  # plain pytest does not read the table


def test_k_selection_runs_only_those_cells_into_one_run(bench: pytest.Pytester,
                                                        tiny_tflite: Path) -> None:
    tiny_suite(bench, tiny_tflite)
    result = run(bench, "tiny.yaml", "-k", "tflm and b/")
    result.assert_outcomes(passed=1, deselected=3)
    runs = list((bench.path / "results" / "tiny").iterdir())
    assert len(runs) == 1
    records = [json.loads(x) for x in (runs[0] / "records.jsonl").read_text().splitlines()]
    assert [r["cell_id"] for r in records] == ["b/fp32@tflm-reference"]
    assert records[0]["status"] == "ok" and records[0]["metrics"]["arena_used"]["value"] > 0
    assert json.loads((runs[0] / "run.json").read_text())["cells"] == ["b/fp32@tflm-reference"]


def test_host_cells_are_benchmarks_with_extra_info(bench: pytest.Pytester,
                                                   tiny_tflite: Path) -> None:
    tiny_suite(bench, tiny_tflite)
    result = run(bench, "tiny.yaml", "--benchmark-json=out.json")
    result.assert_outcomes(passed=4)
    benchmarks = json.loads((bench.path / "out.json").read_text())["benchmarks"]
    assert sorted(b["name"] for b in benchmarks) == ["a/fp32@host-litert", "b/fp32@host-litert"]
    one = next(b for b in benchmarks if b["name"] == "a/fp32@host-litert")
    assert one["stats"]["rounds"] == FAST["repeats"]
    info = one["extra_info"]
    assert info["cell"] == "a/fp32@host-litert" and info["status"] == "ok"
    assert info["model_size"] == tiny_tflite.stat().st_size and info["units"]["model_size"] == "B"
    (run_dir,) = (bench.path / "results" / "tiny").iterdir()
    records = {r["cell_id"]: r for r in map(json.loads,
                                            (run_dir / "records.jsonl").read_text().splitlines())}
    assert len(records) == 4
    host = records["a/fp32@host-litert"]
    assert host["details"]["measured_by"] == "in-process"  # the record's latency is that timing
    assert host["metrics"]["latency_p50"]["value"] == pytest.approx(
        one["stats"]["median"] * 1000, rel=1e-3)  # ms vs s
    assert "measured_by" not in records["a/fp32@tflm-reference"]["details"]


def test_failing_constraint_fails_with_the_table_and_lf_reruns_it(
        bench: pytest.Pytester, tiny_tflite: Path) -> None:
    tiny_suite(bench, tiny_tflite, constraints={"ram_kb": {"max": 0.01}})  # tflm cells only
    result = run(bench, "tiny.yaml")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*a/fp32@tflm-reference: constraint failed: ram_kb*",
                                 "*| Metric *| Target *| Achieved *| Status *|",
                                 "*| ram_kb *| ≤ 0.01 KB *| * KB *| ✗ FAIL *|"])
    rerun = run(bench, "tiny.yaml", "--lf", "-x")
    rerun.assert_outcomes(failed=1, deselected=2)  # the last failures only; -x stops at one
    assert len(list((bench.path / "results" / "tiny").iterdir())) == 2  # a run per session


def test_fp16_in_tflm_is_a_skip_with_the_reason(bench: pytest.Pytester) -> None:
    write_suite(bench, "ae", {
        "models": [{"id": "ae", "builder": "volume_autoencoder"}],
        "variants": [{"id": "fp32"}, {"id": "fp16", "steps": [{"quantize": {"mode": "fp16"}}]}],
        "devices": ["tflm-reference"], "settings": FAST})
    result = run(bench, "ae.yaml", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*ae/fp16@tflm-reference: *TFLite Micro*"])


def test_invalid_suite_is_a_collection_error_naming_the_field(bench: pytest.Pytester) -> None:
    write_suite(bench, "bad", {"models": [{"id": "m", "path": "x.tflite"}],
                               "devices": ["host-litrt"]})
    result = run(bench, "bad.yaml")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*devices[[]0[]]: unknown device 'host-litrt'*"])


def test_benchmark_compare_fails_on_a_regression(bench: pytest.Pytester,
                                                 tiny_tflite: Path) -> None:
    tiny_suite(bench, tiny_tflite, devices=["host-litert"])
    first = run(bench, "tiny.yaml", "--benchmark-autosave")
    first.assert_outcomes(passed=2)
    (saved,) = (bench.path / ".benchmarks").rglob("0001_*.json")
    data = json.loads(saved.read_text())
    assert sorted(b["name"] for b in data["benchmarks"]) == ["a/fp32@host-litert",
                                                            "b/fp32@host-litert"]

    def rescale(factor: float) -> None:  # make the saved run look faster or slower
        for b in data["benchmarks"]:
            b["stats"] = {k: v * factor if k in ("min", "max", "mean", "median") else v
                          for k, v in b["stats"].items()}
        saved.write_text(json.dumps(data))

    rescale(1000.0)  # saved run 1000× slower: this run is no regression
    ok = run(bench, "tiny.yaml", "--benchmark-compare=0001",
             "--benchmark-compare-fail=median:10%")
    assert ok.ret == 0, ok.stdout.str()
    rescale(1e-6)  # saved run now far faster: this run has regressed
    regressed = run(bench, "tiny.yaml", "--benchmark-compare=0001",
                    "--benchmark-compare-fail=median:10%")
    assert regressed.ret != 0
    said = pytest.LineMatcher(regressed.outlines + regressed.errlines)  # its logger: stderr
    said.fnmatch_lines(["*Performance has regressed*", "*a/fp32@host-litert*median*"])


def test_xdist_runs_cells_in_parallel_into_one_run(bench: pytest.Pytester,
                                                   tiny_tflite: Path) -> None:
    pytest.importorskip("xdist")
    tiny_suite(bench, tiny_tflite)
    result = run(bench, "tiny.yaml", "-n", "2", "-v")
    result.assert_outcomes(passed=4)
    workers: dict[str, set[str]] = {}  # model → workers that ran its cells
    for line in result.outlines:
        if "PASSED" in line and "tiny.yaml::" in line:
            worker = line.split("]", 1)[0].lstrip("[")
            model = line.split("tiny.yaml::", 1)[1].split("/", 1)[0]
            workers.setdefault(model, set()).add(worker)
    assert set(workers) == {"a", "b"} and all(len(w) == 1 for w in workers.values())
    (run_dir,) = (bench.path / "results" / "tiny").iterdir()  # the workers share one run
    records = [json.loads(x) for x in (run_dir / "records.jsonl").read_text().splitlines()]
    assert sorted(r["cell_id"] for r in records) == [
        "a/fp32@host-litert", "a/fp32@tflm-reference",
        "b/fp32@host-litert", "b/fp32@tflm-reference"]
    assert {r["status"] for r in records} == {"ok"}
    assert len(json.loads((run_dir / "run.json").read_text())["cells"]) == 4
    result.stdout.fnmatch_lines(["*edgebench: tiny.yaml: 4 cells in * (4 passed)"])


def test_xdist_deals_the_configured_suites_by_model(bench: pytest.Pytester,
                                                   tiny_tflite: Path) -> None:
    pytest.importorskip("xdist")
    benchmark_project(bench, tiny_tflite)
    result = run(bench, "--benchmark", "-n", "2", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["scheduling tests via CellScheduling"])


def test_xdist_scheduling_keeps_a_board_and_a_model_on_one_worker(
        pytester: pytest.Pytester) -> None:
    scheduling = pytest.importorskip("bench.pytest.xdist")
    devices = pytester.mkdir("boards")
    board = {**yaml.safe_load((DEVICES / "mcu-256kb-80mhz.yaml").read_text()),
             "id": "bench-board", "connection": {"kind": "serial", "port": "/dev/ttyACM7"}}
    (devices / "bench-board.yaml").write_text(yaml.safe_dump(board))
    config = pytester.parseconfigure(f"--edgebench-devices-dir={devices}")
    config.option.tx = ["popen", "popen"]  # what -n 2 becomes
    scope = scheduling.CellScheduling(config)._split_scope
    assert scope("s.yaml::a/fp32@bench-board") == scope("s.yaml::b/int8@bench-board") \
        == "board:/dev/ttyACM7"  # one port, one worker, whatever the model
    assert scope("s.yaml::a/fp32@host-litert") == scope("s.yaml::a/int8@tflm-reference") \
        == "s.yaml::a"  # a model's cells share its build and its reference
    assert scope("s.yaml::b/fp32@host-litert") == "s.yaml::b"
    assert scope("s.yaml::a/fp32@no-such-device") == "s.yaml::a"
    assert scope("tests/test_x.py::test_y") == "tests/test_x.py::test_y"


def test_compare_with_the_previous_run_flags_a_real_slowdown(bench: pytest.Pytester,
                                                             tiny_tflite: Path) -> None:
    """The same suite again: no regression; then a far bigger model under the same cell id:
    a significant regression that fails the session with --edgebench-compare-fail."""
    import tensorflow as tf
    import tf_keras  # tiny_tflite set TF_USE_LEGACY_KERAS

    model = tf_keras.Sequential([tf_keras.layers.Input((4,))]
                                + [tf_keras.layers.Dense(512, "relu") for _ in range(3)]
                                + [tf_keras.layers.Dense(3, activation="softmax")])
    fn = tf.function(lambda x: model(x)).get_concrete_function(tf.TensorSpec([1, 4], tf.float32))
    big = bench.path / "big.tflite"
    big.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([fn], model).convert())

    def suite(model_path: Path) -> None:
        write_suite(bench, "cmp", {"models": [{"id": "m", "path": str(model_path)}],
                                   "devices": ["host-litert"],
                                   "settings": {"repeats": 60, "warmup": 3, "processes": 2}})

    suite(tiny_tflite)
    run(bench, "cmp.yaml", "--benchmark-disable").assert_outcomes(passed=1)
    first = run(bench, "cmp.yaml", "--benchmark-disable", "--edgebench-compare",
                "--edgebench-tolerance=0.5")
    assert first.ret == 0
    first.stdout.fnmatch_lines(["*edgebench compare*", "cmp/* → *"])
    assert not any("regression" in line for line in first.outlines)
    suite(big)
    slower = run(bench, "cmp.yaml", "--benchmark-disable", "--edgebench-compare",
                 "--edgebench-compare-fail")
    assert slower.ret == pytest.ExitCode.TESTS_FAILED
    slower.stdout.fnmatch_lines(["*m/fp32@host-litert*latency_p50*regression*"])
    # the model's size changes as the CLI prints it: relative, in % (it printed +9.5e+02)
    slower.stdout.fnmatch_lines(["*m/fp32@host-litert*model_size*+*%*regression*"])


def test_expected_misses_are_xfail_and_an_expected_miss_that_passes_is_xpass(
        bench: pytest.Pytester, tiny_tflite: Path) -> None:
    tiny_suite(bench, tiny_tflite, constraints={"ram_kb": {"max": 0.01},
                                                "flash_kb": {"max": 10000}},
               expect=[{"model": "a", "device": "tflm-reference", "fails": "ram_kb",
                        "why": "no arena is 10 bytes"},
                       {"model": "b", "device": "host-litert", "fails": "flash_kb",
                        "why": "thought too big"}])
    result = run(bench, "tiny.yaml", "-rxXf")
    # b@tflm misses ram_kb too, and nobody expected it: that stays a failure
    result.assert_outcomes(passed=1, xfailed=1, xpassed=1, failed=1)
    result.stdout.fnmatch_lines_random([
        "XFAIL*a/fp32@tflm-reference*a/fp32@tflm-reference: ram_kb: no arena is 10 bytes",
        "XPASS*b/fp32@host-litert*b/fp32@host-litert: flash_kb: thought too big",
        "FAILED*b/fp32@tflm-reference*"])
    result.stdout.fnmatch_lines(["b/fp32@tflm-reference: constraint failed: ram_kb"])
    show = bench.run(sys.executable, "-m", "bench", "show", "tiny", "--results", "results")
    assert "1 unexpected failures: b/fp32@tflm-reference (ram_kb); 1 expected misses; 1 " \
           "expected to miss but passed: b/fp32@host-litert (flash_kb)" in show.outlines
