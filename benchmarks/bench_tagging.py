"""Chapter 7's numbers over seeds: the spreads its checks are set from, and the tagging figures.

Usage::

    python benchmarks/bench_tagging.py              # seeds 0-4, writes tagging_seed_spread.json
    python benchmarks/bench_tagging.py --seeds 0 1  # a quick look

Each seed repeats the chapter's protocol exactly (same package calls, same sizes): the toy
classifier against the Neyman-Pearson optimum, the jet tagger against the jet-mass and
N-subjettiness taggers, the spread-mean relation, the training-size scan and the calibration.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import lhcbnn as lb
from lhcbnn import tagging

HERE = Path(__file__).resolve().parent
TOP_MASS = 175.0  # GeV, centre of the mass tagger's window
TOY_TRAIN, TOY_TEST, TOY_EPOCHS = 20_000, 100_000, 15
JET_TRAIN, JET_TEST, JET_EPOCHS = 7000, 4000, 40
SCAN_SIZES = (700, 2100)  # and JET_TRAIN, the main network, at the same number of steps

GOALS = {
    "tagging_auc_bnn": "> jet-mass and tau_32 AUCs",
    "tagging_auc_mass": "(reference)",
    "tagging_auc_tau32": "(reference)",
    "toy_auc_gap_to_optimum": "<= 0.005",
}


def toy_numbers(seed: int) -> dict[str, float]:
    toy = lb.data.toys.tagging_toy
    x, y = toy.sample(TOY_TRAIN, seed=seed)
    x_test, y_test = toy.sample(TOY_TEST, seed=seed + 1)
    model = tagging.train_classifier(x, y, n_epochs=TOY_EPOCHS, seed=seed)
    prediction = tagging.predict_proba(model, x_test, n_samples=30).numpy()
    exact = toy.log_likelihood_ratio(x_test)
    learned = np.log(prediction.mean / (1 - prediction.mean))
    bulk = np.abs(exact) < 3
    diagram = tagging.reliability(prediction.mean, y_test, n_bins=10)
    auc_network = tagging.auc(prediction.mean, y_test)
    return {
        "toy_auc": auc_network,
        "toy_auc_gap_to_optimum": toy.optimal_auc() - auc_network,
        "toy_auc_paired_gap": tagging.auc(exact, y_test) - auc_network,
        "toy_log_ratio_median_error": float(np.median(np.abs(learned - exact)[bulk])),
        "toy_reliability_max_deviation": float(
            np.max(np.abs(diagram.observed - diagram.predicted))
        ),
    }


def jet_numbers(seed: int, data: tagging.JetTaggingData) -> dict[str, float]:
    model = tagging.train_classifier(data.x_train, data.y_train, n_epochs=JET_EPOCHS, seed=seed)
    prediction = tagging.predict_proba(model, data.x_test, n_samples=50).numpy()
    _, gaussian = tagging.sigmoid_of_gaussian(prediction.logit_mean, prediction.logit_sigma)
    diagram = tagging.reliability(prediction.mean, data.y_test, n_bins=10)
    row = {
        "jet_auc_bnn": tagging.auc(prediction.mean, data.y_test),
        "jet_sigma_pred_median": float(np.median(prediction.sigma_pred)),
        "jet_logit_sigma_median": float(np.median(prediction.logit_sigma)),
        "jet_spread_over_gaussian_median": float(np.median(prediction.sigma_pred / gaussian)),
        "jet_reliability_max_deviation": float(
            np.max(np.abs(diagram.observed - diagram.predicted))
        ),
        "jet_reliability_max_deviation_map": _map_calibration(model, data),
        "jet_reliability_chi2_per_bin": float(
            np.mean(((diagram.observed - diagram.predicted) / diagram.error) ** 2)
        ),
    }
    for n_train in SCAN_SIZES:
        epochs = round(JET_EPOCHS * JET_TRAIN / n_train)  # the same number of steps
        scan_model = tagging.train_classifier(
            data.x_train[:n_train], data.y_train[:n_train], n_epochs=epochs, seed=seed
        )
        scan = tagging.predict_proba(scan_model, data.x_test, n_samples=30).numpy()
        row[f"scan_logit_sigma_{n_train}"] = float(np.median(scan.logit_sigma))
        row[f"scan_auc_{n_train}"] = tagging.auc(scan.mean, data.y_test)
    row["scan_logit_sigma_ratio"] = row["scan_logit_sigma_700"] / row["jet_logit_sigma_median"]
    return row


def _map_calibration(model: torch.nn.Module, data: tagging.JetTaggingData) -> float:
    """Largest reliability deviation of the posterior-mean ("MAP") network."""
    with torch.no_grad(), lb.map_mode(model):
        logits = model(torch.as_tensor(data.x_test))[:, 0]
    diagram = tagging.reliability(torch.sigmoid(logits).double().numpy(), data.y_test, 10)
    return float(np.max(np.abs(diagram.observed - diagram.predicted)))


def derived(row: dict[str, float]) -> dict[str, float]:
    """Ratios and differences the chapter checks, per seed (so their spread is measured)."""
    return row | {
        "scan_logit_sigma_ratio_2100": row["scan_logit_sigma_2100"] / row["jet_logit_sigma_median"],
        "jet_reliability_map_minus_mean": row["jet_reliability_max_deviation_map"]
        - row["jet_reliability_max_deviation"],
    }


def summarise(rows: list[dict[str, float]]) -> dict[str, object]:
    """Mean, standard deviation and values of every key over the seeds."""
    rows = [derived(row) for row in rows]
    return {
        key: {
            "mean": statistics.fmean(row[key] for row in rows),
            "std": statistics.stdev(row[key] for row in rows) if len(rows) > 1 else None,
            "values": [row[key] for row in rows],
        }
        for key in rows[0]
    }


def physics_taggers(data: tagging.JetTaggingData) -> dict[str, float]:
    return {
        "jet_auc_mass": tagging.auc(-np.abs(data.mass_test - TOP_MASS), data.y_test),
        "jet_auc_tau32": tagging.auc(-data.tau32_test, data.y_test),
    }


def measure(quick: bool = False) -> dict[str, object]:
    """The benchmark figures of chapter 7 from one seed (``quick``: the toy only)."""
    toy = toy_numbers(0)
    results: dict[str, object] = {
        "toy_auc_gap_to_optimum": lb.data.toys.tagging_toy.optimal_auc() - toy["toy_auc"],
    }
    if not quick:
        data = tagging.jet_tagging_data(n_train=JET_TRAIN, n_test=JET_TEST)
        jets = jet_numbers(0, data) | physics_taggers(data)
        results |= {
            "tagging_auc_bnn": jets["jet_auc_bnn"],
            "tagging_auc_mass": jets["jet_auc_mass"],
            "tagging_auc_tau32": jets["jet_auc_tau32"],
        }
    return results


def exercise_tagger_spread(n_seeds: int = 10) -> dict[str, object]:
    """Exercise 7, task 4: the reference solution's AUC gap and worst reliability bin over
    ``n_seeds`` independent toy data sets, against the grader's allowed bands."""
    from lhcbnn.grading.tasks import ex07_classification as ex07

    toy = lb.data.toys.tagging_toy
    gaps, deviations, errors = [], [], []
    for seed in range(100, 100 + n_seeds):
        x, y, x_test, y_test = ex07._toy_data(seed)
        probabilities = ex07.tagger_reference(x, y, x_test, seed=seed)
        gaps.append(
            tagging.auc(toy.log_likelihood_ratio(x_test), y_test)
            - tagging.auc(probabilities, y_test)
        )
        diagram = tagging.reliability(probabilities, y_test, n_bins=10)
        deviations.append(float(np.max(np.abs(diagram.observed - diagram.predicted))))
        errors.append(float(np.mean(np.abs(diagram.observed - diagram.predicted))))
        print(
            f"exercise seed {seed}: AUC gap {gaps[-1]:.4f}, worst bin {deviations[-1]:.4f}, "
            f"mean |observed - predicted| {errors[-1]:.4f}",
            flush=True,
        )
    return {
        "auc_gap": {
            "values": gaps,
            "mean": statistics.fmean(gaps),
            "std": statistics.stdev(gaps),
            "allowed": ex07.MAX_AUC_GAP,
        },
        "reliability_max_deviation": {
            "values": deviations,
            "mean": statistics.fmean(deviations),
            "std": statistics.stdev(deviations),
        },
        "calibration_error": {
            "values": errors,
            "mean": statistics.fmean(errors),
            "std": statistics.stdev(errors),
            "allowed": ex07.MAX_CALIBRATION_ERROR,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=HERE / "tagging_seed_spread.json")
    parser.add_argument(
        "--exercise",
        action="store_true",
        help="measure exercise 7's outcome bands instead (10 seeds)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.exercise:
        out = HERE / "ex07_tagger_spread.json"
        out.write_text(json.dumps(exercise_tagger_spread(), indent=1) + "\n")
        print(out.read_text())
        return 0
    start = time.perf_counter()
    data = tagging.jet_tagging_data(n_train=JET_TRAIN, n_test=JET_TEST)
    rows = []
    for seed in args.seeds:
        rows.append(toy_numbers(seed) | jet_numbers(seed, data))
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in rows[-1].items()), flush=True)
    summary = summarise(rows)
    summary["physics_taggers"] = physics_taggers(data)
    summary["seeds"] = args.seeds
    summary["seconds"] = time.perf_counter() - start
    args.out.write_text(json.dumps(summary, indent=1) + "\n")
    for key, entry in summary.items():
        if isinstance(entry, dict) and "mean" in entry:
            std = entry["std"]
            print(f"{key:40s} {entry['mean']:.4f} +- {std if std is None else f'{std:.4f}'}")
    print(json.dumps(summary["physics_taggers"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
