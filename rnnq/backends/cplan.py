"""What the C backend decides, in a form the templates print."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rnnq.ir import Graph


@dataclass
class Array:
    ctype: str
    name: str
    values: np.ndarray

    @property
    def size(self) -> int:
        return int(self.values.size)

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes)

    @property
    def body(self) -> str:
        flat = [str(int(v)) for v in np.asarray(self.values).ravel()]
        lines = [", ".join(flat[i : i + 16]) for i in range(0, len(flat), 16)]
        return ",\n    ".join(lines)


@dataclass
class Struct:
    ctype: str
    name: str
    fields: list[tuple[str, str]]


@dataclass
class Plan:
    prefix: str
    streaming: bool = True
    max_steps: int = 0
    arrays: list[Array] = field(default_factory=list)
    structs: list[Struct] = field(default_factory=list)
    state: list[tuple[str, str, int]] = field(default_factory=list)  # ctype, name, count
    resets: list[str] = field(default_factory=list)
    core: list[str] = field(default_factory=list)  # streaming: every step
    head: list[str] = field(default_factory=list)  # streaming: outputs "as if it ended now"
    whole: list[str] = field(default_factory=list)  # whole-sequence: the whole of _run
    loc: dict[str, tuple[str, bool]] = field(default_factory=dict)  # base, per-step buffer
    #: initial-state model inputs: C name -> {"input", "ctype", "count", "lines"}
    setters: dict[str, dict] = field(default_factory=dict)
    arena_bytes: int = 0

    def out_ptr(self, name: str, graph: Graph) -> str:
        return self.loc[name][0]
