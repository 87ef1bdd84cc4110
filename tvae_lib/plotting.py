"""The figures the chapters draw again and again, drawn one way (first used in chapter 0).

Sensor cycles per class, reference cycles overlaid with reconstructions or generations, training
histories, latent means coloured by class, and heatmaps. Each function draws into the axes it is
given (or a new figure of a fixed size) and returns the Figure. Class ``k`` is always drawn in
``PALETTE[k]``. Channel names, units and the 10 Hz rate default to the door cycles of
:mod:`tvae_lib.data`; pass others for other data. Sequences are (N, T, F) arrays or tensors;
with ``lengths`` only the real steps of padded sequences are drawn. Model code never imports
this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.decomposition import PCA

from tvae_lib import checks
from tvae_lib.data import CHANNEL_UNITS, CHANNELS, CLASS_NAMES, SAMPLE_RATE_HZ
from tvae_lib.training import History

__all__ = ["PALETTE", "BOOK_RC", "use_book_style", "plot_cycles", "plot_overlay", "plot_history"]
__all__ += ["plot_latent", "plot_heatmap"]

#: Font sizes (points) for figures shown shrunk to the book's text column, about 700 pixels.
BOOK_RC = {"font.size": 11, "axes.titlesize": 11, "axes.labelsize": 11, "xtick.labelsize": 10,
           "ytick.labelsize": 10, "legend.fontsize": 10, "figure.titlesize": 12}  # fmt: skip

#: Class ``k``'s colour in every figure of the book (matplotlib's ``tab10``: ``C0``, ``C1``, ...).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_OVERLAYS = (("tab:red", "-"), ("tab:blue", "--"), ("tab:green", "-."))  # colour, line style
_Size = tuple[float, float]


def use_book_style() -> None:
    """Set matplotlib's font sizes to :data:`BOOK_RC` (every chapter calls it once)."""
    plt.rcParams.update(BOOK_RC)


def _array(name: str, x: object, rank: int, shape: str) -> np.ndarray:
    """``x`` (an array or a tensor) as a NumPy array, if floating point with ``rank`` dims."""
    tensor = torch.tensor(x) if isinstance(x, np.ndarray) else x
    return checks.tensor_of_rank(name, tensor, rank, shape).detach().cpu().numpy()


def _channel_labels(names: object, units: object, f: int) -> list[str]:
    """One y label per channel: ``"name\\n(unit)"``, or the bare name when ``units`` is None."""
    names = checks.names("channel_names", names, f)
    if units is None:
        return list(names)
    units = checks.names("channel_units", units, f)
    return [f"{name}\n({unit})" for name, unit in zip(names, units, strict=True)]


def _time(t: int, sample_rate_hz: float | None) -> tuple[np.ndarray, str]:
    if sample_rate_hz is None:
        return np.arange(t), "step t"
    return np.arange(t) / checks.positive_float("sample_rate_hz", sample_rate_hz), "time (s)"


def _grid(axes: object, rows: int, cols: int, figsize: _Size,
          share: bool = True) -> tuple[Figure, np.ndarray]:
    """A (rows, cols) object array of Axes: ``axes`` reshaped, or a new figure's."""
    if axes is None:
        return plt.subplots(rows, cols, figsize=figsize, squeeze=False, sharex=share,
                            sharey="row" if share else False)
    grid = np.asarray(axes, dtype=object)
    if not all(isinstance(ax, Axes) for ax in grid.flat):
        kinds = sorted({type(ax).__name__ for ax in grid.flat})
        raise TypeError(f"axes must hold matplotlib Axes, got {', '.join(kinds)}")
    if grid.size != rows * cols:
        raise ValueError(f"axes must hold {rows} x {cols} = {rows * cols} Axes, got {grid.size}")
    return grid.flat[0].figure, grid.reshape(rows, cols)


