"""Pure plot functions: they take a `GenreAnalysis` and return a matplotlib Figure.

No pyplot and no global state: figures are built with `matplotlib.figure.Figure`, so they are safe in a server
with many threads, and it is up to the caller to save them (e.g. `genre_vit.files.save_figure_atomic`).
"""

from functools import lru_cache

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import hsv_to_rgb, to_hex
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont
from matplotlib.ft2font import FT2Font
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib.transforms import ScaledTranslation

from .audio import format_duration
from .results import GenreAnalysis

GENRE_COLORS = (
    "#332288",  # blues: indigo
    "#99DDFF",  # classical: light blue
    "#F0E442",  # country: yellow
    "#AA4499",  # disco: purple
    "#4D4D4D",  # hiphop: dark grey
    "#117733",  # jazz: green
    "#000000",  # metal: black
    "#FFAABB",  # pop: pink
    "#999933",  # reggae: olive
    "#EE6677",  # rock: red
)
"""One colour per label id, the same in every plot and on the page. Chosen from Paul Tol's and Okabe & Ito's
colour-blind-safe sets so that every pair stays apart (CIELAB distance above 20) with normal vision and under
simulated protanopia, deuteranopia and tritanopia (tested in tests/test_plotting.py)."""


def genre_color(index: int) -> str:
    """The colour of label id `index`: `GENRE_COLORS` for the first ten; a model with more labels gets further
    colours, each different from every other, with hues spaced by the golden angle and alternating lightness."""
    if index < len(GENRE_COLORS):
        return GENRE_COLORS[index]
    extra = index - len(GENRE_COLORS)
    hue = (0.08 + extra * 0.6180339887498949) % 1.0
    value = (0.85, 0.6, 0.4)[extra % 3]
    return to_hex(hsv_to_rgb((hue, 0.55 + 0.15 * (extra // 3 % 3), value))).upper()


def text_color_on(background: str) -> str:
    """Black or white, whichever reads better on `background` (`#rrggbb`), by relative luminance."""
    red, green, blue = (int(background[i : i + 2], 16) / 255 for i in (1, 3, 5))
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (red, green, blue)]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "#000000" if luminance > 0.18 else "#FFFFFF"


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


def _fixed_margins(figure: Figure, left: float, right: float, top: float, bottom: float) -> dict[str, float]:
    """Subplot margins given in inches, as the figure fractions `subplots_adjust` takes. Why fixed margins, sized
    for the labels a figure draws: matplotlib's constrained layout finds them too, but by drawing the whole figure
    once more, which was half of the time the app spent on each plot."""
    width, height = figure.get_size_inches()
    return {"left": left / width, "right": 1 - right / width, "top": 1 - top / height, "bottom": bottom / height}


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
    colors = [genre_color(result.genres.index(genre)) for genre in names]
    bars = ax.barh(names, values, color=colors)
    ax.bar_label(bars, labels=[f"{value:.0%}" for value in values], padding=3, fontsize=8)
    ax.set_xlim(0, 1.1)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.0%}"))
    ax.set_xlabel("mean probability over the song")
    _set_title(ax, "Genre" + (f" — {result.source}" if result.source else ""))
    return ax.figure


TIMELINE_FONT_SIZE = 11
"""Points; the timeline and the explanation are read on phones too."""


def _time_axis(ax: Axes, duration: float) -> None:
    ax.set_xlim(0, duration)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 3, 5, 6, 10], integer=True))  # whole seconds
    ax.xaxis.set_major_formatter(FuncFormatter(lambda seconds, _: format_duration(max(seconds, 0.0))))


def _text_width_points(text: str, fontsize: float) -> float:
    """The width of `text` drawn in the default font at `fontsize` points, in points."""
    from matplotlib.textpath import TextToPath

    width, _, _ = TextToPath().get_text_width_height_descent(text, FontProperties(size=fontsize), ismath=False)
    return width


def _fitting_text(choices, width_points: float, fontsize: float) -> str:
    """The first of `choices` (longest first) that fits in `width_points` with a little room, or "" for none."""
    for text in choices:
        if _text_width_points(text, fontsize) + 4.0 <= width_points:
            return text
    return ""


def _draw_segments(ax: Axes, spans, labels, result: GenreAnalysis, rows: tuple[float, float], texts=None) -> None:
    """Coloured cells over the `(start, end)` `spans` (seconds) in the genre colours of `labels`, spanning the data
    heights `rows` `(bottom, top)` of `ax`, with optional texts inside; time in no span stays blank (a gap).

    `texts`: for each span, its label's forms from the longest to the shortest (e.g. `("rock 72%", "rock")`): a
    cell shows the longest that fits inside it, or none, so that no two labels overlap (a list beside the chart
    names every section)."""
    colors = [genre_color(result.genres.index(label)) for label in labels]
    bottom, top = rows
    # One collection for all the cells: a patch per cell (axvspan) cost a fifth of the timeline's time (drawn and
    # encoded) on a 3-minute song's 89 windows.
    ax.broken_barh(
        [(start, end - start) for start, end in spans],
        (bottom, top - bottom),
        facecolors=colors,
        linewidth=0,
    )
    left, right = ax.get_xlim()
    points_per_second = ax.bbox.width * 72 / ax.figure.dpi / (right - left)
    for (start, end), color, choices in zip(spans, colors, texts or ()):
        text = _fitting_text(choices, (end - start) * points_per_second, TIMELINE_FONT_SIZE)
        if not text:
            continue
        ax.text(
            (start + end) / 2,
            (bottom + top) / 2,
            text,
            ha="center",
            va="center",
            fontsize=TIMELINE_FONT_SIZE,
            color=text_color_on(color),
            clip_on=True,
        )


