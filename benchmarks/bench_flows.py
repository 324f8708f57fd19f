"""Flows side by side: held-out NLL above the exact one for the same wall time (issue 12).

Models, all with 6 coupling blocks and (64, 64) hidden layers, trained in one process one
after the other with the same loop (Adam, initial lr 2e-3, cosine decay over the time budget,
batch 1024, gradient norm clipped at 5), on the same events:

* ``lhcbnn``: ``lb.flows.INN`` with its defaults (spline couplings; the ramps on the box
  [0, 1]^2 with a uniform base, the ring on the plane with a Gaussian base);
* ``bayesian``: the same with ``bayesian=True`` (ELBO loss, NLL scored with the posterior
  means);
* ``zuko_nsf``, ``zuko_realnvp``: zuko's neural spline flow and RealNVP;
* ``freia``: FrEIA's ``AllInOneBlock`` INN (affine clamp 2, soft permutations).

The peers see standardised inputs (training mean and standard deviation), with the
log-determinant of that map added back, so that their splines' [-5, 5] range and their
Gaussian base fit the data. The figure is the held-out NLL (100k events) minus the exact
NLL of the same events (``lhcbnn.data.toys``), and the training time at which it first fell
below 0.02 nats (evaluations are not counted as training time).

Also ``--choice``: the measurement behind the defaults of ``lb.flows.INN`` (coupling,
domain and base) at a fixed number of steps, written to ``benchmarks/flow_choice.json``.

    python benchmarks/bench_flows.py --seconds 60 --threads 2
    python benchmarks/bench_flows.py --choice --steps 600
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

import lhcbnn as lb

HERE = Path(__file__).resolve().parent
BLOCKS, HIDDEN = 6, (64, 64)
TOYS = ("wedge", "ring")
MODELS = ("lhcbnn", "bayesian", "zuko_nsf", "zuko_realnvp", "freia")
TARGET_GAP = 0.02


def toy_data(toy: str, n_train: int = 50_000, n_val: int = 100_000) -> tuple:
    """``(toy object, x_train, x_val, exact held-out NLL)`` as float32 tensors."""
    source = {"wedge": lb.data.toys.wedge_ramp, "ring": lb.data.toys.gaussian_ring}[toy]
    x_train = source.sample(n_train, seed=1)
    x_val = source.sample(n_val, seed=2)
    exact = -float(np.mean(source.log_pdf(x_val)))
    as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    return source, as_tensor(x_train), as_tensor(x_val), exact


class Standardised(nn.Module):
    """A peer flow on standardised inputs: log p(x) = log q((x - m)/s) - sum log s."""

    def __init__(self, log_prob: Callable[[Tensor], Tensor], module: nn.Module, x: Tensor) -> None:
        super().__init__()
        self.module = module
        self._log_prob = log_prob
        self.register_buffer("mean", x.mean(0))
        self.register_buffer("std", x.std(0))

    def log_prob(self, x: Tensor) -> Tensor:
        return self._log_prob((x - self.mean) / self.std) - torch.log(self.std).sum()


def build(model: str, toy: str, x_train: Tensor) -> tuple[nn.Module, bool]:
    """``(flow with .log_prob, is_bayesian)``; None if the peer is not installed."""
    bounds = (0.0, 1.0) if toy == "wedge" else None
    if model in ("lhcbnn", "bayesian"):
        flow = lb.flows.INN(
            2, n_blocks=BLOCKS, hidden=HIDDEN, bounds=bounds, bayesian=model == "bayesian"
        )
        return flow, model == "bayesian"
    if model.startswith("zuko"):
        import zuko

        kind = zuko.flows.NSF if model == "zuko_nsf" else zuko.flows.RealNVP
        peer = kind(2, transforms=BLOCKS, hidden_features=HIDDEN)
        return Standardised(lambda z: peer().log_prob(z), peer, x_train), False
    import FrEIA.framework as Ff
    import FrEIA.modules as Fm

    def subnet(n_in: int, n_out: int) -> nn.Module:
        return nn.Sequential(
            nn.Linear(n_in, HIDDEN[0]),
            nn.ReLU(),
            nn.Linear(HIDDEN[0], HIDDEN[1]),
            nn.ReLU(),
            nn.Linear(HIDDEN[1], n_out),
        )

    inn = Ff.SequenceINN(2)
    for _ in range(BLOCKS):
        inn.append(
            Fm.AllInOneBlock, subnet_constructor=subnet, affine_clamping=2.0, permute_soft=True
        )

    def log_prob(z: Tensor) -> Tensor:
        latent, log_jac = inn(z)
        return -0.5 * (latent**2).sum(1) - math.log(2 * math.pi) + log_jac

    return Standardised(log_prob, inn, x_train), False


def held_out_nll(flow: nn.Module, x_val: Tensor) -> float:
    flow.eval()
    with torch.no_grad(), lb.map_mode(flow):
        value = float(-torch.cat([flow.log_prob(part) for part in x_val.split(50_000)]).mean())
    flow.train()
    return value


def train_for(
    flow: nn.Module,
    bayesian: bool,
    x_train: Tensor,
    x_val: Tensor,
    exact: float,
    seconds: float,
    seed: int = 0,
    clock: str = "wall",
) -> dict[str, object]:
    """Train for ``seconds`` of training time; gap curve at geometric check times.

    ``clock="wall"`` counts wall time; ``clock="cpu"`` counts this process's CPU time, the
    fair budget on a machine shared with other jobs (one thread: CPU time = compute).
    """
    now = time.perf_counter if clock == "wall" else time.process_time
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(flow.parameters(), lr=2e-3)
    n_train = x_train.shape[0]
    checks = sorted({*np.geomspace(0.5, seconds, 16).tolist(), seconds})
    curve: list[tuple[float, int, float]] = []
    trained = 0.0
    steps = 0
    order, position = torch.randperm(n_train, generator=generator), 0
    flow.train()
    status = "ok"
    while trained < seconds:
        start = now()
        for group in optimizer.param_groups:
            group["lr"] = 2e-3 * 0.5 * (1.0 + math.cos(math.pi * min(trained / seconds, 1.0)))
        if position + 1024 > n_train:
            order, position = torch.randperm(n_train, generator=generator), 0
        batch = x_train[order[position : position + 1024]]
        position += 1024
        loss = -flow.log_prob(batch).mean()
        if bayesian:
            loss = loss + lb.kl_divergence(flow) / n_train
        if not torch.isfinite(loss):
            status = f"loss became {float(loss)} at step {steps}"
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(flow.parameters(), 5.0)
        optimizer.step()
        steps += 1
        trained += now() - start
        if checks and trained >= checks[0]:
            while checks and trained >= checks[0]:
                checks.pop(0)
            curve.append((trained, steps, held_out_nll(flow, x_val) - exact))
    if status == "ok" and (not curve or curve[-1][1] != steps):
        curve.append((trained, steps, held_out_nll(flow, x_val) - exact))
    reached = [t for t, _, gap in curve if gap <= TARGET_GAP]
    return {
        "gap": curve[-1][2] if curve and status == "ok" else None,
        "steps": steps,
        "seconds": trained,
        "seconds_to_target": reached[0] if reached else None,
        "curve": curve,
        "status": status,
    }


def installed(model: str) -> bool:
    name = {"zuko_nsf": "zuko", "zuko_realnvp": "zuko", "freia": "FrEIA"}.get(model)
    if name is None:
        return True
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def compare(
    seconds: float = 60.0,
    toys: tuple[str, ...] = TOYS,
    models: tuple[str, ...] = MODELS,
    log: Callable[[str], None] = print,
    clock: str = "wall",
    n_val: int = 100_000,
) -> dict:
    """Every model on every toy for ``seconds`` each: ``{toy: {model: result}}``."""
    results: dict[str, dict[str, object]] = {}
    for toy in toys:
        _, x_train, x_val, exact = toy_data(toy, n_val=n_val)
        results[toy] = {"exact_nll": exact}
        for model in models:
            if not installed(model):
                results[toy][model] = {"status": "not installed", "gap": None}
                continue
            torch.manual_seed(0)
            flow, bayesian = build(model, toy, x_train)
            result = train_for(flow, bayesian, x_train, x_val, exact, seconds, clock=clock)
            log(
                f"  {toy:6s} {model:13s} gap {result['gap']} nats, {result['steps']} steps, "
                f"to {TARGET_GAP}: {result['seconds_to_target']} s ({result['status']})"
            )
            results[toy][model] = result
    return results


CHOICES = {
    "wedge": {
        "spline, box, uniform base": dict(bounds=(0.0, 1.0)),
        "spline, box, logit + Gaussian": dict(bounds=(0.0, 1.0), base="gaussian"),
        "spline, plane, Gaussian": dict(),
        "affine, box, logit + Gaussian": dict(bounds=(0.0, 1.0), coupling="affine"),
        "affine, plane, Gaussian": dict(coupling="affine"),
    },
    "ring": {
        "spline, plane, Gaussian": dict(),
        "affine, plane, Gaussian": dict(coupling="affine"),
    },
}


def choice(n_steps: int, seeds: tuple[int, ...] = (0,)) -> dict:
    """Held-out NLL gap of each coupling/domain choice after ``n_steps`` (train_flow)."""
    out: dict[str, dict[str, object]] = {}
    for toy, options in CHOICES.items():
        _, x_train, x_val, exact = toy_data(toy)
        out[toy] = {}
        for name, kwargs in options.items():
            gaps, seconds = [], []
            for seed in seeds:
                torch.manual_seed(seed)
                flow = lb.flows.INN(2, n_blocks=BLOCKS, hidden=HIDDEN, **kwargs)
                start = time.perf_counter()
                try:
                    lb.flows.train_flow(
                        flow, x_train, n_steps=n_steps, seed=seed, record_every=n_steps
                    )
                    gaps.append(lb.flows.validation_nll(flow, x_val) - exact)
                except FloatingPointError as error:
                    gaps.append(float("nan"))
                    print(f"    {error}")
                seconds.append(time.perf_counter() - start)
            out[toy][name] = {"gaps": gaps, "seconds": seconds}
            print(
                f"  {toy:5s} {name:32s} gap {np.round(gaps, 4).tolist()} "
                f"({np.mean(seconds):.0f} s each)",
                flush=True,
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--choice", action="store_true")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--toys", nargs="+", choices=TOYS, default=list(TOYS))
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    if args.choice:
        result = {
            "n_steps": args.steps,
            "threads": args.threads,
            "load_average_start": load,
            "choices": choice(args.steps),
        }
        out = args.out or HERE / "flow_choice.json"
    else:
        result = {
            "seconds": args.seconds,
            "threads": args.threads,
            "clock": args.clock,
            "load_average_start": load,
            "toys": compare(args.seconds, tuple(args.toys), tuple(args.models), clock=args.clock),
        }
        out = args.out or Path("/tmp/bench_flows.json")
    result["load_average_end"] = os.getloadavg()
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