def _finish(fig: Figure, grid: np.ndarray, title: str | None, own: bool,
            legend_below: bool = False) -> Figure:
    for ax in grid.flat:
        ax.grid(alpha=0.3)
    if title is not None:
        fig.suptitle(title)
    if own:  # leave about half an inch at the bottom for a legend below the panels
        fig.tight_layout(rect=(0, 0.5 / fig.get_figheight() if legend_below else 0, 1, 1))
    return fig


def plot_cycles(x: object, lengths: object = None, labels: object = None, *,
                class_names: Sequence[str] = CLASS_NAMES, channel_names: Sequence[str] = CHANNELS,
                channel_units: Sequence[str] | None = CHANNEL_UNITS,
                sample_rate_hz: float | None = SAMPLE_RATE_HZ, n_per_class: int = 5, seed: int = 0,
                axes: object = None, figsize: _Size | None = None,
                title: str | None = None) -> Figure:
    """Cycles on a grid: one row per channel, one column per class (or a single column).

    Args:
        x: (N, T, F) cycles.
        lengths: (N,) real steps of each cycle; only those are drawn. ``None``: all T.
        labels: (N,) class indices: one column per class, ``n_per_class`` of its cycles drawn
            at random (``seed``) in the class's colour. ``None``: all N cycles in one column.
        class_names: One name per class, the column titles.
        channel_names: F channel names. channel_units: F units, or ``None``.
        sample_rate_hz: Steps per second, for an axis in seconds; ``None``: an axis in steps.
        n_per_class: Cycles drawn per class (all of them if a class has fewer).
        seed: Seed of the random choice of cycles.
        axes: (F, columns) Axes to draw into; ``None``: a new figure of size ``figsize``.
        title: The figure's title.

    Returns:
        The Figure.
    """
    x = _array("x", x, 3, "(N, T, F)")
    n, t, f = x.shape
    lengths = checks.as_lengths(lengths, n, t)
    ylabels = _channel_labels(channel_names, channel_units, f)
    time, xlabel = _time(t, sample_rate_hz)
    columns = [("", np.arange(n), PALETTE[0])]  # title, cycles, colour
    if labels is not None:
        labels, class_names = checks.class_labels(labels, n, class_names)
        rng = np.random.default_rng(checks.non_negative_int("seed", seed))
        n_per_class = checks.positive_int("n_per_class", n_per_class)
        columns = []
        for k, name in enumerate(class_names):
            members = np.flatnonzero(labels == k)
            picks = rng.choice(members, size=min(n_per_class, len(members)), replace=False)
            columns.append((name, picks, PALETTE[k % len(PALETTE)]))
    size = figsize or (8.0 if len(columns) == 1 else 3.25 * len(columns), 1.8 * f + 1)
    fig, grid = _grid(axes, f, len(columns), size)
    many = max(len(picks) for _, picks, _ in columns) > 1
    for col, (name, picks, colour) in enumerate(columns):
        for i, channel in ((i, channel) for i in picks for channel in range(f)):
            grid[channel, col].plot(time[: lengths[i]], x[i, : lengths[i], channel], color=colour,
                                    alpha=0.6 if many else 1.0, linewidth=1.0 if many else 1.5)
        grid[0, col].set_title(name)
        grid[-1, col].set_xlabel(xlabel)
    for ax, ylabel in zip(grid[:, 0], ylabels, strict=True):
        ax.set_ylabel(ylabel)
    return _finish(fig, grid, title, axes is None)


