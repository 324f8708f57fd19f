"""The peer libraries, built the way their documentation shows, with the KL summed correctly.

Peers (installed only for the benchmarks, see ``benchmarks/requirements.txt``):

* bayesian-torch (Intel Labs): ``dnn_to_bnn`` turns an ``nn.Sequential`` of ``nn.Linear``
  layers into ``LinearReparameterization`` layers (one weight draw per forward call, the
  weight width ``softplus(rho)``), the way its README does it. Its ``get_kl_loss`` adds up
  the *mean* KL of every weight and bias tensor (``BaseVariationalLayer_.kl_div`` ends in
  ``kl.mean()``), and its README divides that by the batch size: thousands of times smaller
  than the KL of the ELBO. :func:`bayesian_torch_kl` multiplies each tensor's mean by its
  number of elements, which gives the summed KL, to be divided by ``n_train``.
* torchbnn: ``BayesLinear(prior_mu, prior_sigma, in, out)`` (one weight draw per forward
  call, the width ``exp(log_sigma)``); ``BKLLoss`` divides the summed KL by the number of
  parameters by default (``reduction='mean'``); :func:`torchbnn_kl` asks for
  ``reduction='sum'``.

Both use the same unit Gaussian prior as our layers (bayesian-torch's ``prior_variance``
is used as a standard deviation, so a prior width of 1 means the same in every library).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence

import torch
from torch import Tensor, nn

PEERS = ("bayesian-torch", "torchbnn")
"""Distribution names of the peer libraries."""

PRIOR_SIGMA = 1.0
"""Prior width used for every library in the comparisons."""


def peer_version(name: str) -> str | None:
    """Installed version of the peer ``name``, or None when it cannot be imported."""
    if name not in PEERS:
        raise ValueError(f"unknown peer {name!r}; choose one of {PEERS}")
    module = {"bayesian-torch": "bayesian_torch.layers", "torchbnn": "torchbnn"}[name]
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        return None
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def linear_mlp(widths: Sequence[int]) -> nn.Sequential:
    """``nn.Linear`` layers of the given widths with ReLU between them.

    Args:
        widths: ``(n_in, hidden..., n_out)``.
    """
    layers: list[nn.Module] = []
    for i, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(width_in, width_out))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def bayesian_torch_mlp(widths: Sequence[int]) -> nn.Sequential:
    """The MLP of :func:`linear_mlp` converted with bayesian-torch's ``dnn_to_bnn``.

    The prior and posterior settings are the ``const_bnn_prior_parameters`` of the
    bayesian-torch README (posterior means initialised around 0, ``rho = -3``, i.e. an
    initial width ``softplus(-3) = 0.049``), with the prior width of :data:`PRIOR_SIGMA`.
    """
    from bayesian_torch.models.dnn_to_bnn import dnn_to_bnn

    model = linear_mlp(widths)
    dnn_to_bnn(
        model,
        {
            "prior_mu": 0.0,
            "prior_sigma": PRIOR_SIGMA,
            "posterior_mu_init": 0.0,
            "posterior_rho_init": -3.0,
            "type": "Reparameterization",
            "moped_enable": False,
            "moped_delta": 0.5,
        },
    )
    return model


def bayesian_torch_kl(model: nn.Module) -> Tensor:
    r"""Summed closed-form KL of every bayesian-torch layer in ``model``, a scalar.

    bayesian-torch's ``kl_div`` returns the mean over a tensor's elements; the mean times
    the number of elements is the sum, computed with its own formula

    .. math:: \log\frac{\sigma_p}{\sigma_q} + \frac{\sigma_q^2 + (\mu_q-\mu_p)^2}{2\sigma_p^2}
              - \frac12,\qquad \sigma_q = \log(1 + e^\rho).
    """
    terms = []
    for layer in model.modules():
        if hasattr(layer, "mu_weight") and hasattr(layer, "kl_div"):
            sigma_weight = torch.log1p(torch.exp(layer.rho_weight))
            terms.append(
                layer.kl_div(
                    layer.mu_weight, sigma_weight, layer.prior_weight_mu, layer.prior_weight_sigma
                )
                * layer.mu_weight.numel()
            )
            if layer.mu_bias is not None:
                sigma_bias = torch.log1p(torch.exp(layer.rho_bias))
                terms.append(
                    layer.kl_div(
                        layer.mu_bias, sigma_bias, layer.prior_bias_mu, layer.prior_bias_sigma
                    )
                    * layer.mu_bias.numel()
                )
    if not terms:
        raise ValueError("the model has no bayesian-torch variational layers")
    return torch.stack(terms).sum()


def torchbnn_mlp(widths: Sequence[int]) -> nn.Sequential:
    """The MLP of :func:`linear_mlp` built from torchbnn ``BayesLinear`` layers.

    torchbnn's ``reset_parameters`` starts every width at ``prior_sigma`` (here 1, the
    prior of every library), as its README's networks do; the means start uniform in
    ``+- 1/sqrt(fan_in)``.
    """
    import torchbnn

    layers: list[nn.Module] = []
    for i, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(
            torchbnn.BayesLinear(
                prior_mu=0.0, prior_sigma=PRIOR_SIGMA, in_features=width_in, out_features=width_out
            )
        )
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def torchbnn_kl(model: nn.Module) -> Tensor:
    """Summed KL of every torchbnn layer (``BKLLoss(reduction='sum')``), a scalar."""
    import torchbnn

    return torchbnn.BKLLoss(reduction="sum", last_layer_only=False)(model).reshape(())
