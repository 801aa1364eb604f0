"""Datasets for training and evaluation: GTZAN-shaped tracks -> track-level splits -> cached 4-s windows.

Tracks are loaded with `datasets` as plain columns, `audio_path` / `audio_bytes` / `label` / `track_id`, and decoded
with `genre_vit.audio.load_audio`, not through `datasets.Audio`. Why: `datasets` 4+ decodes (and even encodes)
audio through torchcodec and FFmpeg's shared libraries, a second decoder whose version has to match torch's; here
training, evaluation and inference all decode with one function, so a model sees at inference exactly the features
it was trained on, and GTZAN's `.au` files and its corrupt clip (`jazz.00054.wav`) are handled in one place.

Splits are always made on tracks, before windowing, so every window of a track lands in the same split;
`assert_track_disjoint` checks it again on the windows.
"""

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from transformers.utils import logging

from ..audio import AUDIO_FILE_SUFFIXES, load_audio
from ..configuration_genre_vit import GTZAN_GENRES
from ..feature_extraction_genre_vit import GenreViTFeatureExtractor
from ..model_folder import could_be_hub_id
from ..spectrogram import window_has_music

logger = logging.get_logger(__name__)

SPLIT_NAMES = ("train", "validation", "test")
SPLIT_FILE_NAMES = {
    "train": ("train_filtered.txt", "train.txt"),
    "validation": ("valid_filtered.txt", "validation.txt", "valid.txt", "val.txt"),
    "test": ("test_filtered.txt", "test.txt"),
}
"""Accepted file names per split in a `--split-files` folder (the fault-filtered GTZAN lists first)."""

DEFAULT_SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
"""Train/validation/test fractions of a stratified track split when none are given."""

_CACHE_VERSION = "3"  # bump when the window rows change meaning


def _track_features(label_names: Sequence[str]):
    from datasets import ClassLabel, Features, Value

    return Features(
        {
            "audio_path": Value("string"),
            "audio_bytes": Value("binary"),
            "label": ClassLabel(names=list(label_names)),
            "track_id": Value("string"),
        }
    )


def label_order(names: set[str] | Sequence[str]) -> list[str]:
    """GTZAN order when the names are GTZAN's genres, alphabetical otherwise."""
    names = set(names)
    return list(GTZAN_GENRES) if names == set(GTZAN_GENRES) else sorted(names)


def _genre_root(root: Path) -> Path:
    """The folder whose sub-folders are the genres: `root`, `root/genres_original`, `root/genres` or Kaggle's
    `root/Data/genres_original`."""
    for candidate in (root / "genres_original", root / "genres", root / "Data" / "genres_original", root):
        if candidate.is_dir() and any(
            child.is_dir() and any(f.suffix.lower() in AUDIO_FILE_SUFFIXES for f in child.iterdir())
            for child in candidate.iterdir()
        ):
            return candidate
    raise ValueError(
        f"{root} does not look like a genre dataset: expected one sub-folder of audio files per genre "
        "(directly, or under genres/ or genres_original/)."
    )


def load_tracks_from_folder(root: str | os.PathLike):
    """A `datasets.Dataset` of the tracks in a folder with one sub-folder of audio files per genre."""
    from datasets import Dataset

    genre_root = _genre_root(Path(root))
    rows = []
    for genre_dir in sorted(p for p in genre_root.iterdir() if p.is_dir()):
        for path in sorted(genre_dir.iterdir()):
            if path.is_file() and path.suffix.lower() in AUDIO_FILE_SUFFIXES:
                rows.append((str(path.resolve()), genre_dir.name, path.stem))
    if not rows:
        raise ValueError(f"No audio files found under {genre_root}.")
    names = label_order({genre for _, genre, _ in rows})
    stems = [stem for _, _, stem in rows]
    repeated = {stem for stem in stems if stems.count(stem) > 1}
    # A file name repeated across genre folders (`rock/1.mp3`, `pop/1.mp3`) gets its folder as prefix: `rock.1`
    # (the same rule as scripts/musicnn_teacher.py, so teacher targets find their tracks).
    track_ids = [f"{genre}.{stem}" if stem in repeated else stem for _, genre, stem in rows]
    if len(set(track_ids)) != len(track_ids):
        raise ValueError("Track ids (file names without suffix, or folder.name where names repeat) must be unique.")
    return Dataset.from_dict(
        {
            "audio_path": [path for path, _, _ in rows],
            "audio_bytes": [None] * len(rows),
            "label": [names.index(genre) for _, genre, _ in rows],
            "track_id": track_ids,
        },
        features=_track_features(names),
    )


