"""Roll an unrolled recurrence of the quantised graph into a WHILE loop (`--tflite-loop while`).

Requires the integer TGraph built from a `Lowered` graph (quantize.py) and the map from its
float tensors to the integer ones; produces the same computation with each GRU / vanilla-RNN
layer as one WHILE op. The loop body is the first executed step of the unrolled graph, copied:
every step of the unrolled graph has the same operators, weights and quantisation (the
lowering ties each role across steps), so the rolled file computes exactly the unrolled
file's integers — the tests hold the two equal.

Loop variables: the step counter i (int32 scalar), the state h, the output sequence Y
[1, T, 1, H] (each step writes h at row i with DYNAMIC_UPDATE_SLICE) and the input-side
products [1, T, 1, W] (read at row i with GATHER). A reverse layer reverses its inputs and Y
with REVERSE_V2 around the loop.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from rnnq.backends.tflite.lower import Loop
from rnnq.ir.tgraph import DTYPES, TGraph, TOp, TTensor, compact


def _var(t: TTensor, name: str) -> TTensor:
    """A non-constant tensor with t's type, shape and quantisation."""
    return replace(t, name=name, data=None, variable=False)


def _body(q: TGraph, loop: Loop, fmap: dict[int, int], t_len: int, tag: str,
          packed: int) -> TGraph:
    start, end = loop.steps[0]
    first_t = t_len - 1 if loop.reverse else 0
    h_in, h_out = fmap[loop.h0], fmap[loop.hs[0]]
    body = TGraph(description=f"{tag} body")
    bmap: dict[int, int] = {}

    def bt(i: int) -> int:
        if i < 0:
            return -1
        if i not in bmap:
            bmap[i] = body.add(replace(q.tensors[i]))
        return bmap[i]

    i_t = body.add(TTensor(f"{tag}/i", "int32", ()))
    bmap[h_in] = body.add(_var(q.tensors[h_in], f"{tag}/h"))
    y_t = body.add(_var(q.tensors[packed], f"{tag}/Y"))
    xws = [body.add(_var(q.tensors[fmap[s]], f"{tag}/xw{k}")) for k, s in enumerate(loop.streams)]
    for k, xs in enumerate(loop.xs):
        x_step = fmap[xs[first_t]]
        bmap[x_step] = body.add(_var(q.tensors[x_step], f"{tag}/x{k}_i"))
        body.op("GATHER", [xws[k], i_t], [bmap[x_step]], Axis=1, BatchDims=0)
    for node in q.ops[start:end]:
        body.op(node.kind, [bt(i) for i in node.inputs], [bt(o) for o in node.outputs],
                **node.options)
    h_new = bmap[h_out]
    hsz = q.tensors[h_out].shape[-1]
    h4 = body.add(replace(_var(q.tensors[h_out], f"{tag}/h_row"), shape=(1, 1, 1, hsz)))
    body.op("RESHAPE", [h_new, body.const(f"{tag}/row_shape", np.array([1, 1, 1, hsz],
                                                                       np.int32))], [h4])
    where = body.add(TTensor(f"{tag}/start", "int32", (4,)))
    body.op("MUL", [i_t, body.const(f"{tag}/time_unit", np.array([0, 1, 0, 0], np.int32))],
            [where])
    y_new = body.add(_var(q.tensors[packed], f"{tag}/Y_next"))
    body.op("DYNAMIC_UPDATE_SLICE", [y_t, h4, where], [y_new])
    i_new = body.add(TTensor(f"{tag}/i_next", "int32", ()))
    body.op("ADD", [i_t, body.const(f"{tag}/one", np.array(1, np.int32))], [i_new],
            FusedActivationFunction=0)
    body.inputs = [i_t, bmap[h_in], y_t, *xws]
    body.outputs = [i_new, h_new, y_new, *xws]
    return body


def _cond(body: TGraph, t_len: int, tag: str) -> TGraph:
    cond = TGraph(description=f"{tag} cond")
    cond.inputs = [cond.add(_var(body.tensors[i], body.tensors[i].name)) for i in body.inputs]
    go = cond.add(TTensor(f"{tag}/go", "bool", ()))
    cond.op("LESS", [cond.inputs[0], cond.const(f"{tag}/T", np.array(t_len, np.int32))], [go])
    cond.outputs = [go]
    return cond


def roll(q: TGraph, loops: list[Loop], fmap: dict[int, int], t_len: int) -> TGraph:
    """Replace each recorded unrolled layer of q by a WHILE op (in place; returns q)."""
    replaced: dict[int, list[TOp]] = {}
    drop: set[int] = set()
    for k, loop in enumerate(loops):
        tag = f"loop{k + 1}"
        packed = q.ops[loop.pack_op].outputs[0]
        body = _body(q, loop, fmap, t_len, tag, packed)
        q.subgraphs += [_cond(body, t_len, tag), body]
        cond_index, body_index = len(q.subgraphs) - 1, len(q.subgraphs)
        new_ops: list[TOp] = []
        streams = []
        for s in loop.streams:
            x = fmap[s]
            if loop.reverse:
                rev = q.add(_var(q.tensors[x], q.tensors[x].name + "/rev"))
                new_ops.append(TOp("REVERSE_V2", [x, q.const(f"{tag}/axis", np.array([1],
                                                                                    np.int32))],
                                   [rev]))
                x = rev
            streams.append(x)
        pt = q.tensors[packed]
        y0 = q.const(f"{tag}/Y0", np.full(pt.shape, int(pt.zero_points()[0]), DTYPES[pt.dtype]),
                     scale=pt.scale, zero_point=pt.zero_point)
        ins = [q.const(f"{tag}/i0", np.array(0, np.int32)), fmap[loop.h0], y0, *streams]
        y_out = q.add(_var(pt, pt.name + "/rev")) if loop.reverse else packed
        outs = [q.add(TTensor(f"{tag}/i_end", "int32", ())),
                q.add(_var(q.tensors[fmap[loop.h0]], f"{tag}/h_end")), y_out,
                *(q.add(_var(q.tensors[x], q.tensors[x].name + "/end")) for x in streams)]
        new_ops.append(TOp("WHILE", ins, outs, {"CondSubgraphIndex": cond_index,
                                                "BodySubgraphIndex": body_index}))
        if loop.reverse:
            new_ops.append(TOp("REVERSE_V2", [y_out, q.const(f"{tag}/axis_y",
                                                             np.array([1], np.int32))], [packed]))
        replaced[loop.pack_op] = new_ops
        drop.update(loop.unpack_ops)
        for s, e in loop.steps:
            drop.update(range(s, e))
    ops: list[TOp] = []
    for k, node in enumerate(q.ops):
        if k in replaced:
            ops += replaced[k]
        elif k not in drop:
            ops.append(node)
    q.ops = ops
    compact(q)
    for sub in q.subgraphs:
        compact(sub)
    return q
