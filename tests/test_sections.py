"""Sections (`genre_vit.sections`), tested on hand-made probability arrays, and the honest-confidence rule."""

import itertools

import numpy as np
import pytest

from genre_vit import GTZAN_GENRES, GenreAnalysis
from genre_vit.sections import find_sections, smoothed_genre_path

HOP, WINDOW = 2.0, 4.0


def song(labels, strength=0.6, genres=GTZAN_GENRES):
    """Window probabilities whose top genre per window is `labels[t]` (with `strength`), the rest spread evenly."""
    probabilities = np.full((len(labels), len(genres)), (1 - strength) / (len(genres) - 1))
    probabilities[np.arange(len(labels)), labels] = strength
    starts = np.arange(len(labels)) * HOP
    ends = starts + WINDOW
    return probabilities, starts, ends, float(ends[-1])


def sections_of(labels, **kwargs):
    probabilities, starts, ends, duration = song(labels)
    return find_sections(probabilities, starts, ends, duration, GTZAN_GENRES, **kwargs)


def test_a_steady_song_is_one_section():
    (section,) = sections_of([9] * 30)
    assert (section.genre, section.start_seconds, section.end_seconds) == ("rock", 0.0, 62.0)
    assert section.probability == pytest.approx(0.6) and (section.first_window, section.last_window) == (0, 29)


def test_two_halves_are_two_sections_that_meet_between_the_windows():
    first, second = sections_of([9] * 15 + [5] * 15)
    assert (first.genre, second.genre) == ("rock", "jazz")
    # window 14 is centred at 30 s and window 15 at 32 s: the boundary lies half-way, at 31 s
    assert first.end_seconds == second.start_seconds == 31.0
    assert (first.start_seconds, second.end_seconds) == (0.0, 62.0)


def test_a_single_outlier_window_does_not_split_a_section():
    assert [s.genre for s in sections_of([9] * 10 + [6] + [9] * 10)] == ["rock"]
    # ... even with no minimum length: the switching penalty alone keeps it
    assert [s.genre for s in sections_of([9] * 10 + [6] + [9] * 10, min_section_seconds=0)] == ["rock"]


def test_without_smoothing_every_window_counts():
    labels = [9] * 10 + [6] + [9] * 10
    path = smoothed_genre_path(song(labels)[0], switch_penalty=0.0)
    assert path.tolist() == labels
    assert [s.genre for s in sections_of(labels, switch_penalty=0.0, min_section_seconds=0)] == [
        "rock",
        "metal",
        "rock",
    ]


def test_short_sections_merge_into_the_likelier_neighbour():
    # a 3-window stretch (6 s) of metal, a sustained change, is kept with a 4-s minimum and merged with a 10-s one
    labels = [9] * 10 + [6] * 3 + [5] * 10
    assert [s.genre for s in sections_of(labels, min_section_seconds=4.0)] == ["rock", "metal", "jazz"]
    merged = sections_of(labels, min_section_seconds=10.0)
    assert len(merged) == 2 and merged[0].end_seconds == merged[1].start_seconds


def test_sections_tile_a_medley():
    labels = [1] * 20 + [9] * 25 + [4] * 12 + [1] * 20
    sections = sections_of(labels)
    assert [s.genre for s in sections] == ["classical", "rock", "hiphop", "classical"]
    assert sections[0].start_seconds == 0 and sections[-1].end_seconds == 2.0 * len(labels) + 2.0
    for before, after in itertools.pairwise(sections):
        assert before.end_seconds == after.start_seconds and before.last_window + 1 == after.first_window


def test_bad_input_is_an_error():
    with pytest.raises(ValueError, match="probabilities"):
        find_sections(np.zeros((0, 10)), np.zeros(0), np.zeros(0), 0.0, GTZAN_GENRES)
    with pytest.raises(ValueError, match="switch_penalty"):
        smoothed_genre_path(np.full((3, 10), 0.1), switch_penalty=-1)


def analysis(mean_row):
    probabilities = np.tile(np.asarray(mean_row, dtype=np.float64), (3, 1))
    return GenreAnalysis(GTZAN_GENRES, np.array([0.0, 2.0, 4.0]), np.array([4.0, 6.0, 8.0]), probabilities, 8.0)


@pytest.mark.parametrize(
    "top, second, verdict",
    [
        (0.70, 0.10, "rock"),  # clearly ahead
        (0.40, 0.10, "uncertain: rock or metal"),  # below 45%
        (0.50, 0.40, "uncertain: rock or metal"),  # lead under 15 points
        (0.45, 0.30, "rock"),  # exactly at both limits
    ],
)
def test_honest_confidence_rule(top, second, verdict):
    row = np.full(10, (1 - top - second) / 8)
    row[9], row[6] = top, second
    result = analysis(row)
    assert result.verdict == verdict and result.is_uncertain == verdict.startswith("uncertain")
    if result.is_uncertain:
        assert result.summary().startswith(f"uncertain: rock or metal ({top:.0%}, {second:.0%}) — 3 windows")
    else:
        assert result.summary().startswith(f"rock, {top:.0%} — 3 windows")


def test_sections_are_in_the_exports():
    import json

    probabilities, starts, ends, duration = song([9] * 15 + [5] * 15)
    result = GenreAnalysis(GTZAN_GENRES, starts, ends, probabilities, duration)
    data = json.loads(result.to_json())
    assert [(s["genre"], s["start_seconds"], s["end_seconds"]) for s in data["sections"]] == [
        ("rock", 0.0, 31.0),
        ("jazz", 31.0, 62.0),
    ]
    assert data["section_rule"] == {"switch_penalty": 3.0, "min_section_seconds": 8.0}
    assert [(s.first_window, s.last_window, s.genre) for s in result.sections()] == [(0, 14, "rock"), (15, 29, "jazz")]
    assert result.section_lines() == ["0:00-0:31 rock (60%)", "0:31-1:02 jazz (60%)"]
