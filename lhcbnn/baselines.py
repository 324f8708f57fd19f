"""Non-variational baselines with the same ``predict`` interface as the BNN (chapter 3).

* MC dropout (Gal and Ghahramani, arXiv:1506.02142): dropout stays on at evaluation,
  every forward pass is one draw of Bernoulli-masked weights.
* Deep ensembles (Lakshminarayanan, Pritzel, Blundell, arXiv:1612.01474): independently
  initialised networks trained on the same data; the spread of their means estimates
  the model uncertainty.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial

import torch
from torch import Tensor, nn

from lhcbnn._validate import real_number
from lhcbnn.layers import BayesianModule, draws, is_stochastic
from lhcbnn.models import RegressionMLP

__all__ = ["MCDropout", "MCDropoutMLP", "DeepEnsemble", "DeterministicMLP"]


class MCDropout(BayesianModule):
    r"""Dropout that stays on in evaluation mode (off inside :func:`~lhcbnn.map_mode`).

    Multiplying a layer's inputs by :math:`z/(1-p)`, :math:`z\sim\mathrm{Bernoulli}(1-p)`,
    is the same as drawing the rows of the next weight matrix from a two-point
    distribution: :math:`\theta_0/(1-p)` or 0. Inside ``map_mode`` the layer is the
    identity, which is the mean of that distribution.

    In training mode every element gets its own mask (ordinary dropout). In evaluation
    mode one mask over the features serves the whole batch of a call, so one call is one
    network, as for :class:`~lhcbnn.layers.VBLinear`; inside
    :func:`~lhcbnn.fixed_draw` that mask is drawn at the first call and kept.
    """

    has_kl = False

    def __init__(self, p: float = 0.1) -> None:
        super().__init__()
        p = real_number(p, "dropout probability p")
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability p must lie in [0, 1), got {p}")
        self.p = p
        self._fixed = False
        self._mask: Tensor | None = None

    def kl(self) -> Tensor:
        return torch.zeros(())

    def fix_draw(self) -> tuple[bool, Tensor | None]:
        previous = (self._fixed, self._mask)
        self._fixed, self._mask = True, None
        return previous

    def release_draw(self, previous: object = None) -> None:
        self._fixed, self._mask = previous if previous is not None else (False, None)

    def _features_mask(self, x: Tensor) -> Tensor:
        """One scaled mask ``z/(1-p)`` of shape ``(n_features,)``."""
        keep = torch.empty(x.shape[-1], dtype=x.dtype, device=x.device).bernoulli_(1.0 - self.p)
        return keep / (1.0 - self.p)

    def forward(self, x: Tensor) -> Tensor:
        if self.use_means or self.p == 0.0:
            return x
        if self._fixed:
            if self._mask is None or self._mask.shape[0] != x.shape[-1]:
                self._mask = self._features_mask(x)
            return x * self._mask.to(x)
        if self.training:
            return nn.functional.dropout(x, self.p, training=True)
        return x * self._features_mask(x)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class DeterministicMLP(RegressionMLP):
    """Plain MLP of ``torch.nn.Linear`` layers with the BNN's output heads.

    Built by the same :class:`~lhcbnn.models.RegressionMLP` as
    :class:`~lhcbnn.models.BayesianMLP`, with ``nn.Linear`` layers.

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
        dropout = real_number(dropout, "dropout")
        after = partial(MCDropout, dropout) if dropout > 0 else None
        super().__init__(
            n_in,
            n_out,
            hidden,
            nn.Linear,
            heteroskedastic,
            n_mixture,
            activation=activation,
            after_activation=after,
        )


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
        p = real_number(p, "dropout probability p")
        if not 0.0 < p < 1.0:
            raise ValueError(f"dropout probability p must lie in (0, 1), got {p}")
        super().__init__(n_in, n_out, hidden, heteroskedastic, activation, dropout=p)


class DeepEnsemble(nn.Module):
    """An ensemble of independently initialised networks.

    In training mode ``forward`` returns the stacked outputs ``(n_members, batch,
    n_columns)`` and :meth:`nll` sums the members' NLLs, so one optimiser trains all
    members independently on the same batches.

    Predictions (:meth:`draws`, used by :func:`~lhcbnn.predict`) weight every member
    equally. The meaning of ``n_samples``: members without stochastic layers are
    deterministic and used once each (``n_samples`` is then not used); if any member
    has stochastic layers (Bayesian members, MC dropout), every member contributes
    ``n_samples`` draws, so the spread within each member is kept, and ``predict``
    averages ``n_members * n_samples`` draws.

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

    def draws(self, n_samples: int) -> Iterator[nn.Module]:
        """Networks to average over: see the class docstring for ``n_samples``."""
        per_member = n_samples if any(is_stochastic(member) for member in self.members) else 1
        for member in self.members:
            yield from draws(member, per_member)

    def moments(self, output: Tensor) -> tuple[Tensor, Tensor]:
        """Moments of one member's output ``(batch, n_columns)``."""
        return self.members[0].moments(output)

    def nll(self, output: Tensor, target: Tensor) -> Tensor:
        """Sum over members of each member's per-point NLL, ``(batch,)``."""
        return torch.stack(
            [member.nll(out, target) for member, out in zip(self.members, output, strict=True)]
        ).sum(0)
