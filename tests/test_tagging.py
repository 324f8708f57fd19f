"""Classification with error bars: Bernoulli loss, metrics against exact values, taggers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

import lhcbnn as lb
from lhcbnn import tagging


def test_bernoulli_nll_is_the_log_likelihood_and_stable() -> None:
    logits = torch.tensor([[-3.0], [0.0], [2.5]], dtype=torch.float64)
    target = torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64)
    p = torch.sigmoid(logits[:, 0])
    expected = -(target * p.log() + (1 - target) * (1 - p).log())
    torch.testing.assert_close(tagging.bernoulli_nll(logits, target), expected)
    huge = tagging.bernoulli_nll(torch.tensor([[200.0], [-200.0]]), torch.tensor([0.0, 1.0]))
    assert torch.isfinite(huge).all() and torch.allclose(huge, torch.tensor([200.0, 200.0]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        tagging.bernoulli_nll(logits, torch.tensor([0.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="one logit"):
        tagging.bernoulli_nll(torch.zeros(3, 2), target)


def test_auc_equals_the_gaussian_closed_form_and_counts_ties_half() -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    scores = np.r_[rng.normal(1.0, 1.0, n), rng.normal(0.0, 1.0, n)]
    labels = np.r_[np.ones(n), np.zeros(n)]
    exact = stats.norm.cdf(1.0 / math.sqrt(2.0))  # P(s - b > 0), s - b ~ N(1, 2)
    assert abs(tagging.auc(scores, labels) - exact) < 0.003
    assert tagging.auc(np.zeros(10), np.r_[np.ones(5), np.zeros(5)]) == 0.5
    assert tagging.auc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0
    assert tagging.auc([1, 2, 3, 4], [1, 1, 0, 0]) == 0.0
    fpr, tpr = tagging.roc_curve(scores, labels)
    assert abs(np.trapezoid(tpr, fpr) - tagging.auc(scores, labels)) < 1e-6
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("scores", "labels", "match"),
    [
        ([0.1, np.nan], [0, 1], "NaN"),
        ([0.1, 0.2], [0, 2], "0 .* or 1"),
        ([0.1, 0.2], [1, 1], "both"),
    ],
)
def test_metrics_reject_bad_input(scores, labels, match) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=match):
        tagging.auc(scores, labels)


def test_reliability_of_calibrated_probabilities() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 1, 100_000)
    labels = (rng.uniform(0, 1, p.size) < p).astype(float)
    diagram = tagging.reliability(p, labels, n_bins=10)
    assert diagram.count.sum() == p.size and np.ptp(diagram.count) <= 1
    pulls = (diagram.observed - diagram.predicted) / diagram.error
    assert np.all(np.abs(pulls) < 4)
    overconfident = tagging.reliability(np.clip(2 * p - 0.5, 0, 1), labels, n_bins=10)
    assert np.max(np.abs(overconfident.observed - overconfident.predicted)) > 0.1


def test_sigmoid_of_gaussian_matches_sampling_and_the_small_width_limit() -> None:
    rng = np.random.default_rng(2)
    for m, s in ((0.0, 0.3), (1.5, 1.0), (-2.0, 3.0)):
        draws = 1 / (1 + np.exp(-(m + s * rng.standard_normal(400_000))))
        mean, std = tagging.sigmoid_of_gaussian(np.array(m), np.array(s))
        assert abs(mean - draws.mean()) < 2e-3 and abs(std - draws.std()) < 2e-3
    mu = 1 / (1 + math.exp(-0.7))
    _, small = tagging.sigmoid_of_gaussian(np.array(0.7), np.array(0.01))
    assert abs(small / (0.01 * mu * (1 - mu)) - 1) < 1e-3


def test_tau_n_finds_prongs() -> None:
    rng = np.random.default_rng(3)
    centres = np.array([[0.0, 0.0], [0.4, 0.1], [-0.2, 0.35]])
    three = np.zeros((1, 30, 3))
    three[0, :, 0] = rng.uniform(10, 20, 30)
    three[0, :, 1:] = centres[np.arange(30) % 3] + rng.normal(0, 0.01, (30, 2))
    one = three.copy()
    one[0, :, 1:] = rng.normal(0, 0.01, (30, 2))
    tau = {n: tagging.tau_n(three, n) for n in (1, 2, 3)}
    assert tau[3][0] < 0.2 * tau[2][0]  # three prongs: tau_3 / tau_2 small
    assert tagging.tau_n(one, 1)[0] < 0.05
    padded = np.concatenate([three, np.zeros((1, 20, 3))], axis=1)  # zero padding changes nothing
    assert np.allclose(tagging.tau_n(padded, 3), tau[3])
    with pytest.raises(ValueError, match="n must"):
        tagging.tau_n(three, 0)


def test_a_trained_classifier_is_the_likelihood_ratio_on_the_toy() -> None:
    toy = lb.data.toys.tagging_toy
    x, y = toy.sample(6000, seed=0)
    model = tagging.train_classifier(x, y, hidden=(32, 32), n_epochs=25, seed=0)
    x_test, y_test = toy.sample(20_000, seed=1)
    prediction = tagging.predict_proba(model, x_test, n_samples=20).numpy()
    assert prediction.mean.shape == (20_000,) and np.all(prediction.sigma_pred > 0)
    gap = tagging.auc(toy.log_likelihood_ratio(x_test), y_test) - tagging.auc(
        prediction.mean, y_test
    )
    assert 0 <= gap < 0.01
    learned = np.log(prediction.mean / (1 - prediction.mean))
    bulk = np.abs(toy.log_likelihood_ratio(x_test)) < 3
    assert np.median(np.abs(learned - toy.log_likelihood_ratio(x_test))[bulk]) < 0.3
