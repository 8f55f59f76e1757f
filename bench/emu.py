"""Exact instruction counts of firmware functions on an emulated Cortex-M4 (unicorn).

Functions are called AAPCS-style: arguments in r0-r3, SP at the top of RAM, LR pointing at a
`bkpt` outside the image. Instructions are counted per translated block (UC_HOOK_BLOCK, with
capstone's count of the block's instructions): unicorn's per-instruction hook skips the
instructions of Thumb IT blocks (/work/shared/RECIPES.md). A conditional instruction that
fails its condition still counts, as it does in QEMU and in the core's pipeline.

`inclusive` entry points (e.g. the recurrent kernel) are also counted with their callees:
on entry LR holds the return address, and the block that starts there ends the call.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path

import capstone
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection
from unicorn import UC_ARCH_ARM, UC_HOOK_BLOCK, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
from unicorn.arm_const import (
    UC_ARM_REG_LR,
    UC_ARM_REG_PC,
    UC_ARM_REG_R0,
    UC_ARM_REG_R1,
    UC_ARM_REG_R2,
    UC_ARM_REG_R3,
    UC_ARM_REG_SP,
    UC_CPU_ARM_CORTEX_M4,
)

FLASH, FLASH_SIZE = 0x0, 0x400000  # mps2-an386 map, as the firmware is linked
RAM, RAM_SIZE = 0x20000000, 0x400000
HALT = 0x30000000  # one page holding `bkpt #0`: the return address of every call
_ARGS = (UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2, UC_ARM_REG_R3)


@dataclass
class Call:
    """What one call cost: instructions in total, inside each inclusive entry point (with its
    callees), and in each function's own code (exclusive, by the address of each block)."""

    instructions: int
    inclusive: dict[str, int] = field(default_factory=dict)
    exclusive: dict[str, int] = field(default_factory=dict)
    within: dict[str, dict[str, int]] = field(default_factory=dict)  # entry -> exclusive
    r0: int = 0


class M4:
    """One firmware image in a fresh unicorn Cortex-M4, ready for calls."""

    def __init__(self, elf_path: Path, inclusive: tuple[str, ...] = ()):
        self.symbols: dict[str, tuple[int, int]] = {}
        funcs: list[tuple[int, int, str]] = []
        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        self.uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M4)
        self.uc.mem_map(FLASH, FLASH_SIZE)
        self.uc.mem_map(RAM, RAM_SIZE)
        self.uc.mem_map(HALT, 0x1000)
        self.uc.mem_write(HALT, b"\x00\xbe")  # bkpt #0
        with open(elf_path, "rb") as f:
            elf = ELFFile(f)
            for seg in elf.iter_segments():
                if seg["p_type"] != "PT_LOAD" or seg["p_memsz"] == 0:
                    continue
                # Run-time addresses (VMA): .data is placed where crt0 would have copied it,
                # .bss is zero (fresh mappings are zero-filled).
                self.uc.mem_write(seg["p_vaddr"], seg.data())
            for sec in elf.iter_sections():
                if isinstance(sec, SymbolTableSection):
                    for s in sec.iter_symbols():
                        if s.name and s["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT"):
                            self.symbols[s.name] = (s["st_value"], s["st_size"])
                        if s.name and s["st_info"]["type"] == "STT_FUNC":
                            funcs.append((s["st_value"] & ~1, s["st_size"], s.name))
        self._funcs = sorted(funcs)
        self.functions = {f[2] for f in funcs}
        self._starts = [f[0] for f in self._funcs]
        self._cs = capstone.Cs(capstone.CS_ARCH_ARM,
                               capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)
        self._block_len: dict[tuple[int, int], tuple[int, str]] = {}
        self._entries = {self.addr(n): n for n in inclusive if n in self.symbols}
        self._count = 0
        self._open: dict[int, tuple[str, int]] = {}  # return address -> (entry, count at entry)
        self._incl: dict[str, int] = {}
        self._excl: dict[str, int] = {}
        self._within: dict[str, dict[str, int]] = {}
        self.uc.hook_add(UC_HOOK_BLOCK, self._on_block)

    def addr(self, name: str) -> int:
        """Address of a symbol (functions: without the Thumb bit)."""
        return self.symbols[name][0] & ~1

    def function_at(self, address: int) -> str:
        """The function symbol whose range holds address ("?" outside every function)."""
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0 and address < self._funcs[i][0] + max(self._funcs[i][1], 1):
            return self._funcs[i][2]
        return "?"

    def _on_block(self, uc: Uc, address: int, size: int, _user) -> None:
        known = self._block_len.get((address, size))
        if known is None:
            code = bytes(uc.mem_read(address, size))
            known = (sum(1 for _ in self._cs.disasm_lite(code, address)), self.function_at(address))
            self._block_len[(address, size)] = known
        n, func = known
        self._excl[func] = self._excl.get(func, 0) + n
        if address in self._open:  # back from an inclusive entry point
            name, start = self._open.pop(address)
            self._incl[name] = self._incl.get(name, 0) + self._count - start
        name = self._entries.get(address)
        if name is not None:
            self._open[uc.reg_read(UC_ARM_REG_LR) & ~1] = (name, self._count)
        if self._open:  # attribute to the innermost open entry point
            inner = self._within.setdefault(next(reversed(self._open.values()))[0], {})
            inner[func] = inner.get(func, 0) + n
        self._count += n

    def call(self, func: str, *args: int) -> Call:
        """Run func(args...) to its return; count what it executed."""
        uc = self.uc
        for reg, v in zip(_ARGS, args, strict=False):
            uc.reg_write(reg, v & 0xFFFFFFFF)
        uc.reg_write(UC_ARM_REG_SP, RAM + RAM_SIZE)
        uc.reg_write(UC_ARM_REG_LR, HALT | 1)
        self._count, self._open, self._incl, self._excl, self._within = 0, {}, {}, {}, {}
        uc.emu_start(self.addr(func) | 1, HALT)
        if uc.reg_read(UC_ARM_REG_PC) != HALT:
            raise RuntimeError(f"{func} stopped at {uc.reg_read(UC_ARM_REG_PC):#x}")
        if self._open:
            raise RuntimeError(f"{func}: calls to {sorted(self._open.values())} never returned")
        return Call(self._count, dict(self._incl), dict(self._excl), dict(self._within),
                    uc.reg_read(UC_ARM_REG_R0))

    def read_s8(self, name: str, n: int) -> list[int]:
        raw = bytes(self.uc.mem_read(self.addr(name), n))
        return [b - 256 if b > 127 else b for b in raw]
