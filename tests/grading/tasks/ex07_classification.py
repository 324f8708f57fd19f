r"""Hidden checks of exercise 7: AUC, reliability bins, predictive mean and spread, a trained
tagger held to the Neyman-Pearson limit of the tagging toy."""

from __future__ import annotations

import numpy as np

from lhcbnn.grading.tasks.base import Case, Exercise, Mistake, Task, Tensor


# ---------------------------------------------------------------- auc_score
def _auc(scores, labels, tie: float = 0.5):
    scores, labels = np.asarray(scores, float).ravel(), np.asarray(labels, float).ravel()
    signal, background = scores[labels == 1], scores[labels == 0]
    greater = (signal[:, None] > background[None, :]).sum()
    equal = (signal[:, None] == background[None, :]).sum()
    return (greater + tie * equal) / (signal.size * background.size)


def auc_reference(scores, labels):
    r""":math:`P(s_\mathrm{signal} > s_\mathrm{background})`, ties counting one half."""
    return _auc(scores, labels)


def _auc_cases() -> list[Case]:
    rng = np.random.default_rng(20701)
    labels = (rng.uniform(size=300) < 0.4).astype(float)
    scores = rng.normal(labels * 1.2, 1.0)
    rounded = np.round(scores, 1)  # many ties
    few = np.array([0.1, 0.4, 0.35, 0.8, 0.8, 0.2])
    few_labels = np.array([0.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    return [
        Case((Tensor(scores), Tensor(labels)), "300 scores, 40% signal"),
        Case((Tensor(rounded), Tensor(labels)), "the same scores rounded: many ties"),
        Case((Tensor(few), Tensor(few_labels)), "six scores with one tie across the classes"),
        Case((Tensor(-scores), Tensor(labels)), "a tagger that is worse than random"),
    ]


AUC = Task(
    function="auc_score",
    points=2,
    title="the area under the ROC curve, without scikit-learn",
    cases=_auc_cases,
    reference=auc_reference,
    mistakes=(
        Mistake(
            "a signal and a background jet with the same score count one half",
            lambda s, y: _auc(s, y, tie=0.0),
        ),
        Mistake(
            "ties count one half, not one (>= counts them fully)",
            lambda s, y: _auc(s, y, tie=1.0),
        ),
        Mistake(
            "signal is label 1: this is the AUC of the background",
            lambda s, y: 1.0 - _auc(s, y),
        ),
    ),
    forbidden=("auc", "roc_auc_score", "roc_curve", "mannwhitneyu"),
)


# ---------------------------------------------------------------- reliability_bins
def _reliability(probabilities, labels, n_bins, equal_count: bool = True):
    p, y = np.asarray(probabilities, float).ravel(), np.asarray(labels, float).ravel()
    n_bins = int(n_bins)
    if equal_count:
        bins = np.array_split(np.argsort(p, kind="stable"), n_bins)
    else:
        index = np.minimum((p * n_bins).astype(int), n_bins - 1)
        bins = [np.flatnonzero(index == k) for k in range(n_bins)]
    predicted = np.array([p[b].mean() if b.size else np.nan for b in bins])
    observed = np.array([y[b].mean() if b.size else np.nan for b in bins])
    return predicted, observed


def reliability_reference(probabilities, labels, n_bins):
    """Equal-count bins of the sorted probabilities: (mean predicted, observed fraction)."""
    return _reliability(probabilities, labels, n_bins)


def _reliability_cases() -> list[Case]:
    rng = np.random.default_rng(20702)
    p = rng.beta(0.6, 0.6, 503)
    y = (rng.uniform(size=p.size) < p).astype(float)
    skewed = rng.uniform(0, 1, 400) ** 3
    y_skewed = (rng.uniform(size=skewed.size) < np.sqrt(skewed)).astype(float)
    return [
        Case((Tensor(p), Tensor(y), 10), "503 calibrated probabilities, 10 bins"),
        Case((Tensor(skewed), Tensor(y_skewed), 4), "probabilities crowded near 0, 4 bins"),
        Case((Tensor(p[:60]), Tensor(y[:60]), 7), "60 points in 7 bins of unequal count"),
    ]


RELIABILITY = Task(
    function="reliability_bins",
    points=2,
    title="a reliability diagram in equal-count bins",
    cases=_reliability_cases,
    reference=reliability_reference,
    mistakes=(
        Mistake(
            "the bins hold equal numbers of points (np.array_split of the sorted order), "
            "not equal widths in probability",
            lambda p, y, n: _reliability(p, y, n, equal_count=False),
        ),
        Mistake(
            "return (mean predicted probability, observed signal fraction), in that order",
            lambda p, y, n: _reliability(p, y, n)[::-1],
        ),
    ),
    outputs=("predicted", "observed"),
    forbidden=("reliability", "calibration_curve"),
    partial=True,
)


# ---------------------------------------------------------------- predictive_mean_and_spread
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, float)))


def predictive_reference(logit_draws):
    r""":math:`\mu = \langle\sigma(\ell_s)\rangle_s` and its spread (1/S) over the draws."""
    probabilities = _sigmoid(logit_draws)
    return probabilities.mean(0), probabilities.std(0)


