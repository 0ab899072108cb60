"""A corpus of hostile and careless suite, device and model files, and a judge of how edgebench
reads them: a clear error (naming the file), accepted, a traceback, or a hang.

Model files (crafted ``.tflite`` flatbuffers and ``.keras`` archives) are judged as a build
judges them before anything loads them (:func:`bench.run.build.judge_model_file`), plus the
worker memory check a ``.tflite``'s declared tensors get before any interpreter allocates them.

``python tests/fuzz_corpus.py`` judges the whole corpus and prints the counts (``make fuzz``);
``tests/test_fuzz.py`` judges a seeded sample in ``make test``.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import signal
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEVICES = ROOT / "devices"
HANG_S = 10

SUITE: dict[str, Any] = {
    "name": "fuzz",
    "models": [{"id": "m", "builder": "har_mlp", "dataset": {"name": "har_synthetic",
                                                              "params": {"samples": 300}},
                "train": {"epochs": 1, "batch_size": 32}}],
    "variants": [{"id": "fp32"}, {"id": "int8", "steps": [{"quantize": {"mode": "int8"}}]}],
    "devices": ["host-litert", "nucleo-l4r5zi"],
    "constraints": {"flash_kb": {"max": 512}, "accuracy": {"min_delta_vs": "fp32",
                                                           "max_loss": 0.03}},
    "settings": {"warmup": 1, "repeats": 5, "timeout_s": 60},
}
DEVICE: dict[str, Any] = {
    "id": "board", "name": "a board", "core": "cortex-m4f", "clock_mhz": 120,
    "memory": {"flash_kb": 2048, "ram_kb": 640}, "power": {"active_mw": 39.6, "voltage_v": 3.3},
    "runtime": "tflm", "connection": {"kind": "estimate"},
}
SERIAL = {"kind": "serial", "port": "/dev/ttyACM0", "baud": 115200, "timeout_s": 5}

#: Values that are wrong wherever a number, a name or a mapping is expected.
BAD_VALUES: list[Any] = [
    None, True, False, -1, 0, float("nan"), float("inf"), float("-inf"), 10 ** 40, "5s", "",
    "x" * 200_000, [], [1, 2], {}, {"a": 1}, "../../etc/passwd", "/abs/path", "a/b", "..",
    "\u202etxt.exe", "\x00", 1e-320,
]


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # suite | device
    data: bytes
    #: True: a control that must be accepted; False: broken, must be a clear error; None: a
    #: random wrong value that may happen to be valid (it must not give a traceback or hang)
    valid: bool | None = False


def dump(data: Any) -> bytes:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode()


def paths(data: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every key path of nested mappings and lists."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield (*prefix, k)
            yield from paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield (*prefix, i)
            yield from paths(v, (*prefix, i))


def with_value(data: Any, path: tuple, value: Any) -> Any:
    out = copy.deepcopy(data)
    node = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


def without(data: Any, path: tuple) -> Any:
    out = copy.deepcopy(data)
    node = out
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return out


def alias_bomb(levels: int = 9, width: int = 9) -> bytes:
    lines = ['a0: &a0 "lol"'] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]"
                                 for i in range(1, levels + 1)]
    return ("\n".join(lines) + "\nname: x\n").encode()


def raw_cases(kind: str) -> list[Case]:
    """Files that are broken as files: encodings, syntax, size, nesting, aliases, tags."""
    base = dump(SUITE if kind == "suite" else DEVICE)
    text = base.decode()
    return [Case(f"{kind}: empty", kind, b""),
            Case(f"{kind}: utf-16", kind, text.encode("utf-16")),
            Case(f"{kind}: latin-1 byte", kind, base + "description: caf\xe9\n".encode("latin-1")),
            Case(f"{kind}: binary junk", kind, bytes(range(256)) * 8),
            Case(f"{kind}: NUL bytes", kind, base.replace(b"\n", b"\x00\n", 3)),
            Case(f"{kind}: syntax error", kind, base + b"models: [\n"),
            Case(f"{kind}: tab indentation", kind, base.replace(b"  ", b"\t", 2)),
            Case(f"{kind}: a list", kind, b"- 1\n- 2\n"),
            Case(f"{kind}: a scalar", kind, b"42\n"),
            Case(f"{kind}: python tag", kind, b"name: !!python/object/apply:os.system [id]\n"),
            Case(f"{kind}: alias bomb", kind, alias_bomb()),
            Case(f"{kind}: self alias", kind, b"name: &a [*a]\n"),
            Case(f"{kind}: nesting 1000", kind, b"name: " + b"[" * 1000 + b"]" * 1000 + b"\n"),
            Case(f"{kind}: nesting 100000", kind, b"[" * 100_000 + b"]" * 100_000),
            Case(f"{kind}: 3 MB", kind, base + b"# " + b"x" * (3 << 20) + b"\n"),
            Case(f"{kind}: duplicate key", kind, base + b"name: again\n"),
            Case(f"{kind}: two documents", kind, base + b"---\n" + base)]


def suite_cases(rng: random.Random, n: int) -> list[Case]:
    out = [Case("suite: valid control", "suite", dump(SUITE), valid=True)]
    out += raw_cases("suite")
    structural = [
        ("no models", without(SUITE, ("models",))),
        ("no devices", without(SUITE, ("devices",))),
        ("empty models", with_value(SUITE, ("models",), [])),
        ("unknown key", {**SUITE, "modles": SUITE["models"]}),
        ("builder typo", with_value(SUITE, ("models", 0, "builder"), "har_mpl")),
        ("dataset typo", with_value(SUITE, ("models", 0, "dataset", "name"), "har_synth")),
        ("unknown param", with_value(SUITE, ("models", 0, "params"), {"unitz": 3})),
        ("builder and path", with_value(SUITE, ("models", 0, "path"), "m.tflite")),
        ("path to .exe", {**SUITE, "models": [{"id": "m", "path": "evil.exe"}]}),
        ("unknown device", with_value(SUITE, ("devices",), ["nucleo-l4r5z"])),
        ("device twice", with_value(SUITE, ("devices",), ["host-litert", "host-litert"])),
        ("model id twice", with_value(SUITE, ("models",), SUITE["models"] * 2)),
        ("step typo", with_value(SUITE, ("variants", 1, "steps"), [{"quantise": {}}])),
        ("two keys in a step", with_value(SUITE, ("variants", 1, "steps"),
                                          [{"quantize": {}, "prune": {}}])),
        ("convert then distill", with_value(SUITE, ("variants", 1, "steps"),
                                            [{"quantize": {"mode": "int8"}},
                                             {"distill": {"teacher": "m"}}])),
        ("two conversions", with_value(SUITE, ("variants", 1, "steps"),
                                       [{"quantize": {"mode": "int8"}},
                                        {"quantize": {"mode": "fp16"}}])),
        ("teacher unknown", with_value(SUITE, ("variants", 1, "steps"),
                                       [{"distill": {"teacher": "nobody"}}])),
        ("constraint typo", with_value(SUITE, ("constraints",), {"flsh_kb": {"max": 1}})),
        ("constraint empty", with_value(SUITE, ("constraints",), {"flash_kb": {}})),
        ("min_delta_vs unknown", with_value(SUITE, ("constraints", "accuracy", "min_delta_vs"),
                                            "fp64")),
        ("realtime without rate", with_value(SUITE, ("constraints",), {"realtime": {"max": 1}})),
        ("excludes everything", {**SUITE, "exclude": [{"model": "*"}]}),
        ("report column typo", {**SUITE, "report": [{"title": "t", "rows": [{}],
                                                      "columns": ["acuracy"]}]}),
        ("timeout forever", with_value(SUITE, ("settings", "timeout_s"), float("inf"))),
        ("seed negative", with_value(SUITE, ("models", 0, "train"), {"seed": -1})),
        ("seed past NumPy's range", with_value(SUITE, ("models", 0, "dataset", "seed"), 2**32)),
        ("batch size 10^9", with_value(SUITE, ("models", 0, "train", "batch_size"), 10**9)),
        ("epochs 10^7", with_value(SUITE, ("models", 0, "train", "epochs"), 10**7)),
        ("samples 10^10", with_value(SUITE, ("models", 0, "dataset", "params", "samples"),
                                     10**10)),
        ("calibration samples 10^9", with_value(SUITE, ("variants", 1, "steps"), [
            {"quantize": {"mode": "int8", "calibration": {"samples": 10**9}}}])),
        ("memory_mb too small", with_value(SUITE, ("settings", "memory_mb"), 1)),
        ("memory_mb a petabyte", with_value(SUITE, ("settings", "memory_mb"), 10**12)),
    ]
    out += [Case(f"suite: {name}", "suite", dump(data)) for name, data in structural]
    # every field path × wrong values (a valid value by chance is skipped below)
    field_paths = [p for p in paths(SUITE) if p[-1] not in ("description",)]
    while len(out) < n:
        path, value = rng.choice(field_paths), rng.choice(BAD_VALUES)
        data = with_value(SUITE, path, value)
        out.append(Case(f"suite: {'.'.join(map(str, path))} = {short(value)}", "suite",
                        dump(data), valid=None))
    return out


def device_cases(rng: random.Random, n: int) -> list[Case]:
    out = [Case("device: valid control", "device", dump(DEVICE), valid=True),
           Case("device: valid serial", "device", dump({**DEVICE, "connection": SERIAL}),
                valid=True)]
    out += raw_cases("device")
    structural = [
        ("no core", without(DEVICE, ("core",))),
        ("no clock", without(DEVICE, ("clock_mhz",))),
        ("core typo", with_value(DEVICE, ("core",), "cortex-m4ff")),
        ("runtime typo", with_value(DEVICE, ("runtime",), "x-cube")),
        ("kind unknown", with_value(DEVICE, ("connection",), {"kind": "usb"})),
        ("option typo", with_value(DEVICE, ("connection",), {**SERIAL, "buad": 9600})),
        ("serial without port", with_value(DEVICE, ("connection",), {"kind": "serial"})),
        ("host estimated", {**DEVICE, "core": "host"}),
        ("id not the file name", with_value(DEVICE, ("id",), "other")),
        ("unknown key", {**DEVICE, "colour": "red"}),
        ("clock 1e30 MHz", with_value(DEVICE, ("clock_mhz",), 1e30)),
        ("clock 1e-300 MHz", with_value(DEVICE, ("clock_mhz",), 1e-300)),
        ("flash 1e30 KB", with_value(DEVICE, ("memory", "flash_kb"), 1e30)),
        ("ram 1e-9 KB", with_value(DEVICE, ("memory", "ram_kb"), 1e-9)),
        ("power 1e30 mW", with_value(DEVICE, ("power", "active_mw"), 1e30)),
        ("voltage 1e30 V", with_value(DEVICE, ("power", "voltage_v"), 1e30)),
    ]
    out += [Case(f"device: {name}", "device", dump(data)) for name, data in structural]
    serial_device = {**DEVICE, "connection": SERIAL}
    field_paths = [p for p in [*paths(DEVICE), *paths(serial_device)]
                   if p[-1] not in ("name",)]
    while len(out) < n:
        path, value = rng.choice(field_paths), rng.choice(BAD_VALUES)
        base = serial_device if path[0] == "connection" and len(path) > 1 and path[1] in SERIAL \
            and path[1] != "kind" else DEVICE
        data = with_value(base, path, value)
        out.append(Case(f"device: {'.'.join(map(str, path))} = {short(value)}", "device",
                        dump(data), valid=None))
    return out


# --- model files ---------------------------------------------------------------------------

#: The worker memory limit model files are judged against here (MB).
MODEL_LIMIT_MB = 1024


def _sine_tflite() -> bytes | None:
    """A small real .tflite (TFLite Micro's sine example: 3 FULLY_CONNECTED ops), if installed."""
    try:
        import tflite_micro
    except ImportError:
        return None
    path = Path(tflite_micro.__file__).parent / "python" / "tflite_micro" / "sine_float.tflite"
    return path.read_bytes() if path.is_file() else None


def _mutated(data: bytes, change: Callable[[Any], None]) -> bytes:
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    change(model)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _set(obj: Any, **values: Any) -> None:
    for name, value in values.items():
        setattr(obj, name, value)


def _keras(entries: dict[str, bytes | int], lie: int | None = None) -> bytes:
    """A zip (.keras) of ``entries`` (an int: that many MiB of spaces, deflated); ``lie``: every
    entry's directory record declares that many MiB."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, body in entries.items():
            if isinstance(body, int):
                with z.open(name, "w", force_zip64=True) as f:
                    for _ in range(body):
                        f.write(b" " * (1 << 20))
            else:
                z.writestr(name, body)
        if lie is not None:
            for info in z.infolist():
                info.file_size = info.compress_size = lie << 20
    return buf.getvalue()


def model_cases() -> list[Case]:
    """Crafted .tflite and .keras files (the reported probes among them); none without a base
    model to craft from."""
    base = _sine_tflite()
    if base is None:
        return []
    sub = "subgraphs"
    tflite = [
        ("valid control", base, True),
        ("empty", b"", False),
        ("identifier only", base[:8], False),
        ("truncated", base[:len(base) // 2], False),
        ("junk after the header", base[:8] + bytes(range(256)) * 8, False),
        ("input [1, 2^31 - 1]", _mutated(base, lambda m: _set(
            getattr(m, sub)[0].tensors[getattr(m, sub)[0].inputs[0]], shape=[1, 2**31 - 1],
            shapeSignature=None)), False),
        ("activations of 2 GB in all", _mutated(base, lambda m: [
            _set(t, shape=[1, 2**27], shapeSignature=None)
            for t in getattr(m, sub)[0].tensors if m.buffers[t.buffer].data is None]), False),
        ("op input past the tensors", _mutated(base, lambda m: getattr(m, sub)[0].operators[1]
                                               .inputs.__setitem__(1, 9999)), False),
        ("op output past the tensors", _mutated(base, lambda m: getattr(m, sub)[0].operators[0]
                                                .outputs.__setitem__(0, 10**6)), False),
        ("op code past the table", _mutated(base, lambda m: _set(
            getattr(m, sub)[0].operators[0], opcodeIndex=77)), False),
        ("weights larger than their buffer", _mutated(base, lambda m: _set(
            getattr(m, sub)[0].tensors[getattr(m, sub)[0].operators[0].inputs[1]],
            shape=[16, 400_000])), None),  # a kernel would read past it: caught by the worker
    ]
    keras = [
        ("not a zip", b"PK\x03\x04" + b"\0" * 100, False),
        ("config.json inflating to 64 MiB", _keras({"config.json": 64}), False),
        ("1,001 entries", _keras({f"assets/{i}": b"" for i in range(1001)}), False),
        ("declares 3 × 400 MiB", _keras({f"part{i}": b"x" for i in range(3)}, lie=400), False),
        ("a small archive", _keras({"config.json": b"{}", "metadata.json": b"{}"}), None),
    ]
    return ([Case(f"model: .tflite {name}", "model", data, valid)
             for name, data, valid in tflite]
            + [Case(f"model: .keras {name}", "model-keras", data, valid)
               for name, data, valid in keras])


def judge_model(case: Case, path: Path) -> None:
    """What a build does with a model file before loading it, and the memory judge."""
    from bench.artifacts import tflite_info
    from bench.run.build import judge_model_file

    judge_model_file(path)
    if path.suffix == ".tflite":
        problem = tflite_info.memory_problem(tflite_info.inspect(path.read_bytes(), str(path)),
                                             MODEL_LIMIT_MB, f"model file {path}")
        if problem:
            raise ValueError(problem)


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 30 else f"{text[:27]}…"


def corpus(suites: int = 300, devices: int = 100, seed: int = 0,
           models: bool = True) -> list[Case]:
    rng = random.Random(seed)
    return suite_cases(rng, suites) + device_cases(rng, devices) + (
        model_cases() if models else [])


# --- judging -----------------------------------------------------------------------------------

class Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Hang


def judge(case: Case, folder: Path) -> tuple[str, str]:
    """``(verdict, detail)``: verdict is ``error`` (a clear error naming the file), ``accepted``,
    ``traceback`` (any other exception, or an error that does not name the file) or ``hang``."""
    from bench.devices.device import load_device
    from bench.results.store import Store
    from bench.run.session import Session
    from bench.suite.spec import load_suite

    path = folder / {"device": "board.yaml", "suite": "suite.yaml", "model": "m.tflite",
                     "model-keras": "m.keras"}[case.kind]
    path.write_bytes(case.data)
    load: Callable[[Path], Any]
    if case.kind.startswith("model"):
        def load(p: Path) -> Any:
            return judge_model(case, p)
    elif case.kind == "suite":
        def load(p: Path) -> Any:
            return Session(load_suite(p), Store(folder / "results"), devices_dirs=[DEVICES])
    else:
        load = load_device
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_S)
    try:
        load(path)
        verdict, detail = "accepted", ""
    except Hang:
        verdict, detail = "hang", f"over {HANG_S} s"
    except Exception as e:  # noqa: BLE001 - what the judge is for
        message = str(e)
        model_error = case.kind.startswith("model") and isinstance(e, ValueError | OSError)
        if type(e).__name__ != "SpecError" and not isinstance(e, LookupError) \
                and not model_error:
            return "traceback", f"{type(e).__name__}: {message[:200]}"
        clear = str(path) in message or case.kind == "suite" and "devices[" in message
        verdict = "error" if clear and len(message) < 5000 else "traceback"
        detail = message[:200]
    finally:
        signal.alarm(0)
    return verdict, detail


def judge_all(cases: list[Case]) -> list[dict[str, str]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgebench-fuzz-") as tmp:
        for case in cases:
            verdict, detail = judge(case, Path(tmp))
            ok = (verdict in ("accepted", "error") if case.valid is None
                  else verdict == ("accepted" if case.valid else "error"))
            rows.append({"case": case.name, "kind": case.kind, "valid": case.valid,
                         "verdict": verdict, "ok": ok, "detail": detail})
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--suites", type=int, default=300)
    p.add_argument("--devices", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="one JSON line per case")
    args = p.parse_args()
    rows = judge_all(corpus(args.suites, args.devices, args.seed))
    if args.json:
        for row in rows:
            print(json.dumps(row))
    for kind in ("suite", "device", "model"):
        mine = [r for r in rows if r["kind"].startswith(kind)]
        print(f"{kind} files: {len(mine)}")
        for label, valid in (("broken", False), ("random wrong values", None),
                             ("valid controls", True)):
            counts = Counter(r["verdict"] for r in mine if r["valid"] is valid)
            print(f"  {label:20} {sum(counts.values()):4}: clear errors {counts['error']}, "
                  f"accepted {counts['accepted']}, tracebacks {counts['traceback']}, "
                  f"hangs {counts['hang']}")
    for row in rows:
        if not row["ok"] or (row["valid"] is None and row["verdict"] == "accepted"):
            mark = "" if row["ok"] else "NOT OK "
            print(f"  {mark}{row['verdict']:9} {row['case']}: {row['detail'][:120]}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
