r"""Hidden checks of exercise 4: heteroskedastic loss, sigma_stoch and sigma_pred, pulls."""

from __future__ import annotations

import numpy as np

from lhcbnn.grading.tasks.base import Case, Exercise, Mistake, Task, Tensor

_LOG_2PI = np.log(2.0 * np.pi)


# ---------------------------------------------------------------- gaussian_nll
def gaussian_nll_reference(mean, log_var, target):
    r""":math:`\frac12[\log 2\pi + \log\sigma^2 + (t-m)^2/\sigma^2]`, elementwise."""
    return 0.5 * (_LOG_2PI + log_var + (target - mean) ** 2 * np.exp(-log_var))


def _nll_cases() -> list[Case]:
    rng = np.random.default_rng(20401)
    mean = rng.normal(0, 1, (8, 1))
    return [
        Case(
            (
                Tensor(mean),
                Tensor(rng.normal(-1, 1, (8, 1))),
                Tensor(mean + rng.normal(0, 1, (8, 1))),
            ),
            "a batch of 8 points, one output",
        ),
        Case(
            (Tensor(mean.copy()), Tensor(rng.normal(0, 1, (8, 1))), Tensor(mean.copy())),
            "targets equal to the means",
        ),
        Case(
            (
                Tensor(rng.normal(0, 3, (5, 2))),
                Tensor(rng.uniform(-6, -2, (5, 2))),
                Tensor(rng.normal(0, 3, (5, 2))),
            ),
            "small variances, two outputs",
        ),
    ]


NLL = Task(
    function="gaussian_nll",
    points=2,
    title="the heteroskedastic Gaussian negative log-likelihood",
    cases=_nll_cases,
    reference=gaussian_nll_reference,
    mistakes=(
        Mistake(
            "the log-variance term is missing: without it the network can inflate sigma for free",
            lambda m, v, t: 0.5 * (_LOG_2PI + (t - m) ** 2 * np.exp(-v)),
        ),
        Mistake(
            "the log term is 1/2 log sigma^2 = 1/2 log_var",
            lambda m, v, t: 0.5 * (_LOG_2PI + (t - m) ** 2 * np.exp(-v)) + v,
        ),
        Mistake(
            "divide the squared residual by the variance exp(log_var), not by the standard "
            "deviation",
            lambda m, v, t: 0.5 * (_LOG_2PI + v + (t - m) ** 2 * np.exp(-0.5 * v)),
        ),
        Mistake(
            "the constant 1/2 log(2 pi) belongs to the NLL",
            lambda m, v, t: 0.5 * (v + (t - m) ** 2 * np.exp(-v)),
        ),
    ),
    forbidden=("gaussian_nll", "gaussian_nll_loss", "GaussianNLLLoss", "nll", "log_prob"),
)


# ---------------------------------------------------------------- sigma_stoch / sigma_pred
def sigma_stoch_reference(log_vars):
    r""":math:`\sigma_\mathrm{stoch} = \sqrt{\frac1S\sum_s \exp(\log\sigma_s^2)}`, over axis 0."""
    return np.sqrt(np.exp(log_vars).mean(0))


def sigma_pred_reference(means):
    r""":math:`\sigma_\mathrm{pred} = \sqrt{\frac1S\sum_s (m_s-\bar m)^2}`, over axis 0."""
    return means.std(0)


def _sample_cases(seed: int, kind: str) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases = []
    for n_draws, batch, label in ((5, 7, "5 weight draws, 7 points"), (3, 4, "3 weight draws")):
        if kind == "log_vars":
            values = rng.normal(-1.0, 0.8, (n_draws, batch))
        else:
            values = rng.normal(0.0, 1.0, (1, batch)) + rng.normal(0.0, 0.3, (n_draws, batch))
        cases.append(Case((Tensor(values),), label))
    constant = np.repeat(rng.normal(-0.5, 1.0, (1, 6)), 4, axis=0)
    cases.append(Case((Tensor(constant),), "all draws equal"))
    cases.append(Case((Tensor(rng.normal(0.0, 1.0, (6, 5, 2))),), "two outputs, shape (S, B, 2)"))
    return cases


