"""One model, one kernel variant: compile with rnnq, build the M4 firmware, count, check.

Variants:
- "ref": `--target generic-c99` (rnnq's portable kernels), cross-compiled with the cortex-m4
  flags; flash/RAM measured the way `rnnq compile` measures them, with the cortex-m4 toolchain.
- "dsp": `--target cortex-m4 --weights int8` (its matvec variant `arm_dsp`: int8 weights
  widened by SXTB16); flash/RAM from its manifest.json. Only when the build holds a matvec file
  other than the portable one.
- "dsp16": `--target cortex-m4 --weights int16` (`arm_dsp_w16`: int16 weights pre-widened
  offline, twice the weight flash; what `--weights auto` picks when the constants then take at
  most half the flash budget, as for every bench model).
- "dsp16+r16": "dsp16" with 16-bit recurrent weights (`--precision int8+r16` for the LSTM,
  `int16+r16` for the GRU: the state widths of the defaults): R as two int8 matrices, so the
  recurrent product runs twice; what `--precision auto` adds to a layer whose output needs it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import emu
import firmware
import numpy as np
from models import BenchModel, write

from rnnq import api
from rnnq.api import open_graphs
from rnnq.backends.c.memory import measure as measure_memory
from rnnq.build_folder import MANIFEST
from rnnq.sim.integer import quantize_input, run_integer
from rnnq.targets import load_target

T = 50
STEADY = slice(10, T)  # steps 11..50
PREFIX = "m"
#: variant -> (target, --weights)
VARIANT_TARGET = {"ref": ("generic-c99", "auto"), "dsp": ("cortex-m4", "int8"),
                  "dsp16": ("cortex-m4", "int16"), "dsp16+r16": ("cortex-m4", "int16")}
#: variant -> --precision by layer kind (the others: auto)
VARIANT_PRECISION = {"dsp16+r16": {"lstm": "int8+r16", "gru": "int16+r16"}}


@dataclass
class Result:
    model: BenchModel
    variant: str
    matvec_files: list[str]
    step: list[int]  # instructions of m_step, per step 1..T
    layer: list[int]  # ... of them inside the recurrent kernel (with its callees)
    layer_matvec: list[int]  # ... of those inside rnnq_matvec_* functions
    head: list[int]  # ... inside the Linear head's kernel (with its callees)
    reset: int
    matvec_called: list[str]  # rnnq_matvec_* functions that m_step executed
    flash: int
    ram: int
    code: int  # rnnq's functions (rnnq_*, m_*) linked into the firmware
    layer_code: int  # bytes of the functions the recurrent kernel call executed (itself included)
    tables: int  # rnnq's constant tables (rnnq_*) linked into the firmware
    macs: int  # recurrent MACs per step (manifest macs_per_step minus the head)
    outputs_match: bool
    y_last: list[int]  # y after step T
    elf: Path = field(repr=False, default=Path())

    @property
    def step_mean(self) -> float:
        return float(np.mean(self.step[STEADY]))

    @property
    def layer_mean(self) -> float:
        return float(np.mean(self.layer[STEADY]))

    @property
    def layer_matvec_mean(self) -> float:
        return float(np.mean(self.layer_matvec[STEADY]))

    @property
    def head_mean(self) -> float:
        return float(np.mean(self.head[STEADY]))


def bench_input(m: BenchModel) -> np.ndarray:
    """The fixed float input x [1, T, I]: standard normal, like the calibration data."""
    return np.random.default_rng(m.seed + 2).standard_normal((1, T, m.inp)).astype(np.float32)


def compile_variant(m: BenchModel, work: Path, variant: str) -> Path:
    """work/<model>/build_<variant>/ from the model's ONNX and calibration data."""
    onnx_path, calib = write(m, work / m.name)
    build = work / m.name / f"build_{variant.replace('+', '_')}"
    target, weights = VARIANT_TARGET[variant]
    precision = VARIANT_PRECISION.get(variant, {}).get(m.kind, "auto")
    api.compile_model(onnx_path, calib, build, target, PREFIX, weights=weights,
                      precision=precision,
                      output_bits=8)  # the int8 head (rnnq_dense_s8) CMSIS-NN is compared with
    return build


