"""Distillation through the harness: the teacher is another model entry, trained first."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.run.session import run_suite
from bench.suite.spec import SpecError, load_suite
from tests.test_session import DEVICES, write_suite

DATA = {"name": "har_synthetic", "params": {"samples": 1500}}


def suite(teacher: str = "teacher") -> dict:
    return {
        "name": "distill",
        "models": [
            {"id": "teacher", "builder": "har_mlp", "params": {"hidden": [128, 64]},
             "dataset": DATA, "train": {"epochs": 5}},
            {"id": "student", "builder": "har_mlp", "params": {"hidden": [6]},
             "dataset": DATA, "train": {"epochs": 30}},
        ],
        "variants": [{"id": "fp32"},
                     {"id": "kd", "steps": [{"distill": {"teacher": teacher, "epochs": 30,
                                                         "temperature": 3, "alpha": 0.2}}]}],
        "devices": ["host-litert"],
        "exclude": [{"model": "teacher", "variant": "kd"}],
        "settings": {"repeats": 3, "warmup": 1},
    }


@pytest.mark.slow
def test_student_learns_from_the_teacher(tmp_path: Path) -> None:
    run = run_suite(load_suite(write_suite(tmp_path, suite())), tmp_path / "results",
                    devices_dirs=[DEVICES])
    records = {r.cell_id: r for r in run.records()}
    assert set(records) == {"teacher/fp32@host-litert", "student/fp32@host-litert",
                            "student/kd@host-litert"}
    kd = records["student/kd@host-litert"]
    assert kd.status == "ok", kd.error
    facts = kd.details["build"]["steps"]["distill"]
    assert facts["teacher"] == "teacher"
    assert facts["teacher_params"] > 10 * facts["student_params"]
    assert kd.value("params") < records["teacher/fp32@host-litert"].value("params") / 10
    assert kd.value("accuracy") > 0.5  # learned (5 classes: chance is 0.2)
    # the student trained on labels alone is its fp32 variant, with the delta against it
    assert kd.value("accuracy_delta") == pytest.approx(
        kd.value("accuracy") - records["student/fp32@host-litert"].value("accuracy"))


def test_unknown_teacher_is_a_suite_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"steps\[0\]\.distill\.teacher: no model 'teachr' in "
                                        r"this suite; did you mean 'teacher'\?"):
        load_suite(write_suite(tmp_path, suite("teachr")))
