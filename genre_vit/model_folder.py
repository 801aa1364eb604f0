"""What a GenreViT model folder holds besides `save_pretrained`'s own files: one place for the names and limits.

A folder written by `train.py` (or `cross_validate.py`, or `python -m genre_vit convert`) holds the model
(config, safetensors shards of at most `MAX_SHARD_SIZE`, the remote code), the feature extractor's
`preprocessor_config.json`, and:

- `RUN_FILE`: the training run's record (arguments, library versions, the track ids of every split, metrics);
- `CROSS_VALIDATION_FILE`: for a model shipped after a cross-validation, the cross-validated numbers;
- `PROTOCOLS_FILE`: for a shipped model, its accuracy under the other protocols: artist-disjoint folds of GTZAN and
  music from outside GTZAN (cross-dataset);
- `CALIBRATION_FILE`: for a calibrated model, how its temperature and "none of these genres" threshold were fitted
  (`genre_vit.training.calibration`);
- `MODEL_CARD_FILE`: the Hugging Face model card.
"""

RUN_FILE = "training_run.json"
CROSS_VALIDATION_FILE = "cross_validation.json"
PROTOCOLS_FILE = "evaluation_protocols.json"
CALIBRATION_FILE = "calibration.json"
MODEL_CARD_FILE = "README.md"
RECORD_FILES = (RUN_FILE, CROSS_VALIDATION_FILE, PROTOCOLS_FILE, CALIBRATION_FILE, MODEL_CARD_FILE)
"""The files that travel with the weights when a folder is converted or shipped."""

REMOTE_CODE_FILES = (
    "configuration_genre_vit.py",
    "modeling_genre_vit.py",
    "feature_extraction_genre_vit.py",
    "network.py",
    "spectrogram.py",
)
"""The package modules that `save_pretrained` copies into a folder for `trust_remote_code=True` loading: the three
Hugging Face classes and the plain modules they import."""

CHECKPOINTS_FOLDER = "checkpoints"
"""Where a training run keeps its Trainer checkpoints (for `--resume`); never uploaded with the model."""

MAX_SHARD_SIZE = "15MB"
"""Largest safetensors shard written: small enough to travel through size-limited channels."""

MIN_TRANSFORMERS_VERSION = "5.4.0"
"""The oldest transformers that loads GenreViT (5.0-5.3 fail on import: their `@strict` config checks need a
dataclass). requirements.txt, pyproject.toml and every model card state it; tests/test_packaging.py checks that."""


def read_record(source: str, name: str) -> dict | None:
    """A JSON record file (`RUN_FILE`, `CROSS_VALIDATION_FILE`) of a model folder or Hub repo, or None where it has
    none (or it cannot be fetched)."""
    import json
    from pathlib import Path

    local = Path(source).expanduser()
    try:
        if local.is_dir():
            path = local / name
        else:
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(source, name))
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None


def model_name(source: str) -> str:
    """What to call a model on a page: its folder's name, or its Hub repo id (never a server path)."""
    from pathlib import Path

    local = Path(source).expanduser()
    return local.resolve().name if local.is_dir() else source


def accuracy_statement(source: str) -> str | None:
    """What a model's own records say of its accuracy on tracks it has not seen, in one sentence, e.g. "Track
    accuracy on unseen tracks: 49% ± 10% (5-fold cross-validation by track on 94 tracks)", from its
    `CROSS_VALIDATION_FILE`, followed by the artist-disjoint and cross-dataset figures of its `PROTOCOLS_FILE` where
    it has one (the cross-fitted cross-dataset figures where its classifier heard those tracks' audio); None where
    the model has no cross-validation."""
    cross_validation = read_record(source, CROSS_VALIDATION_FILE)
    if not (cross_validation and "mean_std" in cross_validation):
        return None
    track = cross_validation["mean_std"]["track_accuracy"]
    tracks = sum(fold.get("test_tracks", 0) for fold in cross_validation.get("per_fold", []))
    spread = f" ± {track['std']:.0%}" if track.get("std") is not None else ""
    on = f" on {tracks} tracks" if tracks else ""
    statement = (
        f"Track accuracy on unseen tracks: {track['mean']:.0%}{spread} "
        f"({cross_validation['folds']}-fold cross-validation by track{on})"
    )
    protocols = read_record(source, PROTOCOLS_FILE) or {}
    if "artist_disjoint" in protocols:
        disjoint = protocols["artist_disjoint"]
        statement += (
            f"; {disjoint['track_accuracy']:.0%} on {disjoint['tracks']} {disjoint['data']} whose artists it was not "
            f"fitted on ({disjoint['folds']} artist-disjoint folds)"
        )
    if "cross_dataset" in protocols:
        other = protocols["cross_dataset"]
        data = other["data"]
        if "cross_fitted" in other:  # its classifier heard those tracks (never their labels): quote the answers of
            # classifiers that had not heard the track they answer, as a user's own music is unheard
            other = other | other["cross_fitted"]
            data += ", each answered by a classifier that had not heard it"
        statement += (
            f"; {other['track_accuracy']:.0%} on {other['tracks']} tracks from outside GTZAN ({data}), "
            "the figure closest to your own music"
        )
        if other.get("confident_answers"):
            right = other["confident_answers_right"] / other["confident_answers"]
            statement += f", where {right:.0%} of its confident answers were right"
    return statement + "."


__all__ = [
    "CHECKPOINTS_FOLDER",
    "CROSS_VALIDATION_FILE",
    "MAX_SHARD_SIZE",
    "MIN_TRANSFORMERS_VERSION",
    "MODEL_CARD_FILE",
    "PROTOCOLS_FILE",
    "RECORD_FILES",
    "RUN_FILE",
    "accuracy_statement",
    "model_name",
    "read_record",
]
