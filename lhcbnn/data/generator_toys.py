r"""A 2D toy with a feature and a cut, for testing generators with classifier weights.

The density (chapter 9 of the book) is a mixture of a broad unit Gaussian and a narrow bump,
optionally restricted by a cut on the second coordinate,

.. math::
    p(x) = \frac{1}{Z}\Big[(1-f)\,\mathcal N(x; 0, 1_2) + f\,\mathcal N(x; \mu_b, s_b^2 1_2)\Big]
    \,\Theta(x_2 > c),

with :math:`Z = (1-f)\,\Phi(-c) + f\,\Phi((\mu_{b,2} - c)/s_b)` (:math:`\Phi` the standard
normal CDF; :math:`Z = 1` without a cut). ``bump_fraction = 0`` gives the same density
without its feature and ``cut = None`` the same density without its cut: the flawed
generators' training sets of chapter 9, each with an exact density.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from lhcbnn._validate import positive_integer, positive_number

__all__ = ["BumpWithCut", "truth", "no_bump", "no_cut"]

_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class BumpWithCut:
    r"""Broad Gaussian plus a narrow bump, cut at :math:`x_2 > c` (see the module docstring).

    Attributes:
        bump_fraction: :math:`f`, the bump's share before the cut, in [0, 1).
        bump_mean: :math:`\mu_b`, the bump's centre.
        bump_width: :math:`s_b`, its standard deviation in each coordinate.
        cut: :math:`c`; ``None`` for no cut.
    """

    bump_fraction: float = 0.15
    bump_mean: tuple[float, float] = (1.5, 1.0)
    bump_width: float = 0.25
    cut: float | None = -1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.bump_fraction < 1.0:
            raise ValueError(f"bump_fraction must lie in [0, 1), got {self.bump_fraction}")
        positive_number(self.bump_width, "bump_width")
        if self.cut is not None and not math.isfinite(self.cut):
            raise ValueError(f"cut must be finite or None, got {self.cut}")

    @property
    def normalisation(self) -> float:
        """:math:`Z`, the probability of the uncut mixture to pass the cut."""
        if self.cut is None:
            return 1.0
        f, c = self.bump_fraction, self.cut
        return float(
            (1 - f) * special.ndtr(-c) + f * special.ndtr((self.bump_mean[1] - c) / self.bump_width)
        )

    def _log_mixture(self, points: np.ndarray) -> np.ndarray:
        broad = -0.5 * (points**2).sum(1) - _LOG_2PI
        if self.bump_fraction == 0.0:
            return broad
        s = self.bump_width
        shifted = (points - np.asarray(self.bump_mean)) / s
        bump = -0.5 * (shifted**2).sum(1) - _LOG_2PI - 2.0 * math.log(s)
        return np.logaddexp(
            math.log1p(-self.bump_fraction) + broad, math.log(self.bump_fraction) + bump
        )

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """log density at ``x`` ``(m, 2)`` -> ``(m,)``, ``-inf`` where the cut removes events."""
        points = np.asarray(x, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(f"x must have shape (m, 2), got {points.shape}")
        value = self._log_mixture(points) - math.log(self.normalisation)
        if self.cut is None:
            return value
        return np.where(points[:, 1] > self.cut, value, -np.inf)

    def pdf(self, x: np.ndarray) -> np.ndarray:
        """Density at ``x`` ``(m, 2)`` -> ``(m,)``."""
        return np.exp(self.log_pdf(x))

    def pdf_x1(self, x1: np.ndarray) -> np.ndarray:
        r"""Marginal density of :math:`x_1` (the cut acts on :math:`x_2` only, so each
        component's :math:`x_1` profile is scaled by its probability to pass it)."""
        x1 = np.asarray(x1, dtype=np.float64)
        f, s = self.bump_fraction, self.bump_width
        pass_broad = 1.0 if self.cut is None else special.ndtr(-self.cut)
        pass_bump = 1.0 if self.cut is None else special.ndtr((self.bump_mean[1] - self.cut) / s)
        broad = np.exp(-0.5 * x1**2) / math.sqrt(2 * math.pi)
        bump = np.exp(-0.5 * ((x1 - self.bump_mean[0]) / s) ** 2) / (s * math.sqrt(2 * math.pi))
        return ((1 - f) * pass_broad * broad + f * pass_bump * bump) / self.normalisation

    def bin_probabilities(self, edges: np.ndarray, coordinate: int = 0) -> np.ndarray:
        r"""Exact probability of :math:`x_1` (``coordinate=0``) or :math:`x_2` (``1``) in each
        bin of ``edges`` ``(n_bins + 1,)`` -> ``(n_bins,)``: differences of the marginal CDF,
        normal CDFs of each component (for :math:`x_2` cut at :math:`c` from below)."""
        edges = np.asarray(edges, dtype=np.float64)
        if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError("edges must be an increasing 1D array of at least two values")
        if coordinate not in (0, 1):
            raise ValueError(f"coordinate must be 0 or 1, got {coordinate!r}")
        f, s = self.bump_fraction, self.bump_width
        mean = self.bump_mean[coordinate]
        if coordinate == 0:
            pass_broad = 1.0 if self.cut is None else special.ndtr(-self.cut)
            pass_bump = (
                1.0 if self.cut is None else special.ndtr((self.bump_mean[1] - self.cut) / s)
            )
            cdf_broad, cdf_bump = special.ndtr(edges), special.ndtr((edges - mean) / s)
        else:
            pass_broad = pass_bump = 1.0
            low = edges if self.cut is None else np.maximum(edges, self.cut)
            cdf_broad = special.ndtr(low)
            cdf_bump = special.ndtr((low - mean) / s)
        cdf = ((1 - f) * pass_broad * cdf_broad + f * pass_bump * cdf_bump) / self.normalisation
        return np.diff(cdf)

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` events ``(n, 2)`` float64 (rejection on the cut), seeded by ``seed``."""
        n = positive_integer(n, "n")
        rng = np.random.default_rng(seed)
        events = np.empty((0, 2))
        while events.shape[0] < n:
            n_try = int(1.3 * (n - events.shape[0])) + 16
            from_bump = rng.random(n_try) < self.bump_fraction
            z = rng.standard_normal((n_try, 2))
            x = np.where(from_bump[:, None], np.asarray(self.bump_mean) + self.bump_width * z, z)
            if self.cut is not None:
                x = x[x[:, 1] > self.cut]
            events = np.concatenate([events, x])
        return events[:n]


truth = BumpWithCut()
"""The chapter's truth: a bump of 15% at (1.5, 1.0) on a unit Gaussian, cut at x2 > -1."""
no_bump = BumpWithCut(bump_fraction=0.0)
"""The truth without its bump (the generator that misses a feature learns this)."""
no_cut = BumpWithCut(cut=None)
"""The truth without its cut (the generator that ignores the cut learns this)."""
