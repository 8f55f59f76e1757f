"""Streaming exports where one call is one step and the state goes in and out of the graph
(issue 11): each builder of step_models compiles, the float reference carries the state as
onnxruntime does, the C reproduces the simulator on every call of every output (state outputs
included), and firmware can save and restore the state through _get_state/_set_state."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper as oh
from step_models import BUILDERS, vad_like
from variants_common import assert_bit_exact, require_host_toolchain

from rnnq.api import compile_model, float_graph, simulate, validate
from rnnq.data import load_npz
from rnnq.ir import RnnqError
from rnnq.ir.states import state_values
from rnnq.report import format_report
from rnnq.sim.float_ref import run_float
from rnnq.targets import load_target
from tests.backends.tflite.tflite_common import require_litert
from tests.cbuild import compile_executable
from tests.conftest import require_tool

N, K = 3, 24


def _shapes(model: Path) -> tuple[str, list[int], dict[str, list[int]]]:
    m = onnx.load(str(model))
    dims = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in m.graph.input}
    first = m.graph.input[0].name
    return first, dims.pop(first), dims


def _stream(model: Path, path: Path, seed: int, n: int = N, k: int = K,
            states: bool = True, lengths: bool = True) -> dict:
    """A stream file: the input as [N, K, *ONNX shape], random initial states [N, *shape]."""
    r = np.random.default_rng(seed)
    name, shape, sts = _shapes(model)
    d = {name: r.normal(0, 1, (n, k, *shape)).astype(np.float32)}
    if states:
        d.update({s: r.uniform(-0.6, 0.6, (n, *sh)).astype(np.float32) for s, sh in sts.items()})
    if lengths:
        d["lengths"] = r.integers(k // 2, k + 1, n)
        d["lengths"][0] = k
    np.savez(path, **d)
    return d


def _pairs(model: Path) -> dict[str, str]:
    """State input -> the output returning it: step_models puts them in the same order after
    the first output."""
    m = onnx.load(str(model))
    return dict(zip([i.name for i in m.graph.input[1:]], [o.name for o in m.graph.output[1:]],
                    strict=True))


def _ort_model(builder: str, path: Path) -> Path:
    """The model onnxruntime can run with the same function (it has no batch-first RNNs)."""
    if builder == "bidirectional_interleaved":
        return BUILDERS[builder](path.with_name("ort.onnx"), layout=0)
    return path


def _ort_stream(model: Path, d: dict, i: int) -> dict[str, list[np.ndarray]]:
    """onnxruntime run call by call over stream i, each state output fed back as its input."""
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name, _, sts = _shapes(model)
    carry = {s: d[s][i] for s in sts}
    outs = [o.name for o in sess.get_outputs()]
    got: dict[str, list[np.ndarray]] = {o: [] for o in outs}
    pairs = _pairs(model)
    for t in range(int(d["lengths"][i])):
        res = dict(zip(outs, sess.run(outs, {name: d[name][i, t], **carry}), strict=True))
        for o in outs:
            got[o].append(res[o])
        carry = {s: res[o] for s, o in pairs.items()}
    return got


@pytest.mark.parametrize("builder", sorted(BUILDERS))
def test_float_reference_carries_the_state_as_onnxruntime(builder: str, tmp_path: Path) -> None:
    model = BUILDERS[builder](tmp_path / "m.onnx")
    d = _stream(model, tmp_path / "d.npz", 7)
    g = float_graph(model)
    assert g.meta["step_graph"] is True
    assert {k: v["output"] for k, v in g.meta["state_inputs"].items()} == _pairs(model)
    data = load_npz(tmp_path / "d.npz", g)
    env = run_float(g, data.x, lengths=data.lengths, states=data.states)
    for i in range(N):
        ref = _ort_stream(_ort_model(builder, model), d, i)
        for s, info in g.meta["state_inputs"].items():
            mine = state_values(g, env, s)[i]
            for t, r in enumerate(ref[info["output"]]):
                np.testing.assert_allclose(mine[t], r, atol=1e-5, err_msg=f"{s} step {t}")
        for o in g.outputs:
            for t, r in enumerate(ref[o]):
                np.testing.assert_allclose(env[o][i, t].ravel(), r.ravel(), atol=1e-5,
                                           err_msg=f"{o} step {t}")


@pytest.mark.parametrize("builder", sorted(BUILDERS))
def test_step_graph_compiles_and_validates_bit_exact(builder: str, tmp_path: Path) -> None:
    require_host_toolchain()
    model = BUILDERS[builder](tmp_path / "m.onnx")
    _stream(model, tmp_path / "cal.npz", 1, n=8, k=30, lengths=False)
    _stream(model, tmp_path / "test.npz", 2)
    compile_model(model, tmp_path / "cal.npz", tmp_path / "b", "host", "m")
    rep = validate(tmp_path / "b", tmp_path / "test.npz")
    assert_bit_exact(rep)
    g = float_graph(model)
    names = {o["name"] for o in rep["outputs"]}
    wanted = set(g.outputs) | {v["output"] for v in g.meta["state_inputs"].values()}
    assert names == wanted, rep["outputs"]
    # every call of every stream is compared, not only the last
    d = np.load(tmp_path / "test.npz")
    calls = int(d["lengths"].sum())
    assert rep["c"]["compared_values"] >= calls * len(wanted)
    for o in rep["outputs"]:
        assert o["sqnr_db"] > 25, o
    h = (tmp_path / "b" / "model.h").read_text()
    assert "m_get_state(" in h and "m_set_state(" in h and "M_STATE_VALUES" in h
    for s in g.meta["state_inputs"]:
        c = re.sub(r"\W", "_", s)
        assert re.search(rf"m_set_{c}\w*\(", h) and re.search(rf"m_get_{c}\w*\(", h), s


def test_no_state_keys_means_zeros_bit_exact(tmp_path: Path) -> None:
    """Issue 11 bug 2: data without state keys is documented as zero initial states; the C
    must get the quantised zero the simulator uses, not a raw 0."""
    require_host_toolchain()
    model = vad_like(tmp_path / "m.onnx")
    _stream(model, tmp_path / "cal.npz", 1, n=8, k=30, lengths=False)
    _stream(model, tmp_path / "test.npz", 2, states=False)
    compile_model(model, tmp_path / "cal.npz", tmp_path / "b", "host", "m")
    rep = validate(tmp_path / "b", tmp_path / "test.npz")
    assert_bit_exact(rep)
    # and zeros by name give the same integer answers as no state keys
    d = dict(np.load(tmp_path / "test.npz"))
    a = simulate(tmp_path / "b", d, integer=True)
    d["state"] = np.zeros((N, 2, 1, 16), np.float32)
    b = simulate(tmp_path / "b", d, integer=True)
    assert set(a) == {"output", "stateN"}
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_simulate_returns_the_state_outputs(tmp_path: Path) -> None:
    model = vad_like(tmp_path / "m.onnx")
    _stream(model, tmp_path / "cal.npz", 1, n=8, k=30, lengths=False)
    d = _stream(model, tmp_path / "test.npz", 2)
    compile_model(model, tmp_path / "cal.npz", tmp_path / "b", "generic-c99", "m")
    out = simulate(tmp_path / "b", tmp_path / "test.npz")
    assert out["stateN"].shape == (N, K, 2, 1, 16)
    ref = _ort_stream(model, d, 0)["stateN"]
    ref = np.stack(ref)
    err = out["stateN"][0] - ref
    sqnr = 10 * np.log10(np.sum(ref**2) / np.sum(err**2))
    assert 25 < sqnr < 200, sqnr  # dequantised integer values: close, not identical


DRIVER = r"""
#include <stdio.h>
#include <string.h>
#include "model.h"
static int32_t saved[M_STATE_VALUES];
static int64_t arena[M_ARENA_BYTES / 8 + 1];
int main(void) {
    m_state st;
    int32_t v[32], back[32];
    m_reset(&st);
    for (int i = 0; i < 32; i++) v[i] = i < 16 ? i * 7 - 50 : i * 300000 - 7000000;
    m_set_state_in(&st, v);
    m_get_state_in(&st, back);
    for (int i = 0; i < 32; i++) printf("%d ", back[i]);
    printf("\n");
    m_input_t x[M_INPUT_SIZE];
    m_output_t y[M_OUTPUT_SIZE];
    int8_t a[2][10][M_OUTPUT_SIZE];
    int32_t s[2][32];
    for (int pass = 0; pass < 2; pass++) {
        if (pass) m_set_state(&st, saved);
        for (int t = pass ? 10 : 0; t < 20; t++) {
            for (int i = 0; i < M_INPUT_SIZE; i++) x[i] = (m_input_t)((t * 37 + i * 11) % 200 - 100);
            if (!pass && t == 10) m_get_state(&st, saved);
            if (m_step(&st, x, y, arena) != 0) return 1;
            if (t >= 10) memcpy(a[pass][t - 10], y, sizeof y);
        }
        m_get_state_in(&st, s[pass]);
    }
    printf("%s %s\n", memcmp(a[0], a[1], sizeof a[0]) == 0 ? "same" : "differ",
           memcmp(s[0], s[1], sizeof s[0]) == 0 ? "same" : "differ");
    printf("%d %d\n", (int)saved[0], (int)st.t);
    saved[0] = INT32_MAX - 1;  /* a stream resumed after 2^31 - 2 steps */
    m_set_state(&st, saved);
    for (int t = 0; t < 3; t++) {
        if (m_step(&st, x, y, arena) != 0) return 1;
    }
    printf("%ld\n", (long)st.t);
    return 0;
}
"""


def test_get_state_set_state_round_trip_in_c(tmp_path: Path) -> None:
    """Firmware's use: a state written with _set_state_in reads back with _get_state_in; a
    stream saved with _get_state half way and restored with _set_state repeats its second
    half exactly (outputs and state); the step count saturates after 2^31 - 1 steps."""
    require_host_toolchain()
    model = vad_like(tmp_path / "m.onnx")
    _stream(model, tmp_path / "cal.npz", 1, n=8, k=30, lengths=False)
    b = tmp_path / "b"
    compile_model(model, tmp_path / "cal.npz", b, "generic-c99", "m")
    h = (b / "model.h").read_text()
    assert "void m_set_state_in(m_state *st, const int32_t *v);" in h
    (b / "drv.c").write_text(DRIVER)
    srcs = [p for p in b.glob("*.c") if p.name != "harness.c"]
    exe = compile_executable(srcs, ["-O1", "-Wall", "-Werror", "-fsanitize=undefined",
                                    "-fno-sanitize-recover=all"], include_dirs=[b],
                             out_dir=tmp_path)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    back = [int(v) for v in lines[0].split()]
    # h is int8: what was written in range reads back; c is int32 and reads back whole
    assert back == [i * 7 - 50 if i < 16 else i * 300000 - 7000000 for i in range(32)]
    assert lines[1] == "same same"
    assert lines[2] == "10 20"  # layout [0] = steps since reset
    assert lines[3] == "2147483647"  # the step count saturates, never wraps (UBSan on)


def _graph_with(tmp_path: Path, edit) -> Path:
    model = vad_like(tmp_path / "m.onnx")
    m = onnx.load(str(model))
    edit(m.graph)
    onnx.save(m, str(model))
    return model


def test_state_input_without_its_output_is_refused(tmp_path: Path) -> None:
    def drop(g):
        del g.output[1]
    model = _graph_with(tmp_path, drop)
    with pytest.raises(RnnqError, match="state"):
        float_graph(model)


def test_state_input_used_by_arithmetic_is_refused(tmp_path: Path) -> None:
    def misuse(g):
        g.node.append(oh.make_node("Mul", ["state", "state"], ["sq"]))
        g.output.append(oh.make_tensor_value_info("sq", onnx.TensorProto.FLOAT, [2, 1, 16]))
    model = _graph_with(tmp_path, misuse)
    with pytest.raises(RnnqError, match=r"state.*Mul|Mul.*state"):
        float_graph(model)


M4_MAIN = r"""
#include "model.h"
static m_state st;
static int32_t arena[(M_ARENA_BYTES + 3) / 4];
static int32_t saved[M_STATE_VALUES];
static int32_t v[M_STATE_IN_SIZE];
static m_input_t x[M_INPUT_SIZE];
static m_output_t y[M_OUTPUT_SIZE];
int main(void) {
    m_reset(&st);
    m_set_state_in(&st, v);
    int r = m_step(&st, x, y, arena);
    m_get_state(&st, saved);
    m_set_state(&st, saved);
    m_get_state_in(&st, v);
    return r + y[0] + v[0];
}
"""


def test_step_graph_on_cortex_m4_integer_only(tmp_path: Path) -> None:
    """The streaming model on the emulated M4: bit-exact on every call (state outputs too);
    its C, setters and _get_state/_set_state included, has no float and links for a
    soft-float core without a float helper; warning-free under -pedantic."""
    t = load_target("cortex-m4")
    require_tool(t["toolchain"]["cc"])
    require_tool(t["run"]["command"][0])
    require_tool("arm-none-eabi-nm")
    model = vad_like(tmp_path / "m.onnx")
    _stream(model, tmp_path / "cal.npz", 1, n=8, k=30, lengths=False)
    _stream(model, tmp_path / "test.npz", 2, n=2, k=12)
    b = tmp_path / "b"
    compile_model(model, tmp_path / "cal.npz", b, "cortex-m4", "m")
    rep = validate(b, tmp_path / "test.npz", on="emulator")
    assert_bit_exact(rep)
    assert rep["device"]["bit_exact"] and rep["device"]["mismatches"] == 0, rep["device"]
    assert rep["device"]["compared_values"] == rep["c"]["compared_values"]
    for p in sorted(b.glob("*.[ch]")):
        hits = [ln for ln in p.read_text().splitlines()
                if re.search(r"float|double|_Complex", ln, re.IGNORECASE)]
        assert not hits, f"{p.name}: {hits[:3]}"
    (tmp_path / "main.c").write_text(M4_MAIN)
    srcs = [str(p) for p in b.glob("*.c") if p.name != "harness.c"]
    elf = tmp_path / "m.elf"
    subprocess.run(["arm-none-eabi-gcc", *t["toolchain"]["cflags"], f"-I{b}", "-std=c99",
                    "-Wall", "-Wextra", "-pedantic", "-Werror", "--specs=nosys.specs",
                    "-nostartfiles", "-Wl,-e,main", "-Wl,--gc-sections",
                    str(tmp_path / "main.c"), *srcs, "-o", str(elf)], check=True)
    syms = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True,
                          check=True).stdout
    assert "m_get_state" in syms and "m_set_state_in" in syms
    assert not re.findall(r"__aeabi_[fd]\w*", syms), re.findall(r"__aeabi_[fd]\w*", syms)


@pytest.mark.parametrize("builder", ["vad_like", "gru_direct", "two_layer_packed",
                                     "bidirectional_interleaved", "batch_first_t1"])
def test_step_graph_as_tflite_with_state_tensors(builder: str, tmp_path: Path) -> None:
    """--format tflite: one call per invoke, the state an input and an output tensor. LiteRT
    carried over every call equals rnnq's LiteRT profile; every output of every call (state
    outputs included) follows onnxruntime run call by call (a wrong feedback would not)."""
    require_litert()
    model = BUILDERS[builder](tmp_path / "m.onnx")
    _stream(model, tmp_path / "cal.npz", 1, n=8, k=30, lengths=False)
    _stream(model, tmp_path / "test.npz", 2)
    m = compile_model(model, tmp_path / "cal.npz", tmp_path / "b", fmt="tflite")
    g = float_graph(model)
    info = m["tflite"]
    assert info["seq_len"] == 1
    assert [s["name"] for s in info["state_inputs"]] == list(g.meta["state_inputs"])
    assert [s["output"] for s in info["state_inputs"]] == \
        [v["output"] for v in g.meta["state_inputs"].values()]
    rep = validate(tmp_path / "b", tmp_path / "test.npz")
    assert rep["tflite"]["bit_exact"], rep["tflite"]
    assert "LiteRT bit-exact" in format_report(rep)  # what `rnnq validate` prints
    d = np.load(tmp_path / "test.npz")
    wanted = set(g.outputs) | {v["output"] for v in g.meta["state_inputs"].values()}
    assert {o["name"] for o in rep["outputs"]} == wanted
    assert rep["tflite"]["compared_values"] >= N * K * len(wanted)
    for o in rep["outputs"]:
        assert o["sqnr_db"] > 20, o
    out = simulate(tmp_path / "b", tmp_path / "test.npz")
    ref = _ort_stream(_ort_model(builder, model), dict(d), 0)
    for name in wanted:
        got = out[name][0, : int(d["lengths"][0])].reshape(-1)
        want = np.stack(ref[name])[: int(d["lengths"][0])].reshape(-1)
        assert 10 * np.log10(np.sum(want**2) / np.sum((want - got) ** 2)) > 20, name


def test_step_graph_tflite_refuses_seq_len(tmp_path: Path) -> None:
    require_litert()
    model = vad_like(tmp_path / "m.onnx")
    _stream(model, tmp_path / "cal.npz", 1, n=4, k=10, lengths=False)
    with pytest.raises(RnnqError, match="one call per invoke"):
        compile_model(model, tmp_path / "cal.npz", tmp_path / "b", fmt="tflite", seq_len=5)
    assert not (tmp_path / "b").exists()
