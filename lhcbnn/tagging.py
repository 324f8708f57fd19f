r"""Classification with error bars: the Bernoulli likelihood, predictive mean and spread, and
the metrics of a tagger (ROC, AUC, reliability), plus the physics taggers it is compared with.

A Bayesian classifier (chapter 7 of the book; Bollweg et al., arXiv:1904.10004) is a network
with one output, the logit :math:`\ell_\theta(x)`, trained on the Bernoulli likelihood. For weight
draws :math:`\theta_s` its predictive mean and spread are

.. math::
    \mu(x) = \frac1S\sum_s \sigma(\ell_{\theta_s}(x)),\qquad
    \sigma_\mathrm{pred}^2(x) = \frac1S\sum_s \bigl(\sigma(\ell_{\theta_s}(x))-\mu(x)\bigr)^2 .

The physics taggers are the jet mass and N-subjettiness (Thaler and Van Tilburg,
arXiv:1011.2268 and 1108.2701), computed from the stored constituents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from lhcbnn._validate import finite_array
from lhcbnn.device import as_tensor
from lhcbnn.predict import predictive_samples

__all__ = [
    "ClassifierPrediction",
    "Reliability",
    "auc",
    "bernoulli_nll",
    "constituent_inputs",
    "predict_proba",
    "reliability",
    "roc_curve",
    "sigmoid_of_gaussian",
    "tau_n",
    "jet_features",
    "train_classifier",
    "JetTaggingData",
    "jet_tagging_data",
]


def bernoulli_nll(logits: Tensor, target: Tensor) -> Tensor:
    r"""Per-point Bernoulli negative log-likelihood from logits, shape ``(batch,)``.

    :math:`-\log p(t\mid\ell) = -t\log\sigma(\ell)-(1-t)\log(1-\sigma(\ell))
    = \mathrm{softplus}(\ell) - t\,\ell`, evaluated stably for any logit.

    Args:
        logits: ``(batch, 1)`` or ``(batch,)``.
        target: labels in [0, 1] of the same number of points (1 = signal).

    Raises:
        ValueError: shapes differ, or a label is outside [0, 1] or NaN.
    """
    logits = logits.reshape(logits.shape[0], -1)
    if logits.shape[1] != 1:
        raise ValueError(f"expected one logit per point, got shape {tuple(logits.shape)}")
    target = target.reshape(target.shape[0], -1).to(logits.dtype)
    if target.shape != logits.shape:
        raise ValueError(f"target {tuple(target.shape)} and logits {tuple(logits.shape)} differ")
    if torch.isnan(target).any() or (target < 0).any() or (target > 1).any():
        raise ValueError("labels must be in [0, 1] (1 = signal)")
    return (nn.functional.softplus(logits) - target * logits)[:, 0]


@dataclass(frozen=True)
class ClassifierPrediction:
    r"""Predictive summary of a Bayesian classifier, each field ``(batch,)``.

    Attributes:
        mean: :math:`\mu`, the mean signal probability over weight draws.
        sigma_pred: the standard deviation of the probability over weight draws.
        logit_mean, logit_sigma: mean and standard deviation of the logit over weight draws.
    """

    mean: Tensor
    sigma_pred: Tensor
    logit_mean: Tensor
    logit_sigma: Tensor

    def numpy(self) -> ClassifierArrays:
        """All fields as float64 NumPy arrays, in one call."""
        return ClassifierArrays(
            *(
                t.detach().cpu().double().numpy()
                for t in (self.mean, self.sigma_pred, self.logit_mean, self.logit_sigma)
            )
        )


class ClassifierArrays(NamedTuple):
    """:class:`ClassifierPrediction` as NumPy arrays."""

    mean: np.ndarray
    sigma_pred: np.ndarray
    logit_mean: np.ndarray
    logit_sigma: np.ndarray


def predict_proba(model: nn.Module, x: Tensor, n_samples: int = 50) -> ClassifierPrediction:
    """Predictive mean and spread of a one-logit classifier from ``n_samples`` weight draws.

    Args:
        model: a network with one output column holding the logit (e.g.
            ``lb.BayesianMLP(n_in, 1)`` trained with :func:`bernoulli_nll`).
        x: inputs ``(batch, n_in)``.
        n_samples: weight draws.

    Returns:
        :class:`ClassifierPrediction`, each field ``(batch,)``.
    """
    logits, _ = predictive_samples(model, x, n_samples)  # (draws, batch, 1)
    if logits.shape[-1] != 1:
        raise ValueError(f"the model must have one output (the logit), got {logits.shape[-1]}")
    logits = logits[..., 0].double()
    probabilities = torch.sigmoid(logits)
    dtype = logits.dtype
    return ClassifierPrediction(
        probabilities.mean(0).to(dtype),
        probabilities.std(0, unbiased=False).to(dtype),
        logits.mean(0).to(dtype),
        logits.std(0, unbiased=False).to(dtype),
    )


def _scores_labels(scores: object, labels: object) -> tuple[np.ndarray, np.ndarray]:
    scores = finite_array(scores, "scores", flatten=True)
    labels = finite_array(labels, "labels", flatten=True)
    if scores.shape != labels.shape:
        raise ValueError(f"{scores.size} scores but {labels.size} labels")
    if not np.all((labels == 0) | (labels == 1)):
        raise ValueError("labels must be 0 (background) or 1 (signal)")
    if labels.min() == labels.max():
        raise ValueError("need both classes (labels 0 and 1)")
    return scores, labels


def roc_curve(scores: object, labels: object) -> tuple[np.ndarray, np.ndarray]:
    r"""Background and signal efficiencies of the cut ``score > c`` for every threshold.

    Returns:
        ``(fpr, tpr)``, each ``(n_thresholds + 1,)``, from (0, 0) to (1, 1); tied scores form
        one step.
    """
    scores, labels = _scores_labels(scores, labels)
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores) != 0), scores.size - 1]
    true_positives = np.cumsum(labels)[last_of_tie]
    false_positives = (last_of_tie + 1) - true_positives
    tpr = np.r_[0.0, true_positives / labels.sum()]
    fpr = np.r_[0.0, false_positives / (labels.size - labels.sum())]
    return fpr, tpr


def auc(scores: object, labels: object) -> float:
    r"""Area under the ROC curve, :math:`P(s_\mathrm{signal} > s_\mathrm{background})`, ties
    counting one half (the Mann-Whitney statistic, computed from average ranks)."""
    scores, labels = _scores_labels(scores, labels)
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    ranks = np.empty(scores.size)
    starts = np.flatnonzero(np.r_[True, np.diff(sorted_scores) != 0])
    ends = np.r_[starts[1:], scores.size]
    average = 0.5 * (starts + ends - 1) + 1.0  # 1-based average rank of each tie group
    ranks[order] = np.repeat(average, ends - starts)
    n_signal = labels.sum()
    n_background = labels.size - n_signal
    return float(
        (ranks[labels == 1].sum() - n_signal * (n_signal + 1) / 2) / (n_signal * n_background)
    )


class Reliability(NamedTuple):
    """A reliability diagram: per bin the mean predicted probability, the observed signal
    fraction with its binomial standard error, and the number of points."""

    predicted: np.ndarray
    observed: np.ndarray
    error: np.ndarray
    count: np.ndarray


def reliability(probabilities: object, labels: object, n_bins: int = 10) -> Reliability:
    r"""Reliability diagram in ``n_bins`` equal-count bins of the predicted probability.

    For a calibrated classifier the observed fraction of signal in each bin equals the mean
    predicted probability within its error :math:`\sqrt{f(1-f)/n}`. Equal-count bins keep every
    error bar the same size (equal-width bins are noisy at the ends).
    """
    probabilities, labels = _scores_labels(probabilities, labels)
    if np.any((probabilities < 0) | (probabilities > 1)):
        raise ValueError("probabilities must be in [0, 1]")
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or not 1 <= n_bins <= labels.size:
        raise ValueError(f"n_bins must be an integer in [1, {labels.size}], got {n_bins!r}")
    order = np.argsort(probabilities, kind="stable")
    bins = np.array_split(order, n_bins)
    predicted = np.array([probabilities[b].mean() for b in bins])
    observed = np.array([labels[b].mean() for b in bins])
    count = np.array([b.size for b in bins])
    error = np.sqrt(np.clip(observed * (1 - observed), 1.0 / count, None) / count)
    return Reliability(predicted, observed, error, count)


def sigmoid_of_gaussian(
    logit_mean: np.ndarray, logit_sigma: np.ndarray, n_nodes: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    r"""Mean and standard deviation of :math:`\sigma(\ell)`, :math:`\ell\sim\mathcal N(m,s^2)`.

    Gauss-Hermite quadrature with ``n_nodes`` nodes. For small ``s`` the standard deviation is
    :math:`s\,\mu(1-\mu)` (the derivative of the sigmoid); it falls below that as ``s`` grows.
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_nodes)
    weights = weights / weights.sum()
    m = np.asarray(logit_mean, dtype=np.float64)[..., None]
    s = np.asarray(logit_sigma, dtype=np.float64)[..., None]
    values = 1.0 / (1.0 + np.exp(-(m + s * nodes)))
    mean = (values * weights).sum(-1)
    variance = ((values - mean[..., None]) ** 2 * weights).sum(-1)
    return mean, np.sqrt(variance)


