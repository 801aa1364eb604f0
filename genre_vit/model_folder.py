"""What a GenreViT model folder holds besides `save_pretrained`'s own files: one place for the names and limits.

A folder written by `train.py` (or `cross_validate.py`, or `python -m genre_vit convert`) holds the model
(config, safetensors shards of at most `MAX_SHARD_SIZE`, the remote code), the feature extractor's
`preprocessor_config.json`, and:

- `RUN_FILE`: the training run's record (arguments, library versions, the track ids of every split, metrics);
- `CROSS_VALIDATION_FILE`: for a model shipped after a cross-validation, the cross-validated numbers;
- `PROTOCOLS_FILE`: for a shipped model, its accuracy on music from outside GTZAN (the Emotify halves) and its
  GTZAN figure, as `scripts/protocol_table.py --write-record` writes them;
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


_HUB_REPO_ID = r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$"


def could_be_hub_id(source: str) -> bool:
    """Whether `source` has the shape of a Hub repo id (`name` or `namespace/name`), rather than of a path."""
    import re

    return bool(re.match(_HUB_REPO_ID, source)) and ".." not in source and not source.endswith((".", "-"))


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


def model_card_reference(source: str) -> str:
    """Where a page sends a visitor for the rest: a link to a Hub model's card, or the card file of a folder."""
    from pathlib import Path

    if Path(source).expanduser().is_dir():
        return "its model card (README.md in its folder)"
    return f"its [model card](https://huggingface.co/{source})"


def accuracy_statement(source: str) -> str | None:
    """What a model's own records say of how often it is right on music it has not heard, in one short sentence
    for a page, led by the figure on music from outside GTZAN (its `PROTOCOLS_FILE`'s Emotify test half, never
    used for a choice), else its cross-validation on GTZAN (`CROSS_VALIDATION_FILE`), with where the rest is told:
    e.g. "Right on 59% of 105 songs from outside GTZAN (Emotify test half: classical, pop and rock); 85% of its
    confident answers were right. More in its model card." None where the model has neither record."""
    card = model_card_reference(source)
    protocols = read_record(source, PROTOCOLS_FILE) or {}
    if "emotify_test" in protocols:
        test = protocols["emotify_test"]
        statement = (
            f"Right on {test['track_accuracy']:.0%} of {test['tracks']} songs from outside GTZAN (Emotify test "
            "half: classical, pop and rock)"
        )
        if test.get("confident_answers"):
            right = test["confident_answers_right"] / test["confident_answers"]
            statement += f"; {right:.0%} of its confident answers were right"
        return f"{statement}. More in {card}."
    cross_validation = read_record(source, CROSS_VALIDATION_FILE)
    if not (cross_validation and "mean_std" in cross_validation):
        return None
    track = cross_validation["mean_std"]["track_accuracy"]
    return (
        f"Right on {track['mean']:.0%} of GTZAN tracks it was not trained on ({cross_validation['folds']}-fold "
        f"cross-validation; neighbouring GTZAN tracks share artists, so music from elsewhere fares worse). More in "
        f"{card}."
    )


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
    "could_be_hub_id",
    "model_card_reference",
    "model_name",
    "read_record",
]
