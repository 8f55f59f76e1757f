"""Self-checking C programs: kernel cases as const arrays with the simulator's expected outputs.

One generator for every place the C kernels run without Python next to them: the host under
ASan + UBSan (test_kernels_build.py) and the cross-compiled matvec variants on emulated boards
(test_matvec_variants.py). main() returns the number of mismatching checks (at most 255), so
the exit status of the program, of QEMU with semihosting and of qemu-user is the verdict.

Two memory styles:
- exact (default): every output, state and scratch buffer is its own static array of exactly
  the size the kernel may touch, so ASan reports any overrun;
- pooled: buffers come from one static pool reused by every case, each followed by a guard
  word that is checked after the case (small RAM: the Cortex-M0 board has 16 KiB).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnnq.backends.c.layouts import fused as has_fused
from rnnq.backends.c.layouts import fused_emitted, matvec_layout
from rnnq.backends.c.scratch import scratch_bytes
from rnnq.ir.params import hi_path
from rnnq.sim import kernels as sim

_CTYPE = {np.int8: "int8_t", np.int16: "int16_t", np.int32: "int32_t", np.int64: "int64_t"}
_GUARD = 0x5AA5C33C

#: The matvec variants (templates/c/runtime/rnnq_matvec_<variant>.c); a build links one.
MATVEC_VARIANTS = ("ref", "arm_dsp", "neon", "x86", "mve", "arm_dsp_w16")
RUNTIME_DIR = Path(__file__).resolve().parents[3] / "templates" / "c" / "runtime"

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def matvec_source(variant: str = "ref") -> Path:
    return RUNTIME_DIR / f"rnnq_matvec_{variant}.c"


def lit(v: int) -> str:
    """A C literal of v (INT32_MIN / INT64_MIN written so that they keep their type)."""
    return f"({v + 1}-1)" if v in (-(2**31), -(2**63)) else str(v)


class CProgram:
    """Accumulates const arrays, buffers and checks; renders one C file."""

    def __init__(self, pooled: bool = False, matvec: str = "ref", fused: bool = True):
        # matvec: the variant the program is linked with; its weight layout (layouts.py) is
        # the one the matvec weights (add_matvec, params w / rw) are written in. fused: the
        # cases of the fused LSTM step, the unit-major steps (add_lstm) and the packed matvec
        # calls they make (add_matvec).
        self.matvec = matvec
        self.fused = fused
        self.decls: list[str] = []
        self.body: list[str] = []
        self.n = 0
        self.pooled = pooled
        self._pool_words = 0  # words in use by the current case
        self._pool_max = 0
        self._guards: list[int] = []
        self._consts: dict[tuple[str, bytes], str] = {}

    def array(self, a, dtype, const: bool = True, prefix: str = "a") -> str:
        a = np.asarray(a).astype(dtype).ravel()
        key = (np.dtype(dtype).str, a.tobytes())
        if const and key in self._consts:  # the same constant twice: one array (flash)
            return self._consts[key]
        self.n += 1
        name = f"{prefix}{self.n}"
        vals = ",".join(lit(int(v)) for v in a) or "0"
        q = "static const " if const else "static "
        init = f" = {{{vals}}}" if const else ""
        # Zero-length arrays are not C: keep one element (never read).
        self.decls.append(f"{q}{_CTYPE[dtype]} {name}[{max(a.size, 1)}]{init};")
        if const:
            self._consts[key] = name
        return name

    def weights(self, laid: np.ndarray) -> str:
        """A matvec weight array in its variant's layout (layouts.matvec_layout): int8, or the
        int32 words of arm_dsp_w16's int16 pairs behind a const int8_t * (as the backend
        emits them)."""
        if laid.dtype == np.int32:
            return f"((const int8_t *)(const void *){self.array(laid, np.int32)})"
        return self.array(laid, np.int8)

    def _pooled(self, nbytes: int, ctype: str) -> str:
        """nbytes from the pool (4-byte aligned), then a guard word."""
        off = self._pool_words
        words = -(-nbytes // 4)
        self._pool_words += words + 1
        self._pool_max = max(self._pool_max, self._pool_words)
        self._guards.append(off + words)
        self.body.append(f"    pool[{off + words}] = {_GUARD}u;")
        return f"(({ctype} *)(void *)(pool + {off}))"

    def out(self, like, dtype) -> str:
        """A zero-initialised (exact) or pooled buffer the size of `like`."""
        size = int(np.asarray(like).size)
        if self.pooled:
            return self._pooled(size * np.dtype(dtype).itemsize, _CTYPE[dtype])
        return self.array(np.zeros(size), dtype, const=False, prefix="o")

    def scratch(self, nbytes: int) -> str:
        """4-byte aligned scratch of exactly nbytes (even): an int16_t * expression."""
        assert nbytes % 2 == 0
        if self.pooled:
            return self._pooled(nbytes, "int16_t")
        self.n += 1
        name = f"s{self.n}"
        self.decls.append(f"static int16_t {name}[{max(nbytes // 2, 1)}] RNNQ_TEST_ALIGN4;")
        return name

    def end_case(self) -> None:
        """Pooled: check the guards of this case, then reuse the pool."""
        if self.pooled and self._guards:
            cond = " || ".join(f"pool[{g}] != {_GUARD}u" for g in self._guards)
            self.body.append(f'    if ({cond}) {{ puts("FAIL guard"); ++fails; }}')
        self._pool_words = 0
        self._guards = []

    def check(self, got: str, want: str, label: str) -> None:
        self.body.append(
            f'    if (memcmp({got}, {want}, sizeof {want}) != 0) {{ puts("FAIL {label}"); '
            f"++fails; }}"
        )

    def check_value(self, expr: str, want: int, label: str) -> None:
        self.body.append(f'    if (({expr}) != {lit(want)}) {{ puts("FAIL {label}"); ++fails; }}')

    def render(self, headers: tuple[str, ...] = ("rnnq_fixedpoint.h", "rnnq_kernels.h")) -> str:
        pool = []
        if self.pooled:
            pool = [f"static uint32_t pool[{max(self._pool_max, 1)}];"]
        return "\n".join(
            [
                "#include <stdint.h>",
                "#include <stdio.h>",
                "#include <string.h>",
                *[f'#include "{h}"' for h in headers],
                "#if defined(__GNUC__)",
                "#define RNNQ_TEST_ALIGN4 __attribute__((aligned(4)))",
                "#else",
                "#define RNNQ_TEST_ALIGN4",
                "#endif",
                *pool,
                *self.decls,
                "int main(void)",
                "{",
                "    int fails = 0;",
                "    int32_t k;",
                "    (void)k;",
                *self.body,
                '    puts(fails ? "FAILED" : "OK");',
                "    return fails > 255 ? 255 : fails;",
                "}",
                "",
            ]
        )


def struct(prog: CProgram, ctype: str, fields: dict[str, str]) -> str:
    prog.n += 1
    name = f"p{prog.n}"
    init = ", ".join(f".{k} = {v}" for k, v in fields.items())
    prog.decls.append(f"static const {ctype} {name} = {{{init}}};")
    return name


def fields(prog: CProgram, p, arrays: dict, blocks: str | None = None,
           extra: dict | None = None) -> dict[str, str]:
    """Struct initialisers: arrays (name -> C dtype) as const arrays, NULL when empty; the
    remaining dataclass fields as integer literals. blocks: the matvec row blocks of the
    weights (layouts.matvec_blocks), by default those of p's kernel. extra: the C struct's
    fields no dataclass has (name -> int32 array, or None: NULL), as the backend emits them
    (an LSTM's or GRU's rowk)."""
    f = {}
    kind = blocks or _KIND.get(type(p).__name__, "")
    for k, v in vars(p).items():
        if (k in arrays and k in ("w", "rw", "rw_lo") and np.asarray(v).ndim == 2
                and np.asarray(v).size):
            laid = matvec_layout(prog.matvec, kind, p, k, np.asarray(v).astype(np.int8))
            f[k] = prog.weights(laid)
        elif k in arrays:
            f[k] = prog.array(v, arrays[k]) if np.asarray(v).size else "NULL"
        elif isinstance(v, str):
            f[k] = f"RNNQ_BINARY_{v.upper()}"
        else:
            f[k] = lit(int(v))
    for k, v in (extra or {}).items():
        f[k] = "NULL" if v is None or not np.asarray(v).size else prog.array(v, np.int32)
    return f


def recurrent_fields(prog: CProgram, p, arrays: dict, fused: bool) -> dict[str, str]:
    """An LSTM's or GRU's struct initialisers as the C backend emits them: on the unit-major
    step (fused) p reordered, the row constants interleaved in rowk and the separate arrays
    NULL (layouts.fused_emitted), the weights in the variant's layout per block of units;
    otherwise p as it is, rowk NULL."""
    kind = _KIND[type(p).__name__]
    if fused:
        emitted, rowk = fused_emitted(p)
        return fields(prog, emitted, arrays, f"{kind}_fused", {"rowk": rowk})
    return fields(prog, p, arrays, extra={"rowk": None})


_KIND = {"LstmParams": "lstm", "GruParams": "gru", "RnnParams": "rnn", "DenseParams": "dense"}
ROW_ARRAYS = {k: np.int32 for k in ("bias_x", "bias_h", "mult_x", "shift_x", "mult_h", "shift_h")}
ROW_ARRAYS.update(w=np.int8, rw=np.int8, rw_lo=np.int8, h0=np.int8)
LSTM_ARRAYS = {**ROW_ARRAYS, "c0": np.int32, "p": np.int16, "p_mult": np.int32}
LSTM_ARRAYS["p_shift"] = np.int32


def _step_of(x: np.ndarray) -> tuple[str, type]:
    """The recurrent step function's suffix and the C array type for input x."""
    return ("x16", np.int16) if x.dtype == np.int16 else ("s8", np.int8)


