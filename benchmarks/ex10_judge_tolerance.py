"""Seed spread of the reference solution of exercise 10, task 5 (reweighted_mean_pt).

The task is graded by its outcome: the weighted mean pT must lie within five seed standard
deviations (``MEAN_SD`` in ``tests/grading/tasks/ex10_theory_uncertainties.py``) of the exact
mean of the reweighted exponential spectrum, and the error within 20% of the weighted-mean
error of the same events. This script draws each graded case with ten other seeds and prints
the spread of the mean, the mean reported error and the deviation of the graded seed::

    python benchmarks/ex10_judge_tolerance.py   # ~1 s
"""

from __future__ import annotations

import importlib

import numpy as np

from lhcbnn.grading import EXERCISES

EXERCISES["ex10_theory_uncertainties"]  # loads the hidden checks from tests/grading/tasks
tasks = importlib.import_module("lhcbnn.grading.tasks.ex10_theory_uncertainties")


def main() -> None:
    for scale, a, n, graded_seed in tasks.MEAN_CASES:
        truth = tasks.true_mean_pt(scale, a)
        means, errors = [], []
        for seed in range(1000, 1010):
            mean, error = tasks.mean_reference(tasks.sample_pt(scale, n, seed), a)
            means.append(float(mean))
            errors.append(float(error))
        graded, _ = tasks.mean_reference(tasks.sample_pt(scale, n, graded_seed), a)
        print(
            f"scale {scale:g} GeV, a = {a:g}, N = {n}: truth {truth:.3f} GeV, "
            f"10 seeds mean {np.mean(means):.3f} sd {np.std(means, ddof=1):.3f}, "
            f"mean reported error {np.mean(errors):.3f}; graded seed {graded_seed}: "
            f"{float(graded) - truth:+.3f} GeV (tolerance 5 x {tasks.MEAN_SD[graded_seed]})"
        )


if __name__ == "__main__":
    main()
