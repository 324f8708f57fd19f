"""Seed-to-seed spreads of the checked numbers of chapters 1 and 2 (the check pattern).

Every number that chapters 1 and 2 hold against a truth with ``lb.checks.check`` and that
comes from random toys or from training is recomputed here with several seeds; the
standard deviation over the seeds is the ``spread=`` the chapters pass, and each band is
at least four of them wide. Run::

    OMP_NUM_THREADS=1 python benchmarks/seed_spreads_part1.py  # ~2 min, writes the JSON

and compare ``benchmarks/seed_spreads_part1.json`` with the constants in the chapters.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats as scipy_stats

import lhcbnn as lb
from lhcbnn.stats import BinnedLikelihood, Nuisance, coverage

OUT = Path(__file__).with_name("seed_spreads_part1.json")
SEEDS = range(1, 9)


def chapter1_model() -> BinnedLikelihood:
    edges = np.linspace(110.0, 140.0, 31)
    centres = 0.5 * (edges[1:] + edges[:-1])
    signal = 60.0 * np.diff(scipy_stats.norm.cdf(edges, loc=125.0, scale=2.0))
    shape = np.exp(-(centres - 110.0) / 30.0)
    background = 1000.0 * shape / shape.sum()
    nuisances = [
        Nuisance("background normalisation (systematic)", "background", 0.05),
        Nuisance("signal cross section (theory)", "signal", 0.10),
    ]
    return BinnedLikelihood(signal, background, signal + background, nuisances)


def background_only_tail(model: BinnedLikelihood, n_toys: int, seed: int) -> float:
    """Fraction of background-only toys with q0 >= 1 (asymptotically 1 - Phi(1))."""
    rng = np.random.default_rng(seed)
    above = 0
    for _ in range(n_toys):
        toy = model.pseudo_experiment(0.0, None, rng)
        best = toy.fit()
        q0 = 2.0 * (toy.profile_nll(0.0) - best.nll_min) if best.mu_hat > 0 else 0.0
        above += int(q0 >= 1.0)
    return above / n_toys


def chapter2_training(seed: int) -> dict[str, float]:
    """The chapter-2 VBLinear training with training seed ``seed`` (data fixed, seed 2)."""
    n_train, noise_sigma, prior_sigma = 20, 0.1, 1.0
    rng = np.random.default_rng(2)
    x = rng.uniform(0.5, 2.5, size=(n_train, 1))
    y = 0.9 * x + 0.2 + noise_sigma * rng.standard_normal((n_train, 1))
    exact = lb.conjugate.BayesianLinearRegression(x, y, noise_sigma, prior_sigma)
    model = lb.BayesianMLP(1, 1, hidden=(), prior_sigma=prior_sigma)
    noise_log_var = 2 * math.log(noise_sigma)

    def known_noise_nll(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_var = torch.full_like(output, noise_log_var)
        return lb.losses.gaussian_nll(output, log_var, target).sum(-1)

    lb.train(
        model,
        x,
        y,
        n_epochs=4000,
        batch_size=n_train,
        lr=0.02,
        lr_schedule="cosine",
        nll=known_noise_nll,
        seed=seed,
        progress=False,
    )
    mu, sigma = lb.conjugate.layer_posterior(model.net[0])
    mu, sigma = mu.cpu(), sigma.cpu()
    best = exact.mean_field_sigma.cpu()
    mean_dev = (mu - exact.posterior_mean.cpu()) / exact.posterior_cov.diagonal().sqrt().cpu()
    return {
        "mean_shift_in_posterior_widths_max": float(mean_dev.abs().max()),
        "width_rel_dev_max": float((sigma / best - 1).abs().max()),
        "elbo_gap_to_optimum": float(
            exact.elbo(exact.posterior_mean, best) - exact.elbo(mu, sigma)
        ),
    }


def chapter2_probes(seed: int) -> dict[str, float]:
    """The chapter-2 gradient-estimator comparison and the lb.predict ratio, torch seed ``seed``."""
    n_train, noise_sigma = 20, 0.1
    rng = np.random.default_rng(2)
    x = torch.as_tensor(rng.uniform(0.5, 2.5, size=(n_train, 1)))
    t = 0.9 * x + 0.2 + noise_sigma * torch.as_tensor(rng.standard_normal((n_train, 1)))
    probe = lb.VBLinear(1, 1).double()
    with torch.no_grad():
        probe.weight_mu.fill_(0.9)
        probe.bias_mu.fill_(0.2)
        probe.weight_log_var.fill_(2 * math.log(0.05))
        probe.bias_log_var.fill_(2 * math.log(0.05))

    def gradient(shared: bool) -> float:
        probe.zero_grad()
        if shared:
            weight = probe.weight_mu + (0.5 * probe.weight_log_var).exp() * torch.randn_like(
                probe.weight_mu
            )
            bias = probe.bias_mu + (0.5 * probe.bias_log_var).exp() * torch.randn_like(
                probe.bias_mu
            )
            output = x @ weight.T + bias
        else:
            output = probe.train()(x)
        (((output - t) ** 2).mean() / (2 * noise_sigma**2)).backward()
        return probe.weight_log_var.grad.item()

    torch.manual_seed(seed)
    shared = np.array([gradient(True) for _ in range(2000)])
    local = np.array([gradient(False) for _ in range(2000)])
    # lb.predict on a mean-field line at the optimum of the chapter's data
    exact = lb.conjugate.BayesianLinearRegression(x, t, noise_sigma, 1.0)
    model = lb.BayesianMLP(1, 1, hidden=(), prior_sigma=1.0).double()
    with torch.no_grad():
        layer = model.net[0]
        layer.weight_mu.fill_(float(exact.posterior_mean[0]))
        layer.bias_mu.fill_(float(exact.posterior_mean[1]))
        layer.weight_log_var.fill_(float(2 * exact.mean_field_sigma[0].log()))
        layer.bias_log_var.fill_(float(2 * exact.mean_field_sigma[1].log()))
    model.eval()
    x_plot = np.linspace(0.0, 4.0, 81)[:, None]
    torch.manual_seed(seed)
    sigma_pred = lb.predict(model, x_plot, n_samples=400).sigma_pred.detach().cpu().numpy()
    formula = np.sqrt(
        x_plot[:, 0] ** 2 * exact.mean_field_sigma[0].item() ** 2
        + exact.mean_field_sigma[1].item() ** 2
    )
    return {
        "grad std ratio": float(shared.std() / local.std()),
        "predict ratio": float((sigma_pred.reshape(-1) / formula).mean()),
    }


def main() -> None:
    """Run the parts named on the command line (default all) and update the JSON file."""
    parts = sys.argv[1:] or ["ch1", "ch2-train", "ch2-probes"]
    results: dict[str, dict[str, object]] = json.loads(OUT.read_text()) if OUT.exists() else {}
    if "ch1" in parts:
        model = chapter1_model()
        start = time.perf_counter()
        values = [coverage(model, mu_true=1.0, n_toys=1000, threshold=1.0, seed=s) for s in SEEDS]
        results["ch1 coverage of the 68% interval, 1000 toys"] = {"values": values}
        print("coverage", values, f"{time.perf_counter() - start:.0f} s", flush=True)
        values = [background_only_tail(model, 500, s) for s in SEEDS]
        results["ch1 background-only toys with q0 >= 1, 500 toys"] = {"values": values}
    if "ch2-train" in parts:
        rows = [chapter2_training(s) for s in SEEDS]
        for key in rows[0]:
            results[f"ch2 trained VBLinear: {key}"] = {"values": [r[key] for r in rows]}
    if "ch2-probes" in parts:
        rows = [chapter2_probes(s) for s in SEEDS]
        for key in rows[0]:
            results[f"ch2 {key}"] = {"values": [r[key] for r in rows]}
    _finish(results)


def _finish(results: dict[str, dict[str, object]]) -> None:
    for row in results.values():
        row["mean"] = float(np.mean(row["values"]))
        row["std"] = float(np.std(row["values"], ddof=1))
        row["n_seeds"] = len(row["values"])
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    for key, row in results.items():
        print(f"{key:60s} mean {row['mean']:.4g} std {row['std']:.3g}")
    sys.exit(0)


if __name__ == "__main__":
    main()
