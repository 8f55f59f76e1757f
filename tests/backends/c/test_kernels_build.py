"""The C runtime under the house flags (gcc and clang, compile only) and under ASan + UBSan.

The sanitised run cannot be a ctypes library (ASan must come first in a process), so this test
prints a self-checking C program (cprogram.py): kernel cases and primitive edge values as const
arrays with the simulator's expected outputs, exact-sized buffers so ASan sees every overrun.
It links rnnq_kernels.c with each matvec variant in turn (on the host, arm_dsp and neon are
their portable fallbacks; test_matvec_variants.py runs them on their own cores).
"""

from __future__ import annotations

import functools
import os
import subprocess

import cbuild
import numpy as np
import pytest
from cprogram import (
    MATVEC_VARIANTS,
    CProgram,
    add_dense,
    add_h_rnn,
    add_lstm,
    fields,
    lit,
    matvec_source,
    struct,
)

from rnnq import numerics as nq
from rnnq.backends.c.layouts import LAYOUTS
from rnnq.sim import kernels as sim
from tests.sim.kernel_cases import (
    LSTM_OPTIONS,
    random_binary,
    random_dense,
    random_embed,
    random_gru,
    random_lstm,
    random_mean_time,
    random_requant,
    random_rnn,
    random_softmax,
)

RUNTIME_SOURCES = sorted(cbuild.RUNTIME_DIR.glob("*.c"))
KERNELS = cbuild.RUNTIME_DIR / "rnnq_kernels.c"
HEADERS = sorted(p.name for p in cbuild.RUNTIME_DIR.glob("*.h"))


@pytest.mark.parametrize("cc", ["gcc", "clang"])
@pytest.mark.parametrize("opt", ["-O0", "-O2"])
def test_runtime_compiles_strict(cc, opt, tmp_path):
    """Each runtime source, and a file including every header, with -Werror -pedantic."""
    all_headers = tmp_path / "all_headers.c"
    all_headers.write_text(
        "".join(f'#include "{h}"\n' for h in HEADERS) + "int main(void) { return 0; }\n"
    )
    cbuild.compile_objects(
        [*RUNTIME_SOURCES, all_headers], (*cbuild.STRICT_FLAGS, opt), cc=cc, out_dir=tmp_path
    )


def _add_primitives(prog: CProgram, rng: np.random.Generator) -> None:
    edges = [nq.INT32_MIN, nq.INT32_MIN + 1, -(2**30), -32768, -1, 0, 1, 32767, 2**30]
    edges += [nq.INT32_MAX]
    x = np.array(edges + rng.integers(nq.INT32_MIN, nq.INT32_MAX, 200, endpoint=True).tolist())
    n = x.size

    def loop(call: str, want, dtype, label: str, **ins) -> None:
        names = {k: prog.array(v, dt) for k, (v, dt) in ins.items()}
        w = prog.array(want, dtype)
        o = prog.out(want, dtype)
        expr = call.format(**{k: f"{v}[k]" for k, v in names.items()})
        prog.body.append(f"    for (k = 0; k < {n}; ++k) {{ {o}[k] = {expr}; }}")
        prog.check(o, w, label)

    s = rng.integers(0, 32, n)
    loop(
        "rnnq_rshift_round({x}, {s})",
        nq.rshift_round(x, s),
        np.int32,
        "rshift_round",
        x=(x, np.int32),
        s=(s, np.int32),
    )
    x64 = x * rng.integers(1, 2**31, n)
    s64 = rng.integers(0, 63, n)
    loop(
        "rnnq_rshift_round64({x}, {s})",
        nq.rshift_round(x64, s64),
        np.int64,
        "rshift_round64",
        x=(x64, np.int64),
        s=(s64, np.int32),
    )
    m = rng.integers(0, 2**31, n)
    m[:3] = [0, 2**31 - 1, 2**30]
    s = rng.integers(1, 63, n)
    loop(
        "rnnq_requant({x}, {m}, {s})",
        nq.requant(x, m, s),
        np.int32,
        "requant",
        x=(x, np.int32),
        m=(m, np.int32),
        s=(s, np.int32),
    )
    b = np.maximum(rng.integers(1, 2**31, n) >> rng.integers(0, 31, n), 1)
    b[:4] = [1, 2, 3, 2**31 - 1]
    loop(
        "rnnq_div_round({x}, {b})",
        nq.div_round(x, b),
        np.int32,
        "div_round",
        x=(x, np.int32),
        b=(b, np.int32),
    )
    loop("rnnq_sat8({x})", nq.sat(x64, 8), np.int8, "sat8", x=(x64, np.int64))
    loop("rnnq_sat16({x})", nq.sat(x64, 16), np.int16, "sat16", x=(x64, np.int64))
    loop("rnnq_sat32({x})", nq.sat(x64, 32), np.int32, "sat32", x=(x64, np.int64))
    for f in (7, 12, 13, 15, 22, 29, 30, 31, 40):
        loop(f"rnnq_tanh_q15({{x}}, {f})", nq.tanh_q15(x, f), np.int32, f"tanh{f}", x=(x, np.int32))
        loop(
            f"rnnq_sigmoid_q15({{x}}, {f - 1})",
            nq.sigmoid_q15(x, f - 1),
            np.int32,
            f"sigmoid{f - 1}",
            x=(x, np.int32),
        )


