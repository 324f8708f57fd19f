r"""One-dimensional heteroskedastic regression toy with known mean and noise.

.. math::
    t = f(x) + \sigma(x)\,\epsilon,\quad \epsilon\sim\mathcal N(0,1),\quad
    f(x) = \sin 2x + \tfrac14 x^2,\quad \sigma(x) = 0.2 + 0.1\,\sin\tfrac{3x}{2},

with :math:`x` uniform on the training range :math:`[-2, 2]`. The noise varies by a
factor three and is not monotonic, so a network must learn it; both functions extend
smoothly outside the training range, where the model uncertainty must grow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lhcbnn._validate import positive_integer

__all__ = ["HeteroskedasticToy"]


def _backend(x: object) -> object:
    return torch if isinstance(x, torch.Tensor) else np


@dataclass(frozen=True)
class HeteroskedasticToy:
    """The regression toy of chapter 4 and the benchmarks.

    Attributes:
        train_range: the interval ``(low, high)`` the training inputs are drawn from.
    """

    train_range: tuple[float, float] = (-2.0, 2.0)

    def f(self, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        r"""True mean :math:`f(x) = \sin 2x + x^2/4`, same shape as ``x``."""
        xp = _backend(x)
        return xp.sin(2.0 * x) + 0.25 * x**2

    def sigma(self, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        r"""True noise :math:`\sigma(x) = 0.2 + 0.1\sin(3x/2)`, same shape as ``x``."""
        xp = _backend(x)
        return 0.2 + 0.1 * xp.sin(1.5 * x)

    def sample(
        self, n: int, seed: int = 0, x_range: tuple[float, float] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` points with ``x`` uniform on ``x_range`` (default: the training range).

        Returns:
            ``(x, y)``, each ``(n, 1)`` float64.

        Raises:
            ValueError: ``n`` is not a positive integer or the range is empty.
        """
        n = positive_integer(n, "n")
        low, high = self.train_range if x_range is None else x_range
        if not (np.isfinite(low) and np.isfinite(high) and high > low):
            raise ValueError(f"x_range must be a finite interval (low, high), got {x_range!r}")
        rng = np.random.default_rng(seed)
        x = rng.uniform(low, high, size=(int(n), 1))
        y = self.f(x) + self.sigma(x) * rng.standard_normal((int(n), 1))
        return x, y
