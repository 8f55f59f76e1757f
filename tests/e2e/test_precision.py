"""Per-layer precision (issue 10 item 4): --precision auto widens to int16 the recurrent states
whose width the measured output error asks for, until --min-sqnr (or --max-drop) holds on the
calibration data; --precision int8|int16|LAYER=int16 forces it. The figures the compiler
measured are checked against validate's (onnxruntime float, the C harness), not its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rnnq.api import compile_model, inspect, validate
from rnnq.cli import main
from rnnq.ir import RnnqError
from rnnq.passes import bias_correction
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]
#: tools/make_bilstm_fixture.py --seed 7: on BasicMotions' calibration sequences its all-int8
#: states lose one sequence to the other attractor of a cell (about 16 dB against float)
BILSTM7 = ROOT / "tests" / "fixtures" / "accuracy" / "bilstm_basicmotions_s7.onnx"
BM = ROOT / "examples" / "basic_motions_gru"
JV = ROOT / "examples" / "japanese_vowels"
SUNSPOTS = ROOT / "examples" / "sunspots_rnn"


def _states(m: dict) -> list[int]:
    return [r.get("state_bits", 8) for r in m["recurrent"]]


@pytest.fixture
def no_bias_correction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bias correction (chosen before the precision, as it costs nothing at run time) also
    brings BILSTM7's lost sequence back; with it off the model is one where it does not help."""
    monkeypatch.setattr(bias_correction, "corrections", lambda *a, **k: {})


def test_auto_widens_the_state_the_error_needs(tmp_path: Path, no_bias_correction) -> None:
    auto = compile_model(BILSTM7, BM / "calib.npz", tmp_path / "auto")
    narrow = compile_model(BILSTM7, BM / "calib.npz", tmp_path / "int8", precision="int8")
    c = auto["choices"]["precision"]
    print(json.dumps(c))
    r_auto, r_narrow = validate(tmp_path / "auto", BM / "calib.npz"), \
        validate(tmp_path / "int8", BM / "calib.npz")
    print(f"calibration data: int8 {r_narrow['int']['sqnr_db']:.1f} dB, auto "
          f"{r_auto['int']['sqnr_db']:.1f} dB ({c['widened']})")
    # validate's own figures: the all-int8 build misses 35 dB, the chosen one meets it
    assert r_narrow["int"]["sqnr_db"] < 35.0 <= r_auto["int"]["sqnr_db"]
    assert r_auto["c"]["bit_exact"] and r_narrow["c"]["bit_exact"]
    assert c["met"] and c["widened"] and set(c["widened"]) <= set(c["int16"]) | set(c["r16"])
    assert _states(narrow) == [8, 8, 8, 8]
    # one layer widened (its state, its recurrent weights or both), not all four
    assert len(c["widened"]) == 1 and len(set(c["int16"]) | set(c["r16"])) == 1
    rw = [r["recurrent_weight_bits"] for r in auto["recurrent"]]
    assert _states(auto).count(16) == len(c["int16"]) and rw.count(16) == len(c["r16"])
    rec = json.loads((tmp_path / "auto" / "calibration.json").read_text())
    widths = [*rec.get("layer_state_bits", {}).values(), *rec.get("layer_rw_bits", {}).values()]
    assert widths and set(widths) == {16}
    # the compiler's figure is validate's on the same (whole) calibration set
    assert abs(c["output_sqnr_db"]["chosen"] - r_auto["int"]["sqnr_db"]) < 0.5
    assert abs(c["output_sqnr_db"]["default"] - r_narrow["int"]["sqnr_db"]) < 0.5
    assert ("precision for min_sqnr 35.0 dB (every sequence 38.0 dB): default"
            in inspect(tmp_path / "auto"))


def test_bias_correction_comes_first(tmp_path: Path) -> None:
    """What costs nothing at run time is tried before a wider state: on BILSTM7 bias
    correction alone meets the goal, and no state is widened."""
    m = compile_model(BILSTM7, BM / "calib.npz", tmp_path / "b")
    c = m["choices"]
    assert c["bias_correction"]["chosen"] == "on"
    assert c["precision"]["met"] and c["precision"]["widened"] == []
    assert _states(m) == [8, 8, 8, 8]


def test_a_met_target_widens_nothing(tmp_path: Path) -> None:
    """Where the default widths already meet --min-sqnr, auto is the default: the same C."""
    m = compile_model(JV / "model.onnx", JV / "calib.npz", tmp_path / "auto")
    d = compile_model(JV / "model.onnx", JV / "calib.npz", tmp_path / "int8", precision="int8")
    c = m["choices"]["precision"]
    assert c["met"] and c["widened"] == [] and c["tried"] == []
    assert c["output_sqnr_db"]["default"] >= 35.0
    assert (tmp_path / "auto" / "model.c").read_bytes() == (tmp_path / "int8" / "model.c").read_bytes()
    assert _states(m) == _states(d) == [8]


