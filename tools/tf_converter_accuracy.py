"""TensorFlow's converter on the bundled examples: bench/tf_converter.json, read by bench/accuracy.py.

Dev-only: NOT run by the tests or CI. It needs TensorFlow, which the project does not depend
on, so run it in the separate virtualenv of tools/make_tflite_reference.py, plus what it needs
to read the ONNX files and run them (rnnq itself is imported from this checkout):

    python3 -m venv /work/tfenv
    /work/tfenv/bin/pip install tensorflow-cpu==2.21.0 numpy ai-edge-litert==2.3.0
    /work/tfenv/bin/pip install --no-deps tf-keras==2.21.0   # --no-deps: it would pull `tensorflow`
    /work/tfenv/bin/pip install onnx onnxruntime jinja2 click
    /work/tfenv/bin/python tools/tf_converter_accuracy.py [--out bench/tf_converter.json]

For each example of bench/accuracy.py (the LSTM, GRU and vanilla RNN classifiers / forecaster,
each `recurrent layer -> Linear on the last step`):

1. the same model is rebuilt in Keras (tf-keras, i.e. Keras 2, so that an LSTM converts to the
   fused UNIDIRECTIONAL_SEQUENCE_LSTM; input (1, T, F)) with the ONNX file's weights: gates
   reordered (ONNX i o f c -> Keras i f c o), the two ONNX biases summed (LSTM, RNN) or kept
   apart (GRU, reset_after=True = ONNX linear_before_reset=1); the float Keras outputs are
   checked against onnxruntime's on test.npz (max |difference| recorded);
2. TFLiteConverter makes it full integer: Optimize.DEFAULT, representative dataset = the
   example's calib.npz (what rnnq calibrates on), TFLITE_BUILTINS_INT8 only, int8 input and
   output. Each conversion runs in a child process (the converter can die with SIGSEGV): first
   with the layer's defaults, then, if that fails, with unroll=True;
3. the first .tflite that converts runs in LiteRT on test.npz (one sequence per invoke(),
   reset_all_variables() before each), its output dequantised; accuracy or RMSE and SQNR
   against onnxruntime's float outputs, with bench/accuracy.py's definitions (rnnq.report).

Only the numbers (and the versions, date and command) are written; no model file is kept.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # must precede the TensorFlow import
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from make_tflite_reference import convert, run_litert
from make_tflite_while_gru import child_failure, op_names

OUT = ROOT / "bench" / "tf_converter.json"
EXAMPLES = ["japanese_vowels", "basic_motions_gru", "sunspots_rnn"]  # bench/accuracy.py's
SEED = 20261207


def onnx_weights(model: Path) -> dict:
    """The recurrent node's op, W, R, B (direction 0) and the Gemm's weight and bias; refuses
    any other structure than `one forward LSTM / GRU / RNN (default activations, no clip) ->
    Gemm`."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(model))
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    rec = [n for n in m.graph.node if n.op_type in ("LSTM", "GRU", "RNN")]
    gemm = [n for n in m.graph.node if n.op_type == "Gemm"]
    assert len(rec) == 1 and len(gemm) == 1, f"{model}: not one recurrent layer and one Gemm"
    node, fc = rec[0], gemm[0]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    known = {"hidden_size", "linear_before_reset", "activations"}
    assert set(attrs) <= known, f"{model}: unexpected attributes {sorted(set(attrs) - known)}"
    assert attrs.get("activations", [b"Tanh"]) == [b"Tanh"], attrs
    if node.op_type == "GRU":
        assert attrs.get("linear_before_reset") == 1, "Keras' reset_after=True needs it"
    fc_attrs = {a.name: onnx.helper.get_attribute_value(a) for a in fc.attribute}
    assert fc_attrs == {"alpha": 1.0, "beta": 1.0, "transB": 1}, fc_attrs
    w, r, b = (init[node.input[k]][0] for k in (1, 2, 3))
    return {"op": node.op_type, "hidden": int(attrs["hidden_size"]), "W": w, "R": r, "B": b,
            "fc_w": init[fc.input[1]], "fc_b": init[fc.input[2]]}


def keras_model(keras, wts: dict, t_len: int, unroll: bool):
    """Input((T, F), batch 1) -> LSTM / GRU / SimpleRNN -> Dense, with the ONNX weights."""
    h, w, r, b = wts["hidden"], wts["W"], wts["R"], wts["B"]
    feat = w.shape[1]
    inp = keras.Input(shape=(t_len, feat), batch_size=1, name="x")
    if wts["op"] == "LSTM":  # ONNX gates i o f c, Keras i f c o
        order = np.concatenate([np.arange(h) + k * h for k in (0, 2, 3, 1)])
        layer = keras.layers.LSTM(h, unroll=unroll, name="rnn")
        weights = [w[order].T, r[order].T, (b[: 4 * h] + b[4 * h :])[order]]
    elif wts["op"] == "GRU":  # z r h in both
        layer = keras.layers.GRU(h, reset_after=True, unroll=unroll, name="rnn")
        weights = [w.T, r.T, b.reshape(2, 3 * h)]
    else:
        layer = keras.layers.SimpleRNN(h, unroll=unroll, name="rnn")
        weights = [w.T, r.T, b[:h] + b[h:]]
    dense = keras.layers.Dense(wts["fc_w"].shape[0], name="fc")
    model = keras.Model(inp, dense(layer(inp)))
    layer.set_weights([np.ascontiguousarray(v, np.float32) for v in weights])
    dense.set_weights([wts["fc_w"].T.astype(np.float32), wts["fc_b"].astype(np.float32)])
    return model


