"""``edgebench devices list | show ID | validate FILE... | cores | runtimes | schema``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bench import registry, textable
from bench.cli.args import add_devices_dir, read_device

if TYPE_CHECKING:
    from bench.devices.device import Device


def _num(x: float | None) -> str:
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _ints(value: Any) -> Any:
    """Integral floats as ints (``120`` rather than ``120.0``), recursively."""
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _shown_path(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def cmd_list(args: argparse.Namespace) -> int:
    from bench.devices.device import list_devices, search_dirs

    devices, errors = list_devices(search_dirs(args.devices_dir))
    header = ["id", "name", "core", "clock MHz", "flash KB", "RAM KB", "active mW", "runtime",
              "connection", "file"]
    rows = [[d.id, d.name, d.core, _num(d.clock_mhz), _num(d.memory.flash_kb),
             _num(d.memory.ram_kb), _num(d.power.active_mw if d.power else None), d.runtime,
             d.connection.kind, _shown_path(d.source)] for d in devices]
    print(textable.render(header, rows, numeric={3, 4, 5, 6}) if rows
          else "(no device files found)")
    for e in errors:
        print(f"invalid device file\n{e}", file=sys.stderr)
    return 2 if errors else 0


def _device_yaml(device: Device) -> str:
    data: dict[str, Any] = _ints(device.model_dump(mode="json", exclude_none=True))
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip()


def cmd_show(args: argparse.Namespace) -> int:
    from bench.devices.cores import get_core
    from bench.devices.device import RUNTIMES

    device = read_device(args.device, args.devices_dir)
    core = get_core(device.core)
    print(f"# {device.source}")
    print(_device_yaml(device))
    print(f"# core {core.name}: {core.description}")
    print(f"# runtime {device.runtime}: {RUNTIMES[device.runtime]}")
    print(f"# runner: {device.runner}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from bench.devices.device import device_files, load_device
    from bench.errors import SpecError

    files: list[Path] = []
    for given in args.files:
        files += device_files([given]) if given.is_dir() else [given]
    failed = 0
    for path in files:
        try:
            load_device(path)
        except SpecError as e:
            failed += 1
            print(e, file=sys.stderr)
        else:
            print(f"{path}: ok")
    if failed:
        print(f"{failed} of {len(files)} device files invalid", file=sys.stderr)
    if not files:
        print("error: no device files (*.yaml) in " + ", ".join(map(str, args.files)),
              file=sys.stderr)
    return 2 if failed or not files else 0


def cmd_cores(args: argparse.Namespace) -> int:
    from bench.devices.cores import CORES

    rows = [[c.name, c.family, c.description] for c in CORES.values()]
    print(textable.render(["core", "family", "description"], rows))
    return 0


def cmd_runtimes(args: argparse.Namespace) -> int:
    from bench.devices.device import RUNTIMES
    from bench.estimate.coefficients import load_coefficients

    table = load_coefficients()
    rows = [[k, v, ", ".join(table.releases(k)) or "–"] for k, v in RUNTIMES.items()]
    print(textable.render(["runtime", "description", "releases the estimator knows"], rows))
    return 0


def _option_text(name: str, field: Any) -> str:
    default = field.get_default(call_default_factory=True)
    return name if default is None else f"{name}={default}"


def cmd_kinds(args: argparse.Namespace) -> int:
    """Connection kinds with their runners, artifact kinds, options (with defaults), method."""
    from bench.devices.connections import runners_by_kind

    rows = [[kind, r.name, ", ".join(r.artifacts), r.method,
             " ".join(_option_text(n, f) for n, f in r.options.model_fields.items()) or "-"]
            for kind, runners in sorted(runners_by_kind().items()) for r in runners]
    print(textable.render(["kind", "runner", "artifacts", "method", "options"], rows))
    return 0


def cmd_monitors(args: argparse.Namespace) -> int:
    """Power monitors for energy mode (``energy.monitor.kind``), their options and defaults."""
    rows = []
    for name in registry.monitors.names():
        kind = registry.monitors.get(name)
        options = " ".join(_option_text(n, f) for n, f in kind.options.model_fields.items())
        rows.append([name, kind.extra and f"edgebench[{kind.extra}]" or "-", options or "-"])
    print(textable.render(["monitor", "needs", "options"], rows))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from bench.devices.device import device_schema

    print(json.dumps(device_schema(), indent=2))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``edgebench devices …`` to the CLI."""
    p = sub.add_parser("devices", help="device files: list, show, validate; cores, runtimes, "
                                       "connection kinds")
    dsub = p.add_subparsers(dest="devices_command", required=True)

    sp = dsub.add_parser("list", help="every device file found, one row each")
    add_devices_dir(sp)
    sp.set_defaults(func=cmd_list)
    sp = dsub.add_parser("show", help="one validated device (by id or file)")
    sp.add_argument("device", help="device id or path to a device file")
    add_devices_dir(sp)
    sp.set_defaults(func=cmd_show)
    sp = dsub.add_parser("validate", help="check device files (exit 2 if any is invalid)")
    sp.add_argument("files", nargs="+", type=Path, help="device files or folders of them")
    sp.set_defaults(func=cmd_validate)
    sp = dsub.add_parser("cores", help="the processor cores a device file may name")
    sp.set_defaults(func=cmd_cores)
    sp = dsub.add_parser("runtimes", help="the inference runtimes a device file may name")
    sp.set_defaults(func=cmd_runtimes)
    sp = dsub.add_parser("kinds", help="the connection kinds (one per registered runner), their "
                                       "options and defaults")
    sp.set_defaults(func=cmd_kinds)
    sp = dsub.add_parser("monitors", help="the power monitors an `energy:` block may name, "
                                          "their options and defaults")
    sp.set_defaults(func=cmd_monitors)
    sp = dsub.add_parser("schema", help="JSON Schema of a device file")
    sp.set_defaults(func=cmd_schema)