def test_an_unreachable_target_is_said_and_the_best_kept(tmp_path: Path) -> None:
    logs: list[str] = []
    m = compile_model(JV / "model.onnx", JV / "calib.npz", tmp_path / "b", min_sqnr=80.0,
                      log=logs.append)
    c = m["choices"]["precision"]
    print(c, logs)
    assert not c["met"] and c["tried"]
    assert any(s.startswith("warning: precision auto:") and "min_sqnr 80.0 dB" in s
               for s in logs)
    assert validate(tmp_path / "b", JV / "test.npz")["c"]["bit_exact"]


def test_max_drop_counts_flipped_decisions(tmp_path: Path, no_bias_correction) -> None:
    m = compile_model(BILSTM7, BM / "calib.npz", tmp_path / "b", max_drop=3.0)
    c = m["choices"]["precision"]
    print(c)
    assert c["target"] == "max_drop 3.0 %"
    # the default flips two of the 40 calibration sequences' classes; one widened state, one
    assert c["flips_percent"]["default"] == pytest.approx(2 * 100 / 40)
    assert c["met"] and c["flips_percent"]["chosen"] == pytest.approx(100 / 40)
    assert len(c["widened"]) == 1
    rep = validate(tmp_path / "b", BM / "calib.npz")
    assert rep["c"]["bit_exact"]


def test_forced_layers_by_name_direction_or_output(tmp_path: Path) -> None:
    spec = "/lstm/LSTM:reverse=int16,/lstm/LSTM_1=int16"
    m = compile_model(BILSTM7, BM / "calib.npz", tmp_path / "b", precision=spec)
    assert _states(m) == [8, 16, 16, 16]
    assert m["choices"]["precision"]["widened"] == []  # forced, not chosen
    rep = validate(tmp_path / "b", BM / "test.npz")
    assert rep["c"]["bit_exact"] and rep["c"]["compared_values"] > 0
    # inspect names the layers as --precision takes them
    text = inspect(tmp_path / "b")
    assert "LSTM /lstm/LSTM:reverse (reverse): I=6 H=16" in text and "state int16" in text
    m = compile_model(BILSTM7, BM / "calib.npz", tmp_path / "c", precision="int16")
    assert _states(m) == [16, 16, 16, 16] and "precision" not in m["choices"]
    m = compile_model(BILSTM7, BM / "calib.npz", tmp_path / "d",
                      precision="/lstm/LSTM:forward=int8")
    assert _states(m)[0] == 8


@pytest.mark.parametrize("kw, match", [
    ({"precision": "nosuch=int16"}, r"no recurrent layer 'nosuch' \(layers: '/lstm/LSTM:forward'"),
    ({"precision": "/lstm/LSTM=int4"}, "LAYER=int8|int16"),
    ({"precision": "int12"}, "auto, int8 or int16"),
    ({"precision": "int16", "state_bits": 8}, "--state-bits and --precision"),
    ({"input_bits": 16, "float_io": True, "fmt": "tflite"}, "--input-bits 16 and --float-io"),
    ({"min_sqnr": float("nan")}, "--min-sqnr"),
])
def test_bad_precision_options(kw: dict, match: str, tmp_path: Path) -> None:
    with pytest.raises(RnnqError, match=match):
        compile_model(BILSTM7, BM / "calib.npz", tmp_path / "b", **kw)
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("target", ["generic-c99", "cortex-m4"])
def test_int16_vanilla_rnn_state(tmp_path: Path, target: str) -> None:
    """A vanilla RNN's state can be int16 (rnnq_rnn_step_*_h16): named by layer, the build is
    bit-exact against the simulator on the host and on the emulated Cortex-M4, the state is
    twice the bytes, and the forecast is no worse than with the int8 state."""
    if target != "generic-c99":
        require_tool("qemu-system-arm")
        require_tool("arm-none-eabi-gcc")
    rep, m = {}, {}
    for p in ("int8", f"{_rnn_name()}=int16"):
        m[p] = compile_model(SUNSPOTS / "model.onnx", SUNSPOTS / "calib.npz", tmp_path / p[-5:],
                             target, precision=p)
        rep[p] = validate(tmp_path / p[-5:], SUNSPOTS / "test.npz",
                          on="host" if target == "generic-c99" else "emulator")
        assert rep[p]["c"]["bit_exact"], rep[p]["c"]
        if target != "generic-c99":
            assert rep[p]["device"]["bit_exact"] and rep[p]["device"]["compared_values"] > 0
    wide = f"{_rnn_name()}=int16"
    assert _states(m["int8"]) == [8] and _states(m[wide]) == [16]
    assert m[wide]["memory"]["state_bytes"] > m["int8"]["memory"]["state_bytes"]
    assert rep[wide]["int"]["sqnr_db"] >= rep["int8"]["int"]["sqnr_db"] - 0.1, rep


def _rnn_name() -> str:
    from rnnq.api import float_graph

    return next(n.name for n in float_graph(SUNSPOTS / "model.onnx").nodes if n.op == "rnn")


def test_max_drop_needs_a_classifier(tmp_path: Path) -> None:
    with pytest.raises(RnnqError, match="--max-drop: the model has no classifier output"):
        compile_model(SUNSPOTS / "model.onnx", SUNSPOTS / "calib.npz", tmp_path / "b",
                      max_drop=1.0)


