r"""The one soft clip every log-variance of the package goes through.

A log-variance :math:`\ell = \log\sigma^2` is exponentiated, so an unbounded one
overflows (:math:`e^{89}` is infinite in float32) or underflows (:math:`0\cdot e^{120}`
is NaN). A hard ``clamp`` keeps it finite but has zero gradient outside its range: a
parameter that crosses the bound never comes back. The soft clip is the identity on the
working range and bends smoothly towards the bounds outside it,

.. math::
    \mathrm{clip}(\ell) = \begin{cases}
        \ell & a \le \ell \le b,\\
        b + w\,\frac{u}{1+u},\ u = \frac{\ell-b}{w} & \ell > b,\\
        a - w\,\frac{v}{1+v},\ v = \frac{a-\ell}{w} & \ell < a,
    \end{cases}
    \qquad a = \ell_\mathrm{low} + w,\ b = \ell_\mathrm{high} - w,

so its values stay inside :math:`(\ell_\mathrm{low}, \ell_\mathrm{high})`, its slope
:math:`1/(1+u)^2` is continuous and never zero (it falls like a power, not like
:math:`e^{-\ell}`), and inside :math:`[a, b]` a trained network sees exactly the
parameterisation it would see without a clip. It is the rational soft clip of zuko's
``soft_clip`` (:math:`x/(1+|x/B|)`) applied only beyond the working range.

Bounds (``w = 2``):

* the layers' weight and bias log-variances: :data:`LAYER_LOG_VAR_BOUNDS` ``(-30, 11)``,
  i.e. widths between 3e-7 and 245, identity for :math:`-28\le\ell\le 9`;
* every predicted log-variance (heteroskedastic head, mixture components, and the
  ``log_var`` argument of the losses): :data:`HEAD_LOG_VAR_BOUNDS` ``(-30, 30)``,
  widths between 3e-7 and 3e6 (labels in GeV included), identity for
  :math:`-28\le\ell\le 28`; a squared residual up to 1e25 times :math:`e^{30}` stays finite
  in float32.
"""

from __future__ import annotations

from torch import Tensor

__all__ = [
    "HEAD_LOG_VAR_BOUNDS",
    "LAYER_LOG_VAR_BOUNDS",
    "SOFTNESS",
    "soft_clip",
    "soft_clip_slope",
]

SOFTNESS = 2.0
"""Width :math:`w` of the bend between the identity and each bound."""

LAYER_LOG_VAR_BOUNDS = (-30.0, 11.0)
"""Bounds of the weight and bias log-variances of the Bayesian layers."""

HEAD_LOG_VAR_BOUNDS = (-30.0, 30.0)
"""Bounds of every predicted log-variance (the network's stochastic width)."""


def _excess(x: Tensor, low: float, high: float) -> tuple[Tensor, Tensor]:
    """``(u, v)``: how far above the upper knee and below the lower knee, in units of w."""
    upper, lower = high - SOFTNESS, low + SOFTNESS
    return (x - upper).clamp_min(0.0) / SOFTNESS, (lower - x).clamp_min(0.0) / SOFTNESS


def soft_clip(x: Tensor, low: float, high: float) -> Tensor:
    r"""Soft clip of ``x`` into ``(low, high)``, the identity on ``[low + w, high - w]``.

    Elementwise, any shape; differentiable by autograd. ``high - low`` must exceed ``2 w``.
    """
    above, below = _excess(x, low, high)
    return x - SOFTNESS * above.square() / (1.0 + above) + SOFTNESS * below.square() / (1.0 + below)


def soft_clip_slope(x: Tensor, low: float, high: float) -> Tensor:
    r"""The derivative of :func:`soft_clip`, :math:`1/[(1+u)^2(1+v)^2]`, elementwise."""
    above, below = _excess(x, low, high)
    return ((1.0 + above) * (1.0 + below)).square().reciprocal()
