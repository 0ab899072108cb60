from __future__ import annotations

import subprocess
import sys

import pytest

from bench.registry import Registry, UnknownNameError, load_ref, models


def test_lazy_entries_resolve_on_first_use() -> None:
    reg: Registry[object] = Registry("thing", "edgebench.test-none")
    reg.register("path_join", "os.path:join")
    import os.path

    assert reg.get("path_join") is os.path.join
    assert reg.names() == ["path_join"]


def test_decorator_registration() -> None:
    reg: Registry[object] = Registry("thing", "edgebench.test-none")

    @reg.register("double")
    def double(x: int) -> int:
        return 2 * x

    assert reg.get("double")(4) == 8


def test_unknown_name_lists_known_and_closest() -> None:
    with pytest.raises(UnknownNameError) as e:
        models.get("har_mpl")
    msg = str(e.value)
    assert "unknown model builder 'har_mpl'" in msg
    assert "did you mean 'har_mlp'" in msg
    assert "hvac_lstm" in msg


def test_bad_lazy_reference() -> None:
    with pytest.raises(ValueError, match="module:attr"):
        load_ref("os.path.join")


def test_importing_bench_does_not_import_tensorflow() -> None:
    code = ("import sys, bench, bench.suite.spec, bench.run.session, bench.cli, "
            "bench.registry as r;"
            "[r.models.get(n) for n in r.models.names()];"
            "[r.datasets.get(n) for n in r.datasets.names()];"
            "[r.variant_steps.get(n) for n in r.variant_steps.names()];"
            "[r.runners.get(n) for n in r.runners.names()];"
            "print(sorted(m for m in ('tensorflow', 'tf_keras', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