SIGMA_STOCH = Task(
    function="sigma_stoch_from_samples",
    points=2,
    title="sigma_stoch from the predicted variances of the weight draws",
    cases=lambda: _sample_cases(20402, "log_vars"),
    reference=sigma_stoch_reference,
    mistakes=(
        Mistake(
            "average the variances and then take the square root; the mean of the standard "
            "deviations is smaller",
            lambda v: np.exp(0.5 * v).mean(0),
        ),
        Mistake("return the standard deviation, not the variance", lambda v: np.exp(v).mean(0)),
        Mistake(
            "the network predicts log sigma^2: exponentiate it",
            lambda v: np.sqrt(np.abs(v.mean(0))),
        ),
        Mistake(
            "average over the draws (axis 0), not over the points",
            lambda v: np.sqrt(np.exp(v).mean(-1)),
        ),
    ),
    forbidden=("predict",),
)

SIGMA_PRED = Task(
    function="sigma_pred_from_samples",
    points=2,
    title="sigma_pred from the predicted means of the weight draws",
    cases=lambda: _sample_cases(20403, "means"),
    reference=sigma_pred_reference,
    mistakes=(
        Mistake(
            "sigma_pred uses 1/S (the spread of the draws, as lb.predict does); this looks "
            "like the unbiased 1/(S-1) version",
            lambda m: m.std(0, ddof=1),
        ),
        Mistake("return the standard deviation, not the variance", lambda m: m.var(0)),
        Mistake(
            "take the spread over the draws (axis 0), not over the points", lambda m: m.std(-1)
        ),
    ),
    forbidden=("predict",),
)


# ---------------------------------------------------------------- pulls
def pulls_reference(mean, sigma_stoch, sigma_pred, truth):
    r""":math:`(\bar m - t)/\sqrt{\sigma_\mathrm{stoch}^2+\sigma_\mathrm{pred}^2}`."""
    return (mean - truth) / np.sqrt(sigma_stoch**2 + sigma_pred**2)


def _pull_cases() -> list[Case]:
    rng = np.random.default_rng(20404)
    cases = []
    for batch, label in ((9, "9 points"), (4, "4 points")):
        mean = rng.normal(0, 1, batch)
        cases.append(
            Case(
                (
                    Tensor(mean),
                    Tensor(rng.uniform(0.1, 0.5, batch)),
                    Tensor(rng.uniform(0.05, 0.6, batch)),
                    Tensor(mean + rng.normal(0, 0.5, batch)),
                ),
                label,
            )
        )
    cases.append(
        Case(
            (
                Tensor(np.array([1.0, 2.0])),
                Tensor(np.array([0.3, 0.4])),
                Tensor(np.array([0.4, 0.3])),
                Tensor(np.array([0.5, 2.5])),
            ),
            "widths that add up to 0.5 in quadrature",
        )
    )
    return cases


PULLS = Task(
    function="compute_pulls",
    points=2,
    title="pulls with the total uncertainty",
    cases=_pull_cases,
    reference=pulls_reference,
    mistakes=(
        Mistake(
            "a pull is (prediction - truth) / sigma_tot",
            lambda m, s, p, t: (t - m) / np.sqrt(s**2 + p**2),
        ),
        Mistake(
            "add the two uncertainties in quadrature, not linearly",
            lambda m, s, p, t: (m - t) / (s + p),
        ),
        Mistake("sigma_tot contains sigma_pred too", lambda m, s, p, t: (m - t) / s),
        Mistake("sigma_tot contains sigma_stoch too", lambda m, s, p, t: (m - t) / p),
        Mistake(
            "divide by sigma_tot, not by sigma_tot^2", lambda m, s, p, t: (m - t) / (s**2 + p**2)
        ),
    ),
    forbidden=("pulls", "predict"),
)


EXERCISE = Exercise(
    name="ex04_heteroskedastic",
    title="Exercise 4: heteroskedastic regression and two uncertainties",
    tasks=(NLL, SIGMA_STOCH, SIGMA_PRED, PULLS),
)
