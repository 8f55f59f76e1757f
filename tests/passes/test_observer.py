"""passes/observer.py: the one calibration observer both backends use."""

from __future__ import annotations

import numpy as np
import pytest

from rnnq.passes.observer import METHODS, SAMPLE_CAP, Observer


def test_minmax_per_tensor_and_per_channel() -> None:
    obs = Observer("minmax")
    obs.add("t", np.array([[1.0, -2.0], [3.0, 0.5]]))
    obs.add("t", np.array([[-1.0, 4.0]]))
    lo, hi = obs.range("t")
    assert lo.tolist() == [-2.0] and hi.tolist() == [4.0]
    lo, hi = obs.range("t", per_channel=True)
    assert lo.tolist() == [-1.0, -2.0] and hi.tolist() == [3.0, 4.0]
    assert "t" in obs and "u" not in obs


def test_percentile_ignores_rare_outliers() -> None:
    rng = np.random.default_rng(0)
    v = rng.uniform(-1.0, 1.0, (100_000, 1))
    v[:3] = [[-50.0], [60.0], [70.0]]  # 3 outliers in 100,000
    mm, pc = Observer("minmax"), Observer("percentile", percentile=99.99)
    for obs in (mm, pc):
        obs.add(0, v)
    assert mm.range(0)[1][0] == 70.0 and mm.range(0)[0][0] == -50.0
    lo, hi = pc.range(0)
    assert -1.0 <= lo[0] < -0.99 and 0.99 < hi[0] <= 1.0
    assert pc.meta() == {"method": "percentile", "percentile": 99.99}
    assert mm.meta() == {"method": "minmax"}


def test_percentile_subsamples_large_observations() -> None:
    obs = Observer("percentile")
    obs.add("x", np.arange(3 * SAMPLE_CAP, dtype=np.float64).reshape(-1, 1))
    assert sum(s.shape[0] for s in obs.samples["x"]) == SAMPLE_CAP
    assert obs.range("x", per_channel=True)[1].shape == (1,)


def test_unknown_method_is_refused() -> None:
    assert METHODS == ("minmax", "percentile")
    with pytest.raises(ValueError, match="unknown calibration method"):
        Observer("kl")
