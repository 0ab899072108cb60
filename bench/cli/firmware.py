"""``edgebench firmware TARGET --device ID [--out DIR]``: the firmware a board would flash."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from bench.artifacts.cache import Cache
from bench.cli.args import add_cache, add_devices_dir, add_model_target, add_results


def cmd_firmware(args: argparse.Namespace) -> int:
    from bench.devices.device import find_device, search_dirs
    from bench.firmware.image import build_for_device
    from bench.results.resolve import resolve
    from bench.results.store import Store
    from bench.runners.qemu import machine_name

    found = resolve(args.target, Store(Path(args.results)), Cache(args.cache), args.run)
    device = find_device(args.device, search_dirs(args.devices_dir))
    options = device.options if device.connection.kind == "qemu" else (device.emulate or {})
    machine = machine_name(device.model_dump(mode="json"), options)
    built = build_for_device(found.tflite, machine, device.memory.flash_kb,
                             device.memory.ram_kb, found.source)
    folder = built.folder
    if args.out is not None:
        shutil.copytree(built.folder, args.out, dirs_exist_ok=True)
        folder = args.out
    print(f"{found.source} on {device.id} ({machine}, {device.core}): "
          f"flash {built.flash_used:,} B, RAM {built.ram_used:,} B, arena {built.arena_size:,} B "
          f"(TFLite Micro used {built.arena_used:,} B; x86-64: {built.arena_x86 or '–'} B)")
    print(f"project: {folder} (`make -C {folder}` builds firmware.elf, `make -C {folder} run` "
          "boots it in QEMU; the board-specific part is named in its Makefile)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``edgebench firmware`` to the CLI."""
    sp = sub.add_parser("firmware", help="build the TFLite Micro + CMSIS-NN firmware of a model "
                                         "for a device's core (its project folder)")
    add_model_target(sp)
    sp.add_argument("--device", required=True,
                    help="a device with a qemu connection or an `emulate` target")
    sp.add_argument("--out", type=Path, default=None,
                    help="copy the project folder here (default: print where it is cached)")
    sp.add_argument("--run", help="run id, id prefix or suite/run_id (default: the latest)")
    add_devices_dir(sp)
    add_results(sp)
    add_cache(sp)
    sp.set_defaults(func=cmd_firmware)
