r"""Inputs and labels for regressing the top quark's pT from a top jet (book chapter 5).

Following Kasieczka, Luchmann, Otterpohl and Plehn (arXiv:2003.11099), a network sees the
jet's constituents and predicts the pT of the top quark the jet came from. Per jet, the
inputs are, for the ``n_constituents`` hardest constituents (zero-padded),

* the pT fraction :math:`p_{T,i}/p_{T,\mathrm{jet}}`,
* :math:`\Delta\eta_i = \eta_i - \eta_\mathrm{jet}` and
  :math:`\Delta\phi_i = \phi_i - \phi_\mathrm{jet}`,

followed by the jet's pT [GeV], mass [GeV] and multiplicity. The label is the relative
correction

.. math:: r = \frac{p_{T,t}}{p_{T,\mathrm{jet}}} - 1,

so that the naive estimate :math:`p_{T,t}=p_{T,\mathrm{jet}}` is :math:`r=0` and the network
learns what the jet misses (radiation outside the cone, b-quark neutrinos) or picks up
(initial-state radiation, the underlying event). Standardise both with :class:`Standardizer`
fitted on the training jets only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lhcbnn.data.jets import JetSample

__all__ = ["TopPtData", "Standardizer", "top_pt_data", "split_indices"]


@dataclass(frozen=True)
class TopPtData:
    """Regression inputs and labels of ``n`` top jets.

    Attributes:
        x: ``(n, 3 n_constituents + 3)`` float64 inputs (raw, not standardised).
        r: ``(n,)`` labels :math:`p_{T,t}/p_{T,\\mathrm{jet}} - 1`.
        jet_pt: ``(n,)`` jet pT in GeV.
        top_pt: ``(n,)`` top-quark pT in GeV.
    """

    x: np.ndarray
    r: np.ndarray
    jet_pt: np.ndarray
    top_pt: np.ndarray

    def __len__(self) -> int:
        return int(self.r.shape[0])

    def subset(self, index: np.ndarray) -> TopPtData:
        """The jets at ``index`` (integer or boolean array)."""
        return TopPtData(self.x[index], self.r[index], self.jet_pt[index], self.top_pt[index])

    def top_pt_from(self, r: np.ndarray) -> np.ndarray:
        """Top pT [GeV] from a predicted label: :math:`p_{T,\\mathrm{jet}}(1+r)`."""
        r = np.asarray(r, dtype=np.float64).reshape(-1)
        if r.shape != self.jet_pt.shape:
            raise ValueError(f"r has {r.size} entries, the jets {self.jet_pt.size}")
        return self.jet_pt * (1.0 + r)


def top_pt_data(sample: JetSample, n_constituents: int = 50) -> TopPtData:
    """Inputs and labels of the top jets of ``sample`` (QCD jets are dropped).

    Raises:
        ValueError: ``n_constituents`` is not between 1 and the sample's constituent slots,
            or the sample has no top jets.
    """
    slots = sample.constituents.shape[1]
    if isinstance(n_constituents, bool) or not isinstance(n_constituents, int):
        raise ValueError(f"n_constituents must be an integer, got {n_constituents!r}")
    if not 1 <= n_constituents <= slots:
        raise ValueError(f"n_constituents must lie in [1, {slots}], got {n_constituents}")
    tops = sample.subset(np.flatnonzero(sample.is_top))
    if len(tops) == 0:
        raise ValueError("the sample has no top jets")
    jet_pt = tops.jet_pt
    constituents = tops.constituents[:, :n_constituents].astype(np.float64)
    x = np.concatenate(
        [
            constituents[:, :, 0] / jet_pt[:, None],
            constituents[:, :, 1],
            constituents[:, :, 2],
            jet_pt[:, None],
            tops.jet_mass[:, None],
            tops.n_constituents[:, None].astype(np.float64),
        ],
        axis=1,
    )
    return TopPtData(x=x, r=tops.top_pt / jet_pt - 1.0, jet_pt=jet_pt, top_pt=tops.top_pt)


def split_indices(n: int, sizes: tuple[int, ...], seed: int) -> tuple[np.ndarray, ...]:
    """Disjoint random index sets of the given sizes out of ``range(n)``."""
    if sum(sizes) > n or any(size < 1 for size in sizes):
        raise ValueError(f"cannot draw disjoint sets of sizes {sizes} from {n} points")
    order = np.random.default_rng(seed).permutation(n)
    edges = np.cumsum((0, *sizes))
    return tuple(order[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True))


class Standardizer:
    """Per-column shift and scale to zero mean and unit width, fitted on training data.

    Constant columns (for instance always-empty constituent slots) keep scale 1.
    """

    def __init__(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim not in (1, 2) or values.shape[0] < 2:
            raise ValueError(f"need at least two rows to standardise, got shape {values.shape}")
        if not np.all(np.isfinite(values)):
            raise ValueError("values contain NaN or infinite entries")
        self.mean = values.mean(0)
        scale = values.std(0)
        self.scale = np.where(scale > 0, scale, 1.0)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Standardised values, float32 (the networks' dtype)."""
        return ((np.asarray(values, dtype=np.float64) - self.mean) / self.scale).astype(np.float32)

    def invert(self, values: object, width: bool = False) -> np.ndarray:
        """Back to the original units; ``width=True`` for a standard deviation (scale only)."""
        values = np.asarray(values, dtype=np.float64)
        return values * self.scale if width else values * self.scale + self.mean
