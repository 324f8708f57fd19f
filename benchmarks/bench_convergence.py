r"""Wall time to a fixed held-out NLL on the regression toy: ours against each peer.

All networks (ours, bayesian-torch, torchbnn) are 1-64-64-2 heteroskedastic MLPs (mean and
log variance out), trained with the same loop: Adam, constant learning rate, shuffled
mini-batches, loss per batch

.. math:: \frac1B\sum_{i\in\text{batch}} -\log\mathcal N(t_i\mid m_i, \sigma_i^2)
          + \frac{\mathrm{KL}}{N_\text{train}},

with the KL summed over every weight and bias in all of them (for bayesian-torch via
:func:`bench_peers.bayesian_torch_kl`, not its averaged ``get_kl_loss``; for torchbnn
``BKLLoss(reduction='sum')``). Every
``eval_every`` steps the clock stops and the held-out predictive NLL is computed,

.. math:: -\frac1M\sum_j\log\Big[\frac1S\sum_{s=1}^S
          \mathcal N\big(t_j\mid m_s(x_j), \sigma_s^2(x_j)\big)\Big],

from ``S`` weight draws (one network per draw for the whole held-out set, as
:func:`lhcbnn.predict` does). The time to reach the target counts training steps only.
The target is the NLL of the true noise model plus a margin, so every library can reach it.

A run is capped by steps (``max_steps``), never by wall seconds, so the load of the machine
cannot decide whether a run reaches the target. A run that stops at the cap is *censored*:
its time to the target is at least the time it ran, and it is reported that way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

import lhcbnn as lb
from lhcbnn.data.regression import HeteroskedasticToy

KLFunction = Callable[[nn.Module], Tensor]


@dataclass(frozen=True)
class ConvergenceSetup:
    """Data and optimiser settings shared by both libraries."""

    n_train: int = 50_000
    n_val: int = 10_000
    batch_size: int = 256
    lr: float = 3e-3
    eval_every: int = 50
    n_draws: int = 10
    margin: float = 0.03
    max_steps: int = 10_000
    hidden: tuple[int, ...] = (64, 64)


@dataclass
class ConvergenceRun:
    """One training run: wall seconds and steps to the target (or to the cap, ``reached``
    False: then both are lower bounds), and the NLL curve."""

    library: str
    seed: int
    reached: bool
    seconds: float
    steps: int
    curve_steps: list[int] = field(default_factory=list)
    curve_nll: list[float] = field(default_factory=list)


def optimal_nll(toy: HeteroskedasticToy, x: np.ndarray) -> float:
    r"""Expected NLL of the true noise model at the points ``x``: mean of
    :math:`\frac12\log(2\pi e\,\sigma^2(x))`."""
    sigma = toy.sigma(x)
    return float(np.mean(0.5 * np.log(2.0 * math.pi * math.e * sigma**2)))


def toy_data(setup: ConvergenceSetup) -> tuple[Tensor, Tensor, Tensor, Tensor, float]:
    """Training and held-out toy data on :func:`lhcbnn.device` and the optimal held-out NLL."""
    toy = HeteroskedasticToy()
    x_train, y_train = toy.sample(setup.n_train, seed=11)
    x_val, y_val = toy.sample(setup.n_val, seed=12)
    tensors = [
        lb.as_tensor(a, "data", dtype=torch.float32) for a in (x_train, y_train, x_val, y_val)
    ]
    return (*tensors, optimal_nll(toy, x_val))


def predictive_nll(model: nn.Module, x: Tensor, y: Tensor, n_draws: int) -> float:
    """Held-out NLL of the predictive mixture of ``n_draws`` weight draws."""
    was_training = model.training
    model.eval()
    log_densities = []
    with torch.no_grad():
        for _ in range(n_draws):
            output = model(x)  # one call, one weight draw, in every library
            mean, log_var = output[:, :1], output[:, 1:]
            log_densities.append(
                -0.5 * (math.log(2.0 * math.pi) + log_var + (y - mean) ** 2 * torch.exp(-log_var))
            )
    model.train(was_training)
    stacked = torch.stack(log_densities)  # (n_draws, n_val, 1)
    return float(-(torch.logsumexp(stacked, dim=0) - math.log(n_draws)).mean())


def train_to_target(
    library: str,
    model: nn.Module,
    kl: KLFunction,
    data: tuple[Tensor, Tensor, Tensor, Tensor],
    target: float,
    setup: ConvergenceSetup,
    seed: int,
) -> ConvergenceRun:
    """Train until the held-out predictive NLL is at most ``target`` or ``max_steps``."""
    x_train, y_train, x_val, y_val = data
    model.to(lb.device()).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=setup.lr)
    generator = torch.Generator().manual_seed(seed)
    n_train = x_train.shape[0]
    run = ConvergenceRun(library, seed, False, 0.0, 0)
    order = torch.randperm(n_train, generator=generator)
    position = 0
    while run.steps < setup.max_steps:
        start = time.perf_counter()
        for _ in range(setup.eval_every):
            if position + setup.batch_size > n_train:
                order = torch.randperm(n_train, generator=generator)
                position = 0
            index = order[position : position + setup.batch_size].to(x_train.device)
            position += setup.batch_size
            output = model(x_train[index])
            target_batch = y_train[index]
            nll_mean = lb.losses.gaussian_nll(output[:, :1], output[:, 1:], target_batch).mean()
            loss = lb.losses.neg_elbo(nll_mean, kl(model), n_train)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        run.seconds += time.perf_counter() - start
        run.steps += setup.eval_every
        nll = predictive_nll(model, x_val, y_val, setup.n_draws)
        run.curve_steps.append(run.steps)
        run.curve_nll.append(nll)
        if nll <= target:
            run.reached = True
            break
    return run


def build(library: str, widths: tuple[int, ...]) -> tuple[nn.Module, KLFunction]:
    """The heteroskedastic MLP of ``library`` and its summed-KL function."""
    import bench_peers

    if library == "ours":
        return lb.BayesianMLP(widths[0], 1, hidden=widths[1:-1], heteroskedastic=True), (
            lb.kl_divergence
        )
    if library == "bayesian-torch":
        return bench_peers.bayesian_torch_mlp(widths), bench_peers.bayesian_torch_kl
    if library == "torchbnn":
        return bench_peers.torchbnn_mlp(widths), bench_peers.torchbnn_kl
    raise ValueError(f"unknown library {library!r}")


def compare(
    setup: ConvergenceSetup, seeds: tuple[int, ...], peers: tuple[str, ...]
) -> dict[str, object]:
    """Runs of ours and every peer for every seed, interleaved (ours, peer 1, peer 2, ours,
    ...), so that a change of the machine's load hits all libraries alike."""
    x_train, y_train, x_val, y_val, best = toy_data(setup)
    target = best + setup.margin
    widths = (1, *setup.hidden, 2)
    runs: list[ConvergenceRun] = []
    for seed in seeds:
        for library in ("ours", *peers):
            torch.manual_seed(seed)
            model, kl = build(library, widths)
            data = (x_train, y_train, x_val, y_val)
            runs.append(train_to_target(library, model, kl, data, target, setup, seed))
    return {
        "setup": asdict(setup),
        "optimal_nll": best,
        "target_nll": target,
        "runs": [asdict(run) for run in runs],
    }


