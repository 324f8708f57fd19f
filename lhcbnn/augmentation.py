r"""Theory uncertainties by conditioning: augmented training data and the band (chapter 10).

A theory uncertainty is a family of truths labelled by a nuisance parameter :math:`a`. Here the
family is a leading-jet reweighting of Z + jets events, as in the Bayesian generator of
Butter et al. (arXiv:2110.13632) trained conditionally on such a nuisance,

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
    "CHAPTER_TRAINING",
    "TheoryGenerator",
    "train_theory_generator",
    "chi2_per_bin",
    "PT_BINS",
    "PT_MUMU_BINS",
    "truth_histograms",
    "weighted_mean",
    "compare_to_truth",
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
    sampling: str = "uniform",
) -> AugmentedSet:
    r"""The augmented training set: each event with ``n_copies`` values of ``a``.

    The values are drawn independently for each copy from ``numpy.random.default_rng(seed)``:
    uniformly in ``a_range`` (``sampling="uniform"``, a flat prior on the nuisance) or
    uniformly in :math:`\log(1 + a)` (``"log"``, more values at small ``a``, where the family
    changes fastest). The training distribution of ``a`` does not change the target
    :math:`p(x\mid a)`, only where the network sees most examples. With ``normalise=True``
    the weight of a copy is :math:`w(p_T; a) / \langle w(a) \rangle`
    (:func:`weight_normalisation` over the given events), so every value of ``a`` carries the
    same total weight in the loss; the minimum of the weighted likelihood is the same either
    way, :math:`p(x\mid a) \propto w\,p(x)`.

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
    if sampling not in ("uniform", "log"):
        raise ValueError(f"sampling must be 'uniform' or 'log', got {sampling!r}")
    rng = np.random.default_rng(seed)
    if sampling == "uniform":
        a = rng.uniform(low, high, size=features.shape[0] * n_copies)
    else:
        a = np.expm1(rng.uniform(np.log1p(low), np.log1p(high), size=features.shape[0] * n_copies))
    pt_all = np.tile(pt, n_copies)
    weight = theory_weights(pt_all, a)
    if normalise:
        weight = weight / weight_normalisation(pt, a)
    return AugmentedSet(np.tile(features, (n_copies, 1)), a, weight, pt_all)


def condition(a: object, device: torch.device | None = None) -> torch.Tensor:
    r"""The network input for ``a``: :math:`\log(1 + a)/\log 31` as a float32 ``(n, 1)``
    column (``(1,)`` for a scalar), in [0, 1] over the trained range. The logarithm spreads
    small ``a``, where the normalised family changes fastest (the tail weight
    :math:`(1 + a q)/(1 + a\langle q\rangle)` saturates once :math:`a\langle q\rangle \gg 1`)."""
    values = _finite_array(a, "a")
    if np.any(values < 0):
        raise ValueError(f"a must be >= 0, got min {values.min():g}")
    scaled = np.log1p(values) / math.log1p(A_RANGE[1])
    tensor = torch.as_tensor(scaled, dtype=torch.float32, device=device)
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


# ----------------------------------------------------------------------------- the generator
CHAPTER_TRAINING: dict[str, object] = {
    "n_copies": 2,
    "n_steps": 4000,
    "batch_size": 1024,
    "lr": 4e-3,
    "n_blocks": 6,
    "hidden": (64, 64),
    "coupling": "affine",
    "sampling": "log",
}
"""The settings of chapter 10's generator (and of its seed-spread benchmark)."""


@dataclass
class TheoryGenerator:
    """A flow conditioned on ``a`` with the feature map it was trained on.

    Attributes:
        flow: :class:`lhcbnn.flows.INN` with ``n_condition=1`` on standardised features.
        feature_map: observables <-> features.
        history: the :class:`lhcbnn.flows.FlowHistory` of its training.
    """

    flow: nn.Module
    feature_map: FeatureMap
    history: object

    def generate(self, a: float, n: int, seed: int = 0) -> np.ndarray:
        """``n`` events ``(n, 3)`` (pT,j1, eta,j1, pT,mumu) of the member ``a``."""
        return generate_at(self.flow, self.feature_map, a, n, seed)

    def histograms(
        self, a_values: object, n: int, bins: object, column: int = 0, seed: int = 0
    ) -> np.ndarray:
        """Normalised histograms ``(n_a, n_bins)`` of one observable, ``n`` events per value
        of ``a`` (seeds ``seed``, ``seed + 1``, ...)."""
        values = np.atleast_1d(_finite_array(a_values, "a_values"))
        return np.stack(
            [
                reweighted_histogram(self.generate(float(a), n, seed + k)[:, column], None, bins)[0]
                for k, a in enumerate(values)
            ]
        )


