"""Loss functions of Bayesian networks, each checked against a closed form in the tests.

References:
    Blundell et al., "Weight Uncertainty in Neural Networks", arXiv:1505.05424 (ELBO).
    Kasieczka, Luchmann, Otterpohl, Plehn, arXiv:2003.11099 (heteroskedastic BNN loss,
    Gaussian-mixture likelihood for top-jet regression).
    Plehn et al., "Modern Machine Learning for LHC Physicists", arXiv:2211.01421.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lhcbnn._validate import positive_integer, positive_number
from lhcbnn.softclip import HEAD_LOG_VAR_BOUNDS, soft_clip

__all__ = [
    "kl_gaussian",
    "gaussian_nll",
    "gaussian_mixture_nll",
    "neg_elbo",
    "l2_lambda",
]

_LOG_2PI = math.log(2.0 * math.pi)


def _check_finite(name: str, tensor: Tensor) -> None:
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def _check_positive(name: str, value: Tensor | float) -> None:
    if isinstance(value, Tensor):
        if not torch.isfinite(value).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        if (value <= 0).any():
            raise ValueError(f"{name} must be positive (a width), got a value <= 0")
    else:
        positive_number(value, name)


def _check_same_shape(**tensors: Tensor) -> None:
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        described = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise ValueError(f"shapes do not match: {described}")


def kl_gaussian(
    mu_q: Tensor | float,
    sigma_q: Tensor | float,
    mu_p: Tensor | float = 0.0,
    sigma_p: Tensor | float = 1.0,
) -> Tensor:
    r"""Closed-form KL divergence between two univariate Gaussians, elementwise.

    .. math::
        D_\mathrm{KL}[\mathcal N(\mu_q,\sigma_q^2)\,\|\,\mathcal N(\mu_p,\sigma_p^2)]
        = \frac{\sigma_q^2 - \sigma_p^2 + (\mu_q-\mu_p)^2}{2\sigma_p^2}
          + \log\frac{\sigma_p}{\sigma_q}

    (the Gaussian-prior KL of the BNN loss, Plehn et al. arXiv:2211.01421).

    Args:
        mu_q, sigma_q: mean and width of q, any broadcastable shapes.
        mu_p, sigma_p: mean and width of p (the prior).

    Returns:
        The KL of every element, broadcast shape; sum it for a layer.

    Raises:
        ValueError: a width is zero, negative or not finite.
    """
    values = (mu_q, sigma_q, mu_p, sigma_p)
    # The dtype comes from the tensor arguments; Python numbers are converted at that dtype,
    # so a float64 KL sees the prior width 0.3 itself, not its float32 rounding.
    dtype = torch.get_default_dtype()
    for value in values:
        if isinstance(value, Tensor) and value.is_floating_point():
            dtype = torch.promote_types(dtype, value.dtype)
    mu_q, sigma_q, mu_p, sigma_p = (torch.as_tensor(value, dtype=dtype) for value in values)
    _check_positive("sigma_q", sigma_q)
    _check_positive("sigma_p", sigma_p)
    _check_finite("mu_q", mu_q)
    _check_finite("mu_p", mu_p)
    variance_ratio = (sigma_q / sigma_p) ** 2
    return 0.5 * (variance_ratio + ((mu_q - mu_p) / sigma_p) ** 2 - 1.0 - torch.log(variance_ratio))


def gaussian_nll(mean: Tensor, log_var: Tensor, target: Tensor) -> Tensor:
    r"""Heteroskedastic Gaussian negative log-likelihood, elementwise.

    .. math::
        -\log\mathcal N(t\mid m,\sigma^2)
        = \tfrac12\log 2\pi + \tfrac12\log\sigma^2 + \frac{(t-m)^2}{2\sigma^2}

    with the network predicting ``log_var`` :math:`=\log\sigma^2` (arXiv:2003.11099;
    chapter 4). Dropping the :math:`\log\sigma^2` term would let the network inflate
    :math:`\sigma` without cost; dropping the constant changes nothing but the ELBO's value.
    ``log_var`` goes through the soft clip of :mod:`lhcbnn.softclip` (the identity for
    :math:`|\log\sigma^2| \le 28`), so the NLL stays finite in float32, as the widths
    of the output head do.

    Args:
        mean: predicted means, shape ``(batch, n_out)``.
        log_var: predicted log variances, same shape.
        target: labels, same shape.

    Returns:
        The NLL of every element, shape ``(batch, n_out)``.

    Raises:
        ValueError: shapes differ, or a target is NaN or infinite.
    """
    _check_same_shape(mean=mean, log_var=log_var, target=target)
    _check_finite("target", target)
    log_var = soft_clip(log_var, *HEAD_LOG_VAR_BOUNDS)
    return 0.5 * (_LOG_2PI + log_var + (target - mean) ** 2 * torch.exp(-log_var))


def gaussian_mixture_nll(logits: Tensor, means: Tensor, log_vars: Tensor, target: Tensor) -> Tensor:
    r"""Negative log-likelihood of a one-dimensional Gaussian mixture, per point.

    .. math::
        -\log \sum_{k=1}^K \alpha_k\,\mathcal N(t\mid m_k,\sigma_k^2),\qquad
        \alpha_k = \mathrm{softmax}(\mathrm{logits})_k

    evaluated with ``log_softmax`` and ``logsumexp`` so that no weight underflows
    (the mixture likelihood for non-Gaussian top-pT labels, arXiv:2003.11099); the log
    variances go through the same soft clip as in :func:`gaussian_nll`.

    Args:
        logits: unnormalised log weights, shape ``(batch, K)``.
        means: component means, shape ``(batch, K)``.
        log_vars: component log variances, shape ``(batch, K)``.
        target: labels, shape ``(batch,)`` or ``(batch, 1)``.

    Returns:
        The NLL of every point, shape ``(batch,)``.

    Raises:
        ValueError: shapes do not match, or a target is NaN or infinite.
    """
    _check_same_shape(logits=logits, means=means, log_vars=log_vars)
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape (batch, K), got {tuple(logits.shape)}")
    if target.dim() == 2 and target.shape[1] == 1:
        target = target[:, 0]
    if target.shape != logits.shape[:1]:
        raise ValueError(
            f"target must have shape (batch,) or (batch, 1) with batch={logits.shape[0]}, "
            f"got {tuple(target.shape)}"
        )
    _check_finite("target", target)
    log_weights = torch.log_softmax(logits, dim=-1)
    log_vars = soft_clip(log_vars, *HEAD_LOG_VAR_BOUNDS)
    component_log_prob = -0.5 * (
        _LOG_2PI + log_vars + (target[:, None] - means) ** 2 * torch.exp(-log_vars)
    )
    return -torch.logsumexp(log_weights + component_log_prob, dim=-1)


def neg_elbo(nll_mean: Tensor, kl: Tensor, n_train: int) -> Tensor:
    r"""The BNN loss per training point: the negative ELBO divided by :math:`N`.

    .. math::
        \frac{\mathcal L}{N} = \frac1N\sum_{i=1}^N \big\langle -\log p(t_i\mid x_i,\theta)
        \big\rangle_{q} + \frac{D_\mathrm{KL}[q(\theta), p(\theta)]}{N}

    A mini-batch estimates the first term by its mean NLL; the KL is divided by the size
    of the training set :math:`N`, never by the batch size (Blundell et al.,
    arXiv:1505.05424; chapter 2): dividing by the batch size weights the prior
    :math:`N/B` times too much.

    Args:
        nll_mean: the batch mean of the per-point NLL, a scalar.
        kl: the summed KL of all Bayesian layers, a scalar.
        n_train: the number of training points :math:`N`.
    """
    n_train = positive_integer(n_train, "n_train")
    return nll_mean + kl / n_train


def l2_lambda(prior_sigma: float, n_train: int) -> float:
    r"""The L2 coefficient the BNN loss turns into when :math:`q \to \delta`.

    For :math:`\sigma_q\to 0` the prior KL per training point becomes
    :math:`\theta^2/(2\sigma_p^2 N) + \mathrm{const}`, so the loss is the mean NLL
    plus :math:`\lambda\,\theta^2` with

    .. math:: \lambda = \frac{1}{2\sigma_p^2 N}

    (Plehn et al., arXiv:2211.01421; chapter 3): the regularisation fades as the training
    set grows.
    """
    prior_sigma = positive_number(prior_sigma, "prior_sigma")
    n_train = positive_integer(n_train, "n_train")
    return 1.0 / (2.0 * prior_sigma**2 * n_train)
