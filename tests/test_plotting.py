"""The genre palette stays distinguishable for colour-blind viewers (simulated), and texts stay readable on it."""

import itertools

import numpy as np
import pytest

from genre_vit.plotting import GENRE_COLORS, text_color_on

# Machado, Oliveira & Fernandes (2009), full severity, on linear RGB
SIMULATIONS = {
    "normal vision": np.eye(3),
    "protanopia": np.array(
        [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]]
    ),
    "deuteranopia": np.array(
        [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]]
    ),
    "tritanopia": np.array(
        [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]]
    ),
}


def linear_rgb(colors):
    srgb = np.array([[int(c[i : i + 2], 16) / 255 for i in (1, 3, 5)] for c in colors])
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def cielab(linear):
    xyz = linear @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


@pytest.mark.parametrize("vision", SIMULATIONS)
def test_every_pair_of_genre_colours_stays_apart(vision):
    lab = cielab(np.clip(linear_rgb(GENRE_COLORS) @ SIMULATIONS[vision].T, 0, 1))
    closest = min(np.linalg.norm(lab[i] - lab[j]) for i, j in itertools.combinations(range(len(lab)), 2))
    assert len(set(GENRE_COLORS)) == 10 and closest > 20  # CIELAB distance; ~2.3 is a just-noticeable difference


def test_text_colour_follows_the_background():
    assert text_color_on("#000000") == "#FFFFFF" and text_color_on("#F0E442") == "#000000"
    for color in GENRE_COLORS:
        assert text_color_on(color) in ("#000000", "#FFFFFF")


def test_a_model_with_more_than_ten_labels_gets_a_distinct_colour_for_each():
    from genre_vit.plotting import genre_color

    colours = [genre_color(index) for index in range(40)]
    assert colours[:10] == list(GENRE_COLORS)
    assert len(set(colours)) == 40


def test_the_section_labels_of_a_ten_genre_medley_never_overlap():
    """A 5-minute medley of ten 30-s sections: each band is labelled only where its text fits inside it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from genre_vit import GTZAN_GENRES, GenreAnalysis
    from genre_vit.plotting import plot_genre_timeline

    windows_per_section = 15
    genres = [index for index in range(10) for _ in range(windows_per_section)]
    probabilities = np.full((len(genres), 10), 0.02)
    probabilities[np.arange(len(genres)), genres] = 0.82
    starts = np.arange(len(genres)) * 2.0
    result = GenreAnalysis(GTZAN_GENRES, starts, starts + 4.0, probabilities, 300.0)
    assert len(result.sections()) == 10
    figure = plot_genre_timeline(result)
    renderer = FigureCanvasAgg(figure).get_renderer()
    ax = figure.axes[0]
    labels = [text for text in ax.texts if text.get_text().split(" ")[0] in GTZAN_GENRES]
    assert labels, "no section is labelled"
    boxes = [text.get_window_extent(renderer) for text in labels]
    for first, second in itertools.combinations(boxes, 2):
        assert first.x1 <= second.x0 or second.x1 <= first.x0, "two section labels overlap"
    to_pixels = ax.transData.transform
    for text, box in zip(labels, boxes):
        section = next(s for s in result.sections() if s.start_seconds <= text.get_position()[0] <= s.end_seconds)
        left, right = to_pixels([(section.start_seconds, 0)])[0][0], to_pixels([(section.end_seconds, 0)])[0][0]
        assert left <= box.x0 and box.x1 <= right  # inside its own band