def add_lstm(prog: CProgram, p, x: np.ndarray) -> None:
    """An LSTM sequence x [T][I] through rnnq_lstm_step_s8 (rnnq_lstm_step_x16 when x is
    int16; _hi where the C backend calls it), from the params' h0 and c0; on the branch-free
    path also through the unit-major rnnq_lstm_step_*_fused, p reordered as the backend emits
    it (layouts.unit_major, the variant's layout per block of units)."""
    for fused in (False, True) if has_fused(p) and prog.fused else (False,):
        _add_lstm(prog, p, x, fused)


def _add_lstm(prog: CProgram, p, x: np.ndarray, fused: bool) -> None:
    I, H, T = p.input_size, p.hidden_size, x.shape[0]
    y, c = sim.lstm_sequence(p, x)
    wide = p.state_bits == 16  # an int16 h: the _h16 steps
    ht, hw = (np.int16, 2) if wide else (np.int8, 1)
    arrays = {**LSTM_ARRAYS, "h0": ht}
    ps = struct(prog, "rnnq_lstm_params", recurrent_fields(prog, p, arrays, fused))
    step, xt = _step_of(x)
    step += ("_h16" if wide else "") + ("_fused" if fused else "_hi" if hi_path(p) else "")
    xs, yw, cw = prog.array(x, xt), prog.array(y, ht), prog.array(c, np.int32)
    yo, co = prog.out(y, ht), prog.out(c, np.int32)
    h, cs = prog.out(np.zeros(H), ht), prog.out(np.zeros(H), np.int32)
    nbytes = scratch_bytes("qlstm", p, fused)
    scratch = prog.scratch(nbytes)
    label = f"lstm {step} I={I} H={H} T={T}"
    size_fn = "rnnq_lstm_fused_scratch_size" if fused else "rnnq_lstm_scratch_size"
    prog.check_value(f"{size_fn}(&{ps})", nbytes, f"{label} scratch size")
    prog.body += [
        f"    memcpy({h}, {ps}.h0, {hw * H});",
        f"    memcpy({cs}, {ps}.c0, {4 * H});",
        f"    for (k = 0; k < {T}; ++k) {{",
        f"        rnnq_lstm_step_{step}(&{ps}, {xs} + k * {I}, {h}, {cs}, {scratch});",
        f"        memcpy({yo} + k * {H}, {h}, {hw * H});",
        f"        memcpy({co} + k * {H}, {cs}, {4 * H});",
        "    }",
    ]
    prog.check(yo, yw, label)
    prog.check(co, cw, f"{label} cell")
    prog.end_case()


