"""C backend, emission: integer IR + target -> the build's C files (model.h, model.c,
weights.c, harness.c, Makefile, CMakeLists.txt and the verbatim runtime), as bytes.

`plan.py` decides what goes where; this module fills the templates' context and renders them.
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import numpy as np

from rnnq.backends.c.arena import ALIGN
from rnnq.backends.c.packages import EXAMPLE_STEPS, check_packages, package_files
from rnnq.backends.c.plan import Plan, plan, state_bytes
from rnnq.ir import Graph, RnnqError
from rnnq.resources import templates_dir
from rnnq.targets import Target
from rnnq.version import __version__

#: generated file -> its template in templates/c
TEMPLATES = {"model.h": "model.h.j2", "model.c": "model.c.j2", "weights.c": "weights.c.j2",
             "harness.c": "harness.c.j2", "Makefile": "Makefile.j2",
             "CMakeLists.txt": "CMakeLists.txt.j2"}
#: CMake toolchain file of builds for a cross compiler (templates/c/toolchain.cmake.j2)
TOOLCHAIN_FILE = "toolchain.cmake"
#: compiler name prefix -> (CMAKE_SYSTEM_NAME, CMAKE_SYSTEM_PROCESSOR); host compilers have none
_CROSS = {"arm-none-eabi-": ("Generic", "arm"), "aarch64-linux-gnu-": ("Linux", "aarch64"),
          "riscv64-unknown-elf-": ("Generic", "riscv32")}
#: the verbatim runtime every build gets (templates/c/runtime), besides its matvec variant
RUNTIME_FILES = ("rnnq_fixedpoint.h", "rnnq_tables.h", "rnnq_kernels.h", "rnnq_kernels.c")


#: C99 guarantees 31 significant characters in external names; the prefix leaves room for
#: "_set_<state>" and the like after it.
MAX_PREFIX = 24


def check_prefix(prefix: str) -> None:
    """The prefix of every C name of a build: an identifier of at most MAX_PREFIX characters."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):
        raise RnnqError(f"--prefix {prefix!r} is not a C identifier")
    if len(prefix) > MAX_PREFIX:
        raise RnnqError(f"--prefix: {len(prefix)} characters, more than {MAX_PREFIX} (the "
                        "names it starts must stay distinct for every C compiler and linker)")


def comment_text(s: object) -> str:
    """Text from the model (names) made safe inside a C block comment: ASCII, no control
    characters, no comment terminator and no comment opener (-Wcomment)."""
    t = str(s).encode("ascii", "backslashreplace").decode("ascii")
    t = re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", t)
    return t.replace("*/", "*\\/").replace("/*", "/\\*")


def runtime_files(target: Target) -> list[str]:
    """The verbatim runtime a build gets: the kernels and the target's matvec variant."""
    files = list(RUNTIME_FILES)
    variant = templates_dir() / "c" / "runtime" / f"rnnq_matvec_{target['kernels']['matvec']}.c"
    if variant.is_file():
        files += ["rnnq_matvec.h", variant.name]
    return files


