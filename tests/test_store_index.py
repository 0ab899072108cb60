"""The run index (:mod:`bench.results.index`): the same answers as reading every line, kept
current through appends, rebuilt when stale, damaged or crafted, safe under concurrent use."""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from bench.results import index, samples, table
from bench.results.compare import compare_runs
from bench.results.metrics import Metric
from bench.results.record import ConstraintResult, Record
from bench.results.store import Run, Store
from leaderboard import data


def record(run: Run, i: int, shift: float = 1.0) -> Record:
    """The ``i``-th of a varied sweep: estimates with intervals, timing summaries, failures,
    unstable timing, checks that pass, fail or do not apply, and integer figures."""
    model, variant, device = f"m{i % 5}", ("fp32", "int8", "int16")[i % 3], f"d{i % 4}"
    metrics = {"model_size": Metric(1000.0 + 37 * i, "B", "measured"),
               "latency_p50": Metric(0.5 * (1 + i % 9) * shift, "ms",
                                     "estimated" if i % 2 else "measured",
                                     *((0.4 * (1 + i % 9), 0.9 * (1 + i % 9)) if i % 2 else ())),
               "accuracy": Metric(0.8 + (i % 7) / 100, "", "measured")}
    if i % 2 == 0:
        metrics |= {"latency_mean": Metric(0.52 * (1 + i % 9) * shift, "ms", "measured"),
                    "latency_std": Metric(0.01, "ms", "measured"),
                    "latency_n": Metric(100, "", "measured")}  # an integer figure
    if i % 5 == 0:
        metrics["energy_uj"] = Metric(12.5 * i, "µJ", "estimated")
    constraints = {"flash_kb": ConstraintResult("model_size", "≤ 2", metrics["model_size"].value,
                                                metrics["model_size"].value <= 2048)}
    if i % 3:
        constraints["ram_kb"] = ConstraintResult("arena_used", "≤ 64", None, None)
    details = {"warnings": [f"unstable timing; spread {i} %", "second"]} if i % 11 == 3 else {}
    status, error = "ok", None
    if i % 13 == 7:
        status, metrics, constraints = "failed", {}, {}
        error = {"kind": "runtime", "message": f"op {i} failed,\n with \"quotes\""}
    return Record(run.suite, run.run_id, f"{model}/{variant}@{device}#{i % 40}", model, variant,
                  device, "litert", status, artifact_sha256=None if i % 4 else f"{i:064x}",
                  error=error, metrics=metrics, constraints=constraints, details=details,
                  provenance={"host": {"node": "h"}})


def write(run: Run, n: int, shift: float = 1.0, start: int = 0) -> None:
    for i in range(start, start + n):
        run.append(record(run, i, shift))


@pytest.fixture
def store(tmp_path: Path) -> tuple[Store, Run, Run]:
    """Two runs of one sweep; the second has a blank line, a line that is not JSON, a record
    whose figure is an integer, and a torn last line."""
    store = Store(tmp_path / "results")
    a = store.create("sweep", {"reference_variant": "fp32"}, run_id="20261201T000000Z-aaaa")
    write(a, 60)
    a.release()
    b = store.create("sweep", {"reference_variant": "fp32"}, run_id="20261201T000001Z-bbbb")
    write(b, 45, shift=1.4)
    odd = record(b, 99).to_json()
    odd["metrics"]["model_size"]["value"] = 4096  # integers where the others have floats
    odd["metrics"]["arena_used"] = {"value": 512, "unit": "B", "method": "tflm"}
    with b.records_path.open("a") as f:
        f.write("\n{not json\n" + json.dumps(odd) + "\n")
    write(b, 5, shift=1.4, start=45)
    with b.records_path.open("a") as f:
        f.write('{"suite": "sweep", "run_id"')  # a writer killed mid-line
    b.release()
    return store, a, b


