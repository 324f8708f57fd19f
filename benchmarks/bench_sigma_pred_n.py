r"""sigma_pred against the training size, trained until the widths settle (book chapter 4).

For every training size :math:`N` and seed, one heteroskedastic BNN of chapter 4
(``lb.BayesianMLP(1, 1, (32, 32), heteroskedastic=True)``, unit Gaussian prior) is trained on
its own, independently drawn training set of the regression toy, with Adam at a constant
learning rate and a fixed batch size, and the prediction on a grid of :math:`x \in [-4, 4]`
(mean and :math:`\sigma_\mathrm{pred}` from 100 weight draws) is recorded after
``250 * 2**k`` steps. One long run per (N, seed) thus gives both protocols at once:

* equal steps: every :math:`N` read after the same number of steps;
* equal epochs: :math:`N` read after ``epochs * N / batch_size`` steps;

and the last checkpoints show whether the widths have settled. The chapter reads the JSON
this writes (``benchmarks/sigma_pred_n.json``) and fits the slope with its error bars.

Usage::

    python benchmarks/bench_sigma_pred_n.py                 # all sizes and seeds (~10 CPU minutes)
    python benchmarks/bench_sigma_pred_n.py --seeds 0 1 --out /tmp/part.json
    python benchmarks/bench_sigma_pred_n.py --merge a.json b.json --out benchmarks/sigma_pred_n.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import lhcbnn as lb

SIZES = (1_000, 4_000, 16_000)
CHECKPOINTS = tuple(250 * 2**k for k in range(7))  # 250 ... 16000 steps
BATCH_SIZE = 200
LR = 1e-2
HIDDEN = (32, 32)
N_DRAWS = 100
GRID = np.linspace(-4.0, 4.0, 81)
OUT = Path(__file__).with_name("sigma_pred_n.json")


def run(n_train: int, seed: int) -> dict[str, object]:
    """One training on an independent sample; predictions at every checkpoint."""
    toy = lb.data.toys.HeteroskedasticToy()
    x, y = (torch.as_tensor(a, dtype=torch.float32) for a in toy.sample(n_train, seed=seed))
    grid = torch.as_tensor(GRID[:, None], dtype=torch.float32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = lb.BayesianMLP(1, 1, hidden=HIDDEN, heteroskedastic=True)
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        generator = torch.Generator().manual_seed(seed)
        checkpoints: dict[str, dict[str, list[float]]] = {}
        step, start = 0, time.perf_counter()
        model.train()
        while step < CHECKPOINTS[-1]:
            order = torch.randperm(n_train, generator=generator)
            for first in range(0, n_train - BATCH_SIZE + 1, BATCH_SIZE):
                index = order[first : first + BATCH_SIZE]
                nll = model.nll(model(x[index]), y[index]).mean()
                loss = lb.losses.neg_elbo(nll, lb.kl_divergence(model), n_train)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                if step in CHECKPOINTS:
                    prediction = lb.predict(model, grid, n_samples=N_DRAWS)
                    model.train()
                    checkpoints[str(step)] = {
                        "mean": prediction.mean[:, 0].double().tolist(),
                        "sigma_pred": prediction.sigma_pred[:, 0].double().tolist(),
                        "sigma_stoch": prediction.sigma_stoch[:, 0].double().tolist(),
                    }
                if step >= CHECKPOINTS[-1]:
                    break
    return {
        "n_train": n_train,
        "seed": seed,
        "seconds": time.perf_counter() - start,
        "checkpoints": checkpoints,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--merge", type=Path, nargs="+", help="merge partial result files")
    args = parser.parse_args()
    if args.merge:
        parts = [json.loads(p.read_text()) for p in args.merge]
        merged = parts[0]
        for part in parts[1:]:
            merged["runs"] += part["runs"]
        merged["runs"].sort(key=lambda r: (r["n_train"], r["seed"]))
        args.out.write_text(json.dumps(merged))
        print(f"merged {len(merged['runs'])} runs into {args.out}")
        return
    torch.set_num_threads(args.threads)
    setup = {
        "network": f"lb.BayesianMLP(1, 1, {HIDDEN}, heteroskedastic=True), prior_sigma 1",
        "optimizer": f"Adam, constant lr {LR}, batch {BATCH_SIZE}, mean NLL + KL / n_train",
        "checkpoints": list(CHECKPOINTS),
        "grid": GRID.tolist(),
        "n_draws": N_DRAWS,
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "command": "python benchmarks/bench_sigma_pred_n.py",
    }
    runs = []
    inside = np.abs(GRID) <= 2
    for seed in args.seeds:
        for n_train in args.sizes:
            result = run(n_train, seed)
            runs.append(result)
            last = result["checkpoints"][str(CHECKPOINTS[-1])]["sigma_pred"]
            print(
                f"n_train {n_train:6d} seed {seed}: {result['seconds']:.0f} s, "
                f"sigma_pred inside {np.mean(np.array(last)[inside]):.4f}",
                flush=True,
            )
            args.out.write_text(json.dumps({"setup": setup, "runs": runs}))  # after every run
    print(f"wrote {args.out} ({len(runs)} runs)")


if __name__ == "__main__":
    main()
