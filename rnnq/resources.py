"""Where templates/ and targets/ live: beside the package in a checkout, inside it in a wheel."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    for cand in (_PKG / "_data" / name, _PKG.parent / name):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"rnnq installation is missing its {name}/ folder")


def templates_dir() -> Path:
    return _find("templates")


def targets_dir() -> Path:
    return _find("targets")
