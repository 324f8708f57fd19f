"""Deterministic limit: as sigma_q -> 0 the BNN loss gradient is the L2-regularised one.

With q -> delta(theta - mu) the per-point loss mean NLL + KL/N becomes
mean NLL + lambda * sum mu^2 + const with lambda = 1 / (2 sigma_p^2 N_train).
"""

import pytest
import torch

import lhcbnn as lb

N_TRAIN = 64
PRIOR_SIGMA = 0.7


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(N_TRAIN, 3, generator=generator, dtype=torch.float64)
    y = torch.sin(x.sum(1, keepdim=True))
    return x, y


def _bnn_gradients(log_var: float) -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = lb.BayesianMLP(3, 1, hidden=(16,), prior_sigma=PRIOR_SIGMA, activation="tanh").double()
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, lb.VBLinear):
                layer.weight_log_var.fill_(log_var)
                layer.bias_log_var.fill_(log_var)
    x, y = _data()
    model.train()
    loss = lb.losses.neg_elbo(model.nll(model(x), y).mean(), lb.kl_divergence(model), N_TRAIN)
    loss.backward()
    return [p.grad for name, p in model.named_parameters() if name.endswith("_mu")]


def _l2_gradients(lam: float) -> list[torch.Tensor]:
    torch.manual_seed(0)
    model = lb.BayesianMLP(3, 1, hidden=(16,), prior_sigma=PRIOR_SIGMA, activation="tanh").double()
    means = [p for name, p in model.named_parameters() if name.endswith("_mu")]
    x, y = _data()
    with lb.map_mode(model):
        loss = model.nll(model(x), y).mean() + lam * sum((p**2).sum() for p in means)
    loss.backward()
    return [p.grad for p in means]


def _max_difference(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((g - h).abs().max()) for g, h in zip(a, b, strict=True))


def test_narrow_width_gradient_equals_l2_gradient() -> None:
    lam = lb.losses.l2_lambda(PRIOR_SIGMA, N_TRAIN)
    reference = _l2_gradients(lam)
    scale = max(float(g.abs().max()) for g in reference)
    differences = [_max_difference(_bnn_gradients(lv), reference) / scale for lv in (-8, -16, -30)]
    # The difference shrinks with sigma_q (like sigma_q) and vanishes in the limit.
    assert differences[0] > differences[1] > differences[2]
    assert differences[2] < 1e-5
    # The check can fail: a lambda without the 1/N_train, or with sigma_p instead of
    # sigma_p^2, gives visibly different gradients.
    for wrong in (1 / (2 * PRIOR_SIGMA**2), 1 / (2 * PRIOR_SIGMA * N_TRAIN)):
        assert _max_difference(_bnn_gradients(-30), _l2_gradients(wrong)) / scale > 1e-3


@pytest.mark.parametrize("n_train", [10, 1000])
def test_l2_lambda_scales_like_one_over_n(n_train: int) -> None:
    assert lb.losses.l2_lambda(1.0, n_train) * n_train == pytest.approx(0.5)
