r"""Unfolding event by event with a conditional INN, and its calibration (chapter 11).

A detector turns a truth value :math:`x` into a measured :math:`y`. Trained on simulated
pairs :math:`(x, y)`, a conditional flow learns the posterior :math:`p(x\mid y)`; sampling it
for one measured event gives that event's unfolded distribution (Bellagente, Butter, Kasieczka,
Plehn, Rousselot, Winterhalder, Ardizzone, Köthe, arXiv:2006.06685).

The exact case: a Gaussian truth (the *simulation prior*) :math:`x \sim \mathcal N(\mu_0,
s_0^2)` and Gaussian smearing :math:`y = x + \mathcal N(0, s^2)` give the Gaussian posterior

.. math::
    p(x\mid y) = \mathcal N\!\Big(x;\ \frac{\mu_0 s^2 + y\, s_0^2}{s_0^2 + s^2},\
    \frac{s_0^2 s^2}{s_0^2 + s^2}\Big).

Calibration: if the posterior is right, the rank of the true :math:`x` among posterior samples
(the fraction of samples below it) is uniform on [0, 1] over events (simulation-based
calibration, Talts et al., arXiv:1804.06788); :func:`rank_histogram` gives its histogram and
the :math:`\chi^2` against flat.

Prior dependence (Backes, Butter, Dunford, Malaescu, arXiv:2212.08674): the posterior depends
on the simulation prior. Unfolding data whose truth follows another distribution,
:math:`x \sim \mathcal N(\mu_1, s_1^2)`, with the posterior of the simulation prior gives the
pooled unfolded distribution :math:`\int p_0(x\mid y)\,p_1(y)\,dy`, a Gaussian of mean
:math:`\mu_1 + (\mu_0 - \mu_1)\, s^2/(s_0^2 + s^2)`: pulled towards the simulation
(:meth:`GaussianSmearing.unfolded_with`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "Closure",
    "GaussianSmearing",
    "RankHistogram",
    "posterior_samples",
    "rank_histogram",
    "ranks",
    "closure",
    "train_unfolding",
]


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and positive, got {value}")
    return value


@dataclass(frozen=True)
class GaussianSmearing:
    """Truth :math:`x \\sim \\mathcal N(\\mu_0, s_0^2)`, measurement :math:`y = x +
    \\mathcal N(0, s^2)`; the exact posterior in closed form (module docstring).

    Attributes:
        truth_mean, truth_sigma: :math:`\\mu_0, s_0` of the truth distribution (the prior).
        smearing: :math:`s`, the detector resolution.
    """

    truth_mean: float = 0.0
    truth_sigma: float = 1.0
    smearing: float = 1.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.truth_mean):
            raise ValueError(f"truth_mean must be finite, got {self.truth_mean}")
        _positive("truth_sigma", self.truth_sigma)
        _positive("smearing", self.smearing)

    def sample(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)``, each ``(n, 1)`` float32: truth and measured values."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        rng = np.random.default_rng(seed)
        x = self.truth_mean + self.truth_sigma * rng.standard_normal((n, 1))
        y = x + self.smearing * rng.standard_normal((n, 1))
        return x.astype(np.float32), y.astype(np.float32)

    def _shrink(self) -> float:
        return self.truth_sigma**2 / (self.truth_sigma**2 + self.smearing**2)

    def posterior_mean(self, y: np.ndarray) -> np.ndarray:
        """:math:`(\\mu_0 s^2 + y s_0^2)/(s_0^2 + s^2)`, the shape of ``y``."""
        b = self._shrink()
        return (1.0 - b) * self.truth_mean + b * np.asarray(y, dtype=np.float64)

    @property
    def posterior_sigma(self) -> float:
        """:math:`s_0 s/\\sqrt{s_0^2 + s^2}`, the same for every event."""
        return self.truth_sigma * self.smearing / math.hypot(self.truth_sigma, self.smearing)

    def unfolded_with(self, data: GaussianSmearing) -> tuple[float, float]:
        """Mean and width of the pooled unfolded distribution when data from ``data`` (same
        smearing) are unfolded with this prior's posterior:
        :math:`\\mathcal N(\\mu_0(1-b) + b\\mu_1,\\ v + b^2 (s_1^2 + s^2))`,
        :math:`b = s_0^2/(s_0^2 + s^2)`, :math:`v` the posterior variance."""
        if not math.isclose(data.smearing, self.smearing):
            raise ValueError("the data must have the same smearing as the simulation")
        b = self._shrink()
        mean = (1.0 - b) * self.truth_mean + b * data.truth_mean
        variance = self.posterior_sigma**2 + b**2 * (data.truth_sigma**2 + self.smearing**2)
        return mean, math.sqrt(variance)


@torch.no_grad()
def posterior_samples(flow: nn.Module, y: object, n_samples: int, seed: int = 0) -> Tensor:
    """``n_samples`` draws of :math:`x \\sim p(x\\mid y)` per event from a conditional flow.

    ``y`` ``(n_events, n_condition)``; returns ``(n_events, n_samples, dim)`` on the flow's
    device (for ``dim = 1``: squeeze the last axis). Seeded by ``seed``.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    reference = next(flow.parameters())
    condition = torch.as_tensor(np.asarray(y), dtype=reference.dtype).to(reference.device)
    if condition.dim() != 2:
        raise ValueError(f"y must have shape (n_events, n_condition), got {tuple(condition.shape)}")
    n_events = condition.shape[0]
    repeated = condition.repeat_interleave(n_samples, dim=0)
    generator = torch.Generator().manual_seed(int(seed))
    x = flow.sample(n_events * n_samples, generator=generator, condition=repeated)
    return x.reshape(n_events, n_samples, -1)


