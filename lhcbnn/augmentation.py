r"""Theory uncertainties by conditioning: augmented training data and the band (chapter 10).

A theory uncertainty is a family of truths labelled by a nuisance parameter :math:`a`. Here the
family is the leading-jet reweighting of Bellagente, Haussmann, Luchmann and Plehn
(arXiv:2104.04543, section 5),

.. math::
    w(p_{T,j_1}; a) = 1 + a\left(\frac{p_{T,j_1} - 15\ \mathrm{GeV}}{100\ \mathrm{GeV}}\right)^2,
    \qquad p(x \mid a) = \frac{w(x; a)\, p(x)}{\langle w(a) \rangle_p},
    \qquad a \in [0, 30],

a growing enhancement of the hard-jet tail. A generator conditioned on :math:`a` is trained on
events paired with random values of :math:`a` and weighted by :math:`w` (the weighted
likelihood of chapter 10); sampling :math:`a` at generation draws the band.

This module holds the pieces that do not depend on the network: the weights, the augmented
training set, the features of a Z + jets event, normalised weighted histograms with their
statistical errors, the effective sample size and the band over sampled values of :math:`a`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lhcbnn.data import zjets

__all__ = [
    "PT_REFERENCE",
    "PT_SCALE",
    "A_RANGE",
    "AugmentedSet",
    "Band",
    "FeatureMap",
    "theory_weights",
    "weight_normalisation",
    "augment",
    "condition",
    "effective_sample_size",
    "reweighted_histogram",
    "theory_band",
    "generate_at",
]

PT_REFERENCE = 15.0  # GeV
PT_SCALE = 100.0  # GeV
A_RANGE = (0.0, 30.0)


def _finite_array(values: object, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return array


def theory_weights(pt_j1: object, a: object) -> np.ndarray:
    r"""The augmentation weights :math:`w = 1 + a\,((p_{T,j_1} - 15)/100)^2`, pT in GeV.

    ``pt_j1`` and ``a`` broadcast as NumPy arrays: ``pt_j1`` ``(n,)`` with a scalar ``a`` gives
    ``(n,)``; with ``a`` of shape ``(m, 1)`` it gives the ``(m, n)`` weights of every event for
    every value; with ``a`` of shape ``(n,)`` it pairs event ``i`` with ``a[i]``.

    Raises:
        ValueError: NaN or infinite entries, a negative pT, or a negative ``a`` (the family is
            defined for ``a >= 0``; a negative ``a`` can make weights negative).
    """
    pt = _finite_array(pt_j1, "pt_j1")
    strength = _finite_array(a, "a")
    if np.any(pt < 0):
        raise ValueError("pt_j1 must be >= 0 GeV")
    if np.any(strength < 0):
        raise ValueError(f"a must be >= 0, got min {strength.min():g}")
    try:
        return 1.0 + strength * ((pt - PT_REFERENCE) / PT_SCALE) ** 2
    except ValueError as error:
        raise ValueError(
            f"pt_j1 {pt.shape} and a {strength.shape} do not broadcast: {error}"
        ) from error


def weight_normalisation(pt_j1: object, a: object) -> np.ndarray:
    r""":math:`\langle w(a)\rangle = 1 + a\,\langle((p_T - 15)/100)^2\rangle` over the events.

    ``a`` scalar or any shape; the result has the shape of ``a``. Dividing the weights by it
    normalises each member of the family to the number of events.
    """
    pt = _finite_array(pt_j1, "pt_j1").reshape(-1)
    strength = _finite_array(a, "a")
    if np.any(strength < 0):
        raise ValueError(f"a must be >= 0, got min {strength.min():g}")
    second_moment = float(np.mean(((pt - PT_REFERENCE) / PT_SCALE) ** 2))
    return 1.0 + strength * second_moment


@dataclass
class AugmentedSet:
    """Events paired with values of the nuisance ``a`` and their weights.

    Attributes:
        x: (n * n_copies, dim) the features, each event repeated ``n_copies`` times.
        a: (n * n_copies,) the value of ``a`` drawn for each copy.
        weight: (n * n_copies,) :math:`w(p_{T,j_1}; a) / \\langle w(a) \\rangle` (or unnormalised).
        pt_j1: (n * n_copies,) the leading-jet pT in GeV the weight was computed from.
    """

    x: np.ndarray
    a: np.ndarray
    weight: np.ndarray
    pt_j1: np.ndarray

    def __len__(self) -> int:
        return int(self.a.shape[0])


def augment(
    x: object,
    pt_j1: object,
    *,
    n_copies: int = 1,
    a_range: tuple[float, float] = A_RANGE,
    seed: int = 0,
    normalise: bool = True,
) -> AugmentedSet:
    r"""The augmented training set: each event with ``n_copies`` values of ``a``.

    The values are drawn uniformly in ``a_range`` (a flat prior on the nuisance), independently
    for each copy, from ``numpy.random.default_rng(seed)``. With ``normalise=True`` the weight of
    a copy is :math:`w(p_T; a) / \langle w(a) \rangle` (:func:`weight_normalisation` over the
    given events), so every value of ``a`` carries the same total weight in the loss; the
    minimum of the weighted likelihood is the same either way, :math:`p(x\mid a) \propto w\,p(x)`.

    Args:
        x: (n, dim) features of the events.
        pt_j1: (n,) leading-jet pT in GeV.
        n_copies: values of ``a`` per event.
        a_range: (low, high) with ``0 <= low < high``.
        seed: seeds the values of ``a``.
        normalise: divide by the mean weight at each ``a``.
    """
    features = _finite_array(x, "x")
    pt = _finite_array(pt_j1, "pt_j1")
    if features.ndim != 2 or pt.ndim != 1 or features.shape[0] != pt.shape[0]:
        raise ValueError(f"x must be (n, dim) and pt_j1 (n,), got {features.shape} and {pt.shape}")
    if isinstance(n_copies, bool) or not isinstance(n_copies, int) or n_copies < 1:
        raise ValueError(f"n_copies must be a positive integer, got {n_copies!r}")
    low, high = (float(v) for v in a_range)
    if not (math.isfinite(low) and math.isfinite(high) and 0 <= low < high):
        raise ValueError(f"a_range must be (low, high) with 0 <= low < high, got {a_range!r}")
    rng = np.random.default_rng(seed)
    a = rng.uniform(low, high, size=features.shape[0] * n_copies)
    pt_all = np.tile(pt, n_copies)
    weight = theory_weights(pt_all, a)
    if normalise:
        weight = weight / weight_normalisation(pt, a)
    return AugmentedSet(np.tile(features, (n_copies, 1)), a, weight, pt_all)


def condition(a: object, device: torch.device | None = None) -> torch.Tensor:
    """The network input for ``a``: ``a / 30`` as a float32 ``(n, 1)`` column (``(1,)`` for a
    scalar), so the condition is of order one over the trained range."""
    values = _finite_array(a, "a")
    if np.any(values < 0):
        raise ValueError(f"a must be >= 0, got min {values.min():g}")
    tensor = torch.as_tensor(values / A_RANGE[1], dtype=torch.float32, device=device)
    return tensor.reshape(1) if tensor.ndim == 0 else tensor.reshape(-1, 1)


# ----------------------------------------------------------------------------- features
@dataclass
class FeatureMap:
    r"""Z + jets events to standardised network features and back.

    The features are :math:`\log(p_{T,j_1}/\mathrm{GeV} - 20)`, :math:`\eta_{j_1}` and
    :math:`\log(p_{T,\mu\mu}/\mathrm{GeV})`: the logarithm opens the steep fall above the
    20 GeV jet threshold, and each feature is then shifted and scaled by the mean and standard
    deviation of the events the map is fitted on.
    """

    mean: np.ndarray
    std: np.ndarray

    names = ("pT,j1", "eta,j1", "pT,mumu")

    @staticmethod
    def observables(sample: zjets.ZJetsSample) -> np.ndarray:
        """(n, 3) physical observables: pT,j1 in GeV, eta,j1, pT,mumu in GeV."""
        lead = sample.jets[:, 0]
        return np.stack([zjets.pt(lead), zjets.eta(lead), zjets.pt(sample.dimuon)], axis=1)

    @staticmethod
    def _raw(observables: np.ndarray) -> np.ndarray:
        if np.any(observables[:, 0] <= zjets.JET_PT_MIN) or np.any(observables[:, 2] <= 0):
            raise ValueError("pT,j1 must be above the 20 GeV threshold and pT,mumu positive")
        return np.stack(
            [
                np.log(observables[:, 0] - zjets.JET_PT_MIN),
                observables[:, 1],
                np.log(observables[:, 2]),
            ],
            axis=1,
        )

    @classmethod
    def fit(cls, observables: object) -> FeatureMap:
        """The map standardising ``observables`` ``(n, 3)`` (from :meth:`observables`)."""
        raw = cls._raw(_finite_array(observables, "observables"))
        return cls(raw.mean(axis=0), raw.std(axis=0))

    def to_features(self, observables: object) -> np.ndarray:
        """(n, 3) observables to float32 standardised features."""
        raw = self._raw(_finite_array(observables, "observables"))
        return ((raw - self.mean) / self.std).astype(np.float32)

    def to_observables(self, features: object) -> np.ndarray:
        """(n, 3) features back to pT,j1 (GeV), eta,j1, pT,mumu (GeV)."""
        raw = np.asarray(features, dtype=np.float64) * self.std + self.mean
        return np.stack(
            [np.exp(raw[:, 0]) + zjets.JET_PT_MIN, raw[:, 1], np.exp(raw[:, 2])], axis=1
        )


# ----------------------------------------------------------------------------- histograms
def effective_sample_size(weights: object) -> float:
    r"""Kish's effective number of events :math:`n_\mathrm{eff} = (\sum w)^2 / \sum w^2`."""
    w = _finite_array(weights, "weights").reshape(-1)
    if w.size == 0 or np.any(w < 0) or not np.any(w > 0):
        raise ValueError("weights must be >= 0 and not all zero")
    return float(w.sum() ** 2 / (w**2).sum())


