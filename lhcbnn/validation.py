r"""sigma_pred against its frequentist truth: networks trained on independent data.

The model uncertainty :math:`\sigma_\mathrm{pred}(x)` of a Bayesian network claims how much
its prediction would move had it been trained on another sample of the same size. That claim
can be tested directly: draw :math:`K` independent training sets, train one network on each
with the same protocol, and compare each network's :math:`\sigma_\mathrm{pred}` with the
actual spread of the :math:`K` predicted means, and each mean's error against the true
function with the claimed width (coverage). Chapters 3-5 and 8 of the book use this one
function for every method that reports a :math:`\sigma_\mathrm{pred}` (Bayesian networks,
MC dropout, ensembles, Bayesian flows).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lhcbnn._validate import finite_array

__all__ = ["IndependentTrainings", "independent_trainings", "log_log_fit"]


def _array(values: Any, name: str) -> np.ndarray:
    return finite_array(values, name, flatten=True)


@dataclass(frozen=True)
class IndependentTrainings:
    r"""Predictions of :math:`K` networks trained on independent data, at fixed points.

    Attributes:
        means: predicted means :math:`m_k(x_i)`, shape ``(K, n_points)``.
        sigma_pred: each network's claimed :math:`\sigma_{\mathrm{pred},k}(x_i)`,
            shape ``(K, n_points)``.
        truth: the true function :math:`f(x_i)`, shape ``(n_points,)``, or ``None``.
    """

    means: np.ndarray
    sigma_pred: np.ndarray
    truth: np.ndarray | None = None

    @property
    def n_trainings(self) -> int:
        return self.means.shape[0]

    @property
    def spread(self) -> np.ndarray:
        r"""The frequentist truth of :math:`\sigma_\mathrm{pred}`: the standard deviation of
        the :math:`K` means at each point (``ddof=1``), shape ``(n_points,)``."""
        return self.means.std(axis=0, ddof=1)

    @property
    def claimed(self) -> np.ndarray:
        r"""The claimed width, :math:`\sqrt{\langle\sigma_{\mathrm{pred},k}^2\rangle_k}`,
        shape ``(n_points,)``."""
        return np.sqrt((self.sigma_pred**2).mean(axis=0))

    @property
    def rms_error(self) -> np.ndarray:
        r""":math:`\sqrt{\langle(m_k - f)^2\rangle_k}` per point (bias and spread together),
        shape ``(n_points,)``; needs ``truth``."""
        if self.truth is None:
            raise ValueError("rms_error needs the true function values (truth)")
        return np.sqrt(((self.means - self.truth) ** 2).mean(axis=0))

    def coverage(
        self, n_sigma: float = 1.0, where: np.ndarray | None = None, against: str = "truth"
    ) -> float:
        r"""Fraction of networks and points with :math:`|m_k - r| \le n\,\sigma_{\mathrm{pred},k}`.

        Args:
            n_sigma: the width in units of each network's own :math:`\sigma_\mathrm{pred}`.
            where: boolean mask ``(n_points,)`` of the points to use (default all).
            against: ``"truth"`` (the true function: tests the error, bias included) or
                ``"others"`` (the mean of the other :math:`K-1` networks: tests the spread
                alone; a Gaussian spread gives about 0.68 at one sigma, slightly less since the
                reference has its own scatter).
        """
        if not n_sigma > 0:
            raise ValueError(f"n_sigma must be positive, got {n_sigma}")
        if against == "truth":
            if self.truth is None:
                raise ValueError("coverage against the truth needs truth")
            reference = np.broadcast_to(self.truth, self.means.shape)
        elif against == "others":
            total = self.means.sum(axis=0)
            reference = (total - self.means) / (self.n_trainings - 1)
        else:
            raise ValueError(f"against must be 'truth' or 'others', got {against!r}")
        inside = np.abs(self.means - reference) <= n_sigma * self.sigma_pred
        mask = self._mask(where)
        return float(inside[:, mask].mean())

    def _mask(self, where: np.ndarray | None) -> np.ndarray:
        if where is None:
            return np.ones(self.means.shape[1], dtype=bool)
        mask = np.asarray(where, dtype=bool).reshape(-1)
        if mask.shape != (self.means.shape[1],):
            raise ValueError(f"where has {mask.size} entries, expected {self.means.shape[1]}")
        if not mask.any():
            raise ValueError("where selects no point")
        return mask

    def summary(self, where: np.ndarray | None = None) -> dict[str, float]:
        r"""Region averages: claimed :math:`\sigma_\mathrm{pred}`, actual spread, their ratio,
        and (with ``truth``) the RMS error and the 1- and 2-sigma coverage against the truth."""
        mask = self._mask(where)
        claimed = float(np.sqrt((self.claimed[mask] ** 2).mean()))
        spread = float(np.sqrt((self.spread[mask] ** 2).mean()))
        row = {
            "sigma_pred": claimed,
            "spread": spread,
            "ratio": claimed / spread if spread > 0 else float("inf"),
            "coverage_1_others": self.coverage(1.0, mask, "others"),
        }
        if self.truth is not None:
            row["rms_error"] = float(np.sqrt((self.rms_error[mask] ** 2).mean()))
            row["coverage_1"] = self.coverage(1.0, mask)
            row["coverage_2"] = self.coverage(2.0, mask)
        return row

    def bootstrap(
        self,
        statistic: Callable[[IndependentTrainings], float],
        n_resamples: int = 200,
        seed: int = 0,
    ) -> np.ndarray:
        r"""The statistic on ``n_resamples`` bootstrap resamplings of the :math:`K` trainings.

        Its standard deviation is the statistical uncertainty of a number measured from
        :math:`K` independent trainings (for instance a ratio or a coverage), the seed spread
        a check of that number must respect (chapter 4).

        Args:
            statistic: ``IndependentTrainings -> float``, e.g.
                ``lambda s: s.summary(inside)["ratio"]``.
            n_resamples: number of resamplings (with replacement) of the trainings.
            seed: seed of the resampling.

        Returns:
            The ``(n_resamples,)`` values of the statistic.
        """
        if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 2:
            raise ValueError(f"n_resamples must be an integer >= 2, got {n_resamples!r}")
        rng = np.random.default_rng(seed)
        values = []
        for _ in range(n_resamples):
            pick = rng.integers(0, self.n_trainings, self.n_trainings)
            while np.unique(pick).size < 2:  # a resample needs two distinct trainings
                pick = rng.integers(0, self.n_trainings, self.n_trainings)
            resampled = IndependentTrainings(self.means[pick], self.sigma_pred[pick], self.truth)
            values.append(float(statistic(resampled)))
        return np.asarray(values)

    def table(self, regions: Mapping[str, np.ndarray | None]) -> str:
        """A printable table of :meth:`summary` for named regions (masks)."""
        header = f"{'region':>22s} {'sigma_pred':>10s} {'spread':>8s} {'ratio':>6s}"
        if self.truth is not None:
            header += f" {'RMS error':>9s} {'cover 1s':>8s} {'cover 2s':>8s}"
        lines = [f"{self.n_trainings} independent trainings", header]
        for name, mask in regions.items():
            row = self.summary(mask)
            line = f"{name:>22s} {row['sigma_pred']:10.4f} {row['spread']:8.4f} {row['ratio']:6.2f}"
            if self.truth is not None:
                line += (
                    f" {row['rms_error']:9.4f} {row['coverage_1']:8.2f} {row['coverage_2']:8.2f}"
                )
            lines.append(line)
        return "\n".join(lines)


def independent_trainings(
    train_and_predict: Callable[[int], Any],
    seeds: Sequence[int] | int,
    truth: Any = None,
) -> IndependentTrainings:
    r"""Train one network per seed on independent data and collect its predictions.

    Args:
        train_and_predict: ``seed -> prediction``. For each seed it must draw an independent
            training set (with that seed), train a fresh network with the chapter's protocol,
            and predict at the same evaluation points every time. It returns a
            :class:`~lhcbnn.Prediction` (``mean`` and ``sigma_pred`` are used, one output
            column) or a pair ``(mean, sigma_pred)`` of arrays with ``n_points`` entries.
        seeds: the seeds, or their number ``K`` (then ``0, ..., K-1``); at least 2.
        truth: the true function at the evaluation points, ``(n_points,)``, if known.

    Returns:
        :class:`IndependentTrainings` with the ``(K, n_points)`` means and widths.
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if len(seed_list) < 2:
        raise ValueError(f"need at least 2 independent trainings, got {len(seed_list)}")
    if len(set(seed_list)) != len(seed_list):
        raise ValueError("seeds must be distinct, or the trainings are not independent")
    means, widths = [], []
    for seed in seed_list:
        result = train_and_predict(seed)
        if hasattr(result, "mean") and hasattr(result, "sigma_pred"):
            mean, sigma_pred = result.mean, result.sigma_pred
        else:
            mean, sigma_pred = result
        mean, sigma_pred = _array(mean, "mean"), _array(sigma_pred, "sigma_pred")
        if mean.shape != sigma_pred.shape:
            raise ValueError(f"mean {mean.shape} and sigma_pred {sigma_pred.shape} differ")
        if means and mean.shape != means[0].shape:
            raise ValueError(f"seed {seed} predicted {mean.size} points, the first {means[0].size}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(sigma_pred))):
            raise ValueError(f"seed {seed} gave a NaN or infinite prediction")
        if (sigma_pred < 0).any():
            raise ValueError(f"seed {seed} gave a negative sigma_pred")
        means.append(mean)
        widths.append(sigma_pred)
    truth_array = None if truth is None else _array(truth, "truth")
    if truth_array is not None and truth_array.shape != means[0].shape:
        raise ValueError(f"truth has {truth_array.size} points, the predictions {means[0].size}")
    return IndependentTrainings(np.stack(means), np.stack(widths), truth_array)


def log_log_fit(x: Any, y: Any, y_error: Any) -> tuple[float, float, float, float]:
    r"""Error-weighted straight-line fit :math:`\log y = a + b\log x`.

    The error of :math:`\log y` is ``y_error / y``; the fit minimises the weighted
    :math:`\chi^2`, and the parameter errors are scaled by :math:`\sqrt{\chi^2/\mathrm{ndf}}`
    when that exceeds one (scatter beyond the error bars).

    Returns:
        ``(slope, slope_error, intercept, chi2_per_ndf)``.
    """
    log_x, y_np, error_np = np.log(_array(x, "x")), _array(y, "y"), _array(y_error, "y_error")
    if np.any(error_np <= 0) or np.any(y_np <= 0):
        raise ValueError("log_log_fit needs positive values and positive errors")
    if log_x.size < 3:
        raise ValueError("log_log_fit needs at least three points")
    sigma = error_np / y_np
    (slope, intercept), cov = np.polyfit(log_x, np.log(y_np), 1, w=1 / sigma, cov="unscaled")
    residual = (np.log(y_np) - (intercept + slope * log_x)) / sigma
    chi2_ndf = float((residual**2).sum() / (log_x.size - 2))
    scale = max(1.0, chi2_ndf)
    return float(slope), float(np.sqrt(cov[0, 0] * scale)), float(intercept), chi2_ndf
