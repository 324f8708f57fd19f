"""The ELBO on conjugate Bayesian linear regression, held against the exact posterior.

One VBLinear with no activation and known Gaussian noise is conjugate: the posterior
and the evidence are Gaussian and known, and the mean-field optimum of the ELBO has the
exact posterior mean and widths 1/sqrt(Lambda_ii) (Bishop, PRML sec. 10.1.2).
"""

import math

import numpy as np
import pytest
import torch

import lhcbnn as lb
from lhcbnn.conjugate import BayesianLinearRegression, layer_posterior

NOISE_SIGMA = 0.5
PRIOR_SIGMA = 1.0
N_POINTS = 200


@pytest.fixture(scope="module")
def problem() -> tuple[torch.Tensor, torch.Tensor, BayesianLinearRegression]:
    rng = np.random.default_rng(42)
    x = rng.normal(size=(N_POINTS, 2)) + np.array([0.5, -0.3])  # correlated with the bias
    y = x @ np.array([0.8, -0.4]) + 0.3 + NOISE_SIGMA * rng.normal(size=N_POINTS)
    exact = BayesianLinearRegression(x, y, NOISE_SIGMA, PRIOR_SIGMA)
    return torch.tensor(x), torch.tensor(y)[:, None], exact


def test_exact_posterior_matches_evidence_identity(problem) -> None:
    """log p(T) = ELBO + KL[q, posterior] for any Gaussian q, in closed form."""
    _, _, exact = problem
    rng = np.random.default_rng(0)
    for _ in range(5):
        mu = torch.tensor(rng.normal(size=3))
        sigma = torch.tensor(rng.uniform(0.01, 0.5, size=3))
        total = exact.elbo(mu, sigma) + exact.kl_to_posterior(mu, sigma)
        torch.testing.assert_close(total, exact.log_evidence(), rtol=1e-10, atol=1e-8)


def test_log_evidence_against_direct_gaussian(problem) -> None:
    x, y, exact = problem
    design = exact.design
    cov = NOISE_SIGMA**2 * torch.eye(N_POINTS, dtype=torch.float64) + PRIOR_SIGMA**2 * (
        design @ design.T
    )
    direct = torch.distributions.MultivariateNormal(torch.zeros(N_POINTS).double(), cov)
    torch.testing.assert_close(exact.log_evidence(), direct.log_prob(y[:, 0]), rtol=1e-10, atol=0)


def test_monte_carlo_elbo_equals_closed_form_within_its_error(problem) -> None:
    _, _, exact = problem
    mu = exact.posterior_mean + 0.05
    sigma = exact.mean_field_sigma * 1.3
    estimate, standard_error = exact.monte_carlo_elbo(mu, sigma, n_samples=20_000, seed=3)
    closed = exact.elbo(mu, sigma)
    assert abs(float(estimate - closed)) < 4 * float(standard_error)
    assert float(standard_error) < 0.05  # the check is sharp, not vacuous


def test_layer_loss_is_the_negative_elbo_per_point(problem) -> None:
    """The training loss of a VBLinear estimates -ELBO/N (Monte Carlo over forward passes)."""
    x, y, exact = problem
    layer = lb.VBLinear(2, 1, prior_sigma=PRIOR_SIGMA).double()
    with torch.no_grad():
        layer.weight_mu.copy_(exact.posterior_mean[:2][None])
        layer.bias_mu.copy_(exact.posterior_mean[2:])
        layer.weight_log_var.copy_(2 * exact.mean_field_sigma[:2].log()[None] + 0.5)
        layer.bias_log_var.copy_(2 * exact.mean_field_sigma[2:].log() + 0.5)
    layer.train()
    torch.manual_seed(0)
    losses = []
    with torch.no_grad():
        for _ in range(2000):
            nll = lb.losses.gaussian_nll(layer(x), torch.full_like(y, 2 * math.log(NOISE_SIGMA)), y)
            losses.append(float(lb.losses.neg_elbo(nll.mean(), layer.kl(), N_POINTS)))
    mu, sigma = layer_posterior(layer)
    expected = -float(exact.elbo(mu, sigma)) / N_POINTS
    error = np.std(losses) / math.sqrt(len(losses))
    assert abs(np.mean(losses) - expected) < 4 * error


@pytest.mark.slow
def test_training_reaches_the_mean_field_optimum(problem) -> None:
    x, y, exact = problem
    torch.manual_seed(1)
    layer = lb.VBLinear(2, 1, prior_sigma=PRIOR_SIGMA).double()

    def nll(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_var = torch.full_like(output, 2 * math.log(NOISE_SIGMA))
        return lb.losses.gaussian_nll(output, log_var, target).sum(-1)

    lb.train(
        layer,
        x,
        y,
        n_epochs=4000,
        batch_size=N_POINTS,
        lr=0.02,
        nll=nll,
        lr_schedule="cosine",
        progress=False,
        seed=1,
    )
    mu, sigma = layer_posterior(layer)
    posterior_sigma = exact.posterior_cov.diagonal().sqrt()
    # Means: within 5% of the exact posterior width of the exact posterior mean.
    assert ((mu - exact.posterior_mean).abs() < 0.05 * posterior_sigma).all(), (
        mu,
        exact.posterior_mean,
    )
    # Widths: the mean-field optimum 1/sqrt(Lambda_ii) within 5%, not the marginal width.
    torch.testing.assert_close(sigma, exact.mean_field_sigma, rtol=0.05, atol=0.0)
    assert (exact.mean_field_sigma < 0.97 * posterior_sigma).any()  # the two differ here
    # The ELBO never exceeds the evidence; at the optimum the gap is the KL to the posterior.
    elbo = exact.elbo(mu, sigma)
    assert elbo <= exact.log_evidence()
    optimum_elbo = exact.elbo(exact.posterior_mean, exact.mean_field_sigma)
    assert float(optimum_elbo - elbo) < 0.05
    for scale in (0.5, 0.9, 1.1, 2.0):
        assert exact.elbo(exact.posterior_mean, exact.mean_field_sigma * scale) < optimum_elbo


def test_elbo_below_evidence_for_random_q(problem) -> None:
    _, _, exact = problem
    rng = np.random.default_rng(5)
    for _ in range(20):
        mu = torch.tensor(rng.normal(size=3))
        sigma = torch.tensor(rng.uniform(1e-3, 2.0, size=3))
        assert exact.elbo(mu, sigma) < exact.log_evidence()
