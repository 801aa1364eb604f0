"""Honest confidence: the genre distance, the temperature and the "none of these genres" threshold of a model.

A classifier trained on ten genres answers every input with one of them, and on music unlike its training tracks its
probabilities say little. Two things are fitted here:

1. **The genre distance** (`GenreViTGenreDistance`), fitted with the linear probe on its GTZAN training windows
   (`genre_vit.training.linear_probe.fit_genre_distance`): each genre's mean pooled embedding and the shared
   within-genre covariance. A window's distance is its Mahalanobis distance to the nearest genre mean.
2. **The temperature and the distance threshold**, chosen on music from elsewhere: the validation half of the
   Emotify excerpts (`genre_vit.training.emotify`; odd numbers), analysed by the model with its probe refitted on
   every GTZAN clip. Their labels choose these two numbers and are never fitted by the probe; the test half is
   never read here.
   - The temperature minimises the negative log-likelihood of the classical, pop and rock excerpts' answers (an
     answer is the mean of the excerpt's tempered music-window probabilities, as the product decides).
   - The threshold is the `DEFAULT_KEEP_QUANTILE` quantile of those excerpts' mean window distances: nine in ten
     excerpts of a learnt genre stay answered. The half's electronic excerpts (no GTZAN genre) are the check: how
     many of them the threshold flags.
"""

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..configuration_genre_vit import GTZAN_GENRES
from ..files import write_text_atomic
from ..model_folder import CALIBRATION_FILE, CROSS_VALIDATION_FILE, MAX_SHARD_SIZE, RUN_FILE
from ..network import read_json
from .options import (
    DataArguments,
    DistillationArguments,
    GenreViTTrainingArguments,
    ModelArguments,
    ProbeArguments,
    SplitArguments,
)

DEFAULT_KEEP_QUANTILE = 0.9
"""Quantile of held-out, learnt-genre tracks' distances taken as the "none of these genres" threshold."""

TEMPERATURES = tuple(float(t) for t in np.exp(np.linspace(np.log(0.25), np.log(8.0), 61)))
"""Temperatures tried (log-spaced from 0.25 to 8)."""


