"""What the teacher scripts share: finding audio files, naming their tracks, writing targets files atomically and
merging their per-track parts.

numpy and the standard library only: `musicnn_teacher.py` imports it from its own TensorFlow environment, where the
project is not installed.
"""

import os
import tempfile
from pathlib import Path

import numpy as np

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".opus", ".mp3", ".au", ".aiff", ".m4a"}


def save_npz_atomic(path: Path, **arrays) -> None:
    """`np.savez` to `path` through a temporary file beside it: a reader sees the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npz")
    os.close(descriptor)
    try:
        np.savez(temporary, **arrays)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def audio_files(roots: list[str]) -> list[Path]:
    """The audio files under each of `roots` (searched recursively), sorted within each."""
    files = []
    for root in map(Path, roots):
        files.extend(sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES))
    return files


def track_keys(files: list[Path]) -> list[str]:
    """A file's name without suffix (GTZAN's track ids), or `folder.name` where names repeat across folders (the
    rule of `genre_vit.training.data.load_tracks_from_folder`, so targets find their tracks)."""
    stems = [path.stem for path in files]
    repeated = {stem for stem in stems if stems.count(stem) > 1}
    keys = [f"{path.parent.name}.{path.stem}" if path.stem in repeated else path.stem for path in files]
    if len(set(keys)) != len(keys):
        raise SystemExit("Track keys are not unique even with their folder names; rename the files.")
    return keys


def merge_parts(output: Path, parts: Path, keys: list[str], **header) -> None:
    """Write `output`: the `header` arrays, then every array `NAME` of each track's part `parts/KEY.npz` as
    `KEY/NAME`, the layout `genre_vit.training.distillation.TeacherTargets` reads."""
    merged = dict(header)
    for key in keys:
        with np.load(parts / f"{key}.npz") as data:
            for name in data.files:
                merged[f"{key}/{name}"] = data[name]
    save_npz_atomic(output, **merged)