def censored_median(values: list[float], reached: list[bool]) -> dict[str, object]:
    """Median of times where unreached runs count as "at least" their value.

    Unreached runs are ranked above every reached one (their true time is unknown but at
    least what they ran); the median is censored when it falls on such a run.

    Returns:
        ``{"value": v, "censored": bool}``; censored means "at least v".
    """
    ranked = sorted(zip((not r for r in reached), values, strict=True))
    censored, value = ranked[(len(ranked) - 1) // 2]
    if len(ranked) % 2 == 0:
        upper_censored, upper = ranked[len(ranked) // 2]
        censored = censored or upper_censored
        value = (value + upper) / 2
    return {"value": value, "censored": bool(censored)}


def time_ratio(
    ours: dict[str, object], theirs: dict[str, object]
) -> float | dict[str, object] | None:
    """``ours / theirs`` of two censored medians; ``bound`` says which way it is censored.

    * neither censored: the plain ratio, a float;
    * theirs censored (they needed at least that long): the ratio is at most r,
      ``{"value": r, "censored": True, "bound": "<="}``;
    * ours censored: at least r, ``"bound": ">="``;
    * both censored: None (nothing can be said).
    """
    if ours["censored"] and theirs["censored"]:
        return None
    value = float(ours["value"]) / float(theirs["value"])
    if not (ours["censored"] or theirs["censored"]):
        return value
    return {"value": value, "censored": True, "bound": ">=" if ours["censored"] else "<="}
