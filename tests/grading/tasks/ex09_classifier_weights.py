r"""Hidden checks of exercise 9: classifier weights with safe edges, a reweighted histogram
with its statistical error, the effective number of events, and a trained discriminator
whose weights are graded against the exact density ratio (an outcome). Self-contained: the
1D toy truth and the flawed generator are defined here."""

from __future__ import annotations

import math

import numpy as np

from lhcbnn.grading.tasks.base import Case, Exercise, Mistake, Task, Tensor

EPS = 1e-6


# ---------------------------------------------------------------- weights from D
def weights_reference(d, eps=EPS):
    r""":math:`w = D/(1-D)` with :math:`D` clipped to :math:`[\epsilon, 1-\epsilon]`."""
    clipped = np.clip(d, eps, 1 - eps)
    return clipped / (1 - clipped)


def _weight_cases() -> list[Case]:
    rng = np.random.default_rng(20901)
    return [
        Case((Tensor(np.array([0.0, 0.5, 1.0, 1e-9, 1 - 1e-9])), EPS), "D exactly 0 and 1"),
        Case((Tensor(rng.uniform(0.02, 0.98, 9)), EPS), "9 values inside (0, 1)"),
        Case((Tensor(np.array([0.0, 0.3, 1.0])), 1e-3), "eps = 1e-3"),
    ]


WEIGHTS = Task(
    function="safe_classifier_weights",
    points=2,
    title="classifier weights w = D/(1-D) with D clipped to [eps, 1 - eps]",
    cases=_weight_cases,
    reference=weights_reference,
    mistakes=(
        Mistake(
            "the convention is w = D/(1-D) = p_data/p_model (data are label 1); "
            "(1-D)/D is the inverse ratio",
            lambda d, eps=EPS: (1 - np.clip(d, eps, 1 - eps)) / np.clip(d, eps, 1 - eps),
        ),
        Mistake(
            "clip D on both sides, to [eps, 1 - eps]: D = 0 must give eps/(1-eps), not 0",
            lambda d, eps=EPS: np.minimum(d, 1 - eps) / (1 - np.minimum(d, 1 - eps)),
        ),
        Mistake(
            "clip D, not w: D = 1 - eps gives w = (1 - eps)/eps",
            lambda d, eps=EPS: np.clip(
                np.divide(d, 1 - d, out=np.full_like(d, np.inf), where=d < 1), eps, 1 / eps
            ),
        ),
    ),
    forbidden=("classifier_weights",),
)


# ---------------------------------------------------------------- reweighted histogram
def histogram_reference(x, w, edges):
    r"""Per bin :math:`\sum w` and :math:`\sqrt{\sum w^2}` (``numpy.histogram`` bins)."""
    counts, _ = np.histogram(x, bins=edges, weights=w)
    squares, _ = np.histogram(x, bins=edges, weights=w**2)
    return counts, np.sqrt(squares)


def _histogram_cases() -> list[Case]:
    rng = np.random.default_rng(20902)
    x = rng.uniform(0.013, 0.987, 400)
    w = rng.exponential(1.0, 400)
    edges = np.linspace(0.0, 1.0, 9)
    x_small = np.array([0.05, 0.15, 0.17, 0.62, 1.7])  # one event outside the edges
    w_small = np.array([0.5, 2.0, 3.0, 0.25, 5.0])
    return [
        Case((Tensor(x), Tensor(w), Tensor(edges)), "400 weighted events, 8 bins"),
        Case(
            (Tensor(x_small), Tensor(w_small), Tensor(np.array([0.0, 0.1, 0.5, 1.0]))),
            "5 events, uneven bins, one outside",
        ),
    ]


