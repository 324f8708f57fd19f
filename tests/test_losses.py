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


def test_losses_and_widths_stay_finite_for_extreme_log_variances() -> None:
    """float32: gaussian_nll at log_var = -120 was 0 * inf = NaN; exp(100) was inf."""
    mean = torch.zeros(3, 1)
    for log_var in (-120.0, -1e4, 100.0, 1e4):
        value = lb.losses.gaussian_nll(mean, torch.full_like(mean, log_var), mean)
        assert torch.isfinite(value).all(), log_var
        far = lb.losses.gaussian_nll(mean, torch.full_like(mean, log_var), mean + 1e4)
        assert torch.isfinite(far).all(), log_var
    model = lb.BayesianMLP(2, 1, heteroskedastic=True)
    _, var = model.moments(torch.tensor([[0.0, 100.0], [0.0, -120.0]]))
    assert torch.isfinite(var.sqrt()).all() and (var > 0).all()
    mixture = lb.BayesianMLP(2, 1, n_mixture=2)
    output = torch.tensor([[0.0, 0.0, 1.0, 2.0, 100.0, -120.0]])
    _, var = mixture.moments(output)
    assert torch.isfinite(var.sqrt()).all()
    nll = mixture.nll(output, torch.tensor([1.5]))
    assert torch.isfinite(nll).all()


def test_log_variance_gradient_survives_beyond_the_bounds() -> None:
    """A hard clamp would give zero gradient at log_var = 50; the soft clip does not."""
    log_var = torch.tensor([[50.0], [-50.0]], requires_grad=True)
    target = torch.tensor([[1.0], [1e-3]])
    lb.losses.gaussian_nll(torch.zeros(2, 1), log_var, target).sum().backward()
    assert (log_var.grad != 0).all()
    assert log_var.grad[0] > 0 and log_var.grad[1] < 0  # both pulled back towards the data


def test_soft_clip_does_not_change_the_likelihood_in_the_working_range() -> None:
    mean = torch.zeros(5, 1, dtype=torch.float64)
    log_var = torch.linspace(-28, 28, 5, dtype=torch.float64)[:, None]
    target = torch.ones(5, 1, dtype=torch.float64)
    expected = 0.5 * (math.log(2 * math.pi) + log_var + torch.exp(-log_var))
    assert torch.equal(lb.losses.gaussian_nll(mean, log_var, target), expected)


def test_mixture_moments_of_head() -> None:
    model = lb.BayesianMLP(2, 1, n_mixture=2)
    output = torch.tensor([[0.0, math.log(3.0), 1.0, 5.0, 0.0, math.log(4.0)]])
    mean, var = model.moments(output)
    weights = torch.tensor([0.25, 0.75])
    expected_mean = 0.25 * 1.0 + 0.75 * 5.0
    expected_var = (weights * torch.tensor([1.0 + 1.0, 4.0 + 25.0])).sum() - expected_mean**2
    torch.testing.assert_close(mean, torch.tensor([[expected_mean]]))
    torch.testing.assert_close(var, expected_var.reshape(1, 1))


def test_mixture_variance_does_not_cancel_for_labels_in_gev() -> None:
    """Labels ~1e4 GeV in float32: <t^2> - m^2 loses every digit of a variance of ~1 GeV^2."""
    model = lb.BayesianMLP(2, 1, n_mixture=3)
    logits = torch.tensor([[0.3, -0.2, 0.1]], dtype=torch.float64)
    means = torch.tensor([[10_000.3, 10_001.1, 9_999.2]], dtype=torch.float64)
    log_vars = torch.log(torch.tensor([[0.5, 1.3, 0.8]], dtype=torch.float64))
    output = torch.cat([logits, means, log_vars], dim=1).float()  # the network's float32
    logits, means, log_vars = output.double().split(3, dim=1)  # the same numbers, exactly
    weights = torch.softmax(logits, -1)
    mean = (weights * means).sum()
    expected = (weights * (log_vars.exp() + (means - mean) ** 2)).sum()
    _, var32 = model.moments(output)
    torch.testing.assert_close(var32.double(), expected.reshape(1, 1), rtol=1e-4, atol=0.0)


def test_l2_lambda_and_neg_elbo_accept_numpy_scalars() -> None:
    assert lb.losses.l2_lambda(np.float32(0.5), np.int64(200)) == pytest.approx(1 / 100)
    value = lb.losses.neg_elbo(torch.tensor(0.0), torch.tensor(3.0), np.int64(6))
    assert float(value) == 0.5
