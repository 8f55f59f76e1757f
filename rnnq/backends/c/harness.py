"""The C test harness (harness.c of a build) and its binary protocol.

The harness is built with the target's toolchain in a temporary copy of the build folder (the
build is never modified) and run on the host or, with on="emulator", on the target's emulated
board. It reads in.bin and writes out.bin:

in.bin:  int32 N; per sequence: int32 T, T input steps (int8, int16 or int32 token ids), then each
         initial-state input in the harness's order (int8 h, int32 c, int16 16-bit h;
         little-endian)
out.bin: per sequence: the outputs of every `_step` call (streaming models; T x all outputs),
         then the outputs of one `_run` over the whole sequence (seq outputs for every step,
         final outputs once) — int8, or little-endian int16 when an output is int16
         (io.output_wire).
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from rnnq.backends.c import objcache
from rnnq.backends.c.io import WIRE, output_wire
from rnnq.ir import Graph, RnnqError
from rnnq.sim.integer import state_outputs
from rnnq.targets import Target, host_cpu_lacks, load_target


def write_inputs(path: Path, xq: np.ndarray, lengths: np.ndarray, states: list) -> None:
    """states: [(values [N, ...], little-endian dtype)] in the harness's order."""
    # token ids travel as int32, an int16 input as little-endian int16
    dt = {np.dtype(np.int64): "<i4", np.dtype(np.int16): "<i2"}.get(xq.dtype, np.int8)
    with path.open("wb") as f:
        f.write(struct.pack("<i", len(lengths)))
        for i, t_len in enumerate(lengths):
            f.write(struct.pack("<i", int(t_len)))
            f.write(xq[i, :t_len].astype(dt).tobytes())
            for v, sdt in states:
                f.write(v[i].astype(sdt).tobytes())


def harness_target(manifest: dict, on: str) -> tuple[Target, bool]:
    """The toolchain and runner that build and run the harness, and whether it is the target's
    firmware build.

    on="host": the build's own target if it runs on this machine, else portable C on the host
    (the target's kernel variants fall back to portable code there). on="emulator": the
    target's cross toolchain, test-firmware flags and runner (emulated board). A target run
    on the host whose ISA features this CPU lacks (AVX2, AVX-512 VNNI) is refused (RnnqError)."""
    tgt = load_target(manifest["target"])
    if on == "emulator" or tgt["run"]["runner"] == "host":
        lacking = host_cpu_lacks(tgt)
        if lacking:
            raise RnnqError(f"--target {tgt.name}: this machine's CPU lacks "
                            f"{', '.join(lacking)}, which the build needs to run; validate it "
                            f"on a CPU that has them")
        return tgt, True
    return load_target("generic-c99"), False


def run_harness(build: Path, manifest: dict, xq: np.ndarray, lengths: np.ndarray,
                on: str = "host", states: dict[str, np.ndarray] | None = None
                ) -> tuple[np.ndarray, str]:
    """Build and run the harness; returns the raw bytes it wrote and where it ran."""
    tgt, firmware = harness_target(manifest, on)
    tc = tgt["toolchain"]
    for tool in (tc["cc"], tgt["run"]["command"][0]):
        if not tool.startswith("{") and shutil.which(tool) is None:
            raise RnnqError(f"{tool} not found: it is needed to build and run {build}'s test "
                            f"program for {tgt.name} (see README, 'Targets')")
    with tempfile.TemporaryDirectory(prefix="rnnq-validate-") as td:
        work = Path(td) / "c"
        shutil.copytree(build, work)
        fw = tgt["firmware"] if firmware else {"cflags": [], "ldflags": []}
        make = ["make", "-s", "-C", str(work), "harness", f"CC={tc['cc']}",
                f"CFLAGS={' '.join(tc['cflags'])}", f"LDFLAGS={' '.join(tc['ldflags'])}",
                f"FW_CFLAGS={' '.join(fw['cflags'])}", f"FW_LDFLAGS={' '.join(fw['ldflags'])}"]
        srcs = _cached_runtime(work, tc["cc"], [*tc["cflags"], *fw["cflags"]])
        if srcs:
            make.append(f"SRCS={' '.join(srcs)}")
        r = subprocess.run(make, check=False, capture_output=True, text=True)
        if r.returncode != 0:
            first = (r.stderr or r.stdout).strip().splitlines()
            raise RnnqError(f"{build}: C build failed: {first[0] if first else 'make error'}")
        order = []
        for name, info in manifest.get("state_inputs", {}).items():
            v = (states or {}).get(name)
            if v is None:  # the caller quantises absent states (zeros) in their formats
                raise AssertionError(f"no values for state input {name}")
            order.append((v, WIRE[info["formats"]["ctype"]]))
        write_inputs(work / "in.bin", xq, lengths, order)
        cmd = [a.replace("{firmware}", str(work / "harness")) for a in tgt["run"]["command"]]
        try:
            r = subprocess.run(cmd, cwd=work, check=False, capture_output=True, text=True,
                               timeout=tgt["run"]["timeout_s"])
        except subprocess.TimeoutExpired:
            raise RnnqError(f"{build}: the test program did not finish within "
                            f"{tgt['run']['timeout_s']} s on {tgt['run']['board']}") from None
        if r.returncode != 0:
            msg = ((r.stderr + r.stdout).strip().splitlines() or [f"exit status {r.returncode}"])
            raise RnnqError(f"{build}: C harness failed on {tgt['run']['board']}: {msg[0]}")
        raw = np.frombuffer((work / "out.bin").read_bytes(), dtype=np.int8)
    return raw, f"{tgt['run']['board']} ({tc['cc']})"


