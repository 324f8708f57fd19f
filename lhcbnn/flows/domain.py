r"""Where a flow's data live and the base density its couplings map them to (chapter 8).

The log-density of a flow is (change of variables, arXiv:1605.08803 eq. 3)

.. math::
    \log p(x) = \log p_Z\big(f(x)\big) + \log\Big|\det\frac{\partial f}{\partial x}\Big|,

with :math:`f` = couplings after a fixed preprocessing map. Three domains:

* :class:`RealDomain`: data on :math:`\mathbb R^d`, a unit Gaussian base, no preprocessing.
* :class:`BoxUniform`: data in a box :math:`[a, b]^d`; an affine map to :math:`[0, 1]^d`
  and a uniform base there, so couplings must map the unit box onto itself (splines
  without tails). Densities that vanish at an edge (the wedge ramp) cost nothing extra.
* :class:`BoxLogit`: data in a box; the affine map to :math:`[0,1]^d`, then
  :math:`\mathrm{logit}(\alpha + (1-2\alpha)u)` to the real line and a Gaussian base (the
  RealNVP preprocessing of images, 1605.08803 sec. 4.1).

Every domain checks its input: right shape, finite, and inside the box for the bounded ones.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["BoxLogit", "BoxUniform", "Domain", "RealDomain"]

_LOG_TWO_PI = math.log(2.0 * math.pi)


class Domain(nn.Module):
    """Base class: input checks, preprocessing map, base density and base sampler."""

    bounded: bool = False

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def check(self, x: Tensor, name: str = "x") -> None:
        """Raise ValueError for a wrong shape, NaN or infinite entries, or points outside."""
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"{name} must have shape (n, {self.dim}), got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or infinite values")

    def preprocess(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(u, log|det du/dx|)`` for data ``(n, dim)``: shapes ``(n, dim)``, ``(n,)``."""
        return x, x.new_zeros(x.shape[0])

    def postprocess(self, u: Tensor) -> tuple[Tensor, Tensor]:
        """Inverse of :meth:`preprocess`: ``(x, log|det dx/du|)``."""
        return u, u.new_zeros(u.shape[0])

    def base_log_prob(self, z: Tensor) -> Tensor:
        """Log-density of the base at ``z`` ``(n, dim)`` -> ``(n,)``."""
        raise NotImplementedError

    def base_sample(self, n: int, generator: torch.Generator | None, like: Tensor) -> Tensor:
        """``n`` base points ``(n, dim)`` with the dtype and device of ``like``."""
        raise NotImplementedError

    @property
    def coupling_interval(self) -> tuple[float, float, bool] | None:
        """``(low, high, tails)`` for spline couplings; None: the INN's default interval."""
        return None


class RealDomain(Domain):
    r"""Data on :math:`\mathbb R^d` and a unit Gaussian base,
    :math:`\log p_Z(z) = -|z|^2/2 - (d/2)\log 2\pi`."""

    def base_log_prob(self, z: Tensor) -> Tensor:
        return -0.5 * (z * z).sum(dim=1) - 0.5 * self.dim * _LOG_TWO_PI

    def base_sample(self, n: int, generator: torch.Generator | None, like: Tensor) -> Tensor:
        z = torch.randn(n, self.dim, generator=generator, dtype=like.dtype)
        return z.to(like.device)


class _Box(Domain):
    bounded = True

    def __init__(self, dim: int, low: float, high: float) -> None:
        super().__init__(dim)
        if not (math.isfinite(low) and math.isfinite(high) and high > low):
            raise ValueError(f"a box needs finite low < high, got [{low}, {high}]")
        self.low = float(low)
        self.high = float(high)

    def check(self, x: Tensor, name: str = "x") -> None:
        super().check(x, name)
        outside = (x < self.low) | (x > self.high)
        if outside.any():
            n_out = int(outside.any(dim=1).sum())
            raise ValueError(
                f"{n_out} point(s) of {name} lie outside the flow's domain "
                f"[{self.low}, {self.high}]^{self.dim}"
            )

    def _to_unit(self, x: Tensor) -> tuple[Tensor, Tensor]:
        width = self.high - self.low
        log_det = x.new_full((x.shape[0],), -self.dim * math.log(width))
        return (x - self.low) / width, log_det

    def _from_unit(self, u: Tensor) -> tuple[Tensor, Tensor]:
        width = self.high - self.low
        log_det = u.new_full((u.shape[0],), self.dim * math.log(width))
        return self.low + width * u, log_det


class BoxUniform(_Box):
    """Data in ``[low, high]^dim``, uniform base on the unit box; couplings on ``[0, 1]``."""

    def preprocess(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._to_unit(x)

    def postprocess(self, u: Tensor) -> tuple[Tensor, Tensor]:
        return self._from_unit(u.clamp(0.0, 1.0))

    def base_log_prob(self, z: Tensor) -> Tensor:
        return z.new_zeros(z.shape[0])

    def base_sample(self, n: int, generator: torch.Generator | None, like: Tensor) -> Tensor:
        return torch.rand(n, self.dim, generator=generator, dtype=like.dtype).to(like.device)

    @property
    def coupling_interval(self) -> tuple[float, float, bool]:
        return (0.0, 1.0, False)


class BoxLogit(_Box):
    r"""Data in ``[low, high]^dim`` mapped to the real line by a logit, Gaussian base.

    :math:`v = \alpha + (1 - 2\alpha) u`, :math:`w = \log v - \log(1 - v)`,
    :math:`\log|dw/du| = \log(1-2\alpha) - \log v - \log(1-v)` per coordinate.
    """

    def __init__(self, dim: int, low: float, high: float, alpha: float = 1e-4) -> None:
        super().__init__(dim, low, high)
        if not 0.0 < alpha < 0.5:
            raise ValueError(f"alpha must lie in (0, 0.5), got {alpha}")
        self.alpha = float(alpha)
        self._gaussian = RealDomain(dim)

    def preprocess(self, x: Tensor) -> tuple[Tensor, Tensor]:
        u, log_det = self._to_unit(x)
        v = self.alpha + (1.0 - 2.0 * self.alpha) * u
        w = torch.log(v) - torch.log1p(-v)
        log_det = log_det + (math.log(1.0 - 2.0 * self.alpha) - torch.log(v) - torch.log1p(-v)).sum(
            1
        )
        return w, log_det

    def postprocess(self, w: Tensor) -> tuple[Tensor, Tensor]:
        v = torch.sigmoid(w)
        u = ((v - self.alpha) / (1.0 - 2.0 * self.alpha)).clamp(0.0, 1.0)
        log_det = (torch.log(v) + torch.log1p(-v) - math.log(1.0 - 2.0 * self.alpha)).sum(1)
        x, log_det_box = self._from_unit(u)
        return x, log_det + log_det_box

    def base_log_prob(self, z: Tensor) -> Tensor:
        return self._gaussian.base_log_prob(z)

    def base_sample(self, n: int, generator: torch.Generator | None, like: Tensor) -> Tensor:
        return self._gaussian.base_sample(n, generator, like)
