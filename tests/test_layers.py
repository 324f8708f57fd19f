"""VBLinear, kl_divergence, fixed_draw and map_mode against closed forms and torch."""

import math

import numpy as np
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


def test_eval_mode_draws_one_network_per_call() -> None:
    layer = _randomised_layer()
    layer.eval()
    zeros = torch.zeros(4, 7, dtype=torch.float64)
    first = layer(zeros)
    # With x = 0 only the bias acts: a sampled bias differs from its mean.
    assert not torch.allclose(first[0], layer.bias_mu)
    torch.testing.assert_close(first[0], first[1])  # one network for the whole batch
    assert not torch.allclose(layer(zeros), first)  # the next call is the next network


def test_fixed_draw_keeps_one_draw_inside_the_block_only() -> None:
    model = lb.BayesianMLP(7, 2, hidden=(8,), heteroskedastic=True).double()
    x = torch.randn(5, 7, dtype=torch.float64)
    for training in (False, True):
        model.train(training)
        with lb.fixed_draw(model):
            inside = model(x)
            torch.testing.assert_close(model(x), inside)  # every call: the same network
            torch.testing.assert_close(model(x[:2]), inside[:2])
            with lb.fixed_draw(model):  # a nested block draws anew ...
                assert not torch.allclose(model(x), inside)
            torch.testing.assert_close(model(x), inside)  # ... and gives the outer draw back
        assert not torch.allclose(model(x), inside)
        assert not torch.allclose(model(x), model(x))
    with pytest.raises(RuntimeError, match="boom"), lb.fixed_draw(model):
        raise RuntimeError("boom")
    model.eval()
    assert not torch.allclose(model(x), model(x))  # released after the exception
    with lb.fixed_draw(model), lb.map_mode(model):  # map_mode takes precedence
        torch.testing.assert_close(model(x), model(x))


def test_fixed_draw_has_gradients_through_the_draw() -> None:
    layer = _randomised_layer()
    x = torch.randn(3, 7, dtype=torch.float64)
    with lb.fixed_draw(layer):
        layer(x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.parameters())


