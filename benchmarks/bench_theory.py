"""Chapter 10's figures: the conditional theory generator against the reweighted truth.

One training of the chapter's generator (``lhcbnn.augmentation.CHAPTER_TRAINING``) on two
thirds of the shipped Z + jets sample; for a = 0, 10 and 30 the chi2 per bin of the generated
pT,j1 histogram against the held-out truth reweighted by w(a), the mean pT,j1 generated/true
minus one, and the width of the generated theory band over the true one in the last pT,j1
bin and how much wider (relative to the median) the band is in the last bin than in the
first. ``quick``: 2000 training events and 50 steps, to check that the section runs (its
figures say nothing about the goals). The seed spread of the same figures is measured by
``benchmarks/theory_seeds.py``.

    python benchmarks/bench_theory.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from theory_seeds import band_figures, split, theory_bands

from lhcbnn import augmentation as aug

RUNS_IN_QUICK = True  # the quick mode (a tiny training, seconds) is part of run.py --quick

GOALS = {
    "theory_chi2_pt_a0": "<= 3",
    "theory_chi2_pt_a10": "<= 3",
    "theory_chi2_pt_a30": "<= 3",
    "theory_mean_pt_a30": "|.| <= 0.03",
    "theory_band_width_ratio_last_bin": "0.7 - 1.3",
    "theory_band_widening": ">= 3 (relative width, last over first pT,j1 bin)",
    "theory_train_seconds": "(1 thread)",
}


def measure(quick: bool = False) -> dict[str, object]:
    """The figures of chapter 10 from one seed (``quick``: a tiny run)."""
    train, test = split()
    settings = dict(aug.CHAPTER_TRAINING)
    if quick:
        train, settings["n_steps"] = train[:2000], 50
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        generator = aug.train_theory_generator(train, **settings, seed=0)
        seconds = time.perf_counter() - start
        members = aug.compare_to_truth(generator, test, n_generated=2_000 if quick else 50_000)
        n_band = 2_000 if quick else 20_000
        band = band_figures(*theory_bands(generator, train, test, n_generated=n_band))
    finally:
        torch.set_num_threads(threads)
    return {
        **{f"theory_chi2_pt_a{a}": members[a]["chi2_pt"] for a in members},
        "theory_mean_pt_a30": members["30"]["mean_pt"],
        "theory_band_width_ratio_last_bin": band["width_ratio_last"],
        "theory_band_widening": band["widening"],
        "theory_train_seconds": seconds,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(measure(parser.parse_args().quick), indent=1))
