"""rnnq: float ONNX recurrent networks -> integer-only fixed-point programs.

The Python API (what the CLI runs), for notebooks and scripts:

    import rnnq
    manifest = rnnq.compile("model.onnx", calib_x, "build/", target="cortex-m4")
    report = rnnq.validate("build/", {"x": test_x, "y": test_y})
    outputs = rnnq.simulate("build/", test_x)      # {output name: numpy array}
    print(rnnq.inspect("build/"))

Data may be an .npz path, the array x [N, T, F], or a mapping with the .npz's keys (x, and
optionally lengths, y and initial-state inputs). Errors are rnnq.RnnqError with the one-line
message the CLI prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnq.ir import RnnqError
from rnnq.version import __version__

__all__ = ["RnnqError", "__version__", "compile", "inspect", "simulate", "validate"]


def compile(model: str | Path, calib: Any, out_dir: str | Path = "build",
            target: str = "generic-c99", **options: Any) -> dict:
    """ONNX model + calibration data -> a build folder; returns its manifest. `options` are
    rnnq.api.compile_model's (the CLI's options: prefix, calib_method, seq_len, max_steps,
    headroom, input_bits, output_bits, state_bits, flash, ram, fmt="c"|"tflite", float_io,
    tflite_loop)."""
    from rnnq import api

    return api.compile_model(model, calib, out_dir, target, **options)


def validate(build: str | Path, data: Any, on: str = "host", per_layer: bool = False) -> dict:
    """Float model vs integer simulator vs the build on data: the report `rnnq validate --json`
    writes (accuracy or RMSE, SQNR, error by step, bit-exactness; per_layer: where error
    enters)."""
    from rnnq import api

    return api.validate(build, data, on=on, per_layer=per_layer)


def simulate(build: str | Path, x: Any, integer: bool = False) -> dict:
    """The build's outputs on x as its integer model computes them (bit for bit what the C or
    LiteRT computes), keyed by the ONNX output names: [N, T, ...] per timestep or [N, ...] at
    each sequence's end; dequantised floats, or the integers with integer=True."""
    from rnnq import api

    return api.simulate(build, x, integer)


def inspect(path: str | Path) -> str:
    """What `rnnq inspect` prints about a model or a build folder."""
    from rnnq import api

    return api.inspect(path)