def load_tracks_from_hub(
    repo_id: str, split: str = "train", audio_column: str = "audio", label_column: str = "genre", **load_kwargs
):
    """A `datasets.Dataset` of tracks from a Hub dataset with an audio column and a genre (ClassLabel) column.

    The audio stays undecoded bytes in the Arrow table (converted with `Dataset.map`, never held in Python lists).
    """
    from datasets import Audio, load_dataset

    dataset = load_dataset(repo_id, split=split, **load_kwargs)
    for column in (audio_column, label_column):
        if column not in dataset.column_names:
            raise ValueError(f"{repo_id} has no column {column!r}; its columns are {dataset.column_names}.")
    dataset = dataset.cast_column(audio_column, Audio(decode=False))
    label_feature = dataset.features[label_column]
    source_names = list(label_feature.names) if hasattr(label_feature, "names") else None

    def genre_of(value) -> str:
        return source_names[value] if source_names is not None else str(value)

    names = label_order({genre_of(value) for value in dataset.unique(label_column)})

    def convert(batch, indices):
        paths = [item.get("path") or "" for item in batch[audio_column]]
        return {
            "audio_path": paths,
            "audio_bytes": [item.get("bytes") for item in batch[audio_column]],
            "label": [names.index(genre_of(value)) for value in batch[label_column]],
            "track_id": [Path(path).stem if path else f"track{index:05d}" for path, index in zip(paths, indices)],
        }

    return dataset.map(
        convert,
        batched=True,
        with_indices=True,
        remove_columns=dataset.column_names,
        features=_track_features(names),
        desc="Reading tracks",
    )


DATASET_FILE_SUFFIXES = (".parquet", ".arrow", ".jsonl", ".csv")


def load_tracks(source: str | os.PathLike, **hub_kwargs):
    """Tracks from a local genre folder, a local copy of a Hub dataset repository (Parquet/Arrow files), or a Hub
    dataset id."""
    path = Path(source)
    if path.is_dir():
        try:
            return load_tracks_from_folder(path)  # GTZAN-shaped (Kaggle's copy also holds feature CSVs: ignored)
        except ValueError:
            if not any(p.suffix in DATASET_FILE_SUFFIXES for p in path.rglob("*") if p.is_file()):
                raise
    elif not could_be_hub_id(str(source)):
        raise ValueError(
            f"{source} does not exist: give a folder with one sub-folder of audio files per genre, or a Hub dataset "
            "id (namespace/name)."
        )
    try:
        return load_tracks_from_hub(str(source), **hub_kwargs)
    except (FileNotFoundError, ConnectionError) as error:  # e.g. datasets' DatasetNotFoundError: one line
        raise ValueError(f"{source} could not be loaded as a Hub dataset: {error}") from error


def label_names(dataset) -> list[str]:
    feature = dataset.features["label"] if "label" in dataset.features else dataset.features["labels"]
    return list(feature.names)


# ---------------------------------------------------------------------------------------------- splits
def _tracks_per_split(count: int, fractions: Sequence[float]) -> list[int]:
    """How many of a genre's `count` tracks go to each split: every split with a non-zero fraction gets at least one
    track, the held-out splits (validation, test) about their fraction of the genre, train the rest."""
    held_out = [max(1, round(fraction * count)) if fraction > 0 else 0 for fraction in fractions[1:]]
    train = count - sum(held_out)
    if train < 0 or (fractions[0] > 0 and train < 1):
        return []
    return [train, *held_out]


