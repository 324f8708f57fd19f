r"""Top-pT regression on the shipped Pythia top jets (book chapter 5).

:func:`measure` trains the chapter's Bayesian network (two hidden layers of 32 units, a
three-component Gaussian-mixture likelihood, inputs from the 10 hardest constituents plus
the jet pT, mass and multiplicity, early stopping on the validation NLL) on 4000 top jets and
reports on 1200 held-out jets:

* ``jet_pt_resolution_bnn`` and ``jet_pt_resolution_naive``: the 68% interquantile half-width
  of :math:`(p_{T,\mathrm{pred}} - p_{T,t})/p_{T,t}` of the network and of the naive estimate
  :math:`p_{T,t} = p_{T,\mathrm{jet}}`;
* ``jet_pt_bias_bnn``: the median of the same ratio;
* ``jet_pull_width``: the standard deviation of the pulls :math:`(\bar m - t)/\sigma_\mathrm{tot}`;
* ``jet_coverage_68``, ``jet_coverage_95``: the fraction of held-out labels inside the
  central 68% and 95% intervals of the predictive distribution;
* ``jet_train_seconds``: wall seconds of the training (on a loaded machine, say so).

``python benchmarks/bench_jets.py --spread 6`` runs every trained number of chapter 5 over six
network seeds on the chapter's data split and writes their mean and standard deviation to
``benchmarks/jets_seed_spread.json``; the chapter's check bands come from that file (another
machine changes the floating-point path of the training, which acts like another seed). With
``--vary-split`` the split is drawn anew for every seed too, which measures what the 1,200
held-out jets can resolve (``benchmarks/jets_seed_spread_splits.json``).

``python benchmarks/bench_jets.py --ensemble 6`` measures the calibration remedies of chapter 5
over six seeds (``benchmarks/jets_ensemble_spread.json``, read by the chapter): one BNN and an
ensemble of three (:func:`lhcbnn.jet_regression.ensemble`), each as trained and with one scale
of its predictive distribution fitted by the NLL of the validation jets
(:func:`lhcbnn.calibration.fit_scale`, :func:`~lhcbnn.calibration.rescaled_scores`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lhcbnn import jet_regression as jr
from lhcbnn.calibration import fit_scale, rescaled_scores, resolution

HERE = Path(__file__).resolve().parent
SPREAD_FILE = HERE / "jets_seed_spread.json"
ENSEMBLE_FILE = HERE / "jets_ensemble_spread.json"

GOALS = {
    "jet_pt_resolution_bnn": "<= 0.030",
    "jet_pt_resolution_naive": "(reference, 0.035)",
    "jet_pt_bias_bnn": "|.| <= 0.005",
    "jet_pull_width": "1 +- 0.1",
    "jet_coverage_68": "0.68 +- 0.03",
    "jet_coverage_95": "0.95 +- 0.03",
    "jet_pull_width_ensemble": "1 +- 0.1",
    "jet_coverage_68_ensemble": "0.68 +- 0.03",
    "jet_coverage_95_ensemble": "0.95 +- 0.03",
    "jet_pt_resolution_ensemble": "<= 0.030",
    "jet_ensemble_scale": "(reported) sigma_tot scale fitted on the validation jets",
    "jet_train_seconds": "(reported)",
}


def goal_met(key: str, value: float) -> bool | None:
    """Whether ``value`` meets the goal of ``key`` (None: reported only)."""
    checks = {
        "jet_pt_resolution_bnn": lambda v: v <= 0.030,
        "jet_pt_bias_bnn": lambda v: abs(v) <= 0.005,
        "jet_pull_width": lambda v: abs(v - 1.0) <= 0.1,
        "jet_coverage_68": lambda v: abs(v - 0.68) <= 0.03,
        "jet_coverage_95": lambda v: abs(v - 0.95) <= 0.03,
        "jet_pull_width_ensemble": lambda v: abs(v - 1.0) <= 0.1,
        "jet_coverage_68_ensemble": lambda v: abs(v - 0.68) <= 0.03,
        "jet_coverage_95_ensemble": lambda v: abs(v - 0.95) <= 0.03,
        "jet_pt_resolution_ensemble": lambda v: v <= 0.030,
    }
    return checks[key](value) if key in checks else None


def measure(quick: bool = False, seed: int = 0) -> dict[str, float]:
    """The chapter's network on the shipped sample, and the ensemble of three with its
    sigma_tot scale fitted on the validation jets (``*_ensemble``); ``quick`` caps the first
    network's training at 10 epochs (a smoke test of the pipeline, not a quality figure)."""
    setup = jr.setup(seed=seed)
    model = jr.make_network(setup.n_in, n_mixture=3, seed=seed)
    start = time.perf_counter()
    jr.fit(
        model,
        setup.x[setup.train],
        setup.y[setup.train],
        (setup.x[setup.val], setup.y[setup.val]),
        seed=seed,
        max_epochs=10 if quick else 100,
    )
    seconds = time.perf_counter() - start
    row = jr.scores(model, setup)
    ensemble = jr.ensemble(setup, 3, seed=seed, first=model)
    ensemble_row = jr.scores(ensemble, setup)
    scale = fit_scale(ensemble, setup.x[setup.val], setup.y[setup.val])
    calibrated = rescaled_scores(ensemble, setup.x[setup.test], setup.y[setup.test], scale)
    naive_bias, naive_resolution = resolution(
        setup.data.jet_pt[setup.test], setup.data.top_pt[setup.test]
    )
    return {
        "jet_pt_resolution_bnn": row["resolution"],
        "jet_pt_resolution_naive": naive_resolution,
        "jet_pt_bias_bnn": row["bias"],
        "jet_pull_width": row["pull_width"],
        "jet_coverage_68": row["coverage_68"],
        "jet_coverage_95": row["coverage_95"],
        "jet_pull_width_ensemble": calibrated["pull_width"],
        "jet_coverage_68_ensemble": calibrated["coverage_68"],
        "jet_coverage_95_ensemble": calibrated["coverage_95"],
        "jet_ensemble_scale": scale,
        "jet_pt_resolution_ensemble": ensemble_row["resolution"],
        "jet_train_seconds": seconds,
    }


