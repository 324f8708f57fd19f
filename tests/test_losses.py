"""Likelihood losses against scipy/torch closed forms."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

import lhcbnn as lb


def test_gaussian_nll_equals_minus_log_normal_pdf() -> None:
    rng = np.random.default_rng(1)
    mean, log_var, target = (torch.tensor(rng.normal(size=(6, 2))) for _ in range(3))
    expected = -norm.logpdf(target.numpy(), mean.numpy(), np.exp(0.5 * log_var.numpy()))
    np.testing.assert_allclose(lb.losses.gaussian_nll(mean, log_var, target), expected, 1e-12)


def test_gaussian_mixture_nll_equals_scipy_mixture() -> None:
    rng = np.random.default_rng(2)
    logits, means, log_vars = (torch.tensor(rng.normal(size=(5, 3))) for _ in range(3))
    target = torch.tensor(rng.normal(size=5))
    weights = torch.softmax(logits, -1).numpy()
    density = (
        weights * norm.pdf(target.numpy()[:, None], means.numpy(), np.exp(0.5 * log_vars.numpy()))
    ).sum(1)
    torch.testing.assert_close(
        lb.losses.gaussian_mixture_nll(logits, means, log_vars, target),
        torch.tensor(-np.log(density)),
    )
    # A single component reduces to the Gaussian NLL.
    one = lb.losses.gaussian_mixture_nll(logits[:, :1], means[:, :1], log_vars[:, :1], target)
    torch.testing.assert_close(one, lb.losses.gaussian_nll(means[:, 0], log_vars[:, 0], target))


def test_mixture_nll_stable_far_in_the_tail() -> None:
    logits = torch.tensor([[0.0, -200.0]])
    value = lb.losses.gaussian_mixture_nll(
        logits, torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, 0.0]]), torch.tensor([60.0])
    )
    assert torch.isfinite(value).all()
    assert float(value) == pytest.approx(0.5 * math.log(2 * math.pi) + 0.5 * 60.0**2, rel=1e-6)


def test_neg_elbo_divides_kl_by_training_size_not_batch() -> None:
    assert float(lb.losses.neg_elbo(torch.tensor(1.0), torch.tensor(500.0), 1000)) == 1.5
    assert lb.losses.l2_lambda(2.0, 100) == pytest.approx(1 / 800)


def test_mixture_moments_of_head() -> None:
    model = lb.BayesianMLP(2, 1, n_mixture=2)
    output = torch.tensor([[0.0, math.log(3.0), 1.0, 5.0, 0.0, math.log(4.0)]])
    mean, var = model.moments(output)
    weights = torch.tensor([0.25, 0.75])
    expected_mean = 0.25 * 1.0 + 0.75 * 5.0
    expected_var = (weights * torch.tensor([1.0 + 1.0, 4.0 + 25.0])).sum() - expected_mean**2
    torch.testing.assert_close(mean, torch.tensor([[expected_mean]]))
    torch.testing.assert_close(var, expected_var.reshape(1, 1))
