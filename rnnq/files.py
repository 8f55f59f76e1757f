"""Opening the user's input files: regular files only, within rnnq's own size limits, so that a
FIFO, a device (/dev/zero) or a directory is refused with one line instead of blocking or
reading without end."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

from rnnq.ir import RnnqError

#: An ONNX file is one protobuf, which cannot exceed 2 GiB (bigger models keep their weights
#: as external data beside it).
MODEL_MAX_BYTES = 2**31 - 1
#: The arrays of a data file, uncompressed (zip entries declare their sizes before reading).
DATA_MAX_BYTES = 2**32


def regular_file(path: str | Path, what: str, max_bytes: int) -> Path:
    """`path` if it is a readable regular file of at most max_bytes, else RnnqError naming it."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise RnnqError(f"{path}: no such file") from None
    except OSError as e:
        raise RnnqError(f"{path}: cannot read it ({e.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise RnnqError(f"{path}: a directory, not {what}")
    if not stat.S_ISREG(st.st_mode):
        raise RnnqError(f"{path}: not a regular file ({what} is read from a file, not a pipe "
                        "or a device)")
    if st.st_size > max_bytes:
        raise RnnqError(f"{path}: {st.st_size} bytes, more than rnnq reads as {what} "
                        f"({max_bytes} bytes)")
    if not os.access(path, os.R_OK):
        raise RnnqError(f"{path}: permission denied")
    return path


def data_file(path: str | Path) -> Path:
    """A .npz data file: regular, and its arrays within DATA_MAX_BYTES uncompressed."""
    path = regular_file(path, "a data file (.npz)", DATA_MAX_BYTES)
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                total = sum(i.file_size for i in z.infolist())
        except (OSError, zipfile.BadZipFile):
            raise RnnqError(f"{path}: not a readable .npz file") from None
        if total > DATA_MAX_BYTES:
            raise RnnqError(f"{path}: its arrays hold {total} bytes uncompressed, more than "
                            f"rnnq reads ({DATA_MAX_BYTES} bytes)")
    return path
