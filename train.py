"""Train GenreViT: `python train.py --data PATH_OR_HUB_ID --output-dir DIR` (see --help).

The logic is in `genre_vit.training.trainer`."""

import sys

import genre_vit  # noqa: F401  (registers the model with the transformers Auto classes)
from genre_vit.training.trainer import main

if __name__ == "__main__":
    sys.exit(main())
