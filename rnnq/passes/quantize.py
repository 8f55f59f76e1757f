"""Quantisation: calibrated float IR -> integer IR.

Requires stage CALIBRATED, produces stage INTEGER. Choices (see README "Numerics"):

- activations between layers: int8 asymmetric from the calibrated range (0 always included);
- the model input: int8 with one (scale, zero point) per feature when every consumer is a
  linear layer (recurrent, dense), whose weights then absorb the per-feature scales, and
  graph.meta["input_scales"] is "feature" (the compiler measures both and keeps the better:
  per-feature scales resolve small features finely, but folded into a weight row they make
  the row's step as coarse as its widest feature needs, which costs the small features'
  weights); else per-tensor; integer inputs (token ids) stay integers. With
  graph.meta["input_bits"] = 16: int16, symmetric (max |v| / 32767), scales chosen the same
  way;
- a 16-bit front end: an int16 tensor stays int16 through the ops that have int16 kernels
  (index maps, concatenation, dense/Conv with int8 weights while the int32 accumulator bound
  holds, magnitude) and is read as it is by recurrent layers (their _x16 steps); any other
  consumer reads it requantised to int8. So a raw signal (audio) framed, transformed and
  convolved in front of the recurrence keeps 16 bits up to it (`input16_possible`);
- weights: int8 symmetric, one scale per output row (per gate row for recurrent layers);
- recurrent internals: passes/quantize_rnn.py;
- concatenated tensors share one scale (their producers are given the same range);
- int16 and int32 tensors (a 16-bit h, the LSTM cell) become int8 through a requantisation
  where they leave; with graph.meta["output_bits"] = 16 (--output-bits auto / 16) an int16
  tensor that reaches a model output through views, index maps, concatenation of int16
  tensors and dense layers (16x8: int16 in, int8 weights, int16 out, while the accumulator
  bound holds) stays int16 up to the output, which keeps its 16-bit scale (`output16_path`);
  an int32 LSTM cell that reaches an output through views is requantised to int16 (its
  calibrated range, symmetric) instead of int8, and cells concatenated (a bidirectional or
  stacked LSTM's Y_c) to the concatenation's one int16 scale;
- every rescale: integer multiplier + shift (numerics.quantize_multiplier), computed here.
"""

from __future__ import annotations

import numpy as np

from rnnq import numerics as nx
from rnnq.ir import Graph, Node, QParams, RnnqError, Stage, Tensor
from rnnq.ir.ops import BINARY, LINEAR, REARRANGE, RECURRENT, UNARY, VIEWS
from rnnq.ir.params import (
    BinaryParams,
    DenseParams,
    EmbedParams,
    MagnitudeParams,
    MeanTimeParams,
    RequantParams,
    SoftmaxParams,
)
from rnnq.passes.qcommon import (
    bias,
    dequantize_values,
    from_range,
    in_scale_zp,
    mults,
    quantize_values,
    row_weights,
    set_q,
    unify_operand_ranges,
)
from rnnq.passes.qparams import act16_qparams, act_qparams
from rnnq.passes.quantize_rnn import RECURRENT_QUANTIZERS
from rnnq.sim.float_ref import UNARY_FNS

#: Integer tensors wider than int8: consumers without a kernel for them read them requantised.
WIDE = frozenset({"int16", "int32"})


def _set_q16(t: Tensor) -> None:
    """int16 symmetric from the calibrated range."""
    s, z = act16_qparams(*t.range)
    t.dtype, t.q = "int16", QParams(np.float64(s), np.int64(z))


def _out_range(t: Tensor, wide: bool, relu: bool = False) -> tuple[int, int]:
    """Quantise an op's output from its range: int16 (wide) or int8; the clamp range."""
    if wide:
        _set_q16(t)
        return (0 if relu else -nx.INT16_MAX), nx.INT16_MAX
    from_range(t)
    return (int(t.q.zero_point) if relu else -128), 127


def _quant_dense(g: Graph, n: Node) -> Node:
    """int8 -> int8, or int16 -> int16 in a 16-bit front end (RnnqError when the int32
    accumulator does not hold it)."""
    x = g.tensors[n.inputs[0]]
    w, b = (g.tensors[i].data.astype(np.float64) for i in n.inputs[1:])
    y = g.tensors[n.outputs[0]]
    wide = x.dtype == "int16"
    lo, hi = _out_range(y, wide, bool(n.attrs.get("relu")))
    sx, zx = in_scale_zp(x, w.shape[1])
    wq, s_w = row_weights(w, sx)
    mult, shift = mults(n, s_w / float(y.q.scale))
    params = DenseParams(
        in_features=w.shape[1], out_features=w.shape[0], w=wq,
        bias=bias(n, b, s_w, wq, zx, xmax=32768 if wide else 128), mult=mult, shift=shift,
        out_zp=int(y.q.zero_point), act_min=lo, act_max=hi)
    return Node("qdense", [x.name], [y.name], {"params": params}, n.name)


