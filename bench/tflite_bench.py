"""rnnq's .tflite in LiteRT against TensorFlow's converter: size, latency, accuracy.

    python bench/tflite_bench.py [--no-readme]        # or: make bench-tflite

1. LSTM: the converter-made tests/fixtures/tflite/keras_lstm_int8.tflite (Keras LSTM(8),
   input (1, 12, 5)) against rnnq's .tflite of the same LSTM (its weights read back from that
   file, dequantised and written as an ONNX LSTM), both int8 with one fused
   UNIDIRECTIONAL_SEQUENCE_LSTM; SQNR of each against the float Keras outputs.
2. GRU and vanilla RNN at (I, H) = (8, 16), (40, 64) and T = 12, 50, 100: rnnq's int8 .tflite
   unrolled and as a WHILE loop (--tflite-loop), and next to the 8x16 GRU at T = 12 and 50 the converter's float WHILE-loop GRU with
   the same weights (bench/fixtures/, made by tools/make_tflite_while_gru.py; its int8
   conversion crashes in TF 2.21).

Latency: LiteRT's Python interpreter in this process, every (file, resolver) pair interleaved in
blocks, median of >= 500 timed invoke() calls after a warm-up (reset_all_variables() before
each call, outside the timing). Models, weights and data come from fixed seeds; the latencies
depend on the host. Rewrites the generated section of bench/README.md unless --no-readme.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
import numpy as np
import onnx
import onnxruntime as ort
import report
from onnx import TensorProto, numpy_helper
from onnx import helper as oh

from rnnq import api
from rnnq.backends.tflite import runtime as litert
from rnnq.backends.tflite.reader import read_tflite
from rnnq.report import sqnr_db

BEGIN = "<!-- tflite:begin -->"
END = "<!-- tflite:end -->"
FIXTURES = ROOT / "tests" / "fixtures" / "tflite"
KERAS_LSTM = FIXTURES / "keras_lstm_int8.tflite"
KERAS_LSTM_IO = FIXTURES / "keras_lstm_int8_io.npz"
WHILE_DIR = HERE / "fixtures"
WHILE_INFO = WHILE_DIR / "keras_gru_while.json"  # files, dtypes, the int8 conversion's fate
WHILE_WEIGHTS = WHILE_DIR / "keras_gru_while_weights.npz"

SEED = 20240613
CALIB_N = 50  # calibration sequences, uniform in [-2, 2] like the converter's representative set
TEST_N = 20  # accuracy sequences (GRU / RNN)
SIZES = ((8, 16), (40, 64))
T_LENS = (12, 50, 100)
RESOLVERS = ("builtin", "auto")
WARMUP = 100  # untimed invokes per (file, resolver)
INVOKES = 2000  # timed invokes per (file, resolver)
BLOCK = 50  # invokes of one pair before moving to the next (interleaving)


@dataclass
class Row:
    """One .tflite file in the table."""

    model: str
    shape: str
    t: int
    maker: str
    dtype: str
    blob: bytes
    sqnr: float | None = None
    us: dict[str, float] = field(default_factory=dict)

    @property
    def ops(self) -> str:
        return ops_text(self.blob)


def ops_text(blob: bytes) -> str:
    """The file's operators, short: fused LSTM, WHILE loop or the unrolled op count."""
    from tflite.BuiltinOperator import BuiltinOperator
    from tflite.Model import Model

    names = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
    m = Model.GetRootAs(blob, 0)
    codes = [max(m.OperatorCodes(i).BuiltinCode(), m.OperatorCodes(i).DeprecatedBuiltinCode())
             for i in range(m.OperatorCodesLength())]
    subs = [[names[codes[m.Subgraphs(s).Operators(k).OpcodeIndex()]]
             for k in range(m.Subgraphs(s).OperatorsLength())]
            for s in range(m.SubgraphsLength())]
    main = subs[0]
    if "WHILE" in main:
        return f"WHILE loop ({len(main)} ops; body {max(len(s) for s in subs[1:])} ops per step)"
    if "UNIDIRECTIONAL_SEQUENCE_LSTM" in main:
        rest = len(main) - 1
        return "1 fused LSTM" + (f" + {rest} RESHAPE" if rest and set(main) <= {
            "UNIDIRECTIONAL_SEQUENCE_LSTM", "RESHAPE"} else f" + {rest} ops" if rest else "")
    return f"{len(main)} ops (unrolled)"


def _f32(name: str, a: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(a, np.float32), name)