def chapter_numbers(seed: int, split_seed: int | None = 0) -> dict[str, float]:
    """Every trained number chapter 5 checks, for one network seed; the data split is the
    chapter's (``split_seed=0``) or, with ``split_seed=None``, drawn with ``seed`` too."""
    setup = jr.setup(seed=seed if split_seed is None else split_seed)
    validation = (setup.x[setup.val], setup.y[setup.val])
    x_train, y_train = setup.x[setup.train], setup.y[setup.train]
    numbers: dict[str, float] = {}
    models = {}
    for name, n_mixture, bayesian in (
        ("bnn", 3, True),
        ("bnn_gauss", 0, True),
        ("det", 3, False),
    ):
        model = jr.make_network(setup.n_in, n_mixture, bayesian=bayesian, seed=seed)
        history = jr.fit(model, x_train, y_train, validation, seed=seed)
        models[name] = model
        numbers[f"{name}_best_epoch"] = float(history.best_epoch)
        for key, value in jr.scores(model, setup).items():
            numbers[f"{name}_{key}"] = value
    overtrained = jr.make_network(setup.n_in, 3, bayesian=False, seed=seed)
    jr.fit(overtrained, x_train, y_train, validation, seed=seed, patience=None)
    numbers["det_100_epochs_pull_width"] = jr.scores(overtrained, setup)["pull_width"]
    numbers["det_100_epochs_coverage_68"] = jr.scores(overtrained, setup)["coverage_68"]
    smearing = jr.smearing_study(setup, (0.0, 0.02, 0.05, 0.10), models["bnn"], seed=seed)
    numbers["smearing_slope"] = smearing.slope
    numbers["smearing_intercept"] = smearing.intercept
    numbers["smearing_sigma_0_squared"] = float(smearing.sigma_stoch[0] ** 2)
    numbers["smearing_sigma_pred_ratio"] = float(
        smearing.sigma_pred.max() / smearing.sigma_pred.min()
    )
    studies = jr.independent_study(setup, n_sets=4, seed=seed)
    summary = studies.summary()
    numbers["independent_ratio"] = summary["ratio"]
    numbers["independent_coverage_1_others"] = summary["coverage_1_others"]
    naive = resolution(setup.data.jet_pt[setup.test], setup.data.top_pt[setup.test])
    numbers["naive_bias"], numbers["naive_resolution"] = naive
    return numbers


