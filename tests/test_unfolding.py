"""Tests of lhcbnn.unfolding: the exact Gaussian posterior, ranks, and a trained cINN."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lhcbnn as lb
from lhcbnn import unfolding as uf


def test_exact_posterior_matches_a_numerical_posterior() -> None:
    sim = uf.GaussianSmearing(truth_mean=0.3, truth_sigma=1.2, smearing=0.7)
    x = np.linspace(-8, 8, 20001)
    for y in (-1.0, 0.5, 2.5):
        density = np.exp(-0.5 * ((x - 0.3) / 1.2) ** 2 - 0.5 * ((y - x) / 0.7) ** 2)
        density /= density.sum()
        mean = (x * density).sum()
        assert sim.posterior_mean(np.array(y)) == pytest.approx(mean, abs=1e-6)
        width = math.sqrt(((x - mean) ** 2 * density).sum())
        assert sim.posterior_sigma == pytest.approx(width, rel=1e-5)


def test_unfolded_with_another_prior_matches_sampling() -> None:
    sim = uf.GaussianSmearing(0.0, 1.0, 1.0)
    data = uf.GaussianSmearing(1.0, 0.8, 1.0)
    _, y = data.sample(400_000, seed=1)
    rng = np.random.default_rng(2)
    unfolded = sim.posterior_mean(y[:, 0]) + sim.posterior_sigma * rng.standard_normal(y.shape[0])
    mean, width = sim.unfolded_with(data)
    assert unfolded.mean() == pytest.approx(mean, abs=0.005)
    assert unfolded.std() == pytest.approx(width, abs=0.005)
    assert mean == pytest.approx(0.5)  # pulled halfway to the simulation for s = s0
    with pytest.raises(ValueError, match="smearing"):
        sim.unfolded_with(uf.GaussianSmearing(0.0, 1.0, 2.0))


def test_ranks_of_exact_posterior_samples_are_flat_and_of_a_wrong_one_are_not() -> None:
    sim = uf.GaussianSmearing(0.0, 1.0, 1.0)
    x, y = sim.sample(5000, seed=3)
    rng = np.random.default_rng(4)
    mean = sim.posterior_mean(y)
    exact = mean + sim.posterior_sigma * rng.standard_normal((5000, 99))
    histogram = uf.rank_histogram(uf.ranks(exact, x[:, 0]), n_bins=10)
    assert histogram.counts.sum() == 5000 and histogram.ndf == 9
    assert histogram.p_value > 1e-3
    too_narrow = mean + 0.5 * sim.posterior_sigma * rng.standard_normal((5000, 99))
    assert uf.rank_histogram(uf.ranks(too_narrow, x[:, 0])).p_value < 1e-6


def test_ranks_count_samples_below_the_truth() -> None:
    samples = np.array([[0.0, 1.0, 2.0], [5.0, 6.0, 7.0]])
    np.testing.assert_allclose(uf.ranks(samples, np.array([1.5, 4.0])), [2.5 / 4, 0.5 / 4])
    with pytest.raises(ValueError, match="NaN"):
        uf.ranks(np.array([[np.nan, 1.0]]), np.array([0.0]))
    with pytest.raises(ValueError, match="n_events"):
        uf.ranks(samples, np.array([1.0]))
    with pytest.raises(ValueError, match="positive"):
        uf.GaussianSmearing(smearing=0.0)


def test_a_trained_cinn_recovers_the_exact_posterior() -> None:
    sim = uf.GaussianSmearing(0.0, 1.0, 1.0)
    x, y = sim.sample(20_000, seed=0)
    torch.manual_seed(0)
    flow = lb.flows.INN(1, n_blocks=2, hidden=(32, 32), n_condition=1)
    lb.flows.train_flow(flow, x, condition=y, n_steps=400, batch_size=512, seed=0)
    x_test, y_test = sim.sample(500, seed=1)
    samples = uf.posterior_samples(flow, y_test, 99, seed=2)
    assert samples.shape == (500, 99, 1)
    samples = samples[..., 0].numpy()
    exact = sim.posterior_mean(y_test[:, 0])
    assert np.abs(samples.mean(1) - exact).mean() < 0.25 * sim.posterior_sigma
    assert samples.std(1).mean() == pytest.approx(sim.posterior_sigma, rel=0.15)
