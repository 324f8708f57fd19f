"""VBLinear, kl_divergence, map_mode and resample against closed forms and torch."""

import math

import pytest
import torch
from torch.distributions import Normal
from torch.distributions import kl_divergence as torch_kl

import lhcbnn as lb


def _randomised_layer(prior_sigma: float = 1.0, seed: int = 0) -> lb.VBLinear:
    torch.manual_seed(seed)
    layer = lb.VBLinear(7, 5, prior_sigma=prior_sigma).double()
    with torch.no_grad():
        layer.weight_mu.normal_(0.0, 0.7)
        layer.weight_log_var.uniform_(-6.0, 1.0)
        layer.bias_mu.normal_(0.0, 0.7)
        layer.bias_log_var.uniform_(-6.0, 1.0)
    return layer


@pytest.mark.parametrize("prior_sigma", [1.0, 0.3, 2.5])
def test_layer_kl_equals_torch_distributions(prior_sigma: float) -> None:
    layer = _randomised_layer(prior_sigma)
    prior = Normal(
        torch.zeros((), dtype=torch.float64), torch.tensor(prior_sigma, dtype=torch.float64)
    )
    expected = (
        torch_kl(Normal(layer.weight_mu, layer.weight_log_var.mul(0.5).exp()), prior).sum()
        + torch_kl(Normal(layer.bias_mu, layer.bias_log_var.mul(0.5).exp()), prior).sum()
    )
    torch.testing.assert_close(layer.kl(), expected, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(lb.kl_divergence(layer), expected, rtol=1e-12, atol=1e-10)


def test_kl_divergence_sums_all_layers_and_is_not_averaged() -> None:
    model = lb.BayesianMLP(3, 2, hidden=(16, 8), prior_sigma=0.5)
    layers = [m for m in model.modules() if isinstance(m, lb.VBLinear)]
    assert len(layers) == 3
    total = sum(layer.kl() for layer in layers)
    torch.testing.assert_close(lb.kl_divergence(model), total)
    # Held against the per-parameter formula: a mean per tensor would be ~1000x smaller.
    n_params = sum(p.numel() for p in model.parameters()) // 2
    assert lb.kl_divergence(model) > n_params  # log-variance -9 costs > 1 nat per weight


def test_kl_gaussian_closed_form_elementwise() -> None:
    mu_q, sigma_q = torch.tensor([0.3, -1.0]), torch.tensor([0.5, 2.0])
    expected = torch_kl(Normal(mu_q, sigma_q), Normal(torch.tensor(0.2), torch.tensor(1.5)))
    torch.testing.assert_close(lb.losses.kl_gaussian(mu_q, sigma_q, 0.2, 1.5), expected)
    assert float(lb.losses.kl_gaussian(0.0, 1.0, 0.0, 1.0)) == 0.0


def test_local_reparameterisation_moments() -> None:
    """Training-mode outputs have mean x mu^T + b and variance x^2 sigma^2 + sigma_b^2."""
    layer = _randomised_layer()
    x = torch.randn(1, 7, dtype=torch.float64).expand(200_000, 7)
    layer.train()
    with torch.no_grad():
        out = layer(x)
    mean = x[0] @ layer.weight_mu.T + layer.bias_mu
    var = x[0] ** 2 @ layer.weight_var.T + layer.bias_var
    standard_error = (var / x.shape[0]).sqrt()
    assert ((out.mean(0) - mean).abs() < 5 * standard_error).all()
    torch.testing.assert_close(out.var(0), var, rtol=0.02, atol=0.0)


def test_eval_mode_reuses_one_draw_including_bias_until_resample() -> None:
    layer = _randomised_layer()
    layer.eval()
    zeros = torch.zeros(4, 7, dtype=torch.float64)
    first = layer(zeros)
    # With x = 0 only the bias acts: a sampled bias differs from its mean.
    assert not torch.allclose(first[0], layer.bias_mu)
    torch.testing.assert_close(first[0], first[1])  # one network for the whole batch
    torch.testing.assert_close(layer(zeros), first)  # kept until resample
    lb.resample(layer)
    assert not torch.allclose(layer(zeros), first)


def test_map_mode_uses_means_and_restores() -> None:
    layer = _randomised_layer()
    x = torch.randn(3, 7, dtype=torch.float64)
    for training in (True, False):
        layer.train(training)
        with lb.map_mode(layer):
            torch.testing.assert_close(layer(x), x @ layer.weight_mu.T + layer.bias_mu)
        assert not layer.use_means
    with pytest.raises(RuntimeError), lb.map_mode(layer):
        raise RuntimeError("boom")
    assert not layer.use_means


def test_parameters_are_distinct_and_follow_the_device() -> None:
    layer = lb.VBLinear(3, 2)
    pointers = {p.data_ptr() for p in layer.parameters()}
    assert len(pointers) == 4  # no aliased parameters (the blitz bug)
    layer.to(lb.device())
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    before = [p.detach().clone() for p in layer.parameters()]
    loss = layer(torch.ones(5, 3, device=lb.device())).pow(2).sum() + layer.kl()
    loss.backward()
    optimizer.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, layer.parameters(), strict=True))


def test_log_variance_clamp_keeps_everything_finite() -> None:
    layer = lb.VBLinear(2, 2)
    with torch.no_grad():
        layer.weight_log_var.fill_(500.0)
        layer.bias_log_var.fill_(-500.0)
    assert torch.isfinite(layer.kl())
    assert torch.isfinite(layer(torch.ones(3, 2))).all()
    assert math.isfinite(float(layer.weight_sigma.detach().max()))


def test_training_gradients_equal_autograd_of_the_formula() -> None:
    """The hand-written backward pass of local reparameterisation equals autograd's."""
    layer = _randomised_layer(prior_sigma=0.8, seed=4)
    with torch.no_grad():
        layer.weight_log_var[0, 0] = 40.0  # clamp active: zero gradient, like torch.clamp
    x = torch.randn(9, 7, dtype=torch.float64, requires_grad=True)
    layer.train()
    torch.manual_seed(11)
    out = layer(x)
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    fast = [x.grad.clone()] + [p.grad.clone() for p in layer.parameters()]

    torch.manual_seed(11)
    x.grad = None
    layer.zero_grad()
    mean = x @ layer.weight_mu.T + layer.bias_mu
    var = (x * x) @ layer.weight_var.T + layer.bias_var
    reference = mean + var.sqrt() * torch.randn_like(mean)
    torch.testing.assert_close(reference, out.detach())
    (reference * weights).sum().backward()
    slow = [x.grad] + [p.grad for p in layer.parameters()]
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert float(fast[2][0, 0]) == 0.0  # weight_log_var is the second parameter


def test_training_forward_passes_gradcheck() -> None:
    layer = _randomised_layer(seed=5)
    layer.train()
    x = torch.randn(4, 7, dtype=torch.float64, requires_grad=True)
    params = (x, layer.weight_mu, layer.bias_mu, layer.weight_log_var, layer.bias_log_var)

    def seeded(*inputs: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(0)
        return layer(inputs[0])

    assert torch.autograd.gradcheck(seeded, params, eps=1e-6, atol=1e-6)
    assert torch.autograd.gradgradcheck(seeded, params, eps=1e-6, atol=1e-5)
