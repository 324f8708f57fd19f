"""lhcbnn.stats against closed forms: Poisson fits, profile intervals, coverage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, special, stats

from lhcbnn.stats import BinnedLikelihood, Nuisance, coverage


def _templates(n_bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    edges = np.linspace(110.0, 140.0, n_bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    signal = 60.0 * np.diff(stats.norm.cdf(edges, loc=125.0, scale=2.0))
    background = np.exp(-(centres - 110.0) / 30.0)
    return signal, 1000.0 * background / background.sum()


NUISANCES = [
    Nuisance("background normalisation", "background", 0.05),
    Nuisance("signal cross section", "signal", 0.10),
]


def test_nll_is_the_poisson_and_gaussian_negative_log_likelihood() -> None:
    signal, background = _templates()
    observed = np.random.default_rng(1).poisson(signal + background).astype(float)
    model = BinnedLikelihood(signal, background, observed, NUISANCES, np.array([0.3, -0.2]))
    mu, nu = 1.3, np.array([0.4, -1.1])
    expected = mu * signal * 1.10 ** nu[1] + background * 1.05 ** nu[0]
    reference = (
        -stats.poisson.logpmf(observed, expected).sum()
        - stats.norm.logpdf(np.array([0.3, -0.2]), loc=nu, scale=1.0).sum()
    )
    assert model.nll(mu, nu) == pytest.approx(reference, rel=1e-12)
    np.testing.assert_allclose(model.expected(mu, nu), expected, rtol=1e-12)


def test_derivatives_match_finite_differences() -> None:
    signal, background = _templates()
    observed = np.random.default_rng(2).poisson(signal + background).astype(float)
    model = BinnedLikelihood(signal, background, observed, NUISANCES)
    params = np.array([1.1, 0.3, -0.4])
    _, gradient, hessian = model._derivatives(params)
    step = 1e-5

    def gradient_at(p: np.ndarray) -> np.ndarray:
        return model._derivatives(p)[1]

    numeric_gradient = np.array(
        [
            (model.nll(*_split(params + step * e)) - model.nll(*_split(params - step * e)))
            / (2 * step)
            for e in np.eye(3)
        ]
    )
    numeric_hessian = np.array(
        [
            (gradient_at(params + step * e) - gradient_at(params - step * e)) / (2 * step)
            for e in np.eye(3)
        ]
    )
    np.testing.assert_allclose(gradient, numeric_gradient, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(hessian, numeric_hessian, rtol=1e-5, atol=1e-5)


def _split(params: np.ndarray) -> tuple[float, np.ndarray]:
    return float(params[0]), params[1:]


def test_single_bin_fit_and_interval_are_analytic() -> None:
    # One bin, no nuisance: mu_hat = (n - b) / s, and q(mu) = 2 [lambda - n - n log(lambda / n)].
    signal, background, observed = 20.0, 50.0, 85.0
    model = BinnedLikelihood([signal], [background], [observed])
    assert model.fit().mu_hat == pytest.approx((observed - background) / signal, rel=1e-8)

    def q(mu: float) -> float:
        expected = mu * signal + background
        return 2 * (expected - observed - observed * np.log(expected / observed)) - 1.0

    mu_hat = (observed - background) / signal
    lower = optimize.brentq(q, 0.0, mu_hat)
    upper = optimize.brentq(q, mu_hat, 10.0)
    interval = model.interval()
    assert interval.lower == pytest.approx(lower, rel=1e-7)
    assert interval.upper == pytest.approx(upper, rel=1e-7)
    assert interval.minus < interval.plus  # Poisson intervals are skewed upwards
    assert not interval.lower_at_bound and not interval.upper_at_bound


def test_profiling_matches_brute_force_minimisation() -> None:
    signal, background = _templates()
    observed = np.random.default_rng(3).poisson(1.2 * signal + background).astype(float)
    model = BinnedLikelihood(signal, background, observed, NUISANCES, np.array([0.5, 0.0]))
    best = model.fit()
    brute = optimize.minimize(
        lambda p: model.nll(p[0], p[1:]),
        x0=[1.0, 0.0, 0.0],
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20_000},
    )
    assert best.nll_min == pytest.approx(brute.fun, abs=1e-8)
    assert best.mu_hat == pytest.approx(brute.x[0], abs=1e-4)
    for mu in (0.7, 1.5):
        nu_hat_hat = model.profile_nuisances(mu)
        brute_nu = optimize.minimize(
            lambda nu, mu=mu: model.nll(mu, nu),
            x0=[0.0, 0.0],
            method="Nelder-Mead",
            options={"xatol": 1e-10, "fatol": 1e-12},
        )
        assert model.nll(mu, nu_hat_hat) == pytest.approx(brute_nu.fun, abs=1e-8)


def test_asimov_stat_only_interval_matches_fisher_error() -> None:
    signal, background = _templates()
    model = BinnedLikelihood(signal, background, signal + background, NUISANCES)
    asimov = model.asimov(1.0)
    interval = asimov.interval(fixed_nuisances=np.zeros(2))
    fisher = 1.0 / np.sqrt(np.sum(signal**2 / (signal + background)))
    assert interval.mu_hat == pytest.approx(1.0, abs=1e-8)
    assert interval.half_width == pytest.approx(fisher, rel=2e-3)


def test_profiling_widens_the_interval_and_systematics_do_not_shrink() -> None:
    signal, background = _templates()
    asimov = BinnedLikelihood(signal, background, signal + background, NUISANCES).asimov(1.0)
    widths_total, widths_stat = [], []
    for factor in (1.0, 100.0):
        scaled = asimov.scaled(factor)
        widths_total.append(scaled.interval().half_width)
        widths_stat.append(scaled.interval(fixed_nuisances=np.zeros(2)).half_width)
    assert all(t > s for t, s in zip(widths_total, widths_stat, strict=True))
    assert widths_stat[1] == pytest.approx(widths_stat[0] / 10, rel=0.01)  # 1/sqrt(lumi)
    # The 10% signal-normalisation nuisance is degenerate with mu: a floor near 0.10.
    assert 0.09 < widths_total[1] < 0.12


def test_interval_at_the_physical_bound() -> None:
    signal, background = _templates()
    observed = background - 0.5 * signal  # a dip where the signal should be: mu_hat < 0
    model = BinnedLikelihood(signal, background, observed, NUISANCES)
    best = model.fit()
    assert best.mu_hat == 0.0
    assert best.nu_hat[1] == pytest.approx(0.0, abs=1e-8)  # no signal: its nuisance is free
    interval = model.interval()
    assert interval.lower == 0.0 and interval.lower_at_bound
    assert interval.upper > 0.0 and not interval.upper_at_bound


def test_pseudo_experiments_are_seeded_and_fluctuate_the_auxiliary_data() -> None:
    signal, background = _templates()
    model = BinnedLikelihood(signal, background, signal + background, NUISANCES)
    first, again = model.pseudo_experiment(1.0, seed=7), model.pseudo_experiment(1.0, seed=7)
    other = model.pseudo_experiment(1.0, seed=8)
    np.testing.assert_array_equal(first.observed, again.observed)
    np.testing.assert_array_equal(first.global_observables, again.global_observables)
    assert not np.array_equal(first.observed, other.observed)
    assert np.all(first.observed == np.round(first.observed))
    assert np.any(first.global_observables != 0.0)


def test_coverage_of_the_68_percent_interval() -> None:
    # 400 toys: binomial error 0.023; the check fails for a wrong threshold (q <= 4 covers 95%).
    signal, background = _templates()
    model = BinnedLikelihood(signal, background, signal + background, NUISANCES)
    fraction = coverage(model, mu_true=1.0, n_toys=400, seed=11)
    assert abs(fraction - special.erf(1 / np.sqrt(2))) < 3 * 0.023


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"signal": [1.0, 2.0], "background": [1.0], "observed": [1.0, 2.0]}, ValueError),
        ({"signal": [1.0, -2.0], "background": [1.0, 1.0], "observed": [1.0, 2.0]}, ValueError),
        ({"signal": [1.0, np.nan], "background": [1.0, 1.0], "observed": [1.0, 2.0]}, ValueError),
        ({"signal": [[1.0]], "background": [[1.0]], "observed": [[1.0]]}, ValueError),
        ({"signal": [0.0], "background": [0.0], "observed": [3.0]}, ValueError),
        (
            {"signal": [1.0], "background": [1.0], "observed": [1.0], "nuisances": ["lumi"]},
            TypeError,
        ),
        (
            {"signal": [1.0], "background": [1.0], "observed": [1.0], "mu_bounds": (2, 1)},
            ValueError,
        ),
    ],
)
def test_bad_input_is_rejected(kwargs: dict, error: type) -> None:
    with pytest.raises(error):
        BinnedLikelihood(**kwargs)


def test_bad_nuisances_are_rejected() -> None:
    with pytest.raises(ValueError, match="target"):
        Nuisance("lumi", "luminosity", 0.02)
    with pytest.raises(ValueError, match="> -1"):
        Nuisance("lumi", "signal", -1.5)
    model = BinnedLikelihood([1.0], [1.0], [1.0], [Nuisance("lumi", "signal", 0.02)])
    with pytest.raises(ValueError, match="nu needs 1"):
        model.nll(1.0, [0.0, 0.0])
    with pytest.raises(ValueError, match="threshold"):
        model.interval(threshold=0.0)
    with pytest.raises(ValueError, match="luminosity"):
        model.scaled(-1.0)
