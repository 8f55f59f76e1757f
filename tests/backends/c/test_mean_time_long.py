"""ReduceMean over time on long streams (issue 14): the running sum was int32 and overflowed
after 2^31 / 255 = 8,421,504 steps of extreme input (UBSan: signed overflow; the output flipped
from 127 to -128), and its requantisation saturated at int32 even earlier when the mean's
output scale is finer than its input's. Now the sums are int64 (two int32 halves in the
state), the mean is computed exactly, and once the step count saturates at INT32_MAX each step
takes one mean out of the sum first, so the output stays a mean.

Streams are not run for millions of steps: the C starts from a state n0 steps long (the
kernel through the ctypes shim; the generated model through _set_state), the simulator from
the same sums and count, and the simulator is checked against unbounded Python integers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cbuild
import numpy as np
import onnx
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto
from onnx import helper as oh

from rnnq.api import compile_model, open_graphs
from rnnq.ir.params import MeanTimeParams
from rnnq.numerics import INT32_MAX, quantize_multiplier
from rnnq.sim import kernels as sim

#: the step at which an int32 sum of 255 per step overflowed
OVERFLOW_STEP = 2**31 // 255 + 1


def _exact(p: MeanTimeParams, x: np.ndarray, acc0: np.ndarray, n0: int) -> np.ndarray:
    """The definition in unbounded Python integers: x [T, size], acc0 [size] -> y [T, size]."""
    acc = [int(a) for a in acc0]
    out = np.zeros(x.shape, np.int64)
    for t in range(x.shape[0]):
        n = min(n0 + t + 1, INT32_MAX)
        for k in range(p.size):
            if n == INT32_MAX:
                acc[k] -= _div_round(acc[k], n)
            acc[k] += int(x[t, k]) - p.in_zp
            v = (acc[k] * p.mult + (1 << (p.shift - 1))) >> p.shift
            out[t, k] = min(max(p.out_zp + _div_round(v, n), -128), 127)
    return out


def _div_round(a: int, b: int) -> int:
    q = (abs(a) + b // 2) // b
    return -q if a < 0 else q


N0 = st.one_of(st.sampled_from([OVERFLOW_STEP - 5, INT32_MAX - 4, INT32_MAX - 1, INT32_MAX]),
               st.integers(1, INT32_MAX))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n0=N0, size=st.integers(1, 6), T=st.integers(1, 12),
       log_factor=st.floats(-8, 20))
def test_mean_time_from_a_long_stream_c_equals_sim_equals_integers(kernels_c, seed, n0, size,
                                                                   T, log_factor) -> None:
    """Kernel level, from any count and sums a stream can have (|sum| <= 255 n), with mean
    factors from 2^-8 to 2^20 (both branches of the split product): C ≡ simulator ≡ the
    definition in unbounded integers."""
    rng = np.random.default_rng(seed)
    mult, shift = quantize_multiplier(2.0**log_factor)
    p = MeanTimeParams(size=size, in_zp=int(rng.integers(-128, 128)),
                       out_zp=int(rng.integers(-128, 128)), mult=mult, shift=shift)
    lo, hi = -128 - p.in_zp, 127 - p.in_zp  # the range of x - in_zp
    means = rng.uniform(lo, hi, size)
    means[rng.random(size) < 0.3] = rng.choice([lo, hi])  # streams at an extreme
    acc0 = np.round(means * n0).astype(np.int64)
    x = rng.integers(-128, 128, (T, size)).astype(np.int8)
    if rng.integers(2):
        x[:] = rng.choice(np.array([-128, 127], np.int8))
    want = sim.mean_time(p, x, acc0, n0)
    assert np.array_equal(want, _exact(p, x, acc0, n0))
    assert np.array_equal(kernels_c.mean_time(p, x, acc0, n0), want)


DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include "model.h"
static int64_t arena[M_ARENA_BYTES / 8 + 1];
/* drv N0 LO HI STEPS X: resume a stream of N0 steps whose sums are HI * 2^31 + LO (every
 * feature), step STEPS times on input X, print every output. */
int main(int argc, char **argv)
{
    m_state st;
    int32_t v[M_STATE_VALUES];
    m_input_t x[M_INPUT_SIZE];
    m_output_t y[M_OUTPUT_SIZE];
    int k, t;
    if (argc != 6) return 2;
    m_reset(&st);
    m_get_state(&st, v);
    v[0] = (int32_t)atol(argv[1]);
    for (k = 0; k < M_INPUT_SIZE; k++) {
        v[1 + 2 * k] = (int32_t)atol(argv[2]);
        v[2 + 2 * k] = (int32_t)atol(argv[3]);
        x[k] = (m_input_t)atoi(argv[5]);
    }
    m_set_state(&st, v);
    for (t = 0; t < atoi(argv[4]); t++) {
        if (m_step(&st, x, y, arena) != M_OK) return 1;
        for (k = 0; k < M_OUTPUT_SIZE; k++) printf("%d ", y[k]);
        printf("\n");
    }
    return 0;
}
"""


