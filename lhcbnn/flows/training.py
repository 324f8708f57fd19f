r"""Training a flow by maximum likelihood, or a Bayesian INN on its ELBO (chapter 8).

Every step minimises, on a mini-batch :math:`B` of the training data,

.. math::
    \mathcal L = -\frac{1}{|B|}\sum_{x\in B}\log p_\theta(x)
    + \frac{D_\mathrm{KL}[q(\theta), p(\theta)]}{N_\text{train}},

the negative ELBO per event (the KL term is zero for a flow without Bayesian layers), with
Adam, a cosine learning-rate decay over the given number of steps and gradient-norm
clipping (arXiv:2104.04543 trains its Bayesian INN on this loss).

A conditional flow learns :math:`p_\theta(x\mid c)` on pairs :math:`(x_i, c_i)`. With event
weights :math:`w_i \ge 0` the likelihood term becomes the weighted NLL

.. math::
    -\frac{1}{|B|\,\bar w}\sum_{i\in B} w_i \log p_\theta(x_i\mid c_i),
    \qquad \bar w = \frac{1}{N}\sum_{i=1}^N w_i,

whose expectation over batches is :math:`-\sum_i w_i\log p_\theta(x_i\mid c_i)/\sum_i w_i`:
the maximum-likelihood fit to the reweighted sample (the augmented training of chapter 10).
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


def _condition(flow: nn.Module, condition: object, n: int, name: str) -> Tensor | None:
    """``condition`` as ``(n, n_condition)`` (checked by the flow), or None."""
    if condition is None and not getattr(flow, "n_condition", 0):
        return None
    try:
        return flow._condition(condition, n)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from error


def _event_weights(flow: nn.Module, weights: object, n: int, name: str) -> Tensor | None:
    """Event weights ``(n,)``: finite, >= 0, not all zero; or None."""
    if weights is None:
        return None
    reference = next(flow.parameters())
    w = torch.as_tensor(weights).to(device=reference.device, dtype=reference.dtype)
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {tuple(w.shape)}")
    if not torch.isfinite(w).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if (w < 0).any():
        raise ValueError(f"{name} must be >= 0; found negative weights")
    if not w.sum() > 0:
        raise ValueError(f"{name} are all zero")
    return w


def validation_nll(
    flow: nn.Module,
    x: Tensor,
    batch_size: int = 65536,
    *,
    condition: object = None,
    weights: object = None,
) -> float:
    r"""Mean NLL per event of ``x`` ``(n, dim)`` with the posterior means, no gradients.

    ``condition`` ``(n, n_condition)`` for a conditional flow; with ``weights`` ``(n,)`` the
    weighted mean :math:`-\sum_i w_i \log p(x_i\mid c_i) / \sum_i w_i`.
    """
    x = _data(flow, x, "x")
    n = x.shape[0]
    c = _condition(flow, condition, n, "condition")
    w = _event_weights(flow, weights, n, "weights")
    was_training = flow.training
    flow.eval()
    total = 0.0
    with torch.no_grad(), map_mode(flow):
        for first in range(0, n, batch_size):
            rows = slice(first, first + batch_size)
            log_p = flow.log_prob(x[rows], None if c is None else c[rows])
            total += float(-(log_p if w is None else w[rows] * log_p).sum())
    flow.train(was_training)
    return total / (n if w is None else float(w.sum()))


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
    condition: object = None,
    weights: object = None,
    condition_val: object = None,
    weights_val: object = None,
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
        condition: ``(n, n_condition)``, the condition of each event for a conditional flow
            (:math:`p(x\mid c)`, chapters 10 and 11).
        weights: ``(n,)`` event weights (finite, >= 0): the weighted NLL of the module
            docstring; the history's ``nll`` is then the weighted one.
        condition_val, weights_val: the same for ``x_val``.

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
    n_events = data.shape[0]
    condition_data = _condition(flow, condition, n_events, "condition")
    weight_data = _event_weights(flow, weights, n_events, "weights")
    mean_weight = None if weight_data is None else weight_data.mean()
    validation = _data(flow, x_val, "x_val") if x_val is not None else None
    if validation is not None:
        _condition(flow, condition_val, validation.shape[0], "condition_val")
        _event_weights(flow, weights_val, validation.shape[0], "weights_val")
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
            rows = order[position : position + batch_size]
            position += batch_size
            log_p = flow.log_prob(
                data[rows], None if condition_data is None else condition_data[rows]
            )
            if weight_data is None:
                nll = -log_p.mean()
            else:
                nll = -(weight_data[rows] * log_p).mean() / mean_weight
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
                    history.val_nll.append(
                        validation_nll(
                            flow, validation, condition=condition_val, weights=weights_val
                        )
                    )
                    flow.train()
                history.seconds.append(time.perf_counter() - start)
                loss_sum = nll_sum = 0.0
                n_summed = 0
    flow.eval()
    return history