def tempered_track_probabilities(window_probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """A track's answer `(C,)` at `temperature` from its windows' probabilities `(T, C)` at temperature 1: each
    window's softmax of logits / temperature (`p ** (1 / temperature)`, renormalised), then their mean."""
    logs = np.log(np.clip(window_probabilities, 1e-12, 1.0)) / temperature
    logs -= logs.max(axis=1, keepdims=True)
    tempered = np.exp(logs)
    return (tempered / tempered.sum(axis=1, keepdims=True)).mean(axis=0)


def fit_temperature(track_window_probabilities: list[np.ndarray], labels: np.ndarray) -> tuple[float, dict]:
    """The temperature in `TEMPERATURES` that minimises the mean negative log-likelihood of the tracks' answers
    (`tempered_track_probabilities`) at their `labels`; and that NLL at 1 and at the chosen temperature."""

    def nll(temperature: float) -> float:
        answers = [tempered_track_probabilities(p, temperature) for p in track_window_probabilities]
        return float(-np.mean([np.log(max(a[y], 1e-12)) for a, y in zip(answers, labels)]))

    losses = {t: nll(t) for t in TEMPERATURES}
    chosen = min(losses, key=losses.get)
    return chosen, {"negative_log_likelihood_at_1": nll(1.0), "negative_log_likelihood": losses[chosen]}


@dataclass
class ValidationTrack:
    """One validation excerpt as the model answers it: its label id (None for a genre outside the model's), its music
    windows' probabilities `(T, C)` at temperature 1 and its mean window distance to the nearest genre."""

    track_id: str
    label: int | None
    window_probabilities: np.ndarray
    genre_distance: float


def fit_probe_folder(
    init_from: Path,
    gtzan: Path,
    train_ids: list[str],
    test_ids: list[str],
    folder: Path,
    probe: ProbeArguments | None = None,
    teachers: DistillationArguments | None = None,
    windows_cache: Path | None = None,
) -> Path:
    """`train.py --init-from INIT_FROM --classifier-only` on the GTZAN tracks `train_ids` (a quarter of them listed
    as validation: the probe fits on both), with `test_ids` as the test list, the probe fitted as `probe` says
    (with `teachers` labelling its unlabelled music); the model lands in `folder/model`, which is returned. Windows
    are cached in `windows_cache` (default: `folder`'s sibling `windows-cache`). A folder that already holds a
    model is kept (so an interrupted calibration resumes)."""
    from .trainer import TrainingOptions, run_training

    model = folder / "model"
    if (model / "config.json").is_file():
        return model
    lists = folder / "splits"
    lists.mkdir(parents=True, exist_ok=True)
    quarter = len(train_ids) // 4
    write_text_atomic(lists / "train_filtered.txt", "".join(f"{t}\n" for t in train_ids[quarter:]))
    write_text_atomic(lists / "valid_filtered.txt", "".join(f"{t}\n" for t in train_ids[:quarter]))
    write_text_atomic(lists / "test_filtered.txt", "".join(f"{t}\n" for t in test_ids))
    options = TrainingOptions(
        # one process: the caller may have run torch, and forking datasets.map workers from it can deadlock
        data=DataArguments(
            data=str(gtzan), cache_dir=str(windows_cache or folder.parent / "windows-cache"), num_proc=1
        ),
        split=SplitArguments(split_files=str(lists)),
        model=ModelArguments(init_from=str(init_from), classifier_only=True),
        probe=probe or ProbeArguments(),
        distillation=teachers or DistillationArguments(),
        training=GenreViTTrainingArguments(output_dir=str(model)),
    )
    run_training(options)
    return model


def gtzan_clips(gtzan: Path) -> dict[str, Path]:
    """`{track id: path}` of the audio files in the genre folders of `gtzan` (`blues/blues.00030.flac` ->
    `blues.00030`), with the track ids training gives them (`data.load_tracks_from_folder`)."""
    from .data import load_tracks_from_folder

    tracks = load_tracks_from_folder(gtzan)
    return {track: Path(path) for track, path in zip(tracks["track_id"], tracks["audio_path"])}


def validation_tracks(model_folder: Path, emotify: Path) -> list[ValidationTrack]:
    """Analyse the validation half of the Emotify excerpts in `emotify` with a model (at temperature 1)."""
    from ..analysis import GenreClassifier
    from .emotify import emotify_tracks

    classifier = GenreClassifier.from_pretrained(model_folder, device="cpu", dtype="float32")
    classifier.model.config = classifier.model.config.replace(temperature=1.0)  # the answers before calibration
    tracks = []
    for track in emotify_tracks(emotify, "validation"):
        result = classifier.analyze(track.path)
        tracks.append(
            ValidationTrack(
                track_id=track.key,
                label=GTZAN_GENRES.index(track.genre) if track.genre in GTZAN_GENRES else None,
                window_probabilities=result.window_probabilities[result.window_has_music],
                genre_distance=float(result.genre_distance),
            )
        )
    return tracks


def calibrate_model(
    model: Path,
    gtzan: Path,
    emotify: Path,
    output: Path,
    work_dir: Path,
    keep_quantile: float = DEFAULT_KEEP_QUANTILE,
    probe: ProbeArguments | None = None,
    teachers: DistillationArguments | None = None,
    windows_cache: Path | None = None,
) -> dict:
    """A calibrated copy of `model` in `output`: its probe refitted on every GTZAN clip in `gtzan` (with the genre
    distance; fitted as `probe` says, with `teachers` labelling its unlabelled music), the temperature and "none of
    these genres" threshold chosen on the Emotify validation half in `emotify` (module docstring), and
    `calibration.json` saying what was measured. `work_dir` keeps the refitted model (reused on a rerun), and the
    windows unless `windows_cache` is given. Returns the calibration record."""
    probe, teachers = probe or ProbeArguments(), teachers or DistillationArguments()
    clips = list(gtzan_clips(gtzan))
    full = fit_probe_folder(model, gtzan, clips, [], work_dir / "all-tracks", probe, teachers, windows_cache)
    tracks = validation_tracks(full, emotify)
    learnt = [track for track in tracks if track.label is not None]
    other = [track for track in tracks if track.label is None]
    if not learnt:
        raise ValueError(f"{emotify} has no validation excerpts (odd numbers) in folders of GTZAN genres.")
    temperature, losses = fit_temperature([t.window_probabilities for t in learnt], np.array([t.label for t in learnt]))
    threshold = float(np.quantile([t.genre_distance for t in learnt], keep_quantile))
    record = {
        "fitted_on": "Emotify validation half (odd-numbered excerpts): classical, pop and rock choose the temperature "
        "and the threshold; electronic is counted",
        "temperature": temperature,
        **losses,
        "none_of_these_distance": threshold,
        "keep_quantile": keep_quantile,
        "validation_tracks": {"gtzan_genres": len(learnt), "other_genres": len(other)},
        "validation_track_accuracy": float(
            np.mean([t.window_probabilities.mean(axis=0).argmax() == t.label for t in learnt])
        ),
        "flagged_none_of_these": {
            "gtzan_genres": int(sum(t.genre_distance > threshold for t in learnt)),
            "other_genres": int(sum(t.genre_distance > threshold for t in other)),
        },
        "mean_genre_distance": {
            "gtzan_genres": float(np.mean([t.genre_distance for t in learnt])),
            "other_genres": float(np.mean([t.genre_distance for t in other])) if other else None,
        },
        "probe": _changed_fields(probe),
        "teachers": _changed_fields(teachers),
        "source_model": Path(model).name,
    }
    _write_calibrated(full, Path(model), output, temperature, threshold, record)
    return record


def _changed_fields(options) -> dict:
    """The fields of an options dataclass that differ from their defaults (what a record needs to say)."""
    defaults = type(options)()
    return {
        field.name: getattr(options, field.name)
        for field in dataclasses.fields(options)
        if getattr(options, field.name) != getattr(defaults, field.name)
    }


def _write_calibrated(fitted: Path, source: Path, output: Path, temperature, threshold, record: dict) -> None:
    """`fitted` (the probe on every clip) with the temperature and threshold in its config, into `output`, with the
    source model's cross-validation record where the probe was refitted by the source's own recipe (no
    changed probe or teachers in `record`: they make another recipe, which that record did not measure); written beside
    and then moved, so `output` is never half written."""
    from ..modeling_genre_vit import GenreViTForAudioClassification

    staging = output.with_name(output.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    stored_dtype = read_json(source / "config.json").get("dtype") or "float32"
    model = GenreViTForAudioClassification.from_pretrained(fitted, dtype=getattr(torch, stored_dtype))
    model.config.temperature = temperature
    model.config.none_of_these_distance = threshold
    model.save_pretrained(staging, max_shard_size=MAX_SHARD_SIZE)
    for name in ("preprocessor_config.json", RUN_FILE):
        if (fitted / name).is_file():
            shutil.copy2(fitted / name, staging / name)
    if (source / CROSS_VALIDATION_FILE).is_file() and not (record["probe"] or record["teachers"]):
        shutil.copy2(source / CROSS_VALIDATION_FILE, staging / CROSS_VALIDATION_FILE)
    write_text_atomic(staging / CALIBRATION_FILE, json.dumps(record, indent=2) + "\n")
    shutil.rmtree(output, ignore_errors=True)
    staging.rename(output)


__all__ = [
    "DEFAULT_KEEP_QUANTILE",
    "ValidationTrack",
    "calibrate_model",
    "fit_probe_folder",
    "fit_temperature",
    "gtzan_clips",
    "tempered_track_probabilities",
    "validation_tracks",
]
