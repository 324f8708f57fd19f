"""Predictive means and the two uncertainties of a Bayesian regression network."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lhcbnn.baselines import DeepEnsemble
from lhcbnn.device import as_tensor
from lhcbnn.layers import resample

__all__ = ["Prediction", "predict", "predictive_samples", "pulls"]


@dataclass(frozen=True)
class Prediction:
    r"""Predictive summary, every field of shape ``(batch, n_out)``.

    Attributes:
        mean: :math:`\bar m = \langle m_\theta\rangle_q`.
        sigma_stoch: :math:`\sqrt{\langle\sigma^2_\theta\rangle_q}`, the aleatoric width
            learned from the noise of the training labels (0 without a variance output).
        sigma_pred: :math:`\sqrt{\langle m_\theta^2\rangle_q-\bar m^2}`, the spread over
            the weight posterior, from the limited training data.
        sigma_tot: total predictive width.
    """

    mean: Tensor
    sigma_stoch: Tensor
    sigma_pred: Tensor
    sigma_tot: Tensor


def predictive_samples(model: nn.Module, x: Tensor, n_samples: int = 50) -> tuple[Tensor, Tensor]:
    """Means and stochastic variances of ``n_samples`` weight draws.

    Every draw is one network applied to the whole batch: Bayesian layers draw their
    weights once per sample (:func:`~lhcbnn.resample`), MC dropout draws masks, and a
    :class:`~lhcbnn.baselines.DeepEnsemble` uses each member once.

    Returns:
        ``(means, variances)``, each ``(n_draws, batch, n_out)``.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    if not hasattr(model, "moments"):
        raise TypeError(
            f"{type(model).__name__} has no moments(output) method; "
            "predict() needs a regression model of lhcbnn (BayesianMLP, MCDropoutMLP, ...)"
        )
    parameter = next(model.parameters(), None)
    dtype = parameter.dtype if parameter is not None else None
    x = as_tensor(x, "x", dtype=dtype)
    was_training = model.training
    model.eval()
    means, variances = [], []
    try:
        with torch.no_grad():
            if isinstance(model, DeepEnsemble):
                for member in model.members:
                    mean, var = member.moments(member(x))
                    means.append(mean)
                    variances.append(var)
            else:
                for _ in range(n_samples):
                    resample(model)
                    mean, var = model.moments(model(x))
                    means.append(mean)
                    variances.append(var)
    finally:
        resample(model)
        model.train(was_training)
    return torch.stack(means), torch.stack(variances)


def predict(model: nn.Module, x: Tensor, n_samples: int = 50) -> Prediction:
    r"""Predictive mean, :math:`\sigma_\mathrm{stoch}`, :math:`\sigma_\mathrm{pred}` and
    :math:`\sigma_\mathrm{tot}` from ``n_samples`` weight draws.

    With draws :math:`\theta_s` giving means :math:`m_s` and variances :math:`\sigma_s^2`:

    .. math::
        \bar m = \frac1S\sum_s m_s,\quad
        \sigma^2_\mathrm{stoch} = \frac1S\sum_s\sigma_s^2,\quad
        \sigma^2_\mathrm{pred} = \frac1S\sum_s (m_s-\bar m)^2,

    and :math:`\sigma^2_\mathrm{tot}` is the variance of the predictive mixture
    :math:`\frac1S\sum_s\mathcal N(m_s,\sigma_s^2)`, computed directly as
    :math:`\frac1S\sum_s(\sigma_s^2+m_s^2)-\bar m^2`; the law of total variance makes it
    equal :math:`\sigma^2_\mathrm{stoch}+\sigma^2_\mathrm{pred}` (arXiv:2003.11099).

    Args:
        model: a regression model with ``moments(output)``.
        x: inputs ``(batch, n_in)``.
        n_samples: number of weight draws (ignored by a deep ensemble).

    Returns:
        :class:`Prediction`, each field ``(batch, n_out)``.
    """
    means, variances = predictive_samples(model, x, n_samples)
    dtype = means.dtype
    # float64 moments: the raw second moment cancels against mean^2 for large labels.
    means, variances = means.double(), variances.double()
    mean = means.mean(0)
    sigma_stoch = variances.mean(0).sqrt()
    sigma_pred = ((means - mean) ** 2).mean(0).sqrt()
    total_var = (variances + means**2).mean(0) - mean**2
    sigma_tot = total_var.clamp_min(0.0).sqrt()
    return Prediction(*(t.to(dtype) for t in (mean, sigma_stoch, sigma_pred, sigma_tot)))


def pulls(prediction: Prediction, truth: Tensor) -> Tensor:
    r"""Pulls :math:`(\bar m - t)/\sigma_\mathrm{tot}`, shape ``(batch, n_out)``.

    For a calibrated network the pulls of held-out points follow a unit Gaussian.

    Raises:
        ValueError: ``truth`` has another shape than the prediction, contains NaN, or a
            ``sigma_tot`` is zero.
    """
    if not isinstance(prediction, Prediction):
        raise TypeError(f"expected a Prediction, got {type(prediction).__name__}")
    truth = as_tensor(truth, "truth", dtype=prediction.mean.dtype)
    if truth.dim() == 1 and prediction.mean.shape[1] == 1:
        truth = truth[:, None]
    if truth.shape != prediction.mean.shape:
        raise ValueError(
            f"truth has shape {tuple(truth.shape)}, the prediction {tuple(prediction.mean.shape)}"
        )
    if (prediction.sigma_tot <= 0).any():
        raise ValueError("sigma_tot is zero for some points: pulls are undefined there")
    return (prediction.mean - truth) / prediction.sigma_tot
