"""Boards are data: targets/boards/<name>.toml, the real (or emulated) boards the UART test
firmware of `rnnq validate --on serial:PORT` is built for. A board names its target (the
ISA and toolchain of targets/<target>.toml), its core clock, its UART (kind, address, clock,
baud) and its flash and RAM. Unknown or missing keys are errors, as in target files."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnq.ir import RnnqError
from rnnq.resources import targets_dir

#: UART kinds with a board support file (templates/c/uart/bsp_<kind>.c)
UART_KINDS = ("cmsdk", "stm32", "rp2040")

_SCHEMA: dict[str, Any] = {
    "name": str, "description": str, "target": str, "clock_hz": int, "emulator": list,
    "uart": {"kind": str, "base": int, "clock_hz": int, "baud": int, "pins": str},
    "flash": {"origin": int, "size": int},
    "ram": {"origin": int, "size": int},
    "firmware": {"stack_bytes": int, "buffer_bytes": int},
}
_OPTIONAL = {"description", "emulator"}


@dataclass(frozen=True)
class Board:
    name: str
    data: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]


def boards_dir() -> Path:
    return targets_dir() / "boards"


def available_boards() -> list[str]:
    return sorted(p.stem for p in boards_dir().glob("*.toml"))


def _check(where: str, data: dict, schema: dict, prefix: str = "") -> None:
    """Every key known and of its type; every key but the optional ones present."""
    for k, v in data.items():
        want = schema.get(k)
        if want is None:
            raise RnnqError(f"{where}: unknown key '{prefix}{k}'")
        if isinstance(want, dict):
            if not isinstance(v, dict):
                raise RnnqError(f"{where}: '{prefix}{k}' must be a table")
            _check(where, v, want, f"{prefix}{k}.")
        elif not isinstance(v, want) or (want is int and isinstance(v, bool)):
            raise RnnqError(f"{where}: '{prefix}{k}' must be {want.__name__}")
    missing = [f"{prefix}{k}" for k in schema if k not in data and k not in _OPTIONAL]
    if missing:
        raise RnnqError(f"{where}: missing {', '.join(missing)}")


def load_board(name: str) -> Board:
    """targets/boards/<name>.toml, checked."""
    path = boards_dir() / f"{name}.toml"
    if not path.is_file():
        raise RnnqError(f"--board {name!r}: unknown board (available: "
                        f"{', '.join(available_boards())})")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise RnnqError(f"{path}: {e}") from None
    _check(str(path), data, _SCHEMA)
    if data["name"] != name:
        raise RnnqError(f"{path}: name {data['name']!r} differs from the file's name")
    if data["uart"]["kind"] not in UART_KINDS:
        raise RnnqError(f"{path}: uart.kind must be one of {', '.join(UART_KINDS)}")
    if min(data["clock_hz"], data["uart"]["clock_hz"], data["uart"]["baud"]) <= 0:
        raise RnnqError(f"{path}: clock_hz, uart.clock_hz and uart.baud must be positive")
    return Board(name, data)