def train_theory_generator(
    observables: object,
    *,
    n_copies: int = 2,
    n_steps: int = 2000,
    batch_size: int = 1024,
    lr: float = 2e-3,
    n_blocks: int = 6,
    hidden: tuple[int, ...] = (64, 64),
    coupling: str = "affine",
    sampling: str = "uniform",
    bayesian: bool = False,
    seed: int = 0,
) -> TheoryGenerator:
    r"""Train a generator of the theory family on Z + jets observables ``(n, 3)``.

    Each event gets ``n_copies`` values of ``a`` in [0, 30], drawn as ``sampling`` says
    (:func:`augment`), the normalised weights :math:`w(p_{T,j_1}; a)/\langle w(a)\rangle` and
    the condition :math:`\log(1 + a)/\log 31` (:func:`condition`); the flow
    (:class:`lhcbnn.flows.INN`, ``n_condition=1``, couplings of kind ``coupling``, affine in
    chapter 10, on the standardised features of :class:`FeatureMap`) minimises the weighted negative
    log-likelihood :math:`-\sum_i w_i \log p(x_i \mid a_i) / \sum_i w_i`
    (:func:`lhcbnn.flows.train_flow`). ``seed`` seeds the values of ``a``, the initial
    network and the batches.
    """
    from lhcbnn.flows import INN, train_flow

    obs = _finite_array(observables, "observables")
    feature_map = FeatureMap.fit(obs)
    data = augment(
        feature_map.to_features(obs), obs[:, 0], n_copies=n_copies, seed=seed, sampling=sampling
    )
    torch.manual_seed(seed)
    flow = INN(
        3, n_blocks=n_blocks, hidden=hidden, bayesian=bayesian, coupling=coupling, n_condition=1
    )
    history = train_flow(
        flow,
        torch.as_tensor(data.x),
        condition=condition(data.a),
        weights=torch.as_tensor(data.weight, dtype=torch.float32),
        n_steps=n_steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
    )
    return TheoryGenerator(flow, feature_map, history)


def chi2_per_bin(
    h: np.ndarray, sigma: np.ndarray, h_truth: np.ndarray, sigma_truth: np.ndarray
) -> float:
    r""":math:`\chi^2/n_\mathrm{bins} = \frac1{n}\sum_b (h_b - t_b)^2/(\sigma_b^2 + s_b^2)`
    of two histograms with independent statistical errors (bins with no error are skipped)."""
    variance = np.asarray(sigma) ** 2 + np.asarray(sigma_truth) ** 2
    used = variance > 0
    if not np.any(used):
        raise ValueError("no bin has a statistical error")
    return float(np.mean((np.asarray(h)[used] - np.asarray(h_truth)[used]) ** 2 / variance[used]))


# ----------------------------------------------------------------------------- against truth
PT_BINS = np.array([20.0, 25.0, 30.0, 40.0, 50.0, 65.0, 80.0, 100.0, 130.0, 170.0, 250.0])
"""Leading-jet pT bins (GeV) of chapter 10: narrow at the threshold, wide in the tail."""
PT_MUMU_BINS = np.array([0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 65.0, 80.0, 100.0, 130.0, 250.0])
"""Dimuon pT bins (GeV) of chapter 10."""


def truth_histograms(
    observables: object, a_values: object, bins: object, column: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The exactly reweighted truth: normalised histograms ``(n_a, n_bins)`` of one observable
    of events ``(n, 3)`` weighted by :math:`w(p_{T,j_1}; a)`, and their statistical errors."""
    obs = _finite_array(observables, "observables")
    values = np.atleast_1d(_finite_array(a_values, "a_values"))
    pairs = [
        reweighted_histogram(obs[:, column], theory_weights(obs[:, 0], a), bins) for a in values
    ]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def weighted_mean(values: object, weights: object) -> tuple[float, float]:
    r"""Weighted mean :math:`\bar x = \sum w x / \sum w` and its error
    :math:`\sqrt{\sum w^2 (x - \bar x)^2} / \sum w`."""
    x = _finite_array(values, "values").reshape(-1)
    w = _finite_array(weights, "weights").reshape(-1)
    mean = float((w * x).sum() / w.sum())
    return mean, float(np.sqrt((w**2 * (x - mean) ** 2).sum()) / w.sum())


def compare_to_truth(
    generator: TheoryGenerator,
    observables: object,
    a_values: tuple[float, ...] = (0.0, 10.0, 30.0),
    n_generated: int = 50_000,
    seed: int = 1000,
) -> dict[str, dict[str, float]]:
    r"""Generated members against the reweighted truth of held-out ``observables`` ``(n, 3)``.

    For each ``a``: ``chi2_pt`` and ``chi2_pt_mumu``, :func:`chi2_per_bin` of the generated
    (``n_generated`` events, Poisson errors) and true histograms in :data:`PT_BINS` and
    :data:`PT_MUMU_BINS`; ``mean_pt`` the generated mean pT,j1 over the true one minus one,
    and ``mean_pt_error`` the statistical error of that ratio from the truth events.
    """
    obs = _finite_array(observables, "observables")
    result: dict[str, dict[str, float]] = {}
    for k, a in enumerate(a_values):
        events = generator.generate(float(a), n_generated, seed + k)
        entry: dict[str, float] = {}
        for name, column, bins in (("chi2_pt", 0, PT_BINS), ("chi2_pt_mumu", 2, PT_MUMU_BINS)):
            h, s = reweighted_histogram(events[:, column], None, bins)
            t, st = truth_histograms(obs, [a], bins, column)
            entry[name] = chi2_per_bin(h, s, t[0], st[0])
        true_mean, true_error = weighted_mean(obs[:, 0], theory_weights(obs[:, 0], a))
        entry["mean_pt"] = float(events[:, 0].mean() / true_mean - 1)
        entry["mean_pt_error"] = true_error / true_mean
        result[f"{a:g}"] = entry
    return result