def plot_overlay(x: object, others: Mapping[str, object], indices: Sequence[int], *,
                 lengths: object = None, labels: object = None,
                 class_names: Sequence[str] = CLASS_NAMES, channels: Sequence[int] | None = None,
                 channel_names: Sequence[str] = CHANNELS,
                 channel_units: Sequence[str] | None = CHANNEL_UNITS,
                 sample_rate_hz: float | None = SAMPLE_RATE_HZ, reference_label: str = "original",
                 axes: object = None, figsize: _Size | None = None,
                 title: str | None = None) -> Figure:
    """Reference cycles (black) overlaid with reconstructions or generations of the same cycles.

    Args:
        x: (N, T, F) reference cycles.
        others: Legend label -> (N', T, F) cycles indexed like ``x`` (at most three; drawn red
            solid, blue dashed, green dash-dotted).
        indices: The cycles to show, one column each.
        lengths: (N,) real steps of each cycle; only those are drawn. ``None``: all T.
        labels: (N,) class indices; given, each column is titled with its class's name.
        class_names: One name per class.
        channels: The channels to show, one row each; ``None``: all F.
        channel_names: F channel names. channel_units: F units, or ``None``.
        sample_rate_hz: Steps per second, for an axis in seconds; ``None``: an axis in steps.
        reference_label: The legend label of ``x``.
        axes: (channels, indices) Axes to draw into; ``None``: a new figure of size ``figsize``.
        title: The figure's title.

    Returns:
        The Figure.
    """
    x = _array("x", x, 3, "(N, T, F)")
    n, t, f = x.shape
    lengths = checks.as_lengths(lengths, n, t)
    indices = [checks.int_in_range(f"indices[{j}]", i, 0, n - 1) for j, i in enumerate(indices)]
    if not indices or len(others) > len(_OVERLAYS):
        raise ValueError(f"need 1+ indices and at most {len(_OVERLAYS)} others, got "
                         f"{len(indices)} and {len(others)}")
    arrays = {name: _array(f"others[{name!r}]", y, 3, "(N', T, F)") for name, y in others.items()}
    for name, y in arrays.items():
        if y.shape[1:] != (t, f) or len(y) <= max(indices):
            raise ValueError(f"others[{name!r}] must have shape (N' > {max(indices)}, T={t}, "
                             f"F={f}), got {y.shape}")
    if labels is not None:
        labels, class_names = checks.class_labels(labels, n, class_names)
    rows = range(f) if channels is None else [
        checks.int_in_range(f"channels[{j}]", c, 0, f - 1) for j, c in enumerate(channels)]
    ylabels = _channel_labels(channel_names, channel_units, f)
    time, xlabel = _time(t, sample_rate_hz)
    size = figsize or (max(8.0, 3.5 * len(indices)), 2.1 * len(rows) + 1)
    fig, grid = _grid(axes, len(rows), len(indices), size)
    for col, i in enumerate(indices):
        real = slice(0, lengths[i])
        for row, channel in enumerate(rows):
            ax = grid[row, col]
            ax.plot(time[real], x[i, real, channel], color="black", lw=2, label=reference_label)
            for (name, y), (colour, style) in zip(arrays.items(), _OVERLAYS, strict=False):
                ax.plot(time[real], y[i, real, channel], color=colour, ls=style, label=name)
            ax.set_ylabel(ylabels[channel] if col == 0 else "")
        grid[0, col].set_title(class_names[labels[i]] if labels is not None else "")
        grid[-1, col].set_xlabel(xlabel)
    if axes is None:  # a figure of its own: one legend below the panels, off every curve
        fig.legend(*grid[0, 0].get_legend_handles_labels(), loc="lower center",
                   ncol=1 + len(arrays))  # fmt: skip
    else:
        grid[0, 0].legend(loc="upper right")
    return _finish(fig, grid, title, axes is None, legend_below=axes is None)


