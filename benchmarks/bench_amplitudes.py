r"""Precision amplitudes (chapter 6): a Bayesian network learns the exact gg -> ggg |M|^2.

The protocol is the chapter's (``book/06_amplitudes.ipynb``), step for step:

1. ``PROTOCOL.n_train`` training and ``n_test`` test points of
   :func:`lhcbnn.data.amplitudes.phase_space` with the exact
   :func:`~lhcbnn.data.amplitudes.squared_me`, inputs standardised :math:`\log|s_{ij}|`,
   target standardised :math:`\log A` (:func:`lhcbnn.precision.amplitude_data`);
2. a heteroskedastic ``BayesianMLP`` (``hidden``, SiLU) trained for ``epochs`` epochs with a
   cosine learning rate (the base network);
3. two continuations of the base network for ``boost_epochs`` more epochs each: unweighted,
   and weighted by the base network's :math:`|\Delta|` on the training points
   (:func:`lhcbnn.precision.boost_weights`, :func:`~lhcbnn.precision.train_weighted`), so that
   boosting is compared with the same number of extra steps;
4. a fresh network trained as in 2 on a copy of the training labels with 1% relative noise,
   whose learned :math:`\sigma_\mathrm{stoch}` is compared with the clean network's.

Figures (test points unless named otherwise): the fraction with :math:`|\Delta| < 1\%`, the
fraction beyond 10%, the 99th percentile of :math:`|\Delta|`, all with
:math:`\Delta = (A_\mathrm{pred} - A_\mathrm{true})/A_\mathrm{true}` on :math:`A` itself; the
width of the weight-dependent pulls; and the noise recovered from the learned widths.

``python benchmarks/bench_amplitudes.py --seeds 0 1 2 3 4`` runs the protocol for several seeds
and prints the mean and the seed-to-seed standard deviation of every figure (the spreads behind
the chapter's check bands, recorded in ``benchmarks/amplitudes_spread.json``);
``python benchmarks/bench_amplitudes.py --boost --seeds 0 1 2 3 4 --out
benchmarks/amplitudes_boost_spread.json`` compares, from the same base network per seed, the
unweighted continuation with continuations weighted by the training points' pulls and by their
:math:`|\Delta|` (:func:`boost_study`; the chapter's boosting checks read that file);
``measure(quick=False)`` is the entry point of ``benchmarks/run.py``: the chapter's protocol
(quick) or a longer one on more points.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

import lhcbnn as lb
from lhcbnn import precision


@dataclass(frozen=True)
class Protocol:
    """Sizes and training settings (the chapter uses the defaults)."""

    n_train: int = 20_000
    n_test: int = 8_000
    hidden: tuple[int, ...] = (128, 128, 128)
    batch_size: int = 256
    epochs: int = 20
    lr: float = 3e-3
    boost_epochs: int = 6
    boost_lr: float = 1e-3
    w_max: float = 10.0
    noise: float = 0.01
    n_samples: int = 20


PROTOCOL = Protocol()
LONG = replace(PROTOCOL, n_train=100_000, n_test=20_000, epochs=30, boost_epochs=8)

GOALS = {
    "amplitude_within_1pct": ">= 0.90 (anchor: deterministic 3x128 MLP, 100k points, 60 s: 0.87)",
    "amplitude_p99": "(reported) 99th percentile of |Delta|",
    "amplitude_within_1pct_boosted": ">= 0.90",
    "amplitude_p99_boosted": "< amplitude_p99_continued (boosting shrinks the tail)",
    "amplitude_beyond_10pct_boosted": "<= amplitude_beyond_10pct_continued",
    "amplitude_draw_pull_width": "1 +- 0.1",
}


def bnn(seed: int, protocol: Protocol = PROTOCOL) -> lb.BayesianMLP:
    """A fresh heteroskedastic BNN of the protocol, initialised from ``seed``."""
    torch.manual_seed(seed)
    return lb.BayesianMLP(9, 1, hidden=protocol.hidden, heteroskedastic=True, activation="silu")


def fit(model, x, y, epochs, lr, seed, protocol, weights=None):  # noqa: ANN001, ANN201
    """Train with the protocol's batch size and a cosine learning rate; returns seconds."""
    kwargs = dict(
        n_epochs=epochs,
        batch_size=protocol.batch_size,
        lr=lr,
        lr_schedule="cosine",
        seed=seed,
        progress=False,
    )
    start = time.perf_counter()
    if weights is None:
        lb.train(model, x, y, **kwargs)
    else:
        precision.train_weighted(model, x, y, weights, **kwargs)
    return time.perf_counter() - start