def add_h_rnn(prog: CProgram, kind: str, p, x: np.ndarray) -> None:
    """A GRU / RNN sequence x [T][I] through rnnq_<kind>_step_s8 (_x16 when x is int16; _hi
    where the C backend calls it), from the params' h0; a GRU with a unit-major step through
    rnnq_gru_step_*_fused too."""
    for fused in (False, True) if has_fused(p) and prog.fused else (False,):
        _add_h_rnn(prog, kind, p, x, fused)


def _add_h_rnn(prog: CProgram, kind: str, p, x: np.ndarray, fused: bool) -> None:
    I, H, T = p.input_size, p.hidden_size, x.shape[0]
    y = getattr(sim, f"{kind}_sequence")(p, x)
    wide = getattr(p, "state_bits", 8) == 16  # a GRU's int16 state: the _h16 steps
    ht, hw = (np.int16, 2) if wide else (np.int8, 1)
    arrays = {**ROW_ARRAYS, "h0": ht}
    ps = struct(prog, f"rnnq_{kind}_params",
                recurrent_fields(prog, p, arrays, fused) if kind == "gru"
                else fields(prog, p, arrays))
    step, xt = _step_of(x)
    step += ("_h16" if wide else "") + ("_fused" if fused else "_hi" if hi_path(p) else "")
    xs, yw, yo = prog.array(x, xt), prog.array(y, ht), prog.out(y, ht)
    h = prog.out(np.zeros(H), ht)
    nbytes = scratch_bytes(f"q{kind}", p, fused)
    scratch = prog.scratch(nbytes)
    label = f"{kind} {step} I={I} H={H} T={T}"
    size_fn = f"rnnq_{kind}_fused_scratch_size" if fused else f"rnnq_{kind}_scratch_size"
    prog.check_value(f"{size_fn}(&{ps})", nbytes, f"{label} scratch size")
    prog.body += [
        f"    memcpy({h}, {ps}.h0, {hw * H});",
        f"    for (k = 0; k < {T}; ++k) {{",
        f"        rnnq_{kind}_step_{step}(&{ps}, {xs} + k * {I}, {h}, {scratch});",
        f"        memcpy({yo} + k * {H}, {h}, {hw * H});",
        "    }",
    ]
    prog.check(yo, yw, label)
    prog.end_case()


