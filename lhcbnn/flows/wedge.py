r"""The wedge ramp's uncertainty by error propagation of a fitted density (chapter 8).

A normalised polynomial density on :math:`[0, 1]`,

.. math::
    p(x) = 1 + \sum_{k=1}^{K} c_k\,\Big(x^k - \frac{1}{k+1}\Big),

integrates to one for every :math:`c`; the wedge ramp is :math:`K = 1`, :math:`c_1 = a = 2`.
Fitted to :math:`N` events by maximum likelihood, the coefficients have the covariance
:math:`V = H^{-1}` with the observed information
:math:`H_{jk} = \sum_i g_j(x_i) g_k(x_i) / p(x_i)^2`, :math:`g_k(x) = x^k - 1/(k+1)`, and the
density's uncertainty follows by linear propagation,

.. math::
    (\Delta p)^2(x) = g(x)^T V\, g(x).

For :math:`K = 1` this is :math:`(\Delta p)^2 = (x - \tfrac12)^2 (\Delta a)^2`, zero at exactly
:math:`x = 1/2`. If the support's ends are fitted too,
:math:`p = a x + [1 - \tfrac a2 (x_\max^2 - x_\min^2)]/(x_\max - x_\min)` adds
:math:`(1 + \tfrac a2)^2 (\Delta x_\max)^2 + (1 - \tfrac a2)^2 (\Delta x_\min)^2`
(Bellagente et al., arXiv:2104.04543): :func:`linear_density_sigma`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize

__all__ = ["PolynomialFit", "fit_polynomial_density", "linear_density_sigma"]


def linear_density_sigma(
    x: object, a: float, delta_a: float, delta_x_min: float = 0.0, delta_x_max: float = 0.0
) -> np.ndarray:
    r"""Error propagation of the normalised linear density on [0, 1], ``(m,)`` for ``x`` ``(m,)``.

    .. math::
        (\Delta p)^2 = (x - \tfrac12)^2 (\Delta a)^2 + (1 + \tfrac a2)^2 (\Delta x_\max)^2
        + (1 - \tfrac a2)^2 (\Delta x_\min)^2
    """
    x = np.asarray(x, dtype=np.float64)
    for name, value in (
        ("delta_a", delta_a),
        ("delta_x_min", delta_x_min),
        ("delta_x_max", delta_x_max),
    ):
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be finite and >= 0, got {value}")
    variance = (
        (x - 0.5) ** 2 * delta_a**2
        + (1 + a / 2) ** 2 * delta_x_max**2
        + (1 - a / 2) ** 2 * delta_x_min**2
    )
    return np.sqrt(variance)


@dataclass(frozen=True)
class PolynomialFit:
    """Maximum-likelihood fit of a normalised polynomial density on [0, 1].

    Attributes:
        coefficients: :math:`c_1..c_K`, ``(K,)``.
        covariance: their covariance from the observed information, ``(K, K)``.
    """

    coefficients: np.ndarray
    covariance: np.ndarray

    @property
    def degree(self) -> int:
        return self.coefficients.size

    def basis(self, x: object) -> np.ndarray:
        """:math:`g_k(x) = x^k - 1/(k+1)`, ``(m, K)`` for ``x`` ``(m,)``."""
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        powers = np.arange(1, self.degree + 1)
        return x[:, None] ** powers - 1.0 / (powers + 1.0)

    def density(self, x: object) -> np.ndarray:
        """The fitted density at ``x``, ``(m,)``."""
        return 1.0 + self.basis(x) @ self.coefficients

    def sigma(self, x: object) -> np.ndarray:
        r""":math:`\Delta p(x) = \sqrt{g^T V g}`, ``(m,)``."""
        g = self.basis(x)
        return np.sqrt(np.einsum("mk,kl,ml->m", g, self.covariance, g))


def fit_polynomial_density(x: object, degree: int = 1) -> PolynomialFit:
    """Fit the normalised polynomial of ``degree`` to events ``x`` ``(n,)`` in [0, 1].

    Raises ValueError for events outside [0, 1], NaN, or a degree below 1.
    """
    events = np.asarray(x, dtype=np.float64).reshape(-1)
    if isinstance(degree, bool) or not isinstance(degree, int) or degree < 1:
        raise ValueError(f"degree must be an integer >= 1, got {degree!r}")
    if events.size <= degree or not np.all(np.isfinite(events)):
        raise ValueError("need more finite events than coefficients")
    if events.min() < 0 or events.max() > 1:
        raise ValueError("events must lie in [0, 1]")
    powers = np.arange(1, degree + 1)
    g = events[:, None] ** powers - 1.0 / (powers + 1.0)

    def nll(c: np.ndarray) -> tuple[float, np.ndarray]:
        p = 1.0 + g @ c
        if np.any(p <= 0):
            return np.inf, np.zeros_like(c)
        return -float(np.log(p).sum()), -(g / p[:, None]).sum(0)

    start = np.zeros(degree)
    result = optimize.minimize(nll, start, jac=True, method="BFGS")
    if not np.all(np.isfinite(result.x)):
        raise RuntimeError("the polynomial fit did not converge")
    p = 1.0 + g @ result.x
    information = (g / p[:, None] ** 2).T @ g
    return PolynomialFit(result.x, np.linalg.inv(information))
