"""The UART test firmware of a C build for a board (targets/boards): the build's library, a
harness that answers the framed requests of serial_link.py over the board's UART
(templates/c/uart/harness_uart.c.j2, no semihosting, no heap) and the board's UART support
file, with a Makefile; `make` there gives firmware.elf and firmware.bin."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import jinja2
import numpy as np

from rnnq.backends.c.io import WIRE
from rnnq.backends.c.memory import lib_sources
from rnnq.backends.c.plan import state_c_names
from rnnq.boards import Board, load_board
from rnnq.ir import RnnqError
from rnnq.resources import templates_dir
from rnnq.targets import load_target
from rnnq.version import __version__

#: the verbatim framing and board-support sources in templates/c/uart
FRAME_FILES = ("rnnq_frame.h", "rnnq_frame.c", "rnnq_uart.h")
#: cores with the DWT cycle counter (ARMv7-M and ARMv8-M Mainline)
DWT_ARCHES = ("armv7-m", "armv7e-m", "armv8-m.main", "armv8.1-m.main")


def _setters(manifest: dict) -> tuple[list[dict], int, int]:
    """Each state input's C name, type and byte offsets in the LOADed initial states and in a
    step's state outputs (the harness order: manifest.json's), and both totals."""
    infos = manifest.get("state_inputs", {})
    names = state_c_names(list(infos))
    out, off_in, off_out = [], 0, 0
    for name, info in infos.items():
        width = np.dtype(WIRE[info["formats"]["ctype"]]).itemsize
        count = 1
        for d in info["shape"]:
            count *= int(d)
        out.append({"cname": names[name], "ctype": info["formats"]["ctype"], "count": count,
                    "width": width, "output": bool(info.get("output")),
                    "in_offset": off_in, "out_offset": off_out})
        off_in += count * width
        off_out += count * width if info.get("output") else 0
    return out, off_in, off_out


def firmware_files(build: Path, manifest: dict, board: Board) -> dict[str, bytes]:
    """The firmware folder's files for `board`: the build's sources, the harness, the framing,
    the board support and a Makefile."""
    if manifest.get("format", "c") != "c":
        raise RnnqError(f"{build}: UART firmware is for C builds")
    if manifest["target"] != board["target"]:
        raise RnnqError(f"{build} is compiled for {manifest['target']}; board {board.name} is "
                        f"a {board['target']}: compile with --target {board['target']}")
    tgt = load_target(board["target"])
    setters, in_bytes, out_bytes = _setters(manifest)
    uart = board["uart"]
    fw = board["firmware"]
    flags = [f"-DRNNQ_UART_BASE={uart['base']:#x}u", f"-DRNNQ_UART_CLOCK_HZ={uart['clock_hz']}",
             f"-DRNNQ_UART_BAUD={uart['baud']}", f"-DRNNQ_BOARD_CLOCK_HZ={board['clock_hz']}",
             f"-DRNNQ_UART_BUFFER_BYTES={fw['buffer_bytes']}u",
             f"-DRNNQ_UART_DWT={int(tgt['isa']['arch'] in DWT_ARCHES)}"]
    mem = [f"-Wl,--defsym=__flash={board['flash']['origin']:#x}",
           f"-Wl,--defsym=__flash_size={board['flash']['size']:#x}",
           f"-Wl,--defsym=__ram={board['ram']['origin']:#x}",
           f"-Wl,--defsym=__ram_size={board['ram']['size']:#x}",
           f"-Wl,--defsym=__stack_size={fw['stack_bytes']:#x}", "-Wl,--gc-sections"]
    cc = tgt["toolchain"]["cc"]
    mhash = manifest["model"]["sha256"][:16]
    ctx = {"version": __version__, "board": board.name, "target": board["target"],
           "model_hash": mhash, "prefix": manifest["prefix"],
           "PREFIX": manifest["prefix"].upper(), "setters": setters,
           "state_in_bytes": in_bytes, "state_out_bytes": out_bytes,
           "tag": f"{manifest['prefix']} {mhash}",
           "description": board.data.get("description", board.name),
           "cc": cc, "objcopy": cc.removesuffix("gcc") + "objcopy",
           "cflags": " ".join(tgt["toolchain"]["cflags"]), "board_flags": " ".join(flags),
           "ldflags": " ".join(mem), "bsp": f"bsp_{uart['kind']}.c",
           "lib_sources": lib_sources(build)}
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir() / "c" / "uart")),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    files = {"harness_uart.c": env.get_template("harness_uart.c.j2").render(**ctx).encode(),
             "Makefile": env.get_template("Makefile.j2").render(**ctx).encode()}
    uart_dir = templates_dir() / "c" / "uart"
    for name in (*FRAME_FILES, ctx["bsp"]):
        files[name] = (uart_dir / name).read_bytes()
    for p in sorted(build.iterdir()):
        if p.suffix == ".h" or p.name in ctx["lib_sources"]:
            files[p.name] = p.read_bytes()
    return files


def build_firmware(build: Path, manifest: dict, board_name: str, out: Path) -> Path:
    """Write the firmware folder `out` for the board and build it; returns firmware.elf."""
    board = load_board(board_name)
    if out.resolve() == build.resolve():
        raise RnnqError(f"{out}: write the firmware beside the build, not into it")
    files = firmware_files(build, manifest, board)
    cc = load_target(board["target"])["toolchain"]["cc"]
    if shutil.which(cc) is None:
        raise RnnqError(f"{cc} not found: it is needed to build the UART firmware for "
                        f"{board.name} (see README, 'Targets')")
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    r = subprocess.run(["make", "-s", "-C", str(out)], capture_output=True, text=True,
                       check=False)
    if r.returncode != 0:
        lines = (r.stderr or r.stdout).strip().splitlines()
        first = next((x for x in lines if "error" in x), lines[0] if lines else "make error")
        raise RnnqError(f"{out}: the UART firmware does not build for {board.name}: {first}")
    return out / "firmware.elf"