def example_data(name: str):
    """(graph, calib, test) as bench/accuracy.py loads them."""
    from rnnq.api import float_graph
    from rnnq.data import load_npz

    ex = ROOT / "examples" / name
    g = float_graph(ex / "model.onnx")
    test, calib = load_npz(ex / "test.npz", g), load_npz(ex / "calib.npz", g)
    assert (test.lengths == test.x.shape[1]).all() and (calib.lengths == calib.x.shape[1]).all()
    return g, calib, test


def convert_child(name: str, unroll: bool, out: Path) -> int:
    """--child: the full-integer conversion of one example, written to out (or a crash)."""
    import tensorflow as tf
    import tf_keras as keras

    tf.random.set_seed(SEED)
    _, calib, test = example_data(name)
    model = keras_model(keras, onnx_weights(ROOT / "examples" / name / "model.onnx"),
                        test.x.shape[1], unroll)

    def representative_dataset():
        for x in calib.x:
            yield [x[None].astype(np.float32)]

    out.write_bytes(convert(tf, model, representative_dataset))
    return 0


def try_convert(name: str, unroll: bool, work: Path) -> tuple[bytes | None, str]:
    """One conversion in a child process: (the .tflite or None, what happened)."""
    tmp = work / f"{name}_unroll{int(unroll)}.tflite"
    cmd = [sys.executable, "-X", "faulthandler", __file__, "--child", name,
           "--unroll", str(int(unroll)), "--out", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode == 0 and tmp.is_file():
        return tmp.read_bytes(), "converted"
    return None, f"failed: {child_failure(proc)}"


def measure(name: str, keras, work: Path) -> dict:
    """Float check, conversions, LiteRT run and metrics of one example."""
    from rnnq.report import metrics, sqnr_db
    from rnnq.sim.onnx_runtime import float_outputs

    ex = ROOT / "examples" / name
    g, _, test = example_data(name)
    (f0, *_), engine = float_outputs(ex / "model.onnx", g, test)
    assert engine == "onnxruntime", engine
    wts = onnx_weights(ex / "model.onnx")
    t_len = test.x.shape[1]
    model = keras_model(keras, wts, t_len, unroll=False)
    kf = np.concatenate([model(x[None], training=False).numpy() for x in test.x])
    kf = kf.astype(np.float64).reshape(f0.shape)
    rec: dict = {"op": wts["op"],
                 "keras_model": f"Input(({t_len}, {test.x.shape[2]}), batch_size=1) -> "
                                f"{model.layers[1].__class__.__name__}({wts['hidden']}) -> "
                                f"Dense({wts['fc_w'].shape[0]})",
                 "keras_vs_onnxruntime_max_abs_diff": float(np.max(np.abs(kf - f0))),
                 "attempts": {}}
    blob = None
    for unroll in (False, True):
        setting = "unroll=True" if unroll else "default"
        blob, what = try_convert(name, unroll, work)
        rec["attempts"][setting] = what
        print(f"{name}: {setting}: {what}", flush=True)
        if blob is not None:
            rec["converted_with"] = setting
            break
    if blob is None:
        return rec
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=blob)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8, (inp["dtype"], out["dtype"])
    (in_s, in_zp), (out_s, out_zp) = inp["quantization"], out["quantization"]
    xq = np.clip(np.round(test.x / in_s) + in_zp, -128, 127).astype(np.int8)[:, None]
    q = run_litert(blob, xq).reshape(len(f0), -1)
    o0 = ((q.astype(np.float64) - out_zp) * out_s).reshape(f0.shape)
    ops = op_names(blob)
    rec.update({"tflite_bytes": len(blob), "ops": sorted(set(ops)), "op_count": len(ops),
                **{k: v for k, v in metrics(o0, test.y).items() if k != "confusion"},
                "sqnr_db": sqnr_db(f0, o0)})
    return rec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help=f"the json (default {OUT})")
    ap.add_argument("--child", choices=EXAMPLES, help=argparse.SUPPRESS)
    ap.add_argument("--unroll", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return convert_child(args.child, bool(args.unroll), args.out)

    import tensorflow as tf
    import tf_keras as keras

    info: dict = {
        "what": "TensorFlow's TFLiteConverter, full integer (int8), on the bundled examples "
                "rebuilt in Keras with the ONNX weights; made by tools/tf_converter_accuracy.py",
        "command": "/work/tfenv/bin/python tools/tf_converter_accuracy.py"
                   + "".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:])),
        "date": datetime.date.today().isoformat(),
        "tf_version": tf.__version__, "tf_keras_version": keras.__version__,
        "litert_version": version("ai-edge-litert"),
        "onnxruntime_version": version("onnxruntime"),
        "converter": "Optimize.DEFAULT, representative_dataset = calib.npz (one sequence per "
                     "sample), supported_ops = [TFLITE_BUILTINS_INT8], int8 input and output",
        "examples": {},
    }
    with tempfile.TemporaryDirectory(prefix="rnnq-tfconv-") as td:
        for name in EXAMPLES:
            info["examples"][name] = rec = measure(name, keras, Path(td))
            print(f"{name}: {json.dumps(rec)}", flush=True)
    args.out.write_text(json.dumps(info, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
