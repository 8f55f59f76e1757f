"""Progress of long work (calibration, builds, emulator runs, validation): one line per stage
off a terminal, a line that updates in place on one, nothing when quiet.

Library code announces stages with `stage("building the C harness")` and, inside one, counts
with `advance(done, total)`; it never prints itself. The command line chooses where that goes
(`use(Reporter(...))`); the Python API stays silent unless the caller installs a reporter.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Reporter:
    """Where stages go: `tty` rewrites the current line with a bar, `lines` prints one line per
    stage, `quiet` nothing."""

    def __init__(self, stream: TextIO | None = None, mode: str | None = None):
        self.stream = stream or sys.stderr
        self.mode = mode or ("tty" if self.stream.isatty() else "lines")
        self._what: str | None = None
        self._t0 = 0.0

    def begin(self, what: str) -> None:
        self._what, self._t0 = what, time.monotonic()
        if self.mode == "lines":
            self._write(f"rnnq: {what} ...\n")
        elif self.mode == "tty":
            self._write(f"\rrnnq: {what} ...\x1b[K")

    def advance(self, done: int, total: int) -> None:
        if self.mode != "tty" or self._what is None or total <= 0:
            return
        width = 24
        fill = width * done // total
        self._write(f"\rrnnq: {self._what} [{'#' * fill}{'.' * (width - fill)}] "
                    f"{done}/{total}\x1b[K")

    def end(self) -> None:
        if self.mode == "tty" and self._what is not None:
            self._write(f"\rrnnq: {self._what} ({time.monotonic() - self._t0:.1f} s)\x1b[K\n")
        self._what = None

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


_QUIET = Reporter(mode="quiet")
_current: Reporter = _QUIET


@contextmanager
def use(reporter: Reporter | None) -> Iterator[None]:
    """Send the stages of the work inside to `reporter` (None: nowhere)."""
    global _current
    before, _current = _current, reporter or _QUIET
    try:
        yield
    finally:
        _current = before


@contextmanager
def stage(what: str) -> Iterator[None]:
    """A named stage of long work."""
    _current.begin(what)
    try:
        yield
    finally:
        _current.end()


def is_stage_line(line: str) -> bool:
    """A line a Reporter prints off a terminal ("rnnq: <stage> ..."), not an error, warning or
    note: what a caller reading stderr may skip."""
    return (line.startswith("rnnq: ") and line.endswith(" ...")
            and not line.startswith(("rnnq: error:", "rnnq: warning:", "rnnq: note:")))


def advance(done: int, total: int) -> None:
    """How far the current stage is (a bar on a terminal)."""
    _current.advance(done, total)
