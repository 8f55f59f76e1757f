"""The .npz data format: `x` float [N, T, F]; optional `lengths` int [N]; optional `y`.

A model run once per timestep (a streaming export with state inputs) takes a *stream file*:
its input under `x` or its ONNX name as [N, T, *the ONNX input shape] (N streams of T calls),
and each state input under its name as [N, *its shape] (the initial state; absent = zeros).

`y` holds int class ids [N] (classifiers) or float targets shaped like the model's final output
per sequence ([N, ...]). Sequences shorter than T are padded at the end; `lengths` says how many
steps of each are real (default: all T).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnq.files import data_file
from rnnq.ir import Graph, RnnqError


@dataclass
class Dataset:
    x: np.ndarray  # float32 [N, T, F]
    lengths: np.ndarray  # int64 [N]
    y: np.ndarray | None
    states: dict[str, np.ndarray] | None = None  # initial-state model inputs, [N, *shape]

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


#: What data may be: an .npz path, the array x [N, T, F], or a mapping of the .npz's arrays.
DataSource = str | Path | np.ndarray | Mapping[str, np.ndarray]


def _arrays(source: DataSource) -> tuple[dict[str, np.ndarray], str]:
    """The named arrays of a data source, and how errors name it."""
    if isinstance(source, np.ndarray):
        return {"x": source}, "data"
    if isinstance(source, Mapping):
        return {str(k): np.asarray(v) for k, v in source.items()}, "data"
    path = data_file(source)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise RnnqError(f"{path}: no such file") from None
    except Exception as e:  # noqa: BLE001 - numpy raises many kinds for a bad archive
        raise RnnqError(f"{path}: not a readable .npz file ({type(e).__name__})") from None
    for k, v in arrays.items():
        if not isinstance(v, np.ndarray):  # a zip member that is not a .npy comes as bytes
            raise RnnqError(f"{path}: {k!r} is not a numpy array (.npy) member")
    return arrays, str(path)


def load_npz(source: DataSource, graph: Graph) -> Dataset:
    """Read and check data against the model's input; every error names the file (or
    "data" for arrays passed in memory)."""
    arrays, path = _arrays(source)
    name = graph.inputs[0]
    key = "x" if "x" in arrays else name if name in arrays else None
    if key is None:
        raise RnnqError(f"{path}: no array 'x' (or {name!r}); keys are {sorted(arrays)}")
    x = arrays[key]
    feat = graph.tensors[name].size
    if x.ndim == 2 and feat == 1:
        x = x[:, :, None]
    if x.ndim > 3 and tuple(x.shape[2:]) == tuple(graph.tensors[name].shape):
        x = x.reshape(*x.shape[:2], feat)  # [N, T, *the ONNX input shape] (a stream file)
    ids = graph.tensors[name].dtype == "int64"
    if ids and not np.issubdtype(x.dtype, np.integer):
        raise RnnqError(f"{path}: '{key}' must hold integer token ids for this model")
    if x.ndim != 3 or x.shape[2] != feat or x.shape[0] == 0 or x.shape[1] == 0:
        shape = list(graph.tensors[name].shape)
        also = f" or [N, T, *{shape}]" if len(shape) > 1 else ""
        raise RnnqError(f"{path}: '{key}' has shape {list(x.shape)}, the model needs "
                        f"[N, T, {feat}]{also} (N, T >= 1)")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise RnnqError(f"{path}: '{key}' has dtype {x.dtype}, expected real numbers")
    x = x.astype(np.int64 if ids else np.float32)
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise RnnqError(f"{path}: '{key}' holds NaN or Inf (first at index {bad.tolist()})")
    n, t_len = x.shape[:2]
    lengths = np.full(n, t_len, dtype=np.int64)
    if "lengths" in arrays:
        lg = arrays["lengths"]
        if lg.shape != (n,) or not np.issubdtype(lg.dtype, np.integer):
            raise RnnqError(f"{path}: 'lengths' must be int [{n}], got {lg.dtype} {list(lg.shape)}")
        if lg.min() < 1 or lg.max() > t_len:
            raise RnnqError(f"{path}: 'lengths' must lie in 1..{t_len}")
        lengths = lg.astype(np.int64)
    y = arrays.get("y")
    if y is not None:
        if y.ndim == 0 or y.shape[0] != n:
            raise RnnqError(f"{path}: 'y' has shape {list(y.shape)}; it needs one row per "
                            f"sequence ({n})")
        if not np.issubdtype(y.dtype, np.number) or np.issubdtype(y.dtype, np.complexfloating):
            raise RnnqError(f"{path}: 'y' has dtype {y.dtype}; labels are integers, regression "
                            "targets real numbers")
        if np.issubdtype(y.dtype, np.floating) and not np.all(np.isfinite(y)):
            raise RnnqError(f"{path}: 'y' holds NaN or Inf")
        _check_y(path, y, graph, t_len)
    states = {}
    for sname, info in graph.meta.get("state_inputs", {}).items():
        if sname not in arrays:
            continue  # zeros
        v = arrays[sname]
        if list(v.shape) != [n, *info["shape"]] or not np.all(np.isfinite(v)):
            raise RnnqError(f"{path}: '{sname}' must be finite floats of shape "
                            f"{[n, *info['shape']]}, got {list(v.shape)}")
        states[sname] = v.astype(np.float64)
    return Dataset(x, lengths, y, states)


def _check_y(path: str, y: np.ndarray, graph: Graph, t_len: int) -> None:
    """Class ids within the first output's classes (0/1 for one output); float targets of the
    first output's size (per sequence, or per step)."""
    out = graph.outputs[0]
    k = graph.tensors[out].size
    if np.issubdtype(y.dtype, np.integer):
        top = max(k, 2)
        if y.size and (y.min() < 0 or y.max() >= top):
            bad = int(y.min() if y.min() < 0 else y.max())
            raise RnnqError(f"{path}: 'y' holds class {bad}; the model's first output "
                            f"{out!r} has {k} values (classes 0..{top - 1})")
        return
    per = int(np.prod(y.shape[1:], dtype=np.int64))
    if per not in (k, k * t_len):
        raise RnnqError(f"{path}: 'y' has {per} values per sequence; the model's first output "
                        f"{out!r} has {k} per step")


def valid_mask(lengths: np.ndarray, t_len: int) -> np.ndarray:
    """[N, T] True where a step is real data."""
    return np.arange(t_len)[None, :] < lengths[:, None]


def at_last_step(a: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """[N, T, ...] -> [N, ...]: each sequence's value at its last real step."""
    return a[np.arange(a.shape[0]), lengths - 1]


def playback(data: Dataset, seq_len: int, seed: int = 0) -> Dataset:
    """Streams of exactly seq_len steps made of the calibration sequences played back to back:
    the real steps of every sequence, in a random (seeded) order of sequences, repeated until
    they fill at least one stream, cut into as many streams as they fill.

    What `--seq-len` calibrates on when the deployed sequences are longer than the calibration
    ones: they show the float model the states it reaches after seq_len steps (cell states grow
    with time). Every calibration step is used, each once per repetition."""
    order = np.random.default_rng(seed).permutation(data.n)
    steps = np.concatenate([data.x[i, : data.lengths[i]] for i in order])
    reps = -(-seq_len // len(steps))  # at least one whole stream
    steps = np.concatenate([steps] * reps) if reps > 1 else steps
    count = len(steps) // seq_len
    streams = steps[: count * seq_len].reshape(count, seq_len, *data.x.shape[2:])
    return Dataset(streams, np.full(count, seq_len, dtype=np.int64), None)