def _quant_magnitude(g: Graph, n: Node) -> Node:
    """sqrt(sum of squares) of operands of one quantisation (unify_operand_ranges)."""
    xs = [g.tensors[i] for i in n.inputs]
    q = xs[0].q
    if any(t.q.axis is not None or float(t.q.scale) != float(q.scale)
           or int(t.q.zero_point) != int(q.zero_point) or t.dtype != xs[0].dtype for t in xs):
        raise AssertionError(f"magnitude {n.name}: operands of different quantisation")
    y = g.tensors[n.outputs[0]]
    lo, hi = _out_range(y, xs[0].dtype == "int16")
    m, sh = mults(n, np.array([float(q.scale) / float(y.q.scale)]))
    p = MagnitudeParams(in_zp=int(q.zero_point), out_zp=int(y.q.zero_point), mult=int(m[0]),
                        shift=int(sh[0]), act_min=lo, act_max=hi)
    return Node("qmagnitude", list(n.inputs), [y.name], {"params": p}, n.name)


def _quant_const(g: Graph, name: str) -> str:
    t = g.tensors[name]
    s, z = act_qparams(t.data.min(), t.data.max())
    q = QParams(np.float64(s), np.int64(z))
    qname = name + "_q"
    g.tensors[qname] = Tensor(qname, t.shape, "const", "int8",
                              quantize_values(t.data.astype(np.float64), q), q=q)
    return qname


def _quant_binary(g: Graph, n: Node) -> Node:
    ins = [i if g.tensors[i].kind != "const" else _quant_const(g, i) for i in n.inputs]
    a, b = (g.tensors[i] for i in ins)
    y = g.tensors[n.outputs[0]]
    from_range(y)
    sa, sb, sy = float(a.q.scale), float(b.q.scale), float(y.q.scale)
    za, zb, zy = int(a.q.zero_point), int(b.q.zero_point), int(y.q.zero_point)
    if n.op == "mul":
        mult, shift = mults(n, np.array([sa * sb / sy]))
        p = BinaryParams("mul", za, zb, zy, 0, 0, int(mult[0]), int(shift[0]), -128, 127)
    else:
        ra, rb = sa / sy, sb / sy * (-1.0 if n.op == "sub" else 1.0)
        _, shift = nx.quantize_multiplier(max(abs(ra), abs(rb)))
        am, bm = (int(np.clip(nx.round_half_away(r * 2.0**shift), -nx.INT32_MAX, nx.INT32_MAX))
                  for r in (ra, rb))
        p = BinaryParams("add", za, zb, zy, am, bm, 0, shift, -128, 127)
    return Node("qbinary", ins, [y.name], {"params": p}, n.name)


#: Output quantisation of a table op: fixed by the function's range, the input's (relu keeps
#: it), or absent (the calibrated range of the output).
_LUT_OUT = {"sigmoid": (1.0 / 256.0, -128), "tanh": (1.0 / 128.0, 0), "relu": "input"}


def _quant_lut(g: Graph, n: Node) -> Node:
    x, y = g.tensors[n.inputs[0]], g.tensors[n.outputs[0]]
    fixed = _LUT_OUT.get(n.op)
    if fixed == "input":
        set_q(y, x.q.scale, x.q.zero_point)
    elif fixed is None:
        from_range(y)
    else:
        set_q(y, *fixed)
    codes = np.arange(-128, 128)
    table = quantize_values(UNARY_FNS[n.op](dequantize_values(codes, x.q), n.attrs), y.q)
    return Node("qlut", [x.name], [y.name], {"table": table, "fn": n.op}, n.name)


def _quant_softmax(g: Graph, n: Node) -> Node:
    x, y = g.tensors[n.inputs[0]], g.tensors[n.outputs[0]]
    set_q(y, 1.0 / 256.0, -128)
    d = np.arange(256, dtype=np.float64)
    table = nx.round_half_away(np.exp(-d * float(x.q.scale)) * 65536.0).astype(np.int32)
    return Node("qsoftmax", [x.name], [y.name],
                {"params": SoftmaxParams(depth=x.shape[-1], exp_table=table)}, n.name)


