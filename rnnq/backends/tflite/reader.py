"""Read a `.tflite` file back into a `TGraph`.

`validate` runs the simulator on what the file holds (not on what the compiler meant to write),
and the same reader lets the simulator run `.tflite` files made by other tools (TensorFlow's
converter) — the independent check of the LiteRT profile.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.TensorType import TensorType

from rnnq.backends.tflite.writer import schema_module
from rnnq.ir import RnnqError
from rnnq.ir.tgraph import TGraph, TTensor

_OPS = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
_OPTIONS = {v: k for k, v in vars(BuiltinOptions).items() if not k.startswith("_")}
_TYPES = {TensorType.FLOAT32: "float32", TensorType.INT8: "int8", TensorType.INT16: "int16",
          TensorType.INT32: "int32", TensorType.INT64: "int64", TensorType.UINT8: "uint8",
          TensorType.BOOL: "bool"}


def _scalar_fields(obj) -> dict:
    """The scalar fields of a generated options table, by schema name."""
    out = {}
    for name, fn in inspect.getmembers(type(obj), inspect.isfunction):
        if (not name[0].isupper() or name.startswith(("GetRootAs", "Init"))
                or name.endswith(("AsNumpy", "Length", "IsNone", "BufferHasIdentifier"))
                or len(inspect.signature(fn).parameters) != 1):
            continue
        out[name] = getattr(obj, name)()
    return out


def _options(op) -> dict:
    kind = op.BuiltinOptionsType()
    table = op.BuiltinOptions()
    if kind == 0 or table is None:
        return {}
    cls = getattr(schema_module(_OPTIONS[kind]), _OPTIONS[kind])
    obj = cls()
    obj.Init(table.Bytes, table.Pos)
    return _scalar_fields(obj)


def _tensor(model, sub, i: int) -> TTensor:
    t = sub.Tensors(i)
    dtype = _TYPES.get(t.Type())
    name = t.Name().decode()
    if dtype is None:
        raise RnnqError(f"tensor {name}: type {t.Type()} is not supported")
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    data = None
    buf = model.Buffers(t.Buffer())
    if buf is not None and buf.DataLength():
        raw = buf.DataAsNumpy().tobytes()
        data = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
        data = data.reshape(shape)
    tt = TTensor(name, dtype, shape, data=data, variable=bool(t.IsVariable()))
    q = t.Quantization()
    if q is not None and q.ScaleLength():
        scales = q.ScaleAsNumpy().astype(np.float32)
        zps = q.ZeroPointAsNumpy().astype(np.int64) if q.ZeroPointLength() else \
            np.zeros(len(scales), np.int64)
        if len(scales) == 1:
            tt.scale, tt.zero_point = np.float32(scales[0]), int(zps[0])
        else:
            tt.scale, tt.zero_point, tt.qdim = scales, zps, int(q.QuantizedDimension())
    return tt


def read_tflite(path: str | Path | bytes) -> TGraph:
    """The main subgraph, with the file's other subgraphs (WHILE bodies) in `.subgraphs`."""
    raw = path if isinstance(path, bytes) else Path(path).read_bytes()
    where = "model" if isinstance(path, bytes) else str(path)
    Model = schema_module("Model").Model
    if len(raw) < 8 or raw[4:8] != b"TFL3":
        raise RnnqError(f"{where}: not a .tflite file")
    model = Model.GetRootAs(raw, 0)
    graphs = [_subgraph(model, k) for k in range(model.SubgraphsLength())]
    graphs[0].subgraphs = graphs[1:]
    return graphs[0]


def _subgraph(model, k: int) -> TGraph:
    sub = model.Subgraphs(k)
    g = TGraph(description=(model.Description() or b"").decode())
    g.tensors = [_tensor(model, sub, i) for i in range(sub.TensorsLength())]
    codes = []
    for j in range(model.OperatorCodesLength()):
        c = model.OperatorCodes(j)
        codes.append(_OPS[max(c.BuiltinCode(), c.DeprecatedBuiltinCode())])
    for j in range(sub.OperatorsLength()):
        op = sub.Operators(j)
        node = g.op(codes[op.OpcodeIndex()], _ints(op.InputsLength(), op.InputsAsNumpy),
                    _ints(op.OutputsLength(), op.OutputsAsNumpy), **_options(op))
        if op.IntermediatesLength():
            node.intermediates = [int(v) for v in op.IntermediatesAsNumpy()]
    g.inputs = _ints(sub.InputsLength(), sub.InputsAsNumpy)
    g.outputs = _ints(sub.OutputsLength(), sub.OutputsAsNumpy)
    return g


def _ints(length: int, values) -> list[int]:
    return [int(v) for v in values()] if length else []
