"""Non-variational baselines with the same ``predict`` interface as the BNN.

* MC dropout (Gal and Ghahramani, arXiv:1506.02142): dropout stays on at evaluation,
  every forward pass is one draw of Bernoulli-masked weights.
* Deep ensembles (Lakshminarayanan, Pritzel, Blundell, arXiv:1612.01474): independently
  initialised networks trained on the same data; the spread of their means estimates
  the model uncertainty.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lhcbnn.layers import BayesianModule
from lhcbnn.models import OutputHead, _check_sizes, make_activation

__all__ = ["MCDropout", "MCDropoutMLP", "DeepEnsemble", "DeterministicMLP"]


class MCDropout(BayesianModule):
    r"""Dropout that stays on in evaluation mode (off inside :func:`~lhcbnn.map_mode`).

    Multiplying a layer's inputs by :math:`z/(1-p)`, :math:`z\sim\mathrm{Bernoulli}(1-p)`,
    is the same as drawing the rows of the next weight matrix from a two-point
    distribution: :math:`\theta_0/(1-p)` or 0. Inside ``map_mode`` the layer is the
    identity, which is the mean of that distribution.
    """

    def __init__(self, p: float = 0.1) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability p must lie in [0, 1), got {p}")
        self.p = float(p)

    has_kl = False

    def kl(self) -> Tensor:
        return torch.zeros(())

    def resample(self) -> None:
        """Masks are drawn afresh on every call; nothing to forget."""

    def forward(self, x: Tensor) -> Tensor:
        if self.use_means or self.p == 0.0:
            return x
        return nn.functional.dropout(x, self.p, training=True)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class DeterministicMLP(nn.Module):
    """Plain MLP of ``torch.nn.Linear`` layers with the BNN's output heads.

    Args:
        n_in, n_out, hidden, heteroskedastic, activation, n_mixture: as for
            :class:`~lhcbnn.models.BayesianMLP`.
        dropout: if positive, an :class:`MCDropout` after every hidden activation.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        hidden: Sequence[int] = (64, 64),
        heteroskedastic: bool = False,
        activation: str = "relu",
        dropout: float = 0.0,
        n_mixture: int = 0,
    ) -> None:
        super().__init__()
        hidden = _check_sizes(n_in, n_out, hidden)
        self.head = OutputHead(n_out, heteroskedastic, n_mixture)
        self.n_in, self.n_out = n_in, n_out
        widths = (n_in, *hidden, self.head.n_columns)
        layers: list[nn.Module] = []
        for i, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers.append(nn.Linear(width_in, width_out))
            if i < len(widths) - 2:
                layers.append(make_activation(activation))
                if dropout > 0:
                    layers.append(MCDropout(dropout))
        self.net = nn.Sequential(*layers)

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


class MCDropoutMLP(DeterministicMLP):
    """An MLP with :class:`MCDropout` (probability ``p``) after every hidden layer."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        hidden: Sequence[int] = (64, 64),
        p: float = 0.1,
        heteroskedastic: bool = False,
        activation: str = "relu",
    ) -> None:
        if not 0.0 < p < 1.0:
            raise ValueError(f"dropout probability p must lie in (0, 1), got {p}")
        super().__init__(n_in, n_out, hidden, heteroskedastic, activation, dropout=p)


class DeepEnsemble(nn.Module):
    """An ensemble of independently initialised networks.

    In training mode ``forward`` returns the stacked outputs ``(n_members, batch,
    n_columns)`` and :meth:`nll` sums the members' NLLs, so one optimiser trains all
    members independently on the same batches. :func:`~lhcbnn.predict` uses each
    member once (``n_samples`` is ignored).

    Args:
        members: networks with the same output head (``moments`` and ``nll`` methods).
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        members = list(members)
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two members, got {len(members)}")
        self.members = nn.ModuleList(members)

    @classmethod
    def of_mlp(
        cls,
        n_in: int,
        n_out: int,
        n_members: int = 5,
        hidden: Sequence[int] = (64, 64),
        heteroskedastic: bool = False,
        seed: int = 0,
        activation: str = "relu",
    ) -> DeepEnsemble:
        """``n_members`` deterministic MLPs, member ``k`` initialised with seed ``seed + k``."""
        members = []
        for k in range(n_members):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed + k)
                members.append(DeterministicMLP(n_in, n_out, hidden, heteroskedastic, activation))
        return cls(members)

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack([member(x) for member in self.members])

    def member_outputs(self, x: Tensor) -> Tensor:
        """Outputs of all members, ``(n_members, batch, n_columns)``."""
        return self.forward(x)

    def moments(self, output: Tensor) -> tuple[Tensor, Tensor]:
        """Moments of one member's output ``(batch, n_columns)``."""
        return self.members[0].moments(output)

    def nll(self, output: Tensor, target: Tensor) -> Tensor:
        """Sum over members of each member's per-point NLL, ``(batch,)``."""
        return torch.stack(
            [member.nll(out, target) for member, out in zip(self.members, output, strict=True)]
        ).sum(0)