def _eval_output_after(update: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Evaluation outputs with seed 0 before and after an update, and the expected one."""
    layer = _randomised_layer()
    layer.eval()
    x = torch.randn(6, 7, dtype=torch.float64)
    torch.manual_seed(0)
    before = layer(x).detach()
    if update == "optimizer.step":
        optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
        layer(x).square().sum().backward()
        optimizer.step()
    else:
        other = _randomised_layer(seed=9)
        layer.load_state_dict(other.state_dict())
    torch.manual_seed(0)
    after = layer(x).detach()
    torch.manual_seed(0)
    weight = layer.weight_mu + layer.weight_sigma * torch.randn_like(layer.weight_mu)
    bias = layer.bias_mu + layer.bias_sigma * torch.randn_like(layer.bias_mu)
    return before, after, (x @ weight.T + bias).detach()


@pytest.mark.parametrize("update", ["optimizer.step", "load_state_dict"])
def test_a_draw_never_outlives_a_parameter_update(update: str) -> None:
    before, after, expected = _eval_output_after(update)
    assert not torch.allclose(after, before)
    torch.testing.assert_close(after, expected)


def test_evaluation_after_training_uses_the_trained_weights() -> None:
    """model.eval(); model(x) before and after lb.train: the trained network, not a stale one."""
    x = torch.linspace(-2, 2, 256)[:, None]
    y = torch.sin(2 * x)
    torch.manual_seed(1)
    model = lb.BayesianMLP(1, 1, hidden=(32, 32))
    model.eval()
    before = model(x).detach()
    lb.train(model, x, y, n_epochs=150, batch_size=64, lr=1e-2, progress=False)
    model.eval()
    after = model(x).detach()
    assert not torch.allclose(after, before)
    mse_draw = float((after - y).square().mean())
    mse_predict = float((lb.predict(model, x, n_samples=20).mean - y).square().mean())
    mse_before = float((before - y).square().mean())
    # One draw scatters a little more than the posterior mean, but is a trained network.
    assert mse_draw < min(4 * mse_predict + 0.05, mse_before / 3), (mse_draw, mse_predict)


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
        layer.weight_log_var[0, 0] = 40.0  # far beyond the soft clip's upper bound
        layer.weight_log_var[1, 0] = -45.0  # and below the lower one
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
    # Beyond the bounds the gradient is small but not zero (a hard clamp's would be 0).
    assert float(fast[2][0, 0]) != 0.0 and float(fast[2][1, 0]) != 0.0


@pytest.mark.parametrize("log_var", [10.5, 30.0, -29.0, -60.0])
def test_gradcheck_in_the_soft_clipped_region(log_var: float) -> None:
    layer = _randomised_layer(seed=6)
    with torch.no_grad():
        layer.weight_log_var[:2] = log_var
        layer.bias_log_var[:2] = log_var
    layer.train()
    x = torch.randn(4, 7, dtype=torch.float64, requires_grad=True)
    params = (x, layer.weight_mu, layer.bias_mu, layer.weight_log_var, layer.bias_log_var)

    def seeded(*inputs: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(0)
        return layer(inputs[0])

    assert torch.autograd.gradcheck(seeded, params, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_soft_clip_is_identity_inside_bounded_outside_and_never_flat() -> None:
    from lhcbnn.softclip import LAYER_LOG_VAR_BOUNDS, soft_clip, soft_clip_slope

    low, high = LAYER_LOG_VAR_BOUNDS
    inside = torch.linspace(low + 2, high - 2, 101, dtype=torch.float64)
    assert torch.equal(soft_clip(inside, low, high), inside)  # bit for bit
    x = torch.tensor([-1e6, -200.0, -31.0, 12.0, 100.0, 1e6], dtype=torch.float64)
    clipped = soft_clip(x, low, high)
    assert ((clipped > low) & (clipped < high)).all()
    assert (soft_clip_slope(x, low, high) > 0).all()
    grid = torch.linspace(-80, 60, 1401, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(soft_clip(grid, low, high).sum(), grid)
    torch.testing.assert_close(slope, soft_clip_slope(grid.detach(), low, high))
    assert (torch.diff(soft_clip(grid, low, high)) > 0).all()  # monotone


def test_autocast_trains_with_gradients() -> None:
    """Under torch.autocast the training pass falls back to autograd and runs."""
    torch.manual_seed(0)
    model = lb.BayesianMLP(3, 1, hidden=(16,), heteroskedastic=True)
    x, y = torch.randn(32, 3), torch.randn(32, 1)
    model.train()
    device_type = next(model.parameters()).device.type
    with torch.autocast(device_type, dtype=torch.bfloat16):
        output = model(x)
        loss = model.nll(output.float(), y).mean() + lb.kl_divergence(model) / 32
    loss.backward()
    for parameter in model.parameters():
        assert parameter.grad is not None and parameter.grad.dtype == parameter.dtype
        assert torch.isfinite(parameter.grad).all()
    assert output.dtype == torch.bfloat16


def test_prior_sigma_accepts_numpy_scalars_and_0d_tensors() -> None:
    for value in (np.float32(0.5), np.float64(0.5), torch.tensor(0.5), 0.5, 1):
        layer = lb.VBLinear(2, 2, prior_sigma=value)
        assert layer.prior_sigma == float(value) and isinstance(layer.prior_sigma, float)
        lb.BayesianMLP(2, 1, hidden=(3,), prior_sigma=value)
    assert lb.losses.l2_lambda(np.float32(2.0), np.int64(100)) == pytest.approx(1 / 800)
    for bad, error in ((np.float32(-1.0), ValueError), ("0.5", TypeError), (True, TypeError)):
        with pytest.raises(error, match="prior_sigma"):
            lb.VBLinear(2, 2, prior_sigma=bad)
