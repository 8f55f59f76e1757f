"""Exact memory of a build on its target: flash from the cross-compiled objects' sizes, RAM
from the arena, the state and the deepest stack (-fstack-usage)."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from rnnq.backends.c import objcache
from rnnq.ir import RnnqError
from rnnq.targets import Target

#: the library's sources (the harness is not part of what users flash)
LIB_SOURCES = ("model.c", "weights.c", "rnnq_kernels.c")


def lib_sources(build: Path) -> list[str]:
    extra = sorted(p.name for p in build.glob("rnnq_matvec_*.c"))
    return [*LIB_SOURCES, *extra]


def _stack(su_files: list[Path], prefix: str) -> int:
    """Upper bound of the deepest call chain: the largest frame of each call level.

    Levels: the API entry (_step/_run), the model's internal step functions, a kernel, and
    the matvec/helper it calls (static helpers are inlined at -O2 and have no frame)."""
    frames: dict[str, int] = {}
    for su in su_files:
        for line in su.read_text().splitlines():
            m = re.match(r".*:\d+:\d+:([\w.]+)\s+(\d+)\s+([\w,]+)", line)
            if m:
                if m.group(3) not in ("static", "dynamic,bounded"):
                    raise RnnqError(f"{su.name}: {m.group(1)} has an unbounded stack frame")
                frames[m.group(1)] = max(frames.get(m.group(1), 0), int(m.group(2)))
    entry = max((v for k, v in frames.items() if k in (f"{prefix}_step", f"{prefix}_run")),
                default=0)
    inner = max((v for k, v in frames.items()
                 if k.startswith(prefix + "_") and k not in (f"{prefix}_step", f"{prefix}_run")),
                default=0)
    kernels = [v for k, v in frames.items() if k.startswith("rnnq_") and "matvec" not in k]
    leaves = [v for k, v in frames.items() if "matvec" in k]
    return entry + inner + max(kernels, default=0) + max(leaves, default=0)


def _setters(header: Path, prefix: str) -> list[str]:
    return re.findall(rf"\b({prefix}_set_\w+)\(", header.read_text())


def _compile(build: Path, src: str, target: Target, td: Path) -> Path:
    """The object of one library source with its stack usage file (.su) beside it: the
    runtime's from the object cache (objcache), the model's compiled into td."""
    tc = target["toolchain"]
    flags = [*tc["cflags"], "-fstack-usage"]
    if fnmatch.fnmatch(src, objcache.RUNTIME_SOURCES):
        obj = objcache.cached_object(build, src, tc["cc"], flags, aux=(".su",))
        if obj is not None:
            return obj
    obj = td / (src[:-2] + ".o")
    # Compiled from inside the build by its relative name: sanitizer and assert diagnostics
    # embed the source's path in the object, and a temporary folder's path would make the
    # measured size vary from compile to compile.
    r = subprocess.run([tc["cc"], *flags, "-c", src, "-o", str(obj)],
                       cwd=build, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        lines = r.stderr.strip().splitlines()
        msg = next((x for x in lines if "error" in x), lines[0] if lines else "compiler error")
        raise RnnqError(f"{src}: does not compile for {target.name}: {msg}")
    return obj


def measure(build: Path, target: Target, prefix: str) -> dict | None:
    """Cross-compile the library with the target's toolchain; None if it is not installed."""
    tc = target["toolchain"]
    if shutil.which(tc["cc"]) is None or shutil.which(tc["size"]) is None:
        return None
    with tempfile.TemporaryDirectory(prefix="rnnq-size-") as td:
        objs, su_files = [], []
        for src in lib_sources(build):
            obj = _compile(build, src, target, Path(td))
            objs.append(obj)
            su_files.append(obj.with_suffix(".su"))
        # What a firmware link keeps: the API and what it reaches (--gc-sections).
        linked = Path(td) / "lib_linked.o"
        roots = [f"-Wl,-u,{prefix}_{f}" for f in ("reset", "step", "run", "run_output_size")]
        roots += [f"-Wl,-u,{m}" for m in _setters(build / "model.h", prefix)]
        r = subprocess.run([tc["cc"], *tc["cflags"], "-nostdlib", "-no-pie", "-Wl,-r",
                            "-Wl,--gc-sections",
                            *roots, *map(str, objs), "-o", str(linked)],
                           capture_output=True, text=True, check=False)
        sized = [linked] if r.returncode == 0 else objs
        r = subprocess.run([tc["size"], "-B", *map(str, sized)], capture_output=True, text=True,
                           check=True)
        text = data = bss = 0
        for line in r.stdout.splitlines()[1:]:
            parts = line.split()
            text, data, bss = text + int(parts[0]), data + int(parts[1]), bss + int(parts[2])
        stack = _stack([f for f in su_files if f.is_file()], prefix)
    return {"flash_bytes": text + data, "static_ram_bytes": data + bss, "stack_bytes": stack,
            "toolchain": tc["cc"]}