def ensemble_numbers(seed: int) -> dict[str, float]:
    """Chapter 5's calibration remedies for one seed on the chapter's split: one BNN (member 0)
    and the ensemble of three, each as trained and rescaled by :func:`fitted_scale`."""
    setup = jr.setup(seed=0)
    first = jr.make_network(setup.n_in, 3, seed=seed)
    jr.fit(
        first,
        setup.x[setup.train],
        setup.y[setup.train],
        (setup.x[setup.val], setup.y[setup.val]),
        seed=seed,
    )
    numbers: dict[str, float] = {}
    for name, model in (("bnn", first), ("ens3", jr.ensemble(setup, 3, seed=seed, first=first))):
        x_test, y_test = setup.x[setup.test], setup.y[setup.test]
        for key, value in rescaled_scores(model, x_test, y_test, 1.0).items():
            numbers[f"{name}_{key}"] = value
        row = jr.scores(model, setup)
        numbers[f"{name}_resolution"] = row["resolution"]
        numbers[f"{name}_sigma_pred_over_tot"] = row["sigma_pred"] / row["sigma_tot"]
        scale = fit_scale(model, setup.x[setup.val], setup.y[setup.val])
        numbers[f"{name}_scale"] = scale
        for key, value in rescaled_scores(model, x_test, y_test, scale).items():
            numbers[f"{name}_scaled_{key}"] = value
    return numbers


def spread(
    seeds: list[int], split_seed: int | None = 0, numbers=None
) -> dict[str, dict[str, float]]:  # noqa: ANN001
    """Mean and standard deviation (ddof=1) over seeds of every chapter number (of
    ``numbers(seed)``, default :func:`chapter_numbers`)."""
    runs = []
    for seed in seeds:
        start = time.perf_counter()
        runs.append(chapter_numbers(seed, split_seed) if numbers is None else numbers(seed))
        print(f"seed {seed}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    result = {}
    for key in runs[0]:
        values = np.array([run[key] for run in runs])
        result[key] = {
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)),
            "values": [float(v) for v in values],
        }
    return result


def width_init_study(log_var_inits: tuple[float, ...] = (-9.0, -7.0, -6.0, -5.0)) -> dict:
    """sigma_pred against independent trainings, and the full network's calibration, for
    several initial log variances of the Bayesian weights (chapter 5, what goes wrong)."""
    setup = jr.setup(seed=0)
    validation = (setup.x[setup.val], setup.y[setup.val])
    rows = {}
    for log_var_init in log_var_inits:
        summary = jr.independent_study(setup, 4, seed=0, log_var_init=log_var_init).summary()
        model = jr.make_network(setup.n_in, 3, seed=0, log_var_init=log_var_init)
        history = jr.fit(model, setup.x[setup.train], setup.y[setup.train], validation, seed=0)
        rows[str(log_var_init)] = {
            "independent_ratio": summary["ratio"],
            "best_epoch": history.best_epoch,
            **jr.scores(model, setup),
        }
        print(log_var_init, rows[str(log_var_init)], file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--spread", type=int, default=0, help="seeds for the spread study")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=SPREAD_FILE)
    parser.add_argument(
        "--vary-split", action="store_true", help="draw the data split with each seed too"
    )
    parser.add_argument("--ensemble", type=int, default=0, help="seeds for the ensemble study")
    parser.add_argument("--width-init", action="store_true", help="the log-variance init study")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.width_init:
        rows = width_init_study()
        (HERE / "jets_width_init.json").write_text(json.dumps(rows, indent=1) + "\n")
        return
    if args.ensemble:
        seeds = list(range(args.first_seed, args.first_seed + args.ensemble))
        result = spread(seeds, numbers=ensemble_numbers)
        ENSEMBLE_FILE.write_text(json.dumps({"seeds": seeds, "numbers": result}, indent=1) + "\n")
        for key, row in result.items():
            print(f"{key:36s} {row['mean']:9.4f} +- {row['std']:.4f}")
        return
    if args.spread:
        seeds = list(range(args.first_seed, args.first_seed + args.spread))
        result = spread(seeds, None if args.vary_split else 0)
        args.out.write_text(json.dumps({"seeds": seeds, "numbers": result}, indent=1) + "\n")
        for key, row in result.items():
            print(f"{key:36s} {row['mean']:9.4f} +- {row['std']:.4f}")
        return
    for key, value in measure(quick=args.quick).items():
        met = goal_met(key, value)
        mark = "" if met is None else ("met" if met else "NOT met")
        print(f"{key:26s} {value:8.4f}   goal {GOALS[key]:20s} {mark}")


if __name__ == "__main__":
    main()
