"""Seed spread of the reference solution of exercise 9, task 4 (train_weights).

The task is graded by its outcome: the median |log w - log w_exact| of the student's weights at
the evaluation points must stay below ``MAX_MEDIAN_ERROR``
(``tests/grading/tasks/ex09_classifier_weights.py``, the instructor's hidden checks). This
script trains the reference solution (the same code as in
``solutions/ex09_classifier_weights.ipynb``) with ten seeds on fresh toy events, and also scores
the flipped convention and unit weights, so that the tolerance can be checked against the
spread::

    OMP_NUM_THREADS=1 python benchmarks/ex09_judge_tolerance.py   # ~30 s
"""

from __future__ import annotations

import importlib
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from lhcbnn.grading import EXERCISES

EXERCISES["ex09_classifier_weights"]  # loads the hidden checks from tests/grading/tasks
ex09 = importlib.import_module("lhcbnn.grading.tasks.ex09_classifier_weights")
HERE = Path(__file__).resolve().parent


def main() -> None:
    torch.set_num_threads(1)
    rows = []
    for seed in range(10):
        started = time.perf_counter()
        x_truth, x_gen, x_eval = ex09.toy_events(1000 + seed)
        w = ex09.train_reference(x_truth, x_gen, x_eval, seed=seed)
        exact = ex09.exact_log_ratio(x_eval[:, 0])
        at_bump = np.abs(x_eval[:, 0] - ex09.BUMP_MEAN) < 0.2
        rows.append(
            {
                "median_error": float(np.median(np.abs(np.log(w) - exact))),
                "bump_error": float(np.median(np.log(w[at_bump])) - np.median(exact[at_bump])),
                "bump_error_unit_weights": float(-np.median(exact[at_bump])),
                "flipped": float(np.median(np.abs(-np.log(w) - exact))),
                "unit_weights": float(np.median(np.abs(exact))),
                "seconds": time.perf_counter() - started,
                "passes": ex09.judge_weights([x_truth, x_gen, x_eval], (w,))[0],
            }
        )
        print(seed, rows[-1], flush=True)
    errors = [row["median_error"] for row in rows]
    summary = {
        "median_error_mean": statistics.fmean(errors),
        "median_error_sd": statistics.stdev(errors),
        "median_error_max": max(errors),
        "bump_error_mean": statistics.fmean(row["bump_error"] for row in rows),
        "bump_error_sd": statistics.stdev(row["bump_error"] for row in rows),
        "bump_error_unit_weights": statistics.fmean(row["bump_error_unit_weights"] for row in rows),
        "allowed_bump": ex09.MAX_BUMP_ERROR,
        "flipped_min": min(row["flipped"] for row in rows),
        "unit_weights_min": min(row["unit_weights"] for row in rows),
        "all_pass": all(row["passes"] for row in rows),
        "seconds_max": max(row["seconds"] for row in rows),
        "allowed": ex09.MAX_MEDIAN_ERROR,
    }
    print(summary)
    (HERE / "ex09_judge_tolerance.json").write_text(
        json.dumps({"summary": summary, "rows": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