def continue_training(model, data, protocol, seed, weights=None):  # noqa: ANN001, ANN201
    """A copy of ``model`` trained ``boost_epochs`` more (unweighted, or weighted by
    ``weights``) with seed ``seed + 1``: ``(copy, seconds)``; ``model`` is left as it was."""
    copy_ = copy.deepcopy(model)
    seconds = fit(
        copy_,
        data.x_train,
        data.y_train,
        protocol.boost_epochs,
        protocol.boost_lr,
        seed + 1,
        protocol,
        weights=weights,
    )
    return copy_, seconds


def scores(model, data, protocol, prefix):  # noqa: ANN001, ANN201
    """Test figures of one network, keys prefixed."""
    pred = precision.to_amplitude(
        lb.predict(model, data.x_test, n_samples=protocol.n_samples), data.preprocessing
    )
    summary = precision.precision_summary(precision.relative_deviation(pred.amplitude, data.a_test))
    return {f"{prefix}{key}": value for key, value in summary.items()}, pred


def run(seed: int, protocol: Protocol = PROTOCOL, with_noise: bool = True) -> dict[str, float]:
    """All figures of the protocol for one seed (data, initialisation and training); the
    label-noise network only ``with_noise``."""
    data = precision.amplitude_data(protocol.n_train, protocol.n_test, seed=seed)
    out: dict[str, float] = {}
    model = bnn(seed, protocol)
    out["seconds_base"] = fit(
        model, data.x_train, data.y_train, protocol.epochs, protocol.lr, seed, protocol
    )
    test, pred = scores(model, data, protocol, "")
    out.update(test)
    train_pred = precision.to_amplitude(
        lb.predict(model, data.x_train, n_samples=protocol.n_samples), data.preprocessing
    )
    out.update(
        {
            f"train_{k}": v
            for k, v in precision.precision_summary(
                precision.relative_deviation(train_pred.amplitude, data.a_train)
            ).items()
        }
    )
    draws = precision.draw_pulls(model, data.x_test, data.a_test, data.preprocessing, 10)
    out["draw_pull_width"] = float(np.std(draws))
    out["draw_pull_width_train"] = float(
        np.std(precision.draw_pulls(model, data.x_train, data.a_train, data.preprocessing, 10))
    )
    out["mean_pull_width"] = float(np.std(pred.pulls(data.a_test)))
    out["sigma_stoch_rel_median"] = float(np.median(pred.sigma_stoch / pred.amplitude))
    out["sigma_pred_rel_median"] = float(np.median(pred.sigma_pred / pred.amplitude))

    # boosting by |Delta| of the training points (the chapter's choice, see boost_study)
    train_delta = precision.relative_deviation(train_pred.amplitude, data.a_train)
    weights = precision.boost_weights(np.abs(train_delta), protocol.w_max)
    for name, w in (("continued_", None), ("boosted_", weights)):
        copy_, out[f"seconds_{name}"] = continue_training(model, data, protocol, seed, w)
        out.update(scores(copy_, data, protocol, name)[0])

    out["p99_ratio"] = out["boosted_p99"] / out["continued_p99"]
    out["beyond_10%_diff"] = out["boosted_beyond_10%"] - out["continued_beyond_10%"]
    out["within_1%_diff"] = out["boosted_within_1%"] - out["continued_within_1%"]
    out["train_test_within_1%"] = out["train_within_1%"] / out["within_1%"] - 1
    out["sigma_ratio"] = out["sigma_pred_rel_median"] / out["sigma_stoch_rel_median"]
    s_hat = 500.0**2
    log_delta = np.log(s_hat * pred.amplitude) / np.log(s_hat * data.a_test) - 1
    delta = precision.relative_deviation(pred.amplitude, data.a_test)
    out["log_ratio"] = float(np.median(np.abs(delta)) / np.median(np.abs(log_delta)))
    if not with_noise:
        return out

    noisy, noisy_pred, out["seconds_noisy"] = train_noisy(data, seed, protocol)
    rel_noisy = noisy_pred.sigma_stoch / noisy_pred.amplitude
    rel_clean = pred.sigma_stoch / pred.amplitude
    out["noisy_sigma_stoch_rel_median"] = float(np.median(rel_noisy))
    out["noise_recovered"] = float(np.sqrt(max(np.median(rel_noisy**2 - rel_clean**2), 0.0)))
    out["noisy_sigma_pred_rel_median"] = float(
        np.median(noisy_pred.sigma_pred / noisy_pred.amplitude)
    )
    out["noise_rel_error"] = out["noise_recovered"] / protocol.noise - 1
    out.update(noise_from_draws(noisy, noisy_pred, data, protocol))
    return out