def _model(nodes: list, x: onnx.ValueInfoProto, y: onnx.ValueInfoProto, inits: list,
           name: str) -> onnx.ModelProto:
    graph = oh.make_graph(nodes, name, [x], [y], inits)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)],
                          producer_name="rnnq-bench-tflite")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def lstm_onnx(tflite_path: Path) -> tuple[onnx.ModelProto, int, int, int]:
    """The converter's LSTM as an ONNX LSTM: its int8 weights and int32 biases dequantised.

    Inputs 1-4 / 5-8 of UNIDIRECTIONAL_SEQUENCE_LSTM are the input / recurrent weights of gates
    i, f, c, o; 12-15 the biases. ONNX wants gates i, o, f, c and B = [Wb, Rb]. The graph takes
    x [1, T, I] and returns the whole sequence y [1, T, H], as the Keras model does."""
    g = read_tflite(tflite_path)
    (op,) = [o for o in g.ops if o.kind == "UNIDIRECTIONAL_SEQUENCE_LSTM"]

    def deq(k: int) -> np.ndarray:
        t = g.tensors[op.inputs[k]]
        return (t.data.astype(np.float64) - int(t.zero_point)) * float(t.scale)

    w = {gate: deq(1 + j) for j, gate in enumerate("ifco")}
    r = {gate: deq(5 + j) for j, gate in enumerate("ifco")}
    b = {gate: deq(12 + j) for j, gate in enumerate("ifco")}
    _, t_len, isz = g.tensors[g.inputs[0]].shape
    hsz = w["i"].shape[0]
    order = "iofc"
    inits = [_f32("W", np.concatenate([w[k] for k in order])[None]),
             _f32("R", np.concatenate([r[k] for k in order])[None]),
             _f32("B", np.concatenate([*(b[k] for k in order), np.zeros(4 * hsz)])[None]),
             numpy_helper.from_array(np.array([1], np.int64), "axis1")]
    nodes = [oh.make_node("Transpose", ["x"], ["x_tm"], perm=[1, 0, 2]),
             oh.make_node("LSTM", ["x_tm", "W", "R", "B"], ["Y"], hidden_size=hsz),
             oh.make_node("Squeeze", ["Y", "axis1"], ["Y_s"]),
             oh.make_node("Transpose", ["Y_s"], ["y"], perm=[1, 0, 2])]
    model = _model(nodes, oh.make_tensor_value_info("x", TensorProto.FLOAT, [1, t_len, isz]),
                   oh.make_tensor_value_info("y", TensorProto.FLOAT, [1, t_len, hsz]), inits,
                   "keras_lstm")
    return model, t_len, isz, hsz


def recurrent_onnx(kind: str, isz: int, hsz: int, t_len: int,
                   weights: tuple[np.ndarray, ...] | None = None) -> onnx.ModelProto:
    """x [T, 1, I] -> GRU (linear_before_reset=1) or RNN (tanh) -> last h [1, H].

    Random weights U(+-1/sqrt(H)) from a seed of the shape, unless weights = (W, R, B)."""
    gates = {"GRU": 3, "RNN": 1}[kind]
    if weights is None:
        rng = np.random.default_rng(SEED + {"GRU": 0, "RNN": 500}[kind] + isz * 7 + hsz)
        k = 1.0 / np.sqrt(hsz)
        weights = (rng.uniform(-k, k, (1, gates * hsz, isz)),
                   rng.uniform(-k, k, (1, gates * hsz, hsz)),
                   rng.uniform(-k, k, (1, 2 * gates * hsz)))
    inits = [_f32("W", weights[0]), _f32("R", weights[1]), _f32("B", weights[2]),
             numpy_helper.from_array(np.array([1, hsz], np.int64), "shape")]
    attrs: dict = {"hidden_size": hsz}
    if kind == "GRU":
        attrs["linear_before_reset"] = 1  # = Keras reset_after=True, PyTorch's nn.GRU
    nodes = [oh.make_node(kind, ["x", "W", "R", "B"], ["", "Y_h"], **attrs),
             oh.make_node("Reshape", ["Y_h", "shape"], ["h"])]
    return _model(nodes, oh.make_tensor_value_info("x", TensorProto.FLOAT, [t_len, 1, isz]),
                  oh.make_tensor_value_info("h", TensorProto.FLOAT, [1, hsz]), inits,
                  f"{kind.lower()}_{isz}x{hsz}_T{t_len}")


def while_files() -> dict[int, tuple[Path, dict]]:
    """T -> (WHILE-loop GRU file, its entry in keras_gru_while.json)."""
    info = json.loads(WHILE_INFO.read_text())
    return {int(f["T"]): (WHILE_DIR / name, f) for name, f in info["files"].items()}


