"""What `--format tflite` can express, checked on the float IR before anything is built:
`check(g)` raises the one-line error of the first thing it cannot, naming the node (cheap: no
lowering, no calibration). The lowering relies on it and does not check again."""

from __future__ import annotations

import importlib.util

import numpy as np

from rnnq.ir import Graph, Node, RnnqError
from rnnq.ir.ops import BINARY, RECURRENT, hard_sigmoid

#: IR ops the lowering has a rule for (rnnq.backends.tflite.lower / lower_rnn).
LOWERED_OPS = frozenset({*RECURRENT, "reshape", "take", "last", "first", "concat", "mean_time",
                         "dense", "add", "sub", "mul", "relu", "sigmoid", "tanh", "softmax",
                         "leaky_relu"})


def require(*modules: str) -> None:
    """One clear line when the optional rnnq[tflite] dependencies are missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise RnnqError(f"--format tflite needs {', '.join(missing)}: pip install 'rnnq[tflite]'")


def label(node: Node) -> str:
    """How a one-line error names an IR node: its ONNX node's name and its IR op."""
    return f"node {node.name or node.op} ({node.op})"


def err(node: Node, what: str) -> RnnqError:
    return RnnqError(f"{label(node)}: {what} is not supported by --format tflite")


def fused_lstm_blocker(g: Graph, n: Node) -> str | None:
    """Why LiteRT's fused integer LSTM cannot run this LSTM node (it is then unrolled), or None.
    """
    if n.attrs.get("state_inputs"):
        return "a state input (its variable tensors cannot be fed)"
    if hard_sigmoid(n.attrs) is not None:
        return "HardSigmoid gates"
    if n.attrs.get("clip") is not None:
        return "clip"
    if n.attrs.get("input_forget"):
        return "input_forget"
    if g.consumers(n.outputs[1]) or n.outputs[1] in g.outputs:
        return "reading the cell state (Y_c)"
    if any(np.any(g.tensors[n.inputs[k]].data != 0) for k in (4, 5)):
        return "non-zero initial states"
    return None


def has_peepholes(g: Graph, n: Node) -> bool:
    """An LSTM with peepholes: only LiteRT's fused LSTM has them (the unrolled steps do not)."""
    return bool(np.any(g.tensors[n.inputs[6]].data != 0))


def _check_node(g: Graph, n: Node) -> None:
    if n.op not in LOWERED_OPS:
        raise err(n, f"IR op {n.op}")
    kinds = {g.tensors[i].kind for i in n.inputs if g.tensors[i].kind != "const"}
    if n.op == "concat" and len(kinds) > 1:
        raise err(n, "concatenating per-step and final tensors")
    if n.op in BINARY and len(kinds) > 1:
        raise err(n, "mixing per-step and final operands")
    if n.op in RECURRENT:
        x = g.tensors[n.inputs[0]]
        if x.shape[0] != 1:
            raise err(n, f"batch {x.shape[0]} inside the model (batch 1 only)")
        if n.attrs.get("state_inputs") and not g.meta.get("step_graph"):
            raise err(n, "an initial-state model input")
    if n.op == "lstm":
        blocker = fused_lstm_blocker(g, n)
        if blocker is not None and has_peepholes(g, n):
            raise err(n, f"peepholes together with {blocker}")


def check(g: Graph) -> None:
    """Raise what --format tflite cannot express in float IR g, if anything."""
    if g.meta.get("sequence_lens_inputs") or g.meta.get("length_inputs"):
        raise RnnqError("sequence lengths as a model input are not supported by --format "
                        "tflite (TFLite has no per-sequence length); export without them")
    name = g.inputs[0]
    t = g.tensors[name]
    if t.dtype != "float32":
        raise RnnqError(f"input {name}: {t.dtype} token ids are not supported by --format "
                        "tflite")
    for n in g.nodes:
        _check_node(g, n)