def test_cli_precision_error_is_one_line(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["compile", str(BILSTM7), "--calib", str(BM / "calib.npz"),
                                  "-o", str(tmp_path / "b"), "--precision", "nosuch=int16"])
    assert r.exit_code == 2, r.output
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("rnnq: error: --precision: no recurrent layer 'nosuch'")
    assert "Traceback" not in r.output and not (tmp_path / "b").exists()
    r = CliRunner().invoke(main, ["compile", str(BILSTM7), "--calib", str(BM / "calib.npz"),
                                  "-o", str(tmp_path / "b"), "--format", "tflite",
                                  "--max-drop", "1"])
    assert r.exit_code == 2 and "--max-drop" in r.output


def _vad_like(path: Path, seed: int) -> None:
    """x [T, 1, F] -> LSTM(H) -> one speech probability per step, sigmoid(h w + b)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, numpy_helper
    from onnx import helper as oh

    f, h = 6, 16
    r = np.random.default_rng(seed)
    c = {"W": r.normal(size=(1, 4 * h, f)) / 2, "R": r.normal(size=(1, 4 * h, h)) / 3,
         "w": r.normal(size=(h, 1)) * 2, "b": np.array([0.1]), "axis": np.array([1])}
    c = {k: v.astype(np.float32) if v.dtype != np.int64 else v for k, v in c.items()}
    g = oh.make_graph(
        [oh.make_node("LSTM", ["x", "W", "R"], ["Y"], hidden_size=h),
         oh.make_node("Squeeze", ["Y", "axis"], ["hs"]),
         oh.make_node("MatMul", ["hs", "w"], ["m"]), oh.make_node("Add", ["m", "b"], ["a"]),
         oh.make_node("Sigmoid", ["a"], ["p"])], "vad",
        [oh.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, f])],
        [oh.make_tensor_value_info("p", TensorProto.FLOAT, ["T", 1, 1])],
        [numpy_helper.from_array(v, k) for k, v in c.items()])
    onnx.save(oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)]), path)
    x = r.normal(size=(12, 40, f)).astype(np.float32)
    np.savez(path.with_suffix(".npz"), x=x)


def test_max_drop_on_a_single_probability(tmp_path: Path) -> None:
    """A sigmoid output (a VAD's speech probability) decides at 0.5: --max-drop counts those
    decisions; the count is checked against onnxruntime and the build's integer model."""
    import numpy as np
    import onnxruntime as ort

    from rnnq.api import simulate

    model = tmp_path / "vad.onnx"
    _vad_like(model, 5)
    calib = model.with_suffix(".npz")
    m = compile_model(model, calib, tmp_path / "b", max_drop=100.0)
    c = m["choices"]["precision"]
    assert c["target"] == "max_drop 100.0 %" and c["met"]
    x = np.load(calib)["x"]
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    pf = np.stack([sess.run(None, {"x": s[:, None, :]})[0].reshape(-1) for s in x])
    pi = next(iter(simulate(tmp_path / "b", calib).values())).reshape(pf.shape)
    flips = 100.0 * float(np.mean((pf > 0.5) != (pi > 0.5)))
    print(f"{flips:.2f} % of {pf.size} decisions flip")
    assert c["flips_percent"]["default"] == pytest.approx(flips, abs=0.01)
    assert 0.0 < np.mean(pf > 0.5) < 1.0  # both decisions occur


def test_auto_keeps_within_the_ram_budget(tmp_path: Path, no_bias_correction,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A widening whose arena and state exceed the RAM budget is not tried: with every int16
    or 16-bit-weight candidate made to cost more than --ram, auto widens nothing, says so and
    keeps the goal
    unmet (the estimate itself is checked against built folders below)."""
    from rnnq import steps

    real = steps.ram_bytes

    def costly(q, *a):
        ps = [n.attrs["params"] for n in q.nodes if n.op == "qlstm"]
        wide = any(p.state_bits == 16 or p.rw_lo.size for p in ps)
        return 10**9 if wide else real(q, *a)

    monkeypatch.setattr(steps, "ram_bytes", costly)
    m = compile_model(BILSTM7, BM / "calib.npz", tmp_path / "b", ram=10**8)
    c = m["choices"]["precision"]
    assert not c["met"] and c["widened"] == [] and _states(m) == [8, 8, 8, 8]
    assert c["tried"] and all("RAM budget 100000000 B" in t["refused"] for t in c["tried"])


@pytest.mark.parametrize("precision", ["int8", "int16"])
def test_ram_estimate_is_the_built_arena_and_state(tmp_path: Path, precision: str) -> None:
    """plan.ram_bytes (what auto weighs) equals the arena + state of the folder it builds."""
    from rnnq.api import open_graphs
    from rnnq.backends.c.plan import ram_bytes

    m = compile_model(BILSTM7, BM / "calib.npz", tmp_path / "b", precision=precision)
    ig = open_graphs(tmp_path / "b")[2]
    mem = m["memory"]
    assert ram_bytes(ig, m["prefix"], m["max_steps"]) == mem["arena_bytes"] + mem["state_bytes"]