def _predictive_cases() -> list[Case]:
    rng = np.random.default_rng(20703)
    centres = rng.normal(0, 3, (1, 12))
    return [
        Case((Tensor(centres + rng.normal(0, 0.3, (50, 12))),), "50 draws, narrow logits"),
        Case((Tensor(centres + rng.normal(0, 2.0, (30, 12))),), "30 draws, wide logits"),
        Case((Tensor(rng.normal(0, 1, (5, 3))),), "5 draws of 3 jets"),
    ]


PREDICTIVE = Task(
    function="predictive_mean_and_spread",
    points=2,
    title="a classifier's predictive mean and spread from logit draws",
    cases=_predictive_cases,
    reference=predictive_reference,
    mistakes=(
        Mistake(
            "average the probabilities sigma(l_s), not the logits: sigma(mean logit) is not the "
            "predictive mean",
            lambda logits: (_sigmoid(np.mean(logits, 0)), _sigmoid(logits).std(0)),
        ),
        Mistake(
            "the spread is over the draws with 1/S (unbiased=False), as in eq. (7.4)",
            lambda logits: (_sigmoid(logits).mean(0), _sigmoid(logits).std(0, ddof=1)),
        ),
        Mistake(
            "sigma_pred is the spread of the probabilities, not of the logits",
            lambda logits: (_sigmoid(logits).mean(0), np.std(logits, 0)),
        ),
    ),
    outputs=("mean", "sigma_pred"),
    forbidden=("predict_proba", "predictive_samples", "predict"),
)


# ---------------------------------------------------------------- train_toy_tagger
# Outcome bands, set from 10 seeds of the reference solution (measured by
# `python benchmarks/bench_tagging.py --exercise`, stored in benchmarks/ex07_tagger_spread.json):
# the AUC gap to the exact likelihood ratio on the same test points, and the calibration error,
# the mean |observed - predicted| over the 10 equal-count bins of a reliability diagram (the
# largest single bin scatters too much from seed to seed to grade on).
TAGGER_TRAIN, TAGGER_TEST = 6000, 20_000
TAGGER_SEEDS = (7001, 7003)
MAX_AUC_GAP = 0.012
MAX_CALIBRATION_ERROR = 0.05


def _toy_data(seed: int):
    from lhcbnn.data.toys import tagging_toy

    x, y = tagging_toy.sample(TAGGER_TRAIN, seed=seed)
    x_test, y_test = tagging_toy.sample(TAGGER_TEST, seed=seed + 1)
    return x, y, x_test, y_test


def _tagger_cases() -> list[Case]:
    cases = []
    for seed in TAGGER_SEEDS:
        x, y, x_test, _ = _toy_data(seed)
        cases.append(Case((Tensor(x), Tensor(y), Tensor(x_test)), f"toy data, seed {seed}"))
    return cases


def _test_labels(x_test: np.ndarray) -> np.ndarray:
    """The labels of the grader's test points (the student never sees them)."""
    for seed in TAGGER_SEEDS:
        _, _, points, labels = _toy_data(seed)
        if points.shape == x_test.shape and np.array_equal(points, x_test):
            return labels
    raise ValueError("these test points are not one of the grader's cases")


def judge_tagger(args, values) -> tuple[bool, str]:
    """The returned probabilities must reach the likelihood ratio's AUC and be calibrated."""
    from lhcbnn import tagging
    from lhcbnn.data.toys import tagging_toy

    x_test = np.asarray(args[2], dtype=np.float64)
    y_test = _test_labels(x_test)
    probabilities = np.asarray(values[0], float).ravel()
    if probabilities.shape != (TAGGER_TEST,):
        return False, f"expected {TAGGER_TEST} probabilities, got shape {values[0].shape}"
    if np.any((probabilities < 0) | (probabilities > 1)):
        return False, "the returned values are not probabilities in [0, 1] (apply the sigmoid)"
    optimum = tagging.auc(tagging_toy.log_likelihood_ratio(x_test), y_test)
    gap = optimum - tagging.auc(probabilities, y_test)
    diagram = tagging.reliability(probabilities, y_test, n_bins=10)
    error = float(np.mean(np.abs(diagram.observed - diagram.predicted)))
    if gap > MAX_AUC_GAP:
        return False, (
            f"AUC {optimum - gap:.4f} is {gap:.4f} below the exact likelihood ratio's "
            f"{optimum:.4f} (allowed {MAX_AUC_GAP}): train longer or with a larger network"
        )
    if error > MAX_CALIBRATION_ERROR:
        return False, (
            f"not calibrated: the reliability bins are off by {error:.3f} on average "
            f"(allowed {MAX_CALIBRATION_ERROR})"
        )
    return True, ""


def tagger_reference(x, y, x_test, seed: int = 0):
    """The reference solution: lb.tagging.train_classifier, predictive mean of 30 draws."""
    from lhcbnn import tagging

    model = tagging.train_classifier(x, y, n_epochs=20, seed=seed)
    return tagging.predict_proba(model, x_test, n_samples=30).numpy().mean


TAGGER = Task(
    function="train_toy_tagger",
    points=4,
    title="a trained tagger at the Neyman-Pearson limit of the toy, calibrated",
    cases=_tagger_cases,
    reference=tagger_reference,
    judge=judge_tagger,
    forbidden=("train_classifier", "predict_proba", "bernoulli_nll"),
)


EXERCISE = Exercise(
    name="ex07_classification",
    title="Exercise 7: classification with error bars",
    tasks=(AUC, RELIABILITY, PREDICTIVE, TAGGER),
)