def ranks(samples: object, truth: object) -> np.ndarray:
    """Rank of each true value among its ``S`` posterior samples, as a fraction:
    :math:`(k + 1/2)/(S + 1)` with :math:`k` the number of samples below the truth.

    ``samples`` ``(n_events, S)``, ``truth`` ``(n_events,)``; returns ``(n_events,)`` in
    (0, 1). For a calibrated posterior :math:`k` is uniform on :math:`0, \\dots, S` over
    events, so a histogram with a number of bins dividing :math:`S + 1` is flat.
    """
    s = np.asarray(samples.cpu() if isinstance(samples, Tensor) else samples, dtype=np.float64)
    t = np.asarray(truth.cpu() if isinstance(truth, Tensor) else truth, dtype=np.float64)
    t = t.reshape(-1)
    if s.ndim != 2 or s.shape[0] != t.shape[0]:
        raise ValueError(
            f"samples must be (n_events, n_samples) and truth (n_events,), got {s.shape}, {t.shape}"
        )
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(t))):
        raise ValueError("samples or truth contain NaN or infinite values")
    return ((s < t[:, None]).sum(axis=1) + 0.5) / (s.shape[1] + 1)


@dataclass(frozen=True)
class RankHistogram:
    """Histogram of ranks: ``counts`` ``(n_bins,)``, ``expected`` per bin (flat), ``edges``
    ``(n_bins + 1,)``, ``chi2`` :math:`= \\sum (n_k - N/K)^2/(N/K)` with ``ndf = n_bins - 1``,
    and ``p_value`` of that :math:`\\chi^2`."""

    counts: np.ndarray
    expected: float
    edges: np.ndarray
    chi2: float
    ndf: int
    p_value: float


def rank_histogram(rank: object, n_bins: int = 10) -> RankHistogram:
    """Histogram of ``rank`` ``(n_events,)`` in [0, 1] and its :math:`\\chi^2` against flat.

    With ``S`` posterior samples per event the ranks of :func:`ranks` take ``S + 1`` values;
    choose ``n_bins`` dividing ``S + 1`` so each bin collects the same number of them.
    """
    from scipy.stats import chi2 as chi2_distribution

    r = np.asarray(rank, dtype=np.float64).reshape(-1)
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 2:
        raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}")
    if r.size < n_bins or not np.all((r >= 0) & (r <= 1)):
        raise ValueError("rank must hold at least n_bins values in [0, 1]")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts, _ = np.histogram(r, bins=edges)
    expected = r.size / n_bins
    chi2 = float(np.sum((counts - expected) ** 2) / expected)
    ndf = n_bins - 1
    return RankHistogram(counts, expected, edges, chi2, ndf, float(chi2_distribution.sf(chi2, ndf)))


