"""The result of analysing a song, and its serialisation (JSON), written atomically."""

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from .audio import format_duration
from .files import write_text_atomic
from .sections import DEFAULT_MIN_SECTION_SECONDS, DEFAULT_SWITCH_PENALTY, Section, find_sections

CLEAR_LEAD_MIN_PROBABILITY = 0.45
"""The top genre is called clearly ahead only if its mean probability is at least this..."""

CLEAR_LEAD_MIN_MARGIN = 0.15
"""...and at least this much above the second genre's; otherwise the answer is "uncertain: A or B"."""

ANSWER_GENRE, ANSWER_UNCERTAIN, ANSWER_NONE_OF_THESE = "genre", "uncertain", "none_of_these"
"""The three kinds of answer (`GenreAnalysis.answer`): a genre, said with confidence; "uncertain: A or B"; and
"none of these genres", for music that lies far from every genre the model learnt (`none_of_these_distance`)."""

_NUMBER_WORDS = (
    "no",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
)


def mean_window_probabilities(
    window_probabilities: np.ndarray, window_has_music: np.ndarray | None = None
) -> np.ndarray:
    """A song's genre probabilities `(C,)`: the mean of its windows' `(T, C)` (every window counts the same), over
    the windows that hold music (`window_has_music`, `(T,)` bool; all of them when None or when none does).

    The one definition of a song's (or a track's) score, used by the analysis and by evaluation. The model's
    whole-song forward computes the same mean in torch (it cannot import this module: remote code).
    """
    probabilities = np.asarray(window_probabilities)
    if window_has_music is not None and np.any(window_has_music):
        probabilities = probabilities[np.asarray(window_has_music, dtype=bool)]
    return probabilities.mean(axis=0)


