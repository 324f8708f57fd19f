"""Exercise 11, task 4: std(w)/<w> and the pull of the reference solution over 10 seeds,
against the grader's band (tests/grading/tasks/ex11_beyond.py: MAX_REL_STD, 5 errors).

    python benchmarks/ex11_judge_tolerance.py    # writes benchmarks/ex11_judge_tolerance.json
"""

from __future__ import annotations

import importlib.util
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location(
    "ex11", HERE.parent / "tests" / "grading" / "tasks" / "ex11_beyond.py"
)
ex11 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ex11)


def main() -> int:
    torch.set_num_threads(1)
    rel_std, pulls, seconds = [], [], []
    for seed in range(100, 110):
        start = time.perf_counter()
        x, log_q = ex11.sample_camel_reference(seed)
        seconds.append(time.perf_counter() - start)
        w = ex11.camel(x) / np.exp(log_q)
        rel_std.append(float(w.std(ddof=1) / w.mean()))
        pulls.append(
            float((w.mean() - ex11.camel_integral()) / (w.std(ddof=1) / math.sqrt(w.size)))
        )
        print(
            f"seed {seed}: std(w)/<w> {rel_std[-1]:.4f}, pull {pulls[-1]:+.2f}, "
            f"{seconds[-1]:.1f} s",
            flush=True,
        )
    document = {
        "rel_std": {
            "values": rel_std,
            "mean": statistics.fmean(rel_std),
            "std": statistics.stdev(rel_std),
            "allowed_below": ex11.MAX_REL_STD,
        },
        "pull": {
            "values": pulls,
            "mean": statistics.fmean(pulls),
            "std": statistics.stdev(pulls),
            "allowed_abs_below": 5,
        },
        "seconds": seconds,
    }
    (HERE / "ex11_judge_tolerance.json").write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
