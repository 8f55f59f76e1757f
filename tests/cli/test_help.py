"""`--help` is a manual: every option of every command says what it does, the target option
names the targets, and the top level and `compile` show examples."""

from __future__ import annotations

import click
from cli_helpers import run_rnnq

from rnnq.cli import main
from rnnq.targets import available


def test_every_option_has_help() -> None:
    missing = [f"{name} {p.opts[0]}" for name, cmd in main.commands.items()
               for p in cmd.params if isinstance(p, click.Option) and not p.help]
    assert not missing, missing


def test_help_lists_targets_and_examples() -> None:
    r = run_rnnq("--help")
    assert r.code == 0 and "Examples:" in r.out and "rnnq compile" in r.out, r.out
    r = run_rnnq("compile", "--help")
    assert r.code == 0 and "Examples:" in r.out, r.out
    flat = " ".join(r.out.split())
    assert all(t in flat for t in available()), flat
