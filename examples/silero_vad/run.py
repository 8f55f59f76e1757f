"""silero VAD (MIT, fetched from PyPI, never committed) compiled for a Cortex-M4 and checked on
speech, as a user would:

    python examples/silero_vad/run.py [--out build/silero_vad] [--seconds 20] [--streams 2]

1. fetches silero-vad 6.2.3 with pip and takes its silero_vad_openvino_16k.onnx (input [1, 576]:
   64 samples of context + 512 new at 16 kHz, one call per 32 ms; state [2, 1, 128] in, stateN
   out; a reflect pad, an STFT Conv, a magnitude and four Conv + ReLU before an LSTM);
2. synthesises calibration and test speech with espeak-ng (speech.py: other voices, sentences
   and noise for the test than for calibration);
3. `rnnq compile --target cortex-m4` and `rnnq validate` (host C, and the emulated board when
   arm-none-eabi-gcc and qemu-system-arm are installed), every call's output and state;
4. reports float vs integer speech probabilities over the streams, decisions flipped at 0.5,
   and the Cortex-M4 instructions per 32 ms chunk (counted by unicorn on the build's library
   and bench/firmware.py's main; real-time factor at 64 and 168 MHz at one instruction per
   cycle, a lower bound on the time).

Writes OUT/report.json and prints a summary. Needs the dev requirements (unicorn for the
instruction count) and espeak-ng.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]

import speech

from rnnq.api import compile_model, float_graph, simulate, validate
from rnnq.data import load_npz
from rnnq.sim.integer import quantize_input
from rnnq.sim.onnx_runtime import float_steps

WHEEL, MEMBER = "silero-vad==6.2.3", "silero_vad/data/silero_vad_openvino_16k.onnx"
CHUNK_S = speech.CHUNK / speech.RATE  # 32 ms


def fetch_model(out: Path) -> Path:
    """silero VAD's ONNX file from its PyPI wheel (kept in OUT, reused)."""
    model = out / "silero_vad_openvino_16k.onnx"
    if model.exists():
        return model
    with tempfile.TemporaryDirectory() as td:
        r = subprocess.run([sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-q",
                            "-d", td], capture_output=True, text=True, check=False)
        wheels = list(Path(td).glob("silero_vad-*.whl"))
        if r.returncode != 0 or not wheels:
            sys.exit(f"run.py: cannot download {WHEEL}: {r.stderr.strip()[-300:]}")
        with zipfile.ZipFile(wheels[0]) as z:
            model.write_bytes(z.read(MEMBER))
    return model


def probabilities(model: Path, build: Path, data: Path) -> tuple[np.ndarray, np.ndarray]:
    """Speech probability per call [N, K]: the float model (onnxruntime, state carried) and
    the integer model (rnnq's simulator, which the C reproduces bit for bit)."""
    g = float_graph(model)
    ref, _ = float_steps(model, g, load_npz(data, g))
    q = simulate(build, data)
    return ref["output"].reshape(ref["output"].shape[:2]), q["output"].reshape(
        q["output"].shape[:2])


