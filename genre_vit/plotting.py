"""Pure plot functions: they take a `GenreAnalysis` and return a matplotlib Figure.

No pyplot and no global state: figures are built with `matplotlib.figure.Figure`, so they are safe in a server
with many threads, and it is up to the caller to save them (e.g. `genre_vit.files.save_figure_atomic`).
"""

from functools import lru_cache

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont
from matplotlib.ft2font import FT2Font
from matplotlib.ticker import FuncFormatter, MaxNLocator

from .audio import format_duration
from .results import GenreAnalysis

GENRE_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
"""One colour per label id (matplotlib's tab10), so a genre keeps its colour across plots."""


def _color(index: int) -> str:
    return GENRE_COLORS[index % len(GENRE_COLORS)]


@lru_cache(maxsize=8)
def _font_characters(font_path: str) -> frozenset[int]:
    return frozenset(FT2Font(font_path).get_charmap())


def renderable_text(text: str, font: FontProperties | None = None, replacement: str = "?") -> str:
    """`text` with every character the font cannot draw replaced by `replacement`.

    File names carry emoji and other symbols that matplotlib's default font (DejaVu Sans) lacks; drawn as they are,
    they come out as empty boxes and matplotlib warns "Glyph ... missing from font(s)".
    """
    characters = _font_characters(findfont(font or FontProperties()))
    return "".join(c if c.isspace() or ord(c) in characters else replacement for c in text)


def _set_title(ax: Axes, text: str) -> None:
    ax.set_title(renderable_text(text, ax.title.get_fontproperties()))


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    return ax if ax is not None else Figure(figsize=figsize, layout="constrained").subplots()


def plot_genre_bars(result: GenreAnalysis, top_k: int | None = None, ax: Axes | None = None) -> Figure:
    """Horizontal bars of the mean genre probabilities, most likely on top.

    Args:
        result: the analysis to draw.
        top_k: draw only the `top_k` most likely genres (default: all).
        ax: draw into these axes instead of a new figure.
    """
    ax = _axes(ax, (6.0, 4.0))
    ranked = result.ranked()[: top_k or None]
    names = [genre for genre, _ in ranked][::-1]
    values = [probability for _, probability in ranked][::-1]
    colors = [_color(result.genres.index(genre)) for genre in names]
    bars = ax.barh(names, values, color=colors)
    ax.bar_label(bars, labels=[f"{value:.0%}" for value in values], padding=3, fontsize=8)
    ax.set_xlim(0, 1.1)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.0%}"))
    ax.set_xlabel("mean probability over the song")
    _set_title(ax, "Genre" + (f" — {result.source}" if result.source else ""))
    return ax.figure


def plot_genre_timeline(result: GenreAnalysis, ax: Axes | None = None) -> Figure:
    """Probability of every genre over time, one line per genre, at each window's centre; time in mm:ss."""
    ax = _axes(ax, (9.0, 4.0))
    centres = (result.window_start_times + result.window_end_times) / 2
    marker = "o" if result.num_windows < 3 else None
    for index, genre in enumerate(result.genres):
        ax.plot(
            centres,
            result.window_probabilities[:, index],
            label=genre,
            color=_color(index),
            marker=marker,
            linewidth=1.6,
        )
    ax.set_ylim(0, 1)
    ax.set_xlim(0, max(result.duration_seconds, float(result.window_end_times.max())))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=10, steps=[1, 2, 3, 5, 6, 10], integer=True))  # whole seconds
    ax.xaxis.set_major_formatter(FuncFormatter(lambda seconds, _: format_duration(max(seconds, 0.0))))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.0%}"))
    ax.set_xlabel("time (mm:ss)")
    ax.set_ylabel("probability")
    _set_title(ax, "Genre over time" + (f" — {result.source}" if result.source else ""))
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    return ax.figure


def plot_genre_report(result: GenreAnalysis) -> Figure:
    """The bars and the timeline side by side in one figure (what the CLI's `--plot` writes)."""
    figure = Figure(figsize=(14.0, 4.2), layout="constrained")
    bars_axes, timeline_axes = figure.subplots(1, 2, width_ratios=[1, 2.2])
    plot_genre_bars(result, ax=bars_axes)
    plot_genre_timeline(result, ax=timeline_axes)
    return figure


def plot_confusion_matrix(matrix, label_names, title: str = "Confusion matrix", ax: Axes | None = None) -> Figure:
    """A confusion matrix (rows: true genre, columns: predicted) with counts in the cells."""
    import numpy as np

    matrix = np.asarray(matrix)
    ax = _axes(ax, (7.0, 6.0))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(label_names)), label_names, rotation=45, ha="right")
    ax.set_yticks(range(len(label_names)), label_names)
    threshold = matrix.max() / 2 if matrix.size else 0
    for row in range(matrix.shape[0]):
        for column in range(matrix.shape[1]):
            ax.text(
                column,
                row,
                str(matrix[row, column]),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if matrix[row, column] > threshold else "black",
            )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    _set_title(ax, title)
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
    return ax.figure


def plot_roc_curves(
    labels, probabilities, label_names, title: str = "ROC, one vs rest", ax: Axes | None = None
) -> Figure:
    """One-vs-rest ROC curve of every class that has positive and negative examples, AUC in the legend."""
    import numpy as np
    from sklearn.metrics import roc_auc_score, roc_curve

    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    ax = _axes(ax, (7.0, 6.0))
    for index, name in enumerate(label_names):
        positives = labels == index
        if 0 < positives.sum() < len(labels):
            false_positive, true_positive, _ = roc_curve(positives, probabilities[:, index])
            auc = roc_auc_score(positives, probabilities[:, index])
            ax.plot(false_positive, true_positive, color=_color(index), label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    _set_title(ax, title)
    ax.legend(loc="lower right", fontsize=8)
    return ax.figure


__all__ = [
    "GENRE_COLORS",
    "renderable_text",
    "plot_confusion_matrix",
    "plot_genre_bars",
    "plot_genre_report",
    "plot_genre_timeline",
    "plot_roc_curves",
]
