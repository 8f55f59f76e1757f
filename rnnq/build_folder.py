"""The build folder: what `rnnq compile` writes and `rnnq validate` / `inspect` open.

It is written whole or not at all: every file goes into a temporary sibling, which replaces the
folder only when complete. It always holds manifest.json (what was built, how, from what) and
model.onnx (the float model it was built from, the reference for validate); a C build also
holds calibration.json (the recorded ranges, from which the integer IR is rebuilt exactly).
"""

from __future__ import annotations

import json
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
    """The build folder is replaced as a whole: never a folder holding anything else."""
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


def write(out_dir: Path, model: Path, files: dict[str, bytes], manifest: dict) -> dict:
    """Write model.onnx (a copy of `model`), `files` and manifest.json into out_dir, atomically.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        shutil.copyfile(model, tmp / MODEL_COPY)
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def stage(files: dict[str, bytes], where: Path) -> Path:
    """Write `files` into the existing folder `where` (to build or measure them)."""
    for name, data in files.items():
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
        """The float model the build was made from."""
        return self.path / self.manifest["model"]["file"]


def open_build(path: str | Path) -> BuildFolder:
    """Read a build folder's manifest (and calibration record); errors name the folder."""
    path = Path(path)
    mf = path / MANIFEST
    if not mf.is_file():
        raise RnnqError(f"{path}: not an rnnq build folder (no {MANIFEST})")
    try:
        manifest = json.loads(mf.read_text())
        calib = (None if manifest.get("format", "c") != "c"
                 else json.loads((path / CALIBRATION).read_text()))
    except (OSError, json.JSONDecodeError) as e:
        raise RnnqError(f"{path}: unreadable build metadata ({e})") from None
    return BuildFolder(path, manifest, calib)
