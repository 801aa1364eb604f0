"""Calibrate a GenreViT model: its probe refitted on every GTZAN clip with a genre distance, and the temperature
and "none of these genres" threshold chosen on the Emotify validation half (`genre_vit.training.calibration`).

    python scripts/calibrate.py --model checkpoints/genre-vit-gtzan --gtzan ../shared/data/gtzan \
        --emotify ../shared/data/unlabelled-music/emotify --output runs/calibrated --work-dir runs/calibration

The probe takes train.py's probe and teacher options, e.g. the shipped model's:

    ... --teacher-targets runs/teacher/ensemble-corpus.npz --teacher-output genre_probabilities \
        --probe-unlabelled-data ../probe-music --probe-unlabelled-weight 3
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from genre_vit.training.calibration import DEFAULT_KEEP_QUANTILE, calibrate_model
from genre_vit.training.options import DistillationArguments, ProbeArguments, parse


@dataclass
class CalibrationArguments:
    """What is calibrated, on what, and where it goes."""

    model: Path = field(metadata={"help": "the GenreViT model folder to calibrate"})
    gtzan: Path = field(metadata={"help": "genre folders of the labelled GTZAN clips"})
    emotify: Path = field(metadata={"help": "Emotify's genre folders of numbered excerpts"})
    output: Path = field(metadata={"help": "folder for the calibrated model"})
    work_dir: Path = field(metadata={"help": "folder for the refitted model (kept for reruns)"})
    keep_quantile: float = field(
        default=DEFAULT_KEEP_QUANTILE,
        metadata={"help": "share of validation excerpts of GTZAN genres that the threshold keeps answered"},
    )
    cache_dir: Path | None = field(default=None, metadata={"help": "window cache folder (default: WORK_DIR's)"})


def main(argv=None) -> None:
    calibration, probe, teachers = parse(
        (CalibrationArguments, ProbeArguments, DistillationArguments),
        argv,
        prog="calibrate.py",
        description=__doc__.split("\n\n")[0],
    )
    try:
        record = calibrate_model(
            calibration.model,
            calibration.gtzan,
            calibration.emotify,
            calibration.output,
            calibration.work_dir,
            calibration.keep_quantile,
            probe,
            teachers,
            calibration.cache_dir,
        )
    except ValueError as error:  # the training library's bad-input errors, e.g. a folder that is not a model
        raise SystemExit(f"calibrate.py: error: {error}") from None
    print(json.dumps(record, indent=2, default=str))


if __name__ == "__main__":
    main()
