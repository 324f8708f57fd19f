r"""Coupling blocks: invertible maps with a triangular Jacobian.

A coupling block splits the coordinates into a conditioning part :math:`x_c`, passed on
unchanged, and a transformed part :math:`x_t`, mapped elementwise by a monotonic function
whose parameters a small network computes from :math:`x_c` (Dinh, Sohl-Dickstein, Bengio,
RealNVP, arXiv:1605.08803):

.. math::
    y_c = x_c,\qquad y_t = g\big(x_t;\ \theta(x_c)\big),\qquad
    \log\Big|\det\frac{\partial y}{\partial x}\Big| = \sum_{i\in t}\log g'(x_i;\theta(x_c)).

The Jacobian is block-triangular, so its determinant is the product of the diagonal, and
the inverse needs only the inverse of :math:`g`, never of the network (chapter 8).

* :class:`AffineCoupling`: :math:`g(x) = x\,e^{s} + t` with the soft clamp
  :math:`s = c \tanh(s_\text{raw}/c)` of the INN papers (Ardizzone et al., arXiv:1808.04730).
* :class:`SplineCoupling`: :math:`g` a monotonic rational-quadratic spline
  (Durkan et al., arXiv:1906.04032), on a bounded interval, optionally with identity tails.

The last layer of every coupling network starts at zero, so every block starts as the
identity map; with ``bayesian=True`` the networks are built from :class:`~lhcbnn.VBLinear`.

A conditional block (``n_condition > 0``) feeds a condition :math:`c` to the network
beside :math:`x_c`, :math:`\theta(x_c, c)`: the map stays invertible in :math:`x` for every
:math:`c`, and the flow models :math:`p(x\mid c)` (the cINN of Ardizzone et al.,
arXiv:1907.02392; chapters 10 and 11). With a condition the conditioning part may be
empty, so a one-dimensional conditional flow is possible.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lhcbnn.flows.splines import rational_quadratic
from lhcbnn.layers import VBLinear

__all__ = ["AffineCoupling", "Coupling", "SplineCoupling", "coupling_network"]


def coupling_network(
    n_in: int,
    n_out: int,
    hidden: tuple[int, ...],
    *,
    bayesian: bool = False,
    prior_sigma: float = 1.0,
) -> nn.Sequential:
    """The MLP ``n_in -> hidden... -> n_out`` of a coupling block, last layer zero.

    SiLU activations; layers are :class:`~torch.nn.Linear` or, with ``bayesian=True``,
    :class:`~lhcbnn.VBLinear` with a Gaussian prior of width ``prior_sigma``. The last
    layer's weights (for VBLinear: their means) and biases start at zero, so the block
    starts as the identity and training starts from the base density.

    Shapes: input ``(batch, n_in)``, output ``(batch, n_out)``.
    """
    sizes = (n_in, *hidden, n_out)
    layers: list[nn.Module] = []
    for i, (size_in, size_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        if bayesian:
            layers.append(VBLinear(size_in, size_out, prior_sigma=prior_sigma))
        else:
            layers.append(nn.Linear(size_in, size_out))
        if i < len(sizes) - 2:
            layers.append(nn.SiLU())
    last = layers[-1]
    with torch.no_grad():
        if isinstance(last, VBLinear):
            last.weight_mu.zero_()
            last.bias_mu.zero_()
        else:
            last.weight.zero_()
            last.bias.zero_()
    return nn.Sequential(*layers)


class Coupling(nn.Module):
    """Common part of the coupling blocks: which coordinates condition, which move.

    Args:
        conditioning: indices of the coordinates passed on unchanged (at least one).
        transformed: indices of the coordinates transformed (at least one).
        n_params: parameters per transformed coordinate the network must give.
        hidden: hidden layer sizes of the network.
        bayesian, prior_sigma: see :func:`coupling_network`.
        n_condition: size of the condition fed to the network (0: unconditional). With a
            condition, ``conditioning`` may be empty.
    """

    def __init__(
        self,
        conditioning: list[int],
        transformed: list[int],
        n_params: int,
        hidden: tuple[int, ...],
        *,
        bayesian: bool = False,
        prior_sigma: float = 1.0,
        n_condition: int = 0,
    ) -> None:
        super().__init__()
        if isinstance(n_condition, bool) or not isinstance(n_condition, int) or n_condition < 0:
            raise ValueError(f"n_condition must be an integer >= 0, got {n_condition!r}")
        if not transformed or (not conditioning and n_condition == 0):
            raise ValueError(
                "a coupling needs at least one transformed coordinate and something to "
                "condition on (a conditioning coordinate or an external condition)"
            )
        self.register_buffer("conditioning", torch.tensor(conditioning, dtype=torch.long))
        self.register_buffer("transformed", torch.tensor(transformed, dtype=torch.long))
        self.n_params = n_params
        self.n_condition = n_condition
        self.network = coupling_network(
            len(conditioning) + n_condition,
            len(transformed) * n_params,
            hidden,
            bayesian=bayesian,
            prior_sigma=prior_sigma,
        )

    def _parameters_for(self, x: Tensor, condition: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(x_t (batch, n_t), params (batch, n_t, n_params))`` for inputs ``(batch, dim)``
        and, for a conditional block, the condition ``(batch, n_condition)``."""
        inputs = x[:, self.conditioning]
        if self.n_condition:
            if condition is None or condition.shape != (x.shape[0], self.n_condition):
                shape = None if condition is None else tuple(condition.shape)
                raise ValueError(
                    f"this coupling needs a condition of shape ({x.shape[0]}, "
                    f"{self.n_condition}), got {shape}"
                )
            inputs = torch.cat([inputs, condition], dim=1)
        elif condition is not None:
            raise ValueError("this coupling is unconditional but was given a condition")
        params = self.network(inputs)
        return x[:, self.transformed], params.reshape(x.shape[0], -1, self.n_params)

    def _elementwise(self, x_t: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _couple(self, x: Tensor, inverse: bool, condition: Tensor | None) -> tuple[Tensor, Tensor]:
        x_t, params = self._parameters_for(x, condition)
        y_t, log_det = self._elementwise(x_t, params, inverse)
        y = x.index_copy(1, self.transformed, y_t)
        return y, log_det.sum(dim=1)

    def forward(self, x: Tensor, condition: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(y, log|det dy/dx|)``: shapes ``(batch, dim)`` and ``(batch,)``."""
        return self._couple(x, False, condition)

    def inverse(self, y: Tensor, condition: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(x, log|det dx/dy|)``: shapes ``(batch, dim)`` and ``(batch,)``."""
        return self._couple(y, True, condition)


class AffineCoupling(Coupling):
    r"""RealNVP affine coupling, :math:`y_t = x_t\,e^{s(x_c)} + t(x_c)`.

    The log scale is soft-bounded, :math:`s = c\tanh(s_\text{raw}/c)` with
    ``clamp`` :math:`c`, so one block scales by at most :math:`e^{\pm c}` and the loss cannot
    run off to NaN through an exploding scale (arXiv:1808.04730, FrEIA's ``clamp``).
    :math:`\log|\det| = \sum_t s`.
    """

    def __init__(
        self,
        conditioning: list[int],
        transformed: list[int],
        hidden: tuple[int, ...],
        *,
        clamp: float = 2.0,
        bayesian: bool = False,
        prior_sigma: float = 1.0,
        n_condition: int = 0,
    ) -> None:
        super().__init__(
            conditioning,
            transformed,
            2,
            hidden,
            bayesian=bayesian,
            prior_sigma=prior_sigma,
            n_condition=n_condition,
        )
        if not clamp > 0:
            raise ValueError(f"clamp must be positive, got {clamp}")
        self.clamp = float(clamp)

    def _elementwise(self, x_t: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        log_scale = self.clamp * torch.tanh(params[..., 0] / self.clamp)
        shift = params[..., 1]
        if inverse:
            return (x_t - shift) * torch.exp(-log_scale), -log_scale
        return x_t * torch.exp(log_scale) + shift, log_scale


class SplineCoupling(Coupling):
    r"""Rational-quadratic spline coupling (Durkan et al., arXiv:1906.04032).

    Each transformed coordinate is mapped by its own monotonic spline with ``n_bins`` bins on
    ``[low, high]``. With ``tails=True`` the map is the identity outside the interval and the
    derivatives at both ends are fixed to 1 (continuous slope; the real line); with
    ``tails=False`` the interval is the whole domain (a box) and the end derivatives are
    learned too, so that a density can vanish or peak at an edge.
    """

    def __init__(
        self,
        conditioning: list[int],
        transformed: list[int],
        hidden: tuple[int, ...],
        *,
        n_bins: int = 8,
        low: float = -5.0,
        high: float = 5.0,
        tails: bool = True,
        bayesian: bool = False,
        prior_sigma: float = 1.0,
        n_condition: int = 0,
    ) -> None:
        if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 2:
            raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}")
        if not high > low:
            raise ValueError(f"the spline interval needs low < high, got [{low}, {high}]")
        n_derivatives = n_bins - 1 if tails else n_bins + 1
        super().__init__(
            conditioning,
            transformed,
            2 * n_bins + n_derivatives,
            hidden,
            bayesian=bayesian,
            prior_sigma=prior_sigma,
            n_condition=n_condition,
        )
        self.n_bins = n_bins
        self.low = float(low)
        self.high = float(high)
        self.tails = tails

    def _elementwise(self, x_t: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        k = self.n_bins
        widths, heights, derivatives = params[..., :k], params[..., k : 2 * k], params[..., 2 * k :]
        if self.tails:
            # Raw value 0 is slope 1: the ends join the identity tails smoothly.
            derivatives = nn.functional.pad(derivatives, (1, 1))
        if not self.tails:
            return rational_quadratic(
                x_t, widths, heights, derivatives, low=self.low, high=self.high, inverse=inverse
            )
        inside = (x_t > self.low) & (x_t < self.high)
        y_inside, log_det_inside = rational_quadratic(
            x_t, widths, heights, derivatives, low=self.low, high=self.high, inverse=inverse
        )
        y_t = torch.where(inside, y_inside, x_t)
        log_det = torch.where(inside, log_det_inside, torch.zeros_like(log_det_inside))
        return y_t, log_det
