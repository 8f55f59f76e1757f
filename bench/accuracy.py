"""Accuracy of the bundled examples: float, rnnq's C build (default; and with the 8-bit input and
state it used to have), rnnq's .tflite in LiteRT, and onnxruntime's own quantisers on the same
ONNX file and data, measured in one run (issue 10, item 8).

    python bench/accuracy.py              # prints the table (markdown)

Every row is measured on the example's test.npz against onnxruntime's float outputs (the
first output at each sequence's last step): accuracy (classifiers) or RMSE (forecaster), and
SQNR vs float in dB. onnxruntime's rows:
- `quantize_dynamic` (QInt8 weights; activations quantised at run time, in float between ops;
  LSTM becomes DynamicQuantizeLSTM, a GRU / RNN stays float);
- `quantize_static` (QDQ, QInt8 per-channel weights, QInt8 activations calibrated with MinMax on
  calib.npz; ops it cannot quantise, such as LSTM / GRU / RNN, stay float).
So onnxruntime's rows are partly float models; rnnq's are integer-only.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rnnq.api import compile_model, float_graph, validate
from rnnq.data import load_npz
from rnnq.report import metrics, sqnr_db
from rnnq.sim.onnx_runtime import float_outputs

EXAMPLES = ["japanese_vowels", "basic_motions_gru", "sunspots_rnn"]


def _ort_rows(ex: Path, work: Path, f0: np.ndarray, y) -> list[tuple[str, dict]]:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    g = float_graph(ex / "model.onnx")
    test = load_npz(ex / "test.npz", g)
    calib = load_npz(ex / "calib.npz", g)
    ta = g.meta["input_time_axis"]
    step_shape = list(g.tensors[g.inputs[0]].shape)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.k = 0

        def get_next(self):
            if self.k >= calib.n:
                return None
            i, self.k = self.k, self.k + 1
            xi = calib.x[i, : calib.lengths[i]].reshape(calib.lengths[i], *step_shape)
            return {g.inputs[0]: np.moveaxis(xi, 0, ta).astype(np.float32)}

    rows = []
    dyn = work / "dynamic.onnx"
    quantize_dynamic(str(ex / "model.onnx"), str(dyn), weight_type=QuantType.QInt8)
    stat = work / "static.onnx"
    quantize_static(str(ex / "model.onnx"), str(stat), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, weight_type=QuantType.QInt8,
                    activation_type=QuantType.QInt8)
    for label, path in (("onnxruntime quantize_dynamic", dyn),
                        ("onnxruntime quantize_static (QDQ)", stat)):
        (o0, *_), engine = float_outputs(path, g, test)
        assert engine == "onnxruntime", f"{path}: onnxruntime could not run it"
        rows.append((label, {**metrics(o0, y), "sqnr_db": sqnr_db(f0, o0)}))
    return rows


def measure(name: str) -> list[tuple[str, dict]]:
    ex = ROOT / "examples" / name
    work = Path(tempfile.mkdtemp(prefix=f"rnnq-acc-{name}-"))
    g = float_graph(ex / "model.onnx")
    test = load_npz(ex / "test.npz", g)
    (f0, *_), _ = float_outputs(ex / "model.onnx", g, test)
    y = test.y
    rows = [("float (onnxruntime)", {**metrics(f0, y), "sqnr_db": float("inf")})]
    variants = [("rnnq C, default", {}),
                ("rnnq C, 8-bit input and state", {"input_bits": 8, "state_bits": 8}),
                ("rnnq .tflite (LiteRT)", {"fmt": "tflite"})]
    for label, kw in variants:
        out = work / label.replace(" ", "_").replace(",", "").replace(".", "")
        compile_model(ex / "model.onnx", ex / "calib.npz", out, **kw)
        rep = validate(out, ex / "test.npz")
        exact = rep["tflite" if "tflite" in rep else "c"]["bit_exact"]
        assert exact, f"{name} {label}: not bit-exact"
        rows.append((label, rep["int"]))
    rows += _ort_rows(ex, work, f0, y)
    return rows


def main() -> None:
    print("| example | model | metric | float | rnnq C | rnnq C, 8-bit in/state | rnnq .tflite "
          "| ORT dynamic | ORT static QDQ |")
    print("|---|---|---|" + "---|" * 6)
    for name in EXAMPLES:
        rows = measure(name)
        cls = rows[0][1]["accuracy"] is not None
        key = "accuracy" if cls else "rmse"
        cells = []
        for _, m in rows:
            v = m[key]
            s = f"{100 * v:.2f} %" if cls else f"{v:.4f}"
            if np.isfinite(m["sqnr_db"]):
                s += f", {m['sqnr_db']:.1f} dB"
            cells.append(s)
        kind = float_graph(ROOT / "examples" / name / "model.onnx")
        ops = sorted({n.op for n in kind.nodes if n.op in ("lstm", "gru", "rnn")})
        print(f"| {name} | {'/'.join(ops)} | {'accuracy' if cls else 'RMSE'} | "
              + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
