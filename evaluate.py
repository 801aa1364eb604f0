"""Evaluate GenreViT: `python evaluate.py --model DIR --data PATH --output-dir DIR`.

The logic is in `genre_vit.training.evaluation`."""

import sys

import genre_vit  # noqa: F401  (registers the model with the transformers Auto classes)
from genre_vit.training.evaluation import main

if __name__ == "__main__":
    sys.exit(main())
