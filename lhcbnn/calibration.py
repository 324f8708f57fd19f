r"""Is a predicted distribution right? Resolution, predictive CDF and NLL, PIT and coverage.

A regression network with a likelihood head (Gaussian or Gaussian mixture) and a weight
posterior predicts, per input, the distribution

.. math::
    p(t\mid x) = \frac1S\sum_{s=1}^S p(t\mid x,\theta_s),

the average over :math:`S` weight draws. It is calibrated when the true labels of held-out
points look like draws from it: their probability integral transform (PIT)
:math:`u = F(t\mid x)` is uniform on :math:`[0, 1]`, and the central interval of
probability :math:`p` contains a fraction :math:`p` of them (the coverage). Unlike the
width of the pulls :math:`(\bar m - t)/\sigma_\mathrm{tot}`, this tests the shape of the
distribution too (book chapter 5; Kasieczka, Luchmann, Otterpohl, Plehn, arXiv:2003.11099).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from lhcbnn._validate import finite_array
from lhcbnn.device import as_tensor
from lhcbnn.layers import draws
from lhcbnn.softclip import HEAD_LOG_VAR_BOUNDS, soft_clip

__all__ = [
    "resolution",
    "predictive_cdf",
    "predictive_nll",
    "coverage",
    "pit_histogram",
    "rescaled_scores",
    "fit_scale",
]


def resolution(predicted: object, true: object) -> tuple[float, float]:
    r"""Bias and resolution of a positive quantity, from :math:`\delta=(p-t)/t`.

    Returns:
        ``(bias, half_width)``: the median of :math:`\delta` and half the distance between
        its 16% and 84% quantiles (the 68% interquantile half-width, which a few far
        outliers do not dominate, unlike the standard deviation).
    """
    predicted, true = (
        finite_array(predicted, "predicted", flatten=True),
        finite_array(true, "true", flatten=True),
    )
    if predicted.shape != true.shape:
        raise ValueError(f"predicted has {predicted.size} entries, true {true.size}")
    if (true <= 0).any():
        raise ValueError("true values must be positive for a relative resolution")
    delta = (predicted - true) / true
    low, median, high = np.percentile(delta, [16, 50, 84])
    return float(median), float((high - low) / 2)


def _draw_cdf_and_density(model: nn.Module, output: Tensor, target: Tensor):
    """CDF and density of ``target`` under one forward pass, each ``(batch,)``."""
    head = getattr(model, "head", None)
    if head is not None and head.n_mixture:
        logits, means, log_vars = head.split_mixture(output)
        log_vars = soft_clip(log_vars, *HEAD_LOG_VAR_BOUNDS)  # as in the head's moments and NLL
        log_weights = torch.log_softmax(logits, dim=-1)
    else:
        mean, variance = model.moments(output)
        if mean.shape[1] != 1:
            raise ValueError("the predictive CDF is defined for one regression target")
        means, log_vars = mean, torch.log(variance)
        log_weights = torch.zeros_like(means)
        if not torch.isfinite(log_vars).all():
            raise ValueError("the model predicts a zero width: it has no predictive density")
    sigma = torch.exp(0.5 * log_vars)
    z = (target[:, None] - means) / sigma
    cdf = (log_weights.exp() * 0.5 * torch.erfc(-z / math.sqrt(2.0))).sum(-1)
    # mixture weights sum to 1 only up to rounding (1 + 4e-16 is common): a CDF is in [0, 1]
    cdf = cdf.clamp(0.0, 1.0)
    log_density = torch.logsumexp(
        log_weights - 0.5 * z**2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi), dim=-1
    )
    return cdf, log_density


def _over_draws(model: nn.Module, x: object, target: object, n_samples: int):
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    parameter = next(model.parameters())
    x = as_tensor(x, "x", dtype=parameter.dtype).to(parameter.device)
    target = as_tensor(target, "target", dtype=torch.float64).to(parameter.device).reshape(-1)
    if target.shape[0] != x.shape[0]:
        raise ValueError(f"x has {x.shape[0]} points but target has {target.shape[0]}")
    was_training = model.training
    model.eval()
    cdfs, log_densities = [], []
    try:
        with torch.no_grad():
            for network in draws(model, n_samples):  # one weight draw each (lhcbnn.draws)
                cdf, log_density = _draw_cdf_and_density(network, network(x).double(), target)
                cdfs.append(cdf)
                log_densities.append(log_density)
    finally:
        model.train(was_training)
    return torch.stack(cdfs), torch.stack(log_densities)


def predictive_cdf(model: nn.Module, x: object, target: object, n_samples: int = 50) -> np.ndarray:
    r"""PIT values :math:`u_i = \frac1S\sum_s F(t_i\mid x_i,\theta_s)`, shape ``(batch,)``.

    Works for a heteroskedastic Gaussian head (:math:`F` the normal CDF) and for a
    Gaussian-mixture head (:math:`F=\sum_k\alpha_k\Phi((t-m_k)/\sigma_k)`); a deterministic
    model is one draw.

    Args:
        model: a one-target regression model of :mod:`lhcbnn` with a width output.
        x: inputs ``(batch, n_in)``.
        target: true labels ``(batch,)`` in the units the network was trained on.
        n_samples: weight draws.
    """
    cdfs, _ = _over_draws(model, x, target, n_samples)
    return cdfs.mean(0).cpu().numpy()


def predictive_nll(model: nn.Module, x: object, target: object, n_samples: int = 50) -> float:
    r"""Mean held-out NLL of the predictive distribution,
    :math:`-\frac1N\sum_i\log\big(\frac1S\sum_s p(t_i\mid x_i,\theta_s)\big)` (nats per point).
    """
    _, log_densities = _over_draws(model, x, target, n_samples)
    log_mix = torch.logsumexp(log_densities, dim=0) - math.log(log_densities.shape[0])
    return float(-log_mix.mean())


def coverage(pit: object, level: float) -> float:
    r"""Fraction of labels inside the central interval of probability ``level``:
    :math:`|u - \tfrac12| \le \mathrm{level}/2` for PIT values :math:`u`."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    u = finite_array(pit, "pit", flatten=True)
    if ((u < 0) | (u > 1)).any():
        raise ValueError("PIT values must lie in [0, 1]")
    return float(np.mean(np.abs(u - 0.5) <= level / 2))