def _add_lstm(prog: CProgram, rng, I: int, H: int, T: int, cell_frac: int, **opts) -> None:
    add_lstm(prog, random_lstm(rng, I, H, cell_frac, **opts), rng.integers(-128, 128, (T, I)))


def _add_h_rnn(prog: CProgram, kind: str, p, rng, T: int) -> None:
    add_h_rnn(prog, kind, p, rng.integers(-128, 128, (T, p.input_size)))


def _add_small_kernels(prog: CProgram, rng, n: int) -> None:
    """requant (int16 and int8 sources), mean over time, embedding."""
    for wide, fn, dt in [
        (True, "rnnq_requant_s16_s8", np.int16),
        (False, "rnnq_requant_s8_s8", np.int8),
    ]:
        p = random_requant(rng, wide)
        info = np.iinfo(dt)
        x = rng.integers(info.min, info.max, n, endpoint=True)
        x[0], x[-1] = info.min, info.max
        want = sim.requant_s8(p, x)
        ps = struct(prog, "rnnq_requant_params", fields(prog, p, {}))
        xs, w, o = prog.array(x, dt), prog.array(want, np.int8), prog.out(want, np.int8)
        prog.body.append(f"    {fn}(&{ps}, {xs}, {o}, {n});")
        prog.check(o, w, fn)
    T, size = 1 + n % 17, n
    p = random_mean_time(rng, size)
    x = rng.integers(-128, 128, (T, size))
    want = sim.mean_time(p, x)
    ps = struct(prog, "rnnq_mean_time_params", fields(prog, p, {}))
    xs, w, o = prog.array(x, np.int8), prog.array(want, np.int8), prog.out(want, np.int8)
    acc = prog.out(np.zeros(2 * size), np.int32)  # int64 sums as int32 halves
    prog.body += [
        f"    rnnq_mean_time_reset(&{ps}, {acc});",
        f"    for (k = 0; k < {T}; ++k) {{",
        f"        rnnq_mean_time_step_s8(&{ps}, {xs} + k * {size}, {acc}, k + 1, {o} + k * {size});",
        "    }",
    ]
    prog.check(o, w, f"mean_time size={size} T={T}")
    vocab, dim = 1 + n % 13, n
    p = random_embed(rng, vocab, dim)
    ids = np.array([-(2**31), -1, 0, vocab - 1, vocab, 2**31 - 1] + list(range(vocab)))
    want = sim.embed(p, ids)
    ps = struct(prog, "rnnq_embed_params", fields(prog, p, {"table": np.int8}))
    ix, w, o = prog.array(ids, np.int32), prog.array(want, np.int8), prog.out(want, np.int8)
    prog.body += [
        f"    for (k = 0; k < {ids.size}; ++k) {{",
        f"        rnnq_embed_s8(&{ps}, {ix}[k], {o} + k * {dim});",
        "    }",
    ]
    prog.check(o, w, f"embed vocab={vocab} dim={dim}")


def _add_dense(prog: CProgram, rng, K: int, N: int, rows: int) -> None:
    add_dense(prog, random_dense(rng, K, N), rng.integers(-128, 128, (rows, K)))


def _add_elementwise(prog: CProgram, rng, n: int) -> None:
    for op, enum in [("add", "RNNQ_BINARY_ADD"), ("mul", "RNNQ_BINARY_MUL")]:
        p = random_binary(rng, op)
        a, b = rng.integers(-128, 128, n), rng.integers(-128, 128, n)
        f = {"op": enum}
        f.update(
            {
                k: lit(int(getattr(p, k)))
                for k in (
                    "a_zp",
                    "b_zp",
                    "out_zp",
                    "a_mult",
                    "b_mult",
                    "mult",
                    "shift",
                    "act_min",
                    "act_max",
                )
            }
        )
        ps = struct(prog, "rnnq_binary_params", f)
        want = sim.binary(p, a, b)
        an, bn = prog.array(a, np.int8), prog.array(b, np.int8)
        w, o = prog.array(want, np.int8), prog.out(want, np.int8)
        prog.body.append(f"    rnnq_binary_s8(&{ps}, {an}, {bn}, {o}, {n});")
        prog.check(o, w, f"binary {op}")
    table, x = rng.integers(-128, 128, 256), rng.integers(-128, 128, n)
    x[0], x[-1] = -128, 127
    tn, xn = prog.array(table, np.int8), prog.array(x, np.int8)
    want = sim.lut(table.astype(np.int8), x)
    w, o = prog.array(want, np.int8), prog.out(want, np.int8)
    prog.body.append(f"    rnnq_lut_s8({tn}, {xn}, {o}, {n});")
    prog.check(o, w, "lut")
    index = rng.integers(0, n, 2 * n)
    index[0], index[-1] = 0, n - 1
    want = sim.take(index, x)
    ix, w, o = prog.array(index, np.int32), prog.array(want, np.int8), prog.out(want, np.int8)
    prog.body.append(f"    rnnq_take_s8({ix}, {2 * n}, {xn}, {o});")
    prog.check(o, w, "take")


