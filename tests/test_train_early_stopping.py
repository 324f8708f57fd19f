"""Early stopping in lb.train: stops after `patience` epochs, restores the best weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lhcbnn as lb
from lhcbnn.early_stopping import EarlyStopping


def _overfitting_problem() -> tuple[np.ndarray, ...]:
    """40 noisy points and a wide net: the validation NLL has a minimum, then rises."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (60, 1)).astype(np.float32)
    y = (np.sin(3 * x) + 0.3 * rng.standard_normal((60, 1))).astype(np.float32)
    return x[:40], y[:40], x[40:], y[40:]


def _val_nll(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad(), lb.map_mode(model):
        return float(model.nll(model(torch.as_tensor(x)), torch.as_tensor(y)).mean())


def test_stops_after_patience_and_restores_the_best_epoch() -> None:
    x, y, x_val, y_val = _overfitting_problem()
    torch.manual_seed(0)
    model = lb.DeterministicMLP(1, 1, hidden=(64, 64), heteroskedastic=True)
    history = lb.train(
        model, x, y, n_epochs=400, batch_size=40, lr=1e-2, seed=0, progress=False,
        validation=(x_val, y_val), patience=15,
    )  # fmt: skip
    n_run = len(history.val_nll)
    assert n_run < 400, "the validation NLL of an overfitting net must turn up"
    assert history.best_epoch == int(np.argmin(history.val_nll))
    assert n_run == history.best_epoch + 15 + 1
    assert min(history.val_nll) < history.val_nll[-1]
    # the model holds the weights of the best epoch, not of the last one
    assert _val_nll(model, x_val, y_val) == pytest.approx(min(history.val_nll), rel=1e-6)


def test_a_bayesian_model_restored_forgets_its_old_draw() -> None:
    x, y, x_val, y_val = _overfitting_problem()
    torch.manual_seed(1)
    model = lb.BayesianMLP(1, 1, hidden=(16,), heteroskedastic=True)
    history = lb.train(
        model, x, y, n_epochs=30, batch_size=20, lr=1e-2, seed=0, progress=False,
        validation=(x_val, y_val), patience=3,
    )  # fmt: skip
    assert history.best_epoch is not None
    assert _val_nll(model, x_val, y_val) == pytest.approx(min(history.val_nll), rel=1e-6)
    first = lb.predict(model, x_val, n_samples=5).mean
    assert torch.isfinite(first).all()


def test_without_patience_nothing_changes() -> None:
    x, y, x_val, y_val = _overfitting_problem()
    torch.manual_seed(0)
    model = lb.DeterministicMLP(1, 1, hidden=(8,), heteroskedastic=True)
    history = lb.train(model, x, y, n_epochs=5, seed=0, progress=False, x_val=x_val, y_val=y_val)
    assert len(history.val_nll) == 5 and history.best_epoch is None


def test_bad_arguments_are_named() -> None:
    x, y, x_val, y_val = _overfitting_problem()
    model = lb.DeterministicMLP(1, 1, hidden=(8,))
    with pytest.raises(ValueError, match="patience needs validation"):
        lb.train(model, x, y, n_epochs=2, progress=False, patience=3)
    with pytest.raises(ValueError, match="not both"):
        lb.train(model, x, y, n_epochs=2, progress=False, validation=(x_val, y_val), x_val=x_val,
                 y_val=y_val)  # fmt: skip
    with pytest.raises(ValueError, match="pair"):
        lb.train(model, x, y, n_epochs=2, progress=False, validation=(x_val,), patience=2)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="patience"):
            EarlyStopping(bad)
    stopper = EarlyStopping(2)
    with pytest.raises(FloatingPointError, match="validation NLL"):
        stopper.update(0, float("nan"), model)
    with pytest.raises(RuntimeError, match="nothing to restore"):
        EarlyStopping(2).restore(model)
