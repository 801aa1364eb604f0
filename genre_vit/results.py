"""The result of analysing a song, and its serialisation (JSON, CSV), written atomically."""

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio import format_duration
from .files import write_text_atomic


def mean_window_probabilities(window_probabilities: np.ndarray) -> np.ndarray:
    """A song's genre probabilities `(C,)`: the mean of its windows' `(T, C)` (every window counts the same).

    The one definition of a song's (or a track's) score, used by the analysis and by evaluation. The model's
    whole-song forward computes the same mean in torch (it cannot import this module: remote code).
    """
    return np.asarray(window_probabilities).mean(axis=0)


@dataclass(frozen=True)
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
    """

    genres: tuple[str, ...]
    window_start_times: np.ndarray
    window_end_times: np.ndarray
    window_probabilities: np.ndarray
    duration_seconds: float
    source: str | None = None
    notes: tuple[str, ...] = ()
    mean_probabilities: np.ndarray = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "mean_probabilities", mean_window_probabilities(self.window_probabilities))

    @property
    def num_windows(self) -> int:
        return int(self.window_probabilities.shape[0])

    @property
    def top_genre(self) -> str:
        return self.genres[int(np.argmax(self.mean_probabilities))]

    @property
    def confidence(self) -> float:
        """Mean probability of the top genre."""
        return float(self.mean_probabilities.max())

    @property
    def window_top_genres(self) -> list[str]:
        return [self.genres[index] for index in self.window_probabilities.argmax(axis=1)]

    def ranked(self) -> list[tuple[str, float]]:
        """(genre, mean probability) pairs, most likely first."""
        order = np.argsort(-self.mean_probabilities, kind="stable")
        return [(self.genres[index], float(self.mean_probabilities[index])) for index in order]

    def summary(self) -> str:
        """One line, e.g. `"rock, 78% — 51 windows over 3:24"`."""
        windows = "1 window" if self.num_windows == 1 else f"{self.num_windows} windows"
        return f"{self.top_genre}, {self.confidence:.0%} — {windows} over {format_duration(self.duration_seconds)}"

    def to_dict(self) -> dict:
        """A JSON-ready dict of everything: the ranking, the means and every window."""
        return {
            "source": self.source,
            "duration_seconds": float(self.duration_seconds),
            "top_genre": self.top_genre,
            "confidence": self.confidence,
            "genres": list(self.genres),
            "notes": list(self.notes),
            "mean_probabilities": {g: float(p) for g, p in zip(self.genres, self.mean_probabilities)},
            "windows": [
                {
                    "start_seconds": float(start),
                    "end_seconds": float(end),
                    "top_genre": self.genres[int(np.argmax(probabilities))],
                    "probabilities": {g: float(p) for g, p in zip(self.genres, probabilities)},
                }
                for start, end, probabilities in zip(
                    self.window_start_times, self.window_end_times, self.window_probabilities
                )
            ],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_csv(self) -> str:
        """One row per window: start, end, top genre, then one probability column per genre."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["start_seconds", "end_seconds", "top_genre", *self.genres])
        for start, end, top, probabilities in zip(
            self.window_start_times, self.window_end_times, self.window_top_genres, self.window_probabilities
        ):
            writer.writerow([f"{start:.3f}", f"{end:.3f}", top, *(f"{p:.6f}" for p in probabilities)])
        return buffer.getvalue()

    def save_json(self, path: str | os.PathLike) -> Path:
        return write_text_atomic(path, self.to_json())

    def save_csv(self, path: str | os.PathLike) -> Path:
        return write_text_atomic(path, self.to_csv())


__all__ = ["GenreAnalysis", "mean_window_probabilities"]
