from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bench.suite.matrix import plan
from bench.suite.spec import SpecError, load_suite, suite_schema

ROOT = Path(__file__).resolve().parents[1]

GOOD = {
    "name": "t",
    "models": [{"id": "har", "builder": "har_mlp",
                "dataset": {"name": "har_synthetic", "params": {"features": 27}},
                "train": {"epochs": 2}}],
    "variants": [{"id": "fp32"}, {"id": "int8", "steps": [{"quantize": {"mode": "int8"}}]}],
    "devices": ["host-litert", "tflm-reference"],
    "constraints": {"flash_kb": {"max": 512}, "accuracy": {"min_delta_vs": "fp32",
                                                           "max_loss": 0.02}},
}


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def errors(tmp_path: Path, data: object) -> str:
    path = write(tmp_path, data)
    with pytest.raises(SpecError) as e:
        load_suite(path)
    msg = str(e.value)
    assert str(path) in msg  # every message names the file
    return msg


def test_good_suite_parses(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, GOOD))
    assert suite.models[0].train.epochs == 2
    assert suite.variants[1].step_list() == [("quantize", {"mode": "int8"})]


def test_shipped_suites_validate() -> None:
    for path in (ROOT / "suites").glob("*.yaml"):
        load_suite(path)


def test_unknown_key(tmp_path: Path) -> None:
    data = json.loads(json.dumps(GOOD))
    data["models"][0]["epochs"] = 3
    assert "models[0].epochs: unknown key" in errors(tmp_path, data)


def test_wrong_type(tmp_path: Path) -> None:
    data = json.loads(json.dumps(GOOD))
    data["settings"] = {"repeats": "many"}
    msg = errors(tmp_path, data)
    assert "settings.repeats" in msg and '"many"' in msg


def test_unknown_model_names_closest(tmp_path: Path) -> None:
    data = json.loads(json.dumps(GOOD))
    data["models"][0]["builder"] = "har_mpl"
    msg = errors(tmp_path, data)
    assert "models[0].builder: unknown model builder 'har_mpl'; did you mean 'har_mlp'?" in msg


def test_unknown_dataset_parameter(tmp_path: Path) -> None:
    data = json.loads(json.dumps(GOOD))
    data["models"][0]["dataset"]["params"] = {"featurs": 27}
    assert "models[0].dataset.params.featurs: unknown key" in errors(tmp_path, data)


def test_bad_step_mode_and_unknown_step(tmp_path: Path) -> None:
    data = json.loads(json.dumps(GOOD))
    data["variants"][1]["steps"] = [{"quantize": {"mode": "int7"}}, {"quantise": {}}]
    msg = errors(tmp_path, data)
    assert "variants[1].steps[0].quantize.mode" in msg and '"int7"' in msg
    assert "did you mean 'quantize'" in msg


def test_task_mismatch(tmp_path: Path) -> None:
    data = json.loads(json.dumps(GOOD))
    data["models"][0]["dataset"] = {"name": "hvac_building"}
    assert "regression data set" in errors(tmp_path, data)


def test_constraints_checked(tmp_path: Path) -> None:
    data = json.loads(json.dumps(GOOD))
    data["constraints"] = {"acuracy": {"min": 0.9}, "accuracy": {"min_delta_vs": "fp64",
                                                                 "max_loss": 0.1}}
    msg = errors(tmp_path, data)
    assert "constraints.acuracy: unknown metric 'acuracy'; did you mean 'accuracy'?" in msg
    assert "constraints.accuracy.min_delta_vs: no variant 'fp64'" in msg


def test_model_needs_builder_or_path(tmp_path: Path) -> None:
    data = json.loads(json.dumps(GOOD))
    data["models"][0]["path"] = "x.tflite"
    assert "exactly one of `builder`" in errors(tmp_path, data)


def test_duplicate_ids(tmp_path: Path) -> None:
    data = json.loads(json.dumps(GOOD))
    data["variants"].append({"id": "fp32"})
    assert "variants[2].id: duplicate id 'fp32'" in errors(tmp_path, data)


def test_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_suite(path)


def test_model_path_is_relative_to_the_suite(tmp_path: Path) -> None:
    data = json.loads(json.dumps(GOOD))
    data["models"] = [{"id": "m", "path": "models/x.tflite"}]
    suite = load_suite(write(tmp_path, data))
    assert suite.models[0].path == tmp_path / "models" / "x.tflite"


def test_matrix_order_and_rules(tmp_path: Path) -> None:
    data = json.loads(json.dumps(GOOD))
    data["variants"] = [{"id": "int8", "steps": [{"quantize": {"mode": "int8"}}]},
                        {"id": "fp32"}]
    data["exclude"] = [{"variant": "int8", "device": "host-*"}]
    cells = [c.id for c in plan(load_suite(write(tmp_path, data)))]
    # the reference variant comes first, whatever the file's order
    assert cells == ["har/fp32@host-litert", "har/fp32@tflm-reference",
                     "har/int8@tflm-reference"]
    data["include"] = [{"device": "host-litert"}]
    data["exclude"] = []
    cells = [c.id for c in plan(load_suite(write(tmp_path, data)))]
    assert cells == ["har/fp32@host-litert", "har/int8@host-litert"]


def test_schema_is_json_schema() -> None:
    schema = suite_schema()
    assert schema["title"] == "edgebench suite"
    assert {"models", "variants", "devices"} <= set(schema["properties"])


def test_expectations_are_validated_and_matched_to_cells(tmp_path: Path) -> None:
    from bench.suite.matrix import Cell, expected_misses

    rules = [{"model": "h*", "variant": "fp32", "device": "tflm-*", "fails": "flash_kb",
              "why": "the float model is the baseline"},
             {"variant": "int8", "fails": "fits_ram", "why": "a"},
             {"variant": "int8", "fails": "fits_ram", "why": "b"}]
    suite = load_suite(write(tmp_path, {**GOOD, "expect": rules}))
    assert expected_misses(suite, Cell("har", "fp32", "tflm-reference")) == {
        "flash_kb": "the float model is the baseline"}
    assert expected_misses(suite, Cell("har", "fp32", "host-litert")) == {}
    assert expected_misses(suite, Cell("har", "int8", "host-litert")) == {"fits_ram": "a; b"}
    msg = errors(tmp_path, {**GOOD, "expect": [
        {"model": "har", "fails": "flsh_kb", "why": "x"},
        {"model": "kws*", "fails": "flash_kb", "why": "x"}]})
    assert "expect[0].fails: unknown check 'flsh_kb'; did you mean 'flash_kb'?" in msg
    assert "expect[1]: matches no cell of this suite (model 'kws*'" in msg
    msg = errors(tmp_path, {**GOOD, "expect": [{"fails": "flash_kb"}, {"fails": "flash_kb",
                                                                      "why": "", "devce": "x"}]})
    assert "expect[0].why" in msg and "expect[1].why" in msg and "expect[1].devce" in msg
