r"""Training a flow by maximum likelihood, or a Bayesian INN on its ELBO (chapter 8).

Every step minimises, on a mini-batch :math:`B` of the training data,

.. math::
    \mathcal L = -\frac{1}{|B|}\sum_{x\in B}\log p_\theta(x)
    + \frac{D_\mathrm{KL}[q(\theta), p(\theta)]}{N_\text{train}},

the negative ELBO per event (the KL term is zero for a flow without Bayesian layers), with
Adam, a cosine learning-rate decay over the given number of steps and gradient-norm
clipping (arXiv:2104.04543 trains its Bayesian INN on this loss).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from lhcbnn.device import forked_rng
from lhcbnn.layers import kl_divergence, map_mode
from lhcbnn.losses import neg_elbo

__all__ = ["FlowHistory", "train_flow"]


@dataclass
class FlowHistory:
    """Record of :func:`train_flow`, one entry per ``record_every`` steps.

    Attributes:
        step: the step count at each record.
        loss: mean training loss (NLL + KL / n_train) over the steps since the last record.
        nll: mean training NLL per event over the same steps.
        kl: summed KL of the Bayesian layers at the record (0 without any).
        val_nll: NLL per event of ``x_val`` (posterior means for a Bayesian INN), if given.
        seconds: wall time since the start at each record.
    """

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    nll: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    val_nll: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def _data(flow: nn.Module, x: object, name: str) -> Tensor:
    reference = next(flow.parameters())
    tensor = torch.as_tensor(x).to(device=reference.device, dtype=reference.dtype)
    flow.domain.check(tensor, name)
    return tensor


def validation_nll(flow: nn.Module, x: Tensor, batch_size: int = 65536) -> float:
    """Mean NLL per event of ``x`` ``(n, dim)`` with the posterior means, no gradients."""
    was_training = flow.training
    flow.eval()
    total = 0.0
    with torch.no_grad(), map_mode(flow):
        for first in range(0, x.shape[0], batch_size):
            total += float(-flow.log_prob(x[first : first + batch_size]).sum())
    flow.train(was_training)
    return total / x.shape[0]


def train_flow(
    flow: nn.Module,
    x: object,
    *,
    n_steps: int = 2000,
    batch_size: int = 1024,
    lr: float = 2e-3,
    seed: int = 0,
    n_train: int | None = None,
    max_grad_norm: float = 5.0,
    lr_schedule: str = "cosine",
    x_val: object | None = None,
    record_every: int = 100,
) -> FlowHistory:
    r"""Train ``flow`` (an :class:`~lhcbnn.flows.INN`) on events ``x`` for ``n_steps`` steps.

    Args:
        flow: the flow; trained in place on the device of its parameters.
        x: training events ``(n, dim)`` (array or tensor).
        n_steps: optimiser steps (mini-batches drawn epoch by epoch without replacement).
        batch_size: events per step.
        lr: Adam's initial learning rate.
        seed: seeds the batch order and the weight noise; the global random state is left
            as it was (the run is local), so a seed gives the same run on one machine.
        n_train: the :math:`N_\text{train}` dividing the KL; default ``len(x)``.
        max_grad_norm: gradients are clipped to this total norm.
        lr_schedule: ``"cosine"`` (decay to zero over ``n_steps``) or ``"constant"``.
        x_val: optional held-out events, scored at every record.
        record_every: steps between records of the history.

    Returns:
        :class:`FlowHistory`; the flow is left in evaluation mode.

    Raises:
        FloatingPointError: the loss became NaN or infinite.
    """
    for name, value in (
        ("n_steps", n_steps),
        ("batch_size", batch_size),
        ("record_every", record_every),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be positive, got {lr}")
    if lr_schedule not in ("cosine", "constant"):
        raise ValueError(f"lr_schedule must be 'cosine' or 'constant', got {lr_schedule!r}")
    data = _data(flow, x, "x")
    validation = _data(flow, x_val, "x_val") if x_val is not None else None
    n_events = data.shape[0]
    if n_train is None:
        n_train = n_events
    if isinstance(n_train, bool) or not isinstance(n_train, int) or n_train < 1:
        raise ValueError(f"n_train must be a positive integer, got {n_train!r}")
    batch_size = min(batch_size, n_events)
    optimizer = torch.optim.Adam(flow.parameters(), lr=lr)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, n_steps)
        if lr_schedule == "cosine"
        else None
    )
    history = FlowHistory()
    start = time.perf_counter()
    with forked_rng(data.device):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(n_events, generator=generator).to(data.device)
        position = 0
        loss_sum = nll_sum = 0.0
        n_summed = 0
        flow.train()
        for step in range(1, n_steps + 1):
            if position + batch_size > n_events:
                order = torch.randperm(n_events, generator=generator).to(data.device)
                position = 0
            batch = data[order[position : position + batch_size]]
            position += batch_size
            nll = -flow.log_prob(batch).mean()
            loss = neg_elbo(nll, kl_divergence(flow), n_train)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"the flow's training loss became {float(loss)} at step {step}; lower lr "
                    "or max_grad_norm, or train longer on more events"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(flow.parameters(), max_grad_norm)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            loss_sum += loss.item()
            nll_sum += nll.item()
            n_summed += 1
            if step % record_every == 0 or step == n_steps:
                history.step.append(step)
                history.loss.append(loss_sum / n_summed)
                history.nll.append(nll_sum / n_summed)
                with torch.no_grad():
                    history.kl.append(float(kl_divergence(flow)))
                if validation is not None:
                    history.val_nll.append(validation_nll(flow, validation))
                    flow.train()
                history.seconds.append(time.perf_counter() - start)
                loss_sum = nll_sum = 0.0
                n_summed = 0
    flow.eval()
    return history
