"""lb.train: the KL weight of the mini-batch ELBO, the caller's random state, reproducibility."""

import math
import random

import numpy as np
import pytest
import torch

import lhcbnn as lb

NOISE_SIGMA, PRIOR_SIGMA, N_TRAIN, BATCH_SIZE = 1.0, 0.3, 64, 16


def _exact_posterior_mean(x: torch.Tensor, y: torch.Tensor, kl_weight: float) -> torch.Tensor:
    r"""Posterior means of ``y = w x + b + noise`` with a Gaussian prior whose KL (and so
    log-prior) is weighted ``kl_weight``: :math:`\Lambda = \Phi^T\Phi/\sigma^2 + k I/\sigma_p^2`.

    The mean-field ELBO's optimum has exactly these means (the conjugate case, chapter 2).
    """
    features = torch.cat([x, torch.ones_like(x)], dim=1).double()
    precision = features.T @ features / NOISE_SIGMA**2 + kl_weight * torch.eye(2) / PRIOR_SIGMA**2
    return torch.linalg.solve(precision, features.T @ y.double() / NOISE_SIGMA**2)[:, 0]


def test_minibatch_training_divides_the_kl_by_n_train() -> None:
    """Batches of 16 out of 64 points: the trained means are the posterior's, not those of a
    KL divided by the batch size (which weights the prior 4 times too much)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(N_TRAIN, 1, generator=generator)
    y = 1.5 * x + 0.5 + NOISE_SIGMA * torch.randn(N_TRAIN, 1, generator=generator)
    torch.manual_seed(0)
    layer = lb.VBLinear(1, 1, prior_sigma=PRIOR_SIGMA, log_var_init=-4.0)
    log_var = 2 * math.log(NOISE_SIGMA)

    def nll(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return lb.losses.gaussian_nll(output, torch.full_like(output, log_var), target)[:, 0]

    lb.train(
        layer,
        x,
        y,
        n_epochs=100,
        batch_size=BATCH_SIZE,
        lr=0.05,
        lr_schedule="cosine",
        nll=nll,
        progress=False,
    )
    trained = torch.stack([layer.weight_mu[0, 0], layer.bias_mu[0]]).detach().double()
    right = _exact_posterior_mean(x, y, 1.0)
    wrong = _exact_posterior_mean(x, y, N_TRAIN / BATCH_SIZE)
    assert float((right - wrong).abs().min()) > 0.1  # the test can tell them apart
    torch.testing.assert_close(trained, right, atol=0.04, rtol=0.0)


def test_train_leaves_the_global_random_state_alone() -> None:
    model = lb.MCDropoutMLP(1, 1, hidden=(8,), p=0.2)
    x = torch.linspace(-1, 1, 32)[:, None]
    random.seed(5)
    np.random.seed(5)  # noqa: NPY002 (the global generator is what is tested)
    torch.manual_seed(5)
    states = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state())  # noqa: NPY002
    lb.train(model, x, x**2, n_epochs=2, batch_size=8, seed=11, progress=False)
    assert random.getstate() == states[0]
    np.testing.assert_array_equal(np.random.get_state()[1], states[1])  # noqa: NPY002
    assert torch.equal(torch.get_rng_state(), states[2])


def test_training_is_reproducible_for_a_seed_and_depends_on_it() -> None:
    def run(seed: int) -> list[float]:
        torch.manual_seed(3)
        model = lb.BayesianMLP(1, 1, hidden=(8,), heteroskedastic=True)
        x = torch.linspace(-1, 1, 64)[:, None]
        torch.rand(7)  # whatever the caller drew before does not matter
        return lb.train(model, x, x**2, n_epochs=3, batch_size=16, progress=False, seed=seed).loss

    assert run(5) == run(5)
    assert run(5) != run(6)


@pytest.mark.parametrize("seed", [1.5, "1", True])
def test_seed_must_be_an_integer(seed: object) -> None:
    with pytest.raises(TypeError, match="seed"):
        lb.train(lb.BayesianMLP(1, 1, hidden=(2,)), [[0.0]], [[0.0]], seed=seed, progress=False)