def pit_histogram(pit: object, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Density of the PIT values in ``n_bins`` equal bins (1 everywhere when calibrated),
    with its Poisson error: ``(density, error)``, each ``(n_bins,)``."""
    u = finite_array(pit, "pit", flatten=True)
    counts, _ = np.histogram(u, bins=n_bins, range=(0.0, 1.0))
    scale = n_bins / u.size
    return counts * scale, np.sqrt(counts) * scale


def rescaled_scores(
    model: nn.Module, x: object, target: object, scale: float, n_samples: int = 50
) -> dict[str, float]:
    r"""Calibration of the predictive distribution stretched about its mean by ``scale``.

    With the predictive mean :math:`\bar m` (over ``n_samples`` weight draws) and :math:`s` =
    ``scale``, the stretched distribution has

    .. math:: F_s(t) = F\big(\bar m + (t - \bar m)/s\big), \qquad
              p_s(t) = p\big(\bar m + (t - \bar m)/s\big)/s ,

    so :math:`\sigma_\mathrm{tot} \to s\,\sigma_\mathrm{tot}` and the shape is kept: the
    one-parameter recalibration of Kuleshov, Fenner, Ermon (arXiv:1807.00263) and Levi et al.
    (arXiv:1905.11659), book chapter 5.

    Returns:
        ``pull_width`` (standard deviation of :math:`(\bar m - t)/(s\,\sigma_\mathrm{tot})`),
        ``coverage_68``, ``coverage_95``, ``nll`` (nats per point) and ``beyond_5`` (fraction
        of pulls beyond 5).
    """
    from lhcbnn.predict import predict

    scale = float(scale)
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number > 0, got {scale}")
    y = finite_array(target, "target", flatten=True)
    prediction = predict(model, x, n_samples=n_samples)
    mean = prediction.mean[:, 0].double().cpu().numpy()
    sigma_tot = prediction.sigma_tot[:, 0].double().cpu().numpy()
    if mean.shape != y.shape:
        raise ValueError(f"the model predicts {mean.size} points, target has {y.size}")
    stretched = mean + (y - mean) / scale
    pit = predictive_cdf(model, x, stretched, n_samples)
    pulls = (mean - y) / (scale * sigma_tot)
    return {
        "pull_width": float(np.std(pulls)),
        "coverage_68": coverage(pit, 0.68),
        "coverage_95": coverage(pit, 0.95),
        "nll": predictive_nll(model, x, stretched, n_samples) + math.log(scale),
        "beyond_5": float(np.mean(np.abs(pulls) > 5)),
    }


def fit_scale(
    model: nn.Module,
    x: object,
    target: object,
    scales: object = None,
    n_samples: int = 50,
) -> float:
    """The ``scale`` of :func:`rescaled_scores` with the lowest NLL on held-out points
    ``(x, target)`` (validation data, never the test set), from the grid ``scales`` (default
    0.80 to 1.30 in steps of 0.02)."""
    grid = np.round(np.arange(0.80, 1.301, 0.02), 2) if scales is None else np.asarray(scales)
    grid = finite_array(grid, "scales", flatten=True)
    if grid.size == 0 or (grid <= 0).any():
        raise ValueError("scales must be a non-empty grid of positive numbers")
    nll = [rescaled_scores(model, x, target, float(s), n_samples)["nll"] for s in grid]
    return float(grid[int(np.argmin(nll))])