def _stratified_split(
    indices: np.ndarray, labels: np.ndarray, fractions: Sequence[float], seed: int, names: Sequence[str]
) -> list[np.ndarray]:
    """Split `indices` three ways by `fractions`, genre by genre (shuffled with `seed`), so that every genre with
    enough tracks is in every split with a non-zero fraction. Raises ValueError naming the genres that are too small."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    too_small = []
    for label in np.unique(labels[indices]):
        members = indices[labels[indices] == label]
        counts = _tracks_per_split(len(members), fractions)
        if not counts:
            too_small.append((names[label], len(members)))
            continue
        members = rng.permutation(members)
        for part, (start, stop) in zip(parts, zip(np.cumsum([0, *counts[:-1]]), np.cumsum(counts))):
            part.extend(members[start:stop])
    if too_small:
        needed = sum(fraction > 0 for fraction in fractions)
        listed = ", ".join(f"{name} ({count})" for name, count in too_small)
        raise ValueError(
            f"Too few tracks to split by genre: {listed}. A split with fractions "
            f"{' '.join(f'{f:g}' for f in fractions)} (train, validation, test) needs at least {needed} tracks of "
            "each genre, one per split. Add tracks of those genres, remove their folders, drop the test split with "
            "--split-fractions 0.8 0.2 0 (then estimate accuracy with cross_validate.py), or give the split "
            "yourself with --split-files."
        )
    return [np.sort(np.asarray(part, dtype=np.int64)) for part in parts]


def split_tracks(tracks, fractions: Sequence[float] = DEFAULT_SPLIT_FRACTIONS, seed: int = 42) -> dict:
    """A stratified, seeded train/validation/test split of tracks; returns `{"train": ..., "validation": ...,
    "test": ...}` datasets.

    Stratified genre by genre: each genre gives about `fractions` of its tracks to each split, and at least one
    track to every split whose fraction is non-zero, so even 3 tracks of a genre give one train, one validation and
    one test track. A zero fraction gives an empty split. Genres with fewer tracks than non-empty splits raise a
    ValueError that names them.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"Split fractions must be three non-negative numbers summing to 1, got {fractions}.")
    labels = np.asarray(tracks["label"])
    parts = _stratified_split(np.arange(len(tracks)), labels, tuple(fractions), seed, label_names(tracks))
    return {name: tracks.select(part) for name, part in zip(SPLIT_NAMES, parts)}


def split_tracks_for_fold(tracks, num_folds: int, fold: int, validation_fraction: float = 0.15, seed: int = 42) -> dict:
    """Fold `fold` (0-based) of a stratified, seeded `num_folds`-fold cross-validation over tracks: that fold is the
    test split; `validation_fraction` of the other tracks (stratified, at least one per genre) is the validation
    split, the rest is trained on. Over the folds every track is tested exactly once."""
    from sklearn.model_selection import StratifiedKFold

    if num_folds < 2 or not 0 <= fold < num_folds:
        raise ValueError(
            f"Cross-validation needs at least 2 folds and 0 <= fold < folds; got fold {fold} of {num_folds}."
        )
    if not 0 < validation_fraction < 1:
        raise ValueError(f"The validation fraction must be between 0 and 1, got {validation_fraction}.")
    labels = np.asarray(tracks["label"])
    if np.bincount(labels).max() < num_folds:
        raise ValueError(f"{num_folds} folds need at least {num_folds} tracks of some genre; the data has fewer.")
    folds = StratifiedKFold(n_splits=num_folds, shuffle=True, random_state=seed)
    rest, test = list(folds.split(np.zeros(len(labels)), labels))[fold]
    train, validation, _ = _stratified_split(
        rest, labels, (1 - validation_fraction, validation_fraction, 0.0), seed, label_names(tracks)
    )
    return {name: tracks.select(sorted(part)) for name, part in zip(SPLIT_NAMES, (train, validation, test))}


def load_tracks_for(data):
    """Tracks from the data options (`options.DataArguments`: a folder, a local copy of a Hub dataset, or a Hub
    dataset id)."""
    return load_tracks(data.data, split=data.hub_split, audio_column=data.audio_column, label_column=data.label_column)


def split_tracks_for(tracks, split, seed: int):
    """Track splits `{"train", "validation", "test"}` by the split options (`options.SplitArguments`), and a
    sentence that says how they were made."""
    if split.split_files:
        return split_tracks_from_files(tracks, split.split_files), f"split files {split.split_files}"
    if split.folds:
        return split_tracks_for_fold(tracks, split.folds, split.fold, split.validation_fraction, seed), (
            f"fold {split.fold + 1} of {split.folds} (stratified track folds, seed {seed}) as test; "
            f"validation {split.validation_fraction:g} of the other tracks"
        )
    fractions = tuple(split.split_fractions)
    return split_tracks(tracks, fractions, seed=seed), (
        f"stratified {fractions[0]:g}/{fractions[1]:g}/{fractions[2]:g}, seed {seed}"
    )


