r"""Monotonic rational-quadratic splines (Durkan, Bekasov, Murray, Papamakarios, arXiv:1906.04032).

A spline with ``K`` bins maps an interval :math:`[a, b]` onto itself. Bin :math:`k` spans
:math:`[x_k, x_{k+1}]` in the input and :math:`[y_k, y_{k+1}]` in the output, with width
:math:`w_k`, height :math:`h_k`, slope :math:`s_k = h_k / w_k` and derivatives
:math:`\delta_k, \delta_{k+1} > 0` at its knots. With :math:`\xi = (x - x_k)/w_k`
(eq. 4 of 1906.04032):

.. math::
    y = y_k + \frac{h_k\,[s_k \xi^2 + \delta_k \xi (1-\xi)]}
                   {s_k + (\delta_{k+1} + \delta_k - 2 s_k)\,\xi (1-\xi)},
    \qquad
    \frac{dy}{dx} = \frac{s_k^2\,[\delta_{k+1}\xi^2 + 2 s_k \xi(1-\xi) + \delta_k (1-\xi)^2]}
                         {[s_k + (\delta_{k+1} + \delta_k - 2 s_k)\,\xi (1-\xi)]^2}.

The inverse solves the quadratic of eq. 6-8 in its numerically stable form. Used by the
spline couplings of chapter 8.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["MIN_BIN", "MIN_DERIVATIVE", "derivative_offset", "rational_quadratic"]

MIN_BIN = 1e-3
"""Smallest bin width and height, as a fraction of the interval."""
MIN_DERIVATIVE = 1e-3
"""Smallest knot derivative: the spline stays strictly monotonic and invertible."""


def derivative_offset() -> float:
    """The raw value whose derivative is exactly 1: ``MIN_DERIVATIVE + softplus(u) = 1``.

    Added to the raw knot derivatives so that a zero-initialised network gives the identity.
    """
    return math.log(math.expm1(1.0 - MIN_DERIVATIVE))


def _knots(raw: Tensor, low: float, high: float) -> Tensor:
    """Knot positions ``(..., K + 1)`` from raw bin sizes ``(..., K)``, from low to high."""
    n_bins = raw.shape[-1]
    sizes = MIN_BIN + (1.0 - MIN_BIN * n_bins) * torch.softmax(raw, dim=-1)
    knots = F.pad(torch.cumsum(sizes, dim=-1), (1, 0), value=0.0)
    knots = low + (high - low) * knots
    # Exact ends, so that the spline maps [low, high] exactly onto itself.
    return torch.cat(
        [
            torch.full_like(knots[..., :1], low),
            knots[..., 1:-1],
            torch.full_like(knots[..., :1], high),
        ],
        dim=-1,
    )


def rational_quadratic(
    x: Tensor,
    raw_widths: Tensor,
    raw_heights: Tensor,
    raw_derivatives: Tensor,
    *,
    low: float,
    high: float,
    inverse: bool = False,
) -> tuple[Tensor, Tensor]:
    r"""The spline (or its inverse) at ``x`` and :math:`\log|dy/dx|` of the forward map.

    Args:
        x: points ``(...)`` inside ``[low, high]`` (clamped there against rounding).
        raw_widths: unnormalised bin widths ``(..., K)`` (softmax, then a minimum).
        raw_heights: unnormalised bin heights ``(..., K)``.
        raw_derivatives: unnormalised knot derivatives ``(..., K + 1)``, mapped by
            ``MIN_DERIVATIVE + softplus(raw + derivative_offset())`` (zero gives slope 1).
        low, high: the interval mapped onto itself.
        inverse: evaluate the inverse spline instead.

    Returns:
        ``(y, log_det)``, both shaped like ``x``. For ``inverse=True``, ``log_det`` is
        :math:`\log|dx/dy|` of the inverse map (minus the forward one at the same point).
    """
    widths_knots = _knots(raw_widths, low, high)
    heights_knots = _knots(raw_heights, low, high)
    derivatives = MIN_DERIVATIVE + F.softplus(raw_derivatives + derivative_offset())
    x = x.clamp(low, high)
    search = heights_knots if inverse else widths_knots
    # Bin index: number of interior knots at or below x, in 0..K-1.
    index = torch.searchsorted(
        search[..., 1:-1].contiguous(), x[..., None].contiguous(), right=True
    )
    x_k = widths_knots.gather(-1, index)[..., 0]
    w_k = widths_knots.gather(-1, index + 1)[..., 0] - x_k
    y_k = heights_knots.gather(-1, index)[..., 0]
    h_k = heights_knots.gather(-1, index + 1)[..., 0] - y_k
    d_k = derivatives.gather(-1, index)[..., 0]
    d_k1 = derivatives.gather(-1, index + 1)[..., 0]
    s_k = h_k / w_k
    curvature = d_k1 + d_k - 2.0 * s_k
    if inverse:
        shifted = x - y_k
        a = h_k * (s_k - d_k) + shifted * curvature
        b = h_k * d_k - shifted * curvature
        c = -s_k * shifted
        discriminant = (b * b - 4.0 * a * c).clamp_min(0.0)
        xi = (2.0 * c) / (-b - discriminant.sqrt())
        xi = xi.clamp(0.0, 1.0)
        output = x_k + xi * w_k
    else:
        xi = (x - x_k) / w_k
        output = y_k + h_k * (s_k * xi * xi + d_k * xi * (1.0 - xi)) / (
            s_k + curvature * xi * (1.0 - xi)
        )
    one_minus = 1.0 - xi
    denominator = s_k + curvature * xi * one_minus
    numerator = s_k * s_k * (d_k1 * xi * xi + 2.0 * s_k * xi * one_minus + d_k * one_minus**2)
    log_det = torch.log(numerator) - 2.0 * torch.log(denominator)
    if inverse:
        log_det = -log_det
    output = output.clamp(low, high)
    return output, log_det
