r"""Classifier weights: how a discriminator turns into a density ratio.

A classifier :math:`D(x)` trained with the cross-entropy to separate data (label 1) from
generated events (label 0), with equal class sizes, approaches
:math:`D = p_\mathrm{data}/(p_\mathrm{data}+p_\mathrm{model})`, so

.. math:: w(x) = \frac{D(x)}{1-D(x)} = \frac{p_\mathrm{data}(x)}{p_\mathrm{model}(x)}

(Das et al., "How to understand limitations of generative networks", arXiv:2305.16774;
chapter 9 of the book). The convention is fixed here once: data are label 1, so :math:`w > 1`
where the generator has too few events. The inverse, :math:`(1-D)/D`, is the ratio
:math:`p_\mathrm{model}/p_\mathrm{data}`.

Pieces: :func:`classifier_weights` (D to w, safe at 0 and 1), :func:`train_discriminator`
(a small deterministic MLP trained on the cross-entropy, returning a :class:`Discriminator`),
and :func:`weighted_histogram` (per-bin sum of weights with its error
:math:`\sqrt{\sum w^2}`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from lhcbnn._validate import positive_integer, positive_number
from lhcbnn.device import as_tensor, forked_rng

__all__ = [
    "Discriminator",
    "WeightedHistogram",
    "classifier_weights",
    "train_discriminator",
    "weighted_histogram",
]


def classifier_weights(d: Tensor | np.ndarray, eps: float = 1e-6) -> Tensor | np.ndarray:
    r"""Weights :math:`w = D/(1-D)`, elementwise, same type and shape as ``d``.

    ``d`` is clipped to :math:`[\epsilon, 1-\epsilon]` first, so that :math:`D = 0` gives
    :math:`w\approx\epsilon` and :math:`D = 1` gives :math:`w\approx 1/\epsilon` instead of
    0 and infinity. The :math:`\epsilon` used is the larger of ``eps`` and the machine
    epsilon of the dtype of ``d``, so that :math:`1-\epsilon` differs from 1 in every
    floating dtype (float16: :math:`w \le 1023`; bfloat16: :math:`w \le 127`).

    Raises:
        ValueError: an entry of ``d`` is NaN or outside [0, 1], or ``eps`` not in (0, 0.5).
    """
    if not 0.0 < eps < 0.5:
        raise ValueError(f"eps must lie in (0, 0.5), got {eps}")
    if isinstance(d, Tensor):
        invalid = torch.isnan(d) | (d < 0) | (d > 1)
        if invalid.any():
            raise ValueError(
                "classifier outputs d must be probabilities in [0, 1] (found NaN or outside)"
            )
        if not d.is_floating_point():
            d = d.to(torch.get_default_dtype())
        eps = max(eps, torch.finfo(d.dtype).eps)
        clipped = d.clamp(eps, 1.0 - eps)
        return clipped / (1.0 - clipped)
    array = np.asarray(d, dtype=float)
    if np.isnan(array).any() or (array < 0).any() or (array > 1).any():
        raise ValueError(
            "classifier outputs d must be probabilities in [0, 1] (found NaN or outside)"
        )
    eps = max(eps, float(np.finfo(array.dtype).eps))
    clipped = np.clip(array, eps, 1.0 - eps)
    return clipped / (1.0 - clipped)


class Discriminator(nn.Module):
    r"""A classifier :math:`D(x)` of data (label 1) against generated events (label 0).

    A deterministic MLP on standardised inputs, :math:`(x - \mu)/\sigma` with the mean and width
    of the training events of both classes; its output is the logit
    :math:`\ell(x) = \log[D/(1-D)]`, so that :math:`\log w = \ell` directly.
    """

    def __init__(self, dim: int, hidden: tuple[int, ...], shift: Tensor, scale: Tensor) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.SiLU()]
            width = size
        layers.append(nn.Linear(width, 1))
        self.network = nn.Sequential(*layers)
        self.register_buffer("shift", shift.reshape(1, dim))
        self.register_buffer("scale", scale.reshape(1, dim))

    def forward(self, x: Tensor) -> Tensor:
        """The logit :math:`\\ell(x)`, ``(n,)``, for events ``x`` ``(n, dim)``."""
        return self.network((x - self.shift) / self.scale)[:, 0]

    def _inputs(self, x: object) -> Tensor:
        buffer = self.shift
        x = as_tensor(x, "x", dtype=buffer.dtype, device=buffer.device)
        if x.dim() != 2 or x.shape[1] != buffer.shape[1]:
            raise ValueError(f"x must have shape (n, {buffer.shape[1]}), got {tuple(x.shape)}")
        return x

    @torch.no_grad()
    def proba(self, x: object) -> np.ndarray:
        """:math:`D(x)` in [0, 1] for events ``x`` ``(n, dim)``, as a float64 array ``(n,)``."""
        return torch.sigmoid(self(self._inputs(x))).double().cpu().numpy()

    @torch.no_grad()
    def log_weights(self, x: object) -> np.ndarray:
        r""":math:`\log w = \log[D/(1-D)] = \ell(x)`, unclipped, float64 ``(n,)``."""
        return self(self._inputs(x)).double().cpu().numpy()

    def weights(self, x: object, eps: float = 1e-6) -> np.ndarray:
        r""":math:`w = D/(1-D)` with :math:`D` clipped to :math:`[\epsilon, 1-\epsilon]`
        (:func:`classifier_weights`), float64 ``(n,)``."""
        return classifier_weights(self.proba(x), eps)


def train_discriminator(
    x_data: object,
    x_model: object,
    *,
    hidden: tuple[int, ...] = (64, 64),
    n_steps: int = 2000,
    batch_size: int = 1024,
    lr: float = 3e-3,
    weight_decay: float = 0.0,
    seed: int = 0,
) -> Discriminator:
    r"""Train :math:`D` on the binary cross-entropy, data label 1, generated events label 0.

    Every step draws ``batch_size // 2`` events of each class (the classes enter with equal
    weight whatever their sizes), so the minimiser of the loss is
    :math:`D = p_\mathrm{data}/(p_\mathrm{data}+p_\mathrm{model})` and
    :math:`D/(1-D) = p_\mathrm{data}/p_\mathrm{model}`. Adam with a cosine-decaying learning
    rate, for a fixed number of steps (deterministic for a seed on one machine; the caller's
    random state is left as it was). The network lives on the device of ``x_data`` if it is a
    tensor, else on :func:`lhcbnn.device`.

    A deterministic network is used rather than the Bayesian classifier of chapter 7: the
    weights need :math:`D` itself to be calibrated, and the cross-entropy of a plain network
    trained on many events with equal classes gives that; a Bayesian classifier trained for a
    few hundred steps is over-confident (chapter 7).

    Args:
        x_data: data (truth) events ``(n_data, dim)``.
        x_model: generated events ``(n_model, dim)``.

    Raises:
        ValueError: shapes do not match, inputs are not finite, or a size is not positive.
    """
    n_steps = positive_integer(n_steps, "n_steps")
    batch_size = positive_integer(batch_size, "batch_size")
    if batch_size < 2:
        raise ValueError(
            f"batch_size must be at least 2 (one event of each class), got {batch_size}"
        )
    lr = positive_number(lr, "lr")
    where = x_data.device if isinstance(x_data, Tensor) else None
    data = as_tensor(x_data, "x_data", dtype=torch.float32, device=where)
    model = as_tensor(x_model, "x_model", dtype=torch.float32, device=data.device)
    if data.dim() != 2 or model.dim() != 2 or data.shape[1] != model.shape[1]:
        raise ValueError(
            f"x_data {tuple(data.shape)} and x_model {tuple(model.shape)} must be (n, dim) "
            "with the same dim"
        )
    if data.shape[0] == 0 or model.shape[0] == 0:
        raise ValueError("both classes need at least one event")
    both = torch.cat([data, model])
    shift, scale = both.mean(0), both.std(0).clamp_min(1e-12)
    half = batch_size // 2
    with forked_rng(data.device):
        torch.manual_seed(seed)
        network = Discriminator(data.shape[1], tuple(hidden), shift, scale).to(data.device)
        optimiser = torch.optim.Adam(network.parameters(), lr=lr, weight_decay=weight_decay)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, n_steps)
        generator = torch.Generator(device=data.device).manual_seed(seed)
        labels = torch.cat([torch.ones(half), torch.zeros(half)]).to(data.device)
        network.train()
        for _ in range(n_steps):
            pick_data = torch.randint(
                data.shape[0], (half,), generator=generator, device=data.device
            )
            pick_model = torch.randint(
                model.shape[0], (half,), generator=generator, device=data.device
            )
            logits = network(torch.cat([data[pick_data], model[pick_model]]))
            loss = nn.functional.binary_cross_entropy_with_logits(logits, labels)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
    if not math.isfinite(float(loss.detach())):
        raise FloatingPointError("the discriminator's loss became NaN or infinite; lower lr")
    return network.eval()


class WeightedHistogram(NamedTuple):
    r"""A histogram of weighted events: per bin :math:`\sum_i w_i` and its statistical error
    :math:`\sqrt{\sum_i w_i^2}`, each ``(n_bins,)``, and the ``edges`` ``(n_bins + 1,)``."""

    counts: np.ndarray
    errors: np.ndarray
    edges: np.ndarray


def weighted_histogram(
    x: object, weights: object | None = None, bins: object = 20
) -> WeightedHistogram:
    r"""Histogram of ``x`` with per-event ``weights``: counts :math:`\sum_{i\in b} w_i` and
    errors :math:`\sqrt{\sum_{i\in b} w_i^2}` per bin (Poisson errors of weighted events; for
    unit weights :math:`\sqrt{N_b}`).

    Args:
        x: values ``(n,)``.
        weights: ``(n,)``, finite and non-negative; default all 1.
        bins: number of bins or the edges (``numpy.histogram`` convention).

    Raises:
        ValueError: shapes differ, or a value or weight is NaN, infinite or a weight negative.
    """
    values = np.asarray(x.detach().cpu() if isinstance(x, Tensor) else x, dtype=np.float64)
    values = values.reshape(-1)
    if weights is None:
        w = np.ones_like(values)
    else:
        w = np.asarray(
            weights.detach().cpu() if isinstance(weights, Tensor) else weights, dtype=np.float64
        ).reshape(-1)
    if w.shape != values.shape:
        raise ValueError(f"{values.size} values but {w.size} weights")
    if not np.all(np.isfinite(values)):
        raise ValueError("x contains NaN or infinite values")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and non-negative")
    counts, edges = np.histogram(values, bins=bins, weights=w)
    squares, _ = np.histogram(values, bins=edges, weights=w**2)
    return WeightedHistogram(counts, np.sqrt(squares), edges)
