r"""Quality against truth on the regression toy with known noise.

The toy (:class:`lhcbnn.data.regression.HeteroskedasticToy`) has
:math:`t = f(x) + \sigma(x)\epsilon` with :math:`\sigma(x) = 0.2 + 0.1\sin(3x/2)` known, so the
learned uncertainties can be held against the truth:

* ``sigma_stoch_rel_error``: mean over a grid of ``n_grid`` equally spaced points
  :math:`x_k` spanning the training range :math:`[-2, 2]` (ends included) of
  :math:`|\sigma_\mathrm{stoch}(x_k)/\sigma(x_k) - 1|`, with :math:`\sigma_\mathrm{stoch}`
  from :func:`lhcbnn.predict`; the maximum over the grid is reported beside it;
* ``pull_std``: standard deviation of the pulls :math:`(\bar m - t)/\sigma_\mathrm{tot}` on
  held-out toy points (a calibrated network gives 1);
* ``sigma_pred_slope``: the least-squares slope of :math:`\log\langle\sigma_\mathrm{pred}\rangle`
  against :math:`\log n_\text{train}`, where :math:`\langle\cdot\rangle` is the mean over the
  grid and every network is trained for the same number of epochs (a Bayesian posterior
  narrows like :math:`1/\sqrt{n_\text{train}}`, slope :math:`-1/2`).

Every network is ``lb.BayesianMLP(1, 1, (64, 64), heteroskedastic=True)`` trained by
:func:`lhcbnn.train` (Adam, cosine learning-rate decay).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

import lhcbnn as lb
from lhcbnn.data.regression import HeteroskedasticToy


@dataclass(frozen=True)
class QualitySetup:
    """Sizes and training settings of the quality benchmarks."""

    n_train: int = 50_000
    n_train_sweep: tuple[int, ...] = (6_250, 12_500, 25_000, 50_000)
    n_epochs: int = 100
    batch_size: int = 1024
    lr: float = 5e-3
    n_samples: int = 100
    n_grid: int = 201
    n_heldout: int = 20_000
    hidden: tuple[int, ...] = (64, 64)
    seed: int = 0


def train_toy_model(setup: QualitySetup, n_train: int) -> tuple[torch.nn.Module, float]:
    """A heteroskedastic BNN trained on ``n_train`` toy points; returns it and the seconds."""
    toy = HeteroskedasticToy()
    x, y = toy.sample(n_train, seed=setup.seed + 1)
    lb.seed_everything(setup.seed)
    model = lb.BayesianMLP(1, 1, hidden=setup.hidden, heteroskedastic=True)
    start = time.perf_counter()
    lb.train(
        model,
        x,
        y,
        n_epochs=setup.n_epochs,
        batch_size=setup.batch_size,
        lr=setup.lr,
        lr_schedule="cosine",
        seed=setup.seed,
        progress=False,
    )
    return model, time.perf_counter() - start


def grid(setup: QualitySetup) -> torch.Tensor:
    """The evaluation grid over the training range, ``(n_grid, 1)``."""
    low, high = HeteroskedasticToy().train_range
    return torch.linspace(low, high, setup.n_grid, device=lb.device())[:, None]


def sigma_stoch_errors(model: torch.nn.Module, setup: QualitySetup) -> dict[str, float]:
    """Mean and maximum of ``|sigma_stoch / sigma_true - 1|`` over the grid."""
    x = grid(setup)
    lb.seed_everything(setup.seed)
    prediction = lb.predict(model, x, n_samples=setup.n_samples)
    truth = HeteroskedasticToy().sigma(x)
    relative = (prediction.sigma_stoch / truth - 1.0).abs()
    return {"mean": float(relative.mean()), "max": float(relative.max())}


def pull_statistics(model: torch.nn.Module, setup: QualitySetup) -> dict[str, float]:
    """Mean and standard deviation of the pulls on held-out toy points."""
    x, y = HeteroskedasticToy().sample(setup.n_heldout, seed=setup.seed + 1000)
    x_tensor = lb.as_tensor(x, "x", dtype=torch.float32)
    lb.seed_everything(setup.seed)
    prediction = lb.predict(model, x_tensor, n_samples=setup.n_samples)
    pulls = lb.pulls(prediction, lb.as_tensor(y, "y", dtype=torch.float32))
    return {"mean": float(pulls.mean()), "std": float(pulls.std())}


def mean_sigma_pred(model: torch.nn.Module, setup: QualitySetup) -> float:
    """Mean of ``sigma_pred`` over the grid."""
    lb.seed_everything(setup.seed)
    return float(lb.predict(model, grid(setup), n_samples=setup.n_samples).sigma_pred.mean())


def log_log_slope(n_train: list[int], values: list[float]) -> float:
    """Least-squares slope of ``log(values)`` against ``log(n_train)``."""
    slope, _ = np.polyfit(np.log(n_train), np.log(values), 1)
    return float(slope)


def measure(setup: QualitySetup) -> dict[str, object]:
    """All three quality figures; the network at ``n_train`` also enters the sweep."""
    sizes = sorted(set(setup.n_train_sweep) | {setup.n_train})
    sigma_pred, seconds = [], []
    result: dict[str, object] = {"setup": asdict(setup)}
    for n_train in sizes:
        model, elapsed = train_toy_model(setup, n_train)
        seconds.append(elapsed)
        sigma_pred.append(mean_sigma_pred(model, setup))
        if n_train == setup.n_train:
            result["sigma_stoch_rel_error"] = sigma_stoch_errors(model, setup)
            result["pulls"] = pull_statistics(model, setup)
    result["sweep"] = {"n_train": sizes, "mean_sigma_pred": sigma_pred, "train_seconds": seconds}
    result["sigma_pred_slope"] = log_log_slope(sizes, sigma_pred)
    return result
