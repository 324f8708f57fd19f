r"""Classifier weights: how a discriminator turns into a density ratio.

A classifier :math:`D(x)` trained with the cross-entropy to separate data (label 1) from
generated events (label 0), with equal class sizes, approaches
:math:`D = p_\mathrm{data}/(p_\mathrm{data}+p_\mathrm{model})`, so

.. math:: w(x) = \frac{D(x)}{1-D(x)} = \frac{p_\mathrm{data}(x)}{p_\mathrm{model}(x)}

(Das et al., "How to understand limitations of generative networks", arXiv:2305.16774).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["classifier_weights"]


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
