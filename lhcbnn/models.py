"""Multilayer perceptrons with plain, heteroskedastic and mixture outputs.

One builder, :class:`RegressionMLP`, serves the Bayesian network of the book
(:class:`BayesianMLP`, chapters 2-4) and the deterministic baselines
(:class:`~lhcbnn.baselines.DeterministicMLP`, chapter 3): only the linear layer differs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import Tensor, nn

from lhcbnn._validate import positive_integer
from lhcbnn.layers import VBLinear
from lhcbnn.losses import gaussian_mixture_nll, gaussian_nll
from lhcbnn.softclip import HEAD_LOG_VAR_BOUNDS, soft_clip

__all__ = ["BayesianMLP", "OutputHead", "RegressionMLP", "make_activation"]

LinearFactory = Callable[[int, int], nn.Module]

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU, "gelu": nn.GELU}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name: relu, tanh, silu or gelu."""
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {sorted(_ACTIVATIONS)}"
        ) from None


def _clip_log_var(log_var: Tensor) -> Tensor:
    return soft_clip(log_var, *HEAD_LOG_VAR_BOUNDS)


class OutputHead:
    r"""How the raw output columns of a regression network are read.

    * plain: ``n_out`` columns, the predicted means; the likelihood is a unit-width
      Gaussian (the NLL is the MSE/2 up to a constant) and :math:`\sigma_\mathrm{stoch}=0`;
    * heteroskedastic: ``2 n_out`` columns, means then log variances
      :math:`\log\sigma^2_\mathrm{stoch}`;
    * mixture of ``K`` Gaussians (``n_out = 1``): ``3K`` columns, logits, means, log
      variances; mean and variance of the mixture are its first two moments.

    Every log-variance goes through the soft clip of :mod:`lhcbnn.softclip`
    (:data:`~lhcbnn.softclip.HEAD_LOG_VAR_BOUNDS`), here and in the losses alike, so the
    widths and the NLL stay finite in float32.
    """

    def __init__(self, n_out: int, heteroskedastic: bool = False, n_mixture: int = 0) -> None:
        if isinstance(n_mixture, bool) or not isinstance(n_mixture, int) or n_mixture < 0:
            raise ValueError(f"n_mixture must be a non-negative integer, got {n_mixture!r}")
        if n_mixture and n_out != 1:
            raise ValueError(f"a Gaussian-mixture head needs n_out=1, got n_out={n_out}")
        if n_mixture and heteroskedastic:
            raise ValueError("choose either heteroskedastic=True or n_mixture>0, not both")
        self.n_out = n_out
        self.heteroskedastic = bool(heteroskedastic)
        self.n_mixture = n_mixture

    @property
    def n_columns(self) -> int:
        """Number of raw output columns of the network."""
        if self.n_mixture:
            return 3 * self.n_mixture
        return 2 * self.n_out if self.heteroskedastic else self.n_out

    def _check(self, output: Tensor) -> None:
        if output.dim() != 2 or output.shape[1] != self.n_columns:
            raise ValueError(
                f"expected network output (batch, {self.n_columns}), got {tuple(output.shape)}"
            )

    def split_mixture(self, output: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(logits, means, log_vars)``, each ``(batch, K)``, of a mixture output."""
        self._check(output)
        k = self.n_mixture
        return output[:, :k], output[:, k : 2 * k], output[:, 2 * k :]

    def moments(self, output: Tensor) -> tuple[Tensor, Tensor]:
        r"""Predicted mean and stochastic variance, each ``(batch, n_out)``.

        For a mixture: :math:`m = \sum_k\alpha_k m_k` and
        :math:`\sigma^2 = \sum_k \alpha_k\big[\sigma_k^2 + (m_k - m)^2\big]`, the law of
        total variance written without the difference :math:`\langle t^2\rangle - m^2`,
        which cancels in float32 for labels of order 1e4 GeV.
        """
        self._check(output)
        if self.n_mixture:
            logits, means, log_vars = self.split_mixture(output)
            weights = torch.softmax(logits, dim=-1)
            mean = (weights * means).sum(-1, keepdim=True)
            spread = torch.exp(_clip_log_var(log_vars)) + (means - mean) ** 2
            return mean, (weights * spread).sum(-1, keepdim=True)
        if self.heteroskedastic:
            mean, log_var = output[:, : self.n_out], output[:, self.n_out :]
            return mean, torch.exp(_clip_log_var(log_var))
        return output, torch.zeros_like(output)

    def nll(self, output: Tensor, target: Tensor) -> Tensor:
        """Negative log-likelihood per point, ``(batch,)`` (summed over ``n_out``)."""
        self._check(output)
        if target.dim() == 1:
            target = target[:, None]
        if target.shape != (output.shape[0], self.n_out):
            raise ValueError(
                f"target must have shape ({output.shape[0]}, {self.n_out}), "
                f"got {tuple(target.shape)}"
            )
        if self.n_mixture:
            return gaussian_mixture_nll(*self.split_mixture(output), target)
        if self.heteroskedastic:
            mean, log_var = output[:, : self.n_out], output[:, self.n_out :]
            return gaussian_nll(mean, log_var, target).sum(-1)
        return gaussian_nll(output, torch.zeros_like(output), target).sum(-1)


def mlp_layers(
    widths: Sequence[int],
    linear: LinearFactory,
    activation: str = "relu",
    after_activation: Callable[[], nn.Module] | None = None,
) -> nn.Sequential:
    """Linear layers of the given widths with an activation between consecutive ones.

    Args:
        widths: ``(n_in, hidden..., n_columns)``.
        linear: ``linear(width_in, width_out)`` makes one layer (``nn.Linear``,
            :class:`~lhcbnn.layers.VBLinear`, ...).
        activation: ``relu``, ``tanh``, ``silu`` or ``gelu``.
        after_activation: optional factory of a module put after every hidden activation
            (MC dropout).
    """
    layers: list[nn.Module] = []
    for i, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(linear(width_in, width_out))
        if i < len(widths) - 2:
            layers.append(make_activation(activation))
            if after_activation is not None:
                layers.append(after_activation())
    return nn.Sequential(*layers)


class RegressionMLP(nn.Module):
    r"""A multilayer perceptron read through an :class:`OutputHead`.

    Args:
        n_in: number of input features.
        n_out: number of regression targets.
        hidden: widths of the hidden layers.
        linear: ``linear(width_in, width_out)`` makes one layer.
        heteroskedastic: also predict :math:`\log\sigma^2_\mathrm{stoch}` per target,
            so the output has ``2 n_out`` columns, means then log variances.
        n_mixture: if ``K > 0``, a Gaussian-mixture head with ``K`` components for a
            one-dimensional, non-Gaussian target (arXiv:2003.11099).
        activation: ``relu``, ``tanh``, ``silu`` or ``gelu``.
        after_activation: optional module factory put after every hidden activation.

    Shapes:
        input ``(batch, n_in)``, output ``(batch, head.n_columns)``.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        hidden: Sequence[int],
        linear: LinearFactory,
        heteroskedastic: bool = False,
        n_mixture: int = 0,
        activation: str = "relu",
        after_activation: Callable[[], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        self.n_in = positive_integer(n_in, "n_in")
        self.n_out = positive_integer(n_out, "n_out")
        try:
            hidden = tuple(positive_integer(h, "hidden width") for h in hidden)
        except (TypeError, ValueError):
            raise ValueError(
                f"hidden must be a sequence of positive integers, got {hidden!r}"
            ) from None
        self.head = OutputHead(self.n_out, heteroskedastic, n_mixture)
        widths = (self.n_in, *hidden, self.head.n_columns)
        self.net = mlp_layers(widths, linear, activation, after_activation)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"expected input (batch, {self.n_in}), got {tuple(x.shape)}")
        return self.net(x)

    def moments(self, output: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and stochastic variance of one forward pass, each ``(batch, n_out)``."""
        return self.head.moments(output)

    def nll(self, output: Tensor, target: Tensor) -> Tensor:
        """Negative log-likelihood per point, ``(batch,)``."""
        return self.head.nll(output, target)


class BayesianMLP(RegressionMLP):
    r"""Multilayer perceptron of :class:`~lhcbnn.layers.VBLinear` layers.

    Args:
        n_in: number of input features.
        n_out: number of regression targets.
        hidden: widths of the hidden layers.
        prior_sigma: width of the Gaussian weight prior of every layer.
        heteroskedastic: also predict :math:`\log\sigma^2_\mathrm{stoch}` per target,
            so the output has ``2 n_out`` columns, means then log variances.
        n_mixture: if ``K > 0``, a Gaussian-mixture head with ``K`` components for a
            one-dimensional, non-Gaussian target (arXiv:2003.11099).
        activation: ``relu``, ``tanh``, ``silu`` or ``gelu``.

    Shapes:
        input ``(batch, n_in)``, output ``(batch, head.n_columns)``.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        hidden: Sequence[int] = (64, 64),
        prior_sigma: float = 1.0,
        heteroskedastic: bool = False,
        n_mixture: int = 0,
        activation: str = "relu",
    ) -> None:
        linear = partial(VBLinear, prior_sigma=prior_sigma)
        super().__init__(n_in, n_out, hidden, linear, heteroskedastic, n_mixture, activation)