def _cached_runtime(work: Path, cc: str, cflags: list[str]) -> list[str] | None:
    """The harness's sources with the runtime's (RUNTIME_SOURCES) as cached objects
    (objcache): most of a harness build is the runtime, which is the same for every model.
    None (make compiles everything) without a cache, when the toolchain is a placeholder, or
    when a runtime source does not compile alone (make then says why)."""
    m = re.search(r"^SRCS = (.*)$", (work / "Makefile").read_text(), re.MULTILINE)
    if objcache.cache_dir() is None or cc.startswith("{") or m is None:
        return None
    srcs = m.group(1).split()
    for k, name in enumerate(srcs):
        if not fnmatch.fnmatch(name, objcache.RUNTIME_SOURCES):
            continue
        obj = objcache.cached_object(work, name, cc, cflags)
        if obj is None:
            return None
        srcs[k] = Path(name).stem + ".cached.o"
        shutil.copyfile(obj, work / srcs[k])
    return srcs


def _state_outputs(manifest: dict) -> list[tuple[int, str]]:
    """The state outputs the harness writes after the outputs: (values, dtype) each."""
    return [(int(np.prod(info["shape"])), WIRE[info["formats"]["ctype"]])
            for info in manifest.get("state_inputs", {}).values() if info.get("output")]


def _values(block: np.ndarray, total: int, states: list[tuple[int, str]], ydt: str = "i1"
            ) -> np.ndarray:
    """Rows of harness bytes [R, total output values (ydt) + state bytes] -> values
    [R, total + state values]."""
    off = total * np.dtype(ydt).itemsize
    parts = [np.ascontiguousarray(block[:, :off]).view(ydt).astype(np.int64)]
    for count, dt in states:
        width = np.dtype(dt).itemsize
        parts.append(np.ascontiguousarray(block[:, off : off + count * width]).view(dt)
                     .astype(np.int64))
        off += count * width
    return np.concatenate(parts, axis=1)


def split_outputs(raw: np.ndarray, manifest: dict, lengths: np.ndarray, where: Path) -> list:
    """out.bin -> per sequence (step outputs [T, all outputs and state outputs], run outputs
    and the state outputs after _run, flat)."""
    outs = manifest["outputs"]
    total = sum(o["size"] for o in outs)
    ydt = output_wire(manifest)
    yw = np.dtype(ydt).itemsize
    states = _state_outputs(manifest)
    sbytes = sum(c * np.dtype(dt).itemsize for c, dt in states)
    streaming = manifest.get("streaming", True)
    raw = raw.view(np.uint8)
    pos = 0
    res = []
    for t_len in lengths:
        rec = total * yw + sbytes
        n_step = t_len * rec if streaming else 0
        if pos + n_step > raw.size:
            break
        step = _values(raw[pos : pos + n_step].reshape(-1, rec), total, states, ydt)
        pos += n_step
        n_run = sum(o["size"] * (t_len if o["kind"] == "seq" else 1) for o in outs)
        if pos + n_run * yw + sbytes > raw.size:
            break
        run = _values(raw[pos : pos + n_run * yw + sbytes].reshape(1, -1), n_run, states, ydt)
        res.append((step, run.ravel()))
        pos += n_run * yw + sbytes
    if pos != raw.size or len(res) != len(lengths):
        raise RnnqError(f"{where}: C harness wrote {raw.size} bytes, expected "
                        f"{'more' if len(res) != len(lengths) else pos}")
    return res


def expected_outputs(g: Graph, env: dict, lengths: np.ndarray, streaming: bool) -> list:
    """What the harness must write, from the simulator's values `env` of integer graph g: per
    sequence (step outputs [T, all outputs and state outputs], run outputs flat)."""
    svals = list(state_outputs(g, env, dequantize=False).values())
    per = []
    for i, t_len in enumerate(lengths):
        states = [v[i, :t_len].reshape(t_len, -1) for v in svals]
        step = np.concatenate([env[o][i, :t_len].reshape(t_len, -1) for o in g.outputs]
                              + states, axis=1)
        if not streaming:
            step = step[:0]
        run = []
        for o in g.outputs:
            v = env[o][i, :t_len].reshape(t_len, -1)
            run.append(v.ravel() if g.tensors[o].kind == "seq" else v[-1])
        per.append((step, np.concatenate(run + [s[-1] for s in states])))
    return per


def compare(got: list, want: list) -> dict:
    """Exact comparison of harness outputs with the simulator's."""
    mism = compared = 0
    for (cs, cr), (ss, sr) in zip(got, want, strict=True):
        mism += int(np.sum(cs != ss)) + int(np.sum(cr != sr))
        compared += cs.size + cr.size
    return {"bit_exact": mism == 0, "mismatches": mism, "compared_values": compared}
