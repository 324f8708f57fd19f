"""Classifier weights w = D / (1 - D) against the known density ratio."""

import numpy as np
import pytest
import torch
from scipy.stats import norm

import lhcbnn as lb


def test_optimal_classifier_gives_the_density_ratio() -> None:
    x = np.linspace(-3, 3, 61)
    p_data, p_model = norm.pdf(x, 0.3, 1.0), norm.pdf(x, 0.0, 1.2)
    d = p_data / (p_data + p_model)
    np.testing.assert_allclose(lb.reweight.classifier_weights(d), p_data / p_model, rtol=1e-9)
    tensor = lb.reweight.classifier_weights(torch.tensor(d))
    np.testing.assert_allclose(tensor.numpy(), p_data / p_model, rtol=1e-9)


def test_finite_at_zero_and_one() -> None:
    w = lb.reweight.classifier_weights(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    assert torch.isfinite(w).all()
    assert float(w[1]) == 1.0
    assert float(w[0]) < 1e-5 and float(w[2]) > 1e5


@pytest.mark.parametrize("bad", [-0.1, 1.2, float("nan")])
def test_probabilities_outside_unit_interval_raise(bad: float) -> None:
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        lb.reweight.classifier_weights(np.array([0.2, bad]))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        lb.reweight.classifier_weights(torch.tensor([0.2, bad]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_finite_at_zero_and_one_in_every_floating_dtype(dtype: torch.dtype) -> None:
    d = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=dtype)
    w = lb.reweight.classifier_weights(d)
    assert w.dtype == dtype
    assert torch.isfinite(w).all() and (w > 0).all()
    assert (torch.diff(w.float()) > 0).all()  # D/(1-D) keeps the order of D
    assert float(w[2]) == 1.0


# ------------------------------------------------------------------ the discriminator
def _gaussians(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    data = rng.normal(1.0, 0.5, (n, 1))  # data dense around x = 1
    model = rng.normal(0.0, 1.0, (n, 1))
    return data, model


def test_weights_exceed_one_where_data_are_denser() -> None:
    # The convention w = D/(1-D) = p_data/p_model: data (label 1) dense near x = 1 means
    # w > 1 there and w < 1 where only the generator puts events. The flipped (1-D)/D fails.
    data, model = _gaussians(4000, 0)
    disc = lb.reweight.train_discriminator(data, model, hidden=(32,), n_steps=400, seed=0)
    w = disc.weights(np.array([[1.0], [-2.0]]))
    assert w[0] > 1.5 and w[1] < 0.2
    exact = norm.pdf([1.0, -2.0], 1.0, 0.5) / norm.pdf([1.0, -2.0], 0.0, 1.0)
    assert exact[0] > 1 and exact[1] < 1  # the same side of 1 as the exact ratio


def test_discriminator_approaches_the_exact_ratio_in_the_bulk() -> None:
    data, model = _gaussians(10_000, 1)
    disc = lb.reweight.train_discriminator(data, model, hidden=(32, 32), n_steps=800, seed=1)
    x = np.linspace(-0.5, 1.8, 24)[:, None]
    exact = norm.logpdf(x[:, 0], 1.0, 0.5) - norm.logpdf(x[:, 0], 0.0, 1.0)
    assert np.median(np.abs(disc.log_weights(x) - exact)) < 0.15
    np.testing.assert_allclose(
        disc.weights(x), lb.reweight.classifier_weights(disc.proba(x)), rtol=1e-12
    )


def test_discriminator_is_seeded_and_leaves_the_global_state() -> None:
    data, model = _gaussians(500, 2)
    state = torch.random.get_rng_state()
    first = lb.reweight.train_discriminator(data, model, hidden=(8,), n_steps=20, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())
    second = lb.reweight.train_discriminator(data, model, hidden=(8,), n_steps=20, seed=3)
    x = np.linspace(-2, 2, 5)[:, None]
    np.testing.assert_array_equal(first.proba(x), second.proba(x))


def test_discriminator_bad_input() -> None:
    data, model = _gaussians(100, 4)
    with pytest.raises(ValueError, match="same dim"):
        lb.reweight.train_discriminator(data, np.zeros((10, 2)), n_steps=1)
    with pytest.raises(ValueError, match="NaN or infinite"):
        lb.reweight.train_discriminator(np.full((5, 1), np.nan), model, n_steps=1)
    with pytest.raises(ValueError, match="n_steps"):
        lb.reweight.train_discriminator(data, model, n_steps=0)
    disc = lb.reweight.train_discriminator(data, model, hidden=(4,), n_steps=2)
    with pytest.raises(ValueError, match=r"shape \(n, 1\)"):
        disc.proba(np.zeros((3, 2)))


# ------------------------------------------------------------------ weighted histogram
def test_weighted_histogram_error_is_root_sum_of_squared_weights() -> None:
    x = np.array([0.1, 0.2, 0.6, 0.7, 0.8])
    w = np.array([1.0, 3.0, 0.5, 0.5, 2.0])
    hist = lb.reweight.weighted_histogram(x, w, bins=np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(hist.counts, [4.0, 3.0])
    np.testing.assert_allclose(hist.errors, [np.sqrt(10.0), np.sqrt(4.5)])
    plain = lb.reweight.weighted_histogram(torch.as_tensor(x), None, bins=np.array([0, 0.5, 1]))
    np.testing.assert_allclose(plain.errors, np.sqrt(plain.counts))  # sqrt(N) for unit weights


def test_weighted_histogram_bad_input() -> None:
    with pytest.raises(ValueError, match="weights"):
        lb.reweight.weighted_histogram([0.1, 0.2], [1.0])
    with pytest.raises(ValueError, match="non-negative"):
        lb.reweight.weighted_histogram([0.1, 0.2], [1.0, -1.0])
    with pytest.raises(ValueError, match="NaN"):
        lb.reweight.weighted_histogram([0.1, np.nan], [1.0, 1.0])


# ------------------------------------------------------------------ the toy of chapter 9
def test_generator_toys_densities_are_normalised_and_cut() -> None:
    from lhcbnn.data import generator_toys as gt

    edges = np.linspace(-6, 6, 601)
    centres = 0.5 * (edges[1:] + edges[:-1])
    grid = np.stack(np.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)
    cell = (edges[1] - edges[0]) ** 2
    for toy in (gt.truth, gt.no_bump, gt.no_cut):
        density = toy.pdf(grid)
        assert abs(density.sum() * cell - 1) < 2e-3
        marginal = density.reshape(600, 600).sum(1) * (edges[1] - edges[0])
        np.testing.assert_allclose(marginal, toy.pdf_x1(centres), atol=3e-3)
    assert np.all(gt.truth.pdf(grid[grid[:, 1] < -1.0]) == 0)
    assert np.all(gt.no_cut.pdf(grid[grid[:, 1] < -1.0]) > 0)


def test_generator_toys_sample_follows_the_density() -> None:
    from lhcbnn.data import generator_toys as gt

    x = gt.truth.sample(40_000, seed=1)
    assert x.shape == (40_000, 2) and x[:, 1].min() > -1.0
    np.testing.assert_array_equal(x, gt.truth.sample(40_000, seed=1))
    edges = np.linspace(-3, 3.5, 14)
    counts, _ = np.histogram(x[:, 0], edges)
    mass = gt.truth.bin_probabilities(edges)
    fine = np.linspace(edges[0], edges[1], 2001)
    assert abs(np.trapezoid(gt.truth.pdf_x1(fine), fine) - mass[0]) < 1e-8
    pulls = (counts - 40_000 * mass) / np.sqrt(40_000 * mass)
    assert np.all(np.abs(pulls) < 4.5)
    counts2, _ = np.histogram(x[:, 1], edges)
    mass2 = gt.truth.bin_probabilities(edges, coordinate=1)
    assert mass2[0] == 0.0 and abs(mass2.sum() - 1) < 1e-3
    pulls2 = (counts2 - 40_000 * mass2) / np.sqrt(np.maximum(40_000 * mass2, 1.0))
    assert np.all(np.abs(pulls2) < 4.5)
    with pytest.raises(ValueError, match="bump_fraction"):
        gt.BumpWithCut(bump_fraction=1.0)