def read_split_files(directory: str | os.PathLike) -> dict[str, list[str]]:
    """Track ids per split from a folder of lists, one track per line (`blues/blues.00029.wav` or `blues.00029`)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"--split-files: {directory} is not a folder.")
    lists = {}
    for split, candidates in SPLIT_FILE_NAMES.items():
        found = next((directory / name for name in candidates if (directory / name).is_file()), None)
        if found is None:
            raise ValueError(f"--split-files: {directory} has none of {', '.join(candidates)} for the {split} split.")
        lists[split] = [_listed_track_id(line) for line in found.read_text().splitlines() if line.strip()]
    return lists


def _listed_track_id(line: str) -> str:
    """`blues/blues.00029.wav` or `blues.00029` -> `blues.00029`: the file name without an audio suffix (a plain
    `Path.stem` would take the id's own `.00029` for a suffix)."""
    name = Path(line.strip()).name
    suffix = Path(name).suffix
    return name[: -len(suffix)] if suffix.lower() in AUDIO_FILE_SUFFIXES else name


def split_tracks_from_files(tracks, directory: str | os.PathLike) -> dict:
    """Split `tracks` by the lists in `directory`; tracks in no list are left out, with a warning."""
    lists = read_split_files(directory)
    assert_disjoint_ids(lists)
    split_of = {track: split for split, ids in lists.items() for track in ids}
    track_ids = tracks["track_id"]
    missing = len(split_of.keys() - set(track_ids))
    unlisted = [track for track in track_ids if track not in split_of]
    if missing or unlisted:
        logger.warning(
            f"Split files: {missing} listed tracks are not in the dataset; {len(unlisted)} dataset tracks are in no "
            "list and are left out."
        )
    return {
        split: tracks.select([i for i, track in enumerate(track_ids) if split_of.get(track) == split])
        for split in SPLIT_NAMES
    }


def assert_disjoint_ids(ids_by_split: dict[str, Sequence[str]]) -> None:
    """Raise ValueError if any track id is in two splits."""
    seen: dict[str, str] = {}
    for split, ids in ids_by_split.items():
        for track in set(ids):
            if track in seen:
                raise ValueError(f"Track {track} is in both the {seen[track]} and the {split} split.")
            seen[track] = split


def assert_track_disjoint(splits: dict) -> None:
    """Raise ValueError unless no track (and so no window of a track) is in two splits."""
    assert_disjoint_ids({name: dataset.unique("track_id") for name, dataset in splits.items() if len(dataset)})


def split_track_ids(splits: dict) -> dict[str, list[str]]:
    return {name: sorted(dataset.unique("track_id")) if len(dataset) else [] for name, dataset in splits.items()}


# ---------------------------------------------------------------------------------------------- windows
def decode_track(audio_path: str | None, audio_bytes: bytes | None, sampling_rate: int) -> np.ndarray:
    """Decode one track from its path or, for Hub datasets, its bytes."""
    if audio_bytes:
        suffix = Path(audio_path or "").suffix
        with tempfile.NamedTemporaryFile(suffix=suffix) as file:
            file.write(audio_bytes)
            file.flush()
            return load_audio(file.name, sampling_rate=sampling_rate)
    return load_audio(audio_path, sampling_rate=sampling_rate)


def readable_tracks(tracks, sampling_rate: int):
    """`(waveform, label, track id)` of each track of a tracks batch or dataset (columns `audio_path`,
    `audio_bytes`, `label`, `track_id`) that decodes; an unreadable one (GTZAN's `jazz.00054.wav`) is skipped with a
    warning that names it."""
    for path, data, label, track in zip(
        tracks["audio_path"], tracks["audio_bytes"], tracks["label"], tracks["track_id"]
    ):
        try:
            waveform = decode_track(path, data, sampling_rate)
        except ValueError as error:
            logger.warning(f"Skipping unreadable track {track}: {error}")
            continue
        yield waveform, label, track


def tilt_gain_db(
    frequencies: np.ndarray, db_per_octave: float, pivot_hz: float = 1000.0, limit_db: float = 12.0
) -> np.ndarray:
    """The gain (dB) of a spectral tilt at `frequencies` (Hz): `db_per_octave * log2(f / pivot_hz)`, limited to
    +-`limit_db`, frequencies below 20 Hz counting as 20 Hz."""
    return np.clip(db_per_octave * np.log2(np.maximum(frequencies, 20.0) / pivot_hz), -limit_db, limit_db)


def _windows_fingerprint(tracks, feature_extractor: GenreViTFeatureExtractor, offsets_seconds=()) -> str:
    digest = hashlib.sha256(_CACHE_VERSION.encode())
    digest.update(feature_extractor.to_json_string().encode())
    if offsets_seconds:  # absent for the plain grid, so its existing caches stay valid
        digest.update(json.dumps([float(offset) for offset in offsets_seconds]).encode())
    digest.update(json.dumps(label_names(tracks)).encode())
    for path, track, label in zip(tracks["audio_path"], tracks["track_id"], tracks["label"]):
        stat = os.stat(path) if path and os.path.exists(path) else None
        digest.update(f"{path}|{track}|{label}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}".encode())
    if len(tracks) and tracks[0]["audio_bytes"]:  # Hub audio: the dataset's own fingerprint covers the bytes
        digest.update(tracks._fingerprint.encode())
    return digest.hexdigest()[:20]


class _WindowFeaturizer:
    """`Dataset.map` function: a batch of tracks -> their windows (a picklable object for `num_proc` > 1)."""

    def __init__(self, feature_extractor: GenreViTFeatureExtractor, offsets_seconds=()):
        self.feature_extractor = feature_extractor
        self.offsets_seconds = tuple(offsets_seconds)

    def window_starts(self, num_samples: int) -> list[np.ndarray]:
        """First samples of a track's windows, ascending in each group: the window rule's grid, then each offset's
        shifted grid (clipped to the track, without repeating a start already taken)."""
        extractor = self.feature_extractor
        grid = extractor.window_start_samples(num_samples)
        last_start = max(num_samples - extractor.window_samples, 0)
        groups = [grid]
        for offset in self.offsets_seconds:
            shifted = np.unique(np.clip(grid + round(offset * extractor.sampling_rate), 0, last_start))
            groups.append(np.setdiff1d(shifted, np.concatenate(groups)))
        return [group for group in groups if group.size]

    def __call__(self, batch: dict) -> dict:
        rows = {"input_values": [], "labels": [], "track_id": [], "start_seconds": [], "has_music": []}
        extractor = self.feature_extractor
        for waveform, label, track in readable_tracks(batch, extractor.sampling_rate):
            for starts in self.window_starts(waveform.shape[0]):
                for block in range(0, len(starts), extractor.block_windows):
                    block_starts = starts[block : block + extractor.block_windows]  # one STFT per block
                    rows["input_values"].extend(extractor.windows_at(waveform, block_starts))
                    rows["start_seconds"].extend((block_starts / extractor.sampling_rate).astype(np.float32))
                rows["has_music"].extend(window_has_music(waveform, starts, extractor.window_samples))
                rows["labels"].extend([label] * len(starts))
                rows["track_id"].extend([track] * len(starts))
        return rows


def make_windows(
    tracks,
    feature_extractor: GenreViTFeatureExtractor,
    cache_dir: str | os.PathLike | None = None,
    num_proc: int | None = None,
    offsets_seconds=(),
):
    """Featurise tracks into a dataset of windows: `input_values` (1, F, W) float32, `labels`, `track_id`,
    `start_seconds`, `has_music` (`window_has_music`: whether the window counts in its track's score).

    The windows are those of the window rule (what inference cuts), plus, with `offsets_seconds`, those of the same
    grid shifted by each offset: extra training windows (augmentation), never for evaluation. A track's windows of
    the grid come first.

    With `cache_dir`, the windows are stored in an Arrow file named after a fingerprint of the tracks (paths, sizes,
    modification times, labels) and of the feature extractor's settings, so a second run loads them instead of
    recomputing. Unreadable tracks are skipped with a warning that names them.
    """
    from datasets import Array3D, ClassLabel, Features, Value

    names = label_names(tracks)
    features = Features(
        {
            "input_values": Array3D(
                (1, feature_extractor.num_frequency_bins, feature_extractor.num_time_frames), "float32"
            ),
            "labels": ClassLabel(names=names),
            "track_id": Value("string"),
            "start_seconds": Value("float32"),
            "has_music": Value("bool"),
        }
    )
    cache_file_name = None
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        fingerprint = _windows_fingerprint(tracks, feature_extractor, offsets_seconds)
        cache_file_name = str(Path(cache_dir) / f"windows-{fingerprint}.arrow")
    num_proc = num_proc if num_proc and num_proc > 1 and len(tracks) >= 2 * num_proc else None
    windows = tracks.map(
        _WindowFeaturizer(feature_extractor, offsets_seconds),
        batched=True,
        batch_size=4,
        remove_columns=tracks.column_names,
        features=features,
        cache_file_name=cache_file_name,
        load_from_cache_file=cache_file_name is not None,
        num_proc=num_proc,
        desc="Computing windows",
    )
    skipped = sorted(set(tracks["track_id"]) - set(windows.unique("track_id") if len(windows) else []))
    if skipped:
        logger.warning(f"Skipped {len(skipped)} unreadable track(s): {', '.join(skipped)}")
    return windows


__all__ = [
    "DEFAULT_SPLIT_FRACTIONS",
    "SPLIT_NAMES",
    "assert_track_disjoint",
    "decode_track",
    "label_names",
    "load_tracks",
    "load_tracks_for",
    "load_tracks_from_folder",
    "load_tracks_from_hub",
    "make_windows",
    "read_split_files",
    "split_track_ids",
    "split_tracks",
    "split_tracks_for",
    "split_tracks_for_fold",
    "split_tracks_from_files",
    "tilt_gain_db",
]