def plot_history(history: object, keys: str | Sequence[str] = ("loss",), *, axes: object = None,
                 log: bool | Sequence[bool] = False, titles: Sequence[str] | None = None,
                 ylabels: Sequence[str] | None = None, train_label: str = "training",
                 val_label: str = "validation", marker: str | None = None,
                 figsize: _Size | None = None) -> Figure:
    """Per-epoch curves, one panel per metric.

    Args:
        history: One run (a ``History`` or a dict metric -> per-epoch values): each panel shows
            ``key`` and, if logged, ``"val_" + key``. Or several runs (a dict run name ->
            ``History`` or dict): each panel shows ``key`` for every run.
        keys: The metrics, one panel each.
        axes: One Axes per key to draw into; ``None``: a new figure of size ``figsize``.
        log: A log y axis: one flag for all panels, or one per key.
        titles: One title per key. ylabels: One y label per key (default: the keys).
        train_label: Legend label of one run's ``key`` curve; ``val_label``: of its
            ``"val_" + key`` curve.
        marker: Marker of every curve, e.g. ``"o"``.

    Returns:
        The Figure.
    """
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    runs, several = {"": history}, False
    if isinstance(history, Mapping) and any(isinstance(run, History | Mapping)
                                            for run in history.values()):
        runs, several = {str(name): run for name, run in history.items()}, True
    for name, run in runs.items():
        runs[name] = run.metrics if isinstance(run, History) else run
        if not isinstance(runs[name], Mapping):
            raise TypeError(f"history must be a History, a dict of per-epoch values or a dict "
                            f"of those, got {type(run).__name__}")
    logs = [log] * len(keys) if isinstance(log, bool) else log
    if not isinstance(logs, Sequence) or not all(isinstance(flag, bool) for flag in logs):
        raise TypeError(f"log must be a bool or a sequence of bools, got {log!r}")
    if not keys or len(logs) != len(keys):
        raise ValueError(f"need 1+ keys and one log flag per key, got {keys} and {log}")
    titles = keys if titles is None else checks.names("titles", titles, len(keys))
    ylabels = keys if ylabels is None else checks.names("ylabels", ylabels, len(keys))
    for key, (name, metrics) in ((key, run) for key in keys for run in runs.items()):
        if len(metrics.get(key, ())) == 0:
            raise ValueError(f"no values of {key!r} in {name or 'the history'}, which logged "
                             f"{sorted(metrics)}")
    fig, grid = _grid(axes, 1, len(keys), figsize or (5.5 * len(keys), 3.8), share=False)
    for ax, key, is_log, title, ylabel in zip(grid[0], keys, logs, titles, ylabels, strict=True):
        for name, metrics in runs.items():
            curves = {name or (val_label if key.startswith("val_") else train_label): key}
            if not several and f"val_{key}" in metrics:
                curves[val_label] = f"val_{key}"
            for label, metric in curves.items():
                epochs = np.arange(1, len(metrics[metric]) + 1)
                ax.plot(epochs, metrics[metric], marker=marker, label=label)
        ax.set(title=title, xlabel="epoch", ylabel=ylabel, yscale="log" if is_log else "linear")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    return _finish(fig, grid, None, axes is None)


