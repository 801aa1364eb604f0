"""What a GenreViT model folder holds besides `save_pretrained`'s own files: one place for the names and limits.

A folder written by `train.py` (or `cross_validate.py`, or `python -m genre_vit convert`) holds the model
(config, safetensors shards of at most `MAX_SHARD_SIZE`, the remote code), the feature extractor's
`preprocessor_config.json`, and:

- `RUN_FILE`: the training run's record (arguments, library versions, the track ids of every split, metrics);
- `CROSS_VALIDATION_FILE`: for a model shipped after a cross-validation, the cross-validated numbers;
- `MODEL_CARD_FILE`: the Hugging Face model card.
"""

RUN_FILE = "training_run.json"
CROSS_VALIDATION_FILE = "cross_validation.json"
MODEL_CARD_FILE = "README.md"
RECORD_FILES = (RUN_FILE, CROSS_VALIDATION_FILE, MODEL_CARD_FILE)
"""The files that travel with the weights when a folder is converted or shipped."""

CHECKPOINTS_FOLDER = "checkpoints"
"""Where a training run keeps its Trainer checkpoints (for `--resume`); never uploaded with the model."""

MAX_SHARD_SIZE = "15MB"
"""Largest safetensors shard written: small enough to travel through size-limited channels."""

MIN_TRANSFORMERS_VERSION = "5.4.0"
"""The oldest transformers that loads GenreViT (5.0-5.3 fail on import: their `@strict` config checks need a
dataclass). requirements.txt, pyproject.toml and every model card state it; tests/test_packaging.py checks that."""

__all__ = [
    "CHECKPOINTS_FOLDER",
    "CROSS_VALIDATION_FILE",
    "MAX_SHARD_SIZE",
    "MIN_TRANSFORMERS_VERSION",
    "MODEL_CARD_FILE",
    "RECORD_FILES",
    "RUN_FILE",
]
