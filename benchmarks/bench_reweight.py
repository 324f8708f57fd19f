"""Chapter 9's numbers over seeds: classifier weights against the exact density ratio.

Usage::

    python benchmarks/bench_reweight.py              # seeds 0-4, writes reweight_seed_spread.json
    python benchmarks/bench_reweight.py --seeds 0 1  # a quick look
    python benchmarks/bench_reweight.py --part zjets  # only the Z + jets numbers

Each seed repeats the chapter's toy protocol exactly (same package calls, same sizes): three
flows trained on the truth, on the truth without its bump and on the truth without its cut
(``lhcbnn.data.generator_toys``); for each a discriminator of truth against generated events;
its weights held against the exact ratio p_truth / p_flow (the flow knows its density), and the
reweighted x1 histogram against the exact marginal of the truth. On the Z + jets sample
(``lhcbnn.data.zjets``; m_mumu, log pT_mumu, log pT_j1; first half for training, second half
held out as the truth), a too-simple affine flow and a spline flow, each with its discriminator,
and the reweighted m_mumu histogram against the held-out events. ``measure(quick)`` gives the
figures of ``benchmarks/run.py``'s ``reweight`` section (toys only).
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
from lhcbnn.data import generator_toys

HERE = Path(__file__).resolve().parent
N_TRAIN, N_TEST = 20_000, 50_000
FLOW_STEPS, DISC_STEPS = 600, 2500
DISC_HIDDEN = (64, 64, 64)
EDGES = np.linspace(-3.0, 3.5, 27)
SOURCES = {
    "good": generator_toys.truth,
    "no_bump": generator_toys.no_bump,
    "no_cut": generator_toys.no_cut,
}

RUNS_IN_QUICK = True  # the quick mode (60 flow and 100 classifier steps, 4,000 events): seconds

GOALS = {
    "reweight_log_w_error_good": "<= 0.1",
    "reweight_log_w_error_no_bump": "<= 0.1",
    "reweight_log_w_error_no_cut": "<= 0.1",
    "reweight_chi2_ndf_no_bump": "<= 5 (unweighted: hundreds)",
}


def train_generator(
    name: str, seed: int, n_steps: int = FLOW_STEPS, n_train: int = N_TRAIN
) -> lb.flows.INN:
    """A small spline flow on ``n_train`` events of the named training set."""
    x = SOURCES[name].sample(n_train, seed=10 + seed)
    torch.manual_seed(seed)
    flow = lb.flows.INN(2, n_blocks=4, hidden=(32, 32))
    lb.flows.train_flow(flow, x, n_steps=n_steps, batch_size=512, seed=seed)
    return flow


def generate(flow: lb.flows.INN, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` events of the flow and their exact log density, float64."""
    with torch.no_grad():
        x = flow.sample(n, generator=torch.Generator().manual_seed(seed))
        log_p = flow.log_prob(x)
    return x.double().numpy(), log_p.double().numpy()


