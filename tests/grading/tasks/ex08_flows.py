r"""Hidden checks of exercise 8: an affine coupling, the change of variables, per-bin
sigma_pred from weight draws, and the wedge ramp's slope with its uncertainty (a fit graded
by its outcome). Self-contained: the wedge sampler is defined here."""

from __future__ import annotations

import math

import numpy as np

from lhcbnn.grading.tasks.base import Case, Exercise, Mistake, Task, Tensor


# ---------------------------------------------------------------- affine coupling
def affine_coupling_reference(x, s, t):
    r""":math:`y_1 = x_1,\ y_2 = x_2 e^{s} + t`, :math:`\log|\det| = s`; x (n, 2), s, t (n,)."""
    y = x.copy()
    y[:, 1] = x[:, 1] * np.exp(s) + t
    return y, s.copy()


def _coupling_cases() -> list[Case]:
    rng = np.random.default_rng(20801)
    cases = []
    for n, label in ((6, "6 points"), (3, "3 points, large scales")):
        x = rng.normal(0, 1, (n, 2))
        scale = 0.5 if n == 6 else 2.0
        cases.append(
            Case((Tensor(x), Tensor(rng.normal(0, scale, n)), Tensor(rng.normal(0, 1, n))), label)
        )
    return cases


def _swap_coordinates(x, s, t):
    y = x.copy()
    y[:, 0] = x[:, 0] * np.exp(s) + t
    return y, s.copy()


COUPLING = Task(
    function="affine_coupling",
    points=2,
    title="the affine coupling block and its log-determinant",
    cases=_coupling_cases,
    reference=affine_coupling_reference,
    outputs=("y", "log_det"),
    mistakes=(
        Mistake(
            "the log-determinant of y2 = x2 exp(s) + t is s itself, not exp(s)",
            lambda x, s, t: (affine_coupling_reference(x, s, t)[0], np.exp(s)),
        ),
        Mistake(
            "scale by exp(s): s is the log of the scale",
            lambda x, s, t: (
                np.stack([x[:, 0], x[:, 1] * s + t], 1),
                s.copy(),
            ),
        ),
        Mistake(
            "x1 conditions and stays unchanged; transform the second coordinate",
            _swap_coordinates,
        ),
        Mistake(
            "shift after scaling: y2 = x2 exp(s) + t, not (x2 + t) exp(s)",
            lambda x, s, t: (np.stack([x[:, 0], (x[:, 1] + t) * np.exp(s)], 1), s.copy()),
        ),
    ),
)


# ---------------------------------------------------------------- change of variables
def log_density_reference(z, log_det):
    r""":math:`\log p(x) = -\tfrac12|z|^2 - \log 2\pi + \log|\det \partial z/\partial x|` (2D)."""
    return -0.5 * (z**2).sum(1) - math.log(2 * math.pi) + log_det


def _density_cases() -> list[Case]:
    rng = np.random.default_rng(20802)
    return [
        Case((Tensor(rng.normal(0, 1, (7, 2))), Tensor(rng.normal(0, 1, 7))), "7 points"),
        Case((Tensor(np.zeros((2, 2))), Tensor(np.array([0.0, 1.5]))), "z = 0"),
    ]


DENSITY = Task(
    function="flow_log_density",
    points=2,
    title="the change of variables with a 2D unit Gaussian latent density",
    cases=_density_cases,
    reference=log_density_reference,
    mistakes=(
        Mistake(
            "add the log-determinant of x -> z; do not subtract it",
            lambda z, d: -0.5 * (z**2).sum(1) - math.log(2 * math.pi) - d,
        ),
        Mistake(
            "the normalisation of a 2D unit Gaussian is 1/(2 pi): -log(2 pi), not -log(2 pi)/2",
            lambda z, d: -0.5 * (z**2).sum(1) - 0.5 * math.log(2 * math.pi) + d,
        ),
        Mistake(
            "sum -z^2/2 over both coordinates of each point",
            lambda z, d: -0.5 * (z**2).mean(1) - math.log(2 * math.pi) + d,
        ),
    ),
    forbidden=("log_prob",),
)


# ---------------------------------------------------------------- per-bin sigma_pred
def histogram_reference(draws):
    r"""Per-bin mean and :math:`\sigma_\mathrm{pred}` (1/R) over weight draws on axis 0."""
    return draws.mean(0), draws.std(0)


def _histogram_cases() -> list[Case]:
    rng = np.random.default_rng(20803)
    base = rng.uniform(0.5, 2.0, 8)
    return [
        Case((Tensor(base * (1 + 0.05 * rng.normal(0, 1, (5, 8)))),), "5 draws, 8 bins"),
        Case((Tensor(base[:3] * (1 + 0.2 * rng.normal(0, 1, (3, 3)))),), "3 draws, 3 bins"),
    ]


