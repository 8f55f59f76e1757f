"""`rnnq validate --on serial:PORT` (issue 13): the framed UART protocol on both sides (CRC-32
check value, frames, resync after a corrupted byte, repeats answered once), end to end through
the CLI against QEMU's mps2-an386 whose UART0 is a pty, a board that does not answer, the
board files, and the UART firmware of the two real boards built (not run: no board here)."""

from __future__ import annotations

import json
import os
import re
import select
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import rnnq
from rnnq.api import compile_model, validate
from rnnq.backends.c import serial_link as sl
from rnnq.backends.c.serial_run import HELLO, LOAD, STEP
from rnnq.backends.c.uart_firmware import build_firmware, firmware_files
from rnnq.boards import available_boards, load_board
from rnnq.ir import RnnqError
from rnnq.progress import is_stage_line
from tests.cbuild import compile_executable, skip_or_fail
from tests.conftest import EXAMPLE, ROOT, require_tool

UART = ROOT / "templates" / "c" / "uart"
_VARIANTS = str(ROOT / "tests" / "variants")

#: the C side of the framing alone: CRC of argv[1], or echo every intact frame (type | 0x80)
FRAME_ECHO = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rnnq_frame.h"
#include "rnnq_uart.h"
void rnnq_board_init(void) {}
void rnnq_uart_put(uint8_t c) { putchar(c); }
uint8_t rnnq_uart_get(void)
{
    int c = getchar();
    if (c == EOF) {
        fflush(stdout);
        exit(0);
    }
    return (uint8_t)c;
}
int main(int argc, char **argv)
{
    static uint8_t rx[RNNQ_FRAME_HEADER + RNNQ_FRAME_MAX_PAYLOAD];
    static uint8_t tx[RNNQ_FRAME_OVERHEAD + RNNQ_FRAME_MAX_PAYLOAD];
    if (argc > 1) {
        printf("%08lx\n", (unsigned long)rnnq_crc32(0, (const uint8_t *)argv[1],
                                                    (uint32_t)strlen(argv[1])));
        return 0;
    }
    for (;;) {
        uint32_t crc, n = rnnq_frame_receive(rx, &crc);
        rnnq_frame_send(tx, rnnq_frame_build(tx, (uint8_t)(rx[0] | 0x80u), rx[1], rx + 4, n));
    }
}
"""


def _rnnq(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`rnnq ARGS` in a fresh interpreter running this checkout's rnnq."""
    root = str(Path(rnnq.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root}
    return subprocess.run([sys.executable, "-m", "rnnq.cli", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


# --- protocol, host side -------------------------------------------------------------------

def test_crc32_check_value_and_zlib() -> None:
    assert sl.crc32(b"123456789") == 0xCBF43926
    data = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    assert sl.crc32(data) == zlib.crc32(data)
    assert sl.crc32(data[1000:], sl.crc32(data[:1000])) == zlib.crc32(data)


def test_frames_survive_noise_split_reads_and_a_corrupted_byte() -> None:
    frames = [sl.encode(0x03, 7, b"\xa5\x5a" * 20), sl.encode(0x81, 8, b""),
              sl.encode(0x02, 9, bytes(range(256)) * 3)]
    bad = bytearray(frames[1])
    bad[4] ^= 0x01  # the length: the frame is read as longer or shorter, its CRC fails
    stream = b"\x00\xa5\xa5\x13" + frames[0] + bytes(bad) + frames[1] + b"\xa5" + frames[2]
    dec = sl.Decoder()
    got = []
    for i in range(0, len(stream), 7):  # as a port delivers it: a few bytes at a time
        got += dec.feed(stream[i : i + 7])
    assert [(f.type, f.seq) for f in got] == [(0x03, 7), (0x81, 8), (0x02, 9)]
    assert got[0].payload == b"\xa5\x5a" * 20 and got[2].payload == bytes(range(256)) * 3
    assert dec.dropped == 1


def test_noise_that_looks_like_a_long_header_delays_frames_until_more_bytes_come() -> None:
    """A sync pair in noise followed by a plausible length holds the frames after it until
    that many bytes have come (the host's timeout repeats the request: more bytes); then its
    CRC fails and the frames inside are found."""
    dec = sl.Decoder(max_payload=1024)
    frame = sl.encode(0x85, 4, b"abc")
    assert dec.feed(b"\xa5\x5a\x13\x00\x00\x02" + frame) == []  # "512 bytes follow"
    assert [f.payload for f in dec.feed(frame * 40)] == [b"abc"] * 41
    assert dec.dropped == 1


def test_serial_spec_and_port_errors(tmp_path: Path) -> None:
    assert sl.parse_spec("serial:/dev/ttyACM0") == ("/dev/ttyACM0", 115200)
    assert sl.parse_spec("serial:/dev/ttyUSB1,921600") == ("/dev/ttyUSB1", 921600)
    for bad in ("serial:", "serial:/dev/x,fast", "serial:/dev/x,1234"):
        with pytest.raises(RnnqError, match="--on serial"):
            sl.parse_spec(bad)
    with pytest.raises(RnnqError, match="no such port"):
        sl.Port(str(tmp_path / "ttyNONE"), 115200)
    (tmp_path / "file").write_text("x")
    with pytest.raises(RnnqError, match="not a serial port"):
        sl.Port(str(tmp_path / "file"), 115200)


# --- protocol, C side ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def frame_echo(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("frame_echo")
    (d / "main.c").write_text(FRAME_ECHO)
    return compile_executable([d / "main.c", UART / "rnnq_frame.c"],
                              ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1",
                               "-fsanitize=address,undefined"], include_dirs=[UART])


def test_c_crc32_check_value(frame_echo: Path) -> None:
    r = subprocess.run([str(frame_echo), "123456789"], capture_output=True, text=True,
                       check=True)
    assert r.stdout.strip() == "cbf43926"


def test_c_frames_match_python_and_resync_with_a_nak(frame_echo: Path) -> None:
    a, b, c = (sl.encode(0x01, 1, b"hello"), sl.encode(0x02, 2, bytes(300)),
               sl.encode(0x05, 3, b"\xa5\x5a\xa5"))
    broken = bytearray(b)
    broken[100] ^= 0x40  # a payload byte: the CRC fails, the board answers NAK
    stream = b"\x5a\xa5\x00" + a + bytes(broken) + c
    r = subprocess.run([str(frame_echo)], input=stream, capture_output=True, check=True,
                       timeout=10)
    got = sl.Decoder().feed(r.stdout)
    assert [(f.type, f.seq) for f in got] == [(0x81, 1), (sl.NAK, 2), (0x85, 3)]
    assert r.stdout.startswith(sl.encode(0x81, 1, b"hello"))  # the same bytes both sides
    assert got[2].payload == b"\xa5\x5a\xa5"


# --- boards --------------------------------------------------------------------------------

def test_board_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert {"qemu-mps2-an386", "nucleo-f401re", "rpi-pico"} <= set(available_boards())
    n = load_board("nucleo-f401re")
    assert (n["target"], n["clock_hz"], n["uart"]["base"]) == ("cortex-m4", 84_000_000,
                                                                 0x40004400)
    assert (n["flash"]["origin"], n["flash"]["size"], n["ram"]["size"]) == (
        0x08000000, 512 * 1024, 96 * 1024)
    p = load_board("rpi-pico")
    assert p["target"] == "cortex-m0plus" and p["ram"]["size"] == 264 * 1024
    with pytest.raises(RnnqError, match="unknown board"):
        load_board("nucleo-nope")
    text = (ROOT / "targets" / "boards" / "rpi-pico.toml").read_text()
    monkeypatch.setattr("rnnq.boards.boards_dir", lambda: tmp_path)
    (tmp_path / "rpi-pico.toml").write_text(text.replace("baud = ", "baudrate = "))
    with pytest.raises(RnnqError, match="unknown key 'uart.baudrate'"):
        load_board("rpi-pico")
    (tmp_path / "rpi-pico.toml").write_text(text.replace('kind = "rp2040"', 'kind = "x"'))
    with pytest.raises(RnnqError, match="uart.kind"):
        load_board("rpi-pico")


@pytest.fixture(scope="module")
def jv_m4(tmp_path_factory) -> Path:
    require_tool("arm-none-eabi-gcc")
    out = tmp_path_factory.mktemp("jv") / "m4"
    compile_model(EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", out, "cortex-m4", "jv")
    return out


def _segments(elf: Path) -> list[tuple[int, int, int]]:
    """(virtual address, physical address, memory size) of each non-empty LOAD segment."""
    text = subprocess.run(["arm-none-eabi-readelf", "-lW", str(elf)], capture_output=True,
                          text=True, check=True).stdout
    segs = []
    for ln in text.splitlines():
        f = ln.split()
        if f and f[0] == "LOAD" and int(f[5], 16):
            segs.append((int(f[2], 16), int(f[3], 16), int(f[5], 16)))
    return segs


@pytest.mark.parametrize("board", ["nucleo-f401re", "rpi-pico"])
def test_real_board_firmware_builds(board: str, jv_m4: Path, tmp_path: Path) -> None:
    """Built, linked in the board's memory map, vectors at the start of its flash, no float.
    Not run: that needs the board."""
    b = load_board(board)
    build = jv_m4
    if b["target"] != "cortex-m4":
        build = tmp_path / "m0"
        compile_model(EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", build, b["target"], "jv")
    elf = build_firmware(build, json.loads((build / "manifest.json").read_text()), board,
                         tmp_path / "fw")
    assert elf.with_suffix(".bin").stat().st_size > 0
    fl, ram = b["flash"], b["ram"]
    for virt, phys, size in _segments(elf):
        in_flash = fl["origin"] <= phys and phys + size <= fl["origin"] + fl["size"]
        in_ram = ram["origin"] <= virt and virt + size <= ram["origin"] + ram["size"]
        assert in_flash or in_ram, (hex(virt), hex(phys), size)
    syms = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True,
                          check=True).stdout
    vec = re.search(r"^([0-9a-f]+) \w __interrupt_vector$", syms, re.MULTILINE)
    assert vec and int(vec.group(1), 16) == fl["origin"]
    assert not re.findall(r"__aeabi_[fd]\w*", syms)
    assert "rnnq_semihost" not in syms and "sys_semihost" not in syms


@pytest.mark.parametrize("board", ["qemu-mps2-an386", "nucleo-f401re", "rpi-pico"])
def test_uart_firmware_is_clang_clean(board: str, jv_m4: Path, tmp_path: Path) -> None:
    """gcc builds it above; clang -Wall -Wextra -Werror -pedantic accepts it too."""
    require_tool("clang")
    b = load_board(board)
    man = json.loads((jv_m4 / "manifest.json").read_text())
    man["target"] = b["target"]  # the sources do not depend on the kernels' ISA here
    for name, data in firmware_files(jv_m4, man, b).items():
        (tmp_path / name).write_bytes(data)
    inc = Path("/usr/lib/picolibc/arm-none-eabi/include")  # Debian's picolibc-arm-none-eabi
    if not inc.is_dir():
        skip_or_fail(f"{inc} not found (picolibc for arm-none-eabi)")
    cpu = "cortex-m0plus" if b["target"] == "cortex-m0plus" else "cortex-m4"
    flags = (f"--target=arm-none-eabi -mcpu={cpu} -mthumb -std=c99 -Wall -Wextra -Werror "
             f"-pedantic -fsyntax-only -isystem {inc}")
    r = subprocess.run(["make", "-s", "-C", str(tmp_path), "firmware.elf", "CC=clang",
                        f"CFLAGS={flags}", "LDFLAGS="], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stderr


# --- end to end on QEMU's mps2-an386 -------------------------------------------------------

def _validate_on_qemu(b: Path, man: dict, data: Path, fw: Path) -> dict:
    """validate on the emulated board: the build's UART firmware in `fw`, run under QEMU."""
    proc, pty = _start_qemu(build_firmware(b, man, "qemu-mps2-an386", fw))
    try:
        return validate(b, data, on=f"serial:{pty}")
    finally:
        proc.kill()
        proc.wait()


def _start_qemu(elf: Path) -> tuple[subprocess.Popen, str]:
    """The board's emulator with its UART0 on a new pty; (process, pty path)."""
    cmd = [a.replace("{firmware}", str(elf)) for a in load_board("qemu-mps2-an386")["emulator"]]
    # QEMU 7.2 prints "char device redirected to /dev/pts/N (label serial0)" on stdout
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 10)
    line = proc.stdout.readline() if ready else ""
    m = re.search(r"char device redirected to (\S+)", line)
    if m is None:
        proc.kill()
        pytest.fail(f"QEMU did not give a pty: {line!r}")
    return proc, m.group(1)


@pytest.fixture(scope="module")
def qemu_jv(jv_m4: Path, tmp_path_factory) -> Iterator[tuple[Path, str]]:
    require_tool("qemu-system-arm")
    fw = tmp_path_factory.mktemp("fw_qemu")
    elf = build_firmware(jv_m4, json.loads((jv_m4 / "manifest.json").read_text()),
                         "qemu-mps2-an386", fw)
    proc, pty = _start_qemu(elf)
    try:
        yield jv_m4, pty
    finally:
        proc.kill()
        proc.wait()


def test_validate_on_qemu_uart_through_the_cli(qemu_jv: tuple[Path, str], tmp_path: Path) -> None:
    build, pty = qemu_jv
    d = np.load(EXAMPLE / "test.npz")
    np.savez(tmp_path / "t.npz", x=d["x"][:12], y=d["y"][:12],
             lengths=np.array([29, 7, 1, 20, 29, 3, 15, 29, 2, 9, 29, 11]))
    r = _rnnq("validate", build, "--data", tmp_path / "t.npz", "--on", f"serial:{pty}",
              "--json", tmp_path / "r.json")
    assert r.returncode == 0, r.stderr
    dev = json.loads((tmp_path / "r.json").read_text())["device"]
    c = json.loads((tmp_path / "r.json").read_text())["c"]
    assert dev["bit_exact"] and dev["mismatches"] == 0, dev
    assert dev["compared_values"] == c["compared_values"] > 0
    assert dev["runner"] == f"serial:{pty}"
    # QEMU models no cycle counter: absent, and said why
    assert dev["cycles_per_step"] is None and "QEMU" in dev["cycles_note"]
    assert "on the device" in r.stdout and "yes" in r.stdout


def test_firmware_of_another_build_is_named(qemu_jv: tuple[Path, str], tmp_path: Path) -> None:
    _, pty = qemu_jv
    other = tmp_path / "other"
    compile_model(EXAMPLE / "model.onnx", EXAMPLE / "calib.npz", other, "cortex-m4", "kws")
    d = np.load(EXAMPLE / "test.npz")
    with pytest.raises(RnnqError, match=r"runs the UART firmware of another build \('jv "):
        validate(other, {"x": d["x"][:1]}, on=f"serial:{pty}")


def test_corrupted_request_is_sent_again_and_a_repeat_runs_once(qemu_jv: tuple[Path, str]
                                                                ) -> None:
    """A broken CRC (the board answers NAK), a broken length (the board waits for bytes that
    do not come: the host's timeout, zeros to complete the frame, NAK) and a repeated request
    (the board answers from the reply it kept)."""
    _, pty = qemu_jv
    port = sl.Port(pty, 115200)
    link = sl.Link(port, 115200)
    try:
        sent = []

        def flip_first(frame: bytes) -> bytes:  # the first try of every request arrives broken
            sent.append(frame)
            if len(sent) % 2:
                return frame[:7] + bytes([frame[7] ^ 0xFF]) + frame[8:]
            return frame

        link.tamper = flip_first
        assert link.request(HELLO, b"", 2.0, "HELLO", attempts=3)[:4] == b"RNQ1"
        assert link.retransmits == 1 and link.decoder.dropped == 0
        link.tamper = None
        x = struct.pack("<I", 0)
        assert link.request(LOAD, b"\x00" + x + bytes(2 * 12 * 4), 2.0, "LOAD") == b""
        sent.clear()

        def long_first(frame: bytes) -> bytes:  # its length byte broken: "774 bytes follow"
            sent.append(frame)
            return frame[:5] + b"\x03" + frame[6:] if len(sent) == 1 else frame

        link.tamper = long_first
        before = link.retransmits
        first = link.request(STEP, struct.pack("<IH", 0, 1), 1.0, "STEP")
        assert first is not None and len(first) == 4 + 9  # cycles, then the 9 outputs
        assert link.retransmits - before >= 1
        link.tamper = None
        seq = (link.seq + 1) & 0xFF
        frame = sl.encode(STEP, seq, struct.pack("<IH", 1, 1))
        replies: list[sl.Frame] = []
        for k in (1, 2):  # the same frame twice, as when its reply was lost
            port.write(frame, time.monotonic() + 2)
            deadline = time.monotonic() + 2
            while len(replies) < k and time.monotonic() < deadline:
                # (a late copy of the previous reply, the request having been sent again
                # after the NAK, may still come: it has the previous sequence number)
                replies += [f for f in link.decoder.feed(port.read(deadline)) if f.seq == seq]
        # run again, step 1 would be out of order (the firmware would refuse it): the repeat
        # is answered from the kept reply instead, byte for byte
        assert [f.type for f in replies] == [STEP | 0x80] * 2, replies
        assert replies[0] == replies[1] and len(replies[0].payload) == len(first)
    finally:
        port.close()


def test_state_inputs_through_the_uart(tmp_path: Path) -> None:
    """A model whose state goes in and out of the graph: initial states LOADed, state outputs
    read back after every step and after _run."""
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    if _VARIANTS not in sys.path:
        sys.path.insert(0, _VARIANTS)
    from step_models import vad_like

    model = vad_like(tmp_path / "m.onnx")
    r = np.random.default_rng(1)
    import onnx

    m = onnx.load(str(model))
    dims = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in m.graph.input}
    first = m.graph.input[0].name
    shape = dims.pop(first)
    np.savez(tmp_path / "cal.npz", **{first: r.normal(0, 1, (8, 30, *shape)).astype(np.float32)})
    np.savez(tmp_path / "test.npz", lengths=np.array([12, 5]),
             **{first: r.normal(0, 1, (2, 12, *shape)).astype(np.float32)},
             **{s: r.uniform(-0.6, 0.6, (2, *sh)).astype(np.float32) for s, sh in dims.items()})
    b = tmp_path / "b"
    man = compile_model(model, tmp_path / "cal.npz", b, "cortex-m4", "m")
    assert man["state_inputs"]
    rep = _validate_on_qemu(b, man, tmp_path / "test.npz", tmp_path / "fw")
    assert rep["device"]["bit_exact"], rep["device"]
    assert rep["device"]["compared_values"] == rep["c"]["compared_values"]


def test_int16_outputs_through_the_uart(tmp_path: Path) -> None:
    """The bundled GRU's int16 output (--output-bits auto): the firmware sends each step's and
    _run's 16-bit values little endian, bit-exact with the simulator."""
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    gru = ROOT / "examples" / "basic_motions_gru"
    b = tmp_path / "b"
    man = compile_model(gru / "model.onnx", gru / "calib.npz", b, "cortex-m4", "m")
    assert [o["dtype"] for o in man["outputs"]] == ["int16"]
    d = np.load(gru / "test.npz")
    np.savez(tmp_path / "t.npz", x=d["x"][:3], y=d["y"][:3], lengths=np.array([30, 7, 1]))
    rep = _validate_on_qemu(b, man, tmp_path / "t.npz", tmp_path / "fw")
    assert rep["device"]["bit_exact"], rep["device"]
    assert rep["device"]["compared_values"] == rep["c"]["compared_values"] > 0


def test_a_board_that_does_not_answer(jv_m4: Path, tmp_path: Path) -> None:
    """A pty nobody answers on: exit 2, one line naming the port and what to check."""
    require_tool("cc")
    master, slave = os.openpty()
    try:
        path = os.ttyname(slave)
        d = np.load(EXAMPLE / "test.npz")
        np.savez(tmp_path / "t.npz", x=d["x"][:2], y=d["y"][:2])
        t0 = time.monotonic()
        r = _rnnq("validate", jv_m4, "--data", tmp_path / "t.npz", "--on", f"serial:{path}")
        assert r.returncode == 2, (r.stdout, r.stderr)
        # the stages before the board (rnnq: <stage> ...), then exactly the one error line
        lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not is_stage_line(ln)]
        want = (f"rnnq: error: serial:{path}: the board did not answer within 5 s "
                "(is the UART firmware flashed? baud 115200?)")
        assert lines == [want], lines
        assert time.monotonic() - t0 < 60
    finally:
        os.close(master)
        os.close(slave)
