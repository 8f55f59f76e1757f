"""Make the converter-made reference model tests/fixtures/tflite/keras_lstm_int8.tflite.

Dev-only: this script is NOT run by the tests or CI, and it needs TensorFlow, which the
project does not depend on. Run it in a separate virtualenv so the system Python is untouched:

    python3 -m venv /work/tfenv
    /work/tfenv/bin/pip install tensorflow-cpu==2.21.0 numpy ai-edge-litert==2.3.0
    /work/tfenv/bin/pip install --no-deps tf-keras==2.21.0   # --no-deps: it would pull `tensorflow`
    /work/tfenv/bin/python tools/make_tflite_reference.py [--out DIR]

What it writes (default DIR: tests/fixtures/tflite/):

- `keras_lstm_int8.tflite`: a Keras model `Input((12, 5), batch_size=1) -> LSTM(8,
  return_sequences=True)` converted by TensorFlow's own TFLiteConverter to full integer:
  `optimizations=[Optimize.DEFAULT]`, a representative dataset (50 random sequences in
  [-2, 2]), `supported_ops=[TFLITE_BUILTINS_INT8]`, int8 input and output. The graph is one
  fused UNIDIRECTIONAL_SEQUENCE_LSTM op, the 8x8_16 integer LSTM (int8 input / output /
  weights, int16 cell state, int8 hidden state, int32 biases).
- `keras_lstm_int8_io.npz`: `x` int8 (20, 1, 12, 5), 20 random sequences in [-2, 2] quantised
  with the model's input scale / zero point; `y` int8 (20, 1, 12, 8), what LiteRT
  (ai_edge_litert.interpreter.Interpreter) outputs for each, with reset_all_variables() before
  each sequence (the op keeps its h/c state in variable tensors across invoke() otherwise);
  `x_float` / `y_float` the float inputs and the float Keras model's outputs; the input and
  output quantisation (`in_scale`, `in_zero_point`, `out_scale`, `out_zero_point`); and the
  versions used (`tf_version`, `tf_keras_version`, `litert_version`).

The fused op needs the legacy tf-keras (Keras 2): with Keras 3 (TF 2.21's default `tf.keras`)
the converter lowers the LSTM to a WHILE loop instead, so the script sets TF_USE_LEGACY_KERAS=1
before importing TensorFlow. The weights are drawn from a fixed numpy seed (not trained),
scaled so the gates are not saturated; the forget-gate bias is 1 as in Keras' default.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # must precede the TensorFlow import
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "tflite"
NAME = "keras_lstm_int8"
BATCH, T, FEAT, HIDDEN = 1, 12, 5, 8
N_REP, N_TEST = 50, 20  # representative-dataset and test sequences
SEED = 20240611


def build_model(tf, keras):
    """The Keras model, with weights from a fixed numpy seed."""
    inp = keras.Input(shape=(T, FEAT), batch_size=BATCH, name="x")
    lstm = keras.layers.LSTM(HIDDEN, return_sequences=True, name="lstm")
    model = keras.Model(inp, lstm(inp))
    rng = np.random.default_rng(SEED)
    # gate order i, f, c, o (Keras); pre-activations stay around |z| < 2 for inputs in [-2, 2]
    kernel = rng.uniform(-0.35, 0.35, (FEAT, 4 * HIDDEN)).astype(np.float32)
    recurrent = rng.uniform(-0.4, 0.4, (HIDDEN, 4 * HIDDEN)).astype(np.float32)
    bias = rng.uniform(-0.2, 0.2, 4 * HIDDEN).astype(np.float32)
    bias[HIDDEN : 2 * HIDDEN] += 1.0  # unit_forget_bias
    lstm.set_weights([kernel, recurrent, bias])
    return model


def representative_dataset():
    rng = np.random.default_rng(SEED + 1)
    for _ in range(N_REP):
        yield [rng.uniform(-2.0, 2.0, (BATCH, T, FEAT)).astype(np.float32)]


def convert(tf, model, dataset=representative_dataset) -> bytes:
    """TF's converter, full integer: int8 builtins only, int8 input and output, calibrated on
    `dataset` (a generator function, as TFLiteConverter takes it)."""
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = dataset
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def run_litert(tflite: bytes, xq: np.ndarray) -> np.ndarray:
    """Run every sequence of xq (N, 1, T, F) int8 through LiteRT, resetting the state first."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=tflite)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    ys = []
    for x in xq:
        it.reset_all_variables()
        it.set_tensor(inp["index"], x)
        it.invoke()
        ys.append(it.get_tensor(out["index"]).copy())
    return np.stack(ys)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help=f"output folder (default {OUT})")
    args = ap.parse_args(argv)

    import ai_edge_litert
    import tensorflow as tf
    import tf_keras as keras

    tf.random.set_seed(SEED)
    model = build_model(tf, keras)
    tflite = convert(tf, model)

    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=tflite)
    ops = [o["op_name"] for o in it._get_ops_details()]
    if ops != ["UNIDIRECTIONAL_SEQUENCE_LSTM"]:
        sys.exit(f"expected one fused UNIDIRECTIONAL_SEQUENCE_LSTM op, the converter made {ops}")
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8, (inp, out)
    in_scale, in_zp = inp["quantization"]
    out_scale, out_zp = out["quantization"]

    rng = np.random.default_rng(SEED + 2)
    x_float = rng.uniform(-2.0, 2.0, (N_TEST, BATCH, T, FEAT)).astype(np.float32)
    xq = np.clip(np.round(x_float / in_scale) + in_zp, -128, 127).astype(np.int8)
    y = run_litert(tflite, xq)
    y_float = np.stack([model(xf, training=False).numpy() for xf in x_float]).astype(np.float32)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{NAME}.tflite").write_bytes(tflite)
    np.savez(
        args.out / f"{NAME}_io.npz",
        x=xq,
        y=y,
        x_float=x_float,
        y_float=y_float,
        in_scale=np.float32(in_scale),
        in_zero_point=np.int32(in_zp),
        out_scale=np.float32(out_scale),
        out_zero_point=np.int32(out_zp),
        tf_version=np.str_(tf.__version__),
        tf_keras_version=np.str_(keras.__version__),
        litert_version=np.str_(getattr(ai_edge_litert, "__version__", "unknown")),
    )
    err = np.abs((y.astype(np.float32) - out_zp) * out_scale - y_float)
    print(f"wrote {args.out / (NAME + '.tflite')} ({len(tflite)} bytes) and {NAME}_io.npz")
    print(
        f"ops {ops}; int8 vs float Keras: max |err| {err.max():.4f}, mean {err.mean():.4f}"
        f" (output scale {out_scale:.5f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
