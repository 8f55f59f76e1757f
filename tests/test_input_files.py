"""rnnq reads the user's files only as regular files within its own size limits (rnnq.files):
a pipe, a device or a directory is refused before anything is read, and a .npz whose arrays
would expand beyond the limit (a zip bomb) before it is decompressed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from rnnq import files
from rnnq.api import compile_model
from rnnq.data import load_npz
from rnnq.ir import RnnqError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sunspots_rnn"


def test_pipe_device_and_directory_are_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    for path, words in ((tmp_path / "pipe", "not a regular file"),
                        (Path("/dev/zero"), "not a regular file"),
                        (tmp_path, "a directory"), (tmp_path / "none", "no such file")):
        with pytest.raises(RnnqError, match=words):
            files.regular_file(path, "an ONNX model", files.MODEL_MAX_BYTES)


def test_oversized_files_are_refused_before_reading(tmp_path: Path, monkeypatch) -> None:
    np.savez_compressed(tmp_path / "d.npz", x=np.zeros((64, 100, 1), np.float32))  # 25.6 kB
    assert (tmp_path / "d.npz").stat().st_size < 2000  # zeros compress: small on disk
    monkeypatch.setattr(files, "DATA_MAX_BYTES", 10_000)
    with pytest.raises(RnnqError, match="uncompressed, more than rnnq reads"):
        files.data_file(tmp_path / "d.npz")
    with pytest.raises(RnnqError, match="more than rnnq reads as an ONNX model"):
        files.regular_file(EXAMPLE / "model.onnx", "an ONNX model", 100)


@pytest.mark.parametrize("headroom", [float("nan"), float("inf"), 0.5, 17.0])
def test_headroom_must_be_a_finite_factor(headroom: float, tmp_path: Path) -> None:
    with pytest.raises(RnnqError, match="--headroom"):
        compile_model(EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", tmp_path / "b",
                      headroom=headroom)
    assert not (tmp_path / "b").exists()


def test_regular_data_still_loads() -> None:
    from rnnq.api import float_graph

    d = load_npz(EXAMPLE / "test.npz", float_graph(EXAMPLE / "model.onnx"))
    assert d.n > 0


def test_build_from_another_import_is_refused_with_one_line(tmp_path: Path) -> None:
    """A build whose calibration.json names tensors this rnnq's import does not make (made by
    another version) is refused naming the build, not rebuilt wrongly or crashed on."""
    import json

    from rnnq.api import validate

    compile_model(EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", tmp_path / "b")
    cal = tmp_path / "b" / "calibration.json"
    record = json.loads(cal.read_text())
    record["tensors"]["/an/old/view_output_0"] = [-1.0, 1.0]
    cal.write_text(json.dumps(record))
    with pytest.raises(RnnqError, match=r"b: calibration.json does not match .* compile it "
                                        "again"):
        validate(tmp_path / "b", EXAMPLE / "test.npz")
