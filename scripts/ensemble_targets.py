"""The teacher ensemble's genre probabilities on unlabelled music: the distribution a student is distilled onto.

    python scripts/ensemble_targets.py --labelled-musicnn runs/teacher/msd-gtzan.npz \
        --musicnn runs/teacher/msd-corpus.npz --efficientat runs/teacher/efficientat-corpus.npz \
        --output runs/teacher/ensemble-corpus.npz [--strength 0.01 --prior-weight 0.5]

The ensemble is the best teacher row on the Emotify validation half (`scripts/protocol_table.py`): musicnn's probe
(a logistic regression on its mean `penultimate` features per track, fitted on the GTZAN labels of the labelled
file's tracks, their genre read from each file's folder) times EfficientAT's zero-shot genre probabilities to the
power `--prior-weight`, renormalised. The defaults are the strength and weight chosen there.

For every track of the unlabelled files, on EfficientAT's patch grid (4-s patches, the student's window), it stores
the patch start times (`KEY/start_seconds`, seconds) and the ensemble's `KEY/genre_probabilities` `(patches, 10)`:
the probe reads the mean of the musicnn patches centred in the EfficientAT patch. `train.py --teacher-targets FILE
--teacher-output genre_probabilities` matches a student's classifier to them (a KL divergence at
`--distillation-temperature`). The file is written atomically.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from teacher_files import save_npz_atomic

from genre_vit import GTZAN_GENRES
from genre_vit.training.distillation import DISTRIBUTION_OUTPUT, TeacherTargets
from genre_vit.training.teacher_ensemble import fit_probe, product_of_experts, track_means, tracks_of

GENRES = list(GTZAN_GENRES)


def ensemble_patches(
    probe, musicnn: TeacherTargets, zero_shot: TeacherTargets, key: str, prior_weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """`(start_seconds (P,), genre probabilities (P, 10))` of one track on the zero-shot teacher's patch grid."""
    starts = zero_shot.patch_starts[key]
    features = musicnn.window_targets(key, starts, zero_shot.patch_seconds).astype(np.float64)
    return starts, product_of_experts(probe(features), zero_shot.values[key], prior_weight).astype(np.float32)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labelled-musicnn", required=True, help="musicnn targets of the labelled GTZAN clips")
    parser.add_argument("--musicnn", required=True, help="musicnn targets of the unlabelled music")
    parser.add_argument("--efficientat", required=True, help="EfficientAT targets of the same unlabelled music")
    parser.add_argument("--output", required=True, help="the ensemble targets file (.npz)")
    parser.add_argument("--musicnn-output", default="penultimate")
    parser.add_argument("--strength", type=float, default=0.01, help="the probe's inverse regularisation (C)")
    parser.add_argument("--prior-weight", type=float, default=0.5, help="the zero-shot prior's exponent")
    args = parser.parse_args(argv)
    try:
        labelled = TeacherTargets.load(args.labelled_musicnn, args.musicnn_output)
        musicnn = TeacherTargets.load(args.musicnn, args.musicnn_output)
        zero_shot = TeacherTargets.load(args.efficientat, DISTRIBUTION_OUTPUT)
        if list(zero_shot.tags) != GENRES:
            raise ValueError(f"{args.efficientat} holds the genres {list(zero_shot.tags)}, not GTZAN's ten.")
        musicnn.check_tracks(list(zero_shot.values))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    tracks = tracks_of(labelled)
    labels = np.array([GENRES.index(track.genre) for track in tracks])
    probe = fit_probe(track_means([labelled], [t.key for t in tracks]), labels, args.strength, len(GENRES))

    arrays = {
        "genres": np.array(GENRES),
        "patch_seconds": np.float32(zero_shot.patch_seconds),
        "ensemble": np.array(
            f"{args.musicnn_output} probe (C {args.strength:g}) x EfficientAT zero-shot ** {args.prior_weight:g}"
        ),
    }
    mix = np.zeros(len(GENRES))
    for key in sorted(zero_shot.values):
        starts, probabilities = ensemble_patches(probe, musicnn, zero_shot, key, args.prior_weight)
        arrays[f"{key}/start_seconds"] = starts
        arrays[f"{key}/{DISTRIBUTION_OUTPUT}"] = probabilities
        mix += np.bincount(probabilities.mean(axis=0).argmax(keepdims=True), minlength=len(GENRES))
    save_npz_atomic(Path(args.output), **arrays)
    print(f"{len(zero_shot.values)} tracks; the ensemble's genre of each track's mean:")
    print(", ".join(f"{genre} {int(count)}" for genre, count in zip(GENRES, mix)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
