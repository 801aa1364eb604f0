"""Calibrate a GenreViT model: its probe refitted on every GTZAN clip with a genre distance, and the temperature
and "none of these genres" threshold chosen on the Emotify validation half (`genre_vit.training.calibration`).

    python scripts/calibrate.py --model checkpoints/genre-vit-gtzan --gtzan ../shared/data/gtzan \
        --emotify ../shared/data/unlabelled-music/emotify --output runs/calibrated --work-dir runs/calibration
"""

import argparse
import json
import shlex
from pathlib import Path

from genre_vit.training.calibration import DEFAULT_KEEP_QUANTILE, calibrate_model


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="the GenreViT model folder to calibrate")
    parser.add_argument("--gtzan", type=Path, required=True, help="genre folders of the labelled GTZAN clips")
    parser.add_argument("--emotify", type=Path, required=True, help="Emotify's genre folders of numbered excerpts")
    parser.add_argument("--output", type=Path, required=True, help="folder for the calibrated model")
    parser.add_argument("--work-dir", type=Path, required=True, help="folder for the fold models (kept for reruns)")
    parser.add_argument(
        "--keep-quantile",
        type=float,
        default=DEFAULT_KEEP_QUANTILE,
        help="share of validation excerpts of GTZAN genres that the threshold keeps answered",
    )
    parser.add_argument(
        "--probe-options",
        default="",
        help="extra train.py options for every probe, as one string, e.g. '--probe-window-offsets 0.5 1'",
    )
    args = parser.parse_args(argv)
    options = shlex.split(args.probe_options)
    try:
        record = calibrate_model(
            args.model, args.gtzan, args.emotify, args.output, args.work_dir, args.keep_quantile, options
        )
    except ValueError as error:  # the training library's bad-input errors, e.g. a folder that is not a model
        parser.exit(2, f"calibrate.py: error: {error}\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
