"""Seed-to-seed spread of every trained number of chapter 8 (book/08_flows.ipynb).

Runs the chapter's protocol (same sizes, steps and seeds scheme) for one seed and writes a
JSON file; ``--summary`` collects the files into ``benchmarks/flow_chapter_seeds.json`` with
mean and standard deviation per quantity. The chapter's check bands are set from these.

    python benchmarks/flow_chapter_seeds.py --seed 0 --out /tmp/ch8/seed0.json
    python benchmarks/flow_chapter_seeds.py --summary /tmp/ch8/seed*.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

import lhcbnn as lb

HERE = Path(__file__).resolve().parent
N_TRAIN, N_VAL, BATCH, LR = 20_000, 50_000, 512, 2e-3
PLAIN_STEPS, BAYES_STEPS = 600, 800
N_X1, N_X2, N_DRAWS = 40, 20, 30
TOYS = {
    "wedge": ("wedge_ramp", (0.0, 1.0)),
    "kicker": ("kicker_ramp", (0.0, 1.0)),
    "ring": ("gaussian_ring", None),
}


def plain_gap(name: str, seed: int) -> float:
    toy_name, bounds = TOYS[name]
    toy = lb.data.toys.get(toy_name)
    x, x_val = toy.sample(N_TRAIN, seed=seed), toy.sample(N_VAL, seed=1000 + seed)
    torch.manual_seed(seed)
    flow = lb.flows.INN(2, n_blocks=4, hidden=(32, 32), bounds=bounds)
    lb.flows.train_flow(flow, x, n_steps=PLAIN_STEPS, batch_size=BATCH, lr=LR, seed=seed)
    return lb.flows.validation_nll(flow, torch.as_tensor(x_val, dtype=torch.float32)) + float(
        np.mean(toy.log_pdf(x_val))
    )


def bayesian_wedge(seed: int) -> dict[str, object]:
    toy = lb.data.toys.wedge_ramp
    x = toy.sample(N_TRAIN, seed=seed)
    torch.manual_seed(seed)
    flow = lb.flows.INN(2, n_blocks=4, hidden=(32, 32), bounds=(0.0, 1.0), bayesian=True)
    lb.flows.train_flow(flow, x, n_steps=BAYES_STEPS, batch_size=BATCH, lr=LR, seed=seed)
    g1 = (np.arange(N_X1) + 0.5) / N_X1
    g2 = (np.arange(N_X2) + 0.5) / N_X2
    grid = torch.tensor(
        np.stack(np.meshgrid(g1, g2, indexing="ij"), -1).reshape(-1, 2), dtype=torch.float32
    )
    pred = lb.flows.density_with_uncertainty(flow, grid, n_draws=N_DRAWS, seed=seed)
    marginal = pred.draws.reshape(N_DRAWS, N_X1, N_X2).mean(2)
    mean, sigma = marginal.mean(0), marginal.std(0, ddof=1)
    relative = sigma / mean
    inner = (g1 > 0.1) & (g1 < 0.95)
    index = int(np.argmin(np.where(inner, relative, np.inf)))
    return {
        "x1": g1.tolist(),
        "mean": mean.tolist(),
        "sigma_pred": sigma.tolist(),
        "argmin_relative": float(g1[index]),
        "min_relative": float(relative[index]),
        "median_relative": float(np.median(relative)),
        "edge_relative": float(relative[1]),
        "edge_over_min": float(relative[1] / relative[index]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--summary", nargs="*", type=Path, default=None)
    args = parser.parse_args()
    if args.summary is not None:
        runs = [json.loads(path.read_text()) for path in args.summary]
        keys = [k for k, v in runs[0].items() if isinstance(v, float)]
        summary = {
            k: {
                "values": [r[k] for r in runs],
                "mean": float(np.mean([r[k] for r in runs])),
                "std": float(np.std([r[k] for r in runs], ddof=1)),
            }
            for k in keys
        }
        means = np.array([r["mean"] for r in runs])
        sigmas = np.array([r["sigma_pred"] for r in runs])
        inner = (np.array(runs[0]["x1"]) > 0.1) & (np.array(runs[0]["x1"]) < 0.95)
        spread = means.std(0, ddof=1)
        claimed = np.sqrt((sigmas**2).mean(0))
        summary["independent_ratio_sigma_pred_over_spread"] = float(
            np.sqrt((claimed[inner] ** 2).mean() / (spread[inner] ** 2).mean())
        )
        document = {"n_seeds": len(runs), "seeds": [r["seed"] for r in runs], "summary": summary}
        (HERE / "flow_chapter_seeds.json").write_text(json.dumps(document, indent=2) + "\n")
        for k, v in summary.items():
            print(k, v if isinstance(v, float) else f"{v['mean']:.4f} +- {v['std']:.4f}")
        return
    torch.set_num_threads(1)
    result: dict[str, object] = {"seed": args.seed}
    for name in TOYS:
        result[f"gap_{name}"] = plain_gap(name, args.seed)
        print(name, result[f"gap_{name}"], flush=True)
    result.update(bayesian_wedge(args.seed))
    args.out.write_text(json.dumps(result) + "\n")
    print({k: v for k, v in result.items() if not isinstance(v, list)}, file=sys.stderr)


if __name__ == "__main__":
    main()