def _input_reaches_only(g: Graph, ops) -> list[str] | None:
    """The input and its same-width reshape aliases when all of them are read only as the
    data input of `ops` (or reshaped); else None."""
    name, feat = g.inputs[0], g.tensors[g.inputs[0]].shape[-1]
    frontier, seen = [name], [name]
    while frontier:
        cur = frontier.pop()
        for c in g.consumers(cur):
            if c.op in ops and c.inputs[0] == cur:
                continue
            if c.op == "reshape" and g.tensors[c.outputs[0]].shape[-1] == feat:
                frontier.append(c.outputs[0])
                seen.append(c.outputs[0])
                continue
            return None
    return seen


def _input_per_channel(g: Graph) -> bool:
    """True when the input reaches only linear layers (through same-width aliases)."""
    return _input_reaches_only(g, LINEAR) is not None


#: Ops with int16 kernels that keep a 16-bit front end 16-bit (dense: while its accumulator
#: bound holds), and the recurrent layers that read it as it is.
FRONT16 = frozenset({"take", "concat", "dense", "magnitude"})


def input_scales_choosable(g: Graph) -> bool:
    """Whether the model input may take one scale per feature (folded into the weights of the
    linear layers that read it) as well as one scale: graph.meta["input_scales"] says which."""
    x = g.tensors[g.inputs[0]]
    return x.dtype != "int64" and x.shape[-1] > 1 and _input_per_channel(g)


def _per_feature(g: Graph) -> bool:
    return input_scales_choosable(g) and g.meta.get("input_scales", "feature") == "feature"


def input16_possible(g: Graph) -> bool:
    """Whether --input-bits auto makes the model input int16: it is real-valued and read only
    by recurrent layers, directly or through a front end of FRONT16 ops (a raw signal framed
    and convolved); not when linear layers read it directly (per-feature int8 scales then)."""
    if g.tensors[g.inputs[0]].dtype == "int64":
        return False
    if _input_reaches_only(g, RECURRENT) is not None:
        return True
    if _input_per_channel(g):
        return False
    frontier, seen = [g.inputs[0]], set()
    while frontier:
        cur = frontier.pop()
        for c in g.consumers(cur):
            if c.op in RECURRENT and c.inputs[0] == cur:
                continue
            if c.op not in FRONT16 | VIEWS or c.outputs[0] in g.outputs:
                return False
            if c.outputs[0] not in seen:
                seen.add(c.outputs[0])
                frontier.append(c.outputs[0])
    return True


def _reads16(g: Graph, n: Node, name: str, front: set[str]) -> bool:
    """Whether node n reads the int16 tensor `name` as it is (else: requantised to int8): views
    read any; the other ops only the 16-bit front end's tensors (`front`), each op as its
    int16 kernel allows."""
    if n.op in VIEWS:
        return True
    if name not in front:
        return False
    if n.op in RECURRENT or n.op == "dense":
        return n.inputs[0] == name
    if n.op in ("concat", "magnitude"):
        return all(i in front for i in n.inputs)
    return n.op in REARRANGE


#: Ops that pass an int16 tensor on, as it is, towards a model output (dense: its data input,
#: 16x8 while the accumulator bound holds; concat: when every operand is int16).
OUT16 = REARRANGE | {"concat", "dense"}


def output16_path(g: Graph) -> set[str]:
    """The tensors from which a model output is reached through OUT16 ops only: an int16
    tensor among them keeps 16 bits up to the output (graph.meta["output_bits"] = 16)."""
    path = set(g.outputs)
    for n in reversed(g.nodes):
        if n.op in OUT16 and n.outputs[0] in path:
            path.update(n.inputs[:1] if n.op == "dense" else n.inputs)
    return path


def _reads16_out(g: Graph, n: Node, name: str, path: set[str]) -> bool:
    """Whether node n, on the way to a 16-bit model output, reads the int16 tensor `name` as
    it is (concat: when every operand is int16; dense: its data input)."""
    if n.outputs[0] not in path or n.op not in OUT16 or g.tensors[name].dtype != "int16":
        return False
    if n.op == "concat":
        return all(g.tensors[i].dtype == "int16" for i in n.inputs)
    return n.op != "dense" or n.inputs[0] == name


def _quant_mean_time(g: Graph, n: Node) -> Node:
    x, y = g.tensors[n.inputs[0]], g.tensors[n.outputs[0]]
    from_range(y)
    m, s = mults(n, np.array([float(x.q.scale) / float(y.q.scale)]))
    p = MeanTimeParams(size=x.size, in_zp=int(x.q.zero_point), out_zp=int(y.q.zero_point),
                       mult=int(m[0]), shift=int(s[0]))
    return Node("qmean_time", [x.name], [y.name], {"params": p}, n.name)