HISTOGRAM = Task(
    function="reweighted_histogram",
    points=2,
    title="a reweighted histogram and its statistical error sqrt(sum w^2)",
    cases=_histogram_cases,
    reference=histogram_reference,
    outputs=("counts", "errors"),
    mistakes=(
        Mistake(
            "the error of a sum of weights is sqrt(sum w^2), not sqrt(sum w)",
            lambda x, w, e: (
                histogram_reference(x, w, e)[0],
                np.sqrt(histogram_reference(x, w, e)[0]),
            ),
        ),
        Mistake(
            "the error is sqrt(sum w^2): sqrt(number of events) ignores the weights",
            lambda x, w, e: (
                histogram_reference(x, w, e)[0],
                np.sqrt(np.histogram(x, bins=e)[0].astype(float)),
            ),
        ),
        Mistake(
            "take the square root: the error is sqrt(sum w^2), not sum w^2",
            lambda x, w, e: (histogram_reference(x, w, e)[0], histogram_reference(x, w, e)[1] ** 2),
        ),
    ),
    forbidden=("weighted_histogram",),
)


# ---------------------------------------------------------------- effective events
def effective_reference(w):
    r""":math:`N_\mathrm{eff} = (\sum w)^2 / \sum w^2`."""
    return np.array(w.sum() ** 2 / (w**2).sum())


def _effective_cases() -> list[Case]:
    rng = np.random.default_rng(20903)
    return [
        Case((Tensor(np.ones(7)),), "7 unit weights"),
        Case((Tensor(rng.exponential(1.0, 50)),), "50 exponential weights"),
        Case((Tensor(np.array([10.0, 0.1, 0.1, 0.1])),), "one large weight"),
    ]


EFFECTIVE = Task(
    function="effective_events",
    points=1,
    title="the effective number of events of a weighted sample",
    cases=_effective_cases,
    reference=effective_reference,
    mistakes=(
        Mistake(
            "N_eff = (sum w)^2 / sum w^2, not its inverse",
            lambda w: np.array((w**2).sum() / w.sum() ** 2),
        ),
        Mistake(
            "N_eff depends on the weights: (sum w)^2 / sum w^2, not the number of events",
            lambda w: np.array(float(w.size)),
        ),
        Mistake(
            "square the sum of the weights: (sum w)^2 / sum w^2",
            lambda w: np.array(w.sum() / (w**2).sum()),
        ),
    ),
)


# ---------------------------------------------------------------- trained weights (outcome)
# Truth: 0.8 N(0, 1) + 0.2 N(1.5, 0.3^2); the flawed generator is the Gaussian with the same
# mean and width, N(0.3, 1.0854^2): it misses the bump at x = 1.5, where p_truth/p_gen ~ 2.2.
BUMP_FRACTION, BUMP_MEAN, BUMP_WIDTH = 0.2, 1.5, 0.3
GEN_MEAN = BUMP_FRACTION * BUMP_MEAN
GEN_WIDTH = math.sqrt(
    (1 - BUMP_FRACTION) * (1 + GEN_MEAN**2)
    + BUMP_FRACTION * (BUMP_WIDTH**2 + (BUMP_MEAN - GEN_MEAN) ** 2)
)
N_EVENTS, N_EVAL = 10_000, 2000
TRAIN_SEEDS = (9101, 9201)
# Bands from 10 seeds of the reference solution (benchmarks/ex09_judge_tolerance.py, stored in
# benchmarks/ex09_judge_tolerance.json): the median |log w - log w_exact| over the evaluation
# points is 0.054 +- 0.016 (allowed: 0.14, mean + 5 sd); the median log w at the bump minus the
# exact one is -0.09 +- 0.08 (allowed: |.| < 0.4, 4 sd). Weights of 1 everywhere give 0.13 and
# -0.60, the flipped convention 0.25 and log w < 0 at the bump.
MAX_MEDIAN_ERROR = 0.14
MAX_BUMP_ERROR = 0.4


def _log_normal(x, mean, width):
    return -0.5 * ((x - mean) / width) ** 2 - math.log(width * math.sqrt(2 * math.pi))


def exact_log_ratio(x):
    r""":math:`\log p_\mathrm{truth}(x) - \log p_\mathrm{gen}(x)` of the toy."""
    truth = np.logaddexp(
        math.log(1 - BUMP_FRACTION) + _log_normal(x, 0.0, 1.0),
        math.log(BUMP_FRACTION) + _log_normal(x, BUMP_MEAN, BUMP_WIDTH),
    )
    return truth - _log_normal(x, GEN_MEAN, GEN_WIDTH)


