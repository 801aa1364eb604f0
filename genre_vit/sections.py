"""Sections of a song: contiguous stretches where one genre holds, for medleys, DJ mixes and songs that change.

The rule (`find_sections`), documented here because users read its output:

1. **Smoothing by a switching penalty** (a Viterbi pass, as in an HMM with a sticky transition): the genre path
   `g_1..g_T` over the windows maximises `sum_t log p_t(g_t) - switch_penalty * (number of switches)`. A switch
   therefore needs evidence worth more than `switch_penalty` nats summed over the windows that follow it: one odd
   window among steady ones does not split a section, a sustained change does.
2. **Minimum length**: a section shorter than `min_section_seconds` is merged into the neighbour whose genre it is
   most likely under (averaged over its windows), repeatedly, shortest first, until none is left or one remains.
3. **Times**: each window owns the time around its centre, up to half-way to its neighbours' centres (the first
   from 0 s, the last to the song's end), so sections tile the song without overlaps. Windows without music
   (silence) belong to no section: steps 1 and 2 run on each stretch of windows with music, and the time the silent
   windows own is a gap between sections.
4. **Probability**: a section's `probability` is the mean probability of its genre over its windows.
"""

from dataclasses import dataclass

import numpy as np

DEFAULT_SWITCH_PENALTY = 3.0
"""Nats of evidence a genre change must gather (step 1)."""

DEFAULT_MIN_SECTION_SECONDS = 8.0
"""Shortest section kept, in seconds (step 2)."""


@dataclass(frozen=True)
class Section:
    """A stretch of a song with one genre: `start_seconds` to `end_seconds`, its `genre` and the mean
    `probability` of that genre over the section's windows (`first_window` to `last_window`, inclusive)."""

    start_seconds: float
    end_seconds: float
    genre: str
    probability: float
    first_window: int
    last_window: int

    def to_dict(self) -> dict:
        return {
            "start_seconds": float(self.start_seconds),
            "end_seconds": float(self.end_seconds),
            "genre": self.genre,
            "probability": float(self.probability),
            "first_window": int(self.first_window),
            "last_window": int(self.last_window),
        }


def smoothed_genre_path(window_probabilities: np.ndarray, switch_penalty: float) -> np.ndarray:
    """`(T,)` label ids of the Viterbi path (step 1) over `(T, C)` window probabilities."""
    if switch_penalty < 0:
        raise ValueError(f"switch_penalty must be >= 0, got {switch_penalty}.")
    scores = np.log(np.clip(np.asarray(window_probabilities, dtype=np.float64), 1e-12, None))
    count, classes = scores.shape
    best = scores[0].copy()
    came_from = np.zeros((count, classes), dtype=np.int64)
    for t in range(1, count):
        leader = int(best.argmax())
        switch = best[leader] - switch_penalty
        stay_is_better = best >= switch
        came_from[t] = np.where(stay_is_better, np.arange(classes), leader)
        best = np.where(stay_is_better, best, switch) + scores[t]
    path = np.empty(count, dtype=np.int64)
    path[-1] = int(best.argmax())
    for t in range(count - 1, 0, -1):
        path[t - 1] = came_from[t, path[t]]
    return path


def window_boundaries(start_times: np.ndarray, end_times: np.ndarray, duration: float) -> np.ndarray:
    """`(T + 1,)` times in seconds: window t owns `[b[t], b[t + 1])` (step 3); the sections and the timeline's
    per-window strip both use it."""
    centres = (np.asarray(start_times, dtype=np.float64) + np.asarray(end_times, dtype=np.float64)) / 2
    return np.concatenate([[0.0], (centres[1:] + centres[:-1]) / 2, [max(duration, float(centres[-1]))]])


def find_sections(
    window_probabilities: np.ndarray,
    window_start_times: np.ndarray,
    window_end_times: np.ndarray,
    duration_seconds: float,
    genres,
    switch_penalty: float = DEFAULT_SWITCH_PENALTY,
    min_section_seconds: float = DEFAULT_MIN_SECTION_SECONDS,
    window_has_music: np.ndarray | None = None,
) -> list[Section]:
    """Sections of a song from its windows (module docstring).

    Args:
        window_probabilities: `(T, C)` genre probabilities per window (rows sum to 1), T >= 1.
        window_start_times, window_end_times: `(T,)` window times, in seconds.
        duration_seconds: the song's length, in seconds.
        genres: the C genre names, in label-id order.
        switch_penalty: step 1, in nats; 0 follows every window's top genre.
        min_section_seconds: step 2, in seconds; 0 keeps every section.
        window_has_music: `(T,)` bool, False for windows without music, which belong to no section; None: all.
    """
    probabilities = np.asarray(window_probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or len(probabilities) == 0 or probabilities.shape[1] != len(genres):
        raise ValueError(f"Expected (windows, {len(genres)}) probabilities, got shape {probabilities.shape}.")
    boundaries = window_boundaries(window_start_times, window_end_times, duration_seconds)
    has_music = np.ones(len(probabilities), dtype=bool) if window_has_music is None else np.asarray(window_has_music)
    sections = []
    first = 0
    while first < len(probabilities):
        if not has_music[first]:
            first += 1
            continue
        last = first
        while last + 1 < len(probabilities) and has_music[last + 1]:
            last += 1
        sections += _stretch_sections(
            probabilities, boundaries, first, last, genres, switch_penalty, min_section_seconds
        )
        first = last + 1
    return sections


def _stretch_sections(
    all_probabilities: np.ndarray,
    all_boundaries: np.ndarray,
    offset: int,
    last_window: int,
    genres,
    switch_penalty: float,
    min_section_seconds: float,
) -> list[Section]:
    """Steps 1, 2 and 4 on the windows `offset` to `last_window` (inclusive), with the times of step 3."""
    probabilities = all_probabilities[offset : last_window + 1]
    boundaries = all_boundaries[offset : last_window + 2]
    path = smoothed_genre_path(probabilities, switch_penalty)
    # runs of the path as [first, last, label]
    runs = []
    for t, label in enumerate(path):
        if runs and runs[-1][2] == label:
            runs[-1][1] = t
        else:
            runs.append([t, t, int(label)])

    def seconds(run) -> float:
        return boundaries[run[1] + 1] - boundaries[run[0]]

    while len(runs) > 1:
        index = min(range(len(runs)), key=lambda i: (seconds(runs[i]), i))
        if seconds(runs[index]) >= min_section_seconds:
            break
        first, last, _ = runs[index]
        neighbours = [i for i in (index - 1, index + 1) if 0 <= i < len(runs)]
        means = probabilities[first : last + 1].mean(axis=0)
        target = max(neighbours, key=lambda i: means[runs[i][2]])
        runs[target][0], runs[target][1] = min(runs[target][0], first), max(runs[target][1], last)
        del runs[index]
        # neighbours that now carry the same genre become one section
        merged = [runs[0]]
        for run in runs[1:]:
            if run[2] == merged[-1][2]:
                merged[-1][1] = run[1]
            else:
                merged.append(run)
        runs = merged
    return [
        Section(
            start_seconds=float(boundaries[first]),
            end_seconds=float(boundaries[last + 1]),
            genre=genres[label],
            probability=float(probabilities[first : last + 1, label].mean()),
            first_window=offset + first,
            last_window=offset + last,
        )
        for first, last, label in runs
    ]


__all__ = [
    "DEFAULT_MIN_SECTION_SECONDS",
    "DEFAULT_SWITCH_PENALTY",
    "Section",
    "find_sections",
    "smoothed_genre_path",
    "window_boundaries",
]
