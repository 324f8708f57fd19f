"""lhcbnn.precision: amplitude preprocessing, Delta, pulls on A, boosted (weighted) training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lhcbnn as lb
from lhcbnn import precision
from lhcbnn.data import amplitudes


@pytest.fixture(scope="module")
def points():
    ps = amplitudes.phase_space(400, seed=3)
    return ps.momenta, amplitudes.squared_me(ps)


def test_log_invariants_are_the_nine_varying_pairs(points) -> None:
    momenta, _ = points
    features = precision.log_invariants(momenta)
    assert features.shape == (400, 9)
    s = amplitudes.invariants(momenta)
    assert np.allclose(features[:, 0], np.log(np.abs(s[:, 0, 2])))  # s_13 first: s_12 dropped
    assert np.allclose(features[:, -1], np.log(np.abs(s[:, 3, 4])))


def test_preprocessing_standardises_and_inverts(points) -> None:
    momenta, a = points
    prep = precision.AmplitudePreprocessing.fit(momenta, a)
    u, t = prep.inputs(momenta), prep.target(a)
    assert np.allclose(u.mean(0), 0, atol=1e-5) and np.allclose(u.std(0), 1, atol=1e-4)
    assert t.shape == (400, 1) and abs(t.mean()) < 1e-5
    assert np.allclose(prep.amplitude(t[:, 0].astype(np.float64)), a, rtol=1e-5)
    with pytest.raises(ValueError, match="positive"):
        prep.target(-a)


def test_relative_deviation_is_on_the_amplitude() -> None:
    delta = precision.relative_deviation(np.array([1.01, 2.0]), np.array([1.0, 2.5]))
    assert np.allclose(delta, [0.01, -0.2])
    with pytest.raises(ValueError, match="predictions"):
        precision.relative_deviation(np.ones(3), np.ones(2))


def test_precision_summary_counts() -> None:
    delta = np.array([0.0005, -0.005, 0.05, -0.2] * 25)
    summary = precision.precision_summary(delta)
    assert summary["within_0.1%"] == 0.25 and summary["within_1%"] == 0.5
    assert summary["beyond_10%"] == 0.25
    assert summary["p99"] == pytest.approx(0.2)


def test_to_amplitude_propagates_the_log_width(points) -> None:
    momenta, a = points
    prep = precision.AmplitudePreprocessing.fit(momenta, a)
    t = torch.as_tensor(prep.target(a), dtype=torch.float64)
    width = torch.full_like(t, 0.01)
    prediction = lb.Prediction(t, width, width, width * np.sqrt(2))
    amp = precision.to_amplitude(prediction, prep)
    assert np.allclose(amp.amplitude, a, rtol=1e-5)
    # sigma(A)/A = log_std * sigma in the standardised log space
    assert np.allclose(amp.sigma_stoch / amp.amplitude, 0.01 * prep.log_std)
    assert np.allclose(amp.pulls(a), 0, atol=1e-3)


def test_boost_weights() -> None:
    w = precision.boost_weights(np.array([0.1, -0.5, 2.0, 40.0]), w_max=10.0)
    assert np.allclose(w, np.array([1, 1, 2, 10]) / 3.5)
    with pytest.raises(ValueError, match="w_max"):
        precision.boost_weights(np.ones(3), w_max=0.5)


def _toy(n=512, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    return x, np.sin(3 * x).astype(np.float32)


def test_unit_weights_reproduce_lb_train() -> None:
    x, y = _toy()
    models = []
    for weighted in (False, True):
        torch.manual_seed(1)
        model = lb.BayesianMLP(1, 1, hidden=(16,))
        kwargs = dict(n_epochs=3, batch_size=64, seed=5, progress=False)
        if weighted:
            precision.train_weighted(model, x, y, np.ones(len(x)), **kwargs)
        else:
            lb.train(model, x, y, **kwargs)
        models.append(model)
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert torch.equal(a, b)


def test_zero_weight_points_do_not_pull_the_fit() -> None:
    x, y = _toy(1024)
    corrupted = y.copy()
    bad = np.arange(len(y)) % 4 == 0
    corrupted[bad] += 3.0  # a quarter of the labels shifted far off
    weights = np.where(bad, 0.0, 1.0)
    errors = {}
    for name, w in (("weighted", weights), ("unweighted", np.ones(len(y)))):
        torch.manual_seed(0)
        model = lb.DeterministicMLP(1, 1, hidden=(32, 32))
        precision.train_weighted(
            model, x, corrupted, w, n_epochs=60, batch_size=128, lr=1e-2, seed=0, progress=False
        )
        mean = lb.predict(model, x, n_samples=1).mean.detach().cpu().numpy()
        errors[name] = float(np.abs(mean - y).mean())
    assert errors["weighted"] < 0.1 < 0.5 < errors["unweighted"]


def test_train_weighted_rejects_bad_weights() -> None:
    x, y = _toy(8)
    model = lb.BayesianMLP(1, 1, hidden=(4,))
    with pytest.raises(ValueError, match="weights for"):
        precision.train_weighted(model, x, y, np.ones(7), n_epochs=1, progress=False)
    with pytest.raises(ValueError, match=">= 0"):
        precision.train_weighted(model, x, y, -np.ones(8), n_epochs=1, progress=False)
    with pytest.raises(ValueError, match="NaN"):
        precision.train_weighted(model, x, y, np.full(8, np.nan), n_epochs=1, progress=False)
