"""sigma_pred/p of the Bayesian INN against the training size, at fixed step budgets (chapter 8).

The chapter's Bayesian INN (4 spline couplings, Bayesian subnetworks 32-32, the wedge ramp on
the unit box, batch 512, Adam 2e-3 with cosine decay) is trained on ``N`` events of the wedge
ramp for a fixed number of steps, for every ``N``, step budget and seed; the marginal
p(x1) and its sigma_pred come from 30 weight draws (``lb.flows.marginal_with_uncertainty``).
The figure is the median of sigma_pred/p over 0.1 < x1 < 0.95, and the slope of
log(sigma_pred/p) against log N with its error from the seed spread. A Bayesian network whose
widths had settled to the posterior would give a slope of -1/2; at a fixed step budget the
KL term (divided by N) weakens with N while the steps that could narrow the widths stay the
same, so the slope is flatter.

    python benchmarks/flow_sigma_n.py            # writes benchmarks/flow_sigma_n.json
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

HERE = Path(__file__).resolve().parent
SIZES = (5_000, 20_000, 80_000, 320_000)
STEPS = (800, 1_600)
SEEDS = (0, 1, 2)
BATCH, LR = 512, 2e-3


def relative_sigma(n_train: int, n_steps: int, seed: int) -> float:
    """Median sigma_pred/p of the marginal p(x1) over 0.1 < x1 < 0.95."""
    x = lb.data.toys.wedge_ramp.sample(n_train, seed=10_000 * seed + n_train % 9973)
    torch.manual_seed(seed)
    flow = lb.flows.INN(2, n_blocks=4, hidden=(32, 32), bounds=(0.0, 1.0), bayesian=True)
    lb.flows.train_flow(flow, x, n_steps=n_steps, batch_size=BATCH, lr=LR, seed=seed)
    x1, marginal = lb.flows.marginal_with_uncertainty(flow, n_points=40, n_draws=30, seed=seed)
    inner = (x1 > 0.1) & (x1 < 0.95)
    return float(np.median(marginal.sigma_pred[inner] / marginal.mean[inner]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "flow_sigma_n.json")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    start = time.perf_counter()
    for n_steps in STEPS:
        for n_train in SIZES:
            values = [relative_sigma(n_train, n_steps, seed) for seed in SEEDS]
            rows.append({"n_train": n_train, "n_steps": n_steps, "sigma_rel": values})
            print(
                f"steps {n_steps:5d}  N {n_train:7d}  sigma/p "
                + " ".join(f"{v:.4f}" for v in values),
                flush=True,
            )
    slopes = {}
    for n_steps in STEPS:
        chosen = [row for row in rows if row["n_steps"] == n_steps]
        log_n = np.log([row["n_train"] for row in chosen])
        per_seed = np.log([row["sigma_rel"] for row in chosen])  # (sizes, seeds)
        fits = [np.polyfit(log_n, per_seed[:, k], 1)[0] for k in range(len(SEEDS))]
        slopes[str(n_steps)] = {
            "slope": float(np.mean(fits)),
            "slope_seed_std": float(np.std(fits, ddof=1)),
        }
        print(f"steps {n_steps}: slope of log(sigma/p) vs log N = {slopes[str(n_steps)]}")
    summary = {
        "protocol": {
            "sizes": SIZES,
            "steps": STEPS,
            "seeds": SEEDS,
            "batch_size": BATCH,
            "lr": LR,
            "flow": "INN(2, n_blocks=4, hidden=(32, 32), bounds=(0, 1), bayesian=True)",
        },
        "rows": rows,
        "slopes": slopes,
        "seconds": time.perf_counter() - start,
        "threads": args.threads,
        "machine": platform.processor() or platform.machine(),
    }
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
