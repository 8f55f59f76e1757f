"""Fixtures for the numerics tests: the C mirror (rnnq_fixedpoint.h) as a ctypes library."""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import numpy as np
import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

import cbuild

SHIM = Path(__file__).with_name("fixedpoint_shim.c")

_P = ctypes.c_void_p
_I32 = ctypes.c_int32


class FixedpointLib:
    """numpy-array front end of tests/numerics/fixedpoint_shim.c (one C loop per call)."""

    def __init__(self, path: Path):
        lib = ctypes.CDLL(str(path))
        for name, nargs in [
            ("shim_sat", 2),
            ("shim_rshift_round", 3),
            ("shim_rshift_round64", 3),
            ("shim_requant", 4),
            ("shim_tanh_q15", 3),
            ("shim_sigmoid_q15", 3),
            ("shim_div_round", 3),
            ("shim_isqrt_round", 2),
        ]:
            fn = getattr(lib, name)
            fn.argtypes = [_P] * nargs + [_I32] + ([_I32] if name == "shim_sat" else [])
            fn.restype = None
        lib.shim_tanh_table.argtypes = [_P]
        lib.shim_tanh_table.restype = _I32
        self.lib = lib

    @staticmethod
    def _arr(a, dtype) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=dtype)

    def _call(self, name, out_dtype, *ins):
        n = ins[0][0].size
        args = [self._arr(np.broadcast_to(a, (n,)), dt) for a, dt in ins]
        y = np.empty(n, dtype=out_dtype)
        getattr(self.lib, name)(*[a.ctypes.data for a in args], y.ctypes.data, n)
        return y

    def sat(self, x, bits: int) -> np.ndarray:
        x = self._arr(x, np.int64).ravel()
        y = np.empty_like(x)
        self.lib.shim_sat(x.ctypes.data, y.ctypes.data, x.size, bits)
        return y

    def rshift_round(self, x, n) -> np.ndarray:
        x = np.ravel(x)
        return self._call("shim_rshift_round", np.int32, (x, np.int32), (n, np.int32))

    def rshift_round64(self, x, n) -> np.ndarray:
        x = np.ravel(x)
        return self._call("shim_rshift_round64", np.int64, (x, np.int64), (n, np.int32))

    def requant(self, x, mult, shift) -> np.ndarray:
        x = np.ravel(x)
        return self._call(
            "shim_requant", np.int32, (x, np.int32), (mult, np.int32), (shift, np.int32)
        )

    def tanh_q15(self, x, frac_bits) -> np.ndarray:
        x = np.ravel(x)
        return self._call("shim_tanh_q15", np.int32, (x, np.int32), (frac_bits, np.int32))

    def sigmoid_q15(self, x, frac_bits) -> np.ndarray:
        x = np.ravel(x)
        return self._call("shim_sigmoid_q15", np.int32, (x, np.int32), (frac_bits, np.int32))

    def div_round(self, a, b) -> np.ndarray:
        a = np.ravel(a)
        return self._call("shim_div_round", np.int32, (a, np.int32), (b, np.int32))

    def isqrt_round(self, x) -> np.ndarray:
        return self._call("shim_isqrt_round", np.int32, (np.ravel(x), np.uint32))

    def tanh_table(self) -> np.ndarray:
        out = np.zeros(2048, dtype=np.int16)
        n = self.lib.shim_tanh_table(out.ctypes.data)
        return out[:n]


@pytest.fixture(scope="session")
def fixedpoint_c() -> FixedpointLib:
    """rnnq_fixedpoint.h compiled with gcc (house flags, -O2) behind a ctypes shim."""
    path = cbuild.compile_shared([SHIM], (*cbuild.STRICT_FLAGS, "-O2"))
    return FixedpointLib(path)