def plain(monkeypatch: pytest.MonkeyPatch, on: bool) -> None:
    if on:
        monkeypatch.setenv("EDGEBENCH_NO_INDEX", "1")
    else:
        monkeypatch.delenv("EDGEBENCH_NO_INDEX", raising=False)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) in (0, None)
    return capsys.readouterr().out


def test_indexed_answers_are_the_plain_ones(store, monkeypatch, capsys, caplog) -> None:  # noqa: ANN001
    s, a, b = store
    root = str(s.root)
    answers = {}
    for mode in ("plain", "indexed", "indexed again"):
        plain(monkeypatch, mode == "plain")
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            answers[mode] = {
                "show": cli(capsys, "show", b.run_id, "--results", root),
                "checks": cli(capsys, "show", a.run_id, "--checks", "m1/int8@d1#1",
                              "--results", root),
                "csv": cli(capsys, "results", "--all", "--results", root),
                "csv one run": cli(capsys, "results", b.run_id, "--results", root),
                "json": cli(capsys, "results", "--all", "--format", "json", "--results", root),
                "compare": cli(capsys, "compare", a.run_id, b.run_id, "--all",
                               "--results", root),
                "compare json": cli(capsys, "compare", a.run_id, b.run_id, "--format", "json",
                                    "--results", root),
                "changes": compare_runs(a, b),
                "leaderboard": data.load_frame(root),
                "record": data.get_record(root, f"sweep/{b.run_id}", "m0/fp32@d0#0"),
            }
            skipped = sorted({m for m in caplog.messages if "skipping" in m})
        answers[mode]["skipped"] = skipped
        assert (b.path / index.INDEX).exists() == (mode != "plain")
    assert len(answers["plain"]["skipped"]) == 2  # "not JSON" and the torn final line
    assert any("torn final line" in m for m in answers["plain"]["skipped"])
    for mode in ("indexed", "indexed again"):
        got, want = answers[mode], answers["plain"]
        for key in ("show", "checks", "csv", "csv one run", "json", "compare", "compare json",
                    "changes", "record", "skipped"):
            assert got[key] == want[key], (mode, key)
        pd.testing.assert_frame_equal(got["leaderboard"], want["leaderboard"])
    shown = answers["indexed"]["show"]
    assert "⚠" in shown and "runtime: op 7 failed, with" in shown and "cells" in shown
    csv = pd.read_csv(io.StringIO(answers["indexed"]["csv"]))
    assert len(csv) == 60 + 51 and csv["arena_used"].dropna().tolist() == [512]
    assert "model_size,model_size__unit" in answers["indexed"]["csv"].splitlines()[0]
    assert ",4096.0," in answers["indexed"]["csv"]  # a column with floats prints 4096 as pandas
    frame = table.frame(b.records())
    pd.testing.assert_frame_equal(index.frame([b]), frame)


