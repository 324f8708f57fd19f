"""Seed spread of chapter 10's checks: the theory generator against the reweighted truth.

Trains the chapter's conditional flow (``lhcbnn.augmentation.CHAPTER_TRAINING``, the same
train/test split of the shipped Z + jets sample) with five seeds and records, for a = 0, 10
and 30, the chi2 per bin of the generated pT,j1 and pT,mumu histograms against the held-out
truth reweighted by w(a), the mean pT,j1 generated/true - 1, and the width of the generated
band over the true one in the last pT,j1 bin. Writes ``benchmarks/theory_seeds.json``, which
the chapter reads for the bands of its checks::

    OMP_NUM_THREADS=1 python benchmarks/theory_seeds.py --jobs 2   # 5 seeds, a few minutes
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path

import numpy as np
import torch

from lhcbnn import augmentation as aug
from lhcbnn.data import zjets

HERE = Path(__file__).resolve().parent
A_VALUES = (0.0, 10.0, 30.0)
N_BAND, N_GENERATED_BAND = 40, 20_000


def split(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The chapter's split: two thirds of the shipped events train, one third is the truth."""
    observables = aug.FeatureMap.observables(zjets.load())
    order = np.random.default_rng(seed).permutation(len(observables))
    n_train = 2 * len(observables) // 3
    return observables[order[:n_train]], observables[order[n_train:]]


def theory_bands(
    generator: aug.TheoryGenerator,
    train: np.ndarray,
    test: np.ndarray,
    n_generated: int = N_GENERATED_BAND,
) -> tuple[aug.Band, aug.Band]:
    """The chapter's pT,j1 bands (generated, true) of the rate in units of the nominal one,
    <w(a)> p(pT,j1 | a), from its 40 values of a drawn uniformly in [0, 30]."""
    a_samples = np.random.default_rng(1).uniform(0, 30, N_BAND)
    generated = generator.histograms(a_samples, n_generated, aug.PT_BINS, 0, seed=100)
    generated *= aug.weight_normalisation(train[:, 0], a_samples)[:, None]
    truth, _ = aug.truth_histograms(test, a_samples, aug.PT_BINS, 0)
    truth *= aug.weight_normalisation(test[:, 0], a_samples)[:, None]
    return aug.theory_band(generated), aug.theory_band(truth)


def band_figures(generated: aug.Band, true: aug.Band) -> dict[str, float]:
    """Band width generated/true in the last pT,j1 bin, and the widening of the generated
    band: its relative half-width in the last bin over that in the first."""
    relative = (generated.high - generated.low) / (2 * generated.central)
    return {
        "width_ratio_last": float(
            (generated.high - generated.low)[-1] / (true.high - true.low)[-1]
        ),
        "widening": float(relative[-1] / relative[0]),
    }


def run_seed(seed: int, train: np.ndarray, test: np.ndarray, **overrides: object) -> dict:
    settings = {**aug.CHAPTER_TRAINING, **overrides}
    start = time.perf_counter()
    generator = aug.train_theory_generator(train, **settings, seed=seed)
    seconds = time.perf_counter() - start
    figures = aug.compare_to_truth(generator, test, a_values=A_VALUES)
    return {
        "seed": seed,
        "train_seconds": seconds,
        "members": figures,
        **band_figures(*theory_bands(generator, train, test)),
    }


def summarise(runs: list[dict]) -> dict:
    spread, mean = {}, {}
    for a in (f"{a:g}" for a in A_VALUES):
        spread[a], mean[a] = {}, {}
        for key in ("chi2_pt", "chi2_pt_mumu", "mean_pt"):
            values = [run["members"][a][key] for run in runs]
            spread[a][key] = float(np.std(values, ddof=1))
            mean[a][key] = float(np.mean(values))
    for key in ("width_ratio_last", "widening"):
        values = [run[key] for run in runs]
        spread[key], mean[key] = float(np.std(values, ddof=1)), float(np.mean(values))
    return {"mean": mean, "spread": spread}


def _one_seed(seed: int) -> dict:
    torch.set_num_threads(1)
    train, test = split()
    run = run_seed(seed, train, test)
    print(json.dumps(run), flush=True)
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1, help="seeds trained in parallel")
    parser.add_argument("--out", type=Path, default=HERE / "theory_seeds.json")
    args = parser.parse_args(argv)
    train, test = split()
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        runs = pool.map(_one_seed, range(args.seeds), chunksize=1)
    summary = summarise(runs)
    result = {
        "settings": {
            k: list(v) if isinstance(v, tuple) else v for k, v in aug.CHAPTER_TRAINING.items()
        },
        "n_train": len(train),
        "n_test": len(test),
        **summary,
        "runs": runs,
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