# The timeline's bands, in the data heights of its one axes: the probabilities fill 0 to 1 and the other bands sit
# above and below them. One axes instead of four sharing the time axis: building and drawing each axes' ticks and
# spines was most of the figure's cost, which the app pays on every request.
_SECTIONS_ROWS = (1.15, 1.31)
_TOP_ROWS = (1.04, 1.11)
_SPECTROGRAM_ROWS = (-0.52, -0.06)
_LEGEND_INCHES = 0.82
"""Height of the three-row genre legend below the time axis, in inches."""


def plot_genre_timeline(result: GenreAnalysis, sections=None, figure=None, legend: bool = True) -> Figure:
    """The genre over time, top to bottom on one time axis (m:ss):

    - the sections (`result.sections()` unless given) as labelled bands;
    - each window's top genre, as a strip of cells (each window owns the time up to half-way to its neighbours);
    - the window probabilities as stacked areas (they sum to 100%), at each window's centre;
    - windows without music (silence) as gaps in all three;
    - the song's log-Mel overview (`result.spectrogram`), when the result carries one;
    - a legend of the genres below, in `GENRE_COLORS`.

    All bands share one axes; its data heights: probabilities 0 to 1, the bands above and the overview below.

    Args:
        result: the analysis to draw.
        sections: the sections to draw (`genre_vit.sections.Section`); default `result.sections()`.
        figure: draw into this Figure or SubFigure instead of a new one.
        legend: draw the legend of the genre colours below. The app leaves it out: its genre table beside the plot
            shows the same colours, and the legend was a quarter of the figure's time (drawn and encoded).
    """
    from .sections import window_boundaries

    sections = result.sections() if sections is None else sections
    has_spectrogram = result.spectrogram is not None and result.spectrogram.size > 0
    # Sized for a phone as much as a desktop: a page shows it 380 to 700 px wide, so it is narrow with large text.
    margins = None
    if figure is None:
        legend_inches = _LEGEND_INCHES if legend else 0.0
        figure = Figure(figsize=(4.8, (5.18 if has_spectrogram else 4.18) + legend_inches))
        margins = _fixed_margins(figure, left=0.95, right=0.22, top=0.32, bottom=0.6 + legend_inches)
    ax = figure.subplots(gridspec_kw=margins)
    duration = max(result.duration_seconds, float(result.window_end_times.max()))
    _time_axis(ax, duration)  # before the bands: their labels are fitted to the seconds' width on the page

    _draw_segments(
        ax,
        [(s.start_seconds, s.end_seconds) for s in sections],
        [s.genre for s in sections],
        result,
        _SECTIONS_ROWS,
        texts=[(f"{s.genre} {s.probability:.0%}", s.genre) for s in sections],
    )
    boundaries = window_boundaries(result.window_start_times, result.window_end_times, duration)
    music = np.flatnonzero(result.window_has_music)
    _draw_segments(
        ax,
        [(boundaries[index], boundaries[index + 1]) for index in music],
        [result.window_top_genres[index] for index in music],
        result,
        _TOP_ROWS,
    )

    centres = (result.window_start_times + result.window_end_times) / 2
    times = np.concatenate([[0.0], centres, [duration]])
    # NaN where a window holds no music: the stacked areas leave a gap there
    probabilities = np.where(result.window_has_music[:, None], result.window_probabilities, np.nan)
    stacked = np.vstack([probabilities[:1], probabilities, probabilities[-1:]]).T
    ax.stackplot(
        times,
        stacked,
        colors=[genre_color(i) for i in range(len(result.genres))],
        labels=result.genres,
        linewidth=0.3,
        edgecolor="white",
    )
    bottom = _SPECTROGRAM_ROWS[0] if has_spectrogram else 0.0
    if has_spectrogram:
        frames = result.spectrogram.shape[1]
        ax.imshow(
            result.spectrogram.astype(np.float32),
            origin="lower",
            aspect="auto",
            cmap="gray_r",
            extent=(0, frames / result.spectrogram_frames_per_second, *_SPECTROGRAM_ROWS),
            interpolation="nearest",
        )
    ax.set_ylim(bottom, _SECTIONS_ROWS[1])
    ax.set_yticks(np.linspace(0.0, 1.0, 6))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.0%}"))
    ax.tick_params(labelsize=TIMELINE_FONT_SIZE)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.spines["left"].set_bounds(0.0, 1.0)
    ax.set_ylabel("probability", fontsize=TIMELINE_FONT_SIZE)
    # Centred on the probabilities, a fixed distance left of the axes (beside "100%"), whatever the figure's width.
    ax.yaxis.set_label_coords(
        0.0,
        (0.5 - bottom) / (_SECTIONS_ROWS[1] - bottom),
        transform=ax.transAxes + ScaledTranslation(-0.62, 0.0, figure.dpi_scale_trans),
    )
    band_labels = [("sections", _SECTIONS_ROWS), ("top", _TOP_ROWS)]
    if has_spectrogram:
        band_labels.append(("log-Mel", _SPECTROGRAM_ROWS))
    for label, (low, high) in band_labels:
        ax.text(
            -0.02,
            (low + high) / 2,
            label,
            transform=ax.get_yaxis_transform(),
            ha="right",
            va="center",
            fontsize=TIMELINE_FONT_SIZE,
        )
    _time_axis(ax, duration)
    ax.set_xlabel("time (m:ss)", fontsize=TIMELINE_FONT_SIZE)
    # The figure is narrow (a phone's width): a long file name is cut to what fits beside the title.
    source = result.source if len(result.source or "") <= 26 else result.source[:25] + "…"
    title = "Genre over time" + (f" — {source}" if source else "")
    ax.set_title(renderable_text(title, ax.title.get_fontproperties()), fontsize=TIMELINE_FONT_SIZE + 1)
    if not legend:
        return figure
    handles, labels = ax.get_legend_handles_labels()
    figure.legend(
        handles,
        labels,
        loc="lower center" if margins else "outside lower center",
        ncols=4,
        fontsize=TIMELINE_FONT_SIZE,
        frameon=False,
        handlelength=1.0,
        columnspacing=0.8,
        handletextpad=0.4,
    )
    return figure


