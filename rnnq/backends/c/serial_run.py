"""`rnnq validate --on serial:PORT[,BAUD]`: the test sequences through the UART test firmware
(uart_firmware.py) on a board, request by request (serial_link.py), giving the bytes the
semihosted harness would write to out.bin (harness.py: the same comparison follows) and the
board's cycle counts where its core has a cycle counter.

Per sequence: LOAD its inputs and initial states, STEP through it (streaming builds; as many
steps a request as one reply holds), RUN it whole and READ _run's outputs back.
"""

from __future__ import annotations

import struct
import time

import numpy as np

from rnnq.backends.c.io import WIRE, output_wire
from rnnq.backends.c.serial_link import Link, Port, parse_spec
from rnnq.ir import RnnqError

HELLO, LOAD, STEP, RUN, READ = 1, 2, 3, 4, 5
#: HELLO: attempts of one second each before "the board did not answer"
HELLO_ATTEMPTS = 5
#: seconds a reply may take beyond the line's own time (model runs included)
REPLY_S, RUN_S = 2.0, 10.0


def _io_dtype(dtype: np.dtype) -> str:
    """How harness input values travel: token ids as int32, int16 as int16, else int8."""
    return {np.dtype(np.int64): "<i4", np.dtype(np.int16): "<i2"}.get(np.dtype(dtype), "i1")


def _expect(manifest: dict, states: list[tuple[int, int, bool]], width: int) -> dict:
    """What HELLO must say for this build."""
    return {"input_size": int(np.prod(manifest["input"]["step_shape"])), "width": width,
            "output_size": sum(o["size"] for o in manifest["outputs"])  # bytes per step
            * np.dtype(output_wire(manifest)).itemsize,
            "streaming": bool(manifest.get("streaming", True)), "states": states}


def _hello(link: Link, manifest: dict, want: dict) -> dict:
    where = link.port.where
    reply = link.request(HELLO, b"", 1.0, "HELLO", attempts=HELLO_ATTEMPTS, reply_max=128)
    if reply is None:
        raise RnnqError(f"{where}: the board did not answer within {HELLO_ATTEMPTS} s (is the "
                        f"UART firmware flashed? baud {link.baud}?)")
    if len(reply) < 24 or reply[:4] != b"RNQ1" or reply[4] != 1:
        raise RnnqError(f"{where}: the board answered, but not as rnnq's UART firmware "
                        "(protocol 1) does")
    flags, maxp, in_size, width, n_states, out_size, xcap, ycap = struct.unpack_from(
        "<BHIBBHII", reply, 5)
    states = [struct.unpack_from("<IBB", reply, 24 + 6 * i) for i in range(n_states)]
    tag = reply[24 + 6 * n_states:].decode("ascii", "replace")
    got = {"input_size": in_size, "width": width, "output_size": out_size,
           "streaming": bool(flags & 1), "states": [(c, w, bool(o)) for c, w, o in states]}
    mine = f"{manifest['prefix']} {manifest['model']['sha256'][:16]}"
    if got != want or tag != mine:
        raise RnnqError(f"{where}: the board runs the UART firmware of another build "
                        f"({tag!r}, this build is {mine!r}): build this one's "
                        f"(rnnq firmware BUILD --board NAME) and flash it")
    return {"max_payload": maxp, "x_bytes": xcap, "y_bytes": ycap, "cycles": bool(flags & 2)}


def _load(link: Link, region: int, data: bytes, maxp: int) -> None:
    step = maxp - 5
    for off in range(0, len(data), step):
        _ask(link, LOAD, struct.pack("<BI", region, off) + data[off : off + step], REPLY_S,
             "LOAD")


def _ask(link: Link, ftype: int, payload: bytes, timeout_s: float, what: str) -> bytes:
    reply = link.request(ftype, payload, timeout_s, what)
    if reply is None:
        raise RnnqError(f"{link.port.where}: the board stopped answering (no reply to {what} "
                        f"after {link.ATTEMPTS} attempts of {timeout_s:g} s)")
    return reply