def test_generator(
    flow: lb.flows.INN,
    seed: int,
    disc_steps: int = DISC_STEPS,
    n_train: int = N_TRAIN,
    n_test: int = N_TEST,
) -> dict:
    """Train D on truth against this flow's events; its weights against the exact ratio."""
    x_truth = generator_toys.truth.sample(n_train, seed=100 + seed)
    x_gen, _ = generate(flow, n_train, 300 + seed)
    disc = lb.reweight.train_discriminator(
        x_truth, x_gen, hidden=DISC_HIDDEN, n_steps=disc_steps, seed=seed
    )
    x_test, log_p_flow = generate(flow, n_test, 400 + seed)
    x_truth_test = generator_toys.truth.sample(n_test, seed=200 + seed)
    log_w_exact = generator_toys.truth.log_pdf(x_test) - log_p_flow
    inside = np.isfinite(log_w_exact)  # outside the truth's support p_truth = 0
    log_w = disc.log_weights(x_test)
    w = lb.reweight.classifier_weights(disc.proba(x_test))
    expected = n_test * generator_toys.truth.bin_probabilities(EDGES)
    reweighted = lb.reweight.weighted_histogram(x_test[:, 0], w, EDGES)
    plain = lb.reweight.weighted_histogram(x_test[:, 0], None, EDGES)
    diagram = lb.tagging.reliability(
        np.r_[disc.proba(x_truth_test), disc.proba(x_test)],
        np.r_[np.ones(n_test), np.zeros(n_test)],
        n_bins=20,
    )
    near_bump = np.hypot(*(x_test - generator_toys.truth.bump_mean).T) < 0.25
    return {
        "disc": disc,
        "x_truth_test": x_truth_test,
        "diagram": diagram,
        "near_bump": near_bump,
        "x_test": x_test,
        "log_w": log_w,
        "log_w_exact": log_w_exact,
        "w": w,
        "reweighted": reweighted,
        "plain": plain,
        "expected": expected,
        "log_w_error": float(np.median(np.abs(log_w - log_w_exact)[inside])),
        "chi2_ndf": float(np.mean(((reweighted.counts - expected) / reweighted.errors) ** 2)),
        "chi2_ndf_plain": float(
            np.mean(((plain.counts - expected) / np.maximum(plain.errors, 1.0)) ** 2)
        ),
        "calibration_error": float(np.mean(np.abs(diagram.observed - diagram.predicted))),
        "median_w_bump": float(np.median(w[near_bump])),
        "median_w_bump_exact": float(np.median(np.exp(log_w_exact[near_bump]))),
        "mean_w_outside": float(w[~inside].mean()) if (~inside).any() else float("nan"),
        "fraction_outside": float(np.mean(~inside)),
        "sum_w_over_n": float(w.mean()),
    }


NUMBERS = ("log_w_error", "chi2_ndf", "chi2_ndf_plain", "sum_w_over_n", "calibration_error")


def seed_numbers(
    seed: int,
    flow_steps: int = FLOW_STEPS,
    disc_steps: int = DISC_STEPS,
    n_train: int = N_TRAIN,
    n_test: int = N_TEST,
) -> dict:
    """The chapter's numbers for one seed, keyed ``<generator>_<number>``."""
    row = {}
    for name in SOURCES:
        flow = train_generator(name, seed, flow_steps, n_train)
        result = test_generator(flow, seed, disc_steps, n_train, n_test)
        for key in NUMBERS:
            row[f"{name}_{key}"] = result[key]
        if name == "no_bump":
            row["no_bump_median_w_bump"] = result["median_w_bump"]
            row["no_bump_median_w_bump_exact"] = result["median_w_bump_exact"]
            flipped = lb.reweight.weighted_histogram(
                result["x_test"][:, 0], 1.0 / result["w"], EDGES
            )
            row["no_bump_chi2_ndf_flipped"] = float(
                np.mean(((flipped.counts - result["expected"]) / flipped.errors) ** 2)
            )
        if name == "no_cut":
            row["no_cut_mean_w_outside"] = result["mean_w_outside"]
    return row


# ---------------------------------------------------------------- Z + jets
Z_EDGES = np.linspace(70.0, 110.0, 41)
Z_GENERATORS = {
    "simple": ({"n_blocks": 2, "hidden": (16,), "coupling": "affine"}, 400),
    "spline": ({"n_blocks": 4, "hidden": (32, 32)}, 800),
}


def zjets_features(sample: object = None) -> np.ndarray:
    """(m_mumu [GeV], log pT_mumu, log pT_j1) per event, (n, 3): the dimuon system and the
    leading jet."""
    from lhcbnn.data import zjets

    sample = zjets.load() if sample is None else sample
    return np.stack(
        [sample.m_mumu, np.log(zjets.pt(sample.dimuon)), np.log(zjets.pt(sample.jets[:, 0]))], 1
    )


def chi2_two_histograms(a: object, b: object) -> float:
    """chi^2 per bin of two histograms with independent errors (empty bins skipped)."""
    variance = a.errors**2 + b.errors**2
    filled = variance > 0
    return float(np.mean((a.counts[filled] - b.counts[filled]) ** 2 / variance[filled]))


