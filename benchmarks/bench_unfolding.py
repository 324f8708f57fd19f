"""Chapter 11's unfolding figures: a conditional INN against the exact Gaussian posterior,
its calibration, and its prior dependence, over seeds.

Usage::

    python benchmarks/bench_unfolding.py        # seeds 0-4 -> unfolding_seed_spread.json

Protocol (the chapter's): simulation x ~ N(0, 1), y = x + N(0, 1); a cINN
(``lb.unfolding.train_unfolding``: 2 spline blocks, (32, 32), 600 steps of 512 on 20000 pairs);
2000 test events with 99 posterior samples each (``lb.unfolding.closure``); then data whose
truth is N(1, 1), unfolded with the same network.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from lhcbnn import unfolding as uf

HERE = Path(__file__).resolve().parent
SIMULATION = uf.GaussianSmearing(truth_mean=0.0, truth_sigma=1.0, smearing=1.0)
DATA = uf.GaussianSmearing(truth_mean=1.0, truth_sigma=1.0, smearing=1.0)

GOALS = {
    "unfolding_rank_chi2_per_ndf": "<= 3.3 (flat rank histogram: chi2 < 30 for 9 dof)",
    "unfolding_width_ratio": "1 +- 0.05",
    "unfolding_mean_rms_in_noise": "~ 1 (posterior means exact up to sampling noise)",
}


def run(seed: int, scale: float = 1.0) -> dict[str, float]:
    """One seed of the chapter's protocol (``scale`` < 1 shortens training)."""
    flow = uf.train_unfolding(SIMULATION, n_steps=max(20, int(600 * scale)), seed=seed)
    own = uf.closure(flow, SIMULATION, seed=1000 + seed)
    other = uf.closure(flow, SIMULATION, DATA, seed=2000 + seed)
    return {
        "mean_rms_in_noise": own.mean_rms_in_noise,
        "bias": own.bias,
        "width_ratio": own.width_ratio,
        "rank_chi2": own.histogram.chi2,
        "rank_p_value": own.histogram.p_value,
        "data_unfolded_mean": other.unfolded_mean,
        "data_truth_mean": other.truth_mean,
        "data_rank_chi2": other.histogram.chi2,
    }


def measure(quick: bool = False) -> dict[str, object]:
    """Benchmark figures from seed 0."""
    numbers = run(0, scale=0.1 if quick else 1.0)
    exact_mean, _ = SIMULATION.unfolded_with(DATA)
    return {
        "unfolding_rank_chi2_per_ndf": numbers["rank_chi2"] / 9,
        "unfolding_width_ratio": numbers["width_ratio"],
        "unfolding_mean_rms_in_noise": numbers["mean_rms_in_noise"],
        "unfolding_prior_bias": numbers["data_unfolded_mean"] - numbers["data_truth_mean"],
        "unfolding_prior_bias_exact": exact_mean - DATA.truth_mean,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    runs = []
    for seed in args.seeds:
        start = time.perf_counter()
        runs.append(run(seed))
        print(f"seed {seed}: {runs[-1]} ({time.perf_counter() - start:.0f} s)", flush=True)
    document = {
        "seeds": args.seeds,
        "command": "python benchmarks/bench_unfolding.py",
        **{
            key: {
                "values": [r[key] for r in runs],
                "mean": statistics.fmean(r[key] for r in runs),
                "std": statistics.stdev(r[key] for r in runs),
            }
            for key in runs[0]
        },
    }
    out = HERE / "unfolding_seed_spread.json"
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
