"""Serialise a `TGraph` to a `.tflite` flatbuffer with the `tflite` package's generated builders.

The schema's builder functions do the encoding; this module only orders the calls. Two things
LiteRT insists on that the builders do not do for us: buffer 0 is the empty sentinel, and
constant data is 16-byte aligned (we align each buffer's byte vector). Operator codes carry
both `builtin_code` and the legacy `deprecated_builtin_code` (capped at 127, as the schema says).
"""

from __future__ import annotations

import importlib
from typing import Any

import flatbuffers
import numpy as np
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.TensorType import TensorType

from rnnq.ir.tgraph import TGraph, TTensor


def schema_module(table: str) -> Any:
    """The generated module of one schema table (the package re-exports the classes under
    the same names, which hide the module-level builder functions)."""
    return importlib.import_module(f"tflite.{table}")


Tensor, Operator, SubGraph, Model = (schema_module(n) for n in ("Tensor", "Operator", "SubGraph", "Model"))
QuantParams, OperatorCode, Buffer = (schema_module(n) for n in ("QuantizationParameters",
                                                          "OperatorCode", "Buffer"))

# Builtin options table per operator (operators absent here take no options).
OPTIONS = {
    "FULLY_CONNECTED": "FullyConnectedOptions", "ADD": "AddOptions", "SUB": "SubOptions",
    "MUL": "MulOptions", "CONCATENATION": "ConcatenationOptions", "RESHAPE": "ReshapeOptions",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "UnidirectionalSequenceLSTMOptions",
    "SOFTMAX": "SoftmaxOptions", "REVERSE_V2": "ReverseV2Options", "UNPACK": "UnpackOptions",
    "PACK": "PackOptions", "MEAN": "ReducerOptions", "STRIDED_SLICE": "StridedSliceOptions",
    "QUANTIZE": "QuantizeOptions", "DEQUANTIZE": "DequantizeOptions", "GATHER": "GatherOptions",
    "SPLIT": "SplitOptions", "WHILE": "WhileOptions", "LESS": "LessOptions",
    "PAD": "PadOptions", "LEAKY_RELU": "LeakyReluOptions",
}
# Operator versions as TensorFlow's converter records them for int8 kernels (informative only:
# LiteRT's resolver accepts any registered version; older runtimes use it to refuse new files).
VERSIONS = {"FULLY_CONNECTED": 4, "ADD": 2, "SUB": 2, "MUL": 2, "LOGISTIC": 2, "TANH": 2,
            "CONCATENATION": 2, "SOFTMAX": 2, "UNIDIRECTIONAL_SEQUENCE_LSTM": 3, "MEAN": 2,
            "QUANTIZE": 2, "DEQUANTIZE": 2, "PACK": 2, "UNPACK": 2, "STRIDED_SLICE": 2,
            "REVERSE_V2": 2, "GATHER": 2, "SPLIT": 2, "PAD": 2, "LEAKY_RELU": 2}
TYPES = {"float32": TensorType.FLOAT32, "int8": TensorType.INT8, "int16": TensorType.INT16,
         "int32": TensorType.INT32, "int64": TensorType.INT64, "uint8": TensorType.UINT8,
         "bool": TensorType.BOOL}


def _vector(b: flatbuffers.Builder, start: Any, items: list[int], add: str = "PrependInt32") -> int:
    start(b, len(items))
    for item in reversed(items):
        getattr(b, add)(item)
    return b.EndVector()


def _bytes(b: flatbuffers.Builder, data: bytes) -> int:
    """A ubyte vector whose first byte lands on a 16-byte boundary."""
    b.StartVector(1, len(data), 16)
    b.head -= len(data)
    b.Bytes[b.head:b.head + len(data)] = data
    return b.EndVector()


def _quantization(b: flatbuffers.Builder, t: TTensor) -> int | None:
    if not t.quantized:
        return None
    scales = [float(s) for s in t.scales()]
    zps = [int(z) for z in t.zero_points()]
    if len(zps) == 1 and len(scales) > 1:
        zps = zps * len(scales)
    qp = QuantParams
    sv = _vector(b, qp.StartScaleVector, scales, "PrependFloat32")
    zv = _vector(b, qp.StartZeroPointVector, zps, "PrependInt64")
    qp.Start(b)
    qp.AddScale(b, sv)
    qp.AddZeroPoint(b, zv)
    qp.AddQuantizedDimension(b, t.qdim)
    return qp.End(b)


def _options(b: flatbuffers.Builder, kind: str, options: dict[str, Any]) -> tuple[int, int]:
    table = OPTIONS.get(kind)
    if table is None:
        if options:
            raise ValueError(f"{kind} takes no builtin options, got {sorted(options)}")
        return 0, 0
    mod = schema_module(table)
    mod.Start(b)
    for key, value in options.items():
        getattr(mod, "Add" + key)(b, value)
    return getattr(BuiltinOptions, table), mod.End(b)


