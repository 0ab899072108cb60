"""Device files: the shipped ones validate, broken ones fail with file + field + reason; the
``edgebench devices`` commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench import cli
from bench.devices.cores import CORES
from bench.devices.device import (
    RUNTIMES,
    device_schema,
    find_device,
    list_devices,
    load_device,
    search_dirs,
)
from bench.suite.spec import SpecError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "devices").glob("*.yaml"))
BOARD = {"id": "my-board", "name": "My board", "core": "cortex-m4f", "clock_mhz": 80,
         "memory": {"flash_kb": 1024, "ram_kb": 256}, "power": {"active_mw": 20},
         "runtime": "tflm", "connection": {"kind": "estimate"}}


def write(folder: Path, data: object, name: str = "my-board") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def problems(path: Path) -> dict[str, str]:
    """field → reason of every problem ``load_device`` reports (and it names the file)."""
    with pytest.raises(SpecError) as e:
        load_device(path)
    assert e.value.path == str(path)
    assert str(e.value).startswith(f"{path}: ")
    return dict(e.value.problems)


# --- shipped files ------------------------------------------------------------------------------

def test_ships_the_issue_devices() -> None:
    ids = {p.stem for p in SHIPPED}
    assert len(ids) >= 14
    assert {"nucleo-l4r5zi", "nucleo-h7a3zi-q", "nucleo-u575zi-q", "ek-ra6m4", "ek-ra8d1",
            "arduino-nano-33-ble-sense", "raspberry-pi-pico", "esp32-devkitc",
            "esp32-s3-devkitc-1", "sparkfun-edge", "mcu-256kb-80mhz", "edge-gateway-512kb",
            "raspberry-pi-4", "host-litert", "tflm-reference"} <= ids


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_device_validates_and_cites_its_figures(path: Path) -> None:
    device = load_device(path)
    assert device.id == path.stem and device.source == path.resolve()
    if device.is_host:
        return
    assert device.connection.kind in ("estimate", "qemu")
    assert device.clock_mhz and device.memory.flash_kb and device.memory.ram_kb
    comments = [line for line in path.read_text().splitlines() if line.startswith("#")]
    assert len(comments) >= 4  # where the clock, memory and power figures come from
    if device.power is not None:
        assert device.power.active_mw
        assert any("power" in line.lower() for line in comments)


def test_budget_classes_say_so() -> None:
    for name in ("mcu-256kb-80mhz", "edge-gateway-512kb"):
        assert "BUDGET CLASS, not a product" in (ROOT / "devices" / f"{name}.yaml").read_text()
    mcu = load_device(ROOT / "devices" / "mcu-256kb-80mhz.yaml")
    assert (mcu.core, mcu.clock_mhz, mcu.memory.ram_kb) == ("cortex-m4f", 80, 256)
    assert load_device(ROOT / "devices" / "edge-gateway-512kb.yaml").memory.ram_kb == 512


# --- broken files -------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "field", "reason"), [
    ({"core": None}, "core", "Field required"),
    ({"core": "cortex-m4x"}, "core", "did you mean 'cortex-m4"),
    ({"clock_mhz": -80}, "clock_mhz", "greater than or equal to 0.001"),
    ({"clock_mhz": "fast"}, "clock_mhz", "valid number"),
    ({"colour": "red"}, "colour", "unknown key"),
    ({"memory": {"flash_kb": 1024, "ram": 256}}, "memory.ram", "unknown key"),
    ({"runtime": "x-cube"}, "runtime", "did you mean 'x-cube-ai'?"),
    ({"connection": {"kind": "usb"}}, "connection.kind",
     "unknown connection kind 'usb' (known: estimate, host, qemu, serial, tflm)"),
    ({"connection": {"kind": "serial", "port": "/dev/ttyACM0", "buad": 9600}},
     "connection.buad", "did you mean 'baud'?"),
    ({"connection": {"kind": "estimate", "coefficent": "x.json"}}, "connection.coefficent",
     "did you mean 'coefficients'?"),
    ({"id": "other-board"}, "id", "does not match the file name 'my-board.yaml'"),
    ({"clock_mhz": None}, "clock_mhz", "every device but `core: host`"),
    ({"memory": {"flash_kb": 1024}}, "memory.ram_kb", "Field required"),
    ({"connection": {"kind": "serial"}}, "connection.port", "`port` (a path or a pyserial URL)"),
    ({"connection": {"kind": "serial", "usb": "0483-374b"}}, "connection.usb", '"VID:PID" in hex'),
    ({"connection": {"kind": "serial", "port": "/dev/ttyACM0", "protocol": "mlperf_tiny"}},
     "connection.protocol", "did you mean 'mlperf-tiny'?"),
    ({"connection": {"kind": "serial", "port": "/dev/ttyACM0", "baud": 0}}, "connection.baud",
     "a positive whole number"),
    ({"connection": {"kind": "serial", "port": "/dev/ttyACM0", "timeout_s": "5s"}},
     "connection.timeout_s", "a positive number"),
])
def test_broken_file_names_file_field_and_reason(tmp_path: Path, change: dict, field: str,
                                                 reason: str) -> None:
    data = {**BOARD, **change}
    data = {k: v for k, v in data.items() if not (k == "core" and v is None)}
    found = problems(write(tmp_path, data))
    assert field in found, found
    assert reason in found[field]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    data = {**BOARD, "id": "x", "core": "cortex-m7f", "clock_mhz": 0, "runtime": "tflmm",
            "extra": 1}
    data.pop("memory")
    found = problems(write(tmp_path, data))
    assert set(found) == {"id", "core", "clock_mhz", "runtime", "extra", "memory"}
    assert "did you mean 'cortex-m7'?" in found["core"]


def test_host_devices_need_no_clock_or_memory_but_are_never_estimated(tmp_path: Path) -> None:
    host = {"id": "my-board", "core": "host", "runtime": "litert",
            "connection": {"kind": "host", "runtime": "litert"}}
    device = load_device(write(tmp_path, host))
    assert device.is_host and device.clock_mhz is None and device.runner == "litert"
    assert device.options == {"runtime": "litert"}
    found = problems(write(tmp_path, {**host, "connection": {"kind": "estimate"}}))
    assert "serves boards, not `core: host`" in found["connection.kind"]
    streaming = {**host, "connection": {"kind": "host", "stream_period_s": 0.5}}
    assert load_device(write(tmp_path, streaming)).options == {"stream_period_s": 0.5}
    for bad in (0, -1, "fast", True):
        found = problems(write(tmp_path, {**host, "connection": {"kind": "host",
                                                                  "stream_period_s": bad}}))
        assert "positive number" in found["connection.stream_period_s"], bad


def test_not_a_mapping_and_bad_yaml(tmp_path: Path) -> None:
    path = tmp_path / "my-board.yaml"
    path.write_text("- just\n- a list\n")
    assert "a device file is a mapping" in problems(path)[""]
    path.write_text("id: [unclosed\n")
    assert "not valid YAML" in problems(path)[""]


# --- lookup --------------------------------------------------------------------------------------

def test_a_dropped_in_file_needs_no_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, BOARD)
    monkeypatch.setenv("EDGEBENCH_DEVICES", str(tmp_path))
    assert find_device("my-board", search_dirs()).clock_mhz == 80
    devices, errors = list_devices(search_dirs())
    assert "my-board" in {d.id for d in devices} and not errors
    with pytest.raises(LookupError, match="did you mean 'my-board'"):
        find_device("my-bord", search_dirs())


def test_first_folder_wins_and_bad_files_are_listed_as_errors(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    write(first, {**BOARD, "clock_mhz": 100})
    write(second, BOARD)
    write(second, {**BOARD, "id": "broken", "core": "nope"}, name="broken")
    devices, errors = list_devices([first, second])
    assert [(d.id, d.clock_mhz) for d in devices] == [("my-board", 100)]
    assert [Path(e.path).name for e in errors] == ["broken.yaml"]


def test_runtime_and_core_catalogues() -> None:
    assert {"tflm", "x-cube-ai", "microtvm", "plumerai", "bosch-hale", "onnc", "litert",
            "tflite-runtime", "esp-nn"} <= set(RUNTIMES)
    assert {"cortex-m4f", "cortex-m85", "esp32s3-xtensa-lx7", "cortex-a72", "host"} <= set(CORES)
    schema = device_schema()
    assert schema["title"] == "edgebench device" and "source" not in schema["properties"]


# --- CLI -----------------------------------------------------------------------------------------

def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench", "devices", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_validate_cli_exit_codes(tmp_path: Path) -> None:
    good = write(tmp_path, BOARD)
    ok = run_cli("validate", str(good), str(ROOT / "devices"))
    assert ok.returncode == 0, ok.stderr
    assert f"{good}: ok" in ok.stdout and ok.stdout.count(": ok") == 1 + len(SHIPPED)

    bad = write(tmp_path, {**BOARD, "id": "bad", "core": "cortex-m4x", "clock_mhz": -1},
                name="bad")
    out = run_cli("validate", str(bad), str(good), str(tmp_path / "missing.yaml"))
    assert out.returncode == 2
    assert f"{good}: ok" in out.stdout  # every file is validated, not just up to the first error
    assert f"{bad}: core: unknown core 'cortex-m4x'; did you mean 'cortex-m4" in out.stderr
    assert f"{bad}: clock_mhz: Input should be greater than or equal to 0.001" in out.stderr
    assert f"{tmp_path / 'missing.yaml'}: no such file" in out.stderr


def test_list_show_cores_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, BOARD)
    assert cli.main(["devices", "list", "--devices-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:4] == ["id", "name", "core", "clock"]
    assert "my-board" in out and "estimate" in out

    assert cli.main(["devices", "show", "my-board", "--devices-dir", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    body = yaml.safe_load("\n".join(x for x in shown.splitlines() if not x.startswith("#")))
    assert body["clock_mhz"] == 80 and body["memory"] == {"flash_kb": 1024, "ram_kb": 256}
    assert "# runner: estimate" in shown

    assert cli.main(["devices", "show", "no-such-board", "--devices-dir", str(tmp_path)]) == 2
    assert "unknown device 'no-such-board'" in capsys.readouterr().err

    assert cli.main(["devices", "cores"]) == 0
    cores = capsys.readouterr().out
    assert all(name in cores for name in CORES) and "family" in cores


# --- emulation targets --------------------------------------------------------------------------

def test_a_board_with_an_emulation_target_has_an_emulated_twin(tmp_path: Path) -> None:
    board = find_device("nucleo-l4r5zi", [ROOT / "devices"])
    assert board.connection.kind == "estimate" and board.emulate == {"machine": "mps2-an386"}
    twin = find_device("nucleo-l4r5zi-emulated", [ROOT / "devices"])
    assert twin.id == "nucleo-l4r5zi-emulated" and twin.emulate is None
    assert (twin.connection.kind, twin.options) == ("qemu", {"machine": "mps2-an386"})
    assert (twin.core, twin.clock_mhz, twin.memory) == (board.core, board.clock_mhz,
                                                         board.memory)
    assert twin.runner == "qemu" and "emulated" in twin.name
    write(tmp_path, BOARD)
    with pytest.raises(LookupError, match="names no emulation target"):
        find_device("my-board-emulated", [tmp_path])


def test_an_emulation_target_is_checked_when_the_file_is_read(tmp_path: Path) -> None:
    found = problems(write(tmp_path, {**BOARD, "emulate": {"machine": "mps2-an368"}}))
    assert "did you mean 'mps2-an386'" in found["emulate.machine"]
    found = problems(write(tmp_path, {**BOARD, "emulate": {"machin": "mps2-an386"}}))
    assert "did you mean 'machine'" in found["emulate.machin"]