def m4_instructions(build: Path, data: Path, chunks: int = 6) -> list[int]:
    """Instructions of each of the first `chunks` _step calls of stream 0 on the Cortex-M4
    (unicorn; bench/emu.py), with the build's own library compiled by bench/firmware.py."""
    sys.path.insert(0, str(ROOT / "bench"))
    import emu
    import firmware

    from rnnq.api import open_graphs

    ig = open_graphs(build)[2]
    x = np.load(data)["input"][:1, :chunks]  # [1, K, 1, 576]
    xq = quantize_input(ig, x.reshape(1, chunks, -1)).reshape(chunks, -1)
    elf = firmware.build_elf(build, xq, build / "vad_bench.elf")
    m4 = emu.M4(elf)
    st, arena, y, xs = (m4.addr(s) for s in ("bench_st", "bench_arena", "bench_y", "bench_x"))
    m4.call("m_reset", st)
    counts = []
    for t in range(chunks):
        c = m4.call("m_step", st, xs + t * xq.shape[1] * xq.dtype.itemsize, y, arena)
        if c.r0 != 0:
            raise RuntimeError(f"m_step returned {c.r0}")
        counts.append(c.instructions)
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "silero_vad")
    ap.add_argument("--seconds", type=float, default=20.0, help="per test stream")
    ap.add_argument("--streams", type=int, default=2, help="test streams")
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    model = fetch_model(out)
    print(f"model: {model}")
    k = int(args.seconds / CHUNK_S)
    calib, test = out / "calib.npz", out / "test.npz"
    np.savez(calib, input=speech.stream(3, 160, seed=1))  # 3 x 5 s
    np.savez(test, input=speech.stream(args.streams, k, seed=2))
    print(f"speech: calibration 3 x 5.1 s, test {args.streams} x {k * CHUNK_S:.1f} s")
    build = out / "build"
    if build.exists():
        shutil.rmtree(build)
    man = compile_model(model, calib, build, "cortex-m4", "m")
    mem = man["memory"]
    print(f"compiled for cortex-m4: input {man['input']['dtype']}, weights "
          f"{mem['weight_bytes']} B, arena {mem['arena_bytes']} B, state {mem['state_bytes']} B")
    host = validate(build, test)["c"]
    report = {"model": WHEEL, "test_seconds": args.streams * k * CHUNK_S, "memory": mem,
              "bit_exact_host": {k2: host[k2] for k2 in ("bit_exact", "mismatches",
                                                         "compared_values")}}
    emulated = shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")
    if emulated:
        short = out / "test_board.npz"
        np.savez(short, input=np.load(test)["input"][:1, :100])
        board = validate(build, short, on="emulator")["c"]
        report["bit_exact_board"] = {k2: board[k2] for k2 in ("bit_exact", "mismatches",
                                                              "compared_values")}
    f, q = probabilities(model, build, test)
    flips = int(np.sum((f > 0.5) != (q > 0.5)))
    report["probabilities"] = {
        "chunks": int(f.size), "speech_fraction_float": float(np.mean(f > 0.5)),
        "sqnr_db": float(10 * np.log10(np.sum(f**2) / np.sum((f - q) ** 2))),
        "max_abs_error": float(np.abs(f - q).max()),
        "mean_abs_error": float(np.abs(f - q).mean()),
        "decisions_flipped": flips, "decision_agreement": float(1 - flips / f.size)}
    try:
        counts = m4_instructions(build, test)
    except ImportError as e:
        print(f"note: no instruction count ({e}); install the dev requirements")
    else:
        per = int(np.median(counts))
        report["cortex_m4"] = {
            "instructions_per_chunk": per, "chunk_ms": CHUNK_S * 1000,
            "rtf_64mhz": per / (64e6 * CHUNK_S), "rtf_168mhz": per / (168e6 * CHUNK_S)}
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    p = report["probabilities"]
    print(f"C bit-exact on the host: {host['bit_exact']} ({host['mismatches']} of "
          f"{host['compared_values']} values differ)")
    if "bit_exact_board" in report:
        b = report["bit_exact_board"]
        print(f"C bit-exact on the emulated board (mps2-an386, 100 chunks): {b['bit_exact']} "
              f"({b['mismatches']} of {b['compared_values']} values differ)")
    print(f"speech probability, float vs integer over {p['chunks']} chunks "
          f"({p['speech_fraction_float']:.0%} speech): SQNR {p['sqnr_db']:.1f} dB, max |error| "
          f"{p['max_abs_error']:.3f}, mean {p['mean_abs_error']:.4f}")
    print(f"decisions at 0.5: {p['decisions_flipped']} of {p['chunks']} flipped "
          f"({p['decision_agreement']:.2%} agree)")
    if "cortex_m4" in report:
        c = report["cortex_m4"]
        print(f"Cortex-M4: {c['instructions_per_chunk']:,} instructions per 32 ms chunk; "
              f"real-time factor {c['rtf_64mhz']:.2f} at 64 MHz, {c['rtf_168mhz']:.2f} at "
              f"168 MHz (one instruction per cycle)")
    print(f"report: {out / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
