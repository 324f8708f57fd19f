"""Tests of lhcbnn.flows.integration: integrands, phase-space map, estimates, variance loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lhcbnn as lb
from lhcbnn.data.amplitudes import phase_space, rambo_weight, squared_me
from lhcbnn.flows import integration as it


def test_camel_integral_matches_a_fine_grid() -> None:
    grid = (torch.arange(2000, dtype=torch.float64) + 0.5) / 2000
    x = torch.cartesian_prod(grid, grid)
    assert float(it.camel(x).mean()) == pytest.approx(it.camel_integral(2), rel=1e-6)


def test_flat_estimate_covers_the_camel_integral() -> None:
    result = it.estimate(it.flat_weights(it.camel, 2, 200_000, seed=3))
    assert abs(result.value - it.camel_integral(2)) < 4 * result.error
    assert result.rel_std == pytest.approx(1.09, abs=0.02)  # uniform sampling, issue anchor
    assert result.n_calls == 200_000


def test_unweighting_efficiency_over_replicas() -> None:
    w = np.ones(1000)
    assert it.unweighting_efficiency(w) == pytest.approx(1.0)
    w[3] = 1000.0  # one outlier sets the plain maximum, not the median of replica maxima
    assert it.unweighting_efficiency(w, n_replicas=10) == pytest.approx(w.mean(), rel=1e-12)
    assert w.mean() / w.max() < 0.01
    with pytest.raises(ValueError, match="replicas"):
        it.unweighting_efficiency(np.ones(5), n_replicas=10)


@pytest.mark.parametrize(
    ("weights", "message"),
    [([1.0, np.nan], "NaN"), ([1.0, -1.0], ">= 0"), ([0.0, 0.0], "zero"), ([1.0], "n >= 2")],
)
def test_estimate_refuses_bad_weights(weights: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        it.estimate(np.array(weights))


def test_three_body_map_is_on_shell_conserves_momentum_and_has_the_volume() -> None:
    u = np.random.default_rng(1).random((200_000, 5))
    momenta, weight = it.three_body_from_unit(u, sqrt_s=500.0)
    final = momenta[:, 2:]
    assert np.abs(final.sum(1) - np.array([500.0, 0, 0, 0])).max() < 1e-9
    mass2 = final[..., 0] ** 2 - (final[..., 1:] ** 2).sum(-1)
    assert np.abs(mass2).max() < 1e-8
    assert np.all(final[..., 0] >= 0)
    volume = rambo_weight(3, 500.0)
    assert weight.mean() == pytest.approx(volume, rel=4 * weight.std() / weight.mean() / 447)
    with pytest.raises(ValueError, match="unit hypercube"):
        it.three_body_from_unit(np.full((2, 5), 1.5))


def test_gluon_cross_section_agrees_with_rambo() -> None:
    f = it.GluonCrossSection()
    ours = it.estimate(it.flat_weights(f, 5, 100_000, seed=2))
    points = phase_space(50_000, seed=5)
    g = math.sqrt(4 * math.pi * f.alpha_s)
    values = points.weight * squared_me(points.momenta, coupling=g) / (2 * 500.0**2 * 6)
    values = values * it.GEV2_TO_PB
    rambo, error = values.mean(), values.std() / math.sqrt(values.size)
    assert abs(ours.value - rambo) < 4 * math.hypot(ours.error, error)
    assert f.n_calls == 100_000
    as_array = f(np.random.default_rng(0).random((10, 5)))
    assert isinstance(as_array, np.ndarray) and as_array.shape == (10,)


def test_variance_training_lowers_the_camel_variance() -> None:
    torch.manual_seed(0)
    flow = lb.flows.INN(2, n_blocks=4, hidden=(32, 32), bounds=(0, 1))
    before = it.estimate(it.flow_weights(it.camel, flow, 50_000, seed=1))
    assert before.rel_std == pytest.approx(1.09, abs=0.03)  # zero-initialised: uniform
    path = it.train_variance(flow, it.camel, n_steps=150, batch_size=512, seed=0)
    after = it.estimate(it.flow_weights(it.camel, flow, 50_000, seed=1))
    assert after.rel_std < 0.4 * before.rel_std
    assert abs(after.value - it.camel_integral(2)) < 5 * after.error
    assert path.n_calls[-1] == 150 * 512 and len(path.rel_std) == len(path.step)


def test_variance_training_is_reproducible_and_refuses_unbounded_flows() -> None:
    results = []
    for _ in range(2):
        torch.manual_seed(1)
        flow = lb.flows.INN(2, n_blocks=2, hidden=(8,), bounds=(0, 1))
        it.train_variance(flow, it.camel, n_steps=5, batch_size=64, seed=4)
        results.append(it.flow_weights(it.camel, flow, 100, seed=0))
    assert torch.equal(results[0], results[1])
    with pytest.raises(ValueError, match="bounds"):
        it.train_variance(lb.flows.INN(2), it.camel, n_steps=1)


def test_vegas_map_lowers_the_camel_variance() -> None:
    grid = it.train_vegas(it.camel, 2, n_iterations=10, n_calls=10_000, seed=0)
    result = it.estimate(it.vegas_weights(it.camel, grid, 100_000, seed=1))
    assert result.rel_std == pytest.approx(0.65, abs=0.05)  # ideal product of 1-D densities
    assert abs(result.value - it.camel_integral(2)) < 4 * result.error


def test_vegas_stratified_covers_the_camel_integral() -> None:
    result = it.vegas_stratified(it.camel, 2, n_iterations=5, n_calls=5_000, n_eval=20_000)
    assert abs(result.value - it.camel_integral(2)) < 4 * result.error
    assert 0 < result.rel_std_equivalent < 0.65  # stratification beats the grid alone
    assert 15_000 < result.n_calls <= 20_000