def reweighted_histogram(
    values: object, weights: object | None, bins: object
) -> tuple[np.ndarray, np.ndarray]:
    r"""Normalised weighted histogram and its statistical error per bin.

    .. math::
        h_b = \frac{\sum_{i\in b} w_i}{\Delta_b \sum_i w_i}, \qquad
        \sigma_b = \frac{\sqrt{\sum_{i\in b} w_i^2}}{\Delta_b \sum_i w_i},

    a density (events outside the bins count in the normalisation). ``values`` ``(n,)``,
    ``weights`` ``(n,)`` or ``None`` (unit weights), ``bins`` increasing edges ``(n_bins + 1,)``.
    Returns ``(h, sigma)``, each ``(n_bins,)``.
    """
    x = _finite_array(values, "values").reshape(-1)
    w = np.ones_like(x) if weights is None else _finite_array(weights, "weights").reshape(-1)
    edges = _finite_array(bins, "bins")
    if w.shape != x.shape:
        raise ValueError(f"values {x.shape} and weights {w.shape} differ in shape")
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("bins must be at least two increasing edges")
    if np.any(w < 0) or not np.any(w > 0):
        raise ValueError("weights must be >= 0 and not all zero")
    total = w.sum()
    widths = np.diff(edges)
    sums = np.histogram(x, edges, weights=w)[0]
    squares = np.histogram(x, edges, weights=w**2)[0]
    return sums / (total * widths), np.sqrt(squares) / (total * widths)


