"""Cross-validate GenreViT by track, then train the model to ship: `python cross_validate.py --data PATH_OR_HUB_ID
--output-dir DIR [--folds 5] [train.py options]` (see --help; logic in genre_vit.training.cross_validation)."""

import sys

import genre_vit  # noqa: F401  (registers the model with the transformers Auto classes)
from genre_vit.training.cross_validation import main

if __name__ == "__main__":
    sys.exit(main())
