"""Classifier weights w = D / (1 - D) against the known density ratio."""

import numpy as np
import pytest
import torch
from scipy.stats import norm

import lhcbnn as lb


def test_optimal_classifier_gives_the_density_ratio() -> None:
    x = np.linspace(-3, 3, 61)
    p_data, p_model = norm.pdf(x, 0.3, 1.0), norm.pdf(x, 0.0, 1.2)
    d = p_data / (p_data + p_model)
    np.testing.assert_allclose(lb.reweight.classifier_weights(d), p_data / p_model, rtol=1e-9)
    tensor = lb.reweight.classifier_weights(torch.tensor(d))
    np.testing.assert_allclose(tensor.numpy(), p_data / p_model, rtol=1e-9)


def test_finite_at_zero_and_one() -> None:
    w = lb.reweight.classifier_weights(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    assert torch.isfinite(w).all()
    assert float(w[1]) == 1.0
    assert float(w[0]) < 1e-5 and float(w[2]) > 1e5


@pytest.mark.parametrize("bad", [-0.1, 1.2, float("nan")])
def test_probabilities_outside_unit_interval_raise(bad: float) -> None:
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        lb.reweight.classifier_weights(np.array([0.2, bad]))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        lb.reweight.classifier_weights(torch.tensor([0.2, bad]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_finite_at_zero_and_one_in_every_floating_dtype(dtype: torch.dtype) -> None:
    d = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=dtype)
    w = lb.reweight.classifier_weights(d)
    assert w.dtype == dtype
    assert torch.isfinite(w).all() and (w > 0).all()
    assert (torch.diff(w.float()) > 0).all()  # D/(1-D) keeps the order of D
    assert float(w[2]) == 1.0
