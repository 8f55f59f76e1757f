"""Whole-sequence models and token-id inputs.

- A bidirectional LSTM classifier (onnx.helper) compiles to C that cannot stream: a tiny C
  program written against the build's model.h (linked with the library the build's Makefile
  makes) checks that `_step` returns
  `<PREFIX>_ERR_NOT_STREAMING`, that `_run` accepts up to `<PREFIX>_MAX_STEPS` steps (set with
  `max_steps`) and refuses more with `<PREFIX>_ERR_ARG`; `validate` checks `_run` bit-exact
  against the simulator on variable-length sequences.
- An embedding model (int64 ids [1, T] -> Gather on a constant table -> Transpose -> LSTM ->
  Linear; forward, and bidirectional) compiles and validates bit-exact; its float reference
  matches onnxruntime.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper
from onnx import helper as oh
from variants_common import (
    assert_bit_exact,
    compile_and_validate,
    require_host_toolchain,
    save_npz,
)

from rnnq.api import float_graph
from rnnq.data import at_last_step
from rnnq.sim.float_ref import run_float
from tests.cbuild import SANITIZE_ENV, SANITIZE_FLAGS, STRICT_FLAGS

F, H, C = 3, 6, 4
VOCAB, EMB = 20, 5
MAX_STEPS = 12
ORT_ATOL = 1e-5
#: integer vs float SQNR at the end (validate's report); measured 35.7 dB (embedding,
#: bidirectional) to 37.9 dB (bidirectional LSTM)
SQNR_MIN_DB = 25.0



def _save(path: Path, nodes, x_vi, out_vi, inits) -> Path:
    graph = oh.make_graph(nodes, path.stem, [x_vi], [out_vi], inits)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def _lstm_head(rng, x: str, in_size: int, direction: str) -> tuple[list, list]:
    """x [T, 1, in] -> LSTM -> Y_h [D, 1, H] -> Reshape [1, D*H] -> Gemm -> "logits" [1, C]."""
    d = 2 if direction == "bidirectional" else 1
    k = 1.0 / np.sqrt(H)

    def u(*shape, lim=k):
        return rng.uniform(-lim, lim, shape).astype(np.float32)

    inits = [numpy_helper.from_array(v, n) for n, v in (
        ("W", u(d, 4 * H, in_size, lim=2 * k)), ("R", u(d, 4 * H, H)), ("B", u(d, 8 * H)),
        ("shape", np.array([1, d * H], np.int64)), ("Wd", u(C, d * H, lim=1.0)),
        ("bd", u(C, lim=0.2)))]
    nodes = [oh.make_node("LSTM", [x, "W", "R", "B"], ["", "Y_h"], hidden_size=H,
                          direction=direction),
             oh.make_node("Reshape", ["Y_h", "shape"], ["flat"]),
             oh.make_node("Gemm", ["flat", "Wd", "bd"], ["logits"], transB=1)]
    return nodes, inits


def bidirectional_model(path: Path) -> Path:
    nodes, inits = _lstm_head(np.random.default_rng(1), "x", F, "bidirectional")
    return _save(path, nodes, oh.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, F]),
                 oh.make_tensor_value_info("logits", TensorProto.FLOAT, [1, C]), inits)


def embedding_model(path: Path, direction: str) -> Path:
    rng = np.random.default_rng(2)
    table = rng.normal(0.0, 1.0, (VOCAB, EMB)).astype(np.float32)
    nodes, inits = _lstm_head(rng, "emb_t", EMB, direction)
    nodes = [oh.make_node("Gather", ["table", "ids"], ["emb"], axis=0),
             oh.make_node("Transpose", ["emb"], ["emb_t"], perm=[1, 0, 2]), *nodes]
    inits.append(numpy_helper.from_array(table, "table"))
    return _save(path, nodes, oh.make_tensor_value_info("ids", TensorProto.INT64, [1, "T"]),
                 oh.make_tensor_value_info("logits", TensorProto.FLOAT, [1, C]), inits)


def _lengths(n: int, t: int, seed: int) -> np.ndarray:
    lengths = np.random.default_rng(seed).integers(1, t + 1, n)
    lengths[0] = t
    return lengths


def _ort(path: Path, feeds: list[np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.stack([sess.run(None, {name: f})[0].ravel() for f in feeds]).astype(np.float64)


NOT_STREAMING_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

static int16_t arena[(BI_ARENA_BYTES + 1) / 2];

int main(void)
{
    bi_state st;
    bi_input_t x[(BI_MAX_STEPS + 1) * BI_INPUT_SIZE];
    bi_output_t y_step[BI_OUTPUT_SIZE];
    bi_output_t *y_run = (bi_output_t *)malloc((size_t)bi_run_output_size(BI_MAX_STEPS + 1) *
                                               sizeof *y_run);
    int rc_step, rc_run, rc_long;
    if (y_run == NULL) {
        return 3;
    }
    memset(x, 1, sizeof x);
    bi_reset(&st);
    rc_step = bi_step(&st, x, y_step, arena);
    bi_reset(&st);
    rc_run = bi_run(&st, x, BI_MAX_STEPS, y_run, arena);
    bi_reset(&st);
    rc_long = bi_run(&st, x, BI_MAX_STEPS + 1, y_run, arena);
    printf("streaming=%d max_steps=%d step=%d run=%d run_too_long=%d "
           "expect %d %d %d\n", BI_STREAMING, BI_MAX_STEPS, rc_step, rc_run, rc_long,
           BI_ERR_NOT_STREAMING, BI_OK, BI_ERR_ARG);
    free(y_run);
    return !(BI_STREAMING == 0 && rc_step == BI_ERR_NOT_STREAMING && rc_run == BI_OK &&
             rc_long == BI_ERR_ARG);
}
"""


