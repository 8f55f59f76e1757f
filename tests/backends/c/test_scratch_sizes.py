"""rnnq_<op>_scratch_size() in C equals rnnq/backends/scratch.py's scratch_bytes() for random
sizes, with every matvec variant linked (the xbuf size must not depend on the variant)."""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

import cbuild
import numpy as np
import pytest
from cprogram import MATVEC_VARIANTS, matvec_source

from rnnq.backends.c.scratch import SCRATCH_ALIGN, matvec_xbuf_bytes, scratch_bytes

_PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include "rnnq_kernels.h"
#include "rnnq_matvec.h"

/* argv: I H (recurrent kernels, K = I, N = H for dense); prints one line of sizes. */
int main(int argc, char **argv)
{
    rnnq_lstm_params lstm = {0};
    rnnq_gru_params gru = {0};
    rnnq_rnn_params rnn = {0};
    rnnq_dense_params dense = {0};
    int32_t n_in;
    int32_t n_hid;
    if (argc != 3) {
        return 2;
    }
    n_in = (int32_t)atol(argv[1]);
    n_hid = (int32_t)atol(argv[2]);
    lstm.input_size = gru.input_size = rnn.input_size = dense.in_features = n_in;
    lstm.hidden_size = gru.hidden_size = rnn.hidden_size = dense.out_features = n_hid;
    printf("%ld %ld", (long)rnnq_lstm_scratch_size(&lstm), (long)rnnq_gru_scratch_size(&gru));
    gru.linear_before_reset = 1;
    printf(" %ld %ld", (long)rnnq_gru_scratch_size(&gru), (long)rnnq_rnn_scratch_size(&rnn));
    printf(" %ld %ld %ld", (long)rnnq_dense_scratch_size(&dense),
           (long)rnnq_matvec_xbuf_size(n_in), (long)RNNQ_MATVEC_XBUF_BYTES(n_in));
    printf(" %ld %ld", (long)rnnq_lstm_fused_scratch_size(&lstm),
           (long)rnnq_gru_fused_scratch_size(&gru));
    /* 16-bit recurrent weights: any non-NULL rw_lo */
    lstm.rw_lo = gru.rw_lo = rnn.rw_lo = (const int8_t *)argv[0];
    printf(" %ld %ld", (long)rnnq_lstm_scratch_size(&lstm), (long)rnnq_gru_scratch_size(&gru));
    gru.linear_before_reset = 0;
    printf(" %ld %ld\n", (long)rnnq_gru_scratch_size(&gru), (long)rnnq_rnn_scratch_size(&rnn));
    return 0;
}
"""


def _sizes() -> list[tuple[int, int]]:
    rng = np.random.default_rng(7)
    edge = [(1, 1), (1, 2), (2, 1), (3, 3), (4, 4), (5, 7), (64, 128), (128, 64), (0, 1)]
    rand = [(int(a), int(b)) for a, b in rng.integers(1, 600, (40, 2))]
    return edge + rand


@pytest.mark.parametrize("variant", MATVEC_VARIANTS)
def test_c_scratch_sizes_equal_python(variant, tmp_path):
    src = tmp_path / "sizes.c"
    src.write_text(_PROGRAM)
    exe = cbuild.compile_executable(
        [src, cbuild.RUNTIME_DIR / "rnnq_kernels.c", matvec_source(variant)],
        (*cbuild.STRICT_FLAGS, "-O1"),
        out_dir=tmp_path,
    )
    for n_in, n_hid in _sizes():
        out = subprocess.run([str(exe), str(n_in), str(n_hid)], capture_output=True, text=True,
                             check=True).stdout.split()
        got = [int(v) for v in out]
        rec = SimpleNamespace(input_size=n_in, hidden_size=n_hid)
        want = [
            scratch_bytes("qlstm", rec),
            scratch_bytes("qgru", SimpleNamespace(**vars(rec), linear_before_reset=0)),
            scratch_bytes("qgru", SimpleNamespace(**vars(rec), linear_before_reset=1)),
            scratch_bytes("qrnn", rec),
            scratch_bytes("qdense", SimpleNamespace(in_features=n_in, out_features=n_hid)),
            matvec_xbuf_bytes(n_in),
            matvec_xbuf_bytes(n_in),
            scratch_bytes("qlstm", rec, fused=True),
            scratch_bytes("qgru", rec, fused=True),
        ]
        fine = SimpleNamespace(**vars(rec), rw_lo=np.zeros(1, np.int8))
        want += [
            scratch_bytes("qlstm", fine),
            scratch_bytes("qgru", SimpleNamespace(**vars(fine), linear_before_reset=1)),
            scratch_bytes("qgru", SimpleNamespace(**vars(fine), linear_before_reset=0)),
            scratch_bytes("qrnn", fine),
        ]
        assert got == want, (n_in, n_hid)


def test_scratch_layout_keeps_int32_alignment():
    """Every region after the int32 accumulators starts 4-byte aligned: the xbuf size is a
    multiple of 4 (the GRU's int16 r * h comes last)."""
    for n in range(300):
        assert matvec_xbuf_bytes(n) % SCRATCH_ALIGN == 0
        assert matvec_xbuf_bytes(n) >= 2 * n
    assert scratch_bytes("qlrelu", None) == 0