def keras_gru_weights() -> tuple[np.ndarray, ...]:
    """The WHILE-loop GRU's Keras weights (gates z, r, h) as ONNX GRU W, R, B."""
    d = np.load(WHILE_WEIGHTS)
    return d["kernel"].T[None], d["recurrent"].T[None], d["bias"].reshape(1, -1)


def compile_rnnq(model: onnx.ModelProto, t_len: int, isz: int, work: Path, name: str,
                 loop: str = "unrolled", precision: str = "auto") -> bytes:
    """rnnq.api.compile_model(fmt="tflite") on CALIB_N uniform [-2, 2] sequences of t_len."""
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    rng = np.random.default_rng(SEED + t_len * 1000 + isz)
    np.savez(folder / "calib.npz",
             x=rng.uniform(-2.0, 2.0, (CALIB_N, t_len, isz)).astype(np.float32))
    api.compile_model(folder / "model.onnx", folder / "calib.npz", folder / "build",
                      fmt="tflite", tflite_loop=loop, precision=precision)
    return (folder / "build" / "model.tflite").read_bytes()


#: The arithmetic of a quantised file: int8 throughout, or TFLite's 16x8 scheme in places.
INTEGER = ("int8", "16x8")


def arithmetic(blob: bytes) -> str:
    """"16x8" when the file computes with int16 activations (rnnq's default for unrolled
    GRU / RNN layers), "int8" when its activations are int8, else its input's float type."""
    it = litert.interpreter(blob, "builtin")
    if np.float32 in {d["dtype"] for d in it.get_input_details()}:
        return "float32"
    kinds = {t["index"]: t["dtype"] for t in it.get_tensor_details()}
    wrote = {kinds.get(int(i)) for op in it._get_ops_details() for i in op["outputs"]}
    return "16x8" if np.int16 in wrote else "int8"  # a fused LSTM's int16 cell is a variable


def run_file(blob: bytes, x: np.ndarray) -> np.ndarray:
    """Float inputs x [N, ...] through the file in LiteRT (builtin kernels), quantised with the
    file's own input parameters when it takes integers (int8, or int16: the 16x8 files);
    float outputs [N, ...]."""
    it = litert.interpreter(blob, "builtin")
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    ys = []
    for xk in x:
        xk = xk.reshape(inp["shape"])
        if inp["dtype"] in (np.int8, np.int16):
            s, z = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            xk = np.clip(np.round(xk / s) + z, info.min, info.max)
        it.reset_all_variables()
        it.set_tensor(inp["index"], xk.astype(inp["dtype"]))
        it.invoke()
        y = it.get_tensor(out["index"]).astype(np.float64)
        if out["dtype"] in (np.int8, np.int16):
            s, z = out["quantization"]
            y = (y - z) * s
        ys.append(y)
    return np.stack(ys)


