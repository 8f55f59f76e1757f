"""Targets are data: targets/<name>.toml, loaded here. A file may `inherits` another; its
tables are merged key by key. Unknown keys are errors, so a typo never passes silently."""

from __future__ import annotations

import platform
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnq.ir import RnnqError
from rnnq.resources import targets_dir

_SCHEMA: dict[str, Any] = {
    "name": str, "description": str, "inherits": str,
    "isa": {"arch": str, "features": list},
    "kernels": {"matvec": str, "recurrent": str, "matvec_wide": str},
    "toolchain": {"cc": str, "ar": str, "size": str, "cflags": list, "ldflags": list},
    "firmware": {"cflags": list, "ldflags": list},
    "run": {"runner": str, "board": str, "command": list, "timeout_s": int},
    "budget": {"part": str, "flash_bytes": int, "ram_bytes": int},
}


_REQUIRED = {
    "isa": ("arch", "features"),
    "kernels": ("matvec",),
    "toolchain": ("cc", "ar", "size", "cflags", "ldflags"),
    "firmware": ("cflags", "ldflags"),
    "run": ("runner", "board", "command", "timeout_s"),
    "budget": ("part", "flash_bytes", "ram_bytes"),
}
#: kernel variants of the dot products (templates/c/runtime/rnnq_matvec_<variant>.c) and the ISA
#: features each needs (isa.features of the target must list them)
MATVEC_VARIANTS: dict[str, tuple[str, ...]] = {"ref": (), "arm_dsp": ("dsp",),
                                               "neon": ("neon", "dotprod"), "x86": ("avx2",),
                                               "mve": ("mve",), "arm_dsp_w16": ("dsp",)}
#: how the recurrent kernels are called (kernels.recurrent; rnnq_kernels.h): "vector", whole-
#: layer loops a compiler vectorises (scratch grows with 4H int32), or "fused", blocks of units
#: whose products are used at once (the LSTM's scratch stays small; for RAM-bound MCUs)
RECURRENT_PATHS = ("vector", "fused")
#: kernels.matvec_wide: the variant with pre-widened int16 weights the compiler may pick instead
#: of kernels.matvec (rnnq compile --weights; "" = none), twice the weight flash
WIDE_VARIANTS = ("arm_dsp_w16",)
RUNNERS = ("host", "qemu-system", "qemu-user")


@dataclass(frozen=True)
class Target:
    name: str
    data: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]


def available() -> list[str]:
    """Target names (files starting with _ are shared bases, not targets)."""
    return sorted(p.stem for p in targets_dir().glob("*.toml") if not p.stem.startswith("_"))


def _check(where: str, data: dict, schema: dict, prefix: str = "") -> None:
    for k, v in data.items():
        if k not in schema:
            raise RnnqError(f"{where}: unknown key '{prefix}{k}'")
        want = schema[k]
        if isinstance(want, dict):
            if not isinstance(v, dict):
                raise RnnqError(f"{where}: '{prefix}{k}' must be a table")
            _check(where, v, want, f"{prefix}{k}.")
        elif not isinstance(v, want):
            raise RnnqError(f"{where}: '{prefix}{k}' must be {want.__name__}")


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def load_target(name: str, _seen: tuple[str, ...] = ()) -> Target:
    path = targets_dir() / f"{name}.toml"
    if not path.is_file():
        raise RnnqError(f"--target {name!r}: unknown target (available: "
                        f"{', '.join(available())})")
    if name in _seen:
        raise RnnqError(f"{path}: inheritance cycle through {name!r}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise RnnqError(f"{path}: {e}") from None
    _check(str(path), data, _SCHEMA)
    if "inherits" in data:
        data = _merge(load_target(data["inherits"], _seen + (name,)).data, data)
        data.pop("inherits")
    if _seen:
        return Target(name, data)  # a base: checked when the target inheriting it is complete
    for table, keys in _REQUIRED.items():
        if table not in data:
            raise RnnqError(f"{path}: missing table [{table}]")
        missing = [k for k in keys if k not in data[table]]
        if missing:
            raise RnnqError(f"{path}: [{table}] lacks {', '.join(missing)}")
    if data["run"]["runner"] not in RUNNERS:
        raise RnnqError(f"{path}: run.runner must be one of {', '.join(RUNNERS)}")
    variant = data["kernels"]["matvec"]
    if variant not in MATVEC_VARIANTS:
        raise RnnqError(f"{path}: kernels.matvec must be one of {', '.join(MATVEC_VARIANTS)}")
    if data["kernels"].get("recurrent", "vector") not in RECURRENT_PATHS:
        raise RnnqError(f"{path}: kernels.recurrent must be one of {', '.join(RECURRENT_PATHS)}")
    wide = data["kernels"].get("matvec_wide", "")
    if wide and wide not in WIDE_VARIANTS:
        raise RnnqError(f"{path}: kernels.matvec_wide must be \"\" or one of "
                        f"{', '.join(WIDE_VARIANTS)}")
    for key, v in (("matvec", variant), ("matvec_wide", wide)):
        lacking = [f for f in MATVEC_VARIANTS.get(v, ()) if f not in data["isa"]["features"]]
        if lacking:
            raise RnnqError(f"{path}: kernels.{key} = {v!r} needs isa.features "
                            f"{', '.join(lacking)}")
    return Target(name, data)


def with_matvec(tgt: Target, variant: str) -> Target:
    """tgt with kernels.matvec = variant (the compiler's choice of its wide variant)."""
    return Target(tgt.name, {**tgt.data, "kernels": {**tgt.data["kernels"], "matvec": variant}})


#: where Linux says what the CPU has (the "flags" lines)
CPUINFO = Path("/proc/cpuinfo")


def host_cpu_lacks(tgt: Target) -> list[str]:
    """What an x86-64 target whose test program runs on the host (runner "host") needs and this
    machine lacks: its isa.features (spelt as Linux's cpuinfo flags) missing from cpuinfo, or
    the ISA itself on another machine; [] for other targets, or where cpuinfo cannot be read.
    (Run anyway, such a build dies of SIGILL.)"""
    if tgt["run"]["runner"] != "host" or not tgt["isa"]["arch"].startswith("x86-64"):
        return []
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return [tgt["isa"]["arch"]]
    try:
        text = CPUINFO.read_text()
    except OSError:
        return []
    flags = {f for line in text.splitlines() if line.startswith("flags") for f in line.split()}
    return [f for f in tgt["isa"]["features"] if f not in flags]