@dataclass
class Band:
    """A theory band per bin over sampled values of ``a``.

    Attributes:
        central: (n_bins,) the median over the sampled values.
        low, high: (n_bins,) the 16% and 84% quantiles (``method="quantile"``) or the minimum
            and maximum (``method="envelope"``).
        method: which of the two.
    """

    central: np.ndarray
    low: np.ndarray
    high: np.ndarray
    method: str


def theory_band(histograms: object, method: str = "quantile") -> Band:
    r"""The band of histograms ``(n_a, n_bins)``, one row per sampled value of ``a``.

    ``"quantile"`` (the book's choice): the median and the central 68% of the histograms per
    bin. With ``a`` drawn from its prior (uniform on [0, 30]) this is the interval that holds
    the true histogram with 68% probability under that prior, the same meaning as a
    :math:`\pm 1\sigma` band, and it does not depend on the number of samples. ``"envelope"``:
    the minimum and maximum over the samples, i.e. the extreme members of the family (here the
    ends ``a = 0`` and ``a = 30``); it is wider, and a conservative choice when no prior on
    ``a`` is wanted.
    """
    h = _finite_array(histograms, "histograms")
    if h.ndim != 2 or h.shape[0] < 2:
        raise ValueError(f"histograms must be (n_a >= 2, n_bins), got {h.shape}")
    if method == "quantile":
        low, central, high = np.quantile(h, [0.16, 0.5, 0.84], axis=0)
    elif method == "envelope":
        low, central, high = h.min(axis=0), np.median(h, axis=0), h.max(axis=0)
    else:
        raise ValueError(f"method must be 'quantile' or 'envelope', got {method!r}")
    return Band(central, low, high, method)


def generate_at(
    flow: nn.Module,
    feature_map: FeatureMap,
    a: float,
    n: int,
    seed: int = 0,
) -> np.ndarray:
    """``n`` events from a flow conditioned on ``a / 30``, as observables ``(n, 3)``.

    The flow is an :class:`lhcbnn.flows.INN` with ``n_condition=1`` trained on
    :meth:`FeatureMap.to_features`; ``seed`` seeds its base samples.
    """
    device = next(flow.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    features = flow.sample(n, generator=generator, condition=condition(float(a), device))
    return feature_map.to_observables(features.detach().cpu().numpy())
