"""Seed spread of the reference solution of exercise 2, task 5 (train_mean_field).

The task is graded by its outcome: the trained means and widths must lie within
``MEAN_TOLERANCE`` posterior widths and ``WIDTH_TOLERANCE`` of the exact mean-field optimum
(``tests/grading/tasks/ex02_elbo.py``, the instructor's hidden checks). This script trains
the reference solution (the same code as in ``solutions/ex02_elbo.ipynb``) with ten seeds on
each graded case and prints the deviations, so that the tolerances can be checked against
the spread::

    OMP_NUM_THREADS=1 python benchmarks/ex02_judge_tolerance.py   # ~30 s
"""

from __future__ import annotations

import importlib
import math
import time

import numpy as np
import torch

import lhcbnn as lb
from lhcbnn.grading import EXERCISES
from lhcbnn.grading.tasks.base import plain

EXERCISES["ex02_elbo"]  # loads the hidden checks from tests/grading/tasks
ex02_elbo = importlib.import_module("lhcbnn.grading.tasks.ex02_elbo")


def train_mean_field(x, y, noise_sigma, prior_sigma, seed):  # noqa: ANN001, ANN201
    """The reference solution of the task (solutions/ex02_elbo.ipynb)."""
    model = lb.BayesianMLP(x.shape[1], 1, hidden=(), prior_sigma=prior_sigma)
    noise_log_var = 2 * math.log(noise_sigma)

    def known_noise_nll(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_var = torch.full_like(output, noise_log_var)
        return lb.losses.gaussian_nll(output, log_var, target).sum(-1)

    lb.train(
        model,
        x,
        y[:, None],
        n_epochs=1000,
        batch_size=x.shape[0],
        lr=0.05,
        lr_schedule="cosine",
        nll=known_noise_nll,
        seed=seed,
        progress=False,
    )
    return lb.conjugate.layer_posterior(model.net[0])


def main() -> None:
    for case in ex02_elbo.TRAIN_MEAN_FIELD.cases():
        args = [plain(a) for a in case.args]
        rows = []
        start = time.process_time()
        for seed in range(10):
            mu, sigma = train_mean_field(
                torch.tensor(args[0]), torch.tensor(args[1]), args[2], args[3], seed
            )
            values = (mu.numpy(), sigma.numpy())
            passed = ex02_elbo.judge_train_mean_field(args, values)[0]
            rows.append((*ex02_elbo._deviations(*values, *args[:4]), passed))
        table = np.array(rows, dtype=float)
        print(f"{case.label}: {(time.process_time() - start) / 10:.2f} s CPU per training")
        for column, name, tolerance in (
            (0, "means (posterior widths)", ex02_elbo.MEAN_TOLERANCE),
            (1, "widths (relative)", ex02_elbo.WIDTH_TOLERANCE),
        ):
            values = table[:, column]
            print(
                f"  {name:25s} mean {values.mean():.4f} std {values.std(ddof=1):.4f} "
                f"max {values.max():.4f}  tolerance {tolerance}"
            )
        print(f"  passed {int(table[:, 2].sum())} of 10")


if __name__ == "__main__":
    main()