def train_unfolding(
    simulation: GaussianSmearing,
    *,
    n_train: int = 20_000,
    n_blocks: int = 2,
    hidden: tuple[int, ...] = (32, 32),
    n_steps: int = 600,
    batch_size: int = 512,
    lr: float = 3e-3,
    seed: int = 0,
) -> nn.Module:
    r"""A conditional INN :math:`p(x\mid y)` trained on ``n_train`` pairs of ``simulation``
    (events from seed ``seed``) by the conditional NLL :math:`-\langle \log p(x\mid y)\rangle`
    (:func:`lhcbnn.flows.train_flow` with ``condition=y``). Returns the flow (eval mode)."""
    from lhcbnn.flows import INN, train_flow

    x, y = simulation.sample(n_train, seed=seed)
    torch.manual_seed(seed)
    flow = INN(1, n_blocks=n_blocks, hidden=hidden, n_condition=1)
    train_flow(flow, x, condition=y, n_steps=n_steps, batch_size=batch_size, lr=lr, seed=seed)
    return flow


@dataclass(frozen=True)
class Closure:
    """A cINN's per-event posteriors against the exact ones, on ``n_events`` test events.

    mean_rms_in_noise: rms over events of (sample mean - exact posterior mean), in units of
        the Monte-Carlo noise of a mean of ``n_samples`` draws,
        :math:`\\sigma_\\text{post}/\\sqrt{S}`: 1 for a perfect network.
    bias: mean over events of (sample mean - exact mean), in units of :math:`\\sigma_\\text{post}`.
    width_ratio: mean over events of the sample standard deviation, over
        :math:`\\sigma_\\text{post}`.
    histogram: the :class:`RankHistogram` of the true values.
    unfolded_mean, unfolded_sigma: mean and width of all posterior samples pooled.
    truth_mean: mean of the true values of the events.
    """

    mean_rms_in_noise: float
    bias: float
    width_ratio: float
    histogram: RankHistogram
    unfolded_mean: float
    unfolded_sigma: float
    truth_mean: float
    samples: np.ndarray
    truth: np.ndarray
    measured: np.ndarray


def closure(
    flow: nn.Module,
    simulation: GaussianSmearing,
    data: GaussianSmearing | None = None,
    *,
    n_events: int = 2000,
    n_samples: int = 99,
    n_bins: int = 10,
    seed: int = 1,
) -> Closure:
    """Unfold ``n_events`` events of ``data`` (default: ``simulation`` itself) with ``flow``
    and compare with the exact posterior of ``simulation`` (the prior the flow learned).

    Events from seed ``seed``, posterior samples from seed ``seed + 1``.
    """
    data = simulation if data is None else data
    x, y = data.sample(n_events, seed=seed)
    samples = posterior_samples(flow, y, n_samples, seed=seed + 1)[..., 0].cpu().numpy()
    samples = samples.astype(np.float64)
    exact = simulation.posterior_mean(y[:, 0])
    sigma = simulation.posterior_sigma
    deviation = samples.mean(1) - exact
    return Closure(
        mean_rms_in_noise=float(np.sqrt(np.mean(deviation**2)) / (sigma / math.sqrt(n_samples))),
        bias=float(deviation.mean() / sigma),
        width_ratio=float(samples.std(1, ddof=1).mean() / sigma),
        histogram=rank_histogram(ranks(samples, x[:, 0]), n_bins),
        unfolded_mean=float(samples.mean()),
        unfolded_sigma=float(samples.std()),
        truth_mean=float(x.mean()),
        samples=samples,
        truth=x[:, 0].astype(np.float64),
        measured=y[:, 0].astype(np.float64),
    )
