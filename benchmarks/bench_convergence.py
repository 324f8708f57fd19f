r"""Wall time to a fixed held-out NLL on the regression toy: ours against bayesian-torch.

Both networks are 1-64-64-2 heteroskedastic MLPs (mean and log variance out), trained with
the same loop: Adam, constant learning rate, shuffled mini-batches, loss per batch

.. math:: \frac1B\sum_{i\in\text{batch}} -\log\mathcal N(t_i\mid m_i, \sigma_i^2)
          + \frac{\mathrm{KL}}{N_\text{train}},

with the KL summed over every weight and bias in both (for bayesian-torch via
:func:`bench_peers.bayesian_torch_kl`, not its averaged ``get_kl_loss``). Every
``eval_every`` steps the clock stops and the held-out predictive NLL is computed,

.. math:: -\frac1M\sum_j\log\Big[\frac1S\sum_{s=1}^S
          \mathcal N\big(t_j\mid m_s(x_j), \sigma_s^2(x_j)\big)\Big],

from ``S`` weight draws (one network per draw for the whole held-out set, as
:func:`lhcbnn.predict` does). The time to reach the target counts training steps only.
The target is the NLL of the true noise model plus a margin, so both can reach it.
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
    max_seconds: float = 60.0
    hidden: tuple[int, ...] = (64, 64)


@dataclass
class ConvergenceRun:
    """One training run: wall seconds and steps to the target, and the NLL curve."""

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
            lb.resample(model)  # a no-op for the peers, which draw on every call
            output = model(x)
            mean, log_var = output[:, :1], output[:, 1:]
            log_densities.append(
                -0.5 * (math.log(2.0 * math.pi) + log_var + (y - mean) ** 2 * torch.exp(-log_var))
            )
    lb.resample(model)
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
    """Train until the held-out predictive NLL is at most ``target`` or time runs out."""
    x_train, y_train, x_val, y_val = data
    model.to(lb.device()).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=setup.lr)
    generator = torch.Generator().manual_seed(seed)
    n_train = x_train.shape[0]
    run = ConvergenceRun(library, seed, False, 0.0, 0)
    order = torch.randperm(n_train, generator=generator)
    position = 0
    while run.seconds < setup.max_seconds:
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


def compare(setup: ConvergenceSetup, seeds: tuple[int, ...]) -> dict[str, object]:
    """Runs of both libraries for every seed, in turn (ours, theirs, ours, ...)."""
    import bench_peers

    x_train, y_train, x_val, y_val, best = toy_data(setup)
    target = best + setup.margin
    widths = (1, *setup.hidden, 2)
    runs: list[ConvergenceRun] = []
    for seed in seeds:
        lb.seed_everything(seed)
        ours = lb.BayesianMLP(1, 1, hidden=setup.hidden, heteroskedastic=True)
        runs.append(
            train_to_target(
                "ours",
                ours,
                lb.kl_divergence,
                (x_train, y_train, x_val, y_val),
                target,
                setup,
                seed,
            )
        )
        lb.seed_everything(seed)
        theirs = bench_peers.bayesian_torch_mlp(widths)
        runs.append(
            train_to_target(
                "bayesian-torch",
                theirs,
                bench_peers.bayesian_torch_kl,
                (x_train, y_train, x_val, y_val),
                target,
                setup,
                seed,
            )
        )
    return {
        "setup": asdict(setup),
        "optimal_nll": best,
        "target_nll": target,
        "runs": [asdict(run) for run in runs],
    }
