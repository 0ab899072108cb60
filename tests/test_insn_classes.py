"""Edgebench's QEMU TCG plugin: a bare-metal firmware whose instruction mix is known by
construction (built with the Arm toolchain), run in qemu-system-arm with the plugin loaded; and
a plugin that does not build or load leaves QEMU running without it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from bench.firmware import classes
from bench.firmware.emulator import boot
from bench.firmware.library import TOOL_PREFIX
from bench.firmware.machines import MACHINES

N = 1000
#: One loop iteration: each class by construction, memory accesses in flash and SRAM, a
#: conditional branch never taken (beq) and one taken but on the last iteration (bne).
LOOP = """
  .syntax unified
  .cpu cortex-m4
  .fpu fpv4-sp-d16
  .thumb
  .text
  .word 0x20010000          @ initial stack pointer
  .word _start              @ reset vector
  .thumb_func
  .global _start
_start:
  ldr r0, =0xE000ED88       @ CPACR: enable the FPU
  ldr r1, [r0]
  orr r1, r1, #(0xF << 20)
  str r1, [r0]
  dsb
  isb
  ldr r4, =%(n)d
  ldr r5, =0x20000100       @ SRAM
  ldr r6, =flash_word       @ flash
  movs r2, #3
  movs r3, #1
  bl eb_invoke_begin
loop:
  smlad r0, r1, r2, r0      @ multiply
  mla r3, r1, r2, r3        @ multiply
  sadd16 r7, r1, r2         @ simd
  uadd8 r7, r1, r2          @ simd
  pkhbt r7, r1, r2, lsl #16 @ simd
  sdiv r7, r1, r2           @ divide
  vadd.f32 s0, s0, s1       @ fp
  ldr r7, [r5]              @ load_store, an SRAM read
  ldr r7, [r6]              @ load_store, a flash read
  str r7, [r5, #4]          @ load_store, an SRAM write
  push {r0, r1}             @ load_store_multiple, two SRAM writes
  pop {r0, r1}              @ load_store_multiple, two SRAM reads
  cmp r4, #0                @ other
  beq never                 @ branch, never taken
  subs r4, r4, #1           @ other
  bne loop                  @ branch, taken but the last time
  bl eb_invoke_end
done:
  b done
never:
  b never
  .thumb_func
  .global eb_invoke_begin
eb_invoke_begin:
  bx lr
  .thumb_func
  .global eb_invoke_end
eb_invoke_end:
  bx lr
  .ltorg
flash_word:
  .word 42
"""
MACHINE = MACHINES["mps2-an386"]


@pytest.fixture(scope="module")
def loop_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("loop")
    (folder / "loop.S").write_text(LOOP % {"n": N})
    subprocess.run([f"{TOOL_PREFIX}gcc", "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16",
                    "-mfloat-abi=hard", "-nostdlib", "-Wl,-Ttext=0x0", "-Wl,-e,_start",
                    str(folder / "loop.S"), "-o", str(folder / "loop.elf")], check=True)
    return folder / "loop.elf"


@pytest.fixture(scope="module")
def plugin_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("firmware-cache")
        mp.setenv("EDGEBENCH_FIRMWARE_CACHE", str(root))
        yield root


def _counts(elf: Path, out: Path, plugin: str) -> tuple[dict, str | None]:
    with boot(elf, MACHINE, plugin) as emulator:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if out.exists() and classes.read_counts(out)["invokes"] >= 1:
                break
            time.sleep(0.05)
        return classes.read_counts(out), emulator.plugin_error


def test_the_plugin_counts_a_known_mix_by_class(loop_elf: Path, plugin_cache: Path,
                                                tmp_path: Path) -> None:
    library = classes.plugin_library()
    assert library.is_relative_to(plugin_cache) and classes.plugin_library() == library
    assert classes.markers(loop_elf) == {"eb_invoke_begin": 0x60, "eb_invoke_end": 0x62}
    out = tmp_path / "counts.json"
    counts, error = _counts(loop_elf, out, classes.plugin_option(loop_elf, MACHINE, out))
    assert error is None and counts["invokes"] == 1 and counts["memory"]
    per = classes.per_inference(counts)
    # between the markers: N iterations, plus the return from eb_invoke_begin (bx lr) and the
    # call of eb_invoke_end (bl); the marked instructions are counted once between the two
    assert per["classes"] == {"load_store": 3 * N, "load_store_multiple": 2 * N,
                              "multiply": 2 * N, "simd": 3 * N, "fp": N, "mve": 0, "divide": N,
                              "branch": 2 * N + 2, "other": 2 * N}
    assert per["instructions"] == 16 * N + 2
    # bne taken N - 1 times, beq never; the bx lr and the bl into eb_invoke_end are taken
    assert per["branch_taken"] == N + 1
    assert per["memory"] == {"flash_read": N, "flash_write": 0, "sram_read": 3 * N,
                             "sram_write": 3 * N, "other_read": 0, "other_write": 0}
    # the whole run: also the set-up before the markers (CPACR is neither flash nor SRAM)
    assert counts["total"]["other_read"] == counts["total"]["other_write"] == 1


def test_memory_counting_can_be_left_out(loop_elf: Path, plugin_cache: Path,
                                         tmp_path: Path) -> None:
    out = tmp_path / "counts.json"
    counts, _ = _counts(loop_elf, out, classes.plugin_option(loop_elf, MACHINE, out,
                                                              memory=False))
    per = classes.per_inference(counts)
    assert "memory" not in per and per["instructions"] == 16 * N + 2


def test_a_plugin_that_does_not_build_says_why(plugin_cache: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "insn_classes.c"
    broken.write_text(classes.SOURCE.read_text().replace("static int classify16",
                                                         "static int classify16 oops"))
    with pytest.raises(classes.PluginError, match="does not build with cc: .*oops"):
        classes.plugin_library(broken)
    monkeypatch.setenv("CC", "no-such-compiler")
    with pytest.raises(classes.PluginError, match="no host C compiler"):
        classes.plugin_library()


def test_a_plugin_qemu_cannot_load_leaves_it_running_without(loop_elf: Path,
                                                             tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.so"
    bogus.write_text("not a shared library")
    with boot(loop_elf, MACHINE, f"{bogus},out={tmp_path / 'x.json'}") as emulator:
        assert emulator.port and emulator.process.poll() is None and emulator.plugin is None
        assert emulator.plugin_error and "did not start with the plugin" in emulator.plugin_error
        assert "bogus.so" in emulator.plugin_error
