"""Calibration measures and the top-pT data of chapter 5, against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import ndtr

import lhcbnn as lb
from lhcbnn import calibration
from lhcbnn import jet_regression as jr
from lhcbnn.data.top_pt import Standardizer, split_indices, top_pt_data


def test_resolution_is_median_and_68_percent_half_width() -> None:
    rng = np.random.default_rng(0)
    true = rng.uniform(500, 700, 200_000)
    delta = 0.01 + 0.03 * rng.standard_normal(true.size)
    bias, half_width = calibration.resolution(true * (1 + delta), true)
    assert bias == pytest.approx(0.01, abs=5e-4)
    assert half_width == pytest.approx(0.03, rel=0.01)
    with pytest.raises(ValueError, match="positive"):
        calibration.resolution([1.0, 2.0], [1.0, -2.0])
    with pytest.raises(ValueError, match="entries"):
        calibration.resolution([1.0], [1.0, 2.0])


def _mixture_model(n_in: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    return lb.DeterministicMLP(n_in, 1, hidden=(8,), n_mixture=3).double()


def test_pit_and_nll_of_a_mixture_match_the_closed_form() -> None:
    model = _mixture_model()
    x = torch.randn(50, 2, dtype=torch.float64)
    target = torch.randn(50, dtype=torch.float64)
    with torch.no_grad():
        logits, means, log_vars = model.head.split_mixture(model(x))
    weights = torch.softmax(logits, -1).numpy()
    z = (target[:, None] - means).numpy() / np.exp(0.5 * log_vars.numpy())
    expected = (weights * ndtr(z)).sum(-1)
    np.testing.assert_allclose(
        calibration.predictive_cdf(model, x, target, 1), expected, rtol=1e-10
    )
    with torch.no_grad():
        nll = lb.losses.gaussian_mixture_nll(logits, means, log_vars, target).mean().item()
    assert calibration.predictive_nll(model, x, target, 1) == pytest.approx(nll, rel=1e-10)


def test_labels_drawn_from_the_prediction_are_calibrated() -> None:
    torch.manual_seed(1)
    model = lb.DeterministicMLP(1, 1, hidden=(8,), heteroskedastic=True).double()
    x = torch.linspace(-2, 2, 40_000, dtype=torch.float64)[:, None]
    with torch.no_grad():
        mean, variance = model.moments(model(x))
    labels = (mean + variance.sqrt() * torch.randn_like(mean))[:, 0]
    pit = calibration.predictive_cdf(model, x, labels, 1)
    assert calibration.coverage(pit, 0.68) == pytest.approx(0.68, abs=0.01)
    assert calibration.coverage(pit, 0.95) == pytest.approx(0.95, abs=0.005)
    density, error = calibration.pit_histogram(pit, 10)
    assert np.all(np.abs(density - 1) < 5 * error)
    wrong = calibration.predictive_cdf(model, x, 2 * (labels - mean[:, 0]) + mean[:, 0], 1)
    assert calibration.coverage(wrong, 0.68) < 0.45  # labels twice as wide: under-covered


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="level"):
        calibration.coverage([0.5], 1.2)
    with pytest.raises(ValueError, match="PIT values"):
        calibration.coverage([1.5], 0.68)
    with pytest.raises(ValueError, match="NaN"):
        calibration.pit_histogram([math.nan])
    model = lb.DeterministicMLP(2, 1, hidden=(4,))
    with pytest.raises(ValueError, match="zero width"):
        calibration.predictive_cdf(model, torch.zeros(3, 2), torch.zeros(3), 1)
    with pytest.raises(ValueError, match="points"):
        calibration.predictive_cdf(_mixture_model(), torch.zeros(3, 2), torch.zeros(4), 1)


def test_top_pt_data_and_split() -> None:
    sample = lb.data.jets.load()
    data = top_pt_data(sample, n_constituents=5)
    n_top = int(sample.is_top.sum())
    assert data.x.shape == (n_top, 18) and len(data) == n_top
    tops = sample.subset(np.flatnonzero(sample.is_top))
    np.testing.assert_allclose(data.r, tops.top_pt / tops.jet_pt - 1)
    np.testing.assert_allclose(data.x[:, 0], tops.constituents[:, 0, 0] / tops.jet_pt, rtol=1e-6)
    np.testing.assert_allclose(data.top_pt_from(data.r), data.top_pt)
    for bad in (0, 51, 2.5):
        with pytest.raises(ValueError, match="n_constituents"):
            top_pt_data(sample, bad)
    a, b = split_indices(100, (60, 30), seed=1)
    assert len(set(a) | set(b)) == 90 and not set(a) & set(b)
    with pytest.raises(ValueError, match="disjoint"):
        split_indices(10, (6, 6), seed=1)


def test_standardizer_round_trip_and_constant_columns() -> None:
    values = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    scaler = Standardizer(values)
    scaled = scaler(values)
    np.testing.assert_allclose(scaled[:, 0].std(), 1.0, rtol=1e-6)
    assert np.all(scaled[:, 1] == 0)
    np.testing.assert_allclose(scaler.invert(scaled), values, rtol=1e-6)
    with pytest.raises(ValueError, match="NaN"):
        Standardizer(np.array([1.0, np.nan]))


def test_smear_labels_adds_the_requested_width() -> None:
    y = np.zeros(200_000, dtype=np.float32)
    smeared = jr.smear_labels(y, sigma_cal=0.05, r_scale=0.1, seed=0)
    assert smeared.dtype == np.float32
    assert smeared.std() == pytest.approx(0.5, rel=0.01)  # 0.05 in r is 0.5 standardised units
    with pytest.raises(ValueError, match="sigma_cal"):
        jr.smear_labels(y, -0.1, 0.1, 0)


def test_ensemble_of_bnns_adds_the_spread_between_members() -> None:
    """Chapter 5, eq. ch5-ensemble-variance: the ensemble's sigma_tot^2 is the members' mean
    sigma_tot^2 plus the variance of their means, and its PIT the mean of their PITs."""
    from lhcbnn.baselines import DeepEnsemble

    torch.manual_seed(0)  # the weight draws
    members = [jr.make_network(5, 3, seed=k) for k in range(3)]
    ensemble = DeepEnsemble(members)
    x, y = torch.randn(64, 5, generator=torch.Generator().manual_seed(1)), np.zeros(64)
    total = lb.predict(ensemble, x, n_samples=20).sigma_tot[:, 0].double() ** 2
    parts = [lb.predict(member, x, n_samples=20) for member in members]
    means = torch.stack([p.mean[:, 0].double() for p in parts])
    within = torch.stack([p.sigma_tot[:, 0].double() ** 2 for p in parts]).mean(0)
    between = means.var(0, unbiased=False)
    assert between.mean() > 0.02 * within.mean()  # the members do differ
    # the draws differ from call to call: agreement on average, and point by point roughly
    ratio = total / (within + between)
    assert float((ratio - 1).abs().mean()) < 0.02
    assert float((ratio - 1).abs().max()) < 0.2
    pit = calibration.predictive_cdf(ensemble, x, y, 20)
    member_pits = np.mean([calibration.predictive_cdf(m, x, y, 20) for m in members], axis=0)
    assert np.allclose(pit, member_pits, atol=0.01)
    with pytest.raises(ValueError, match="n_members"):
        jr.ensemble(None, n_members=1)  # type: ignore[arg-type]


def test_mixture_cdf_stays_in_the_unit_interval_when_the_weights_round_up() -> None:
    """exp(log_softmax) of these logits sums to 1 + 4e-16 in float64; far above every
    component the CDF must still be 1, not 1 + 4e-16 (which ``coverage`` rightly refuses)."""
    from types import SimpleNamespace

    from lhcbnn.calibration import _draw_cdf_and_density

    row = [2.998528064343528, -2.652075013749796, -3.826640790644416]
    logits = torch.tensor([row] * 4, dtype=torch.float64)
    assert torch.log_softmax(logits, -1).exp().sum(-1).max() > 1.0
    means = torch.full((4, 3), -50.0, dtype=torch.float64)
    log_vars = torch.zeros(4, 3, dtype=torch.float64)
    head = SimpleNamespace(n_mixture=3, split_mixture=lambda out: (logits, means, log_vars))
    cdf, log_density = _draw_cdf_and_density(
        SimpleNamespace(head=head), torch.zeros(4, 9), torch.zeros(4, dtype=torch.float64)
    )
    assert torch.all((cdf >= 0) & (cdf <= 1)) and torch.all(cdf == 1.0)
    assert calibration.coverage(cdf.numpy(), 0.68) == 0.0
