"""Toys with exact densities: normalisation, samples against the pdf, the tagging optimum."""

import math
import subprocess
import sys
import time

import numpy as np
import pytest
from scipy import integrate, stats

from lhcbnn.data import regression, toys

RAMPS = [toys.wedge_ramp, toys.kicker_ramp]
PLANE_TOYS = [toys.wedge_ramp, toys.kicker_ramp, toys.gaussian_ring]


def midpoint_grid(bounds, n_cells):
    """Cell centres (n_cells^2, 2) and the cell area of a regular grid over ``bounds``."""
    axes = [
        np.linspace(low, high, n_cells + 1)[:-1] + 0.5 * (high - low) / n_cells
        for low, high in bounds
    ]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)
    area = (bounds[0][1] - bounds[0][0]) * (bounds[1][1] - bounds[1][0]) / n_cells**2
    return grid, area


def chi2_pvalue(counts, expected):
    """p-value of Pearson's chi-square for counts against expected counts (same total)."""
    chi2 = np.sum((counts - expected) ** 2 / expected)
    return stats.chi2.sf(chi2, df=counts.size - 1)


@pytest.mark.parametrize("toy", PLANE_TOYS, ids=lambda t: t.name)
def test_pdf_integrates_to_one_over_the_plane(toy):
    # A box 1.5 times the support in each direction: the density outside the support is zero.
    (x_low, x_high), (y_low, y_high) = toy.bounds
    pad_x, pad_y = 0.25 * (x_high - x_low), 0.25 * (y_high - y_low)
    box = ((x_low - pad_x, x_high + pad_x), (y_low - pad_y, y_high + pad_y))
    grid, area = midpoint_grid(box, 1200)
    assert np.sum(toy.pdf(grid)) * area == pytest.approx(1.0, abs=2e-3)


def test_gaussian_ring_normalisation_radially():
    ring = toys.gaussian_ring
    total, _ = integrate.quad(ring.pdf_radius, 0.0, ring.radius + 20 * ring.width, points=[1.0])
    assert total == pytest.approx(1.0, abs=1e-9)
    # The radial density is 2 pi r times the planar one, also for a wide ring close to r = 0.
    wide = toys.GaussianRing(radius=0.5, width=0.6)
    total_wide, _ = integrate.quad(wide.pdf_radius, 0.0, 10.0)
    assert total_wide == pytest.approx(1.0, abs=1e-9)
    r = np.array([0.3, 0.9, 1.0, 1.2])
    planar = ring.pdf(np.stack([r * math.cos(0.7), r * math.sin(0.7)], axis=1))
    np.testing.assert_allclose(ring.pdf_radius(r), 2 * math.pi * r * planar, rtol=1e-12)


