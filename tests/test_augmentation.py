"""lhcbnn.augmentation: theory weights, the augmented set, weighted histograms and the band."""

import math

import numpy as np
import pytest

from lhcbnn import augmentation as aug


def test_weights_formula_and_broadcasting():
    pt = np.array([15.0, 115.0, 215.0, 35.0])
    np.testing.assert_allclose(aug.theory_weights(pt, 0.0), 1.0)
    np.testing.assert_allclose(aug.theory_weights(pt, 10.0), [1.0, 11.0, 41.0, 1.4])
    grid = aug.theory_weights(pt, np.array([0.0, 10.0, 30.0])[:, None])
    assert grid.shape == (3, 4)
    np.testing.assert_allclose(grid[2], [1.0, 31.0, 121.0, 2.2])
    paired = aug.theory_weights(pt, np.array([0.0, 1.0, 2.0, 3.0]))
    np.testing.assert_allclose(paired, [1.0, 2.0, 9.0, 1.12])


@pytest.mark.parametrize(
    ("pt", "a", "message"),
    [
        ([20.0, np.nan], 1.0, "pt_j1 contains NaN"),
        ([20.0], np.nan, "a contains NaN"),
        ([20.0], -0.5, "a must be >= 0"),
        ([-1.0], 1.0, "pt_j1 must be >= 0"),
        ([20.0, 30.0], [1.0, 2.0, 3.0], "do not broadcast"),
    ],
)
def test_weights_reject_bad_input(pt, a, message):
    with pytest.raises(ValueError, match=message):
        aug.theory_weights(pt, a)


def test_normalisation_is_the_mean_weight():
    pt = np.random.default_rng(1).uniform(20, 300, 1000)
    for a in (0.0, 7.0, 30.0):
        assert aug.weight_normalisation(pt, a) == pytest.approx(aug.theory_weights(pt, a).mean())


def test_augment_pairs_events_with_uniform_a_and_normalised_weights():
    rng = np.random.default_rng(2)
    pt = rng.uniform(20, 200, 4000)
    x = np.stack([pt, -pt], axis=1)
    data = aug.augment(x, pt, n_copies=5, seed=3)
    assert len(data) == 20_000 and data.x.shape == (20_000, 2)
    np.testing.assert_array_equal(data.x[:, 0], data.pt_j1)  # features follow their event
    assert data.a.min() >= 0 and data.a.max() <= 30
    # uniform on [0, 30]: mean 15, sd 30/sqrt(12); Kolmogorov distance small
    assert abs(data.a.mean() - 15) < 5 * (30 / math.sqrt(12)) / math.sqrt(20_000)
    cdf = np.sort(data.a) / 30
    assert np.abs(cdf - np.arange(1, 20_001) / 20_000).max() < 1.63 / math.sqrt(20_000) * 1.5
    # weights are w / <w(a)>, so in each slice of a they average to one
    for low in (0, 10, 20):
        in_slice = (data.a >= low) & (data.a < low + 10)
        assert data.weight[in_slice].mean() == pytest.approx(1.0, abs=0.05)
    raw = aug.augment(x, pt, n_copies=5, seed=3, normalise=False)
    np.testing.assert_allclose(raw.weight, aug.theory_weights(raw.pt_j1, raw.a))
    np.testing.assert_array_equal(raw.a, data.a)  # same seed, same values of a
    assert not np.array_equal(aug.augment(x, pt, seed=4).a, aug.augment(x, pt, seed=5).a)
    # log sampling: log(1 + a) uniform on [0, log 31]
    log_a = np.log1p(aug.augment(x, pt, n_copies=5, seed=3, sampling="log").a)
    assert log_a.min() >= 0 and log_a.max() <= math.log(31)
    assert abs(log_a.mean() - math.log(31) / 2) < 5 * math.log(31) / math.sqrt(12 * 20_000)


def test_augment_rejects_bad_input():
    x, pt = np.zeros((3, 2)), np.full(3, 30.0)
    with pytest.raises(ValueError, match="a_range"):
        aug.augment(x, pt, a_range=(5.0, 1.0))
    with pytest.raises(ValueError, match="a_range"):
        aug.augment(x, pt, a_range=(-1.0, 1.0))
    with pytest.raises(ValueError, match="sampling"):
        aug.augment(x, pt, sampling="normal")
    with pytest.raises(ValueError, match="n_copies"):
        aug.augment(x, pt, n_copies=0)
    with pytest.raises(ValueError, match=r"\(n, dim\)"):
        aug.augment(x, pt[:2])


def test_condition_is_a_scaled_column():
    c = aug.condition(np.array([0.0, 15.0, 30.0]))
    assert c.shape == (3, 1)
    np.testing.assert_allclose(c[:, 0].numpy(), [0.0, math.log(16) / math.log(31), 1.0], rtol=1e-6)
    assert aug.condition(30.0).shape == (1,)
    with pytest.raises(ValueError, match="a must be"):
        aug.condition(-1.0)


def test_reweighted_histogram_is_a_density_with_sumw2_errors():
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, 50_000)
    w = 1 + 3 * x**2  # reweighted density (1 + 3 x^2) / 2 on [0, 1]
    edges = np.linspace(0, 1, 11)
    h, sigma = aug.reweighted_histogram(x, w, edges)
    assert (h * np.diff(edges)).sum() == pytest.approx(1.0)
    centres = 0.5 * (edges[1:] + edges[:-1])
    exact = (1 + 3 * centres**2 + 0.25 * 3 * 0.01 / 3) / 2  # bin average of the density
    pulls = (h - exact) / sigma
    assert np.abs(pulls).max() < 4.5
    # unit weights: the Poisson error sqrt(N_b) / (N Delta)
    h1, s1 = aug.reweighted_histogram(x, None, edges)
    counts = np.histogram(x, edges)[0]
    np.testing.assert_allclose(s1, np.sqrt(counts) / (x.size * 0.1))
    with pytest.raises(ValueError, match="increasing"):
        aug.reweighted_histogram(x, w, [1.0, 0.0])
    with pytest.raises(ValueError, match=">= 0"):
        aug.reweighted_histogram(x, -w, edges)
    with pytest.raises(ValueError, match="differ in shape"):
        aug.reweighted_histogram(x, w[:5], edges)


