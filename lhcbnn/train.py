"""One training loop for every model of the book: BNNs, MC dropout and ensembles."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from lhcbnn._validate import positive_integer, positive_number
from lhcbnn.device import as_tensor, forked_rng
from lhcbnn.early_stopping import EarlyStopping
from lhcbnn.layers import kl_divergence, map_mode
from lhcbnn.losses import neg_elbo

__all__ = ["History", "train"]

NLLFunction = Callable[[Tensor, Tensor], Tensor]


@dataclass
class History:
    """Per-epoch record of a training run.

    Attributes:
        loss: mean of the per-batch loss (mean NLL + KL / n_train) over each epoch.
        nll: mean per-point NLL over each epoch.
        kl: summed KL of all Bayesian layers at the end of each epoch (0 without any).
        val_nll: mean per-point NLL on the validation set with the posterior-mean
            weights (empty without validation data).
        seconds: wall time since the start of training at the end of each epoch.
    """

    loss: list[float] = field(default_factory=list)
    nll: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    val_nll: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    """With ``patience``: index (from 0) of the epoch whose weights were restored."""


def _prepare(model: nn.Module, x: object, y: object, name: str) -> tuple[Tensor, Tensor]:
    """``x`` and ``y`` as tensors on the device and in the dtype of the model's parameters."""
    parameter = next(model.parameters(), None)
    if parameter is None:
        raise ValueError(f"{type(model).__name__} has no parameters to train")
    x_tensor = as_tensor(x, f"x{name}", dtype=parameter.dtype, device=parameter.device)
    y_tensor = as_tensor(y, f"y{name}", dtype=parameter.dtype, device=parameter.device)
    if x_tensor.dim() == 1:
        x_tensor = x_tensor[:, None]
    if y_tensor.dim() == 1:
        y_tensor = y_tensor[:, None]
    if x_tensor.shape[0] != y_tensor.shape[0]:
        raise ValueError(
            f"x{name} has {x_tensor.shape[0]} points but y{name} has {y_tensor.shape[0]}"
        )
    if x_tensor.shape[0] == 0:
        raise ValueError(f"x{name} is empty")
    return x_tensor, y_tensor


def train(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    n_epochs: int = 100,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
    nll: NLLFunction | None = None,
    x_val: Tensor | None = None,
    y_val: Tensor | None = None,
    lr_schedule: str = "constant",
    weight_decay: float = 0.0,
    validation: tuple[Tensor, Tensor] | None = None,
    patience: int | None = None,
) -> History:
    r"""Train ``model`` with Adam on the per-point negative ELBO.

    Every mini-batch step minimises

    .. math::
        \frac1B\sum_{i\in\text{batch}} -\log p(t_i\mid x_i,\theta)
        + \frac{D_\mathrm{KL}[q(\theta),p(\theta)]}{N_\text{train}},

    an unbiased estimate of the negative ELBO divided by :math:`N_\text{train}`
    (arXiv:1505.05424; chapter 2). For a model without Bayesian layers the KL is zero and
    this is ordinary maximum likelihood.

    The model trains where it is: the data go to the device and dtype of its parameters
    (move the model first, ``model.to(lb.device())``, to train on a GPU). All randomness
    of the run (shuffling and the sampling of the layers) comes from ``seed``, in a forked
    random state: the caller's Python, NumPy and torch generators are left as they were.

    Args:
        model: the network, trained in place on its own device.
        x: inputs ``(n_train, n_in)``.
        y: labels ``(n_train, n_out)`` or ``(n_train,)``.
        n_epochs: passes over the training set.
        batch_size: points per step; the last, smaller batch of an epoch is kept.
        lr: Adam learning rate.
        seed: seeds the shuffling and all sampling, so runs repeat exactly.
        progress: show a tqdm progress bar over epochs.
        nll: per-point NLL ``nll(output, target) -> (batch,)``; default ``model.nll``.
        x_val, y_val: optional validation data, scored every epoch.
        lr_schedule: ``constant`` or ``cosine`` (cosine decay to zero over the run).
        weight_decay: Adam's L2 term (0 for a BNN: its prior is in the KL).
        validation: ``(x_val, y_val)``, the same as passing ``x_val`` and ``y_val``.
        patience: early stopping: stop after ``patience`` epochs without a new minimum of
            the validation NLL and restore the weights of the minimum (needs validation
            data; :class:`~lhcbnn.early_stopping.EarlyStopping`, book chapter 5).

    Returns:
        :class:`History` of the run; the model is trained in place.
    """
    n_epochs = positive_integer(n_epochs, "n_epochs")
    batch_size = positive_integer(batch_size, "batch_size")
    lr = positive_number(lr, "lr")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}")
    if nll is None:
        if not hasattr(model, "nll"):
            raise TypeError(f"{type(model).__name__} has no nll() method: pass nll=...")
        nll = model.nll
    if (x_val is None) != (y_val is None):
        raise ValueError("give both x_val and y_val, or neither")
    # --- early stopping (book chapter 5): validation=(x_val, y_val), patience ---
    if validation is not None:
        if x_val is not None:
            raise ValueError("give validation=(x_val, y_val) or x_val and y_val, not both")
        if not (isinstance(validation, tuple | list) and len(validation) == 2):
            raise ValueError("validation must be a pair (x_val, y_val)")
        x_val, y_val = validation
    stopper = EarlyStopping(patience) if patience is not None else None
    if stopper is not None and x_val is None:
        raise ValueError("patience needs validation data: validation=(x_val, y_val)")
    # --- end early stopping ---

    x_train, y_train = _prepare(model, x, y, "")
    validation = _prepare(model, x_val, y_val, "_val") if x_val is not None else None
    n_train = x_train.shape[0]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(n_train / batch_size)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, n_epochs * steps_per_epoch)
        if lr_schedule == "cosine"
        else None
    )
    with forked_rng(x_train.device):
        torch.manual_seed(int(seed))
        generator = torch.Generator().manual_seed(int(seed))
        history = History()
        start = time.perf_counter()
        model.train()
        bar = tqdm(range(n_epochs), disable=not progress, desc="training", unit="epoch")
        for epoch in bar:
            order = torch.randperm(n_train, generator=generator).to(x_train.device)
            loss_sum = nll_sum = 0.0
            for first in range(0, n_train, batch_size):
                index = order[first : first + batch_size]
                output = model(x_train[index])
                nll_mean = nll(output, y_train[index]).mean()
                loss = neg_elbo(nll_mean, kl_divergence(model), n_train)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        "the training loss became NaN or infinite; lower the learning rate "
                        "or check the inputs' scale"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                loss_sum += loss.item() * index.numel()
                nll_sum += nll_mean.item() * index.numel()
            history.loss.append(loss_sum / n_train)
            history.nll.append(nll_sum / n_train)
            with torch.no_grad():
                history.kl.append(float(kl_divergence(model)))
                if validation is not None:
                    model.eval()
                    with map_mode(model):
                        val_nll = nll(model(validation[0]), validation[1]).mean()
                    history.val_nll.append(float(val_nll))
                    model.train()
            history.seconds.append(time.perf_counter() - start)
            bar.set_postfix(loss=f"{history.loss[-1]:.4g}")
            if stopper is not None and stopper.update(epoch, history.val_nll[-1], model):
                break
    if stopper is not None:  # early stopping: back to the weights of the best epoch
        stopper.restore(model)
        history.best_epoch = stopper.best_epoch
    model.eval()
    return history
