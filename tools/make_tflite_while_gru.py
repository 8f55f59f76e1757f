"""Make the converter-made WHILE-loop GRUs bench/fixtures/keras_gru_while_T{12,50}.tflite.

Dev-only: NOT run by the tests or CI; bench/tflite.py reads the files it writes. It needs
TensorFlow, which the project does not depend on, so run it in a separate virtualenv (the same
one as tools/make_tflite_reference.py):

    python3 -m venv /work/tfenv
    /work/tfenv/bin/pip install tensorflow-cpu==2.21.0 numpy ai-edge-litert==2.3.0
    /work/tfenv/bin/pip install --no-deps tf-keras==2.21.0   # --no-deps: it would pull `tensorflow`
    /work/tfenv/bin/python tools/make_tflite_while_gru.py [--out DIR]

What it writes (default DIR: bench/fixtures/):

- `keras_gru_while_T12.tflite`, `keras_gru_while_T50.tflite`: a Keras model
  `Input((T, 8), batch_size=1) -> GRU(16)` (last hidden state; reset_after=True, i.e. ONNX's
  linear_before_reset=1 as PyTorch's nn.GRU exports) converted by TensorFlow's
  TFLiteConverter with default settings, i.e. float32: TFLite has no fused GRU op, so the
  converter keeps the recurrence as a WHILE loop (a cond and a body subgraph). The script
  checks that the op list holds WHILE.
- `keras_gru_while_weights.npz`: the GRU's weights in Keras' layout (`kernel` [8, 48],
  `recurrent` [16, 48], `bias` [2, 48]; gates z, r, h), so that bench/tflite.py builds the same
  GRU as an ONNX model for rnnq.
- `keras_gru_while.json`: the versions used, each file's op list, and the outcome of trying the
  full-integer conversion (`Optimize.DEFAULT` + representative dataset + TFLITE_BUILTINS_INT8,
  int8 I/O) once per T, in a child process: with TF 2.21 it does not raise, the converter dies
  with SIGSEGV while calibrating the WHILE loop (calibrator.py `_feed_tensors`). If that
  conversion ever succeeds, the int8 file is written instead (name `..._int8.tflite`) and the
  json says so.

The weights come from a fixed numpy seed (not trained); bench/tflite.py measures the files'
size and LiteRT latency, and checks them against onnxruntime on the same weights. Keras 3
(TF 2.21's default `tf.keras`) is used; set TF_USE_LEGACY_KERAS=1 in the environment to use
tf-keras (Keras 2) instead.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "fixtures"
NAME = "keras_gru_while"
FEAT, HIDDEN = 8, 16
T_LENS = (12, 50)
N_REP = 50
SEED = 20240612


def build_model(keras, t: int):
    """Input((t, 8), batch 1) -> GRU(16), weights from a fixed numpy seed."""
    inp = keras.Input(shape=(t, FEAT), batch_size=1, name="x")
    gru = keras.layers.GRU(HIDDEN, reset_after=True, name="gru")
    model = keras.Model(inp, gru(inp))
    rng = np.random.default_rng(SEED)
    k = 1.0 / np.sqrt(HIDDEN)
    gru.set_weights([rng.uniform(-k, k, (FEAT, 3 * HIDDEN)).astype(np.float32),
                     rng.uniform(-k, k, (HIDDEN, 3 * HIDDEN)).astype(np.float32),
                     rng.uniform(-k, k, (2, 3 * HIDDEN)).astype(np.float32)])
    return model


def convert(tf, model, t: int, int8: bool) -> bytes:
    """TFLiteConverter: float (default settings) or full integer with int8 I/O."""
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        def representative_dataset():
            rng = np.random.default_rng(SEED + 1)
            for _ in range(N_REP):
                yield [rng.uniform(-2.0, 2.0, (1, t, FEAT)).astype(np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative_dataset
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def op_names(blob: bytes) -> list[str]:
    """The op names of every subgraph, as LiteRT lists them (main graph first)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=blob)
    return [o["op_name"] for o in it._get_ops_details()]


