r"""Toy data with exact densities: the Bayesian-INN 2D toys, a tagging toy, a regression toy.

Every toy is seeded (``numpy.random.default_rng(seed)``) and returns float64 numpy arrays; convert
them with ``lhcbnn.as_tensor`` or ``torch.as_tensor(..., device=lhcbnn.device())``.

2D densities of the Bayesian INN (Bellagente, Haussmann, Luchmann, Plehn, arXiv:2104.04543),
normalised over the whole plane (zero outside their support):

* ``wedge_ramp``: :math:`p(x_1, x_2) = 2 x_1` on :math:`[0, 1]^2` (linear ramp, flat in x2);
* ``kicker_ramp``: :math:`p(x_1, x_2) = 3 x_1^2` on :math:`[0, 1]^2` (quadratic ramp);
* ``gaussian_ring``: :math:`p(x) = \exp[-(|x| - r_0)^2 / (2 w^2)] / Z` with radius
  :math:`r_0 = 1` and radial width :math:`w = 0.1`, flat in the angle;
  :math:`Z = 2\pi\,[w^2 e^{-r_0^2/(2w^2)} + \sqrt{2\pi}\, w\, r_0\, \Phi(r_0/w)]` makes it
  integrate to one over :math:`\mathbb{R}^2` (:math:`\Phi` the standard normal CDF).

Each has ``sample(n, seed=0) -> (n, 2)`` and ``pdf(x)`` for ``(m, 2)`` points.

``tagging_toy`` is a two-class problem with Gaussian class densities, so the optimal
(Neyman-Pearson) classifier, the likelihood ratio and its AUC are known exactly.

``HeteroskedasticToy`` (from :mod:`lhcbnn.data.regression`) is the 1D regression toy with known
mean f(x) and noise sigma(x).

``get(name)`` (alias ``toy``) looks a toy up by name; ``names()`` lists them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from lhcbnn._validate import positive_integer, positive_number
from lhcbnn.data.regression import HeteroskedasticToy

__all__ = [
    "HeteroskedasticToy",
    "PowerRamp",
    "GaussianRing",
    "TwoGaussianClasses",
    "wedge_ramp",
    "kicker_ramp",
    "gaussian_ring",
    "tagging_toy",
    "regression_toy",
    "get",
    "toy",
    "names",
]


def _check_n(n: int) -> int:
    """``n`` as a Python int; TypeError if not an integer, ValueError if n <= 0."""
    return positive_integer(n, "n")


def _check_points(x: np.ndarray, dim: int = 2) -> np.ndarray:
    """``x`` as a float64 (m, dim) array; ValueError naming the shape otherwise."""
    points = np.asarray(x, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != dim:
        raise ValueError(f"x must have shape (m, {dim}), got {points.shape}")
    return points


@dataclass(frozen=True)
class PowerRamp:
    r"""Density :math:`p(x_1, x_2) = (k + 1)\, x_1^k` on the unit square, zero elsewhere.

    ``power=1`` is the wedge ramp, ``power=2`` the kicker ramp of arXiv:2104.04543. The second
    coordinate is uniform on [0, 1]. Samples use the inverse CDF :math:`x_1 = u^{1/(k+1)}`.
    """

    power: int
    name: str = "power_ramp"

    @property
    def bounds(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """The support ((x1_min, x1_max), (x2_min, x2_max))."""
        return ((0.0, 1.0), (0.0, 1.0))

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` points, (n, 2) float64, seeded with ``numpy.random.default_rng(seed)``."""
        n = _check_n(n)
        uniform = np.random.default_rng(seed).random((n, 2))
        uniform[:, 0] = uniform[:, 0] ** (1.0 / (self.power + 1))
        return uniform

    def pdf(self, x: np.ndarray) -> np.ndarray:
        """Density at ``x`` (m, 2) -> (m,), zero outside [0, 1]^2."""
        points = _check_points(x)
        inside = np.all((points >= 0.0) & (points <= 1.0), axis=1)
        return np.where(inside, (self.power + 1) * np.clip(points[:, 0], 0, 1) ** self.power, 0.0)

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """log of :meth:`pdf`, -inf outside the support, (m,)."""
        with np.errstate(divide="ignore"):
            return np.log(self.pdf(x))

    def pdf_x1(self, x1: np.ndarray) -> np.ndarray:
        r"""Marginal density of the first coordinate, :math:`(k+1) x_1^k` on [0, 1], same shape."""
        x1 = np.asarray(x1, dtype=np.float64)
        inside = (x1 >= 0.0) & (x1 <= 1.0)
        return np.where(inside, (self.power + 1) * np.clip(x1, 0, 1) ** self.power, 0.0)