def _mean_model(tmp_path: Path) -> Path:
    """x [1, T, 4] -> ReduceMean over time -> y [1, 4]; calibrated on [0, 1] (input zero
    point -128: an input of 127 adds 255 to the sum, the fastest growth)."""
    g = oh.make_graph([oh.make_node("ReduceMean", ["x"], ["y"], axes=[1], keepdims=0)], "mean",
                      [oh.make_tensor_value_info("x", TensorProto.FLOAT, [1, "T", 4])],
                      [oh.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = tmp_path / "mean.onnx"
    onnx.save(oh.make_model(g, opset_imports=[oh.make_opsetid("", 13)]), str(model))
    cal = np.random.default_rng(0).uniform(0, 1, (8, 20, 4)).astype(np.float32)
    cal[:, :, 0] = 1.0  # a feature whose mean reaches the top of the input's range
    np.savez(tmp_path / "cal.npz", x=cal)
    build = tmp_path / "b"
    compile_model(model, tmp_path / "cal.npz", build, "generic-c99", "m")
    return build


def test_generated_mean_resumed_near_the_overflow_and_the_count_saturation(tmp_path) -> None:
    """The generated C under UBSan, resumed with _set_state just before the step where the
    int32 sum overflowed and just before the step count saturates, input 127 (+255 per step):
    no overflow, the output holds its value, and C ≡ simulator from the same state."""
    cbuild.require_compiler("gcc")
    build = _mean_model(tmp_path)
    _, _, ig = open_graphs(build)
    (node,) = [n for n in ig.nodes if n.op == "qmean_time"]
    p = node.attrs["params"]
    assert p.in_zp == -128
    (build / "drv.c").write_text(DRIVER)
    srcs = [s for s in build.glob("*.c") if s.name != "harness.c"]
    exe = cbuild.compile_executable(srcs, [*cbuild.STRICT_FLAGS, "-O1", *cbuild.SANITIZE_FLAGS],
                                    include_dirs=[build], out_dir=tmp_path)
    steps = 12
    for n0 in (OVERFLOW_STEP - 6, INT32_MAX - 5):
        s0 = 255 * n0  # the sum of n0 steps of input 127
        r = subprocess.run([str(exe), str(n0), str(s0 % 2**31), str(s0 >> 31), str(steps),
                            "127"], capture_output=True, text=True, env=cbuild.SANITIZE_ENV,
                           check=False)
        assert r.returncode == 0, r.stderr
        got = np.array([[int(v) for v in line.split()] for line in r.stdout.splitlines()])
        x = np.full((steps, p.size), 127, np.int8)
        want = sim.mean_time(p, x, np.full(p.size, s0), n0)
        assert np.array_equal(got, want), (n0, got, want)
        assert np.array_equal(want, _exact(p, x, np.full(p.size, s0), n0))
        assert (got == got[0]).all()  # the mean of a constant stream holds (127 -> -128 before)
        assert got[0, 0] == 127