def toy_events(seed: int):
    """(x_truth (N, 1), x_gen (N, 1), x_eval (N_EVAL, 1)) of the toy, float64."""
    rng = np.random.default_rng(seed)
    bump = rng.random(N_EVENTS) < BUMP_FRACTION
    x_truth = np.where(bump, rng.normal(BUMP_MEAN, BUMP_WIDTH, N_EVENTS), rng.normal(size=N_EVENTS))
    x_gen = rng.normal(GEN_MEAN, GEN_WIDTH, N_EVENTS)
    x_eval = rng.normal(GEN_MEAN, GEN_WIDTH, N_EVAL)  # where generated events are
    return x_truth[:, None], x_gen[:, None], x_eval[:, None]


def _train_cases() -> list[Case]:
    return [
        Case(tuple(Tensor(a) for a in toy_events(seed)), f"toy events, seed {seed}")
        for seed in TRAIN_SEEDS
    ]


def judge_weights(args, values) -> tuple[bool, str]:
    """The weights at the evaluation points must follow the exact ratio p_truth / p_gen."""
    x_eval = np.asarray(args[2], dtype=np.float64).reshape(-1)
    w = np.asarray(values[0], dtype=np.float64).reshape(-1)
    if w.shape != x_eval.shape:
        return False, f"expected {x_eval.size} weights (one per x_eval point), got {w.size}"
    if np.any(w <= 0):
        return False, "weights must be positive (clip D to [eps, 1 - eps] before D/(1-D))"
    exact = exact_log_ratio(x_eval)
    error = float(np.median(np.abs(np.log(w) - exact)))
    at_bump = np.abs(x_eval - BUMP_MEAN) < 0.2
    bump_error = float(np.median(np.log(w[at_bump])) - np.median(exact[at_bump]))
    if np.median(np.log(w[at_bump])) < 0:
        return False, (
            "the weights are below 1 at the bump (x = 1.5), where the truth has more events "
            "than the generator: w = D/(1-D) = p_truth/p_gen with the truth as label 1, "
            "not (1-D)/D"
        )
    if abs(bump_error) > MAX_BUMP_ERROR:
        return False, (
            f"at the bump (|x - 1.5| < 0.2) the median log w is {bump_error:+.2f} off the exact "
            f"log ratio (allowed {MAX_BUMP_ERROR}): the classifier has not learned the bump; "
            "train longer, or check the labels and that both classes enter equally"
        )
    if error > MAX_MEDIAN_ERROR:
        return False, (
            f"median |log w - log w_exact| = {error:.3f} (allowed {MAX_MEDIAN_ERROR}): "
            "train longer, or check the labels and that both classes enter equally"
        )
    return True, ""


def train_reference(x_truth, x_gen, x_eval, seed: int = 0):
    """The reference solution: an MLP (1-32-32-1) on the cross-entropy, balanced batches."""
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(1, 32),
        torch.nn.SiLU(),
        torch.nn.Linear(32, 32),
        torch.nn.SiLU(),
        torch.nn.Linear(32, 1),
    )
    truth = torch.as_tensor(x_truth, dtype=torch.float32)
    gen = torch.as_tensor(x_gen, dtype=torch.float32)
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    labels = torch.cat([torch.ones(256), torch.zeros(256)])
    for _ in range(1000):
        batch = torch.cat(
            [truth[torch.randint(len(truth), (256,))], gen[torch.randint(len(gen), (256,))]]
        )
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(batch)[:, 0], labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        d = torch.sigmoid(net(torch.as_tensor(x_eval, dtype=torch.float32))[:, 0]).double().numpy()
    return weights_reference(d)


TRAIN = Task(
    function="train_weights",
    points=4,
    title="a discriminator between toy truth and a flawed generator, its weights against the "
    "exact ratio",
    cases=_train_cases,
    reference=train_reference,
    judge=judge_weights,
    outputs=("w",),
    forbidden=("train_discriminator", "classifier_weights"),
)


EXERCISE = Exercise(
    name="ex09_classifier_weights",
    title="Exercise 9: controlling generators with classifier weights",
    tasks=(WEIGHTS, HISTOGRAM, EFFECTIVE, TRAIN),
)