def plot_latent(z: object, labels: object = None, class_names: Sequence[str] = CLASS_NAMES, *,
                ax: Axes | None = None, title: str | None = None, name: str = "$\\mu$",
                units: str | None = "latent units", legend_title: str = "class",
                figsize: _Size = (6.5, 5.5)) -> Figure:
    """Latent codes as points coloured by class; projected to 2-D by PCA first when Z > 2.

    Args:
        z: (N, Z) codes, Z >= 2, e.g. the encoder's means.
        labels: (N,) class indices; ``None``: one colour, no legend.
        class_names: One name per class, for the legend (placed outside past five classes).
        ax: Axes to draw into; ``None``: a new figure of size ``figsize``.
        title: The axes' title.
        name: What the codes are, for the axis labels. Z = 2: ``"$\\mu_1$ (latent units)"``
            (``"name 1"`` for a name that is not mathtext). Z > 2: ``"PC 1 of $\\mu$ (40% of
            variance)"``.
        units: The codes' units, for the axis labels when Z = 2, or ``None``.
        legend_title: The legend's title.

    Returns:
        The Figure.
    """
    z = _array("z", z, 2, "(N, Z)")
    if z.shape[1] < 2:
        raise ValueError(f"z must have Z >= 2 dimensions, got shape {z.shape}")
    if z.shape[1] == 2:
        points, unit = z, "" if units is None else f" ({units})"
        math = name.startswith("$") and name.endswith("$") and len(name) > 2  # "$\\mu_1$"
        axis_labels = [(f"${name[1:-1]}_{i}$" if math else f"{name} {i}") + unit for i in (1, 2)]
    else:
        pca = PCA(n_components=2).fit(z)
        points = pca.transform(z)  # (N, 2)
        axis_labels = [f"PC {i + 1} of {name} ({share:.0%} of variance)"
                       for i, share in enumerate(pca.explained_variance_ratio_)]
    if labels is not None:
        labels, class_names = checks.class_labels(labels, len(z), class_names)
    own = ax is None
    if own:
        _, ax = plt.subplots(figsize=figsize)
    groups = [(slice(None), PALETTE[0], None)] if labels is None else [
        (labels == k, PALETTE[k % len(PALETTE)], class_names[k]) for k in np.unique(labels)]
    for chosen, colour, label in groups:
        ax.scatter(points[chosen, 0], points[chosen, 1], s=8, color=colour, label=label)
    if labels is not None:
        outside = {"loc": "center left", "bbox_to_anchor": (1, 0.5)} if len(class_names) > 5 else {}
        ax.legend(title=legend_title, markerscale=2, **outside)
    ax.set(title=title, xlabel=axis_labels[0], ylabel=axis_labels[1])
    if own:
        ax.figure.tight_layout()
    return ax.figure


def plot_heatmap(matrix: object, *, ax: Axes | None = None, title: str | None = None,
                 xlabel: str | None = None, ylabel: str | None = None, cmap: str = "viridis",
                 vmin: float | None = None, vmax: float | None = None, annot: bool = False,
                 fmt: str = ".2f", cbar: bool = True, cbar_label: str | None = None,
                 xticklabels: object = "auto", yticklabels: object = "auto",
                 lengths: object = None, figsize: _Size = (8, 4)) -> Figure:
    """A matrix as a seaborn heatmap: attention weights, a padded batch, codes, confusions.

    Args:
        matrix: (R, C) real numbers (integers stay integers, so ``fmt="d"`` works).
        ax: Axes to draw into; ``None``: a new figure of size ``figsize``.
        title: The axes' title. xlabel, ylabel: Its axis labels.
        cmap: As in ``sns.heatmap``, like ``vmin``, ``vmax``, ``annot``, ``fmt``, ``cbar``,
            ``xticklabels`` and ``yticklabels``.
        cbar_label: The colour bar's label.
        lengths: (R,) real steps of each row of a padded batch: a white bar marks where they end.

    Returns:
        The Figure.
    """
    if isinstance(matrix, torch.Tensor):
        matrix = matrix.detach().cpu().numpy()
    if not isinstance(matrix, np.ndarray) or matrix.dtype.kind not in "iuf":
        got = getattr(matrix, "dtype", type(matrix).__name__)
        raise TypeError(f"matrix must be a real-valued array or tensor, got {got}")
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise ValueError(f"matrix must have shape (R, C) with R, C >= 1, got {matrix.shape}")
    ends = None if lengths is None else checks.as_lengths(lengths, *matrix.shape).tolist()
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    sns.heatmap(matrix, ax=ax, cmap=cmap, vmin=vmin, vmax=vmax, annot=annot, fmt=fmt, cbar=cbar,
                cbar_kws={} if cbar_label is None else {"label": cbar_label},
                xticklabels=xticklabels, yticklabels=yticklabels)
    for row, end in enumerate(ends or []):
        ax.plot([end, end], [row, row + 1], color="white", linewidth=2)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.tick_params(axis="y", rotation=0)
    return ax.figure