# ----------------------------------------------------------------------------- jet taggers
def constituent_inputs(
    constituents: np.ndarray, jet_pt: np.ndarray, n_constituents: int = 30
) -> np.ndarray:
    """Network inputs from the leading constituents: (pT / jet pT, Delta eta, Delta phi) each.

    Args:
        constituents: ``(n_jets, n_const, 3)`` as (pT, Delta eta, Delta phi), pT ordered.
        jet_pt: ``(n_jets,)`` in GeV.
        n_constituents: how many leading constituents to keep (zero padded).

    Returns:
        ``(n_jets, 3 * n_constituents)`` float32 array.
    """
    constituents = np.asarray(constituents, dtype=np.float64)
    if constituents.ndim != 3 or constituents.shape[2] != 3:
        raise ValueError(f"constituents must be (n_jets, n_const, 3), got {constituents.shape}")
    jet_pt = np.asarray(jet_pt, dtype=np.float64).reshape(-1)
    if jet_pt.shape[0] != constituents.shape[0] or np.any(jet_pt <= 0):
        raise ValueError("jet_pt must be positive, one per jet")
    kept = constituents[:, :n_constituents].copy()
    if kept.shape[1] < n_constituents:
        kept = np.pad(kept, ((0, 0), (0, n_constituents - kept.shape[1]), (0, 0)))
    kept[..., 0] /= jet_pt[:, None]
    return kept.reshape(len(kept), -1).astype(np.float32)


