"""rnnq.progress: one line per stage off a terminal, a bar updated in place on one, nothing
when quiet; library code reports only into the reporter the caller installed."""

from __future__ import annotations

import io

from rnnq import progress


def _run_stages(rep: progress.Reporter | None) -> None:
    with progress.use(rep), progress.stage("calibrating"):
        for k in range(1, 5):
            progress.advance(k, 4)


def test_lines_mode_prints_one_line_per_stage() -> None:
    out = io.StringIO()
    _run_stages(progress.Reporter(out, "lines"))
    assert out.getvalue() == "rnnq: calibrating ...\n"


def test_tty_mode_draws_a_bar_and_ends_the_line() -> None:
    out = io.StringIO()
    _run_stages(progress.Reporter(out, "tty"))
    text = out.getvalue()
    assert "[" + "#" * 24 + "] 4/4" in text and "[" + "#" * 6 + "." * 18 + "] 1/4" in text
    assert text.endswith(" s)\x1b[K\n") and text.count("\n") == 1


def test_default_is_silent_and_use_restores() -> None:
    out = io.StringIO()
    _run_stages(None)
    with progress.use(progress.Reporter(out, "lines")):
        with progress.use(None), progress.stage("hidden"):
            pass
        with progress.stage("shown"):
            pass
    with progress.stage("after"):
        pass
    assert out.getvalue() == "rnnq: shown ...\n"


def test_a_non_terminal_stream_gets_lines() -> None:
    assert progress.Reporter(io.StringIO()).mode == "lines"