def plot_genre_report(result: GenreAnalysis) -> Figure:
    """The bars and the timeline side by side in one figure (what the CLI's `--plot` writes)."""
    figure = Figure(figsize=(14.0, 5.6), layout="constrained")
    bars_figure, timeline_figure = figure.subfigures(1, 2, width_ratios=[1, 2.2])
    plot_genre_bars(result, ax=bars_figure.subplots())
    plot_genre_timeline(result, figure=timeline_figure)
    return figure


def plot_window_explanation(explanation, figure=None) -> Figure:
    """A window's log-Mel image with its attention-rollout relevance laid over it (`genre_vit.explain`); pixels
    beyond the last whole patch, which the model does not see, are left uncoloured.

    Args:
        explanation: a `genre_vit.explain.WindowExplanation`.
        figure: draw into this Figure or SubFigure instead of a new one.
    """
    margins = None
    if figure is None:
        figure = Figure(figsize=(4.8, 4.4))
        margins = _fixed_margins(figure, left=0.4, right=0.45, top=0.6, bottom=0.55)
    ax = figure.subplots(gridspec_kw=margins)
    start, seconds = explanation.start_seconds, explanation.window_seconds
    extent = (start, start + seconds, 0, explanation.image.shape[0])
    ax.imshow(explanation.image, origin="lower", aspect="auto", cmap="gray_r", extent=extent)
    seen = np.zeros(explanation.image.shape, dtype=bool)
    rows, columns = (n * explanation.patch_size for n in explanation.relevance.shape)
    seen[:rows, :columns] = True
    heat = ax.imshow(
        np.ma.masked_where(~seen, explanation.relevance_image()),
        origin="lower",
        aspect="auto",
        cmap="inferno",
        alpha=0.55,
        extent=extent,
    )
    colorbar = figure.colorbar(heat, ax=ax, shrink=0.9)
    colorbar.set_label("share of attention", fontsize=TIMELINE_FONT_SIZE)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: format_duration(max(value, 0.0))))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    ax.set_xlabel("time (m:ss)", fontsize=TIMELINE_FONT_SIZE)
    ax.set_ylabel("Mel bands, low to high", fontsize=TIMELINE_FONT_SIZE)
    ax.set_yticks([])
    ax.tick_params(labelsize=TIMELINE_FONT_SIZE)
    probability = float(np.max(explanation.probabilities))
    ax.set_title(
        f"Why {explanation.top_genre} ({probability:.0%}) at {format_duration(start)}-"
        f"{format_duration(start + seconds)}:\nwhere the model looked",
        fontsize=TIMELINE_FONT_SIZE,
    )
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
            ax.plot(false_positive, true_positive, color=genre_color(index), label=f"{name} (AUC {auc:.3f})")
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
    "genre_color",
    "plot_confusion_matrix",
    "plot_genre_bars",
    "plot_genre_report",
    "plot_genre_timeline",
    "plot_roc_curves",
    "plot_window_explanation",
    "renderable_text",
    "text_color_on",
]