HISTOGRAM = Task(
    function="histogram_mean_sigma_pred",
    points=2,
    title="a histogram's per-bin mean and sigma_pred from weight draws",
    cases=_histogram_cases,
    reference=histogram_reference,
    outputs=("mean", "sigma_pred"),
    mistakes=(
        Mistake(
            "sigma_pred uses 1/R, the spread of the draws (as lb.predict and lb.flows do); "
            "this looks like the 1/(R-1) version",
            lambda d: (d.mean(0), d.std(0, ddof=1)),
        ),
        Mistake(
            "take mean and spread over the draws (axis 0), not over the bins",
            lambda d: (d.mean(1), d.std(1)),
        ),
        Mistake("return the standard deviation, not the variance", lambda d: (d.mean(0), d.var(0))),
    ),
    forbidden=("histogram_with_uncertainty", "density_with_uncertainty"),
)


# ---------------------------------------------------------------- wedge slope fit (outcome)
def sample_linear_density(slope: float, n: int, seed: int) -> np.ndarray:
    r"""``n`` events of :math:`p(x) = 1 + a(x - 1/2)` on [0, 1] by the inverse CDF."""
    u = np.random.default_rng(seed).random(n)
    if slope == 0:
        return u
    half = slope / 2
    return (-(1 - half) + np.sqrt((1 - half) ** 2 + 4 * half * u)) / (2 * half)


def fit_reference(x):
    r"""ML slope of :math:`p = 1 + a(x-\frac12)` and its error,
    :math:`\Delta a = (\sum_i g_i^2/p_i^2)^{-1/2}` with :math:`g_i = x_i - 1/2`."""
    g = x - 0.5
    a = 0.0
    for _ in range(100):  # Newton on the concave log-likelihood
        p = 1 + a * g
        step = (g / p).sum() / ((g / p) ** 2).sum()
        a = a + step
        if abs(step) < 1e-12:
            break
    p = 1 + a * g
    return np.array(a), np.array(((g / p) ** 2).sum() ** -0.5)


# Cases: (true slope, events, seed). Tolerances from 10 seeds of fit_reference
# (a = 2, N = 20000: mean 2.006, sd 0.013; a = 1, N = 5000: mean 0.996, sd 0.057):
# the slope must lie within 5 seed standard deviations of the truth, and Delta a within
# 20% of the observed-information error of the same events.
FIT_CASES = ((2.0, 20_000, 7), (1.0, 5_000, 8))
SLOPE_SD = {20_000: 0.013, 5_000: 0.057}
TRUE_SLOPE = {20_000: 2.0, 5_000: 1.0}


def _fit_cases() -> list[Case]:
    return [
        Case((Tensor(sample_linear_density(a, n, seed)),), f"{n} events with slope a = {a:g}")
        for a, n, seed in FIT_CASES
    ]


def judge_fit(args, values) -> tuple[bool, str]:
    x = np.asarray(args[0], dtype=float)
    if len(values) != 2:
        return False, "return two numbers: (a, delta_a)"
    a, delta = (float(np.asarray(v).reshape(-1)[0]) for v in values)
    n = x.size
    if not (math.isfinite(a) and math.isfinite(delta)):
        return False, "a or delta_a is not finite"
    if abs(a - TRUE_SLOPE[n]) > 5 * SLOPE_SD[n]:
        return False, f"the fitted slope {a:.4f} is far from the true {TRUE_SLOPE[n]:g}"
    _, reference_delta = fit_reference(x)
    if abs(delta / float(reference_delta) - 1) > 0.2:
        return False, f"delta_a = {delta:.4g} is not the maximum-likelihood error of these events"
    return True, "slope and its error agree"


def _fit_no_weights(x):
    a, _ = fit_reference(x)
    return a, np.array(((x - 0.5) ** 2).sum() ** -0.5)


def _fit_moments(x):
    return np.array(12 * (x.mean() - 0.5)), np.array(12 * x.std() / math.sqrt(x.size))


FIT = Task(
    function="fit_wedge_slope",
    points=3,
    title="the slope of a normalised linear density and its error, by maximum likelihood",
    cases=_fit_cases,
    reference=None,
    judge=judge_fit,
    outputs=("a", "delta_a"),
    mistakes=(
        Mistake(
            "the error is not 1/sqrt(N): it comes from the curvature of the log-likelihood, "
            "sum (g/p)^2 with g = x - 1/2",
            lambda x: (fit_reference(x)[0], np.array(1 / math.sqrt(x.size))),
        ),
        Mistake(
            "the information is sum_i (x_i - 1/2)^2 / p(x_i)^2: each event is weighted by 1/p^2",
            _fit_no_weights,
        ),
        Mistake(
            "the mean of x gives a valid but less precise slope; the task asks for the "
            "maximum-likelihood fit and its error",
            _fit_moments,
        ),
        Mistake(
            "return the error delta_a, not its square",
            lambda x: (fit_reference(x)[0], fit_reference(x)[1] ** 2),
        ),
    ),
    forbidden=("fit_polynomial_density",),
)


EXERCISE = Exercise(
    name="ex08_flows",
    title="Exercise 8: normalizing flows and the wedge ramp",
    tasks=(COUPLING, DENSITY, HISTOGRAM, FIT),
)
