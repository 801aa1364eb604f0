"""The comparison rows of the bundled model's ablation table, on the same cross-validation folds as train.py.

    python scripts/baselines.py --data ../shared/data/gtzan --teacher-targets runs/teacher/msd.npz \
        --output runs/baselines.json

Rows (window and track accuracy and macro F1, mean ± standard deviation over the folds):
- `musicnn zero-shot`: musicnn's MSD tagger with a fixed tag-to-genre mapping (classical and reggae have no tag, so
  they are never predicted); a genre's score is the maximum over its tags of the mean tag probability over the
  window's (or the clip's) teacher patches.
- `hand-made features + LR`: MFCC, spectral-contrast and chroma means and deviations, zero-crossing rate, spectral
  centroid and tempo (librosa) of each window and of each clip, standardised, and a logistic regression fitted per
  fold on the non-test tracks only.
- `teacher probe (musicnn features + LR)`: the same logistic regression on musicnn MSD's `max_pool` features and tag
  probabilities, averaged over the window's (or the clip's) patches; the ceiling that distillation aims at.
Folds: `genre_vit.training.data.split_tracks_for_fold` (stratified by genre, seed 42), so every row is scored on the
same tracks as `cross_validate.py`. Track scores at window level are the windows of the test tracks, as cut by the
feature extractor's window rule.
"""

import argparse
import json
import sys
import time

import numpy as np

from genre_vit import GenreViTFeatureExtractor
from genre_vit.audio import SAMPLING_RATE, load_audio
from genre_vit.files import write_text_atomic
from genre_vit.training.anchors import handmade_features, musicnn_zero_shot_scores, probe
from genre_vit.training.data import label_names, load_tracks, split_tracks_for_fold
from genre_vit.training.distillation import TeacherTargets