def matvec_files(build: Path) -> list[str]:
    return sorted(p.name for p in build.glob("rnnq_matvec_*.c"))


def has_dsp_kernels(build: Path) -> bool:
    return any(f != "rnnq_matvec_ref.c" for f in matvec_files(build))


def _memory(build: Path, manifest: dict) -> tuple[int, int]:
    """(flash, RAM) on the M4 as manifest.json's target_memory defines them."""
    tm = manifest["target_memory"]
    if manifest["target"] != firmware.FIRMWARE_TARGET or not tm.get("measured"):
        m = measure_memory(build, load_target(firmware.FIRMWARE_TARGET), PREFIX)
        mem = manifest["memory"]
        tm = {"flash_bytes": m["flash_bytes"],
              "ram_bytes": (mem["arena_bytes"] + mem["state_bytes"] + m["stack_bytes"]
                            + m["static_ram_bytes"])}
    return tm["flash_bytes"], tm["ram_bytes"]


def _code_bytes(m4: emu.M4) -> tuple[int, int]:
    """(code, tables) of rnnq in the firmware: the functions named rnnq_* and <prefix>_*; the
    rnnq_* constant tables. Weights and params (<prefix>_* objects) are not counted."""
    code = tables = 0
    for name, (_, size) in m4.symbols.items():
        if name in m4.functions and name.startswith(("rnnq_", PREFIX + "_")):
            code += size
        elif name.startswith("rnnq_"):
            tables += size
    return code, tables


def _kernel(build: Path, kind: str) -> str:
    """The recurrent step function the build calls (rnnq_<kind>_step_s8 / _x16, + _h16, + _hi
    or _fused: the C backend's choice), read from its model.c."""
    (name,) = set(re.findall(rf"\b(rnnq_{kind}_step_\w+)\(", (build / "model.c").read_text()))
    return name


def run(m: BenchModel, build: Path, variant: str) -> Result:
    manifest = json.loads((build / MANIFEST).read_text())
    ig = open_graphs(build)[2]
    xq = quantize_input(ig, bench_input(m))  # [1, T, 1, I]
    expected = run_integer(ig, xq)[ig.outputs[0]].reshape(T, -1)
    elf = firmware.build_elf(build, xq.reshape(T, m.inp), build / "bench.elf")
    kernel = _kernel(build, m.kind)
    head = "rnnq_dense_s8"
    m4 = emu.M4(elf, inclusive=(kernel, head))
    st, arena, y, x = (m4.addr(s) for s in ("bench_st", "bench_arena", "bench_y", "bench_x"))
    reset = m4.call("m_reset", st).instructions
    step, layer, layer_mv, head_n, ys = [], [], [], [], []
    called: set[str] = set()
    in_layer: set[str] = {kernel}
    for t in range(T):
        c = m4.call("m_step", st, x + t * m.inp * xq.dtype.itemsize, y, arena)
        if c.r0 != 0:
            raise RuntimeError(f"{m.name}/{variant}: m_step returned {c.r0} at step {t + 1}")
        step.append(c.instructions)
        layer.append(c.inclusive[kernel])
        head_n.append(c.inclusive[head])
        layer_mv.append(sum(n for f, n in c.within.get(kernel, {}).items()
                            if f.startswith("rnnq_matvec")))
        called |= {f for f in c.exclusive if f.startswith("rnnq_matvec")}
        in_layer |= set(c.within.get(kernel, {}))
        ys.append(m4.read_s8("bench_y", expected.shape[1]))
    macs = manifest["macs_per_step"] - m.head_macs
    if macs != m.recurrent_macs:
        raise RuntimeError(f"{m.name}: manifest MACs {macs} != {m.recurrent_macs}")
    flash, ram = _memory(build, manifest)
    code, tables = _code_bytes(m4)
    return Result(m, variant, matvec_files(build), step, layer, layer_mv, head_n, reset,
                  sorted(called), flash, ram, code,
                  sum(m4.symbols[f][1] for f in in_layer if f in m4.symbols), tables, macs,
                  bool(np.array_equal(np.array(ys), expected)), ys[-1], elf)
