"""predict(): the decomposition of the predictive variance, the draws protocol, the baselines."""

import copy
import sys

import numpy as np
import pytest
import torch

import lhcbnn as lb
from lhcbnn.data.regression import HeteroskedasticToy


@pytest.fixture(scope="module")
def trained_bnn() -> tuple[lb.BayesianMLP, np.ndarray]:
    """One trained heteroskedastic BNN shared by the tests of this module (do not modify)."""
    toy = HeteroskedasticToy()
    x, y = toy.sample(2000, seed=1)
    torch.manual_seed(0)
    model = lb.BayesianMLP(1, 1, hidden=(32, 32), heteroskedastic=True)
    lb.train(model, x, y, n_epochs=20, batch_size=128, lr=3e-3, progress=False)
    return model, x


def test_total_variance_is_stoch_plus_pred_per_point(trained_bnn) -> None:
    model, x = trained_bnn
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


def test_predict_matches_explicit_weight_draws(trained_bnn) -> None:
    """sigma_pred is the population spread of the means of separate weight draws."""
    model, x = trained_bnn
    torch.manual_seed(7)
    prediction = lb.predict(model, x[:50], n_samples=30)
    torch.manual_seed(7)
    model.eval()
    means = []
    with torch.no_grad():
        for _ in range(30):
            with lb.fixed_draw(model):
                means.append(model(torch.as_tensor(x[:50], dtype=torch.float32))[:, :1])
    means = torch.stack(means)
    torch.testing.assert_close(prediction.mean, means.mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        prediction.sigma_pred, means.std(0, unbiased=False), rtol=1e-4, atol=1e-6
    )


def test_prediction_converts_to_numpy_in_one_call(trained_bnn) -> None:
    model, x = trained_bnn
    prediction = lb.predict(model, x[:10], n_samples=5)
    arrays = prediction.numpy()
    mean, sigma_stoch, sigma_pred, sigma_tot = arrays
    for name, array in zip(arrays._fields, arrays, strict=True):
        assert isinstance(array, np.ndarray) and array.shape == (10, 1)
        np.testing.assert_array_equal(array, getattr(prediction, name).numpy())
    np.testing.assert_array_equal(arrays.sigma_tot, sigma_tot)
    np.testing.assert_array_equal(lb.plotting.to_numpy(prediction.mean), mean[:, 0])


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


def test_inputs_follow_the_model_device_and_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    """predict and train use the model's device and dtype, never lb.device()'s."""
    elsewhere = torch.device("meta")  # a device no tensor of this test may go to
    # The modules, not the functions lb.device and lb.train of the same names.
    device_module, train_module = sys.modules["lhcbnn.device"], sys.modules["lhcbnn.train"]
    for module in (device_module, train_module):
        for name in ("device", "_package_device"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, lambda: elsewhere)
    assert device_module.device() == elsewhere  # the patch works
    torch.manual_seed(0)
    model = lb.BayesianMLP(1, 1, hidden=(4,), heteroskedastic=True).double()
    x = np.linspace(-1, 1, 16, dtype=np.float32)[:, None]
    lb.train(model, x, x**2, n_epochs=2, batch_size=8, progress=False)
    assert {(p.device.type, p.dtype) for p in model.parameters()} == {("cpu", torch.float64)}
    for inputs in (x, torch.as_tensor(x)):
        prediction = lb.predict(model, inputs, n_samples=3)
        assert prediction.mean.device.type == "cpu" and prediction.mean.dtype == torch.float64
        means, _ = lb.predictive_samples(model, inputs, n_samples=3)
        assert means.device.type == "cpu" and means.dtype == torch.float64


def test_ensemble_of_bayesian_members_keeps_the_spread_within_members() -> None:
    """n_samples draws per Bayesian member: two copies of one BNN predict like the BNN."""
    torch.manual_seed(3)
    member = lb.BayesianMLP(1, 1, hidden=(8,))
    with torch.no_grad():
        for layer in member.modules():
            if isinstance(layer, lb.VBLinear):
                layer.weight_log_var.fill_(-2.0)
    ensemble = lb.DeepEnsemble([member, copy.deepcopy(member)])
    x = torch.linspace(-1, 1, 7)[:, None]
    means, _ = lb.predictive_samples(ensemble, x, n_samples=600)
    assert means.shape == (1200, 7, 1)
    single = lb.predict(member, x, n_samples=1200).sigma_pred
    together = means.std(0, unbiased=False)
    torch.testing.assert_close(together, single, rtol=0.15, atol=0.0)  # ~5 standard errors
    deterministic = lb.DeepEnsemble.of_mlp(1, 1, n_members=3, hidden=(8,))
    assert lb.predictive_samples(deterministic, x, n_samples=50)[0].shape == (3, 7, 1)


def test_mc_dropout_draws_one_mask_per_call_for_the_batch() -> None:
    model = lb.MCDropoutMLP(1, 1, hidden=(64,), p=0.5).eval()
    x = torch.ones(5, 1)
    output = model(x)
    torch.testing.assert_close(output, output[:1].expand(5, 1))  # one network per call
    with lb.fixed_draw(model):
        torch.testing.assert_close(model(x), model(x))
    assert not torch.allclose(model(x), model(x))


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
