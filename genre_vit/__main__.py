"""`python -m genre_vit ...`: see `genre_vit.cli`."""

import sys

from .cli import main

sys.exit(main())