BOOST_SCORES = ("pull", "delta", "delta2")
r"""The per-point scores the boosting study weights by: the pull of the posterior mean with
:math:`\sigma_\mathrm{tot}` on each training point, its :math:`|\Delta|`, and
:math:`\Delta^2` (a stronger dose: a point twice as far out weighs four times as much)."""


def boost_scores(model, data, protocol) -> dict[str, np.ndarray]:  # noqa: ANN001
    r"""Per training point, of the base network's mean: the scores of :data:`BOOST_SCORES`."""
    train_pred = precision.to_amplitude(
        lb.predict(model, data.x_train, n_samples=protocol.n_samples), data.preprocessing
    )
    delta = precision.relative_deviation(train_pred.amplitude, data.a_train)
    return {"pull": train_pred.pulls(data.a_train), "delta": np.abs(delta), "delta2": delta**2}


def boost_study(seed: int, protocol: Protocol = PROTOCOL) -> dict[str, float]:
    """One base network per seed, continued for ``boost_epochs`` unweighted and weighted by
    each of :data:`BOOST_SCORES` (same steps, same shuffling): the test figures of each, and
    the ratios and differences against the unweighted continuation."""
    data = precision.amplitude_data(protocol.n_train, protocol.n_test, seed=seed)
    model = bnn(seed, protocol)
    out = {
        "seconds_base": fit(
            model, data.x_train, data.y_train, protocol.epochs, protocol.lr, seed, protocol
        )
    }
    out.update(scores(model, data, protocol, "")[0])
    weights = {
        name: precision.boost_weights(score, protocol.w_max)
        for name, score in boost_scores(model, data, protocol).items()
    }
    for name, w in (("continued", None), *weights.items()):
        copy_, _ = continue_training(model, data, protocol, seed, w)
        out.update(scores(copy_, data, protocol, f"{name}_")[0])
    for name in weights:
        out[f"{name}_boosted_fraction"] = float(np.mean(weights[name] > weights[name].min()))
        out[f"{name}_p99_ratio"] = out[f"{name}_p99"] / out["continued_p99"]
        out[f"{name}_beyond_10%_ratio"] = (  # undefined when nothing is beyond 10%
            out[f"{name}_beyond_10%"] / out["continued_beyond_10%"]
            if out["continued_beyond_10%"] > 0
            else float("nan")
        )
        out[f"{name}_beyond_10%_diff"] = out[f"{name}_beyond_10%"] - out["continued_beyond_10%"]
        out[f"{name}_within_1%_diff"] = out[f"{name}_within_1%"] - out["continued_within_1%"]
        out[f"{name}_median_ratio"] = out[f"{name}_median"] / out["continued_median"]
    return out


def noise_from_draws(noisy, noisy_pred, data, protocol):  # noqa: ANN001, ANN201
    r"""The injected noise read off the noisy network alone: per test point,
    :math:`\epsilon^2 = (\sigma_\mathrm{stoch}/A)^2 - \langle\Delta_\theta^2\rangle_\theta`,
    the learned width minus the network's own error against the exact amplitude; the median
    over the test points."""
    draws = precision.draw_deviations(noisy, data.x_test, data.a_test, data.preprocessing, 10)
    rel = noisy_pred.sigma_stoch / noisy_pred.amplitude
    noise2 = np.median(rel**2 - np.mean(draws**2, axis=0))
    recovered = float(np.sqrt(max(noise2, 0.0)))
    return {
        "noise_from_draws": recovered,
        "noise_from_draws_rel_error": recovered / protocol.noise - 1,
    }


