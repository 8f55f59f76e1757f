"""templates/c/runtime/rnnq_tables.h is exactly what tools/gen_tables.py prints from numerics."""

from __future__ import annotations

import importlib.util
import itertools
import re
from pathlib import Path

from rnnq import numerics as nq

ROOT = Path(__file__).resolve().parents[2]
HEADER = ROOT / "templates" / "c" / "runtime" / "rnnq_tables.h"
GEN = ROOT / "tools" / "gen_tables.py"


def _gen_module():
    spec = importlib.util.spec_from_file_location("rnnq_gen_tables", GEN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_header_table_values_equal_python_table():
    text = HEADER.read_text()
    m = re.search(r"rnnq_tanh_table\[(\d+)\]\s*=\s*\{([^}]*)\}", text)
    assert m is not None
    values = [int(v) for v in m.group(2).replace("\n", " ").split(",")]
    assert int(m.group(1)) == len(values) == nq.TABLE_SIZE
    assert values == list(nq.TANH_TABLE)


def test_header_pairs_are_adjacent_table_entries():
    """rnnq_tanh_pairs[k] (the AVX2 builds' lookups) holds entries k and k + 1 of the table."""
    m = re.search(r"rnnq_tanh_pairs\[(\d+)\]\s*=\s*\{([^}]*)\}", HEADER.read_text())
    assert m is not None
    values = [int(v) for v in m.group(2).replace("\n", " ").split(",")]
    assert int(m.group(1)) == len(values) == nq.TABLE_SIZE - 1
    assert [(v & 0xFFFF, v >> 16) for v in values] == list(itertools.pairwise(nq.TANH_TABLE))
    assert all(0 <= v < 2**31 for v in values)


def test_committed_header_is_regenerated_text():
    gen = _gen_module()
    assert HEADER.read_text() == gen.render(), "run: python tools/gen_tables.py"
    assert gen.main(["--check", str(HEADER)]) == 0


def test_no_floating_point_in_c_runtime():
    """The runtime is integer only: not even the words appear."""
    for path in sorted((ROOT / "templates" / "c" / "runtime").glob("*.[ch]")):
        words = set(re.findall(r"[A-Za-z_]+", path.read_text()))
        assert not words & {"float", "double"}, path.name
