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
    "log_ratio_maps",
    "roc_curves",
    "spread_against_mean",
    "spread_by_training_size",
    "reliability_diagram",
    "sigma_pred_against_trainings",
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


# ----------------------------------------------------------------- chapter 7: classification
def log_ratio_maps(toy: object, model: object, n_grid: int = 120, n_samples: int = 30) -> Figure:
    """Exact log-likelihood ratio of a two-class toy, the classifier's log[mu/(1-mu)], and
    their difference, on a grid, with the 1- and 2-sigma contours of both class densities."""
    from lhcbnn.tagging import predict_proba

    x1, x2 = np.meshgrid(np.linspace(-3, 4, n_grid), np.linspace(-4, 5, n_grid))
    grid = np.stack([x1.ravel(), x2.ravel()], axis=1)
    exact = toy.log_likelihood_ratio(grid).reshape(x1.shape)
    mean = predict_proba(model, grid, n_samples=n_samples).numpy().mean
    mean = np.clip(mean, 1e-12, 1 - 1e-12)
    learned = np.log(mean / (1 - mean)).reshape(x1.shape)
    fig, axes = figure(ncols=3, width=13.0, height=4.0)
    levels = np.linspace(-6, 6, 25)
    titles = ("exact log p_s/p_b", "network log mu/(1-mu)", "network - exact")
    for ax, values, title in zip(axes, (exact, learned, learned - exact), titles, strict=True):
        if title.startswith("network -"):
            image = ax.contourf(
                x1, x2, values, levels=np.linspace(-1, 1, 21), cmap="RdBu_r", extend="both"
            )
        else:
            image = ax.contourf(x1, x2, values, levels=levels, cmap="viridis", extend="both")
        fig.colorbar(image, ax=ax, shrink=0.85)
        for log_pdf, color in (
            (toy.log_pdf_signal, COLORS["orange"]),
            (toy.log_pdf_background, "white"),
        ):
            density = log_pdf(grid).reshape(x1.shape)
            peak = density.max()
            # Gaussian contours at 1 and 2 standard deviations: log p = peak - k^2 / 2
            ax.contour(
                x1, x2, density, levels=[peak - 2.0, peak - 0.5], colors=color, linewidths=1.0
            )
        ax.set(title=title, xlabel="$x_1$", ylabel="$x_2$")
    return fig


def roc_curves(scores: dict[str, object], labels: object) -> Figure:
    """Background rejection 1/eps_B against signal efficiency eps_S for several taggers."""
    from lhcbnn.tagging import auc, roc_curve

    fig, ax = figure()
    for name, score in scores.items():
        fpr, tpr = roc_curve(score, labels)
        keep = fpr > 0
        ax.plot(tpr[keep], 1 / fpr[keep], label=f"{name} (AUC {auc(score, labels):.3f})")
    efficiency = np.linspace(0.01, 1, 100)
    ax.plot(efficiency, 1 / efficiency, ":", color=TRUTH_COLOR, label="random guess")
    ax.set(
        yscale="log",
        xlabel=r"signal efficiency $\epsilon_S$",
        ylabel=r"background rejection $1/\epsilon_B$",
        xlim=(0, 1),
    )
    legend(ax)
    return fig


def spread_against_mean(prediction: object, labels: object) -> Figure:
    """Per-jet sigma_pred against mu, with s mu (1 - mu) for the median logit width s."""
    labels = to_numpy(labels)
    fig, ax = figure()
    for value, name, color in ((1, "top", COLORS["vermillion"]), (0, "QCD", NETWORK_COLOR)):
        chosen = labels == value
        ax.scatter(
            prediction.mean[chosen],
            prediction.sigma_pred[chosen],
            s=4,
            alpha=0.4,
            color=color,
            label=f"{name} jets",
            rasterized=True,
        )
    mu = np.linspace(0, 1, 201)
    width = float(np.median(prediction.logit_sigma))
    ax.plot(
        mu,
        width * mu * (1 - mu),
        "--",
        color=TRUTH_COLOR,
        label=rf"$s\,\mu(1-\mu)$, $s = {width:.2f}$",
    )
    ax.set(xlabel=r"predictive mean $\mu$", ylabel=r"$\sigma_\mathrm{pred}$", xlim=(0, 1))
    legend(ax, loc="upper left")
    return fig


def spread_by_training_size(predictions: dict[int, object]) -> Figure:
    """Histograms of the logit width over held-out points, one per training size."""
    fig, ax = figure()
    widths = np.concatenate([p.logit_sigma for p in predictions.values()])
    bins = np.geomspace(max(widths.min(), 1e-3), widths.max(), 40)
    for n_train in sorted(predictions):
        ax.hist(
            predictions[n_train].logit_sigma,
            bins=bins,
            histtype="step",
            linewidth=2,
            label=f"$n_\\mathrm{{train}}$ = {n_train}",
        )
    ax.set(xscale="log", xlabel="logit width $s$ over weight draws", ylabel="held-out jets")
    legend(ax)
    return fig


def reliability_diagram(diagrams: dict[str, object]) -> Figure:
    """Observed signal fraction against mean predicted probability, with binomial errors."""
    fig, ax = figure(width=5.0, height=4.6)
    ax.plot([0, 1], [0, 1], "--", color=TRUTH_COLOR, linewidth=1.5, label="calibrated")
    markers = iter("osD^")
    for name, diagram in diagrams.items():
        ax.errorbar(
            diagram.predicted,
            diagram.observed,
            yerr=diagram.error,
            fmt=next(markers),
            markersize=5,
            capsize=2,
            label=name,
        )
    ax.set(
        xlabel="mean predicted probability",
        ylabel="observed signal fraction",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    legend(ax, loc="upper left")
    return fig


# ---------------------------------------------------------------------------------------
# Chapters 3 and 4: sigma_pred against independent trainings, and against the training size.
# ---------------------------------------------------------------------------------------
def sigma_pred_against_trainings(
    ax: Axes,
    x: object,
    study: object,
    color: str = NETWORK_COLOR,
    label: str = "network",
    train_range: tuple[float, float] | None = None,
) -> None:
    r"""Claimed :math:`\sigma_\mathrm{pred}(x)` of :math:`K` independent trainings (solid),
    the actual spread of their means (dotted) and their RMS error against the truth (black
    dashed), on a logarithmic axis.

    Args:
        x: the evaluation points ``(n_points,)``.
        study: a :class:`lhcbnn.validation.IndependentTrainings` with ``truth``.
        train_range: shade this interval as the training range.
    """
    x_np = to_numpy(x)
    if train_range is not None:
        training_range(ax, *train_range)
    ax.semilogy(
        x_np, study.claimed, color=color, label=f"{label}: claimed $\\sigma_\\mathrm{{pred}}$"
    )
    ax.semilogy(
        x_np, study.spread, color=color, linestyle=":", label=f"{label}: spread of the means"
    )
    ax.semilogy(
        x_np,
        study.rms_error,
        color=TRUTH_COLOR,
        linestyle="--",
        linewidth=1.2,
        label="RMS error against $f(x)$",
    )
    ax.set_xlabel("$x$")