def _add_softmax(prog: CProgram, rng, depth: int, rows: int) -> None:
    p = random_softmax(rng, depth)
    x = rng.integers(-128, 128, (rows, depth))
    ps = struct(
        prog,
        "rnnq_softmax_params",
        {"depth": str(depth), "exp_table": prog.array(p.exp_table, np.int32)},
    )
    want = sim.softmax(p, x)
    xs, w, o = prog.array(x, np.int8), prog.array(want, np.int8), prog.out(want, np.int8)
    prog.body.append(f"    rnnq_softmax_s8(&{ps}, {xs}, {o}, {rows});")
    prog.check(o, w, f"softmax depth={depth}")


@functools.cache
def _program(seed: int, layout: str = "ref") -> str:
    rng = np.random.default_rng(seed)
    prog = CProgram(matvec=layout)  # the weights in the layout the variant reads
    _add_primitives(prog, rng)
    for I, H, T, cf in [(1, 1, 3, 7), (3, 5, 20, 15), (40, 40, 6, 27), (17, 9, 12, 21)]:
        _add_lstm(prog, rng, I, H, T, cf)
    for k, opts in enumerate(LSTM_OPTIONS.values()):
        _add_lstm(prog, rng, 1 + 3 * k, 1 + 2 * k, 8, 7 + 3 * k, **opts)
    for I, H, T in [(1, 1, 3), (7, 12, 9), (24, 5, 6)]:
        for lbr in (0, 1):
            for hs in (False, True):
                p = random_gru(rng, I, H, lbr, hard_sigmoid=hs, clip=hs or lbr == 1)
                _add_h_rnn(prog, "gru", p, rng, T)
        for act in (0, 1, 2):
            for clip in (False, True):
                _add_h_rnn(prog, "rnn", random_rnn(rng, I, H, act, clip=clip), rng, T)
    for n in (1, 5, 40):
        _add_small_kernels(prog, rng, n)
    for K, N, rows in [(1, 1, 1), (33, 7, 3), (64, 40, 2)]:
        _add_dense(prog, rng, K, N, rows)
    for n in (1, 5, 301):
        _add_elementwise(prog, rng, n)
    for depth, rows in [(1, 2), (10, 3), (257, 2)]:
        _add_softmax(prog, rng, depth, rows)
    return prog.render()


@pytest.fixture(scope="module")
def program_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("sanitized_program")


@pytest.mark.parametrize("variant", MATVEC_VARIANTS)
@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_runtime_sanitized(cc, variant, tmp_path, program_dir):
    """Self-checking program: kernels and primitives vs the simulator under ASan + UBSan."""
    cbuild.require_compiler(cc)
    if not cbuild.sanitizers_work(cc):
        if cc == "gcc":
            cbuild.skip_or_fail("gcc cannot build/run -fsanitize=address,undefined here")
        pytest.skip(f"{cc} cannot build/run -fsanitize=address,undefined here")
    flags = (*cbuild.STRICT_FLAGS, *cbuild.SANITIZE_FLAGS, "-O1")
    layout = variant if variant in LAYOUTS else "ref"
    src = program_dir / f"sanitized_main_{layout}.c"
    if not src.exists():
        src.write_text(_program(seed=20240611, layout=layout))
    # The program's object is built once per compiler (cached by content), then linked with
    # the kernels and each matvec variant.
    main_obj = next(cbuild.compile_objects([src], flags, cc=cc).glob("*.o"))
    exe = cbuild.compile_executable(
        [main_obj, KERNELS, matvec_source(variant)], flags, cc=cc, out_dir=tmp_path
    )
    proc = subprocess.run(
        [str(exe)],
        capture_output=True,
        text=True,
        env={**os.environ, **cbuild.SANITIZE_ENV},
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), proc.stdout + proc.stderr
    assert "runtime error" not in proc.stderr, proc.stderr


def test_missing_compiler_skips_but_fails_in_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        cbuild.require_compiler("rnnq-no-such-cc")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        cbuild.compile_shared([cbuild.RUNTIME_DIR / "rnnq_kernels.c"], cc="rnnq-no-such-cc")
