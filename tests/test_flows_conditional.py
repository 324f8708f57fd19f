"""The conditional flow p(x | c) and weighted training (chapters 10 and 11)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lhcbnn.flows import INN, train_flow, validation_nll

CONFIGS = {
    "spline_1d": dict(dim=1),
    "spline_2d": dict(dim=2),
    "affine_2d": dict(dim=2, coupling="affine"),
    "spline_box_2d": dict(dim=2, bounds=(0.0, 1.0)),
}


def random_conditional_flow(seed: int = 0, n_condition: int = 2, **kwargs: object) -> INN:
    """A float64 conditional flow far from the identity (last layers randomised)."""
    torch.manual_seed(seed)
    flow = INN(n_blocks=3, hidden=(16, 16), n_condition=n_condition, **kwargs).double()
    with torch.no_grad():
        for block in flow.blocks:
            block.network[-1].weight.normal_(0.0, 0.5)
    return flow.eval()


def points(flow: INN, n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    if flow.bounds is None:
        return 1.5 * torch.randn(n, flow.dim, generator=generator, dtype=torch.float64)
    return torch.rand(n, flow.dim, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("name", CONFIGS)
def test_log_det_and_inverse_at_fixed_condition(name: str) -> None:
    flow = random_conditional_flow(1, **CONFIGS[name])
    x = points(flow, 6, seed=2)
    c = torch.randn(6, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    z, log_det = flow(x, c)
    for point, condition, value in zip(x, c, log_det, strict=True):
        jacobian = torch.autograd.functional.jacobian(
            lambda v, condition=condition: flow(v[None], condition[None])[0][0], point
        )
        assert value.item() == pytest.approx(torch.linalg.slogdet(jacobian)[1].item(), rel=1e-8)
    x_back, inverse_log_det = flow.inverse(z, c)
    torch.testing.assert_close(x_back, x, atol=1e-8, rtol=0)
    torch.testing.assert_close(inverse_log_det, -log_det, atol=1e-8, rtol=0)


def test_the_condition_changes_the_density_and_each_integrates_to_one() -> None:
    flow = random_conditional_flow(4, dim=1)
    grid = torch.linspace(-12.0, 12.0, 24001, dtype=torch.float64)[:, None]
    densities = []
    for value in (-1.0, 0.0, 2.0):
        condition = torch.tensor([value, -value], dtype=torch.float64)
        with torch.no_grad():
            density = flow.log_prob(grid, condition).exp()
        assert torch.trapezoid(density, grid[:, 0]).item() == pytest.approx(1.0, abs=1e-4)
        densities.append(density)
    assert (densities[0] - densities[2]).abs().max() > 0.01


def test_sampling_broadcasts_one_condition_and_is_seeded() -> None:
    flow = random_conditional_flow(5, dim=2)
    one = torch.tensor([0.3, -0.2], dtype=torch.float64)
    a = flow.sample(50, torch.Generator().manual_seed(7), condition=one)
    b = flow.sample(50, torch.Generator().manual_seed(7), condition=one.expand(50, 2))
    assert a.shape == (50, 2)
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_a_one_dimensional_conditional_flow_learns_a_gaussian_given_c() -> None:
    """x | c ~ N(c, 0.5^2): the learned conditional mean and width at c = 1."""
    rng = np.random.default_rng(0)
    c = rng.uniform(-2.0, 2.0, (8000, 1))
    x = c + 0.5 * rng.normal(size=(8000, 1))
    flow = INN(1, n_blocks=3, hidden=(32, 32), n_condition=1)
    train_flow(flow, x, condition=c, n_steps=600, batch_size=256, seed=1)
    samples = flow.sample(4000, torch.Generator().manual_seed(0), condition=torch.tensor([1.0]))
    assert samples.mean().item() == pytest.approx(1.0, abs=0.1)
    assert samples.std().item() == pytest.approx(0.5, abs=0.08)
    exact = 0.5 * math.log(2 * math.pi * 0.25) + 0.5
    assert validation_nll(flow, x, condition=c) == pytest.approx(exact, abs=0.05)


def test_unit_weights_give_the_unweighted_run_and_weights_shift_the_fit() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 2))
    runs = []
    for weights in (None, np.ones(len(x))):
        torch.manual_seed(0)  # the same initial weights
        flow = INN(2, n_blocks=2, hidden=(16,))
        train_flow(flow, x, weights=weights, n_steps=30, batch_size=256, seed=3)
        runs.append(torch.cat([p.detach().flatten() for p in flow.parameters()]))
    torch.testing.assert_close(runs[0], runs[1], atol=0, rtol=0)

    # w = exp(x_1) turns N(0, 1) into N(1, 1) in x_1: the weighted fit moves there.
    flow = INN(2, n_blocks=3, hidden=(32, 32))
    train_flow(flow, x, weights=np.exp(x[:, 0]), n_steps=600, batch_size=256, seed=2)
    samples = flow.sample(8000, torch.Generator().manual_seed(1)).numpy()
    assert samples[:, 0].mean() == pytest.approx(1.0, abs=0.15)
    assert samples[:, 1].mean() == pytest.approx(0.0, abs=0.1)


def test_weighted_validation_nll_is_the_weighted_mean() -> None:
    flow = random_conditional_flow(6, dim=2).float()
    x = points(flow, 100, seed=8).float()
    c = torch.randn(100, 2, generator=torch.Generator().manual_seed(9))
    w = torch.rand(100, generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        expected = float(-(w * flow.log_prob(x, c)).sum() / w.sum())
    assert validation_nll(flow, x, condition=c, weights=w) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda f, u: f.log_prob(torch.zeros(3, 2)), "conditional"),
        (lambda f, u: f.log_prob(torch.zeros(3, 2), torch.zeros(3, 1)), "shape"),
        (lambda f, u: f.log_prob(torch.zeros(3, 2), torch.full((3, 2), math.nan)), "NaN"),
        (lambda f, u: u.log_prob(torch.zeros(3, 2), torch.zeros(3, 2)), "unconditional"),
        (lambda f, u: f.sample(3), "conditional"),
        (
            lambda f, u: train_flow(
                f, torch.zeros(4, 2), condition=torch.zeros(4, 2), weights=-torch.ones(4)
            ),
            ">= 0",
        ),
        (
            lambda f, u: train_flow(
                f, torch.zeros(4, 2), condition=torch.zeros(4, 2), weights=torch.zeros(4)
            ),
            "all zero",
        ),
        (
            lambda f, u: train_flow(
                f, torch.zeros(4, 2), condition=torch.zeros(4, 2), weights=torch.ones(3)
            ),
            "shape",
        ),
        (lambda f, u: train_flow(f, torch.zeros(4, 2)), "condition"),
    ],
)
def test_bad_conditions_and_weights_are_named(call: object, message: str) -> None:
    conditional = INN(2, n_blocks=2, hidden=(8,), n_condition=2)
    unconditional = INN(2, n_blocks=2, hidden=(8,))
    with pytest.raises(ValueError, match=message):
        call(conditional, unconditional)


def test_an_unconditional_flow_still_needs_two_dimensions() -> None:
    with pytest.raises(ValueError, match="dim"):
        INN(1)
    assert INN(1, n_condition=1).dim == 1
