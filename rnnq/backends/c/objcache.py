"""Compiled runtime objects kept between builds, per user.

The runtime's sources (RUNTIME_SOURCES) are the same for every model of one rnnq version, so
their objects are compiled once per compiler, flags and source text (the build's headers they
include too) and reused: by validate's test harness and by the flash/RAM measurement of every
`rnnq compile`. The cache is $RNNQ_CACHE, else $XDG_CACHE_HOME/rnnq or ~/.cache/rnnq (objects/
inside); RNNQ_CACHE=off, or a folder that cannot be made, turns it off."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

#: The runtime's sources: the same for every model of one rnnq version (model.c and
#: weights.c are the model's).
RUNTIME_SOURCES = "rnnq_*.c"


def cache_dir() -> Path | None:
    """The objects folder of the cache (made if absent), or None when the cache is off."""
    env = os.environ.get("RNNQ_CACHE")
    if env == "off":
        return None
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME") or
                                      Path.home() / ".cache") / "rnnq"
    try:
        (base / "objects").mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return base / "objects"


@functools.lru_cache(maxsize=16)
def _compiler_id(cc: str) -> str:
    """The compiler's path and what it says of its version (a new compiler: new objects)."""
    path = shutil.which(cc) or cc
    r = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    return f"{path}\n{r.stdout}"


def _with_includes(folder: Path, name: str, seen: set[str]) -> bytes:
    """A source's text and, recursively, that of the quoted headers of `folder` it includes."""
    if name in seen or not (folder / name).is_file():
        return b""
    seen.add(name)
    text = (folder / name).read_bytes()
    inc = re.findall(rb'#\s*include\s+"([^"]+)"', text)
    return b"\0".join([name.encode(), text, *(_with_includes(folder, i.decode(), seen)
                                             for i in inc)])


def cached_object(folder: Path, name: str, cc: str, cflags: Sequence[str],
                  aux: Sequence[str] = ()) -> Path | None:
    """The object of `cc cflags -c name` run inside `folder`, from the cache (compiled into it
    first if absent); the files the compiler writes beside it (`aux` suffixes, e.g. ".su" of
    -fstack-usage) are kept with it under the same stem. The source is compiled by its
    relative name, as a build compiles it, so that the object is the build's own.

    None (the caller compiles it itself, and says why if it fails) without a cache, when the
    compiler is a placeholder, or when the source does not compile or writes no aux file."""
    cache = cache_dir()
    if cache is None or cc.startswith("{"):
        return None
    key = hashlib.sha256(b"\0".join([_compiler_id(cc).encode(), " ".join(cflags).encode(),
                                     _with_includes(folder, name, set())])).hexdigest()[:32]
    obj = cache / f"{key}.o"
    if obj.is_file() and all((cache / f"{key}{s}").is_file() for s in aux):
        return obj
    # another process or thread may compile the same key: each into its own temporary files,
    # moved into place whole (the object last, so that whoever sees it sees its aux files)
    tmp = f"{key}.{os.getpid()}-{threading.get_ident()}.tmp"
    r = subprocess.run([cc, *cflags, "-c", name, "-o", str(cache / f"{tmp}.o")], cwd=folder,
                       capture_output=True, check=False)
    done = r.returncode == 0 and all((cache / f"{tmp}{s}").is_file() for s in aux)
    for s in (*aux, ".o"):
        if done:
            os.replace(cache / f"{tmp}{s}", cache / f"{key}{s}")
        else:
            (cache / f"{tmp}{s}").unlink(missing_ok=True)
    return obj if done else None
