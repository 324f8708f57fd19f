"""One readable style for every figure of the book, and the few plot helpers it needs.

The book's conventions (its introduction): the truth is drawn in black
and dashed, a network in one colour with a band of plus/minus one standard deviation, the
training range shaded grey; axes carry labels with units. Colours are the Okabe-Ito
palette, which stays distinguishable for colour-blind readers and in greyscale print.

Typical use in a chapter::

    from lhcbnn import plotting as lbplot
    lbplot.use_style()
    fig, ax = lbplot.figure()
    lbplot.truth(ax, x, f_true)
    lbplot.band(ax, x, mean, sigma, label="BNN")
    lbplot.training_range(ax, *toy.train_range)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "COLORS",
    "NETWORK_COLOR",
    "TRUTH_COLOR",
    "TRAINING_RANGE_COLOR",
    "STYLE",
    "use_style",
    "style",
    "figure",
    "to_numpy",
    "truth",
    "band",
    "training_range",
    "data_points",
    "legend",
]

# Okabe-Ito palette (Okabe and Ito, "Color Universal Design", 2008).
COLORS: dict[str, str] = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
    "sky": "#56B4E9",
    "yellow": "#F0E442",
    "black": "#000000",
}
NETWORK_COLOR: str = COLORS["blue"]
TRUTH_COLOR: str = COLORS["black"]
TRAINING_RANGE_COLOR: str = "#B0B0B0"

STYLE: dict[str, object] = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "figure.constrained_layout.use": True,
    "font.size": 12,
    "axes.titlesize": 12,
    "axes.labelsize": 12,
    "legend.fontsize": 10,
    "legend.frameon": False,
    "xtick.labelsize": 11,
    "ytick.labelsize": 11,
    "xtick.direction": "in",
    "ytick.direction": "in",
    "xtick.top": True,
    "ytick.right": True,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.6,
    "lines.linewidth": 2.0,
    "axes.prop_cycle": mpl.cycler(
        color=[
            COLORS["blue"],
            COLORS["vermillion"],
            COLORS["green"],
            COLORS["orange"],
            COLORS["purple"],
            COLORS["sky"],
        ]
    ),
    "image.cmap": "viridis",
}


def use_style() -> None:
    """Apply :data:`STYLE` to matplotlib globally (call once at the top of a notebook)."""
    mpl.rcParams.update(STYLE)


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Context manager applying :data:`STYLE` only inside the ``with`` block."""
    with mpl.rc_context(STYLE):
        yield


def figure(
    ncols: int = 1, nrows: int = 1, width: float | None = None, height: float | None = None
) -> tuple[Figure, Axes | np.ndarray]:
    """A new figure: ``(figure, axes)`` as from ``plt.subplots``, constrained layout.

    Fonts and colours come from the global rcParams, so call :func:`use_style` first.

    The default size is 6.4 x 4.0 inches for one panel and grows with the number of
    columns and rows (4.4 inches wide and 3.6 high per extra panel).
    """
    if ncols < 1 or nrows < 1:
        raise ValueError(f"ncols and nrows must be >= 1, got {ncols} and {nrows}")
    if width is None:
        width = 6.4 if ncols == 1 else 4.4 * ncols
    if height is None:
        height = 4.0 if nrows == 1 else 3.6 * nrows
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width, height), squeeze=True, layout="constrained"
    )
    return fig, axes


def to_numpy(values: object) -> np.ndarray:
    """A flat float NumPy array from a list, an array or a torch tensor (any device).

    Column vectors ``(B, 1)`` become ``(B,)``; anything with more than one non-trivial
    axis is rejected, since every helper here draws curves of one variable.
    """
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()  # type: ignore[union-attr]
    array = np.asarray(values, dtype=float)
    squeezed = np.squeeze(array)
    if squeezed.ndim > 1:
        raise ValueError(f"expected one-dimensional values, got shape {array.shape}")
    return np.atleast_1d(squeezed)


def truth(ax: Axes, x: object, y: object, label: str = "truth", **kwargs: object) -> None:
    """Draw the known truth ``y(x)``: black, dashed."""
    options: dict[str, object] = {"color": TRUTH_COLOR, "linestyle": "--", "linewidth": 1.8}
    options.update(kwargs)
    ax.plot(to_numpy(x), to_numpy(y), label=label, **options)


def band(
    ax: Axes,
    x: object,
    mean: object,
    sigma: object,
    label: str | None = "network",
    color: str = NETWORK_COLOR,
    n_sigma: float = 1.0,
    alpha: float = 0.25,
    band_label: str | None = None,
) -> None:
    """Draw a prediction ``mean(x)`` with a shaded band ``mean +- n_sigma * sigma``.

    Args:
        x, mean, sigma: arrays or tensors of the same length ``(B,)`` or ``(B, 1)``.
        label: legend entry of the central line.
        band_label: legend entry of the band (default: none, the band belongs to the line).
    """
    x_np, mean_np, sigma_np = to_numpy(x), to_numpy(mean), to_numpy(sigma)
    if not (x_np.shape == mean_np.shape == sigma_np.shape):
        raise ValueError(
            f"x, mean and sigma must have the same length, got {x_np.shape}, "
            f"{mean_np.shape}, {sigma_np.shape}"
        )
    if np.any(sigma_np < 0):
        raise ValueError("sigma must be non-negative")
    order = np.argsort(x_np)
    x_np, mean_np, sigma_np = x_np[order], mean_np[order], sigma_np[order]
    ax.plot(x_np, mean_np, color=color, label=label)
    ax.fill_between(
        x_np,
        mean_np - n_sigma * sigma_np,
        mean_np + n_sigma * sigma_np,
        color=color,
        alpha=alpha,
        linewidth=0,
        label=band_label,
    )


def training_range(ax: Axes, low: float, high: float, label: str | None = "training range") -> None:
    """Shade the interval ``[low, high]`` of the x axis the network was trained on."""
    if not low < high:
        raise ValueError(f"training range needs low < high, got [{low}, {high}]")
    ax.axvspan(low, high, color=TRAINING_RANGE_COLOR, alpha=0.25, linewidth=0, label=label)


def data_points(
    ax: Axes,
    x: object,
    y: object,
    yerr: object | None = None,
    label: str | None = "data",
    **kwargs: object,
) -> None:
    """Draw measured points (black markers with optional vertical error bars)."""
    options: dict[str, object] = {
        "color": TRUTH_COLOR,
        "marker": "o",
        "markersize": 4,
        "linestyle": "none",
        "capsize": 0,
        "elinewidth": 1.2,
    }
    options.update(kwargs)
    ax.errorbar(
        to_numpy(x),
        to_numpy(y),
        yerr=None if yerr is None else to_numpy(yerr),
        label=label,
        **options,
    )


def legend(ax: Axes, handles: Sequence[object] | None = None, **kwargs: object) -> None:
    """A legend in the book style (no frame, best location)."""
    options: dict[str, object] = {"loc": "best"}
    options.update(kwargs)
    if handles is None:
        ax.legend(**options)
    else:
        ax.legend(handles=handles, **options)
