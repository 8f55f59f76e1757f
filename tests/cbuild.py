"""Compile C in tests: shared libraries for ctypes, executables, compile-only checks.

One place for compiler discovery and flags so every C-vs-simulator test builds the same way.
A missing compiler skips the test, except under CI=true where it fails (a CI image that lost
its compiler must not go green). Builds are cached per process by content hash, and so is
each source's object: a program or library is its objects linked, and a source that several of
them share (rnnq_kernels.c, under one compiler and flags) is compiled once per process.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_DIR = ROOT / "templates" / "c" / "runtime"

#: The house C flags: every runtime and generated file must compile cleanly with these.
STRICT_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")
#: AddressSanitizer + UndefinedBehaviorSanitizer, aborting on the first report.
SANITIZE_FLAGS = (
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
    "-g",
)
#: Environment for running sanitised executables (leak checks are noise for one-shot tests).
SANITIZE_ENV = {
    "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",
    "UBSAN_OPTIONS": "halt_on_error=1",
}


class CompileError(RuntimeError):
    """The compiler rejected the sources; the message carries its command line and stderr."""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def skip_or_fail(reason: str) -> None:
    """Skip the calling test, or fail it under CI=true."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)


def require_compiler(cc: str = "gcc") -> str:
    """Path of compiler `cc`; skips (or fails under CI) when it is not installed."""
    path = shutil.which(cc)
    if path is None:
        skip_or_fail(f"C compiler {cc!r} not found")
    return path


_build_dir: Path | None = None


def _default_dir() -> Path:
    global _build_dir
    if _build_dir is None:
        _build_dir = Path(tempfile.mkdtemp(prefix="rnnq-cbuild-"))
        atexit.register(shutil.rmtree, _build_dir, True)
    return _build_dir


def _digest(cc: str, sources: Sequence[Path], flags: Sequence[str], incs: Sequence[Path]) -> str:
    h = hashlib.sha256()
    h.update(cc.encode())
    for f in flags:
        h.update(b"\0" + f.encode())
    dirs = [*incs, *(Path(p).parent for p in sources)]  # (quoted includes: the source's folder)
    files = list(sources) + sorted({p for d in dirs for p in Path(d).glob("*.h")})
    for p in files:
        h.update(b"\0" + str(p).encode() + b"\0" + Path(p).read_bytes())
    return h.hexdigest()[:16]


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise CompileError(f"{' '.join(cmd)}\n{proc.stderr}{proc.stdout}")


def _build(
    kind: str,
    sources: Iterable[str | os.PathLike],
    flags: Sequence[str],
    cc: str,
    include_dirs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike | None,
) -> Path:
    exe = require_compiler(cc)
    srcs = [Path(s).resolve() for s in sources]
    incs = [Path(d).resolve() for d in include_dirs]
    out = Path(out_dir) if out_dir is not None else _default_dir()
    out.mkdir(parents=True, exist_ok=True)
    suffix = {"shared": ".so", "exe": "", "objects": ".d"}[kind]
    target = out / f"{kind}-{cc}-{_digest(cc, srcs, flags, incs)}{suffix}"
    if target.exists():
        return target
    inc_flags = [f"-I{d}" for d in incs]
    if kind == "objects":
        target.mkdir()
        for i, s in enumerate(srcs):
            _run([exe, *flags, *inc_flags, "-c", str(s), "-o", str(target / f"{i}-{s.stem}.o")])
        return target
    pic = ["-fPIC"] if kind == "shared" else []
    objs = [s if s.suffix == ".o" else _object(exe, cc, s, [*pic, *flags], incs) for s in srcs]
    link = ["-shared", *pic] if kind == "shared" else []
    tmp = target.with_name(target.name + ".tmp")
    _run([exe, *link, *flags, *map(str, objs), "-o", str(tmp)])
    tmp.replace(target)
    return target


def _object(exe: str, cc: str, src: Path, flags: Sequence[str], incs: Sequence[Path]) -> Path:
    """src compiled (-c) once per process per compiler, flags, text and headers."""
    obj = _default_dir() / f"obj-{cc}-{_digest(cc, [src], flags, incs)}-{src.stem}.o"
    if not obj.exists():
        tmp = obj.with_name(obj.stem + ".tmp.o")
        _run([exe, *flags, *(f"-I{d}" for d in incs), "-c", str(src), "-o", str(tmp)])
        tmp.replace(obj)
    return obj


def compile_shared(
    sources: Iterable[str | os.PathLike],
    flags: Sequence[str] = (),
    *,
    cc: str = "gcc",
    include_dirs: Sequence[str | os.PathLike] = (RUNTIME_DIR,),
    out_dir: str | os.PathLike | None = None,
) -> Path:
    """Build a shared library (-shared -fPIC) for ctypes and return its path."""
    return _build("shared", sources, flags, cc, include_dirs, out_dir)


def compile_executable(
    sources: Iterable[str | os.PathLike],
    flags: Sequence[str] = (),
    *,
    cc: str = "gcc",
    include_dirs: Sequence[str | os.PathLike] = (RUNTIME_DIR,),
    out_dir: str | os.PathLike | None = None,
) -> Path:
    """Build an executable (for sanitiser runs, which cannot be dlopen-ed into Python)."""
    return _build("exe", sources, flags, cc, include_dirs, out_dir)


def compile_objects(
    sources: Iterable[str | os.PathLike],
    flags: Sequence[str] = STRICT_FLAGS,
    *,
    cc: str = "gcc",
    include_dirs: Sequence[str | os.PathLike] = (RUNTIME_DIR,),
    out_dir: str | os.PathLike | None = None,
) -> Path:
    """Compile each source to an object file (a compile-only check); returns their folder."""
    return _build("objects", sources, flags, cc, include_dirs, out_dir)


def compile_object(
    source: str | os.PathLike,
    flags: Sequence[str] = STRICT_FLAGS,
    *,
    cc: str = "gcc",
    include_dirs: Sequence[str | os.PathLike] = (RUNTIME_DIR,),
) -> Path:
    """One source's object, compiled once per process per compiler, flags, text and headers:
    for a source that several programs link (rnnq_kernels.c under one core's flags)."""
    exe = require_compiler(cc)
    incs = [Path(d).resolve() for d in include_dirs]
    return _object(exe, cc, Path(source).resolve(), list(flags), incs)


def sanitizers_work(cc: str = "gcc") -> bool:
    """Whether `cc` can build and run a program with SANITIZE_FLAGS here."""
    require_compiler(cc)
    out = _default_dir()
    src = out / "sanitize_probe.c"
    src.write_text("int main(void) { return 0; }\n")
    try:
        exe = compile_executable([src], SANITIZE_FLAGS, cc=cc, include_dirs=())
    except CompileError:
        return False
    env = {**os.environ, **SANITIZE_ENV}
    proc = subprocess.run([str(exe)], capture_output=True, env=env, check=False)
    return proc.returncode == 0
