"""predict(): the decomposition of the predictive variance and the baselines."""

import numpy as np
import pytest
import torch

import lhcbnn as lb
from lhcbnn.data.regression import HeteroskedasticToy


def _trained_bnn() -> tuple[lb.BayesianMLP, np.ndarray]:
    toy = HeteroskedasticToy()
    x, y = toy.sample(2000, seed=1)
    torch.manual_seed(0)
    model = lb.BayesianMLP(1, 1, hidden=(32, 32), heteroskedastic=True)
    lb.train(model, x, y, n_epochs=20, batch_size=128, lr=3e-3, progress=False)
    return model, x


def test_total_variance_is_stoch_plus_pred_per_point() -> None:
    model, x = _trained_bnn()
    prediction = lb.predict(model, x[:300], n_samples=40)
    for field in ("mean", "sigma_stoch", "sigma_pred", "sigma_tot"):
        assert getattr(prediction, field).shape == (300, 1)
    assert (prediction.sigma_pred > 0).all() and (prediction.sigma_stoch > 0).all()
    torch.testing.assert_close(
        prediction.sigma_tot**2,
        prediction.sigma_stoch**2 + prediction.sigma_pred**2,
        rtol=1e-5,
        atol=1e-7,
    )


def test_predict_matches_explicit_weight_draws() -> None:
    """sigma_pred is the population spread of the means of separate weight draws."""
    model, x = _trained_bnn()
    torch.manual_seed(7)
    prediction = lb.predict(model, x[:50], n_samples=30)
    torch.manual_seed(7)
    model.eval()
    means = []
    with torch.no_grad():
        for _ in range(30):
            lb.resample(model)
            means.append(model(torch.as_tensor(x[:50], dtype=torch.float32))[:, :1])
    means = torch.stack(means)
    torch.testing.assert_close(prediction.mean, means.mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        prediction.sigma_pred, means.std(0, unbiased=False), rtol=1e-4, atol=1e-6
    )


def test_model_without_variance_output_has_zero_sigma_stoch() -> None:
    model = lb.BayesianMLP(2, 3)
    prediction = lb.predict(model, torch.randn(10, 2), n_samples=5)
    assert prediction.mean.shape == (10, 3)
    assert torch.count_nonzero(prediction.sigma_stoch) == 0
    torch.testing.assert_close(prediction.sigma_tot, prediction.sigma_pred)


def test_map_mode_prediction_has_no_spread() -> None:
    model = lb.BayesianMLP(2, 1)
    with lb.map_mode(model):
        prediction = lb.predict(model, torch.randn(10, 2), n_samples=5)
    assert float(prediction.sigma_pred.max()) == 0.0


def test_pulls_of_known_gaussian_prediction() -> None:
    mean = torch.tensor([[1.0], [2.0]])
    sigma = torch.tensor([[0.5], [2.0]])
    prediction = lb.Prediction(mean, sigma, torch.zeros_like(sigma), sigma)
    torch.testing.assert_close(
        lb.pulls(prediction, torch.tensor([0.0, 3.0])), torch.tensor([[2.0], [-0.5]])
    )


@pytest.mark.parametrize("kind", ["dropout", "ensemble"])
def test_baselines_share_the_predict_interface(kind: str) -> None:
    toy = HeteroskedasticToy()
    x, y = toy.sample(1000, seed=2)
    if kind == "dropout":
        model = lb.MCDropoutMLP(1, 1, hidden=(32, 32), p=0.1, heteroskedastic=True)
    else:
        model = lb.DeepEnsemble.of_mlp(1, 1, n_members=3, hidden=(32, 32), heteroskedastic=True)
    history = lb.train(model, x, y, n_epochs=15, batch_size=100, lr=3e-3, progress=False)
    assert history.loss[-1] < history.loss[0]
    prediction = lb.predict(model, x[:20], n_samples=20)
    assert prediction.mean.shape == (20, 1)
    assert (prediction.sigma_pred > 0).all()
    torch.testing.assert_close(
        prediction.sigma_tot**2,
        prediction.sigma_stoch**2 + prediction.sigma_pred**2,
        rtol=1e-5,
        atol=1e-7,
    )
    with lb.map_mode(model):
        if kind == "dropout":
            assert float(lb.predict(model, x[:20], n_samples=5).sigma_pred.max()) == 0.0