def _context(graph: Graph, target: Target, prefix: str, p: Plan, io: dict) -> dict:
    outs = []
    off = 0
    run_off = "0"  # C expression: where this output starts in _run's y
    y_ctype = output_ctype(graph)
    for name in graph.outputs:
        t = graph.tensors[name]
        # y holds values of y_ctype: an int8 output in a 16-bit y is widened value by value
        outs.append({"name": name, "loc": p.loc[name][0], "size": t.size,
                     "seq": t.kind == "seq", "offset": off, "run_offset": run_off,
                     "q": io["outputs"][len(outs)], "bits": 16 if t.dtype == "int16" else 8,
                     "bytes": t.size * (2 if y_ctype == "int16_t" else 1),
                     "widen": y_ctype == "int16_t" and t.dtype != "int16"})
        off += t.size
        run_off += f" + (int32_t)n_steps * {t.size}" if t.kind == "seq" else f" + {t.size}"
    p.state.sort(key=lambda e: {"int32_t": 0, "int16_t": 1}.get(e[0], 2))  # no inner padding
    xin = graph.tensors[graph.inputs[0]]
    meta = graph.meta
    return {
        "version": __version__, "target": target.name, "prefix": prefix, "PREFIX": prefix.upper(),
        "model_hash": meta.get("model_sha256", "")[:16], "model_name": meta.get("model_path", ""),
        "input_size": xin.size, "input_ctype": {"int64": "int32_t", "int16": "int16_t"}.get(xin.dtype, "int8_t"),
        "output_size": off, "outputs": outs, "output_ctype": y_ctype,
        "arena_bytes": max(p.arena_bytes, ALIGN), "state_bytes": state_bytes(p),
        "state": p.state, "resets": p.resets, "core": p.core, "head": p.head, "whole": p.whole,
        "streaming": p.streaming, "max_steps": p.max_steps,
        "arrays": p.arrays, "structs": p.structs, "input_q": io["input"],
        "setters": p.setters, "state_formats": io.get("states", {}),
        "cc": target["toolchain"]["cc"], "ar": target["toolchain"]["ar"],
        "cflags": " ".join(target["toolchain"]["cflags"]),
        **_cmake_system(target["toolchain"]["cc"]),
        "ldflags": " ".join(target["toolchain"]["ldflags"]),
        "fw_cflags": " ".join(target["firmware"]["cflags"]),
        "fw_ldflags": " ".join(target["firmware"]["ldflags"]),
        "board": target["run"]["board"],
        "lib_sources": ["model.c", "weights.c",
                        *[f for f in runtime_files(target) if f.endswith(".c")]],
        "runtime_headers": [f for f in runtime_files(target) if f.endswith(".h")],
    }


def output_ctype(graph: Graph) -> str:
    """The C type of the values in y: int16_t when any output is int16 (--output-bits)."""
    return ("int16_t" if any(graph.tensors[o].dtype == "int16" for o in graph.outputs)
            else "int8_t")


def _cmake_system(cc: str) -> dict:
    for prefix, (system, proc) in _CROSS.items():
        if Path(cc).name.startswith(prefix):
            return {"cmake_system": system, "cmake_processor": proc}
    return {"cmake_system": None, "cmake_processor": None}


def emit_c(graph: Graph, target: Target, prefix: str, io: dict, max_steps: int,
           packages: tuple[str, ...] = (), example: np.ndarray | None = None
           ) -> tuple[dict[str, bytes], dict]:
    """The C files of integer graph `graph` for `target` (name -> bytes), and facts about them
    for manifest.json (memory, schedule); with `packages`, their files too (`example`: input
    codes [T, F] of a test sequence the Arduino sketch streams)."""
    check_prefix(prefix)
    check_packages(packages)
    p = plan(graph, prefix, max_steps, target["kernels"]["matvec"],
             target["kernels"].get("recurrent", "vector"))
    ctx = _context(graph, target, prefix, p, io)
    ctx["packages"] = list(packages)
    if example is not None:
        seq = example[:EXAMPLE_STEPS] if p.streaming else example[: min(EXAMPLE_STEPS,
                                                                        p.max_steps)]
        ctx.update(sequence=seq.astype(np.int64).tolist(), steps=len(seq),
                   run_output_values=sum(o["size"] * (len(seq) if o["seq"] else 1)
                                         for o in ctx["outputs"]))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir() / "c")),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["comment"] = comment_text
    env.tests["search"] = lambda s, pat: re.search(pat, s) is not None
    files = {out: env.get_template(tpl).render(**ctx).encode()
             for out, tpl in TEMPLATES.items()}
    if ctx["cmake_system"]:  # a cross compiler: a CMake toolchain file for it
        files[TOOLCHAIN_FILE] = env.get_template("toolchain.cmake.j2").render(**ctx).encode()
    for f in runtime_files(target):
        files[f] = (templates_dir() / "c" / "runtime" / f).read_bytes()
    if packages:
        files.update(package_files(packages, env, ctx, files))
    facts = {"weight_bytes": sum(a.nbytes for a in p.arrays),
             "arena_bytes": ctx["arena_bytes"], "state_bytes": ctx["state_bytes"],
             "input_size": ctx["input_size"], "output_size": ctx["output_size"],
             "output_ctype": ctx["output_ctype"],
             "streaming": p.streaming, "max_steps": p.max_steps}
    return files, facts