def train_noisy(data, seed: int, protocol: Protocol):  # noqa: ANN001, ANN201
    """The network trained on labels with relative Gaussian noise ``protocol.noise``:
    ``(network, its test prediction, training seconds)``."""
    rng = np.random.default_rng(seed + 20_000)
    noisy_a = data.a_train * (1.0 + protocol.noise * rng.standard_normal(data.a_train.shape))
    noisy = bnn(seed, protocol)
    seconds = fit(
        noisy,
        data.x_train,
        data.preprocessing.target(noisy_a),
        protocol.epochs,
        protocol.lr,
        seed,
        protocol,
    )
    return noisy, scores(noisy, data, protocol, "noisy_")[1], seconds


def run_noise(seed: int, protocol: Protocol = PROTOCOL) -> dict[str, float]:
    """Only the label-noise network of :func:`run` and its :func:`noise_from_draws`."""
    data = precision.amplitude_data(protocol.n_train, protocol.n_test, seed=seed)
    noisy, noisy_pred, _ = train_noisy(data, seed, protocol)
    return noise_from_draws(noisy, noisy_pred, data, protocol)


def measure(quick: bool = False) -> dict[str, float]:
    """The benchmark figures: the chapter's protocol (``quick``) or the longer one."""
    protocol = PROTOCOL if quick else LONG
    result = run(0, protocol, with_noise=quick)
    return {
        "amplitude_within_1pct": result["within_1%"],
        "amplitude_p99": result["p99"],
        "amplitude_beyond_10pct": result["beyond_10%"],
        "amplitude_within_1pct_continued": result["continued_within_1%"],
        "amplitude_p99_continued": result["continued_p99"],
        "amplitude_beyond_10pct_continued": result["continued_beyond_10%"],
        "amplitude_within_1pct_boosted": result["boosted_within_1%"],
        "amplitude_p99_boosted": result["boosted_p99"],
        "amplitude_beyond_10pct_boosted": result["boosted_beyond_10%"],
        "amplitude_draw_pull_width": result["draw_pull_width"],
        "amplitude_n_train": protocol.n_train,
        "amplitude_train_seconds": result["seconds_base"] + result["seconds_boosted_"],
    }


def summarise(protocol: dict, seeds: list[int], rows: list[dict[str, float]]) -> dict:
    """Mean and seed-to-seed standard deviation (ddof=1) of every figure."""
    keys = rows[0].keys()
    return {
        "protocol": protocol,
        "seeds": seeds,
        "per_seed": rows,
        "mean": {k: float(np.nanmean([r[k] for r in rows])) for k in keys},  # nan: undefined
        "std": {
            k: float(np.nanstd([r[k] for r in rows], ddof=1)) if len(rows) > 1 else 0.0
            for k in keys
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--long", action="store_true", help="the longer protocol")
    parser.add_argument("--boost", action="store_true", help="only the boosting study")
    parser.add_argument("--noise-only", action="store_true", help="only the label-noise network")
    parser.add_argument("--boost-epochs", type=int, default=None, help="replace boost_epochs")
    parser.add_argument("--boost-lr", type=float, default=None, help="replace boost_lr")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=None,
        help="instead of running, merge the JSON files of runs with single seeds",
    )
    args = parser.parse_args()
    if args.merge:
        # runs of the same seed (full and --noise-only) are united into one row
        by_seed: dict[int, dict[str, float]] = {}
        parts = [json.loads(path.read_text()) for path in args.merge]
        for part in parts:
            for seed, row in zip(part["seeds"], part["per_seed"], strict=True):
                by_seed.setdefault(seed, {}).update(row)
        seeds = sorted(by_seed)
        rows = [by_seed[seed] for seed in seeds]
        summary = summarise(parts[0]["protocol"], seeds, rows)
    else:
        protocol = LONG if args.long else PROTOCOL
        if args.boost_epochs is not None:
            protocol = replace(protocol, boost_epochs=args.boost_epochs)
        if args.boost_lr is not None:
            protocol = replace(protocol, boost_lr=args.boost_lr)
        rows = []
        for seed in args.seeds:
            if args.boost:
                rows.append(boost_study(seed, protocol))
            elif args.noise_only:
                rows.append(run_noise(seed, protocol))
            else:
                rows.append(run(seed, protocol, with_noise=not args.long))
            shown = {k: round(v, 5) for k, v in rows[-1].items()}
            print(f"seed {seed}: " + json.dumps(shown), flush=True)
        summary = summarise(asdict(protocol), args.seeds, rows)
    for key in rows[0]:
        print(f"{key:34s} mean {summary['mean'][key]:.5g}  seed std {summary['std'][key]:.3g}")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