def _quant_embed(g: Graph, n: Node) -> Node:
    ids, table = g.tensors[n.inputs[0]], g.tensors[n.inputs[1]].data.astype(np.float64)
    y = g.tensors[n.outputs[0]]
    s, z = act_qparams(table.min(), table.max())
    set_q(y, s, z)
    p = EmbedParams(vocab=table.shape[0], dim=table.shape[1], table=quantize_values(table, y.q))
    return Node("qembed", [ids.name], [y.name], {"params": p}, n.name)


def _requant(g: Graph, name: str, nodes: list[Node], rename: dict[str, str], bits: int,
             span: tuple[float, float] | None = None) -> str:
    """An int16 or int32 tensor leaving the recurrence (or a 16-bit front end): requantise
    `name` to int8 (asymmetric) or, an int32 LSTM cell on its way to a 16-bit model output,
    to int16 (symmetric), with its calibrated range (or `span`: the range of the
    concatenation it joins); once per tensor, width and span."""
    key = name if bits == 8 else f"{name}@{bits}" + (f"@{span}" if span else "")
    if key in rename:
        return rename[key]
    t = g.tensors[name]
    out = f"{name}_q{bits}" + (f"_{len(rename)}" if span else "")
    lo, hi = span or t.range
    s, z = act_qparams(lo, hi) if bits == 8 else act16_qparams(lo, hi)
    g.tensors[out] = Tensor(out, t.shape, t.kind, f"int{bits}",
                            q=QParams(np.float64(s), np.int64(z)))
    m, sh = mults(Node("", [], [], {}, name), np.array([float(t.q.scale) / float(s)]))
    p = RequantParams(in_zp=int(t.q.zero_point), out_zp=int(z), mult=int(m[0]), shift=int(sh[0]))
    nodes.append(Node("qrequant", [name], [out], {"params": p}, name))
    rename[key] = out
    return out


def _output(g: Graph, o: str, out16: bool, rename: dict[str, str]) -> str:
    """A model output as it leaves: int8, or int16 where it is computed in 16 bits (an int16
    tensor of one scale; the int32 LSTM cell requantised) with out16."""
    t = g.tensors[o]
    if t.dtype not in WIDE or (out16 and t.dtype == "int16" and t.q.axis is None):
        return o
    out = _requant(g, o, g.nodes, rename, 16 if out16 and t.dtype == "int32" else 8)
    if o not in g.inputs:  # the output keeps the model's name; the wide tensor is renamed
        _swap(g, o, out, f"{o}_{t.dtype}")
        return o
    return out


def _swap(g: Graph, name: str, other: str, new: str) -> None:
    """Tensor `name` becomes `new` and tensor `other` becomes `name`, in every node."""
    to = {name: new, other: name}
    for n in g.nodes:
        n.inputs = [to.get(i, i) for i in n.inputs]
        n.outputs = [to.get(i, i) for i in n.outputs]
    a, b = g.tensors.pop(name), g.tensors.pop(other)
    a.name, b.name = new, name
    g.tensors[new], g.tensors[name] = a, b


def _cell16_out(g: Graph, n: Node, name: str, path: set[str]) -> bool:
    """Whether node n moves the int32 tensor `name` (an LSTM cell) towards a 16-bit model
    output: it is then requantised to int16, not int8."""
    return (g.tensors[name].dtype == "int32" and n.outputs[0] in path
            and n.op in REARRANGE)


def _quant_concat(g: Graph, n: Node, nodes: list[Node]) -> Node:
    y = g.tensors[n.outputs[0]]
    if all(g.tensors[i].dtype == "int16" for i in n.inputs):  # one scale (unified ranges)
        y.dtype, y.q = "int16", g.tensors[n.inputs[0]].q
        if any(float(g.tensors[i].q.scale) != float(y.q.scale) or g.tensors[i].q.axis
               is not None for i in n.inputs):
            raise AssertionError(f"concat {n.name}: int16 operands of different scales")
        return Node("concat", list(n.inputs), [y.name], dict(n.attrs), n.name)
    from_range(y)
    ins = []
    for name in n.inputs:
        t = g.tensors[name]
        if t.q.axis is None and float(t.q.scale) == float(y.q.scale) and \
                int(t.q.zero_point) == int(y.q.zero_point):
            ins.append(name)
            continue
        out = name + "_cat"
        g.tensors[out] = Tensor(out, t.shape, t.kind, "int8", q=y.q)
        table = quantize_values(dequantize_values(np.arange(-128, 128), t.q), y.q)
        nodes.append(Node("qlut", [name], [out], {"table": table, "fn": "requant"}, n.name))
        ins.append(out)
    return Node("concat", ins, [y.name], dict(n.attrs), n.name)


