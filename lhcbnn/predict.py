"""Predictive means and the two uncertainties of a Bayesian regression network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from lhcbnn._validate import positive_integer
from lhcbnn.device import as_tensor
from lhcbnn.layers import draws

__all__ = ["Prediction", "PredictionArrays", "predict", "predictive_samples", "pulls"]


class PredictionArrays(NamedTuple):
    """The fields of a :class:`Prediction` as NumPy arrays, each ``(batch, n_out)``."""

    mean: np.ndarray
    sigma_stoch: np.ndarray
    sigma_pred: np.ndarray
    sigma_tot: np.ndarray


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

    def numpy(self) -> PredictionArrays:
        """All four fields as NumPy arrays (moved to the CPU) in one call::

        mean, sigma_stoch, sigma_pred, sigma_tot = lb.predict(model, x).numpy()
        """
        return PredictionArrays(
            *(
                field.detach().cpu().numpy()
                for field in (self.mean, self.sigma_stoch, self.sigma_pred, self.sigma_tot)
            )
        )


def _model_tensor(model: nn.Module, x: object, name: str) -> Tensor:
    """``x`` as a tensor on the device and in the dtype of ``model``'s parameters."""
    parameter = next(model.parameters(), None)
    if parameter is None:
        return as_tensor(x, name)
    return as_tensor(x, name, dtype=parameter.dtype, device=parameter.device)


def predictive_samples(model: nn.Module, x: Tensor, n_samples: int = 50) -> tuple[Tensor, Tensor]:
    """Means and stochastic variances of the networks drawn from ``model``.

    The draws come from :func:`lhcbnn.draws`: for a Bayesian network (or MC dropout)
    ``n_samples`` weight draws, each one network applied to the whole batch; a
    :class:`~lhcbnn.baselines.DeepEnsemble` states its own meaning of ``n_samples``
    (its members once each, or ``n_samples`` draws per stochastic member). ``x`` goes
    to the device and dtype of the model's parameters.

    Returns:
        ``(means, variances)``, each ``(n_draws, batch, n_out)``.
    """
    n_samples = positive_integer(n_samples, "n_samples")
    if not hasattr(model, "moments"):
        raise TypeError(
            f"{type(model).__name__} has no moments(output) method; "
            "predict() needs a regression model of lhcbnn (BayesianMLP, MCDropoutMLP, ...)"
        )
    x = _model_tensor(model, x, "x")
    was_training = model.training
    model.eval()
    means, variances = [], []
    try:
        with torch.no_grad():
            for network in draws(model, n_samples):
                mean, var = network.moments(network(x))
                means.append(mean)
                variances.append(var)
    finally:
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
    :math:`\frac1S\sum_s\mathcal N(m_s,\sigma_s^2)`, by the law of total variance
    :math:`\sigma^2_\mathrm{stoch}+\sigma^2_\mathrm{pred}` (arXiv:2003.11099; chapter 4),
    computed from the deviations :math:`m_s-\bar m`, never as the difference of raw second
    moments, which cancels for labels in GeV.

    Args:
        model: a regression model with ``moments(output)``.
        x: inputs ``(batch, n_in)``.
        n_samples: number of weight draws (for a deep ensemble see
            :class:`~lhcbnn.baselines.DeepEnsemble`).

    Returns:
        :class:`Prediction`, each field ``(batch, n_out)``.
    """
    means, variances = predictive_samples(model, x, n_samples)
    dtype = means.dtype
    # float64 sums, so that the averages over many draws do not depend on their order.
    means, variances = means.double(), variances.double()
    mean = means.mean(0)
    stoch_var = variances.mean(0)
    pred_var = ((means - mean) ** 2).mean(0)
    fields = (mean, stoch_var.sqrt(), pred_var.sqrt(), (stoch_var + pred_var).sqrt())
    return Prediction(*(t.to(dtype) for t in fields))


def pulls(prediction: Prediction, truth: Tensor) -> Tensor:
    r"""Pulls :math:`(\bar m - t)/\sigma_\mathrm{tot}`, shape ``(batch, n_out)``.

    For a calibrated network the pulls of held-out points follow a unit Gaussian.

    Raises:
        ValueError: ``truth`` has another shape than the prediction, contains NaN, or a
            ``sigma_tot`` is zero.
    """
    if not isinstance(prediction, Prediction):
        raise TypeError(f"expected a Prediction, got {type(prediction).__name__}")
    truth = as_tensor(truth, "truth", dtype=prediction.mean.dtype, device=prediction.mean.device)
    if truth.dim() == 1 and prediction.mean.shape[1] == 1:
        truth = truth[:, None]
    if truth.shape != prediction.mean.shape:
        raise ValueError(
            f"truth has shape {tuple(truth.shape)}, the prediction {tuple(prediction.mean.shape)}"
        )
    if (prediction.sigma_tot <= 0).any():
        raise ValueError("sigma_tot is zero for some points: pulls are undefined there")
    return (prediction.mean - truth) / prediction.sigma_tot