def onnx_float(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """onnxruntime on each sequence of x (shaped as the model's input)."""
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.stack([sess.run(None, {name: xk.astype(np.float32)})[0] for xk in x])


def time_interleaved(rows: list[Row]) -> None:
    """Median invoke() latency in µs of every (row, resolver), measured in turns of BLOCK."""
    pairs = []
    for row in rows:
        for res in RESOLVERS:
            it = litert.interpreter(row.blob, res)
            d = it.get_input_details()[0]
            rng = np.random.default_rng(SEED)
            if d["dtype"] in (np.int8, np.int16):
                x = rng.integers(-100, 100, d["shape"]).astype(d["dtype"])
            else:
                x = rng.uniform(-2, 2, d["shape"]).astype(np.float32)
            it.set_tensor(d["index"], x)
            for _ in range(WARMUP):
                it.reset_all_variables()
                it.invoke()
            pairs.append((row, res, it, []))
    clock = time.perf_counter_ns
    for _ in range(INVOKES // BLOCK):
        for _row, _res, it, times in pairs:
            for _ in range(BLOCK):
                it.reset_all_variables()
                t0 = clock()
                it.invoke()
                times.append(clock() - t0)
    for row, res, _it, times in pairs:
        row.us[res] = float(np.median(times)) / 1000.0


def lstm_rows(work: Path) -> tuple[list[Row], list[str]]:
    """Row 1: the converter's LSTM and rnnq's, same weights; notes for the README."""
    model, t_len, isz, hsz = lstm_onnx(KERAS_LSTM)
    theirs = KERAS_LSTM.read_bytes()
    ours = compile_rnnq(model, t_len, isz, work, "lstm")
    io = np.load(KERAS_LSTM_IO)
    x, y_ref = io["x_float"], io["y_float"].astype(np.float64)
    shape = f"{isz}×{hsz}"
    rows = [Row("LSTM", shape, t_len, "TF converter", arithmetic(theirs), theirs),
            Row("LSTM", shape, t_len, "rnnq", arithmetic(ours), ours)]
    for row in rows:
        row.sqnr = sqnr_db(y_ref, run_file(row.blob, x).reshape(y_ref.shape))
    fl = onnx_float(model, x).reshape(y_ref.shape)
    notes = [(f"LSTM reference: the float Keras outputs `y_float` of {len(x)} sequences "
              f"(uniform [-2, 2]) in `{KERAS_LSTM_IO.relative_to(ROOT)}`; the ONNX LSTM built "
              f"from the converter's dequantised weights is itself at {sqnr_db(y_ref, fl):.1f} "
              "dB against them (onnxruntime, float), which bounds what rnnq can reach from "
              "those weights.")]
    return rows, notes


def recurrent_rows(work: Path) -> tuple[list[Row], list[str]]:
    """Rows 2: rnnq's unrolled GRU / RNN, and the converter's float WHILE GRU beside 8x16."""
    rows: list[Row] = []
    notes: list[str] = []
    kw = keras_gru_weights()
    whiles = while_files()
    for kind in ("GRU", "RNN"):
        for isz, hsz in SIZES:
            for t_len in T_LENS:
                same = kind == "GRU" and (isz, hsz) == (8, 16)
                model = recurrent_onnx(kind, isz, hsz, t_len, kw if same else None)
                rng = np.random.default_rng(SEED + 7 * t_len + isz)
                x = rng.uniform(-2.0, 2.0, (TEST_N, t_len, 1, isz)).astype(np.float32)
                ref = onnx_float(model, x).astype(np.float64)
                xb = x.transpose(0, 2, 1, 3)  # the files take [1, T, I]
                for loop, precision in (("unrolled", "auto"), ("while", "auto"),
                                        ("unrolled", "int8")):
                    name = f"{kind.lower()}_{isz}x{hsz}_T{t_len}_{loop}_{precision}"
                    blob = compile_rnnq(model, t_len, isz, work, name, loop, precision)
                    maker = f"rnnq ({loop}{', --precision int8' if precision == 'int8' else ''})"
                    row = Row(kind, f"{isz}×{hsz}", t_len, maker, arithmetic(blob), blob)
                    row.sqnr = sqnr_db(ref, run_file(blob, xb).reshape(ref.shape))
                    rows.append(row)
                if same and t_len in whiles:
                    path, info = whiles[t_len]
                    wrow = Row(kind, f"{isz}×{hsz}", t_len, "TF converter", info["dtype"],
                               path.read_bytes())
                    wrow.sqnr = sqnr_db(ref, run_file(wrow.blob, xb).reshape(ref.shape))
                    rows.append(wrow)
    fates = sorted({f["int8_conversion"] for _, f in whiles.values()})
    floats = [t for t, (_, f) in sorted(whiles.items()) if f["dtype"] == "float32"]
    if floats:
        notes.append(
            "† The converter's GRU files (`bench/fixtures/`, `tools/make_tflite_while_gru.py`: "
            "Keras 3 `GRU(16)`, `reset_after=True`, on (1, T, 8); TFLite has no fused GRU op, "
            "so the converter keeps the recurrence as a WHILE loop over a body subgraph) are "
            f"**float32** at T = {', '.join(map(str, floats))}: TensorFlow "
            f"{json.loads(WHILE_INFO.read_text())['tf_version']}'s full-integer conversion of "
            f"them {'; '.join(fates)}. So their sizes hold float weights and their latencies "
            "float kernels. rnnq's own int8 WHILE rows (`--tflite-loop while`) compute the same integers as its unrolled rows, so they isolate the cost of the loop form.")
    notes.append(f"GRU / RNN reference: onnxruntime (float) on the ONNX model, {TEST_N} "
                 "sequences uniform [-2, 2]. rnnq's 8×16 GRU is built from the WHILE files' "
                 "Keras weights (gates z, r, h; `linear_before_reset=1`), so those rows compare "
                 "the same GRU; the float WHILE files' SQNR only shows float rounding, which "
                 "checks that the weights match. The other GRU / RNN weights are random, "
                 "U(±1/√H), from fixed seeds.")
    by = {(r.model, r.shape, r.t): len(r.blob) for r in rows if r.maker == "rnnq (unrolled)"}
    growth = [f"{k} {sh}: {(by[(k, sh, T_LENS[-1])] - by[(k, sh, T_LENS[0])]) / span:,.0f}"
              for k, sh in dict.fromkeys((r.model, r.shape) for r in rows)
              for span in [T_LENS[-1] - T_LENS[0]]]
    notes.append("rnnq's unrolled GRU / RNN files repeat the step's ops for every step "
                 "(weights stored once), so they grow with T, by the same bytes per extra step "
                 f"whatever the layer size ({'; '.join(growth)} bytes) — operator and tensor "
                 "records, not weights. The WHILE files do not grow with T; they pay a GATHER, "
                 "a DYNAMIC_UPDATE_SLICE and the loop control at every step.")
    return rows, notes


def _num(v: float | None, fmt: str) -> str:
    if v is None:
        return "—"
    return "∞" if v == float("inf") else format(v, fmt)


def table(rows: list[Row]) -> list[str]:
    """The markdown table."""
    out = [("| model | I×H | T | made by | arithmetic | operators | file bytes "
            "| LiteRT builtin µs | LiteRT auto µs | SQNR dB |"),
           "|---|---|--:|---|---|---|--:|--:|--:|--:|"]
    for r in rows:
        kind = r.dtype if r.dtype in INTEGER else f"**{r.dtype}** †"
        out.append(f"| {r.model} | {r.shape} | {r.t} | {r.maker} | {kind} | {r.ops} "
                   f"| {len(r.blob):,} | {_num(r.us.get('builtin'), '.1f')} "
                   f"| {_num(r.us.get('auto'), '.1f')} | {_num(r.sqnr, '.1f')} |")
    return out


def lstm_summary(rows: list[Row]) -> list[str]:
    """One line per measure: rnnq's LSTM file against the converter's."""
    theirs, ours = rows[0], rows[1]
    lines = [(f"- LSTM, rnnq / converter: file {len(ours.blob):,} / {len(theirs.blob):,} "
              f"bytes ({len(ours.blob) / len(theirs.blob):.2f}×)")]
    for res in RESOLVERS:
        lines.append(f"- LSTM, rnnq / converter, LiteRT {res}: {ours.us[res]:.1f} / "
                     f"{theirs.us[res]:.1f} µs ({ours.us[res] / theirs.us[res]:.2f}×)")
    lines.append(f"- LSTM accuracy against float Keras: rnnq {ours.sqnr:.1f} dB, converter "
                 f"{theirs.sqnr:.1f} dB")
    return lines


def section(rows: list[Row], notes: list[str], seconds: float) -> str:
    """The generated README section, markers included."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    lstm = [r for r in rows if r.model == "LSTM"]
    out = [
        BEGIN,
        "",
        *table(rows),
        "",
        *lstm_summary(lstm),
        "",
        (f"Measured with {litert.version()} on {cpu} (Python {platform.python_version()}), "
         f"median of {INVOKES} timed `invoke()` calls per file and resolver after {WARMUP} "
         f"untimed ones, all pairs interleaved in blocks of {BLOCK}; whole run {seconds:.0f} s. "
         "*builtin*: LiteRT's builtin kernels with XNNPACK off (what rnnq's simulator "
         "specifies); *auto*: LiteRT's default (XNNPACK takes the ops it supports)."),
        "",
        *(f"- {n}" for n in notes),
        "",
        END,
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Build, compile, measure, print; rewrite bench/README.md's section unless --no-readme."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-readme", action="store_true", help="print the section only")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    print(f"{litert.version()}, onnxruntime {version('onnxruntime')}", flush=True)
    with tempfile.TemporaryDirectory(prefix="rnnq-bench-tflite-") as td:
        work = Path(td)
        lrows, lnotes = lstm_rows(work)
        print(f"LSTM compiled ({time.monotonic() - t0:.0f} s); timing", flush=True)
        time_interleaved(lrows)
        rrows, rnotes = recurrent_rows(work)
        print(f"GRU / RNN compiled ({time.monotonic() - t0:.0f} s); timing", flush=True)
        time_interleaved(rrows)
    text = section(lrows + rrows, lnotes + rnotes, time.monotonic() - t0)
    print(text)
    if not args.no_readme:
        readme = HERE / "README.md"
        readme.write_text(report.splice(readme.read_text(), text, BEGIN, END))
        print(f"wrote {readme}")
    print(f"done in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
