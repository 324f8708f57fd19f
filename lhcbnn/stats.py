"""Binned Poisson likelihoods with Gaussian-constrained nuisance parameters (chapter 1).

The model is the one every LHC counting analysis starts from (see e.g. the HistFactory
note, Cranmer et al., CERN-OPEN-2012-016; chapter 1 of the book): in bin ``i`` the
expected count is

    lambda_i(mu, nu) = mu * s_i * prod_k (1 + delta^s_ki)^nu_k + b_i * prod_k (1 + delta^b_ki)^nu_k,

with the signal strength ``mu`` as parameter of interest, signal and background templates
``s_i`` and ``b_i``, and nuisance parameters ``nu_k``. A nuisance with relative effect
``delta`` scales its template by ``(1 + delta)^nu`` (exponential interpolation: the
template stays positive for every ``nu``; for small ``delta`` this is ``1 + delta * nu``).
Each nuisance is constrained by an auxiliary measurement ``a_k``, a unit Gaussian
``N(a_k | nu_k, 1)``. The negative log-likelihood is

    -log L(mu, nu) = sum_i [lambda_i - n_i log lambda_i + log n_i!]
                     + sum_k (nu_k - a_k)^2 / 2 + (K/2) log(2 pi).

The profile likelihood ratio ``q(mu) = -2 log [L(mu, nu_hat_hat(mu)) / L(mu_hat, nu_hat)]``
(``nu_hat_hat`` maximises ``L`` at fixed ``mu``) is asymptotically chi-square with one
degree of freedom (Wilks), so ``q(mu) <= 1`` gives the 68.3% confidence interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special

from lhcbnn._validate import positive_number

__all__ = [
    "Nuisance",
    "FitResult",
    "Interval",
    "BinnedLikelihood",
    "coverage",
]


@dataclass(frozen=True)
class Nuisance:
    """One Gaussian-constrained nuisance parameter.

    Attributes:
        name: a label (for example ``"background normalisation"``).
        target: ``"signal"`` or ``"background"``: the template it scales.
        relative_effect: the relative change ``delta`` of the template for ``nu = +1``
            (one standard deviation): a scalar or one value per bin, each > -1.
    """

    name: str
    target: str
    relative_effect: float | Sequence[float] | np.ndarray

    def __post_init__(self) -> None:
        if self.target not in ("signal", "background"):
            raise ValueError(
                f"nuisance {self.name!r}: target must be 'signal' or 'background', "
                f"got {self.target!r}"
            )
        effect = np.asarray(self.relative_effect, dtype=float)
        if not np.all(np.isfinite(effect)) or np.any(effect <= -1.0):
            raise ValueError(
                f"nuisance {self.name!r}: relative_effect must be finite and > -1, got {effect}"
            )


@dataclass(frozen=True)
class FitResult:
    """The maximum-likelihood point: ``mu_hat``, ``nu_hat`` (K,) and ``-log L`` there."""

    mu_hat: float
    nu_hat: np.ndarray
    nll_min: float


@dataclass(frozen=True)
class Interval:
    """A profile-likelihood interval ``[lower, upper]`` around ``mu_hat``.

    ``lower_at_bound`` / ``upper_at_bound`` say that ``q(mu)`` never reached the threshold
    inside the allowed range of ``mu``, so the interval was cut at that bound.
    """

    mu_hat: float
    lower: float
    upper: float
    threshold: float
    lower_at_bound: bool = False
    upper_at_bound: bool = False

    @property
    def minus(self) -> float:
        """``mu_hat - lower`` (the downward error)."""
        return self.mu_hat - self.lower

    @property
    def plus(self) -> float:
        """``upper - mu_hat`` (the upward error)."""
        return self.upper - self.mu_hat

    @property
    def half_width(self) -> float:
        """``(upper - lower) / 2``, the symmetrised error."""
        return 0.5 * (self.upper - self.lower)


def _as_bins(values: object, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1D array of bin contents, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if np.any(array < 0):
        raise ValueError(f"{name} must be non-negative")
    return array


@dataclass
class BinnedLikelihood:
    """``L(mu, nu)`` of a binned counting experiment (formula in the module docstring).

    Args:
        signal: signal template ``s`` (n_bins,), expected counts for ``mu = 1``.
        background: background template ``b`` (n_bins,).
        observed: observed counts ``n`` (n_bins,); non-integer values are allowed (the
            Asimov data set, ``n = lambda``), ``log n!`` is then ``lgamma(n + 1)``.
        nuisances: the nuisance parameters, each with a unit-Gaussian constraint.
        global_observables: the auxiliary measurements ``a`` (K,), default zeros.
        mu_bounds: the allowed range of ``mu`` (default ``[0, inf)``, a physical signal).
    """

    signal: np.ndarray
    background: np.ndarray
    observed: np.ndarray
    nuisances: Sequence[Nuisance] = ()
    global_observables: np.ndarray | None = None
    mu_bounds: tuple[float, float] = (0.0, np.inf)
    _log_factors_signal: np.ndarray = field(init=False, repr=False)
    _log_factors_background: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.signal = _as_bins(self.signal, "signal")
        self.background = _as_bins(self.background, "background")
        self.observed = _as_bins(self.observed, "observed")
        n_bins = self.signal.size
        if self.background.size != n_bins or self.observed.size != n_bins:
            raise ValueError(
                "signal, background and observed need the same number of bins, got "
                f"{self.signal.size}, {self.background.size}, {self.observed.size}"
            )
        self.nuisances = tuple(self.nuisances)
        for nuisance in self.nuisances:
            if not isinstance(nuisance, Nuisance):
                raise TypeError(f"nuisances must be Nuisance objects, got {type(nuisance)}")
        n_nuisances = len(self.nuisances)
        if self.global_observables is None:
            self.global_observables = np.zeros(n_nuisances)
        self.global_observables = np.asarray(self.global_observables, dtype=float).reshape(-1)
        if self.global_observables.size != n_nuisances:
            raise ValueError(
                f"need one global observable per nuisance ({n_nuisances}), "
                f"got {self.global_observables.size}"
            )
        low, high = (float(bound) for bound in self.mu_bounds)
        if not low < high:
            raise ValueError(f"mu_bounds must satisfy low < high, got {self.mu_bounds}")
        self.mu_bounds = (low, high)
        # log(1 + delta) per nuisance and bin, zero where a nuisance does not act.
        self._log_factors_signal = np.zeros((n_nuisances, n_bins))
        self._log_factors_background = np.zeros((n_nuisances, n_bins))
        for k, nuisance in enumerate(self.nuisances):
            effect = np.broadcast_to(np.asarray(nuisance.relative_effect, float), (n_bins,))
            table = (
                self._log_factors_signal
                if nuisance.target == "signal"
                else self._log_factors_background
            )
            table[k] = np.log1p(effect)
        if np.any((self.observed > 0) & (self.signal + self.background <= 0)):
            raise ValueError("a bin with observed events has zero signal and background")

    # ----------------------------------------------------------------- the model
    @property
    def n_bins(self) -> int:
        return int(self.signal.size)

    @property
    def n_nuisances(self) -> int:
        return len(self.nuisances)

    def _nu(self, nu: object | None) -> np.ndarray:
        if nu is None:
            return np.zeros(self.n_nuisances)
        array = np.asarray(nu, dtype=float).reshape(-1)
        if array.size != self.n_nuisances:
            raise ValueError(f"nu needs {self.n_nuisances} values, got {array.size}")
        return array

    def templates(self, nu: object | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Signal and background templates ``(S(nu), B(nu))`` after the nuisance shifts."""
        nu_array = self._nu(nu)[:, None]
        # Elementwise sums, not matrix products: these arrays are tiny, and a threaded BLAS
        # call per evaluation costs more than the arithmetic (badly so on a loaded machine).
        scaled_signal = self.signal * np.exp(np.sum(nu_array * self._log_factors_signal, axis=0))
        scaled_background = self.background * np.exp(
            np.sum(nu_array * self._log_factors_background, axis=0)
        )
        return scaled_signal, scaled_background

    def expected(self, mu: float, nu: object | None = None) -> np.ndarray:
        """Expected counts ``lambda(mu, nu)`` (n_bins,)."""
        scaled_signal, scaled_background = self.templates(nu)
        return mu * scaled_signal + scaled_background

    def nll(self, mu: float, nu: object | None = None) -> float:
        """``-log L(mu, nu)`` including all constants (module docstring)."""
        nu_array = self._nu(nu)
        expected = self.expected(mu, nu_array)
        if np.any(expected <= 0):
            return np.inf
        poisson = np.sum(
            expected - special.xlogy(self.observed, expected) + special.gammaln(self.observed + 1)
        )
        constraint = 0.5 * np.sum((nu_array - self.global_observables) ** 2)
        return float(poisson + constraint + 0.5 * self.n_nuisances * np.log(2 * np.pi))

    def _derivatives(self, params: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """``-log L``, its gradient and Hessian with respect to ``(mu, nu_1, ..., nu_K)``.

        With ``r_i = 1 - n_i / lambda_i``: ``d(-log L)/d theta_a = sum_i r_i d_a lambda_i``
        (plus ``nu_k - a_k`` for a nuisance) and ``d^2(-log L)/d theta_a d theta_b =
        sum_i [n_i / lambda_i^2 d_a lambda_i d_b lambda_i + r_i d_a d_b lambda_i]`` (plus
        the unit matrix in the nuisance block).
        """
        mu, nu_array = params[0], params[1:]
        n_params = params.size
        scaled_signal, scaled_background = self.templates(nu_array)
        expected = mu * scaled_signal + scaled_background
        if np.any(expected <= 0):
            return np.inf, np.zeros(n_params), np.eye(n_params)
        residual = 1.0 - self.observed / expected
        curvature = self.observed / expected**2
        # First derivatives of lambda (n_params, n_bins) and second derivatives.
        signal_terms = self._log_factors_signal * scaled_signal  # (K, n_bins)
        background_terms = self._log_factors_background * scaled_background
        d_expected = np.concatenate([scaled_signal[None, :], mu * signal_terms + background_terms])
        d2_expected = np.zeros((n_params, n_params, self.n_bins))
        d2_expected[0, 1:] = signal_terms
        d2_expected[1:, 0] = signal_terms
        d2_expected[1:, 1:] = mu * (
            self._log_factors_signal[:, None, :] * signal_terms[None, :, :]
        ) + (self._log_factors_background[:, None, :] * background_terms[None, :, :])
        pull = nu_array - self.global_observables
        gradient = np.sum(residual * d_expected, axis=1)
        gradient[1:] += pull
        hessian = np.sum(
            curvature * d_expected[:, None, :] * d_expected[None, :, :] + residual * d2_expected,
            axis=2,
        )
        hessian[1:, 1:] += np.eye(self.n_nuisances)
        value = np.sum(
            expected - special.xlogy(self.observed, expected) + special.gammaln(self.observed + 1)
        )
        value += 0.5 * np.sum(pull**2) + 0.5 * self.n_nuisances * np.log(2 * np.pi)
        return float(value), gradient, hessian

    def _minimise(self, start: np.ndarray, free: np.ndarray) -> np.ndarray:
        """Damped Newton minimisation of ``-log L`` over the ``free`` parameters.

        The problems here have at most a handful of parameters with analytic second
        derivatives, so Newton converges in a few steps to machine precision; it also
        avoids the threaded BLAS calls of general-purpose minimisers, which are slow for
        tiny problems on a busy machine. ``mu`` is kept inside ``mu_bounds``.
        """
        params = np.array(start, dtype=float)
        low, high = self.mu_bounds
        if not free.any():
            return params
        for _ in range(200):
            value, gradient, hessian = self._derivatives(params)
            active = free.copy()  # mu on a bound and pushing outward: hold it there
            if (params[0] <= low and gradient[0] > 0) or (params[0] >= high and gradient[0] < 0):
                active[0] = False
            if not active.any():
                break
            gradient_free = gradient[active]
            hessian_free = hessian[np.ix_(active, active)]
            if np.max(np.abs(gradient_free)) < 1e-9:
                break
            damping = 0.0
            scale = float(np.max(np.abs(np.diag(hessian_free)))) + 1.0
            for _attempt in range(60):
                try:
                    np.linalg.cholesky(hessian_free + damping * np.eye(active.sum()))
                    break
                except np.linalg.LinAlgError:
                    damping = max(2.0 * damping, 1e-8 * scale)
            step = np.linalg.solve(hessian_free + damping * np.eye(active.sum()), gradient_free)
            step_size, improved = 1.0, False
            while step_size > 1e-12:
                trial = params.copy()
                trial[active] -= step_size * step
                trial[0] = min(max(trial[0], low), high)
                trial_value = self._derivatives(trial)[0] if np.isfinite(trial[0]) else np.inf
                if trial_value <= value - 1e-4 * step_size * float(gradient_free @ step):
                    improved = True
                    break
                if trial_value <= value and step_size < 1e-3:
                    improved = True
                    break
                step_size *= 0.5
            if not improved:
                break  # converged to the precision of the arithmetic (or onto a bound)
            converged = abs(value - trial_value) < 1e-13 * max(1.0, abs(value))
            params = trial
            if converged:
                break
        return params

    # ----------------------------------------------------------------- fits
    def profile_nuisances(self, mu: float) -> np.ndarray:
        """``nu_hat_hat(mu)``: the nuisances that maximise ``L`` at fixed ``mu`` (K,)."""
        if self.n_nuisances == 0:
            return np.zeros(0)
        free = np.ones(1 + self.n_nuisances, dtype=bool)
        free[0] = False
        start = np.concatenate([[mu], self.global_observables])
        return self._minimise(start, free)[1:]

    def profile_nll(self, mu: float, fixed_nuisances: object | None = None) -> float:
        """``-log L(mu, nu_hat_hat(mu))``; with ``fixed_nuisances``, ``-log L(mu, fixed)``."""
        if fixed_nuisances is not None:
            return self.nll(mu, fixed_nuisances)
        return self.nll(mu, self.profile_nuisances(mu))

    def fit(self, fixed_nuisances: object | None = None) -> FitResult:
        """The maximum-likelihood estimate (all nuisances free, or held at ``fixed_nuisances``).

        ``mu`` stays inside ``mu_bounds``; a best fit on a bound is reported there.
        """
        low, high = self.mu_bounds
        start_mu = float(np.clip(1.0, low, high))
        free = np.ones(1 + self.n_nuisances, dtype=bool)
        if fixed_nuisances is not None:
            start = np.concatenate([[start_mu], self._nu(fixed_nuisances)])
            free[1:] = False
        else:
            start = np.concatenate([[start_mu], self.global_observables])
        params = self._minimise(start, free)
        mu_hat = float(params[0])
        nu_hat = np.asarray(params[1:], dtype=float)
        return FitResult(mu_hat, nu_hat, self.nll(mu_hat, nu_hat))

    def scan(
        self,
        mu_values: object,
        fixed_nuisances: object | None = None,
        best_fit: FitResult | None = None,
    ) -> np.ndarray:
        """``q(mu) = 2 [-log L(mu, nu_hat_hat(mu)) + log L(mu_hat, nu_hat)]`` on a grid.

        With ``fixed_nuisances`` the nuisances are held fixed (no profiling) and ``mu_hat``
        is the best fit at those values: a statistics-only scan.
        """
        mu_grid = np.asarray(mu_values, dtype=float).reshape(-1)
        if best_fit is None:
            best_fit = self.fit(fixed_nuisances)
        values = np.array([self.profile_nll(mu, fixed_nuisances) for mu in mu_grid])
        return 2.0 * (values - best_fit.nll_min)

    def interval(self, threshold: float = 1.0, fixed_nuisances: object | None = None) -> Interval:
        """The interval ``{mu : q(mu) <= threshold}``; ``threshold = 1`` gives 68.3% CL.

        The edges are found by bracketing outward from ``mu_hat`` and Brent's method.
        """
        threshold = positive_number(threshold, "threshold")
        best_fit = self.fit(fixed_nuisances)
        mu_hat = best_fit.mu_hat
        low, high = self.mu_bounds

        def excess(mu: float) -> float:
            return 2.0 * (self.profile_nll(mu, fixed_nuisances) - best_fit.nll_min) - threshold

        # First step: the Gaussian error from the Poisson curvature, sqrt(1 / sum s^2/lambda).
        expected = self.expected(max(mu_hat, low), best_fit.nu_hat)
        fisher = np.sum(self.signal**2 / np.maximum(expected, 1e-12))
        step = np.sqrt(threshold / fisher) if fisher > 0 else 1.0

        def edge(direction: int) -> tuple[float, bool]:
            bound = high if direction > 0 else low
            inner, outer = mu_hat, mu_hat + direction * step
            for _ in range(60):
                if (direction > 0 and outer >= bound) or (direction < 0 and outer <= bound):
                    outer = bound
                    if not np.isfinite(outer) or excess(outer) < 0:
                        return float(bound), True
                    break
                if excess(outer) > 0:
                    break
                inner, outer = outer, mu_hat + 2.0 * (outer - mu_hat)
            else:
                raise RuntimeError("could not bracket the interval edge")
            if inner == outer:
                return float(outer), True
            return float(optimize.brentq(excess, inner, outer, xtol=1e-10)), False

        if mu_hat <= low:
            lower, lower_at_bound = float(low), True
        else:
            lower, lower_at_bound = edge(-1)
        upper, upper_at_bound = edge(+1)
        return Interval(mu_hat, lower, upper, float(threshold), lower_at_bound, upper_at_bound)

    # ----------------------------------------------------------------- pseudo-data
    def asimov(self, mu: float, nu: object | None = None) -> BinnedLikelihood:
        """The same model with the Asimov data ``n = lambda(mu, nu)`` and ``a = nu``."""
        nu_array = self._nu(nu)
        return BinnedLikelihood(
            self.signal,
            self.background,
            self.expected(mu, nu_array),
            self.nuisances,
            nu_array.copy(),
            self.mu_bounds,
        )

    def pseudo_experiment(
        self, mu: float, nu: object | None = None, seed: int | np.random.Generator = 0
    ) -> BinnedLikelihood:
        """A toy: ``n ~ Poisson(lambda(mu, nu))`` and auxiliary ``a ~ N(nu, 1)``."""
        rng = np.random.default_rng(seed)
        nu_array = self._nu(nu)
        counts = rng.poisson(self.expected(mu, nu_array)).astype(float)
        aux = rng.normal(nu_array, 1.0)
        return BinnedLikelihood(
            self.signal, self.background, counts, self.nuisances, aux, self.mu_bounds
        )

    def scaled(self, factor: float) -> BinnedLikelihood:
        """The model for ``factor`` times the integrated luminosity (templates, data scaled)."""
        factor = positive_number(factor, "luminosity factor")
        return BinnedLikelihood(
            factor * self.signal,
            factor * self.background,
            factor * self.observed,
            self.nuisances,
            self.global_observables.copy(),
            self.mu_bounds,
        )


def coverage(
    likelihood: BinnedLikelihood,
    mu_true: float,
    n_toys: int = 200,
    threshold: float = 1.0,
    seed: int = 0,
) -> float:
    """Fraction of pseudo-experiments whose interval ``q(mu) <= threshold`` holds ``mu_true``.

    Toys are thrown from the model at ``(mu_true, nu = 0)`` with fluctuating auxiliary
    measurements (:meth:`BinnedLikelihood.pseudo_experiment`). For ``threshold = 1`` a
    correct interval covers in 68.3% of the toys, up to ``sqrt(0.68 * 0.32 / n_toys)``.
    """
    if n_toys < 1:
        raise ValueError(f"n_toys must be >= 1, got {n_toys}")
    rng = np.random.default_rng(seed)
    covered = 0
    for _ in range(n_toys):
        toy = likelihood.pseudo_experiment(mu_true, None, rng)
        interval = toy.interval(threshold)
        covered += int(interval.lower <= mu_true <= interval.upper)
    return covered / n_toys