def _subgraph(b: flatbuffers.Builder, g: TGraph, codes: dict[str, int],
              buffers: list[bytes], shared: dict) -> int:
    tensors = []
    for t in g.tensors:
        buf = 0
        if t.data is not None:
            buffers.append(np.ascontiguousarray(t.data).astype(t.data.dtype.newbyteorder("<"))
                           .tobytes())
            buf = len(buffers) - 1
        name = b.CreateString(t.name)
        # identical shapes and quantisations are written once and shared (an unrolled
        # recurrence repeats them at every step)
        skey = ("shape", tuple(t.shape))
        if skey not in shared:
            shared[skey] = _vector(b, Tensor.StartShapeVector, list(t.shape))
        shape = shared[skey]
        qkey = ("quant", t.qdim, tuple(np.atleast_1d(np.asarray(t.scale, np.float32)).tolist()),
                tuple(t.zero_points().tolist())) if t.quantized else None
        if qkey is not None and qkey not in shared:
            shared[qkey] = _quantization(b, t)
        quant = shared.get(qkey)
        Tensor.Start(b)
        Tensor.AddShape(b, shape)
        Tensor.AddType(b, TYPES[t.dtype])
        Tensor.AddBuffer(b, buf)
        Tensor.AddName(b, name)
        if quant is not None:
            Tensor.AddQuantization(b, quant)
        if t.variable:
            Tensor.AddIsVariable(b, True)
        tensors.append(Tensor.End(b))
    ops = []
    for node in g.ops:
        ins = _vector(b, Operator.StartInputsVector, node.inputs)
        outs = _vector(b, Operator.StartOutputsVector, node.outputs)
        inter = (_vector(b, Operator.StartIntermediatesVector, node.intermediates)
                 if node.intermediates else None)
        otype, opts = _options(b, node.kind, node.options)
        Operator.Start(b)
        Operator.AddOpcodeIndex(b, codes[node.kind])
        Operator.AddInputs(b, ins)
        Operator.AddOutputs(b, outs)
        if otype:
            Operator.AddBuiltinOptionsType(b, otype)
            Operator.AddBuiltinOptions(b, opts)
        if inter is not None:
            Operator.AddIntermediates(b, inter)
        ops.append(Operator.End(b))
    sg = SubGraph
    tv = _offsets(b, sg.StartTensorsVector, tensors)
    ov = _offsets(b, sg.StartOperatorsVector, ops)
    iv = _vector(b, sg.StartInputsVector, g.inputs)
    outv = _vector(b, sg.StartOutputsVector, g.outputs)
    name = b.CreateString("main")
    sg.Start(b)
    sg.AddTensors(b, tv)
    sg.AddInputs(b, iv)
    sg.AddOutputs(b, outv)
    sg.AddOperators(b, ov)
    sg.AddName(b, name)
    return sg.End(b)


def _offsets(b: flatbuffers.Builder, start: Any, items: list[int]) -> int:
    start(b, len(items))
    for item in reversed(items):
        b.PrependUOffsetTRelative(item)
    return b.EndVector()


def to_flatbuffer(graphs: TGraph | list[TGraph]) -> bytes:
    """Encode a graph (with its `subgraphs` after it) as a TFLite model file."""
    graphs = [graphs, *graphs.subgraphs] if isinstance(graphs, TGraph) else graphs
    kinds = sorted({node.kind for g in graphs for node in g.ops})
    codes = {k: i for i, k in enumerate(kinds)}
    b = flatbuffers.Builder(1 << 16)
    buffers: list[bytes] = [b""]
    shared: dict = {}
    subgraphs = [_subgraph(b, g, codes, buffers, shared) for g in graphs]
    opcodes = []
    for kind in kinds:
        code = getattr(BuiltinOperator, kind)
        OperatorCode.Start(b)
        OperatorCode.AddDeprecatedBuiltinCode(b, min(code, 127))
        OperatorCode.AddBuiltinCode(b, code)
        OperatorCode.AddVersion(b, VERSIONS.get(kind, 1))
        opcodes.append(OperatorCode.End(b))
    bufs = []
    for data in buffers:
        dv = _bytes(b, data) if data else None
        Buffer.Start(b)
        if dv is not None:
            Buffer.AddData(b, dv)
        bufs.append(Buffer.End(b))
    cv = _offsets(b, Model.StartOperatorCodesVector, opcodes)
    sv = _offsets(b, Model.StartSubgraphsVector, subgraphs)
    bv = _offsets(b, Model.StartBuffersVector, bufs)
    desc = b.CreateString(graphs[0].description)
    Model.Start(b)
    Model.AddVersion(b, 3)
    Model.AddOperatorCodes(b, cv)
    Model.AddSubgraphs(b, sv)
    Model.AddDescription(b, desc)
    Model.AddBuffers(b, bv)
    b.Finish(Model.End(b), file_identifier=b"TFL3")
    return bytes(b.Output())