def _alias(g: Graph, n: Node) -> Node:
    x, y = g.tensors[n.inputs[0]], g.tensors[n.outputs[0]]
    y.dtype, y.q = x.dtype, x.q
    if x.q is not None and x.q.axis is not None:
        if n.op != "reshape":
            raise AssertionError(f"per-feature quantisation reached {n.op} {n.name}")
        y.q = QParams(x.q.scale, x.q.zero_point, axis=len(y.shape) - 1)
    return n


#: float op -> its quantiser (layout ops pass their input's quantisation on: `_alias`, concat)
QUANTIZERS = {"dense": _quant_dense, **dict.fromkeys(BINARY, _quant_binary),
              "softmax": _quant_softmax, "magnitude": _quant_magnitude,
              "mean_time": _quant_mean_time, "embed": _quant_embed,
              **RECURRENT_QUANTIZERS, **dict.fromkeys(UNARY, _quant_lut)}


def quantize(graph: Graph) -> Graph:
    """Calibrated float graph -> integer graph (int8 activations, kernels' params objects)."""
    g = graph
    if g.stage != Stage.CALIBRATED:
        raise AssertionError("quantize requires a calibrated graph")
    unify_operand_ranges(g)
    xin = g.tensors[g.inputs[0]]
    bits = g.meta.get("input_bits", 8)
    if bits == 16:
        if xin.dtype == "int64":
            raise RnnqError(f"input {xin.name!r}: token ids have no 16-bit form")
        lo, hi = g.meta["input_channel_range"]
        xin.dtype = "int16"
        if _per_feature(g):
            s, z = act16_qparams(lo, hi)
            xin.q = QParams(s, z, axis=len(xin.shape) - 1)
        else:
            s, z = act16_qparams(np.min(lo), np.max(hi))
            xin.q = QParams(np.float64(s), np.int64(z))
    elif xin.dtype == "int64":
        pass  # token ids: no quantisation
    elif _per_feature(g):
        lo, hi = g.meta["input_channel_range"]
        s, z = act_qparams(lo, hi)
        xin.dtype, xin.q = "int8", QParams(s, z, axis=len(xin.shape) - 1)
    else:
        from_range(xin)
    nodes: list[Node] = []
    rename: dict[str, str] = {}
    front = {xin.name} if xin.dtype == "int16" else set()  # the 16-bit front end so far
    out16 = g.meta.get("output_bits", 8) == 16
    path = output16_path(g) if out16 else set()
    for n in g.nodes:
        if (n.op == "concat" and n.outputs[0] in path
                and all(g.tensors[i].dtype == "int32" for i in n.inputs)):
            span = tuple(float(v) for v in g.tensors[n.outputs[0]].range)  # one int16 scale
            n.inputs = [_requant(g, i, nodes, rename, 16, span) for i in n.inputs]
        n.inputs = [i if g.tensors[i].dtype not in WIDE or _reads16(g, n, i, front)
                    or _reads16_out(g, n, i, path)
                    else _requant(g, i, nodes, rename, 16 if _cell16_out(g, n, i, path) else 8)
                    for i in n.inputs]
        if n.op not in RECURRENT and any(i in front for i in n.inputs):
            front.update(n.outputs)
        if n.op == "dense" and g.tensors[n.inputs[0]].dtype == "int16":
            try:
                nodes.append(_quant_dense(g, n))
                continue
            except RnnqError:  # the accumulator bound: this layer reads int8
                front.discard(n.outputs[0])
                n.inputs[0] = _requant(g, n.inputs[0], nodes, rename, 8)
        if n.op in REARRANGE:
            nodes.append(_alias(g, n))
        elif n.op == "concat":
            nodes.append(_quant_concat(g, n, nodes))
        elif n.op in QUANTIZERS:
            nodes.append(QUANTIZERS[n.op](g, n))
        else:
            raise AssertionError(f"quantize: unhandled op {n.op}")
    g.nodes = nodes
    g.outputs = [_output(g, o, out16, rename) for o in g.outputs]
    g.stage = Stage.INTEGER
    return g.prune().verify()
