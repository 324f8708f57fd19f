r"""Precision regression of exact labels: amplitude surrogates with error bars (chapter 6).

A squared matrix element :math:`A(x) = |\mathcal M(x)|^2` is known exactly at every
phase-space point, so a network that learns it is judged by the relative deviation

.. math:: \Delta = \frac{A_\mathrm{pred} - A_\mathrm{true}}{A_\mathrm{true}}

computed on the amplitude itself, and its learned uncertainty by the pull
:math:`(A_\mathrm{pred} - A_\mathrm{true})/\sigma_\mathrm{model}` (Badger, Butter, Luchmann,
Pitz, Plehn, "Loop amplitudes from precision networks", arXiv:2206.14831). This module holds
the pieces chapter 6 and exercise 6 use:

* :class:`AmplitudePreprocessing`: inputs :math:`\log|s_{ij}|` of the all-outgoing
  invariants, standardised, and the standardised target :math:`\log A`;
* :func:`to_amplitude`: a prediction in the standardised log space turned into
  :math:`A_\mathrm{pred}` with its uncertainties on :math:`A` (first-order error propagation);
* :func:`relative_deviation`, :func:`precision_summary`: :math:`\Delta` and the figures of
  merit (fractions within 1% and 10%, the 99th percentile of :math:`|\Delta|`);
* :func:`boost_weights`, :func:`train_weighted`: the weighted ("boosted") training, in which
  every training point's NLL counts :math:`w_j` times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lhcbnn._validate import finite_array
from lhcbnn.data.amplitudes import invariants
from lhcbnn.predict import Prediction
from lhcbnn.train import History, train

__all__ = [
    "AmplitudePreprocessing",
    "AmplitudePrediction",
    "log_invariants",
    "to_amplitude",
    "relative_deviation",
    "precision_summary",
    "boost_weights",
    "train_weighted",
    "AmplitudeData",
    "amplitude_data",
    "draw_pulls",
    "draw_deviations",
]


def log_invariants(momenta: np.ndarray) -> np.ndarray:
    r"""Features :math:`\log|s_{ij}|/\mathrm{GeV}^2` for all pairs :math:`i<j`, shape ``(n, 9)``
    for 2 -> 3 (the pair of the two beams, :math:`s_{12} = s`, is the same for every point and
    is left out).

    ``momenta`` is ``(n, m, 4)`` with the two incoming first, or the points returned by
    :func:`~lhcbnn.data.amplitudes.phase_space`.
    The invariants :math:`s_{ij} = 2k_i\cdot k_j` are Lorentz invariant, and the tree amplitude
    is a rational function of them with its poles at :math:`s_{ij}\to 0`; on a logarithmic
    scale those poles become linear directions (chapter 6, eq. ch6-log).
    """
    s = invariants(momenta)
    upper = np.triu_indices(s.shape[1], 1)
    pairs = np.abs(s[:, upper[0], upper[1]])[:, 1:]
    if np.any(pairs <= 0):
        raise ValueError("an invariant s_ij is zero: a soft or collinear point without cuts")
    return np.log(pairs)


@dataclass(frozen=True)
class AmplitudePreprocessing:
    r"""Standardisation of the network's inputs and target, fitted on the training set.

    Inputs :math:`u = (\log|s_{ij}| - \mu_s)/\sigma_s` per invariant; target
    :math:`t = (\log A - \mu_A)/\sigma_A`, so :math:`A = \exp(\mu_A + \sigma_A t)`.

    Attributes:
        feature_mean, feature_std: ``(n_features,)`` mean and standard deviation of
            :math:`\log|s_{ij}|` over the training points.
        log_mean, log_std: mean and standard deviation of :math:`\log A` over them.
    """

    feature_mean: np.ndarray
    feature_std: np.ndarray
    log_mean: float
    log_std: float

    @classmethod
    def fit(cls, momenta: np.ndarray, amplitudes: np.ndarray) -> AmplitudePreprocessing:
        """Fit the standardisation on training momenta ``(n, m, 4)`` and amplitudes ``(n,)``."""
        features = log_invariants(momenta)
        log_a = np.log(_positive(amplitudes, features.shape[0]))
        return cls(features.mean(0), features.std(0), float(log_a.mean()), float(log_a.std()))

    def inputs(self, momenta: np.ndarray) -> np.ndarray:
        """Standardised :math:`\\log|s_{ij}|`, ``(n, n_features)`` float32."""
        features = log_invariants(momenta)
        if features.shape[1] != self.feature_mean.shape[0]:
            raise ValueError(
                f"momenta give {features.shape[1]} invariants, the preprocessing was fitted "
                f"on {self.feature_mean.shape[0]}"
            )
        return ((features - self.feature_mean) / self.feature_std).astype(np.float32)

    def target(self, amplitudes: np.ndarray) -> np.ndarray:
        r"""Standardised :math:`\log A`, ``(n, 1)`` float32."""
        log_a = np.log(_positive(amplitudes))
        return ((log_a - self.log_mean) / self.log_std).astype(np.float32)[:, None]

    def amplitude(self, target: Any) -> np.ndarray:
        r""":math:`A = \exp(\mu_A + \sigma_A t)` from standardised values ``t``, float64."""
        return np.exp(self.log_mean + self.log_std * finite_array(target, "target"))


def _positive(amplitudes: Any, n: int | None = None) -> np.ndarray:
    a = finite_array(amplitudes, "amplitudes").reshape(-1)
    if n is not None and a.shape[0] != n:
        raise ValueError(f"{a.shape[0]} amplitudes for {n} phase-space points")
    if np.any(a <= 0):
        raise ValueError("amplitudes must be positive (a squared matrix element)")
    return a


@dataclass(frozen=True)
class AmplitudePrediction:
    r"""A network's amplitudes and their uncertainties on :math:`A`, each ``(n,)`` float64.

    With the prediction :math:`\bar t \pm \sigma` in the standardised log space,
    :math:`A_\mathrm{pred} = \exp(\mu_A + \sigma_A \bar t)` and, to first order,
    :math:`\sigma(A) = A_\mathrm{pred}\,\sigma_A\,\sigma` (chapter 6, eq. ch6-sigmaA): a
    width in the standardised log space is a *relative* width on :math:`A` times :math:`\sigma_A`.
    """

    amplitude: np.ndarray
    sigma_stoch: np.ndarray
    sigma_pred: np.ndarray
    sigma_tot: np.ndarray

    @property
    def sigma_model(self) -> np.ndarray:
        r"""The network's total uncertainty on :math:`A`, :math:`\sigma_\mathrm{tot}`, the
        :math:`\sigma_\mathrm{model}` of arXiv:2206.14831."""
        return self.sigma_tot

    def pulls(self, truth: Any) -> np.ndarray:
        r"""Pulls :math:`(A_\mathrm{pred} - A_\mathrm{true})/\sigma_\mathrm{model}`, ``(n,)``."""
        a_true = _positive(truth, self.amplitude.shape[0])
        if np.any(self.sigma_tot <= 0):
            raise ValueError("sigma_tot is zero for some points: pulls are undefined there")
        return (self.amplitude - a_true) / self.sigma_tot


def to_amplitude(
    prediction: Prediction, preprocessing: AmplitudePreprocessing
) -> AmplitudePrediction:
    """Turn a :class:`~lhcbnn.Prediction` of the standardised log amplitude into amplitudes
    with uncertainties on :math:`A` (see :class:`AmplitudePrediction`)."""
    if not isinstance(prediction, Prediction):
        raise TypeError(f"expected a Prediction, got {type(prediction).__name__}")
    if prediction.mean.dim() != 2 or prediction.mean.shape[1] != 1:
        raise ValueError(f"expected one output column, got {tuple(prediction.mean.shape)}")
    mean = finite_array(prediction.mean[:, 0], "prediction.mean")
    amplitude = preprocessing.amplitude(mean)
    scale = amplitude * preprocessing.log_std
    widths = (
        scale * finite_array(getattr(prediction, name)[:, 0], name)
        for name in ("sigma_stoch", "sigma_pred", "sigma_tot")
    )
    return AmplitudePrediction(amplitude, *widths)


def relative_deviation(predicted: Any, truth: Any) -> np.ndarray:
    r""":math:`\Delta = (A_\mathrm{pred} - A_\mathrm{true})/A_\mathrm{true}`, elementwise,
    on the amplitude itself (never on :math:`\log A`), float64 ``(n,)``."""
    a_true = _positive(truth)
    a_pred = finite_array(predicted, "predicted").reshape(-1)
    if a_pred.shape != a_true.shape:
        raise ValueError(f"{a_pred.shape[0]} predictions for {a_true.shape[0]} true values")
    return (a_pred - a_true) / a_true


def precision_summary(delta: Any) -> dict[str, float]:
    r"""Figures of merit of relative deviations :math:`\Delta`.

    Returns a dict with ``within_0.1%``, ``within_1%`` and ``beyond_10%`` (fractions of
    points with :math:`|\Delta|` below 0.001, below 0.01, above 0.1), ``median`` and ``p99``
    (the median and the 99th percentile of :math:`|\Delta|`).
    """
    magnitude = np.abs(finite_array(delta, "delta").reshape(-1))
    if magnitude.size == 0:
        raise ValueError("delta is empty")
    return {
        "within_0.1%": float(np.mean(magnitude < 0.001)),
        "within_1%": float(np.mean(magnitude < 0.01)),
        "beyond_10%": float(np.mean(magnitude > 0.1)),
        "median": float(np.median(magnitude)),
        "p99": float(np.quantile(magnitude, 0.99)),
    }


def boost_weights(score: Any, w_max: float = 10.0) -> np.ndarray:
    r"""Training weights from a per-point score, usually the pull of each training point, ``(n,)``.

    .. math:: w_j = \frac{\min(\max(|s_j|/s_\mathrm{rms}, 1), w_\mathrm{max})}
                         {\langle \min(\max(|s|/s_\mathrm{rms}, 1), w_\mathrm{max})\rangle},
              \qquad s_\mathrm{rms} = \sqrt{\langle s^2\rangle}

    (chapter 6, eq. ch6-weights). A point :math:`k` typical deviations out (in units of the
    scores' root mean square, so a conservative error bar does not switch boosting off) counts
    :math:`k` times, up to :math:`w_\mathrm{max}`; points within one typical deviation keep
    weight one before normalisation. Normalised to mean one, so the NLL term keeps its size
    against the KL of the ELBO (arXiv:2206.14831 duplicates such points instead).
    """
    s = np.abs(finite_array(score, "score").reshape(-1))
    if s.size == 0:
        raise ValueError("score is empty")
    if not (np.isfinite(w_max) and w_max >= 1):
        raise ValueError(f"w_max must be a finite number >= 1, got {w_max}")
    rms = np.sqrt(np.mean(s**2))
    if rms == 0:
        return np.ones_like(s)
    weights = np.clip(s / rms, 1.0, w_max)
    return weights / weights.mean()


def train_weighted(model: nn.Module, x: Any, y: Any, weights: Any, **kwargs: Any) -> History:
    r""":func:`~lhcbnn.train` with a weight per training point.

    Every mini-batch step minimises
    :math:`\frac1B\sum_{j\in\text{batch}} w_j\,[-\log p(t_j\mid x_j,\theta)] + D_\mathrm{KL}/N`:
    a point of weight :math:`w_j` counts as :math:`w_j` copies of itself. The weights travel
    with the labels through the shuffling (as an extra label column), so the training loop
    itself is unchanged; with all :math:`w_j = 1` the run is identical to ``lb.train``.

    Args:
        model: a regression model with ``nll(output, target)`` (``BayesianMLP``, ...).
        x: inputs ``(n_train, n_in)``.
        y: labels ``(n_train, n_out)`` or ``(n_train,)``.
        weights: ``(n_train,)`` non-negative, finite, not all zero.
        **kwargs: passed to :func:`~lhcbnn.train`; ``x_val``/``y_val`` are scored unweighted.
    """
    if "nll" in kwargs:
        raise TypeError("train_weighted uses the model's own nll; pass no nll=")
    y_array = finite_array(y, "y")
    if y_array.ndim == 1:
        y_array = y_array[:, None]
    w = finite_array(weights, "weights").reshape(-1)
    if w.shape[0] != y_array.shape[0]:
        raise ValueError(f"{w.shape[0]} weights for {y_array.shape[0]} training points")
    if np.any(w < 0) or not np.any(w > 0):
        raise ValueError("weights must be >= 0 and not all zero")
    n_out = y_array.shape[1]
    base_nll = model.nll

    def weighted_nll(output: Tensor, labels: Tensor) -> Tensor:
        if labels.shape[1] == n_out:  # validation data: unweighted
            return base_nll(output, labels)
        return labels[:, n_out] * base_nll(output, labels[:, :n_out])

    dtype = next(model.parameters()).dtype
    labels = torch.as_tensor(np.concatenate([y_array, w[:, None]], axis=1), dtype=dtype)
    return train(model, x, labels, nll=weighted_nll, **kwargs)


@dataclass(frozen=True)
class AmplitudeData:
    r"""Training and test points of gg -> ggg with exact amplitudes, preprocessed.

    Attributes:
        a_train, a_test: exact :math:`|\mathcal M|^2` in GeV^-2, ``(n_train,)``, ``(n_test,)``.
        x_train, x_test: standardised :math:`\log|s_{ij}|`, ``(n, 9)`` float32.
        y_train, y_test: standardised :math:`\log A`, ``(n, 1)`` float32.
        preprocessing: the :class:`AmplitudePreprocessing` fitted on the training points.
    """

    a_train: np.ndarray
    a_test: np.ndarray
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    preprocessing: AmplitudePreprocessing


def amplitude_data(n_train: int, n_test: int, seed: int = 0) -> AmplitudeData:
    """``n_train`` and ``n_test`` independent phase-space points (seeds ``seed`` and
    ``seed + 10_000``) with exact amplitudes, preprocessed on the training points."""
    from lhcbnn.data.amplitudes import phase_space, squared_me

    train_points = phase_space(n_train, seed=seed).momenta
    test_points = phase_space(n_test, seed=seed + 10_000).momenta
    a_train, a_test = squared_me(train_points), squared_me(test_points)
    prep = AmplitudePreprocessing.fit(train_points, a_train)
    return AmplitudeData(
        a_train,
        a_test,
        prep.inputs(train_points),
        prep.inputs(test_points),
        prep.target(a_train),
        prep.target(a_test),
        prep,
    )


def _draws(
    model: nn.Module, x: Any, truth: Any, preprocessing: AmplitudePreprocessing, n_samples: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Amplitudes and relative widths of single weight draws, ``(n_samples, n)`` each, and the
    true amplitudes ``(n,)``."""
    from lhcbnn.predict import predictive_samples

    means, variances = predictive_samples(model, x, n_samples)
    a_true = _positive(truth, means.shape[1])
    a_draw = preprocessing.amplitude(finite_array(means[..., 0], "means"))
    relative_width = preprocessing.log_std * np.sqrt(finite_array(variances[..., 0], "variances"))
    return a_draw, relative_width, a_true


def draw_deviations(
    model: nn.Module, x: Any, truth: Any, preprocessing: AmplitudePreprocessing, n_samples: int = 20
) -> np.ndarray:
    r"""Relative deviations :math:`\Delta_\theta = (A_\theta - A_\mathrm{true})/A_\mathrm{true}`
    of ``n_samples`` single weight draws :math:`\theta`, ``(n_samples, n)``.

    Their mean square over the draws, :math:`\langle\Delta_\theta^2\rangle_\theta`, is the
    error of a typical network from the posterior: the squared error of the mean plus
    :math:`(\sigma_\mathrm{pred}/A)^2`. With labels of relative noise :math:`\epsilon`, the
    loss drives :math:`(\sigma_\mathrm{stoch}/A)^2 \to \langle\Delta_\theta^2\rangle_\theta +
    \epsilon^2` (chapter 6, label noise of known size).
    """
    a_draw, _, a_true = _draws(model, x, truth, preprocessing, n_samples)
    return (a_draw - a_true) / a_true


def draw_pulls(
    model: nn.Module, x: Any, truth: Any, preprocessing: AmplitudePreprocessing, n_samples: int = 20
) -> np.ndarray:
    r"""Weight-dependent pulls :math:`(A_\theta - A_\mathrm{true})/\sigma_{\mathrm{stoch},\theta}`
    of ``n_samples`` weight draws :math:`\theta`, ``(n_samples, n)``.

    Each draw is one network with its own amplitude :math:`A_\theta` and learned width
    :math:`\sigma_{\mathrm{stoch},\theta} = A_\theta\,\sigma_A\,\sigma_\theta` on :math:`A`.
    The heteroskedastic loss is the Gaussian NLL of exactly this pull, averaged over
    :math:`q(\theta)` (chapter 6, eq. ch6-loss), so on the training points it is pushed to unit
    width, and on test points it stays there as long as the network interpolates.
    """
    a_draw, relative_width, a_true = _draws(model, x, truth, preprocessing, n_samples)
    return (a_draw - a_true) / (a_draw * relative_width)