def test_ramp_pdf_values():
    x = np.array([[0.5, 0.2], [1.0, 1.0], [0.0, 0.3], [1.2, 0.5], [0.5, -0.1]])
    np.testing.assert_allclose(toys.wedge_ramp.pdf(x), [1.0, 2.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(toys.kicker_ramp.pdf(x), [0.75, 3.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("toy", RAMPS, ids=lambda t: t.name)
def test_ramp_samples_match_pdf_chi_square(toy):
    x = toy.sample(100_000, seed=1)
    assert x.shape == (100_000, 2) and x.dtype == np.float64
    assert np.all((x >= 0.0) & (x <= 1.0))
    edges = np.linspace(0.0, 1.0, 11)
    counts, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=[edges, edges])
    # Exact bin probabilities: (b^(k+1) - a^(k+1)) in x1 times 1/10 in x2.
    k = toy.power
    p_x1 = edges[1:] ** (k + 1) - edges[:-1] ** (k + 1)
    expected = len(x) * np.outer(p_x1, np.full(10, 0.1))
    assert chi2_pvalue(counts.ravel(), expected.ravel()) > 1e-3


def test_chi_square_rejects_the_wrong_ramp():
    """The binned test has power: kicker samples are not wedge samples."""
    x = toys.kicker_ramp.sample(100_000, seed=1)
    edges = np.linspace(0.0, 1.0, 11)
    counts, _ = np.histogram(x[:, 0], bins=edges)
    expected_wedge = len(x) * (edges[1:] ** 2 - edges[:-1] ** 2)
    assert chi2_pvalue(counts, expected_wedge) < 1e-10


def test_gaussian_ring_samples_match_pdf_chi_square():
    ring = toys.gaussian_ring
    x = ring.sample(100_000, seed=2)
    r, angle = np.hypot(x[:, 0], x[:, 1]), np.arctan2(x[:, 1], x[:, 0])
    r_edges = np.concatenate([[0.0], np.linspace(0.7, 1.3, 13), [np.inf]])
    a_edges = np.linspace(-math.pi, math.pi, 9)
    counts, _, _ = np.histogram2d(r, angle, bins=[r_edges, a_edges])
    p_r = np.array([integrate.quad(ring.pdf_radius, a, b)[0] for a, b in finite_bin_pairs(r_edges)])
    expected = len(x) * np.outer(p_r, np.full(8, 1 / 8))
    assert expected.min() > 5
    assert chi2_pvalue(counts.ravel(), expected.ravel()) > 1e-3


def finite_bin_pairs(edges):
    """(low, high) of each bin, the infinite last edge replaced by r = 50 (no mass beyond)."""
    finite = np.where(np.isinf(edges), 50.0, edges)
    return list(zip(finite[:-1], finite[1:], strict=True))


def test_samples_are_seeded():
    for toy in PLANE_TOYS:
        np.testing.assert_array_equal(toy.sample(100, seed=3), toy.sample(100, seed=3))
        assert not np.array_equal(toy.sample(100, seed=3), toy.sample(100, seed=4))


@pytest.mark.parametrize("toy", [*PLANE_TOYS, toys.tagging_toy], ids=lambda t: t.name)
def test_bad_n_raises(toy):
    for bad in (0, -5):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            toy.sample(bad)
    with pytest.raises(TypeError, match="n must be an integer"):
        toy.sample(2.5)


def test_bad_points_raise():
    with pytest.raises(ValueError, match=r"shape \(m, 2\)"):
        toys.wedge_ramp.pdf(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"shape \(m, 2\)"):
        toys.gaussian_ring.pdf(np.zeros(2))
    with pytest.raises(ValueError, match="width"):
        toys.GaussianRing(width=-1.0)


def test_lookup_by_name():
    assert toys.get("wedge_ramp") is toys.wedge_ramp
    assert toys.toy("gaussian_ring") is toys.gaussian_ring
    assert isinstance(toys.get("regression_toy"), toys.HeteroskedasticToy)
    assert set(toys.names()) >= {"wedge_ramp", "kicker_ramp", "gaussian_ring", "tagging_toy"}
    with pytest.raises(ValueError, match="unknown toy 'wedge'.*wedge_ramp"):
        toys.get("wedge")


def test_regression_toy_is_reexported():
    assert toys.HeteroskedasticToy is regression.HeteroskedasticToy


def test_sampling_a_million_points_is_fast():
    for toy in PLANE_TOYS:
        start = time.perf_counter()
        toy.sample(1_000_000, seed=0)
        assert time.perf_counter() - start < 1.0, toy.name


# ----------------------------------------------------------------------------- tagging toy


def test_tagging_class_densities_are_normalised():
    tag = toys.tagging_toy
    grid, area = midpoint_grid(((-9.0, 10.0), (-9.0, 10.0)), 800)
    assert np.sum(tag.pdf_signal(grid)) * area == pytest.approx(1.0, abs=1e-6)
    assert np.sum(tag.pdf_background(grid)) * area == pytest.approx(1.0, abs=1e-6)


def test_tagging_samples_follow_the_class_densities():
    tag = toys.tagging_toy
    x, labels = tag.sample(200_000, seed=5, signal_fraction=0.25)
    assert x.shape == (200_000, 2) and labels.shape == (200_000,)
    assert labels.sum() == 50_000
    signal = x[labels == 1.0]
    np.testing.assert_allclose(signal.mean(axis=0), tag.mean_signal, atol=0.02)
    np.testing.assert_allclose(np.cov(signal.T), tag.cov_signal, atol=0.03)
    background = x[labels == 0.0]
    np.testing.assert_allclose(background.mean(axis=0), tag.mean_background, atol=0.02)
    np.testing.assert_allclose(np.cov(background.T), tag.cov_background, atol=0.03)


def test_optimal_classifier_is_the_likelihood_ratio():
    tag = toys.tagging_toy
    x, _ = tag.sample(1000, seed=6)
    c = tag.optimal_classifier(x)
    assert np.all((c > 0.0) & (c < 1.0))
    np.testing.assert_allclose(c / (1.0 - c), tag.likelihood_ratio(x), rtol=1e-9)
    c_quarter = tag.optimal_classifier(x, signal_fraction=0.25)
    np.testing.assert_allclose(c_quarter / (1 - c_quarter), tag.likelihood_ratio(x) / 3, rtol=1e-9)
    with pytest.raises(ValueError, match="signal_fraction"):
        tag.optimal_classifier(x, signal_fraction=1.0)


def test_optimal_auc_equal_covariance_closed_form():
    """Equal covariances: AUC = Phi(Delta / sqrt 2), Delta the Mahalanobis distance."""
    cov = ((2.0, 0.5), (0.5, 1.0))
    tag = toys.TwoGaussianClasses(
        mean_signal=(1.0, 0.5), cov_signal=cov, mean_background=(0.0, 0.0), cov_background=cov
    )
    delta = np.array([1.0, 0.5])
    mahalanobis = math.sqrt(delta @ np.linalg.solve(np.array(cov), delta))
    assert tag.optimal_auc() == pytest.approx(stats.norm.cdf(mahalanobis / math.sqrt(2)), abs=1e-5)


def rank_auc(scores, labels):
    ranks = stats.rankdata(scores)
    n_signal = labels.sum()
    n_background = labels.size - n_signal
    return (ranks[labels == 1].sum() - n_signal * (n_signal + 1) / 2) / (n_signal * n_background)


def test_optimal_auc_matches_monte_carlo_and_beats_other_scores():
    tag = toys.tagging_toy
    auc = tag.optimal_auc()
    assert 0.8 < auc < 0.9
    x, labels = tag.sample(200_000, seed=7)
    auc_mc = rank_auc(tag.log_likelihood_ratio(x), labels)
    # Standard error of an AUC with 1e5 events per class is below 1.5e-3.
    assert auc_mc == pytest.approx(auc, abs=4.5e-3)
    # Neyman-Pearson: a sub-optimal score (a linear cut on x1) does worse.
    assert rank_auc(x[:, 0], labels) < auc - 0.02


def test_importing_data_does_not_import_pythia():
    code = (
        "import sys, lhcbnn.data, lhcbnn.data.toys, lhcbnn.data.jets, lhcbnn.data.amplitudes; "
        "assert 'pythia8mc' not in sys.modules and 'fastjet' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