def run_serial(on: str, manifest: dict, xs: np.ndarray, lengths: np.ndarray,
               states: dict[str, np.ndarray]) -> tuple[np.ndarray, dict]:
    """Every sequence through the board at `on` ('serial:PORT[,BAUD]'): the harness's out.bin
    bytes, and the facts of the run ("retransmits", "cycles_per_step", ...)."""
    path, baud = parse_spec(on)
    order = []
    for name, info in manifest.get("state_inputs", {}).items():
        wire = WIRE[info["formats"]["ctype"]]
        order.append((states[name], wire, (int(np.prod(info["shape"])), np.dtype(wire).itemsize,
                                           bool(info.get("output")))))
    dt = _io_dtype(xs.dtype)
    want = _expect(manifest, [o[2] for o in order], np.dtype(dt).itemsize)
    rec = want["output_size"] + sum(c * w for c, w, o in want["states"] if o)
    port = Port(path, baud)
    link = Link(port, baud)
    out = bytearray()
    step_cycles: list[int] = []
    run_cycles = 0
    t0 = time.monotonic()
    try:
        info = _hello(link, manifest, want)
        maxp = link.max_payload = info["max_payload"]
        per_req = max(1, maxp // (4 + rec))
        for i, t_len in enumerate(lengths):
            t_len = int(t_len)
            x = xs[i, :t_len].astype(dt).tobytes()
            if len(x) > info["x_bytes"]:
                raise RnnqError(f"{port.where}: sequence {i} has {t_len} steps ({len(x)} input "
                                f"bytes); the firmware holds {info['x_bytes']} (the board "
                                "file's firmware.buffer_bytes)")
            _load(link, 0, x, maxp)
            init = b"".join(v[i].astype(sdt).tobytes() for v, sdt, _ in order)
            if init:
                _load(link, 1, init, maxp)
            if want["streaming"]:
                for t in range(0, t_len, per_req):
                    k = min(per_req, t_len - t)
                    r = _ask(link, STEP, struct.pack("<IH", t, k), RUN_S, "STEP")
                    if len(r) != k * (4 + rec):
                        raise RnnqError(f"{port.where}: STEP replied {len(r)} bytes, "
                                        f"expected {k * (4 + rec)}")
                    for j in range(k):
                        step_cycles.append(struct.unpack_from("<I", r, j * (4 + rec))[0])
                        out += r[j * (4 + rec) + 4 : (j + 1) * (4 + rec)]
            n, cycles, status = struct.unpack("<IIi", _ask(link, RUN, struct.pack("<I", t_len),
                                                           RUN_S, "RUN"))
            if status != 0:
                raise RnnqError(f"{port.where}: _run returned {status} on sequence {i}")
            run_cycles += cycles
            for off in range(0, n, maxp):
                out += _ask(link, READ, struct.pack("<IH", off, min(maxp, n - off)), REPLY_S,
                            "READ")
    finally:
        port.close()
    facts = {"retransmits": link.retransmits, "broken_frames": link.decoder.dropped,
             "seconds": round(time.monotonic() - t0, 3), **_cycles(info, step_cycles,
                                                                   run_cycles, lengths)}
    return np.frombuffer(bytes(out), dtype=np.int8), facts


def _cycles(info: dict, steps: list[int], run_cycles: int, lengths: np.ndarray) -> dict:
    """Cycle counts where measured; else null and why."""
    if not info["cycles"]:
        return {"cycles_per_step": None,
                "cycles_note": "this core has no DWT cycle counter (e.g. Cortex-M0+)"}
    if not any(steps) and run_cycles == 0:
        return {"cycles_per_step": None,
                "cycles_note": "the DWT cycle counter read 0 (QEMU does not model it)"}
    total = int(np.sum(lengths))
    rep = {"run_cycles_per_step": round(run_cycles / total, 1)}
    if steps:
        rep.update(cycles_per_step=round(float(np.mean(steps)), 1),
                   cycles_per_step_max=int(max(steps)))
    else:
        rep["cycles_per_step"] = rep["run_cycles_per_step"]
    return rep
