"""The build folder: what `rnnq compile` writes and `rnnq validate` / `inspect` open.

It is written whole or not at all: every file goes into a temporary sibling, which replaces the
folder only when complete. It always holds manifest.json (what was built, how, from what) and
model.onnx (the float model it was built from, the reference for validate); a C build also
holds calibration.json (the recorded ranges, from which the integer IR is rebuilt exactly).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rnnq.ir import Graph, RnnqError
from rnnq.version import __version__

MANIFEST = "manifest.json"
CALIBRATION = "calibration.json"
MODEL_COPY = "model.onnx"


def check_out_dir(out_dir: Path) -> None:
    """The build folder is replaced as a whole: never a folder holding anything else; and its
    place must be writable."""
    if out_dir.is_symlink():  # replacing it would replace the link, not the folder it names
        raise RnnqError(f"{out_dir}: is a symbolic link; give the build folder's own path")
    check_writable(out_dir)
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise RnnqError(f"{out_dir}: exists and is not a folder")
    here = Path.cwd().resolve()
    if out_dir.resolve() in (here, *here.parents):
        raise RnnqError(f"{out_dir}: is the current folder or one of its parents; "
                        "choose a separate build folder")
    if any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
        raise RnnqError(f"{out_dir}: exists and is not an rnnq build folder (no {MANIFEST}); "
                        "refusing to replace it")


def check_writable(out_dir: Path) -> None:
    """The folder that will hold the build accepts a new folder (tried now, before any work,
    as the build's temporary folder will be)."""
    parent = out_dir.resolve().parent
    while not parent.exists():
        parent = parent.parent
    try:
        Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.check.", dir=parent)).rmdir()
    except OSError as e:
        raise RnnqError(f"{out_dir}: cannot write a build folder there ({e.strerror})") from None


def manifest_header(fmt: str, target: str, g: Graph, files: list[str],
                    calibration: dict | None) -> dict:
    """The manifest entries every build has; a backend adds its own after them."""
    return {
        "rnnq_version": __version__, "format": fmt, "target": target,
        "model": {"file": MODEL_COPY, "sha256": g.meta.get("model_sha256", ""),
                  "source": g.meta.get("model_path")},
        "files": sorted(files) + [MODEL_COPY] + ([CALIBRATION] if fmt == "c" else [])
        + [MANIFEST],
        "calibration": calibration,
    }


def write(out_dir: Path, model: bytes, files: dict[str, bytes], manifest: dict) -> dict:
    """Write model.onnx (the float model's bytes), `files` and manifest.json into out_dir,
    atomically."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        (tmp / MODEL_COPY).write_bytes(model)
        stage(files, tmp)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; a build folder is a normal folder
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def stage(files: dict[str, bytes], where: Path) -> Path:
    """Write `files` into the existing folder `where` (to build or measure them)."""
    for name, data in files.items():
        (where / name).parent.mkdir(parents=True, exist_ok=True)  # package layouts nest
        (where / name).write_bytes(data)
    return where


@dataclass
class BuildFolder:
    path: Path
    manifest: dict
    calibration: dict | None  # calibration.json of a C build

    @property
    def format(self) -> str:
        return self.manifest.get("format", "c")

    @property
    def model(self) -> Path:
        """The float model the build was made from: its copy in the folder (whatever
        manifest.json says, nothing outside the build is read)."""
        return self.path / MODEL_COPY


def open_build(path: str | Path) -> BuildFolder:
    """Read a build folder's manifest (and calibration record); errors name the folder."""
    path = Path(path)
    mf = path / MANIFEST
    if not mf.is_file():
        raise RnnqError(f"{path}: not an rnnq build folder (no {MANIFEST})")
    try:
        manifest = json.loads(mf.read_text())
        calib = (None if not isinstance(manifest, dict) or manifest.get("format", "c") != "c"
                 else json.loads((path / CALIBRATION).read_text()))
    except (OSError, json.JSONDecodeError) as e:
        raise RnnqError(f"{path}: unreadable build metadata ({e})") from None
    _check_manifest(path, manifest, calib)
    return BuildFolder(path, manifest, calib)


#: The manifest fields validate and inspect read, and their JSON types.
_FIELDS = {"format": str, "target": str, "outputs": list, "streaming": bool,
           "state_inputs": dict, "tflite": dict, "max_steps": int}


def _check_manifest(path: Path, m, calib) -> None:
    """The types of what validate and inspect read (a folder changed by hand or by another
    program is refused with one line, not crashed on)."""
    def bad(what: str) -> RnnqError:
        return RnnqError(f"{path}/{MANIFEST}: {what}; the folder was changed after compiling: "
                         "compile it again")

    if not isinstance(m, dict):
        raise bad("not a JSON object")
    for key, typ in _FIELDS.items():
        v = m.get(key)
        if v is not None and (not isinstance(v, typ) or (typ is int and isinstance(v, bool))):
            raise bad(f"{key!r} is a {type(v).__name__}, not a {typ.__name__}")
    if m.get("format", "c") not in ("c", "tflite"):
        raise bad(f"unknown format {m.get('format')!r}")
    if m.get("format", "c") == "c" and not isinstance(calib, dict):
        raise bad(f"{CALIBRATION} is not a JSON object")
    files = m.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise bad("'files' is not a list of names")
    for f in files:  # a file deleted by hand fails here, not halfway through a validate
        if Path(f).is_absolute() or ".." in Path(f).parts:
            raise bad(f"file {f!r} lies outside the build folder")
        if not (path / f).is_file():
            raise bad(f"{f} is missing")
    for o in [*m.get("outputs", []), *m.get("tflite", {}).get("outputs", [])]:
        if not isinstance(o, dict):
            raise bad("an output is not an object")
    for name, s in m.get("state_inputs", {}).items():
        if not (isinstance(s, dict) and isinstance(s.get("shape"), list)
                and all(isinstance(d, int) and d > 0 for d in s["shape"])):
            raise bad(f"state input {name!r} has no shape")