@dataclass(frozen=True, eq=False)
class GenreAnalysis:
    """The result of analysing one song.

    Attributes:
        genres: genre names in label-id order, `(C,)`.
        window_start_times: `(T,)` window start times, in seconds.
        window_end_times: `(T,)` window end times, in seconds (the last one is clipped to the song's end).
        window_probabilities: `(T, C)` genre probabilities of each window; rows sum to 1.
        duration_seconds: the song's length, in seconds.
        source: the file name, if the audio came from a file.
        notes: remarks for the user about the input, e.g. that the file was cut short and only part of it decoded.
        window_has_music: `(T,)` bool, False for windows without music (digital silence or near it: see
            `genre_vit.spectrogram.MUSIC_MIN_RMS_DBFS`); those are left out of the mean and the sections, and drawn
            as gaps. None: every window holds music.
        spectrogram: an optional coarse log-Mel overview of the song for drawing, `(bands, frames)` in [0, 1], band 0
            the lowest (`GenreViTFeatureExtractor.song_spectrogram`); not written to JSON or CSV.
        spectrogram_frames_per_second: its time resolution, in frames per second.
        window_genre_distances: `(T,)` each window's distance to the nearest genre the model learnt
            (`GenreViTGenreDistance`: about 1 for a window as typical as the training windows), or None for a model
            without a genre distance.
        none_of_these_distance: the model's threshold (`GenreViTConfig.none_of_these_distance`): a song whose music
            windows lie on average farther than this is answered "none of these genres"; None never answers so.
    """

    genres: tuple[str, ...]
    window_start_times: np.ndarray
    window_end_times: np.ndarray
    window_probabilities: np.ndarray
    duration_seconds: float
    source: str | None = None
    notes: tuple[str, ...] = ()
    spectrogram: np.ndarray | None = field(default=None, repr=False, compare=False)
    spectrogram_frames_per_second: float = 10.0
    window_has_music: np.ndarray | None = None
    window_genre_distances: np.ndarray | None = None
    none_of_these_distance: float | None = None
    mean_probabilities: np.ndarray = field(init=False)

    def __post_init__(self):
        if self.window_has_music is None:
            object.__setattr__(self, "window_has_music", np.ones(len(self.window_probabilities), dtype=bool))
        object.__setattr__(
            self, "mean_probabilities", mean_window_probabilities(self.window_probabilities, self.window_has_music)
        )

    def __eq__(self, other: object) -> bool:
        """Equal when every compared field is: arrays element by element, the rest with `==`. (The dataclass's own
        `__eq__` compares tuples of fields, which raises on arrays.) Not hashable, since the arrays are mutable."""
        if not isinstance(other, GenreAnalysis):
            return NotImplemented
        for item in fields(self):
            if not item.compare:
                continue
            mine, theirs = getattr(self, item.name), getattr(other, item.name)
            if isinstance(mine, np.ndarray) or isinstance(theirs, np.ndarray):
                if not np.array_equal(mine, theirs):
                    return False
            elif mine != theirs:
                return False
        return True

    @property
    def num_windows(self) -> int:
        return int(self.window_probabilities.shape[0])

    @property
    def num_windows_without_music(self) -> int:
        return int((~self.window_has_music).sum())

    @property
    def top_genre(self) -> str:
        return self.genres[int(np.argmax(self.mean_probabilities))]

    @property
    def confidence(self) -> float:
        """Mean probability of the top genre."""
        return float(self.mean_probabilities.max())

    @property
    def most_confident_window(self) -> int:
        """Index of the window with music whose top genre has the highest probability."""
        confidence = np.where(self.window_has_music, self.window_probabilities.max(axis=1), -np.inf)
        return int(confidence.argmax())

    @property
    def window_top_genres(self) -> list[str]:
        return [self.genres[index] for index in self.window_probabilities.argmax(axis=1)]

    @property
    def is_uncertain(self) -> bool:
        """Whether the top genre is not clearly ahead: its mean probability is below `CLEAR_LEAD_MIN_PROBABILITY`
        or its lead over the second genre is below `CLEAR_LEAD_MIN_MARGIN`."""
        return not bool(has_clear_lead(self.mean_probabilities[None, :])[0])

    @property
    def genre_distance(self) -> float | None:
        """The song's distance to the nearest genre the model learnt: the mean of its music windows' distances (None
        for a model without a genre distance)."""
        if self.window_genre_distances is None:
            return None
        # the same windows as the song's probabilities: those with music
        return float(mean_window_probabilities(self.window_genre_distances, self.window_has_music))

    @property
    def fits_none_of_these(self) -> bool:
        """Whether the song lies farther from every learnt genre than the model's `none_of_these_distance`."""
        distance = self.genre_distance
        return (
            distance is not None and self.none_of_these_distance is not None and distance > self.none_of_these_distance
        )

    @property
    def answer(self) -> str:
        """`ANSWER_NONE_OF_THESE` when the song fits none of the genres, else `ANSWER_UNCERTAIN` when the top genre
        is not clearly ahead, else `ANSWER_GENRE`: the answer is said with confidence."""
        if self.fits_none_of_these:
            return ANSWER_NONE_OF_THESE
        return ANSWER_UNCERTAIN if self.is_uncertain else ANSWER_GENRE

    @property
    def is_confident(self) -> bool:
        return self.answer == ANSWER_GENRE

    def changing_genres(self) -> list[str]:
        """The genres of the song's sections in order of first appearance, where the top genre is not clearly ahead
        over the whole song but its sections differ (a medley, a song that changes style); [] otherwise."""
        if self.answer != ANSWER_UNCERTAIN:
            return []
        genres = list(dict.fromkeys(section.genre for section in self.sections()))
        return genres if len(genres) > 1 else []

    @property
    def verdict(self) -> str:
        """The answer in words: `"rock"`; `"uncertain: rock or metal"` when rock is not clearly ahead; `"changes
        genre: rock, jazz, metal"` when no genre is clearly ahead over the song but its sections differ; or `"none of
        the ten genres fits (closest: rock)"` when the song fits none of them."""
        ranked = self.ranked()
        if self.answer == ANSWER_NONE_OF_THESE:
            count = len(self.genres)
            words = _NUMBER_WORDS[count] if count < len(_NUMBER_WORDS) else str(count)
            return f"none of the {words} genres fits (closest: {ranked[0][0]})"
        changing = self.changing_genres()
        if changing:
            shown = ", ".join(changing[:3]) + (f" and {len(changing) - 3} more" if len(changing) > 3 else "")
            return f"changes genre: {shown}"
        if self.answer == ANSWER_UNCERTAIN and len(ranked) > 1:
            return f"uncertain: {ranked[0][0]} or {ranked[1][0]}"
        return ranked[0][0]

    def answer_reason(self) -> str:
        """Why the answer is not a confident genre, in one sentence for the user ("" when it is one): the CLI and the
        page say it the same way."""
        if self.answer == ANSWER_NONE_OF_THESE:
            return (
                "This music sounds unlike every genre the model knows: it is further from each of them than the "
                "songs the model learnt them from."
            )
        if self.changing_genres():
            return "No one genre holds over the whole song: its sections, listed with their times, differ."
        if self.answer == ANSWER_UNCERTAIN:
            return (
                f"Uncertain: the top genre is not clearly ahead (it needs a mean probability of at least "
                f"{CLEAR_LEAD_MIN_PROBABILITY:.0%} and a lead of {CLEAR_LEAD_MIN_MARGIN:.0%} over the second)."
            )
        return ""

    def sections(
        self, switch_penalty: float = DEFAULT_SWITCH_PENALTY, min_section_seconds: float = DEFAULT_MIN_SECTION_SECONDS
    ) -> list[Section]:
        """Contiguous stretches where the smoothed top genre holds (`genre_vit.sections.find_sections`), found in
        each run of windows with music; the time of windows without music is in no section (a gap)."""
        return find_sections(
            self.window_probabilities,
            self.window_start_times,
            self.window_end_times,
            self.duration_seconds,
            self.genres,
            switch_penalty=switch_penalty,
            min_section_seconds=min_section_seconds,
            window_has_music=self.window_has_music,
        )

    def ranked(self) -> list[tuple[str, float]]:
        """(genre, mean probability) pairs, most likely first."""
        order = np.argsort(-self.mean_probabilities, kind="stable")
        return [(self.genres[index], float(self.mean_probabilities[index])) for index in order]

    def summary(self) -> str:
        """One line, e.g. `"rock, 78% — 51 windows over 3:24"` or
        `"uncertain: rock or metal (34%, 29%) — 15 windows over 0:30"`."""
        windows = "1 window" if self.num_windows == 1 else f"{self.num_windows} windows"
        if self.num_windows_without_music:
            windows += f" ({self.num_windows_without_music} without music)"
        ranked = self.ranked()
        if self.answer == ANSWER_NONE_OF_THESE:
            answer = f"{self.verdict}, {self.confidence:.0%}"
        elif self.verdict == self.top_genre:
            answer = f"{self.top_genre}, {self.confidence:.0%}"
        elif self.changing_genres():
            answer = f"{self.verdict} ({len(self.sections())} sections)"
        else:
            answer = f"{self.verdict} ({ranked[0][1]:.0%}, {ranked[1][1]:.0%})"
        return f"{answer} — {windows} over {format_duration(self.duration_seconds)}"

    def section_lines(self, sections: list[Section] | None = None) -> list[str]:
        """`"0:00-1:12 rock (78%)"` per section."""
        return [
            f"{format_duration(s.start_seconds)}-{format_duration(s.end_seconds)} {s.genre} ({s.probability:.0%})"
            for s in (self.sections() if sections is None else sections)
        ]

    def to_dict(self) -> dict:
        """A JSON-ready dict of everything: the ranking, the means and every window."""
        return {
            "source": self.source,
            "duration_seconds": float(self.duration_seconds),
            "top_genre": self.top_genre,
            "confidence": self.confidence,
            "verdict": self.verdict,
            "answer": self.answer,
            "genre_distance": self.genre_distance,
            "none_of_these_distance": self.none_of_these_distance,
            "genres": list(self.genres),
            "notes": list(self.notes),
            "mean_probabilities": {g: float(p) for g, p in zip(self.genres, self.mean_probabilities)},
            "sections": [section.to_dict() for section in self.sections()],
            "section_rule": {
                "switch_penalty": DEFAULT_SWITCH_PENALTY,
                "min_section_seconds": DEFAULT_MIN_SECTION_SECONDS,
            },
            "windows_without_music": self.num_windows_without_music,
            "windows": [
                {
                    "start_seconds": float(start),
                    "end_seconds": float(end),
                    "has_music": bool(has_music),
                    "top_genre": self.genres[int(np.argmax(probabilities))],
                    "genre_distance": distance,
                    "probabilities": {g: float(p) for g, p in zip(self.genres, probabilities)},
                }
                for start, end, has_music, distance, probabilities in zip(
                    self.window_start_times,
                    self.window_end_times,
                    self.window_has_music,
                    self._window_distance_values(),
                    self.window_probabilities,
                )
            ],
        }

    def _window_distance_values(self) -> list[float | None]:
        if self.window_genre_distances is None:
            return [None] * self.num_windows
        return [float(d) for d in self.window_genre_distances]

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def save_json(self, path: str | os.PathLike) -> Path:
        return write_text_atomic(path, self.to_json())


def has_clear_lead(probabilities: np.ndarray) -> np.ndarray:
    """`(n,)` bool for `(n, C)` answers: whether each top genre is clearly ahead, i.e. at least
    `CLEAR_LEAD_MIN_PROBABILITY` and at least `CLEAR_LEAD_MIN_MARGIN` above the second (else "uncertain")."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    ranked = -np.sort(-probabilities, axis=1)
    second = ranked[:, 1] if probabilities.shape[1] > 1 else np.zeros(len(ranked))
    return (ranked[:, 0] >= CLEAR_LEAD_MIN_PROBABILITY) & (ranked[:, 0] - second >= CLEAR_LEAD_MIN_MARGIN)


__all__ = [
    "ANSWER_GENRE",
    "ANSWER_NONE_OF_THESE",
    "ANSWER_UNCERTAIN",
    "CLEAR_LEAD_MIN_MARGIN",
    "CLEAR_LEAD_MIN_PROBABILITY",
    "GenreAnalysis",
    "has_clear_lead",
    "mean_window_probabilities",
]
