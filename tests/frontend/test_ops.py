"""Every supported ONNX op, after and (pointwise/layout ops) before an LSTM, in the arrangements
exporters and hand-written models use (cases_compute.py, cases_layout.py): float reference ==
ONNX runtime within 1e-5, then the compiled C == the bit-exact simulator at every step (target
host, ASan/UBSan); the integer SQNR is printed."""

from __future__ import annotations

from pathlib import Path

import cases_compute  # noqa: F401 - registers its cases
import cases_conv  # noqa: F401 - registers its cases
import cases_layout  # noqa: F401 - registers its cases
import onnx
import pytest
from onnx_cases import (
    CASES,
    build_case,
    check_compiled,
    check_float,
    random_sequence,
    run_parallel,
    selected_params,
)

from rnnq.frontend.onnx import SUPPORTED_OPS
from tests.conftest import require_tool

#: ONNX ops whose tests are the recurrent variants (tests/variants, tests/fixtures), not cases
#: around an LSTM here.
ELSEWHERE = {"GRU", "RNN"}

def _params():
    return list(CASES)


@pytest.fixture(scope="module")
def compiled(request, tmp_path_factory) -> dict[str, dict | BaseException]:
    """Compile + validate every selected case up front, in parallel; report or error by case."""
    root = tmp_path_factory.mktemp("compiled")

    def job(name: str):
        (root / name).mkdir()
        return lambda: check_compiled(build_case(name, root / name), root / name)

    return run_parallel({name: job(name) for name in selected_params(request, "test_op", "name")})


@pytest.mark.parametrize("name", _params())
def test_op(name: str, tmp_path: Path, request) -> None:
    """Float reference == ONNX (1e-5), then compiled C == simulator at every step."""
    path = build_case(name, tmp_path)
    check_float(path, random_sequence(path))
    require_tool("cc")
    require_tool("make")
    rep = request.getfixturevalue("compiled")[name]
    if isinstance(rep, BaseException):
        raise rep
    print(f"{name}: integer SQNR {rep['int']['sqnr_db']:.1f} dB, "
          f"{rep['c']['compared_values']} C values bit-exact")
    assert rep["int"]["sqnr_db"] > 10.0


def test_every_supported_op_is_covered(tmp_path: Path) -> None:
    """Every op the importer claims (rnnq.frontend.onnx.SUPPORTED_OPS) appears in a case here."""
    seen = set()
    for name in CASES:
        seen |= {nd.op_type for nd in onnx.load(str(build_case(name, tmp_path))).graph.node}
    assert set(SUPPORTED_OPS) - ELSEWHERE <= seen, set(SUPPORTED_OPS) - ELSEWHERE - seen
