"""passes/observer.py: the one calibration observer both backends use."""

from __future__ import annotations

import numpy as np
import pytest

from rnnq.passes.observer import AUTO_CAP, METHODS, SAMPLE_CAP, Observer


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


def test_auto_reads_every_methods_range_from_one_run() -> None:
    rng = np.random.default_rng(1)
    v = rng.normal(size=(50_000, 1))
    v[:2] = [[-40.0], [40.0]]
    auto = Observer("auto")
    auto.add("t", v)
    assert auto.range("t")[1][0] == 40.0  # auto's own range: minmax
    for m in METHODS:
        one = Observer(m)
        one.add("t", v)
        assert auto.range("t", method=m) == one.range("t"), m
    assert auto.meta() == {"method": "auto", "percentile": 99.99}
    with pytest.raises(ValueError, match="has no 'kl' range"):
        Observer("minmax").range("t", method="kl")


def test_auto_keeps_a_bounded_uniform_sample() -> None:
    obs = Observer("auto")
    for k in range(12):  # 12 observations of SAMPLE_CAP values: 1.5x AUTO_CAP
        obs.add("t", np.full((SAMPLE_CAP, 1), float(k)))
    kept = np.concatenate(obs.samples["t"])[:, 0]
    assert AUTO_CAP // 4 < kept.size <= AUTO_CAP and obs.rate["t"] == 0.5
    counts = np.bincount(kept.astype(int), minlength=12)  # each observation kept alike
    assert counts.min() > 0.9 * counts.mean() and counts.max() < 1.1 * counts.mean()
    assert obs.range("t") == (np.array([0.0]), np.array([11.0]))  # extremes: all values


def test_unknown_method_is_refused() -> None:
    assert METHODS == ("minmax", "percentile", "mse", "kl")
    with pytest.raises(ValueError, match="unknown calibration method"):
        Observer("entropy")


def _grid_mse(v: np.ndarray, lo: float, hi: float) -> float:
    """Mean squared error of v on the int8 grid of [lo, hi], with the package's own rounding
    (numerics.quantize) rather than the observer's histogram."""
    from rnnq import numerics as nx
    from rnnq.passes.qparams import act_qparams

    s, z = act_qparams(lo, hi)
    return float(np.mean((v - nx.dequantize(nx.quantize(v, s, z), s, z)) ** 2))


def _observed(method: str, v: np.ndarray) -> tuple[float, float]:
    obs = Observer(method)
    obs.add("t", v.reshape(-1, 1))
    lo, hi = obs.range("t")
    return float(lo[0]), float(hi[0])


def test_mse_clips_outliers_where_that_lowers_the_error() -> None:
    rng = np.random.default_rng(1)
    v = np.concatenate([rng.laplace(0, 1, 150_000), [60.0, -45.0]])
    lo, hi = _observed("mse", v)
    mlo, mhi = _observed("minmax", v)
    assert mlo < lo < 0 < hi < mhi  # clipped, zero kept
    assert _grid_mse(v, lo, hi) < 0.8 * _grid_mse(v, mlo, mhi)
    # no scale factor on a coarse sweep does better than the one chosen (to 3 %)
    best = min(_grid_mse(v, a * mlo, a * mhi) for a in np.linspace(0.05, 1, 96))
    assert _grid_mse(v, lo, hi) <= 1.03 * best


def test_mse_and_kl_keep_a_range_without_outliers() -> None:
    v = np.random.default_rng(2).uniform(-1.0, 3.0, 100_000)
    for method in ("mse", "kl"):
        lo, hi = _observed(method, v)
        assert lo == pytest.approx(v.min(), rel=0.05) and hi == pytest.approx(v.max(), rel=0.05)


def test_kl_threshold_on_a_gaussian_with_far_outliers() -> None:
    rng = np.random.default_rng(3)
    v = np.concatenate([rng.normal(0, 1, 200_000), [50.0, -50.0]])
    lo, hi = _observed("kl", v)
    assert -10 < lo < -2 and 2 < hi < 10  # the bulk is kept, the outliers are not
    obs = Observer("kl")
    obs.add("x", np.stack([v, 3 * v], axis=1))  # per channel: each column its own threshold
    _plo, phi = obs.range("x", per_channel=True)
    assert phi[1] == pytest.approx(3 * phi[0], rel=0.05)