def test_effective_sample_size():
    assert aug.effective_sample_size(np.ones(100)) == pytest.approx(100)
    assert aug.effective_sample_size([1.0, 0.0, 0.0]) == pytest.approx(1)
    assert aug.effective_sample_size([2.0, 2.0]) == pytest.approx(2)
    with pytest.raises(ValueError, match="not all zero"):
        aug.effective_sample_size([0.0, 0.0])
    with pytest.raises(ValueError, match="NaN"):
        aug.effective_sample_size([1.0, np.nan])


def test_band_quantiles_and_envelope():
    a = np.linspace(0, 30, 301)
    histograms = np.stack([1 + a, 2 - a / 30], axis=1)  # two bins, monotone in a
    band = aug.theory_band(histograms)
    np.testing.assert_allclose(band.central, [16.0, 1.5])
    np.testing.assert_allclose(band.low, [1 + 0.16 * 30, 2 - 0.84], rtol=1e-9)
    np.testing.assert_allclose(band.high, [1 + 0.84 * 30, 2 - 0.16], rtol=1e-9)
    envelope = aug.theory_band(histograms, method="envelope")
    np.testing.assert_allclose(envelope.low, [1.0, 1.0])
    np.testing.assert_allclose(envelope.high, [31.0, 2.0])
    with pytest.raises(ValueError, match="method"):
        aug.theory_band(histograms, method="mean")
    with pytest.raises(ValueError, match="n_a >= 2"):
        aug.theory_band(histograms[:1])


def test_feature_map_round_trip():
    rng = np.random.default_rng(5)
    obs = np.stack([rng.uniform(21, 300, 100), rng.normal(0, 2, 100), rng.uniform(1, 200, 100)], 1)
    fmap = aug.FeatureMap.fit(obs)
    features = fmap.to_features(obs)
    assert features.dtype == np.float32
    np.testing.assert_allclose(features.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(fmap.to_observables(features), obs, rtol=1e-4)
    with pytest.raises(ValueError, match="threshold"):
        fmap.to_features(np.array([[15.0, 0.0, 10.0]]))


def _toy_observables(n, seed):
    rng = np.random.default_rng(seed)
    pt = 20 + rng.exponential(30, n)
    return np.stack([pt, rng.normal(0, 1.5, n), pt * rng.uniform(0.7, 1.3, n)], axis=1)


def test_generator_trains_generates_and_compares():
    train, test = _toy_observables(3000, 6), _toy_observables(3000, 7)
    generator = aug.train_theory_generator(
        train, n_steps=40, batch_size=256, n_blocks=2, hidden=(16,), seed=1
    )
    events = generator.generate(10.0, 500, seed=3)
    assert events.shape == (500, 3) and np.all(events[:, 0] > 20) and np.all(events[:, 2] > 0)
    np.testing.assert_array_equal(events, generator.generate(10.0, 500, seed=3))
    assert not np.array_equal(events, generator.generate(0.0, 500, seed=3))  # a is an input
    h = generator.histograms([0.0, 30.0], 400, aug.PT_BINS)
    assert h.shape == (2, len(aug.PT_BINS) - 1) and np.all(h >= 0)
    figures = aug.compare_to_truth(generator, test, a_values=(0.0, 30.0), n_generated=1000)
    assert set(figures) == {"0", "30"}
    assert set(figures["30"]) == {"chi2_pt", "chi2_pt_mumu", "mean_pt", "mean_pt_error"}
    assert all(np.isfinite(v) for entry in figures.values() for v in entry.values())


def test_truth_histograms_and_weighted_mean():
    obs = _toy_observables(20_000, 8)
    h, s = aug.truth_histograms(obs, [0.0, 30.0], aug.PT_BINS)
    assert h.shape == s.shape == (2, len(aug.PT_BINS) - 1)
    assert h[1, -1] > 3 * h[0, -1]  # the tail is enhanced at a = 30
    mean, error = aug.weighted_mean(obs[:, 0], np.ones(len(obs)))
    assert mean == pytest.approx(obs[:, 0].mean())
    assert error == pytest.approx(obs[:, 0].std() / math.sqrt(len(obs)))
    # pT = 20 + Exp(30): exact reweighted mean, E[x^k] = k! 30^k with x = pT - 20
    c, s1, s2, s3 = 30 / 1e4, 30.0, 2 * 30.0**2, 6 * 30.0**3
    exact = 20 + (s1 + c * (s3 + 10 * s2 + 25 * s1)) / (1 + c * (s2 + 10 * s1 + 25))
    mean, error = aug.weighted_mean(obs[:, 0], aug.theory_weights(obs[:, 0], 30.0))
    assert abs(mean - exact) < 5 * error


def test_chi2_per_bin():
    assert aug.chi2_per_bin(np.ones(3), np.ones(3), np.zeros(3), np.zeros(3)) == pytest.approx(1)
    assert aug.chi2_per_bin([1.0, 5.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]) == pytest.approx(1)
    with pytest.raises(ValueError, match="no bin"):
        aug.chi2_per_bin([1.0], [0.0], [1.0], [0.0])