def all_subgraph_ops(blob: bytes) -> list[list[str]]:
    """Op names per subgraph, read from the flatbuffer (LiteRT lists only the main one)."""
    try:
        from tflite.BuiltinOperator import BuiltinOperator
        from tflite.Model import Model
    except ImportError:
        return [op_names(blob)]
    names = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
    m = Model.GetRootAs(blob, 0)
    codes = [max(m.OperatorCodes(i).BuiltinCode(), m.OperatorCodes(i).DeprecatedBuiltinCode())
             for i in range(m.OperatorCodesLength())]
    return [[names[codes[m.Subgraphs(s).Operators(k).OpcodeIndex()]]
             for k in range(m.Subgraphs(s).OperatorsLength())]
            for s in range(m.SubgraphsLength())]


def try_int8(out: Path, t: int) -> tuple[bytes | None, str]:
    """One full-integer conversion in a child process (it may crash the interpreter: with
    TF 2.21 the calibration of the WHILE loop dies with SIGSEGV). Returns (file or None, what
    happened)."""
    tmp = out / f".{NAME}_T{t}_int8.tmp"
    cmd = [sys.executable, "-X", "faulthandler", __file__, "--int8-child", str(t),
           "--out", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode == 0 and tmp.is_file():
        blob = tmp.read_bytes()
        tmp.unlink()
        return blob, "succeeded"
    tmp.unlink(missing_ok=True)
    return None, f"failed: {child_failure(proc)}"


def child_failure(proc: subprocess.CompletedProcess) -> str:
    """Why a converter child process (run with -X faulthandler) failed: the signal and the
    converter function it died in, or the exit status and the last line of stderr."""
    if proc.returncode < 0:
        why = f"the converter process died with {signal.Signals(-proc.returncode).name}"
        where = re.search(r'File ".*?(tensorflow/lite/python/[^"]+)", line (\d+) in (\w+)',
                          proc.stderr)
        if where:
            why += f" in {where[3]} ({where[1]}:{where[2]})"
        return why
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return f"exit {proc.returncode}: {lines[-1][:300] if lines else ''}"


def int8_child(keras, tf, t: int, out: Path) -> int:
    """--int8-child: convert to full integer and write the file (or crash)."""
    out.write_bytes(convert(tf, build_model(keras, t), t, int8=True))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Convert, check for WHILE, try int8 once per T, write the files and the json."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help=f"output folder (default {OUT})")
    ap.add_argument("--int8-child", type=int, metavar="T", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    import ai_edge_litert
    import tensorflow as tf

    if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
        import tf_keras as keras
    else:
        import keras

    tf.random.set_seed(SEED)
    if args.int8_child:
        return int8_child(keras, tf, args.int8_child, args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    info: dict = {"tf_version": tf.__version__, "keras_version": keras.__version__,
                  "litert_version": getattr(ai_edge_litert, "__version__", "unknown"),
                  "model": f"Input((T, {FEAT}), batch_size=1) -> GRU({HIDDEN}, reset_after=True)",
                  "files": {}}
    for t in T_LENS:
        model = build_model(keras, t)
        int8_blob, int8_result = try_int8(args.out, t)
        if int8_blob is not None:
            blob, dtype = int8_blob, "int8"
        else:
            blob, dtype = convert(tf, model, t, int8=False), "float32"
        ops = op_names(blob)
        if "WHILE" not in ops:
            sys.exit(f"T={t}: expected a WHILE loop, the converter made {ops}")
        name = f"{NAME}_T{t}{'_int8' if dtype == 'int8' else ''}.tflite"
        (args.out / name).write_bytes(blob)
        info["files"][name] = {"T": t, "dtype": dtype, "bytes": len(blob),
                               "ops_per_subgraph": all_subgraph_ops(blob),
                               "int8_conversion": int8_result}
        print(f"T={t}: wrote {args.out / name} ({len(blob)} bytes, {dtype}); ops {ops}; "
              f"int8 conversion {int8_result[:160]}")
    kernel, recurrent, bias = build_model(keras, T_LENS[0]).get_layer("gru").get_weights()
    np.savez(args.out / f"{NAME}_weights.npz", kernel=kernel, recurrent=recurrent, bias=bias)
    (args.out / f"{NAME}.json").write_text(json.dumps(info, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