def zjets_numbers(seed: int, features: np.ndarray, kind: str, disc_steps: int = DISC_STEPS) -> dict:
    """The chapter's Z + jets protocol for one seed and one generator."""
    n = features.shape[0] // 2
    train, test = features[:n], features[n:]
    shift, scale = train.mean(0), train.std(0)
    options, steps = Z_GENERATORS[kind]
    torch.manual_seed(seed)
    flow = lb.flows.INN(3, **options)
    lb.flows.train_flow(flow, (train - shift) / scale, n_steps=steps, batch_size=512, seed=seed)
    x_gen = generate(flow, n, 300 + seed)[0] * scale + shift
    x_new = generate(flow, n, 400 + seed)[0] * scale + shift
    disc = lb.reweight.train_discriminator(
        train, x_gen, hidden=DISC_HIDDEN, n_steps=disc_steps, seed=seed
    )
    w = disc.weights(x_new)
    truth = lb.reweight.weighted_histogram(test[:, 0], None, Z_EDGES)
    peak = np.abs(x_new[:, 0] - 91.19) < 2.0
    shoulder = (x_new[:, 0] > 75.0) & (x_new[:, 0] < 80.0)
    return {
        f"z_{kind}_chi2_ndf": chi2_two_histograms(
            lb.reweight.weighted_histogram(x_new[:, 0], w, Z_EDGES), truth
        ),
        f"z_{kind}_chi2_ndf_plain": chi2_two_histograms(
            lb.reweight.weighted_histogram(x_new[:, 0], None, Z_EDGES), truth
        ),
        f"z_{kind}_median_w_peak": float(np.median(w[peak])),
        f"z_{kind}_median_w_shoulder": float(np.median(w[shoulder])),
    }


def measure(quick: bool = False) -> dict[str, float]:
    """Figures of the ``reweight`` section of ``benchmarks/run.py`` (one seed, one torch thread:
    these are quality figures, and small networks on a shared machine run fastest on one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if quick:
            row = seed_numbers(0, flow_steps=60, disc_steps=100, n_train=4000, n_test=10_000)
        else:
            row = seed_numbers(0)
    finally:
        torch.set_num_threads(threads)
    return {
        "reweight_log_w_error_good": row["good_log_w_error"],
        "reweight_log_w_error_no_bump": row["no_bump_log_w_error"],
        "reweight_log_w_error_no_cut": row["no_cut_log_w_error"],
        "reweight_chi2_ndf_no_bump": row["no_bump_chi2_ndf"],
        "reweight_chi2_ndf_no_bump_unweighted": row["no_bump_chi2_ndf_plain"],
        "reweight_mean_w_below_cut": row["no_cut_mean_w_outside"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=HERE / "reweight_seed_spread.json")
    parser.add_argument(
        "--part",
        choices=("toy", "zjets", "all"),
        default="all",
        help="which protocol; the other part's numbers in --out are kept",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    features = zjets_features() if args.part in ("zjets", "all") else None
    for seed in args.seeds:
        started = time.perf_counter()
        row = seed_numbers(seed) if args.part in ("toy", "all") else {}
        if features is not None:
            for kind in Z_GENERATORS:
                row.update(zjets_numbers(seed, features, kind))
        rows.append(row)
        print(f"seed {seed} ({time.perf_counter() - started:.0f} s): {rows[-1]}", flush=True)
    summary = {
        key: {
            "mean": statistics.fmean(row[key] for row in rows),
            "sd": statistics.stdev(row[key] for row in rows) if len(rows) > 1 else None,
            "values": [row[key] for row in rows],
        }
        for key in rows[0]
    }
    if args.out.exists() and args.part != "all":
        previous = json.loads(args.out.read_text())["summary"]
        summary = {**{k: v for k, v in previous.items() if k not in summary}, **summary}
    document = {
        "protocol": __doc__.split("\n\n")[2],
        "seeds": args.seeds,
        "n_train": N_TRAIN,
        "n_test": N_TEST,
        "flow_steps": FLOW_STEPS,
        "disc_steps": DISC_STEPS,
        "summary": summary,
    }
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