def add_dense(prog: CProgram, p, x: np.ndarray) -> None:
    """rnnq_dense_s8 on x [rows][K]."""
    K, N, rows = p.in_features, p.out_features, x.shape[0]
    f = fields(prog, p, {"w": np.int8, "bias": np.int32, "mult": np.int32, "shift": np.int32})
    ps = struct(prog, "rnnq_dense_params", f)
    want = sim.dense(p, x)
    xs, w, o = prog.array(x, np.int8), prog.array(want, np.int8), prog.out(want, np.int8)
    nbytes = scratch_bytes("qdense", p)
    scratch = prog.scratch(nbytes)
    prog.check_value(f"rnnq_dense_scratch_size(&{ps})", nbytes, f"dense K={K} N={N} scratch")
    prog.body.append(f"    rnnq_dense_s8(&{ps}, {xs}, {o}, {rows}, {scratch});")
    prog.check(o, w, f"dense K={K} N={N} rows={rows}")
    prog.end_case()


def add_matvec(
    prog: CProgram, w: np.ndarray, x: np.ndarray, w_off: int = 0, x_off: int = 0
) -> None:
    """rnnq_matvec_s8 (int8 x) or rnnq_matvec_s8_s16 (int16 x): out = w [rows][cols] . x, with
    w and x placed w_off bytes / x_off elements past the start of their arrays (misaligned)."""
    rows, cols = w.shape
    want = np.asarray(w, np.int64) @ np.asarray(x, np.int64)
    assert want.size == 0 or (want.min() >= INT32_MIN and want.max() <= INT32_MAX)
    wide = x.dtype == np.int16
    wl = matvec_layout(prog.matvec, "matvec", None, "w", np.asarray(w).astype(np.int8))
    if wl.dtype == np.int32:  # arm_dsp_w16: word-aligned int32 arrays only (its precondition)
        w_off = 0
        ws = prog.weights(wl)
    else:
        ws = prog.array(np.concatenate([np.zeros(w_off, np.int64), wl.ravel()]), np.int8)
    xs = prog.array(np.concatenate([np.zeros(x_off, np.int64), x]), x.dtype.type)
    ww = prog.array(want, np.int32)
    o = prog.out(want, np.int32)
    xbuf = prog.scratch((cols + 1) // 2 * 4)
    fn = "rnnq_matvec_s8_s16" if wide else "rnnq_matvec_s8"
    label = f"{fn} rows={rows} cols={cols} off={w_off},{x_off}"
    prog.check_value(f"rnnq_matvec_xbuf_size({cols})", (cols + 1) // 2 * 4, f"{label} xbuf")
    if rows:  # out starts as garbage: every row must be written
        prog.body.append(f"    memset({o}, 0xA5, {4 * rows});")
    prog.body.append(f"    {fn}({ws} + {w_off}, {xs} + {x_off}, {rows}, {cols}, {o}, {xbuf});")
    if rows:
        prog.check(o, ww, label)
    if rows and prog.fused:
        # the same product with x packed first (rnnq_matvec_pack_* + rnnq_matvec_packed_*)
        width = "s16" if wide else "s8"
        prog.body += [f"    memset({o}, 0xA5, {4 * rows});",
                      f"    rnnq_matvec_pack_{width}({xs} + {x_off}, {cols}, {xbuf});",
                      (f"    rnnq_matvec_packed_{width}({ws} + {w_off}, {xbuf}, {rows}, "
                       f"{cols}, {o});")]
        prog.check(o, ww, f"{label} packed")
    prog.end_case()
