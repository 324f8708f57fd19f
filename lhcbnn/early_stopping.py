r"""Early stopping on a validation NLL, with the best weights restored.

A heteroskedastic network trained on a few thousand points first learns the mean, then
starts to shrink its learned width on the training points it has memorised: the training
NLL keeps falling, the NLL of held-out points turns up, and the held-out pulls grow far
beyond unit width (book chapter 5, top-jet regression on about 5k jets). Watching the
validation NLL and keeping the weights of its minimum is the standard remedy (Prechelt,
"Early Stopping - But When?", 1998); :func:`lhcbnn.train` uses this class when given
``patience``.
"""

from __future__ import annotations

import copy
import math

from torch import nn

__all__ = ["EarlyStopping"]


class EarlyStopping:
    """Remembers the weights with the lowest validation NLL and says when to stop.

    Args:
        patience: stop after this many epochs without a new minimum.
        min_delta: an epoch counts as an improvement only if it lowers the best NLL by more
            than this (in nats per point).

    Attributes:
        best_epoch: index (from 0) of the epoch with the lowest validation NLL so far.
        best_nll: that NLL.
    """

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be a positive integer, got {patience!r}")
        if not (math.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        self.patience = patience
        self.min_delta = float(min_delta)
        self.best_epoch: int | None = None
        self.best_nll = math.inf
        self._best_state: dict | None = None

    def update(self, epoch: int, val_nll: float, model: nn.Module) -> bool:
        """Record epoch ``epoch``'s validation NLL; ``True`` when training should stop."""
        if not math.isfinite(val_nll):
            raise FloatingPointError(
                f"the validation NLL became {val_nll} in epoch {epoch}; lower the learning rate"
            )
        if val_nll < self.best_nll - self.min_delta:
            self.best_nll, self.best_epoch = float(val_nll), epoch
            self._best_state = copy.deepcopy(model.state_dict())
        return epoch - self.best_epoch >= self.patience

    def restore(self, model: nn.Module) -> None:
        """Load the remembered best weights into ``model`` (evaluation draws are made per call,
        so no draw of the last epoch survives)."""
        if self._best_state is None:
            raise RuntimeError("no epoch was recorded: nothing to restore")
        model.load_state_dict(self._best_state)
