"""The cross-dataset set: Emotify's one-minute excerpts (music from Magnatune), in genre folders of numbered files.

Its classical, pop and rock excerpts are GTZAN genres recorded by other artists in other studios; its electronic
excerpts are none of the ten genres, so an honest model should not be sure of them. The excerpts are split by their
numeric file name: the **validation half** (odd numbers) makes every choice (probe strengths, prior weights,
temperature, thresholds), the **test half** (even numbers) is reported and never used for a choice. Their labels
are never fitted, and their audio is never training material.
"""

from dataclasses import dataclass
from pathlib import Path

SCORED_GENRES = ("classical", "pop", "rock")
"""The folders of GTZAN genres: scored for accuracy."""

OUT_OF_GENRE = "electronic"
"""The folder of no GTZAN genre: counted for how often it gets a confident genre."""

HALVES = ("validation", "test")


def half_of(path: str | Path) -> str:
    """ "validation" for an excerpt with an odd numeric name, "test" for an even one, "" for any other name."""
    stem = Path(path).stem
    if not stem.isdigit():
        return ""
    return "validation" if int(stem) % 2 else "test"


@dataclass(frozen=True)
class EmotifyTrack:
    """An excerpt: its file, its key in the teacher targets files, its folder (genre) and its half."""

    path: Path
    key: str
    genre: str
    half: str


def emotify_tracks(root: str | Path, half: str | None = None) -> list[EmotifyTrack]:
    """The numbered excerpts in `root`'s genre folders (of one `half` where given), keyed as the teacher scripts key
    them (`data.load_tracks_from_folder`: the file name, with the folder as prefix where names repeat across
    folders). Files with other names belong to neither half and are left out."""
    from .data import load_tracks_from_folder

    tracks = load_tracks_from_folder(root)
    found = [
        EmotifyTrack(path=path, key=key, genre=path.parent.name, half=half_of(path))
        for path, key in zip(map(Path, tracks["audio_path"]), tracks["track_id"])
        if half_of(path)
    ]
    return [track for track in found if half is None or track.half == half]


__all__ = ["HALVES", "OUT_OF_GENRE", "SCORED_GENRES", "EmotifyTrack", "emotify_tracks", "half_of"]