def tau_n(
    constituents: np.ndarray, n: int, radius: float = 0.8, beta: float = 1.0, n_iter: int = 10
) -> np.ndarray:
    r"""N-subjettiness :math:`\tau_N = \frac{\sum_i p_{T,i}\min_k \Delta R_{ik}^\beta}
    {\sum_i p_{T,i} R^\beta}` with minimised axes (arXiv:1011.2268, 1108.2701).

    The N axes start from the hardest constituent and then, one at a time, the constituent
    with the largest :math:`p_T\min_k\Delta R^2` to the axes chosen so far; ``n_iter`` rounds of
    pT-weighted k-means in the (Delta eta, Delta phi) plane then move them (the minimisation of
    arXiv:1108.2701 for beta = 2, used here for every beta). Small
    :math:`\tau_3/\tau_2` means a three-prong jet (a hadronic top).

    Args:
        constituents: ``(n_jets, n_const, 3)`` as (pT, Delta eta, Delta phi), zero padded.
        n: number of axes (>= 1).

    Returns:
        ``(n_jets,)`` values in [0, 1] (roughly).
    """
    constituents = np.asarray(constituents, dtype=np.float64)
    if constituents.ndim != 3 or constituents.shape[2] != 3:
        raise ValueError(f"constituents must be (n_jets, n_const, 3), got {constituents.shape}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    pt = constituents[..., 0]
    points = constituents[..., 1:]
    rows = np.arange(len(pt))
    axes = [points[rows, np.argmax(pt, axis=1)]]
    for _ in range(1, n):
        distance = np.min(np.stack([((points - a[:, None]) ** 2).sum(-1) for a in axes]), axis=0)
        axes.append(points[rows, np.argmax(pt * distance, axis=1)])
    axes = np.stack(axes, axis=1)  # (n_jets, n, 2)
    for _ in range(n_iter):
        distance = ((points[:, :, None] - axes[:, None]) ** 2).sum(-1)  # (jets, const, n)
        nearest = np.argmin(distance, axis=2)
        for k in range(n):
            weight = pt * (nearest == k)
            total = weight.sum(1)
            centre = (weight[..., None] * points).sum(1) / np.where(total > 0, total, 1)[:, None]
            axes[:, k] = np.where(total[:, None] > 0, centre, axes[:, k])
    distance = np.sqrt(((points[:, :, None] - axes[:, None]) ** 2).sum(-1)).min(2)
    return (pt * distance**beta).sum(1) / (pt.sum(1) * radius**beta)


def jet_features(
    constituents: np.ndarray, jet_pt: np.ndarray, jet_mass: np.ndarray, n_constituents: int = 20
) -> np.ndarray:
    r"""Tagger inputs of chapter 7: the leading constituents (:func:`constituent_inputs`) and
    three physics observables, the jet mass in units of 100 GeV, :math:`\tau_{21}` and
    :math:`\tau_{32}`.

    Returns:
        ``(n_jets, 3 * n_constituents + 3)`` float32 array (not standardised).
    """
    tau1, tau2, tau3 = (tau_n(constituents, n) for n in (1, 2, 3))
    tiny = np.finfo(np.float64).tiny
    observables = np.stack(
        [
            np.asarray(jet_mass) / 100.0,
            tau2 / np.maximum(tau1, tiny),
            tau3 / np.maximum(tau2, tiny),
        ],
        axis=1,
    )
    inputs = constituent_inputs(constituents, jet_pt, n_constituents)
    return np.concatenate([inputs, observables.astype(np.float32)], axis=1)


def train_classifier(
    x: object,
    labels: object,
    *,
    hidden: tuple[int, ...] = (32, 32),
    prior_sigma: float = 1.0,
    n_epochs: int = 40,
    batch_size: int = 256,
    lr: float = 1e-2,
    seed: int = 0,
) -> nn.Module:
    r"""Train a Bayesian classifier (``lb.BayesianMLP(n_in, 1)``, one logit) on the Bernoulli
    likelihood: per step the mean :func:`bernoulli_nll` plus KL / n_train (the ELBO of chapter 2),
    with Adam and a cosine-decaying learning rate.

    The weight widths start narrow (:math:`\log\sigma^2 = -9`) and need on the order of a
    thousand steps at ``lr = 1e-2`` to grow to the posterior; a shorter run gives a network that
    is nearly deterministic and over-confident (chapter 7, "What goes wrong").

    Args:
        x: inputs ``(n_train, n_in)``, best standardised.
        labels: ``(n_train,)`` in {0, 1}, 1 = signal.

    Returns:
        The trained model (evaluation mode).
    """
    from lhcbnn.models import BayesianMLP
    from lhcbnn.train import train

    x = as_tensor(x, "x")
    labels = as_tensor(labels, "labels").reshape(-1, 1)
    if x.dim() != 2 or x.shape[0] != labels.shape[0]:
        raise ValueError(f"x {tuple(x.shape)} must be (n_train, n_in) with one label per row")
    with torch.random.fork_rng(devices=[]):  # seeded initial weights, caller's state kept
        torch.manual_seed(seed)
        model = BayesianMLP(x.shape[1], 1, hidden=hidden, prior_sigma=prior_sigma)
    train(
        model,
        x,
        labels,
        n_epochs=n_epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        nll=bernoulli_nll,
        progress=False,
    )
    return model


@dataclass(frozen=True)
class JetTaggingData:
    """Top-versus-QCD inputs of chapter 7, standardised with the training jets' mean and width.

    Attributes:
        x_train, y_train: ``(n_train, n_features)`` float32 inputs and ``(n_train,)`` labels
            (1 = top).
        x_test, y_test: the same for the held-out jets.
        mass_test, tau32_test: jet mass [GeV] and :math:`\tau_3/\tau_2` of the held-out jets,
            for the physics taggers.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    mass_test: np.ndarray
    tau32_test: np.ndarray


def jet_tagging_data(
    sample: object = None, n_train: int = 7000, n_test: int = 4000, n_constituents: int = 20
) -> JetTaggingData:
    """Split the shipped jet sample (or ``sample``) into training and held-out jets.

    The first ``n_train`` jets train, the last ``n_test`` jets test (the sample is shuffled,
    so both hold tops and QCD jets in equal parts); smaller training sets are prefixes of the
    largest, so a training-size scan adds jets rather than changing them.
    """
    if sample is None:
        from lhcbnn.data import jets

        sample = jets.load()
    n_jets = len(sample)
    if not (0 < n_train and 0 < n_test and n_train + n_test <= n_jets):
        raise ValueError(f"need 0 < n_train + n_test <= {n_jets}, got {n_train} + {n_test}")
    index = np.r_[np.arange(n_train), np.arange(n_jets - n_test, n_jets)]
    chosen = sample.subset(index)
    features = jet_features(chosen.constituents, chosen.jet_pt, chosen.jet_mass, n_constituents)
    centre = features[:n_train].mean(0)
    width = features[:n_train].std(0)
    features = (features - centre) / np.where(width > 0, width, 1.0)
    labels = chosen.is_top.astype(np.float32)
    return JetTaggingData(
        features[:n_train],
        labels[:n_train],
        features[n_train:],
        labels[n_train:],
        chosen.jet_mass[n_train:],
        np.asarray(features[n_train:, -1] * width[-1] + centre[-1], dtype=np.float64),
    )