@dataclass(frozen=True)
class GaussianRing:
    r"""Density :math:`p(x) = \exp[-(|x| - r_0)^2 / (2 w^2)] / Z` on the plane, flat in angle.

    :math:`Z = \int d^2x\, e^{-(|x|-r_0)^2/(2w^2)}
    = 2\pi\,[w^2 e^{-r_0^2/(2w^2)} + \sqrt{2\pi}\, w\, r_0\, \Phi(r_0/w)]`
    (substitute :math:`s = r - r_0` in :math:`2\pi\int_0^\infty r\,e^{-(r-r_0)^2/(2w^2)}dr`).
    The radius has density :math:`2\pi r\, p(r)` on r > 0: it is sampled exactly by rejection from
    the envelope :math:`(r_0 + |r - r_0|)\, e^{-(r-r_0)^2/(2w^2)}` (a Gaussian plus a two-sided
    Rayleigh), accepting with probability :math:`r / (r_0 + |r - r_0|)`.
    """

    radius: float = 1.0
    width: float = 0.1
    name: str = "gaussian_ring"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.radius) and self.radius >= 0.0):
            raise ValueError(f"radius must be finite and >= 0, got {self.radius}")
        positive_number(self.width, "width")

    @property
    def bounds(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """A square holding all but ~1e-12 of the probability: radius + 7 widths."""
        edge = self.radius + 7.0 * self.width
        return ((-edge, edge), (-edge, edge))

    @property
    def normalisation(self) -> float:
        """Z, the integral of the unnormalised density over the plane."""
        r0, w = self.radius, self.width
        return (
            2.0
            * math.pi
            * (
                w**2 * math.exp(-(r0**2) / (2.0 * w**2))
                + math.sqrt(2.0 * math.pi) * w * r0 * special.ndtr(r0 / w)
            )
        )

    def pdf(self, x: np.ndarray) -> np.ndarray:
        """Density at ``x`` (m, 2) -> (m,)."""
        return np.exp(self.log_pdf(x))

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """log density at ``x`` (m, 2) -> (m,)."""
        points = _check_points(x)
        r = np.hypot(points[:, 0], points[:, 1])
        return -((r - self.radius) ** 2) / (2.0 * self.width**2) - math.log(self.normalisation)

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` points, (n, 2) float64, seeded with ``numpy.random.default_rng(seed)``."""
        n = _check_n(n)
        rng = np.random.default_rng(seed)
        r0, w = self.radius, self.width
        mass_gauss = r0 * w * math.sqrt(2.0 * math.pi)
        mass_rayleigh = 2.0 * w**2
        p_gauss = mass_gauss / (mass_gauss + mass_rayleigh)
        radii = np.empty(0)
        while radii.size < n:
            n_try = int(1.15 * (n - radii.size)) + 16
            shift = np.where(
                rng.random(n_try) < p_gauss,
                w * rng.standard_normal(n_try),
                w * np.sqrt(-2.0 * np.log1p(-rng.random(n_try))) * rng.choice([-1.0, 1.0], n_try),
            )
            r = r0 + shift
            accept = (r > 0.0) & (rng.random(n_try) * (r0 + np.abs(shift)) < r)
            radii = np.concatenate([radii, r[accept]])
        radii = radii[:n]
        angle = rng.uniform(0.0, 2.0 * math.pi, n)
        return np.stack([radii * np.cos(angle), radii * np.sin(angle)], axis=1)

    def pdf_radius(self, r: np.ndarray) -> np.ndarray:
        r"""Density of :math:`|x|`, :math:`2\pi r\, p(r)` for r >= 0, same shape as ``r``."""
        r = np.asarray(r, dtype=np.float64)
        density = (
            2.0
            * math.pi
            * r
            * np.exp(-((r - self.radius) ** 2) / (2.0 * self.width**2))
            / self.normalisation
        )
        return np.where(r >= 0.0, density, 0.0)


@dataclass(frozen=True)
class TwoGaussianClasses:
    r"""Two-class tagging toy: signal :math:`\mathcal N(\mu_s, \Sigma_s)`, background
    :math:`\mathcal N(\mu_b, \Sigma_b)` in d dimensions.

    The Neyman-Pearson lemma makes the likelihood ratio :math:`p_s(x)/p_b(x)` the optimal test
    statistic; for a signal fraction f the Bayes-optimal classifier is
    :math:`C(x) = f p_s / (f p_s + (1-f) p_b)`, and :math:`C/(1-C) = f p_s / ((1-f) p_b)`.
    :meth:`optimal_auc` is the AUC of the likelihood ratio (the best any classifier can reach).
    For equal covariances it equals :math:`\Phi(\Delta/\sqrt 2)` with the Mahalanobis distance
    :math:`\Delta^2 = (\mu_s-\mu_b)^T \Sigma^{-1} (\mu_s-\mu_b)`.

    Defaults (2D): background :math:`\mathcal N(0, 1)`, signal centred at (1, 0.5) with standard
    deviations (0.6, 1.4) and correlation 0.3, so the optimal decision boundary is curved.
    """

    mean_signal: tuple[float, ...] = (1.0, 0.5)
    cov_signal: tuple[tuple[float, ...], ...] = ((0.36, 0.252), (0.252, 1.96))
    mean_background: tuple[float, ...] = (0.0, 0.0)
    cov_background: tuple[tuple[float, ...], ...] = ((1.0, 0.0), (0.0, 1.0))
    name: str = "tagging_toy"

    def __post_init__(self) -> None:
        dim = len(self.mean_signal)
        if len(self.mean_background) != dim:
            raise ValueError("mean_signal and mean_background must have the same length")
        covariances = {"cov_signal": self.cov_signal, "cov_background": self.cov_background}
        for label, cov in covariances.items():
            matrix = np.asarray(cov, dtype=np.float64)
            if matrix.shape != (dim, dim):
                raise ValueError(f"{label} must have shape ({dim}, {dim}), got {matrix.shape}")
            if not np.allclose(matrix, matrix.T) or np.linalg.eigvalsh(matrix).min() <= 0.0:
                raise ValueError(f"{label} must be symmetric positive definite")

    @property
    def dim(self) -> int:
        """Number of features d."""
        return len(self.mean_signal)

    def _log_gauss(self, points: np.ndarray, mean: tuple, cov: tuple) -> np.ndarray:
        mean_arr = np.asarray(mean, dtype=np.float64)
        chol = np.linalg.cholesky(np.asarray(cov, dtype=np.float64))
        z = np.linalg.solve(chol, (points - mean_arr).T)
        log_det = 2.0 * np.sum(np.log(np.diag(chol)))
        return -0.5 * (np.sum(z**2, axis=0) + log_det + self.dim * math.log(2.0 * math.pi))

    def log_pdf_signal(self, x: np.ndarray) -> np.ndarray:
        """log p_s(x) for x (m, d) -> (m,)."""
        return self._log_gauss(_check_points(x, self.dim), self.mean_signal, self.cov_signal)

    def log_pdf_background(self, x: np.ndarray) -> np.ndarray:
        """log p_b(x) for x (m, d) -> (m,)."""
        return self._log_gauss(
            _check_points(x, self.dim), self.mean_background, self.cov_background
        )

    def pdf_signal(self, x: np.ndarray) -> np.ndarray:
        """p_s(x) for x (m, d) -> (m,)."""
        return np.exp(self.log_pdf_signal(x))

    def pdf_background(self, x: np.ndarray) -> np.ndarray:
        """p_b(x) for x (m, d) -> (m,)."""
        return np.exp(self.log_pdf_background(x))

    def log_likelihood_ratio(self, x: np.ndarray) -> np.ndarray:
        """log [p_s(x) / p_b(x)] for x (m, d) -> (m,)."""
        return self.log_pdf_signal(x) - self.log_pdf_background(x)

    def likelihood_ratio(self, x: np.ndarray) -> np.ndarray:
        """p_s(x) / p_b(x) for x (m, d) -> (m,)."""
        return np.exp(self.log_likelihood_ratio(x))

    def optimal_classifier(self, x: np.ndarray, signal_fraction: float = 0.5) -> np.ndarray:
        """Bayes-optimal C(x) = f p_s / (f p_s + (1 - f) p_b) for x (m, d) -> (m,) in [0, 1]."""
        if not 0.0 < signal_fraction < 1.0:
            raise ValueError(f"signal_fraction must be in (0, 1), got {signal_fraction}")
        logit = self.log_likelihood_ratio(x) + math.log(signal_fraction / (1.0 - signal_fraction))
        return special.expit(logit)

    def sample(
        self, n: int, seed: int = 0, signal_fraction: float = 0.5
    ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` labelled points: ``(x (n, d) float64, labels (n,) float64)``, 1.0 = signal.

        Exactly ``round(signal_fraction * n)`` points are signal; the order is shuffled.
        """
        n = _check_n(n)
        if not 0.0 <= signal_fraction <= 1.0:
            raise ValueError(f"signal_fraction must be in [0, 1], got {signal_fraction}")
        rng = np.random.default_rng(seed)
        n_signal = int(round(signal_fraction * n))
        labels = np.zeros(n)
        labels[rng.permutation(n)[:n_signal]] = 1.0
        z = rng.standard_normal((n, self.dim))
        x = np.where(
            labels[:, None] == 1.0,
            self._transform(z, self.mean_signal, self.cov_signal),
            self._transform(z, self.mean_background, self.cov_background),
        )
        return x, labels

    @staticmethod
    def _transform(z: np.ndarray, mean: tuple, cov: tuple) -> np.ndarray:
        """mean + L z for standard normal z (n, d), L the Cholesky factor of cov: (n, d)."""
        chol = np.linalg.cholesky(np.asarray(cov, dtype=np.float64))
        # einsum: numpy's matmul is slow for an (n, 2) x (2, 2) product.
        return np.asarray(mean, dtype=np.float64) + np.einsum("nk,dk->nd", z, chol)

    def optimal_auc(self, n_grid: int = 801) -> float:
        r"""AUC of the likelihood ratio, the Neyman-Pearson limit (2D toys only).

        :math:`\mathrm{AUC} = P(\lambda(x_s) > \lambda(x_b)) = \int dx\, p_s(x)\,
        F_b(\lambda(x))`, with :math:`F_b(t) = P_b(\lambda < t)`; evaluated with the midpoint
        rule on an ``n_grid`` x ``n_grid`` grid covering +-9 standard deviations of both classes:
        cells sorted by :math:`\lambda`, cumulative background mass below each cell (ties count
        one half). The grid error is below 1e-5 at the default resolution.
        """
        if self.dim != 2:
            raise ValueError(f"optimal_auc integrates on a 2D grid; this toy has d = {self.dim}")
        if n_grid < 11:
            raise ValueError(f"n_grid must be >= 11, got {n_grid}")
        axes = []
        for k in range(2):
            centres = (self.mean_signal[k], self.mean_background[k])
            sigmas = (math.sqrt(self.cov_signal[k][k]), math.sqrt(self.cov_background[k][k]))
            low = min(c - 9.0 * s for c, s in zip(centres, sigmas, strict=True))
            high = max(c + 9.0 * s for c, s in zip(centres, sigmas, strict=True))
            edges = np.linspace(low, high, n_grid + 1)
            axes.append(0.5 * (edges[1:] + edges[:-1]))
        cell_area = (axes[0][1] - axes[0][0]) * (axes[1][1] - axes[1][0])
        grid = np.stack(np.meshgrid(axes[0], axes[1], indexing="ij"), axis=-1).reshape(-1, 2)
        log_ps, log_pb = self.log_pdf_signal(grid), self.log_pdf_background(grid)
        log_lr = log_ps - log_pb
        mass_s, mass_b = np.exp(log_ps) * cell_area, np.exp(log_pb) * cell_area
        order = np.argsort(log_lr, kind="stable")
        log_lr, mass_s, mass_b = log_lr[order], mass_s[order], mass_b[order]
        # Group exactly tied ratios so that ties count one half.
        starts = np.flatnonzero(np.r_[True, np.diff(log_lr) != 0.0])
        group_s = np.add.reduceat(mass_s, starts)
        group_b = np.add.reduceat(mass_b, starts)
        below_b = np.cumsum(group_b) - group_b
        auc = np.sum(group_s * (below_b + 0.5 * group_b)) / (group_s.sum() * group_b.sum())
        return float(auc)


wedge_ramp = PowerRamp(power=1, name="wedge_ramp")
kicker_ramp = PowerRamp(power=2, name="kicker_ramp")
gaussian_ring = GaussianRing()
tagging_toy = TwoGaussianClasses()
regression_toy = HeteroskedasticToy()

_REGISTRY: dict[str, object] = {
    "wedge_ramp": wedge_ramp,
    "kicker_ramp": kicker_ramp,
    "gaussian_ring": gaussian_ring,
    "tagging_toy": tagging_toy,
    "regression_toy": regression_toy,
}


def names() -> list[str]:
    """Names accepted by :func:`get`."""
    return sorted(_REGISTRY)


def get(name: str) -> object:
    """The toy called ``name`` (one of :func:`names`); ValueError for an unknown name."""
    if not isinstance(name, str):
        raise TypeError(f"toy name must be a string, got {type(name).__name__}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown toy {name!r}; known toys: {', '.join(names())}") from None


toy = get