def test_compare_reads_the_same_figures_and_samples_from_the_index(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Comparing reads plain rows from the index (no record objects): the same changes as line
    by line, with raw samples (bootstrap) where both runs kept them and summaries (Welch)
    elsewhere, a samples file gone missing, a summary missing, a cell recorded twice (its last
    record counts) and a zero size; leaving the unchanged figures out leaves the rest as is."""
    store = Store(tmp_path / "results")
    rng = np.random.default_rng(5)
    runs = []
    for k, shift in enumerate((1.0, 1.2)):
        run = store.create("sweep", {}, run_id=f"20261201T00000{k}Z-s{k}")
        for i in range(40):
            rec = record(run, i, shift)
            if rec.status == "ok" and i % 4 == 0:  # raw samples: 2 processes of 30 invokes
                kept = samples.Samples([rng.normal(1e6 * shift, 2e4, 30).astype(np.int64)
                                        for _ in range(2)], [30, 30])
                rec.details["samples"] = samples.save(run.path, rec.cell_id, kept)
            if k == 1 and i == 8:
                rec.details["samples"] = "samples/gone.json"
            if k == 1 and i == 2:
                del rec.metrics["latency_std"]
            if i == 6:
                rec.metrics["model_size"] = Metric(0, "B", "measured")
            run.append(rec)
        run.append(record(run, 4, 2 * shift if k else shift))  # a cell again (slower in b)
        run.release()
        runs.append(run)
    a, b = runs
    answers = {}
    for mode in ("plain", "indexed"):
        plain(monkeypatch, mode == "plain")
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            answers[mode] = (compare_runs(a, b), compare_runs(a, b, unchanged=False),
                             compare_runs(b, a, tolerance=0.01, alpha=0.2, unchanged=False))
            assert any("gone.json" in m for m in caplog.messages)
    assert answers["indexed"] == answers["plain"]
    every, changed, back = answers["indexed"]
    assert changed == [c for c in every if c.verdict != "same"] and len(changed) < len(every)
    assert all(c.verdict != "same" for c in back) and back
    tests = {c.cell_id: c.test for c in every if c.metric == "latency_p50"}
    assert {"bootstrap", "welch"} <= set(tests.values())
    assert record(a, 2).cell_id not in tests  # its summary lacks the std: no test
    twice = {c.metric: c for c in every if c.cell_id == record(a, 4).cell_id}
    assert twice["latency_p50"].test == "welch"  # its last record has no samples
    assert twice["latency_p50"].after == pytest.approx(2.4 * twice["latency_p50"].before)


def test_an_append_indexes_only_the_new_lines(store, monkeypatch) -> None:  # noqa: ANN001
    _, a, _ = store
    first = index.open_run(a)
    assert first is not None and len(first.lines()) == 60
    parsed = []
    real = index.parse_line
    monkeypatch.setattr(index, "parse_line", lambda raw: parsed.append(raw) or real(raw))
    assert len(index.open_run(a).lines()) == 60 and parsed == []  # current: nothing read
    write(a, 3, start=60)
    again = index.open_run(a)
    assert len(parsed) == 3  # only the tail
    assert [x.cell_id for x in again.lines()] == [r.cell_id for r in a.records()]


@pytest.mark.parametrize("change", ["rewritten", "truncated", "replaced", "touched"])
def test_a_changed_records_file_rebuilds_the_index(store, change: str) -> None:  # noqa: ANN001
    _, a, _ = store
    assert index.open_run(a) is not None
    lines = a.records_path.read_bytes().splitlines(keepends=True)
    if change == "rewritten":  # same size, an earlier line edited in place
        text = b"".join(lines).replace(b'"m1/int8@d1#1"', b'"m1/int8@d1#X"', 1)
        with a.records_path.open("r+b") as f:
            f.write(text)
    elif change == "truncated":
        a.records_path.write_bytes(b"".join(lines[:20]))
    elif change == "replaced":
        tmp = a.path / "new.jsonl"
        tmp.write_bytes(b"".join(lines[:30] + lines[40:]))
        tmp.replace(a.records_path)
    else:  # same bytes, a new mtime: cannot tell an in-place edit, so rebuilt too
        os.utime(a.records_path, ns=(0, 12_345))
    indexed = index.open_run(a)
    assert [x.cell_id for x in indexed.lines()] == [r.cell_id for r in a.records()]
    pd.testing.assert_frame_equal(index.frame([a]), table.frame(a.records()))


def craft(path: Path, sql: str) -> None:
    db = sqlite3.connect(path)
    db.executescript(sql)
    db.commit()
    db.close()


#: Crafted indexes: SQL run on a good one (``{size}``/``{status}``: those columns' names).
CRAFTED = {
    "wrong type": "UPDATE cells SET {size} = 'x' WHERE line = 2",  # ANY columns take text
    "bad status": "UPDATE cells SET {status} = 'pwned'",
    "a trigger": "CREATE TRIGGER t AFTER INSERT ON bad BEGIN DELETE FROM cells; END",
    "a view": "CREATE VIEW v AS SELECT 1",
    "other version": "UPDATE meta SET value = 99 WHERE key = 'version'",
    "extra column": "ALTER TABLE cells ADD COLUMN zz TEXT",
    "column bytes": "UPDATE series SET data = x'64000102' WHERE name = 'model_size'",
    "column length": "UPDATE series SET data = substr(data, 1, 17) WHERE name = 'model_size'",
    "column text": "UPDATE series SET data = CAST('j[1, {{}}]' AS BLOB) WHERE name = 'model'",
    "column nesting": "UPDATE series SET data = CAST('j' || replace(hex(zeroblob(50000)), '00', "
                      "'[') AS BLOB) WHERE name = 'model'",
}


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated", "huge", *CRAFTED])
def test_a_damaged_or_crafted_index_is_rebuilt(store, damage: str, caplog) -> None:  # noqa: ANN001
    _, a, _ = store
    good = index.open_run(a)
    path = a.path / index.INDEX
    if damage == "garbage":
        path.write_bytes(os.urandom(5000))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:3000])
    elif damage == "huge":
        path.write_bytes(b"\0" * (index.MAX_RATIO * a.records_path.stat().st_size + (2 << 20)))
    else:
        craft(path, CRAFTED[damage].format(size=good.col("model_size"),
                                           status=good.col("status")))
    with caplog.at_level(logging.INFO, logger="bench.results.index"):
        rebuilt = index.open_run(a)
    assert rebuilt is not None
    assert [x.cell_id for x in rebuilt.lines()] == [r.cell_id for r in a.records()]
    pd.testing.assert_frame_equal(index.frame([a]), table.frame(a.records()))
    assert index._load(path, a.records_path.stat().st_size)[0] is not None  # rewritten whole


def test_a_last_line_without_its_newline_yet_is_read_but_not_stored(store) -> None:  # noqa: ANN001
    _, a, _ = store
    index.open_run(a)
    with a.records_path.open("a") as f:  # a whole record, its newline not yet written
        f.write(json.dumps(record(a, 60).to_json()))
    plain = a.records()
    assert len(plain) == 61
    got = index.open_run(a)
    assert [x.cell_id for x in got.lines()] == [r.cell_id for r in plain]
    pd.testing.assert_frame_equal(index.frame([a]), table.frame(plain))
    assert got.find(plain[-1].cell_id, last=True) == plain[-1]
    stored = index._load(a.path / index.INDEX, a.records_path.stat().st_size)[0]
    assert stored.execute("SELECT count(*) FROM cells").fetchone() == (60,)


def test_the_index_is_never_written_through_a_link(store, tmp_path: Path) -> None:  # noqa: ANN001
    _, a, _ = store
    target = tmp_path / "precious"
    target.write_bytes(b"keep me")
    (a.path / index.INDEX).symlink_to(target)
    assert [x.cell_id for x in index.open_run(a).lines()] == [r.cell_id for r in a.records()]
    assert target.read_bytes() == b"keep me"
    assert not (a.path / index.INDEX).is_symlink()  # the link itself was replaced


def test_a_fifo_in_place_of_the_index_does_not_hang(store) -> None:  # noqa: ANN001
    _, a, _ = store
    os.mkfifo(a.path / index.INDEX)
    assert len(index.open_run(a).lines()) == 60


def test_records_that_do_not_fit_one_frame_are_read_line_by_line(tmp_path: Path) -> None:
    run = Store(tmp_path).create("s", {})
    run.append(Record("s", run.run_id, "a", "m", "v", "d", "litert", "ok",
                      metrics={"status": Metric(1.0, "", "measured")}))  # overrides a column
    assert index.open_run(run) is None
    assert index.frame([run]).equals(table.frame(run.records()))


def test_an_unwritable_run_folder_keeps_the_index_in_memory(store) -> None:  # noqa: ANN001
    _, a, _ = store
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    a.path.chmod(0o555)
    try:
        assert len(index.open_run(a).lines()) == 60
        assert not (a.path / index.INDEX).exists()
    finally:
        a.path.chmod(0o755)


def _append(path: str, n: int) -> None:
    store = Store(Path(path).parent.parent)
    run = Store(store.root).find(Path(path).name)
    for i in range(n):
        run.append(record(run, i))


def _read(path: str, rounds: int, out: multiprocessing.Queue) -> None:
    store = Store(Path(path).parent.parent)
    run = store.find(Path(path).name)
    seen = []
    try:
        for _ in range(rounds):
            found = index.open_run(run)
            seen.append([x.cell_id for x in found.lines()])
        out.put(("ok", seen))
    except Exception as e:  # noqa: BLE001 - reported to the test
        out.put(("error", repr(e)))


def test_concurrent_appends_and_readers_leave_a_whole_index(tmp_path: Path) -> None:
    store = Store(tmp_path)
    run = store.create("s", {}, run_id="20261201T000000Z-cccc")
    run.release()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    writer = ctx.Process(target=_append, args=(str(run.path), 300))
    readers = [ctx.Process(target=_read, args=(str(run.path), 25, out)) for _ in range(3)]
    for p in [writer, *readers]:
        p.start()
    results = [out.get(timeout=300) for _ in readers]
    for p in [writer, *readers]:
        p.join(timeout=300)
    assert writer.exitcode == 0
    final = [r.cell_id for r in run.records()]
    assert len(final) == 300
    for status, seen in results:
        assert status == "ok", seen
        for cells in seen:  # every view a prefix of the final records, in order
            assert cells == final[:len(cells)]
    assert index._load(run.path / index.INDEX, run.records_path.stat().st_size)[0] is not None
    assert [x.cell_id for x in index.open_run(run).lines()] == final
    pd.testing.assert_frame_equal(index.frame([run]), table.frame(run.records()))


def test_welch_p_is_scipys() -> None:
    """Comparing runs computes Welch's test per cell without SciPy's per-call overhead; the
    p-values are SciPy's."""
    import math
    import random

    from scipy.stats import ttest_ind_from_stats

    from bench.results.significance import welch_p

    rng = random.Random(7)
    cases = [(1, 0, 10, 1, 0, 10), (1, 0, 10, 2, 0, 10), (5, 0.1, 2, 5, 0.1, 2)]
    cases += [(rng.uniform(0.01, 100), rng.choice([0, rng.uniform(0, 10)]), rng.randint(2, 500),
               rng.uniform(0.01, 100), rng.choice([0, rng.uniform(0, 10)]), rng.randint(2, 500))
              for _ in range(500)]
    for case in cases:
        want = float(ttest_ind_from_stats(*case, equal_var=False).pvalue)
        got = welch_p(*case)
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=1e-9,
                                                                              abs=1e-300), case


def test_the_leaderboards_checks_column_matches_the_row_by_row_rule() -> None:
    """The checks text is built column by column (100,000 rows); each row reads as the rule
    says: passed/applicable, the failed names in column order, blank when none applied."""
    import random

    from leaderboard.data import _checks

    def by_row(row: pd.Series, names: list[str]) -> str:
        results = {n: row[f"check:{n}"] for n in names if pd.notna(row[f"check:{n}"])}
        if not results:
            return ""
        failed = [n for n, v in results.items() if not bool(v)]
        text = f"{len(results) - len(failed)}/{len(results)}"
        return f"✗ {text} {', '.join(failed)}" if failed else f"✓ {text}"

    rng = random.Random(3)
    rows = [{f"check:{n}": rng.choice([True, False, None]) for n in "abc" if rng.random() > 0.3}
            for _ in range(300)]
    for df in (pd.DataFrame(rows), pd.DataFrame([{"check:x": True}, {"check:x": False}])):
        names = [c[len("check:"):] for c in df.columns]
        assert _checks(df, names).tolist() == df.apply(by_row, axis=1, args=(names,)).tolist()
