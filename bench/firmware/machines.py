"""The QEMU machines edgebench emulates, with the core each runs and its memory map.

Addresses are QEMU's (``info mtree`` of ``qemu-system-arm`` 7.2): code and data in the
machine's SRAMs, the CMSDK UART0 for the serial protocol, SysTick on the CPU clock for time.
TrustZone machines (AN505, AN547) boot in the secure state, so their secure aliases are used.
Under ``-icount shift=0`` the virtual clock advances 1 ns per instruction: a timer read by the
firmware counts instructions, whatever the core's real clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.errors import unknown


@dataclass(frozen=True)
class Region:
    origin: int
    size: int


@dataclass(frozen=True)
class Machine:
    name: str  # qemu-system-arm -M
    core: str  # edgebench core name (bench.devices.cores)
    tflm_arch: str  # TFLite Micro TARGET_ARCH of the cortex_m_generic target
    device: str  # Cortex_DFP device folder and define (ARMCM4, …)
    code: Region  # flash stand-in: vector table, code and read-only data
    ram: Region  # data, bss, heap and stack
    uart: int  # CMSDK APB UART0 base
    sysclk_hz: int  # SysTick's clock (the CPU clock) in virtual time
    description: str = ""
    #: where the reset vector table must be when it is not the start of ``code``
    vectors: int | None = None


#: The MPS2 FPGA images without TrustZone (AN385, AN386, AN500) share one memory map and clock.
_MPS2 = {"code": Region(0x0, 0x400000), "ram": Region(0x20000000, 0x400000),
         "uart": 0x40004000, "sysclk_hz": 25_000_000}

MACHINES: dict[str, Machine] = {m.name: m for m in (
    Machine("mps2-an385", "cortex-m3", "cortex-m3", "ARMCM3", **_MPS2,
            description="Arm MPS2 AN385: Cortex-M3 (no DSP, no FPU)"),
    Machine("mps2-an386", "cortex-m4f", "cortex-m4+fp", "ARMCM4", **_MPS2,
            description="Arm MPS2 AN386: Cortex-M4 with FPU"),
    Machine("mps2-an500", "cortex-m7", "cortex-m7+fp", "ARMCM7", **_MPS2,
            description="Arm MPS2 AN500: Cortex-M7 with FPU (no caches modelled)"),
    Machine("mps2-an505", "cortex-m33", "cortex-m33", "ARMCM33",
            Region(0x10000000, 0x400000), Region(0x38000000, 0x400000), 0x50200000,
            20_000_000, "Arm MPS2 AN505: Cortex-M33 with FPU and DSP (secure state)"),
    Machine("mps3-an547", "cortex-m55", "cortex-m55", "ARMCM55",
            Region(0x11000000, 0x200000), Region(0x31000000, 0x400000), 0x59303000,
            32_000_000, "Arm MPS3 AN547: Cortex-M55 with Helium (MVE) and FPU (secure state)",
            vectors=0x10000000),
)}

#: The machine emulating each core (a device file may name another with ``machine``).
DEFAULT_MACHINE: dict[str, str] = {m.core: m.name for m in MACHINES.values()}


def get_machine(name: str) -> Machine:
    """The machine called ``name``; a KeyError naming the closest known one."""
    if name in MACHINES:
        return MACHINES[name]
    raise KeyError(unknown("QEMU machine", name, MACHINES))
