"""Bad input raises a clear ValueError or TypeError naming the problem, never a NaN."""

import math

import pytest
import torch

import lhcbnn as lb


@pytest.mark.parametrize("prior_sigma", [0.0, -1.0])
def test_non_positive_prior_width(prior_sigma: float) -> None:
    with pytest.raises(ValueError, match="prior_sigma"):
        lb.VBLinear(3, 2, prior_sigma=prior_sigma)
    with pytest.raises(ValueError, match="prior_sigma"):
        lb.BayesianMLP(3, 1, prior_sigma=prior_sigma)


def test_non_finite_prior_width() -> None:
    with pytest.raises(ValueError, match="prior_sigma"):
        lb.VBLinear(3, 2, prior_sigma=math.nan)
    with pytest.raises(TypeError, match="prior_sigma"):
        lb.VBLinear(3, 2, prior_sigma="0.5")


@pytest.mark.parametrize("sigma_q", [0.0, -0.5, math.nan])
def test_kl_gaussian_rejects_bad_widths(sigma_q: float) -> None:
    with pytest.raises(ValueError, match="sigma_q"):
        lb.losses.kl_gaussian(0.0, sigma_q, 0.0, 1.0)
    with pytest.raises(ValueError, match="sigma_p"):
        lb.losses.kl_gaussian(0.0, 1.0, 0.0, abs(sigma_q) * -1 if sigma_q == sigma_q else sigma_q)


@pytest.mark.parametrize("sizes", [(0, 2), (3, -1)])
def test_layer_sizes(sizes) -> None:
    with pytest.raises(ValueError, match="features"):
        lb.VBLinear(*sizes)
    with pytest.raises(TypeError, match="features must be an integer"):
        lb.VBLinear(2.5, 1)


def test_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="shapes do not match"):
        lb.losses.gaussian_nll(torch.zeros(4, 1), torch.zeros(4, 1), torch.zeros(5, 1))
    with pytest.raises(ValueError, match="target"):
        lb.losses.gaussian_mixture_nll(
            torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(3)
        )
    with pytest.raises(ValueError, match=r"expects inputs \(\.\.\., 3\)"):
        lb.VBLinear(3, 2)(torch.zeros(5, 4))
    model = lb.BayesianMLP(2, 1)
    with pytest.raises(ValueError, match="points"):
        lb.train(model, torch.zeros(10, 2), torch.zeros(9, 1), n_epochs=1, progress=False)
    prediction = lb.predict(model, torch.zeros(4, 2), n_samples=3)
    with pytest.raises(ValueError, match="truth has shape"):
        lb.pulls(prediction, torch.zeros(5))


def test_nan_targets_and_inputs() -> None:
    with pytest.raises(ValueError, match="target contains NaN"):
        lb.losses.gaussian_nll(torch.zeros(2), torch.zeros(2), torch.tensor([0.0, math.nan]))
    model = lb.BayesianMLP(1, 1)
    with pytest.raises(ValueError, match="y contains NaN"):
        lb.train(
            model,
            torch.zeros(3, 1),
            torch.tensor([[0.0], [math.nan], [1.0]]),
            n_epochs=1,
            progress=False,
        )
    with pytest.raises(ValueError, match="x contains NaN"):
        lb.predict(model, torch.tensor([[math.inf]]))
    with pytest.raises(ValueError, match="truth contains NaN"):
        lb.pulls(lb.predict(model, torch.zeros(1, 1), n_samples=2), torch.tensor([math.nan]))


def test_bad_arguments() -> None:
    model = lb.BayesianMLP(1, 1)
    with pytest.raises(ValueError, match="n_samples"):
        lb.predict(model, torch.zeros(2, 1), n_samples=0)
    with pytest.raises(ValueError, match="n_train"):
        lb.losses.neg_elbo(torch.tensor(1.0), torch.tensor(1.0), 0)
    with pytest.raises(ValueError, match="activation"):
        lb.BayesianMLP(1, 1, activation="sigmoidish")
    with pytest.raises(TypeError, match="moments"):
        lb.predict(torch.nn.Linear(1, 1), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="dropout probability"):
        lb.MCDropoutMLP(1, 1, p=1.0)
    with pytest.raises(TypeError, match="real-valued"):
        lb.as_tensor(torch.tensor([True]), "mask")


def test_heteroskedastic_toy_rejects_bad_n() -> None:
    from lhcbnn.data.regression import HeteroskedasticToy

    for n in (0, -3):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            HeteroskedasticToy().sample(n)
    with pytest.raises(TypeError, match="n must be an integer"):
        HeteroskedasticToy().sample(2.5)