def scores_to_metrics(labels, predictions, num_labels) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(f1_score(labels, predictions, labels=range(num_labels), average="macro", zero_division=0)),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--teacher-targets", required=True, help="musicnn MSD targets (scripts/musicnn_teacher.py)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--validation-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", required=True, help="JSON file with every fold's numbers and the table")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    tracks = load_tracks(args.data)
    genres = label_names(tracks)
    extractor = GenreViTFeatureExtractor()
    max_pool = TeacherTargets.load(args.teacher_targets, "max_pool")
    tag_probabilities = TeacherTargets.load(args.teacher_targets, "tag_probabilities")
    max_pool.check_tracks(tracks["track_id"])
    tags = list(tag_probabilities.tags)

    per_track = {}
    for path, track, label in zip(tracks["audio_path"], tracks["track_id"], tracks["label"]):
        waveform = load_audio(path)
        start_samples = extractor.window_start_samples(len(waveform))
        starts = start_samples / SAMPLING_RATE
        window = extractor.window_samples
        window_features = np.stack(
            [handmade_features(waveform[start : start + window], SAMPLING_RATE) for start in start_samples]
        )
        tags_window = tag_probabilities.window_targets(track, starts, extractor.window_seconds)
        tags_clip = tag_probabilities.track_target(track)
        per_track[track] = {
            "label": label,
            "windows": len(starts),
            "handmade_window": window_features,
            "handmade_clip": handmade_features(waveform, SAMPLING_RATE),
            "teacher_window": np.hstack(
                [max_pool.window_targets(track, starts, extractor.window_seconds), tags_window]
            ),
            "teacher_clip": np.concatenate([max_pool.track_target(track), tags_clip]),
            "tags_window": tags_window,
            "tags_clip": tags_clip,
        }
    features_seconds = time.perf_counter() - started
    print(f"features of {len(per_track)} tracks in {features_seconds:.0f} s", file=sys.stderr)

    probe_rows = {"hand-made features + LR": "handmade", "teacher probe (musicnn features + LR)": "teacher"}
    # The same window probes with the track decided as GenreViT decides it: by the mean of its window probabilities.
    window_mean_rows = {row: f"{row} (track = mean of window probabilities)" for row in probe_rows}
    rows = {"musicnn zero-shot": []} | {row: [] for row in probe_rows} | {row: [] for row in window_mean_rows.values()}
    for fold in range(args.folds):
        splits = split_tracks_for_fold(tracks, args.folds, fold, args.validation_fraction, args.seed)
        test_ids = list(splits["test"]["track_id"])
        train_ids = list(splits["train"]["track_id"]) + list(splits["validation"]["track_id"])
        test_track_labels = np.array([per_track[t]["label"] for t in test_ids])
        test_window_labels = np.concatenate([[per_track[t]["label"]] * per_track[t]["windows"] for t in test_ids])

        zero_shot_windows = musicnn_zero_shot_scores(
            np.vstack([per_track[t]["tags_window"] for t in test_ids]), tags, genres
        ).argmax(axis=1)
        zero_shot_tracks = musicnn_zero_shot_scores(
            np.stack([per_track[t]["tags_clip"] for t in test_ids]), tags, genres
        ).argmax(axis=1)
        rows["musicnn zero-shot"].append(
            {
                "fold": fold,
                "window": scores_to_metrics(test_window_labels, zero_shot_windows, len(genres)),
                "track": scores_to_metrics(test_track_labels, zero_shot_tracks, len(genres)),
            }
        )
        test_window_tracks = np.concatenate([[index] * per_track[t]["windows"] for index, t in enumerate(test_ids)])
        for row, kind in probe_rows.items():
            train_window_x = np.vstack([per_track[t][f"{kind}_window"] for t in train_ids])
            train_window_y = np.concatenate([[per_track[t]["label"]] * per_track[t]["windows"] for t in train_ids])
            window_probabilities, classes = probe(
                train_window_x, train_window_y, np.vstack([per_track[t][f"{kind}_window"] for t in test_ids])
            )
            clip_probabilities, clip_classes = probe(
                np.stack([per_track[t][f"{kind}_clip"] for t in train_ids]),
                np.array([per_track[t]["label"] for t in train_ids]),
                np.stack([per_track[t][f"{kind}_clip"] for t in test_ids]),
            )
            rows[row].append(
                {
                    "fold": fold,
                    "window": scores_to_metrics(
                        test_window_labels, classes[window_probabilities.argmax(1)], len(genres)
                    ),
                    "track": scores_to_metrics(
                        test_track_labels, clip_classes[clip_probabilities.argmax(1)], len(genres)
                    ),
                }
            )
            track_means = np.stack(
                [window_probabilities[test_window_tracks == i].mean(0) for i in range(len(test_ids))]
            )
            rows[window_mean_rows[row]].append(
                {
                    "fold": fold,
                    "window": rows[row][-1]["window"],
                    "track": scores_to_metrics(test_track_labels, classes[track_means.argmax(1)], len(genres)),
                }
            )

    summary = {}
    lines = [
        "| row | window accuracy | track accuracy | window macro F1 | track macro F1 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row, folds in rows.items():
        stats = {}
        for level in ("window", "track"):
            for metric in ("accuracy", "macro_f1"):
                values = np.array([fold[level][metric] for fold in folds])
                stats[f"{level}_{metric}"] = {"mean": float(values.mean()), "std": float(values.std(ddof=1))}
        summary[row] = stats
        cells = [
            f"{stats[key]['mean']:.3f} ± {stats[key]['std']:.3f}"
            for key in ("window_accuracy", "track_accuracy", "window_macro_f1", "track_macro_f1")
        ]
        lines.append(f"| {row} | {' | '.join(cells)} |")
    table = "\n".join(lines)
    record = {
        "data": args.data,
        "tracks": len(tracks),
        "folds": args.folds,
        "seed": args.seed,
        "teacher_targets": args.teacher_targets,
        "seconds": time.perf_counter() - started,
        "rows": rows,
        "summary": summary,
        "table": table,
    }
    write_text_atomic(args.output, json.dumps(record, indent=2))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
