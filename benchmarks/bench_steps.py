"""Cost of one training step: VBLinear MLP against nn.Linear and the peer libraries.

A training step is what every mini-batch of :func:`lhcbnn.train` costs: forward pass,
heteroskedastic Gaussian NLL, KL (Bayesian models only), backward pass, Adam step. The
step functions of all models are timed in turn, round after round (ours, nn.Linear,
peers, ours, ...), so that a change of load on a shared machine hits them alike; each
round gives one ratio, and the median of the per-round ratios is the figure.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

import lhcbnn as lb
from lhcbnn.losses import gaussian_nll, neg_elbo

StepFunction = Callable[[], None]
KLFunction = Callable[[nn.Module], Tensor]

N_TRAIN = 50_000
"""Training-set size the KL is divided by (only its scale enters the step)."""


@dataclass(frozen=True)
class Network:
    """An MLP to time: ``widths = (n_in, hidden..., 2)`` (mean and log variance out)."""

    name: str
    widths: tuple[int, ...]
    batch_size: int

    def describe(self) -> str:
        """``"20-128-128-128-2, batch 1024"``."""
        return f"{'-'.join(map(str, self.widths))}, batch {self.batch_size}"


HEADLINE = Network("regression 20-128-128-128-2", (20, 128, 128, 128, 2), 1024)
"""The network of ``vblinear_step_ratio`` and the peer ratios: 20 inputs (five
four-momenta, as in an amplitude regression), three hidden layers of 128, batch 1024."""

SWEEP = (
    Network("toy 1-64-64-2", (1, 64, 64, 2), 1024),
    HEADLINE,
    Network("wide 64-512-512-2", (64, 512, 512, 2), 1024),
)
"""Networks of ``vblinear_step_ratio_by_network``: the regression toy's network, the
headline network and a wide one."""


def heteroskedastic_nll(output: Tensor, target: Tensor) -> Tensor:
    """Mean Gaussian NLL of outputs ``(batch, 2)`` (mean, log variance), targets ``(batch, 1)``."""
    return gaussian_nll(output[:, :1], output[:, 1:], target).mean()


def vblinear_mlp(widths: Sequence[int]) -> nn.Module:
    """``lb.BayesianMLP`` with these widths (last width 2: heteroskedastic, one target)."""
    if widths[-1] != 2:
        raise ValueError(f"the last width must be 2 (mean, log variance), got {widths[-1]}")
    return lb.BayesianMLP(widths[0], 1, hidden=tuple(widths[1:-1]), heteroskedastic=True)


def make_step(
    model: nn.Module, x: Tensor, y: Tensor, kl: KLFunction | None, lr: float = 1e-3
) -> StepFunction:
    """One training step of ``model`` on the fixed batch ``(x, y)`` with Adam.

    Loss: mean NLL + KL / ``N_TRAIN`` (plain mean NLL when ``kl`` is None).
    """
    model.to(lb.device()).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def step() -> None:
        nll_mean = heteroskedastic_nll(model(x), y)
        loss = nll_mean if kl is None else neg_elbo(nll_mean, kl(model), N_TRAIN)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def interleaved_times(
    steps: dict[str, StepFunction],
    rounds: int,
    round_seconds: float = 0.05,
    warmup_steps: int = 5,
) -> dict[str, list[float]]:
    """Seconds per step of every function, ``rounds`` values each, measured in turn.

    Each function runs ``warmup_steps`` first; then the number of steps per round is set
    so that the slowest function takes about ``round_seconds`` per round.
    """
    for step in steps.values():
        for _ in range(warmup_steps):
            step()
    slowest = 0.0
    for step in steps.values():
        start = time.perf_counter()
        step()
        slowest = max(slowest, time.perf_counter() - start)
    n_steps = max(1, int(round_seconds / max(slowest, 1e-6)))
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(n_steps):
                step()
            times[name].append((time.perf_counter() - start) / n_steps)
    return times


def ratio_summary(numerator: list[float], denominator: list[float]) -> dict[str, float]:
    """Median of the per-round ratios, their quartiles, and the ratio of the minima."""
    ratios = [a / b for a, b in zip(numerator, denominator, strict=True)]
    if len(ratios) >= 2:
        q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    else:
        q1 = q3 = ratios[0]
    return {
        "median": statistics.median(ratios),
        "q1": q1,
        "q3": q3,
        "ratio_of_minima": min(numerator) / min(denominator),
    }


def _batch(network: Network, seed: int = 0) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(network.batch_size, network.widths[0], generator=generator)
    y = torch.randn(network.batch_size, 1, generator=generator)
    return x.to(lb.device()), y.to(lb.device())


def step_models(network: Network, peers: Sequence[str] = ()) -> dict[str, StepFunction]:
    """Step functions of ``ours`` (VBLinear), ``linear`` (nn.Linear) and the given peers."""
    import bench_peers

    lb.seed_everything(0)
    x, y = _batch(network)
    steps = {
        "ours": make_step(vblinear_mlp(network.widths), x, y, lb.kl_divergence),
        "linear": make_step(bench_peers.linear_mlp(network.widths), x, y, None),
    }
    if "bayesian-torch" in peers:
        model = bench_peers.bayesian_torch_mlp(network.widths)
        steps["bayesian-torch"] = make_step(model, x, y, bench_peers.bayesian_torch_kl)
    if "torchbnn" in peers:
        model = bench_peers.torchbnn_mlp(network.widths)
        steps["torchbnn"] = make_step(model, x, y, bench_peers.torchbnn_kl)
    return steps


def measure_network(
    network: Network, rounds: int, peers: Sequence[str] = (), round_seconds: float = 0.05
) -> dict[str, object]:
    """Step times (median seconds) and ratios ours/other for one network."""
    times = interleaved_times(step_models(network, peers), rounds, round_seconds)
    return {
        "network": network.describe(),
        "rounds": rounds,
        "median_step_seconds": {name: statistics.median(t) for name, t in times.items()},
        "ratios": {
            f"ours/{name}": ratio_summary(times["ours"], t)
            for name, t in times.items()
            if name != "ours"
        },
    }
