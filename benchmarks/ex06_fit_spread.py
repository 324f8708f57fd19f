"""Seed spread of exercise 6's reference fit_amplitude: the tolerance of the outcome-graded task.

``python benchmarks/ex06_fit_spread.py`` trains the reference solution of ``fit_amplitude``
(``solutions/ex06_amplitudes.ipynb``) for 10 seeds on the grader's data, prints the median
|Delta| of each and of a linear fit, and writes ``benchmarks/ex06_fit_spread.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

import lhcbnn as lb
from lhcbnn.grading.tasks import ex06_amplitudes as ex06


def reference_fit(x_train, y_train, x_test, seed):  # noqa: ANN001, ANN201
    """The reference solution of the task (kept identical to the solution notebook)."""
    torch.manual_seed(seed)
    model = lb.DeterministicMLP(x_train.shape[1], 1, hidden=(64, 64), activation="silu")
    lb.train(
        model,
        x_train.float(),
        y_train.float(),
        n_epochs=25,
        batch_size=100,
        lr=3e-3,
        lr_schedule="cosine",
        seed=seed,
        progress=False,
    )
    return lb.predict(model, x_test.float(), n_samples=1).mean[:, 0].double()


def main() -> None:
    torch.set_num_threads(1)
    x_train, y_train, x_test, _, _ = ex06._fit_data()
    args = [torch.as_tensor(a) for a in (x_train, y_train, x_test)]
    rows = []
    for seed in range(10):
        start = time.perf_counter()
        y_pred = reference_fit(*args, seed).numpy()
        rows.append(
            {
                "seed": seed,
                "median_delta": ex06.fit_median_delta(y_pred),
                "seconds": time.perf_counter() - start,
            }
        )
        print(rows[-1], flush=True)
    medians = np.array([r["median_delta"] for r in rows])
    linear = ex06.fit_median_delta(ex06._linear_fit(x_train, y_train, x_test, 0))
    out = {
        "per_seed": rows,
        "mean": float(medians.mean()),
        "std": float(medians.std(ddof=1)),
        "max": float(medians.max()),
        "linear_fit": linear,
        "threshold": ex06.FIT_MEDIAN_MAX,
    }
    print(json.dumps({k: v for k, v in out.items() if k != "per_seed"}))
    (Path(__file__).parent / "ex06_fit_spread.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
