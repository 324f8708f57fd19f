"""lhcbnn.flows against truth: Jacobians, inverses, normalisation, sampling, KL, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

import lhcbnn as lb
from lhcbnn.flows import INN

CONFIGS = {
    "spline_box_uniform": dict(bounds=(0.0, 1.0)),
    "spline_box_logit": dict(bounds=(0.0, 1.0), base="gaussian"),
    "spline_real": dict(),
    "affine_real": dict(coupling="affine"),
    "affine_box_logit": dict(bounds=(0.0, 1.0), coupling="affine"),
    "spline_real_bayesian": dict(bayesian=True),
}


def random_flow(seed: int = 0, dim: int = 2, **kwargs: object) -> INN:
    """A float64 flow far from the identity: its zero-initialised last layers randomised."""
    torch.manual_seed(seed)
    flow = INN(dim, n_blocks=4, hidden=(16, 16), **kwargs).double()
    with torch.no_grad():
        for block in flow.blocks:
            last = block.network[-1]
            weight = last.weight_mu if isinstance(last, lb.VBLinear) else last.weight
            weight.normal_(0.0, 0.3 if flow.bayesian or flow.bounds is None else 0.6)
    return flow.eval()


def inside_points(flow: INN, n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    if flow.bounds is None:
        return 1.5 * torch.randn(n, flow.dim, generator=generator, dtype=torch.float64)
    low, high = flow.bounds
    return low + (high - low) * torch.rand(n, flow.dim, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("name", CONFIGS)
def test_log_det_matches_autograd_jacobian(name: str) -> None:
    flow = random_flow(1, **CONFIGS[name])
    x = inside_points(flow, 8, seed=2)
    with lb.map_mode(flow):
        z, log_det = flow(x)
        for point, value in zip(x, log_det, strict=True):
            jacobian = torch.autograd.functional.jacobian(lambda v: flow(v[None])[0][0], point)
            sign, log_abs = torch.linalg.slogdet(jacobian)
            assert sign.item() > 0  # every coupling is increasing in its coordinates
            assert value.item() == pytest.approx(log_abs.item(), rel=1e-8, abs=1e-9)
        _, inverse_log_det = flow.inverse(z)
    torch.testing.assert_close(inverse_log_det, -log_det, atol=1e-7, rtol=0)


@pytest.mark.parametrize("name", CONFIGS)
def test_inverse_of_forward_is_identity(name: str) -> None:
    flow = random_flow(3, **CONFIGS[name])
    x = inside_points(flow, 500, seed=4)
    with lb.map_mode(flow):
        z, _ = flow(x)
        x_back, _ = flow.inverse(z)
    torch.testing.assert_close(x_back, x, atol=1e-8, rtol=0)
    # The flow really moves points (the test would pass trivially for the identity).
    assert (z - x).abs().max() > 0.05


def grid_integral(flow: INN, low: float, high: float, n: int = 400) -> float:
    edges = torch.linspace(low, high, n + 1, dtype=torch.float64)
    centres = 0.5 * (edges[1:] + edges[:-1])
    grid = torch.stack(torch.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad(), lb.map_mode(flow):
        density = flow.log_prob(grid).exp()
    return float(density.sum()) * ((high - low) / n) ** 2


@pytest.mark.parametrize("name", ["spline_box_uniform", "spline_box_logit", "affine_box_logit"])
def test_density_on_a_box_integrates_to_one(name: str) -> None:
    flow = random_flow(5, **CONFIGS[name])
    assert grid_integral(flow, 0.0, 1.0, n=300) == pytest.approx(1.0, abs=3e-3)


@pytest.mark.parametrize("name", ["spline_real", "affine_real"])
def test_density_on_the_plane_integrates_to_one(name: str) -> None:
    flow = random_flow(6, **CONFIGS[name])
    assert grid_integral(flow, -12.0, 12.0, n=400) == pytest.approx(1.0, abs=3e-3)


@pytest.mark.parametrize("name", ["spline_box_uniform", "spline_real", "affine_box_logit"])
def test_samples_follow_log_prob(name: str) -> None:
    """Binned chi-square of 20k samples against the bin masses of exp(log_prob)."""
    flow = random_flow(7, **CONFIGS[name])
    n = 20_000
    samples = flow.sample(n, generator=torch.Generator().manual_seed(8)).numpy()
    low, high = (0.0, 1.0) if flow.bounds else (-5.0, 5.0)
    n_bins, fine = 8, 40
    edges = np.linspace(low, high, n_bins + 1)
    counts, _, _ = np.histogram2d(samples[:, 0], samples[:, 1], bins=[edges, edges])
    fine_edges = torch.linspace(low, high, n_bins * fine + 1, dtype=torch.float64)
    centres = 0.5 * (fine_edges[1:] + fine_edges[:-1])
    grid = torch.stack(torch.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        density = flow.log_prob(grid).exp().reshape(n_bins, fine, n_bins, fine)
    mass = density.sum(dim=(1, 3)).numpy() * ((high - low) / (n_bins * fine)) ** 2
    expected = n * mass
    keep = expected > 5
    if flow.bounds is None:  # mass outside the histogrammed square is not compared
        assert mass.sum() > 0.9
    chi2 = float(((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum())
    p_value = stats.chi2.sf(chi2, int(keep.sum()) - 1)
    assert p_value > 1e-3, (chi2, int(keep.sum()))
    # And the chi-square sees a wrong density: samples of another flow fail.
    other = random_flow(9, **CONFIGS[name]).sample(n, generator=torch.Generator().manual_seed(8))
    wrong, _, _ = np.histogram2d(other[:, 0].numpy(), other[:, 1].numpy(), bins=[edges, edges])
    chi2_wrong = float(((wrong[keep] - expected[keep]) ** 2 / expected[keep]).sum())
    assert stats.chi2.sf(chi2_wrong, int(keep.sum()) - 1) < 1e-6


def test_bayesian_kl_is_the_closed_form() -> None:
    flow = random_flow(10, bayesian=True, prior_sigma=0.7)
    with torch.no_grad():
        for layer in flow.modules():
            if isinstance(layer, lb.VBLinear):
                layer.weight_log_var.uniform_(-6.0, 0.0)
                layer.bias_mu.normal_(0.0, 0.3)
    expected = 0.0
    for layer in flow.modules():
        if isinstance(layer, lb.VBLinear):
            for mu, log_var in (
                (layer.weight_mu, layer.weight_log_var),
                (layer.bias_mu, layer.bias_log_var),
            ):
                var = log_var.detach().double().exp().numpy()
                m = mu.detach().double().numpy()
                expected += float(
                    np.sum((var + m**2) / (2 * 0.7**2) - 0.5 - 0.5 * np.log(var / 0.7**2))
                )
    assert lb.kl_divergence(flow).item() == pytest.approx(expected, rel=1e-10)
    assert sum(isinstance(m, lb.VBLinear) for m in flow.modules()) == 4 * 3


def test_weight_draw_fixes_one_density_and_map_mode_is_deterministic() -> None:
    flow = random_flow(11, bayesian=True)
    with torch.no_grad():
        for layer in flow.modules():
            if isinstance(layer, lb.VBLinear):
                layer.weight_log_var.fill_(-3.0)
    x = inside_points(flow, 64, seed=12)
    with torch.no_grad():
        with lb.flows.weight_draw(flow):
            first, again = flow.log_prob(x), flow.log_prob(x)
        with lb.flows.weight_draw(flow):
            second = flow.log_prob(x)
        with lb.map_mode(flow):
            mean_a, mean_b = flow.log_prob(x), flow.log_prob(x)
    torch.testing.assert_close(first, again, atol=0, rtol=0)
    assert (first - second).abs().max() > 1e-3
    torch.testing.assert_close(mean_a, mean_b, atol=0, rtol=0)


def test_density_with_uncertainty_spread_zero_without_bayesian_layers() -> None:
    x = torch.rand(50, 2, dtype=torch.float64)
    plain = lb.flows.density_with_uncertainty(random_flow(13, bounds=(0.0, 1.0)), x, n_draws=3)
    assert np.all(plain.sigma_pred <= 1e-12 * plain.mean)
    bayes = random_flow(13, bounds=(0.0, 1.0), bayesian=True)
    with torch.no_grad():
        for layer in bayes.modules():
            if isinstance(layer, lb.VBLinear):
                layer.weight_log_var.fill_(-4.0)
    result = lb.flows.density_with_uncertainty(bayes, x, n_draws=20, seed=1)
    assert result.draws.shape == (20, 50)
    assert np.all(result.sigma_pred > 0)
    np.testing.assert_allclose(result.mean, result.draws.mean(0))
    again = lb.flows.density_with_uncertainty(bayes, x, n_draws=20, seed=1)
    np.testing.assert_array_equal(again.draws, result.draws)


def test_histogram_with_uncertainty_matches_the_density() -> None:
    flow = random_flow(14, bounds=(0.0, 1.0))
    edges = np.linspace(0.0, 1.0, 6)
    hist = lb.flows.histogram_with_uncertainty(flow, edges, n_samples=40_000, n_draws=4, seed=2)
    # Marginal of x1 per bin from the density on a fine grid.
    fine = torch.linspace(0.0, 1.0, 501, dtype=torch.float64)
    centres = 0.5 * (fine[1:] + fine[:-1])
    grid = torch.stack(torch.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        density = flow.log_prob(grid).exp().reshape(500, 500).mean(1).numpy()
    marginal = density.reshape(5, 100).mean(1)
    pulls = (hist.mean - marginal) / (hist.sigma_stat / math.sqrt(4))
    assert np.all(np.abs(pulls) < 5), pulls
    # A flow without Bayesian layers: the draws differ by sampling noise only.
    assert np.all(hist.sigma_pred < 4 * hist.sigma_stat)


def test_samples_are_seeded_by_the_generator() -> None:
    flow = random_flow(15, bounds=(0.0, 1.0))
    a = flow.sample(100, generator=torch.Generator().manual_seed(1))
    b = flow.sample(100, generator=torch.Generator().manual_seed(1))
    c = flow.sample(100, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.equal(a, c)
    assert a.min() >= 0.0 and a.max() <= 1.0


def test_training_learns_the_wedge_and_repeats_with_its_seed() -> None:
    toy = lb.data.toys.wedge_ramp
    x, x_val = toy.sample(4000, seed=1), toy.sample(20_000, seed=2)
    exact = -float(np.mean(toy.log_pdf(x_val)))
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        flow = INN(2, n_blocks=2, hidden=(16,), bounds=(0.0, 1.0))
        history = lb.flows.train_flow(
            flow, x, n_steps=120, batch_size=256, lr=1e-2, seed=3, x_val=x_val, record_every=60
        )
        runs.append(history.val_nll)
    assert runs[0] == runs[1]
    # Start (uniform density): gap = log 2 - 1/2 = 0.19 nats; after training much less.
    assert runs[0][-1] - exact < 0.03


def test_bayesian_training_uses_the_elbo() -> None:
    toy = lb.data.toys.wedge_ramp
    flow = INN(2, n_blocks=2, hidden=(16,), bounds=(0.0, 1.0), bayesian=True)
    history = lb.flows.train_flow(
        flow, toy.sample(2000, seed=1), n_steps=20, batch_size=200, n_train=2000, record_every=20
    )
    assert history.kl[-1] > 0
    assert history.loss[-1] == pytest.approx(history.nll[-1] + history.kl[-1] / 2000, rel=0.05)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        (torch.rand(5, 3), r"shape \(n, 2\)"),
        (torch.rand(5), r"shape \(n, 2\)"),
        (torch.tensor([[0.5, 1.2]]), "outside the flow's domain"),
        (torch.tensor([[-0.1, 0.5]]), "outside the flow's domain"),
        (torch.tensor([[float("nan"), 0.5]]), "NaN"),
        (torch.tensor([[float("inf"), 0.5]]), "NaN or infinite"),
    ],
)
def test_bad_input_is_named(points: torch.Tensor, message: str) -> None:
    flow = INN(2, bounds=(0.0, 1.0))
    with pytest.raises(ValueError, match=message):
        flow.log_prob(points)


def test_bad_construction_is_named() -> None:
    with pytest.raises(ValueError, match="dim"):
        INN(1)
    with pytest.raises(ValueError, match="uniform base"):
        INN(2, base="uniform")
    with pytest.raises(ValueError, match="coupling"):
        INN(2, coupling="glow")
    with pytest.raises(ValueError, match="low < high"):
        INN(2, bounds=(1.0, 0.0))
    with pytest.raises(ValueError, match="NaN"):
        lb.flows.train_flow(INN(2), np.array([[0.0, np.nan]]), n_steps=1)
    with pytest.raises(ValueError, match="outside"):
        lb.flows.train_flow(INN(2, bounds=(0.0, 1.0)), np.array([[0.5, 2.0]]), n_steps=1)
