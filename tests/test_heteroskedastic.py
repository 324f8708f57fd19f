"""A heteroskedastic BNN recovers the known noise sigma(x) of the regression toy."""

import numpy as np
import pytest
import torch

import lhcbnn as lb
from lhcbnn.data.regression import HeteroskedasticToy


@pytest.fixture
def one_thread():
    """Small MLPs train fastest on one thread; two threads on a busy machine thrash."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_learned_sigma_stoch_recovers_true_noise() -> None:
    toy = HeteroskedasticToy()
    # 50k points: with far fewer, the KL of ~4,400 weights dominates the per-point loss
    # (KL/N ~ 0.7 nat at 20k) and the weight noise inflates sigma_stoch by 5-10%.
    x, y = toy.sample(50_000, seed=0)
    lb.seed_everything(0)
    model = lb.BayesianMLP(1, 1, hidden=(64, 64), heteroskedastic=True)
    lb.train(
        model,
        x,
        y,
        n_epochs=30,
        batch_size=1024,
        lr=5e-3,
        lr_schedule="cosine",
        progress=False,
        seed=0,
    )
    low, high = toy.train_range
    grid = np.linspace(low, high, 101)[:, None]
    torch.manual_seed(0)
    prediction = lb.predict(model, grid, n_samples=50)
    sigma_stoch = prediction.sigma_stoch.cpu().numpy()
    relative_error = np.abs(sigma_stoch / toy.sigma(grid) - 1)
    assert relative_error.max() < 0.10, f"max relative error {relative_error.max():.3f}"
    # The mean is learned too, and the model uncertainty is small inside the range.
    assert np.abs(prediction.mean.cpu().numpy() - toy.f(grid)).max() < 0.1
    assert float(prediction.sigma_pred.mean()) < 0.5 * float(prediction.sigma_stoch.mean())
