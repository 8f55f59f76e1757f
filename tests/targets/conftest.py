"""Fixtures for the target tests: the bundled example's data, cut small for emulators."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import EXAMPLE


@pytest.fixture(scope="session")
def small_test(tmp_path_factory) -> Path:
    d = np.load(EXAMPLE / "test.npz")
    path = tmp_path_factory.mktemp("data") / "small.npz"
    lengths = np.random.default_rng(0).integers(5, d["x"].shape[1] + 1, 24)
    np.savez(path, x=d["x"][:24], y=d["y"][:24], lengths=lengths)
    return path
