"""Chapter 11's integration figures: a flow trained by the variance loss against flat
sampling and VEGAS at equal integrand calls, and the seed spread of the chapter's numbers.

Usage::

    python benchmarks/bench_integration.py              # seeds 0-4: integration_seed_spread.json
    python benchmarks/bench_integration.py --reference  # integration_reference.json

Protocol (the chapter reads it from ``integration_seed_spread.json`` and trains with it):
each integrand gets ``n_steps * batch_size`` training calls for the flow
(``lb.flows.INN(d, bounds=(0, 1))``, spline couplings, uniform base, zero-initialised last
layers) and the same number for VEGAS (10 iterations), then ``n_eval`` fresh calls per
sampler (``lb.flows.integration.compare_samplers``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

import lhcbnn as lb
from lhcbnn.flows import integration as it

HERE = Path(__file__).resolve().parent

SETUP = {
    "camel2": {"dim": 2, "n_blocks": 4, "hidden": [32, 32], "n_steps": 400, "batch_size": 1024},
    "camel4": {"dim": 4, "n_blocks": 6, "hidden": [32, 32], "n_steps": 500, "batch_size": 1024},
    "gluons": {"dim": 5, "n_blocks": 6, "hidden": [32, 32], "n_steps": 300, "batch_size": 1024},
    "n_eval": 100_000,
}
"""The chapter's protocol (camel2, gluons) and the benchmark's camel in 4 dimensions."""

GOALS = {
    "integration_gluons_var_ratio_vegas": "< 1 (flow variance below VEGAS at equal calls)",
    "integration_camel2_var_ratio_vegas": "< 1",
    "integration_camel4_var_ratio_vegas": "< 1",
    "integration_gluons_rel_std_vegas_plus": "(reported: vegas+ error x sqrt(N) / I)",
}


def integrand(name: str) -> it.Integrand:
    """The integrand of a setup: the camel (width 0.2) or the gg -> ggg cross section [pb]."""
    return it.GluonCrossSection() if name == "gluons" else it.camel


def truth(name: str) -> float | None:
    """Exact integral of the camel; for gg -> ggg the stored high-statistics reference."""
    if name.startswith("camel"):
        return it.camel_integral(SETUP[name]["dim"])
    path = HERE / "integration_reference.json"
    return json.loads(path.read_text())["value"] if path.exists() else None


def run(name: str, seed: int, scale: float = 1.0) -> dict[str, float]:
    """One seed of one setup (``scale`` < 1 shortens training and evaluation)."""
    setup = SETUP[name]
    torch.manual_seed(seed)
    flow = lb.flows.INN(
        setup["dim"], n_blocks=setup["n_blocks"], hidden=tuple(setup["hidden"]), bounds=(0, 1)
    )
    result = it.compare_samplers(
        integrand(name),
        flow,
        n_steps=max(10, int(setup["n_steps"] * scale)),
        batch_size=setup["batch_size"],
        n_eval=max(10_000, int(SETUP["n_eval"] * scale)),
        seed=seed,
    )
    numbers: dict[str, float] = {"flow_seconds": result.seconds["flow"]}
    exact = truth(name)
    for sampler, estimate in result.estimates.items():
        numbers[f"rel_std_{sampler}"] = estimate.rel_std
        numbers[f"efficiency_{sampler}"] = estimate.efficiency
        if exact is not None:
            numbers[f"pull_{sampler}"] = (estimate.value - exact) / estimate.error
    numbers["var_ratio_flat"] = result.variance_ratio("flow", "flat")
    numbers["var_ratio_vegas"] = result.variance_ratio("flow", "vegas")
    stratified = it.vegas_stratified(
        integrand(name),
        setup["dim"],
        n_calls=result.training_calls // 10,
        n_eval=max(10_000, int(SETUP["n_eval"] * scale)),
        seed=seed,
    )
    numbers["rel_std_vegas_plus"] = stratified.rel_std_equivalent
    numbers["flow_over_vegas_plus"] = (
        result.estimates["flow"].rel_std / stratified.rel_std_equivalent
    )
    if exact is not None:
        numbers["pull_vegas_plus"] = (stratified.value - exact) / stratified.error
    return numbers


def measure(quick: bool = False) -> dict[str, object]:
    """Benchmark figures from seed 0: variance ratios flow/flat and flow/VEGAS, efficiencies."""
    figures: dict[str, object] = {}
    for name in ("camel2", "camel4", "gluons"):
        numbers = run(name, seed=0, scale=0.1 if quick else 1.0)
        for key in (
            "var_ratio_flat",
            "var_ratio_vegas",
            "rel_std_flow",
            "rel_std_vegas",
            "rel_std_vegas_plus",
        ):
            figures[f"integration_{name}_{key}"] = numbers[key]
        for sampler in ("flat", "vegas", "flow"):
            figures[f"integration_{name}_efficiency_{sampler}"] = numbers[f"efficiency_{sampler}"]
    return figures


def reference(n_calls: int = 20_000_000, seed: int = 12345) -> dict[str, object]:
    """High-statistics gg -> ggg cross section: a VEGAS grid adapted with 10 x 200k calls,
    then ``n_calls`` fresh calls through it (independent of the chapter's seeds)."""
    f = it.GluonCrossSection()
    grid = it.train_vegas(f, 5, n_iterations=10, n_calls=200_000, seed=seed)
    chunks = [
        it.vegas_weights(f, grid, 250_000, seed=seed + 1 + k) for k in range(n_calls // 250_000)
    ]
    estimate = it.estimate(torch.cat(chunks))
    return {
        "value": estimate.value,
        "error": estimate.error,
        "unit": "pb",
        "n_calls": estimate.n_calls,
        "process": "gg -> ggg, sqrt_s = 500 GeV, alpha_s = 0.118, chapter-6 cuts",
        "command": "python benchmarks/bench_integration.py --reference",
    }


def spread(seeds: list[int]) -> dict[str, object]:
    """The chapter's numbers over ``seeds``: values, mean and std of each."""
    document: dict[str, object] = {"setup": SETUP, "seeds": seeds}
    for name in ("camel2", "gluons"):
        runs = []
        for seed in seeds:
            start = time.perf_counter()
            runs.append(run(name, seed))
            print(
                f"{name} seed {seed}: {runs[-1]} ({time.perf_counter() - start:.0f} s)", flush=True
            )
        document[name] = {
            key: {
                "values": [r[key] for r in runs],
                "mean": statistics.fmean(r[key] for r in runs),
                "std": statistics.stdev(r[key] for r in runs),
            }
            for key in runs[0]
        }
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--reference", action="store_true", help="the gg -> ggg reference")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.reference:
        document = reference()
        out = HERE / "integration_reference.json"
    else:
        document = spread(args.seeds)
        out = HERE / "integration_seed_spread.json"
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
