r"""The top-pT regression of book chapter 5: data split, training protocol, held-out scores.

One protocol for the chapter, its exercise and its benchmark (Kasieczka, Luchmann, Otterpohl,
Plehn, arXiv:2003.11099, on the shipped Pythia jets): the standardised label
:math:`r = p_{T,t}/p_{T,\mathrm{jet}} - 1` of :mod:`lhcbnn.data.top_pt` is learned by a
network with a Gaussian or Gaussian-mixture likelihood, trained with Adam and stopped early
on the validation NLL, and scored on held-out jets by bias and resolution of the top pT, the
width of the pulls, the coverage of the predictive distribution and its NLL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lhcbnn.baselines import DeepEnsemble, DeterministicMLP
from lhcbnn.calibration import coverage, predictive_cdf, predictive_nll, resolution
from lhcbnn.data.jets import JetSample, load
from lhcbnn.data.top_pt import Standardizer, TopPtData, split_indices, top_pt_data
from lhcbnn.device import seed_everything
from lhcbnn.layers import VBLinear
from lhcbnn.models import BayesianMLP
from lhcbnn.predict import predict
from lhcbnn.train import History, train

__all__ = [
    "TopPtSetup",
    "SmearingStudy",
    "setup",
    "make_network",
    "fit",
    "ensemble",
    "MEMBER_SEED_STEP",
    "scores",
    "smear_labels",
    "smearing_study",
    "independent_study",
]

N_CONSTITUENTS = 10
"""Hardest constituents used as inputs: 10 resolve the top's three prongs; with 50 on 4k jets
the network overfits sooner and resolves the pT worse (chapter 5)."""


@dataclass(frozen=True)
class TopPtSetup:
    """Standardised train, validation and test sets of the chapter.

    Attributes:
        data: all top jets (:class:`~lhcbnn.data.top_pt.TopPtData`).
        train, val, test: index arrays into ``data``.
        x_scaler, r_scaler: standardisation fitted on the training jets.
        x, y: standardised inputs ``(n, n_in)`` and labels ``(n,)``, float32.
    """

    data: TopPtData
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    x_scaler: Standardizer
    r_scaler: Standardizer
    x: np.ndarray
    y: np.ndarray

    @property
    def n_in(self) -> int:
        return int(self.x.shape[1])

    @property
    def r_scale(self) -> float:
        """Standard deviation of the training labels r: one unit of ``y``."""
        return float(self.r_scaler.scale)

    def top_pt(self, y_pred: object, index: np.ndarray) -> np.ndarray:
        """Top pT [GeV] of the jets at ``index`` from standardised predictions ``y_pred``."""
        r = self.r_scaler.invert(np.asarray(y_pred, dtype=np.float64).reshape(-1))
        return self.data.subset(index).top_pt_from(r)


def setup(
    sizes: tuple[int, int, int] = (4000, 800, 1200),
    seed: int = 0,
    sample: JetSample | None = None,
    n_constituents: int = N_CONSTITUENTS,
) -> TopPtSetup:
    """Split the top jets into train, validation and test sets and standardise them."""
    data = top_pt_data(load() if sample is None else sample, n_constituents)
    train_index, val_index, test_index = split_indices(len(data), sizes, seed)
    x_scaler, r_scaler = Standardizer(data.x[train_index]), Standardizer(data.r[train_index])
    return TopPtSetup(
        data,
        train_index,
        val_index,
        test_index,
        x_scaler,
        r_scaler,
        x_scaler(data.x),
        r_scaler(data.r),
    )


def make_network(
    n_in: int,
    n_mixture: int = 3,
    bayesian: bool = True,
    hidden: Sequence[int] = (32, 32),
    seed: int = 0,
    log_var_init: float | None = None,
) -> nn.Module:
    """A Bayesian or deterministic MLP with a Gaussian (``n_mixture=0``) or mixture head,
    its initial weights set by ``seed``; ``log_var_init`` overrides the initial log variance
    of every Bayesian weight (default that of :class:`~lhcbnn.layers.VBLinear`, -9)."""
    with torch.random.fork_rng(devices=[]):
        seed_everything(seed)
        if bayesian:
            model = BayesianMLP(
                n_in, 1, hidden=hidden, heteroskedastic=n_mixture == 0, n_mixture=n_mixture
            )
            if log_var_init is not None:
                with torch.no_grad():
                    for layer in model.modules():
                        if isinstance(layer, VBLinear):
                            layer.weight_log_var.fill_(log_var_init)
                            layer.bias_log_var.fill_(log_var_init)
            return model
        return DeterministicMLP(
            n_in, 1, hidden=hidden, heteroskedastic=n_mixture == 0, n_mixture=n_mixture
        )


def fit(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray] | None,
    seed: int = 0,
    max_epochs: int = 100,
    patience: int | None = 10,
    batch_size: int = 256,
    lr: float = 3e-3,
) -> History:
    """Adam at ``lr`` on batches of ``batch_size``, at most ``max_epochs`` epochs, stopped
    ``patience`` epochs after the minimum of the validation NLL (whose weights are kept);
    ``patience=None`` trains all epochs."""
    return train(
        model,
        x,
        y,
        n_epochs=max_epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        progress=False,
        validation=validation,
        patience=patience if validation is not None else None,
    )


MEMBER_SEED_STEP = 100
"""Member ``k`` of :func:`ensemble` is initialised and shuffled with ``seed + 100 k``, so the
ensembles of neighbouring seeds share no member."""


def ensemble(
    setup: TopPtSetup,
    n_members: int = 3,
    seed: int = 0,
    n_mixture: int = 3,
    first: nn.Module | None = None,
) -> DeepEnsemble:
    r"""``n_members`` Bayesian networks of the chapter, trained alike from different seeds.

    The ensemble predicts the equal-weight mixture of its members' predictive distributions
    (:class:`~lhcbnn.baselines.DeepEnsemble`), so its :math:`\sigma_\mathrm{pred}^2` is the
    members' own weight-draw variance plus the variance of the members' means: the part of
    the model error that one early-stopped BNN does not see (chapter 5; Lakshminarayanan,
    Pritzel, Blundell, arXiv:1612.01474). ``first`` is member 0 if already trained (with
    ``seed``); member ``k`` uses the seed ``seed + MEMBER_SEED_STEP * k``.
    """
    if isinstance(n_members, bool) or not isinstance(n_members, int) or n_members < 2:
        raise ValueError(f"n_members must be an integer >= 2, got {n_members!r}")
    validation = (setup.x[setup.val], setup.y[setup.val])
    members = [] if first is None else [first]
    for k in range(len(members), n_members):
        member_seed = seed + MEMBER_SEED_STEP * k
        model = make_network(setup.n_in, n_mixture, seed=member_seed)
        fit(model, setup.x[setup.train], setup.y[setup.train], validation, seed=member_seed)
        members.append(model)
    return DeepEnsemble(members)


def scores(
    model: nn.Module, setup: TopPtSetup, index: np.ndarray | None = None, n_samples: int = 50
) -> dict[str, float]:
    r"""Held-out scores of ``model`` on the jets at ``index`` (default the test jets).

    Returns:
        ``bias`` and ``resolution`` of the top pT (:func:`~lhcbnn.calibration.resolution`),
        ``pull_width`` (standard deviation of :math:`(\bar m - t)/\sigma_\mathrm{tot}`),
        ``coverage_68`` and ``coverage_95`` (from the PIT), ``nll`` (predictive NLL in
        nats per jet, in units of the standardised label), and the root-mean-square
        ``sigma_stoch``, ``sigma_pred`` and ``sigma_tot`` as fractions of the jet pT.
    """
    index = setup.test if index is None else index
    bayesian = any(p.requires_grad for p in model.parameters()) and any(
        hasattr(m, "weight_mu") for m in model.modules()
    )
    n_draws = n_samples if bayesian else 1
    x, y = setup.x[index], setup.y[index]
    prediction = predict(model, x, n_samples=n_draws)
    mean = prediction.mean[:, 0].double().cpu().numpy()
    widths = {
        name: getattr(prediction, name)[:, 0].double().cpu().numpy()
        for name in ("sigma_stoch", "sigma_pred", "sigma_tot")
    }
    bias, half_width = resolution(setup.top_pt(mean, index), setup.data.top_pt[index])
    pit = predictive_cdf(model, x, y, n_draws)
    row = {
        "bias": bias,
        "resolution": half_width,
        "pull_width": float(np.std((mean - y) / widths["sigma_tot"])),
        "coverage_68": coverage(pit, 0.68),
        "coverage_95": coverage(pit, 0.95),
        "nll": predictive_nll(model, x, y, n_draws),
    }
    for name, values in widths.items():
        row[name] = float(np.sqrt(np.mean(values**2)) * setup.r_scale)
    return row


@dataclass(frozen=True)
class SmearingStudy:
    r"""Networks retrained on labels smeared by :math:`\sigma_\mathrm{cal}` (fractions of the
    jet pT), and the straight-line fit
    :math:`\langle\sigma^2_\mathrm{stoch}\rangle = a\,\sigma^2_\mathrm{cal} + b`.

    Attributes:
        sigma_cal: ``(n,)`` smearing widths, including 0.
        sigma_stoch, sigma_pred: ``(n,)`` root-mean-square widths on the test jets.
        slope, intercept: :math:`a` (1 when the smearing adds in quadrature) and :math:`b`
            (then :math:`\sigma_0^2`, the unsmeared :math:`\sigma^2_\mathrm{stoch}`).
    """

    sigma_cal: np.ndarray
    sigma_stoch: np.ndarray
    sigma_pred: np.ndarray
    slope: float
    intercept: float


def smear_labels(y: np.ndarray, sigma_cal: float, r_scale: float, seed: int) -> np.ndarray:
    r"""Standardised labels with Gaussian noise of width ``sigma_cal`` on :math:`r`
    (:math:`\sigma_\mathrm{cal}\,p_{T,\mathrm{jet}}` on the top pT), float32."""
    if not (np.isfinite(sigma_cal) and sigma_cal >= 0):
        raise ValueError(f"sigma_cal must be a finite number >= 0, got {sigma_cal}")
    noise = np.random.default_rng(seed).standard_normal(np.shape(y))
    return (np.asarray(y, dtype=np.float64) + sigma_cal / r_scale * noise).astype(np.float32)


def smearing_study(
    setup: TopPtSetup,
    sigma_cals: Sequence[float],
    unsmeared: nn.Module | None = None,
    seed: int = 0,
    n_mixture: int = 3,
) -> SmearingStudy:
    """Retrain the chapter's BNN on training and validation labels smeared by each
    ``sigma_cal`` (test labels stay as they are); ``unsmeared`` is the network for
    ``sigma_cal = 0`` if already trained."""
    widths = []
    for k, sigma_cal in enumerate(sigma_cals):
        if sigma_cal == 0 and unsmeared is not None:
            model = unsmeared
        else:
            y_train, y_val = (
                smear_labels(setup.y[index], sigma_cal, setup.r_scale, seed + 1000 * k + j)
                for j, index in enumerate((setup.train, setup.val))
            )
            model = make_network(setup.n_in, n_mixture, seed=seed)
            fit(model, setup.x[setup.train], y_train, (setup.x[setup.val], y_val), seed=seed)
        row = scores(model, setup)
        widths.append((row["sigma_stoch"], row["sigma_pred"]))
    sigma_cal = np.asarray(sigma_cals, dtype=np.float64)
    sigma_stoch, sigma_pred = (np.array(w) for w in zip(*widths, strict=True))
    slope, intercept = np.polyfit(sigma_cal**2, sigma_stoch**2, 1)
    return SmearingStudy(sigma_cal, sigma_stoch, sigma_pred, float(slope), float(intercept))


def independent_study(
    setup: TopPtSetup,
    n_sets: int = 4,
    seed: int = 0,
    n_mixture: int = 3,
    log_var_init: float | None = None,
):
    r"""The chapter's BNN trained on ``n_sets`` disjoint parts of the training jets.

    The parts are independent samples of ``len(setup.train) // n_sets`` jets each (no jet is
    used twice, no bootstrap), so the spread of the networks' means on the test jets is the
    frequentist truth of :math:`\sigma_\mathrm{pred}` *at that training size*, not at the
    full one. Returns :class:`~lhcbnn.validation.IndependentTrainings` in units of ``r``.
    """
    from lhcbnn.validation import independent_trainings

    size = len(setup.train) // n_sets
    parts = [setup.train[k * size : (k + 1) * size] for k in range(n_sets)]

    def train_and_predict(k: int) -> tuple[np.ndarray, np.ndarray]:
        model = make_network(setup.n_in, n_mixture, seed=seed + k, log_var_init=log_var_init)
        fit(
            model,
            setup.x[parts[k]],
            setup.y[parts[k]],
            (setup.x[setup.val], setup.y[setup.val]),
            seed=seed + k,
        )
        prediction = predict(model, setup.x[setup.test], n_samples=50)
        return (
            prediction.mean[:, 0].double().cpu().numpy() * setup.r_scale,
            prediction.sigma_pred[:, 0].double().cpu().numpy() * setup.r_scale,
        )

    return independent_trainings(train_and_predict, list(range(n_sets)))