@pytest.fixture(scope="module")
def bi_build(tmp_path_factory) -> tuple[Path, dict]:
    """The bidirectional model compiled (max_steps=12) and validated; (build dir, report)."""
    require_host_toolchain()
    d = tmp_path_factory.mktemp("bidirectional")
    model = bidirectional_model(d / "bi.onnx")
    rng = np.random.default_rng(3)
    calib = save_npz(d / "calib.npz", rng.standard_normal((24, MAX_STEPS, F)).astype(np.float32))
    x = rng.standard_normal((10, MAX_STEPS, F)).astype(np.float32)
    test = save_npz(d / "test.npz", x, _lengths(10, MAX_STEPS, 4))
    rep = compile_and_validate(model, calib, test, d / "build", prefix="bi", max_steps=MAX_STEPS)
    return d / "build", rep


def test_bidirectional_step_refuses_and_run_works(bi_build, tmp_path: Path) -> None:
    """Link a tiny program against the build the documented way: `make` in (a copy of) the
    build folder gives lib<prefix>.a; main.c includes model.h and links it."""
    build, _ = bi_build
    work = tmp_path / "c"
    shutil.copytree(build, work)
    _run(["make", "-s", "-C", str(work)])  # the host target's CFLAGS: ASan/UBSan
    (lib,) = work.glob("lib*.a")
    (work / "main.c").write_text(NOT_STREAMING_MAIN)
    exe = work / "not_streaming"
    _run(["cc", *STRICT_FLAGS, "-O1", *SANITIZE_FLAGS, f"-I{work}", str(work / "main.c"),
          str(lib), "-fsanitize=address,undefined", "-o", str(exe)])
    proc = subprocess.run([str(exe)], capture_output=True, text=True, check=False,
                          env={**os.environ, **SANITIZE_ENV})
    print(proc.stdout.strip(), proc.stderr.strip())
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout}{proc.stderr}"


def test_bidirectional_run_bit_exact(bi_build) -> None:
    build, rep = bi_build
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["streaming"] is False
    assert manifest["max_steps"] == MAX_STEPS
    assert_bit_exact(rep)
    assert rep["c"]["compared_values"] == 10 * C  # _run only: one answer per sequence
    print(f"bidirectional: SQNR {rep['int']['sqnr_db']:.1f} dB, float by "
          f"{rep['float']['engine']}")
    assert rep["int"]["sqnr_db"] >= SQNR_MIN_DB, rep["int"]


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_embedding_model(direction: str, tmp_path: Path) -> None:
    model = embedding_model(tmp_path / "emb.onnx", direction)
    t = MAX_STEPS
    rng = np.random.default_rng(5)
    ids = rng.integers(0, VOCAB, (12, t))
    lengths = _lengths(12, t, 6)
    # float reference vs onnxruntime, each sequence at its own length
    g = float_graph(model)
    ref = at_last_step(run_float(g, ids, lengths=lengths)["logits"], lengths).reshape(12, -1)
    got = _ort(model, [ids[i, : lengths[i]][None] for i in range(12)])
    err = float(np.max(np.abs(ref - got)))
    assert err <= ORT_ATOL, err
    require_host_toolchain()
    calib = save_npz(tmp_path / "calib.npz", rng.integers(0, VOCAB, (32, t)))
    rep = compile_and_validate(model, calib, save_npz(tmp_path / "test.npz", ids, lengths),
                               tmp_path / "build", prefix="emb")
    print(f"embedding {direction}: |float ref - onnxruntime| <= {err:.1e}; "
          f"{rep['c']['compared_values']} C values, SQNR {rep['int']['sqnr_db']:.1f} dB; "
          f"float by {rep['float']['engine']}")
    assert_bit_exact(rep)
    assert rep["int"]["sqnr_db"] >= SQNR_MIN_DB, rep["int"]


def test_minimal_negative_token_id(tmp_path: Path) -> None:
    """ids [[-1]]: onnxruntime takes the table's last row, rnnq's float reference row 0."""
    model = embedding_model(tmp_path / "emb.onnx", "forward")
    ids = np.array([[-1]])
    ref = run_float(float_graph(model), ids)["logits"][:, -1].reshape(1, -1)
    got = _ort(model, [ids])
    np.testing.assert_allclose(ref, got, rtol=0, atol=ORT_ATOL)
