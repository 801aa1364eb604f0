"""Evaluation of a model on a split of a dataset, at window and track level. `evaluate.py` only calls `main()`; the
options are `EvaluationArguments`, `DataArguments` and `SplitArguments` (genre_vit.training.options).

Outputs in `--output-dir` (each written atomically): `metrics.json`, `report.md` (per-genre tables),
`confusion_matrix.png` (window and track level), `roc_curves.png` (window level, one vs rest) and
`predictions.csv` (one row per window, so every number can be recomputed).
"""

import csv
import io
import json
import sys
from pathlib import Path

import numpy as np

from ..analysis import GenreClassifier
from ..configuration_genre_vit import GenreViTConfig
from ..feature_extraction_genre_vit import GenreViTFeatureExtractor
from ..files import save_figure_atomic, write_text_atomic
from ..model_folder import RUN_FILE
from .metrics import evaluate_predictions, report_markdown
from .options import EVALUATION_OPTIONS, DataArguments, EvaluationArguments, SplitArguments, parse


def check_labels(model_labels: list[str], data_labels: list[str]) -> np.ndarray:
    """Map data label ids to model label ids by name; ValueError if the two label sets disagree."""
    if set(model_labels) != set(data_labels):
        only_model = sorted(set(model_labels) - set(data_labels))
        only_data = sorted(set(data_labels) - set(model_labels))
        raise ValueError(
            f"The model's labels and the dataset's labels disagree: only in the model: {only_model or 'none'}; "
            f"only in the dataset: {only_data or 'none'}."
        )
    return np.array([model_labels.index(name) for name in data_labels])


def select_tracks(tracks, evaluation: EvaluationArguments, data: DataArguments, split: SplitArguments):
    """The tracks to evaluate: a split of the training run, of split files, of a fresh seeded split, or all."""
    from .data import split_tracks, split_tracks_from_files

    if split.split_files:
        return split_tracks_from_files(tracks, split.split_files)[evaluation.split], (
            f"{evaluation.split} of {split.split_files}"
        )
    if evaluation.split == "all":
        return tracks, "all tracks"
    run_file = Path(evaluation.model) / RUN_FILE
    if run_file.exists() and not evaluation.ignore_training_split:
        wanted = set(json.loads(run_file.read_text())["splits"][evaluation.split])
        if not wanted:
            raise ValueError(
                f"{evaluation.model} recorded no {evaluation.split} tracks: its run fitted every labelled track it "
                "had. Evaluate it on music it was not fitted on with --split all --ignore-training-split, or on "
                "split lists of your own with --split-files DIR."
            )
        indices = [i for i, track in enumerate(tracks["track_id"]) if track in wanted]
        if not indices:
            raise ValueError(f"None of the {evaluation.split} tracks of {run_file} are in {data.data}.")
        return tracks.select(indices), (
            f"{evaluation.split} split recorded in {RUN_FILE} ({len(indices)} of {len(wanted)} tracks found)"
        )
    fractions = tuple(split.split_fractions)
    return split_tracks(tracks, fractions, seed=evaluation.seed)[evaluation.split], (
        f"{evaluation.split} of a stratified {fractions} split, seed {evaluation.seed}"
    )


_PREDICTION_COLUMNS = ["track_id", "start_seconds", "has_music", "label", "predicted"]


def predictions_csv(track_ids, start_seconds, has_music, labels, probabilities, label_names) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*_PREDICTION_COLUMNS, *label_names])
    for track, start, music, label, row in zip(track_ids, start_seconds, has_music, labels, probabilities):
        predicted = label_names[int(row.argmax())]
        writer.writerow([track, f"{start:.3f}", int(music), label_names[label], predicted, *(f"{p:.6f}" for p in row)])
    return buffer.getvalue()


def read_predictions_csv(folder: str | Path) -> tuple[np.ndarray, np.ndarray, list[str], list[str], np.ndarray]:
    """The window probabilities `(N, C)`, label ids `(N,)`, track ids, label names and whether each window has music
    `(N,)` of a `predictions.csv` that `run_evaluation` wrote into `folder`."""
    first = len(_PREDICTION_COLUMNS)
    with open(Path(folder) / "predictions.csv", newline="") as file:
        reader = csv.reader(file)
        names = next(reader)[first:]
        rows = list(reader)
    probabilities = np.array([[float(value) for value in row[first:]] for row in rows], dtype=np.float64)
    labels = np.array([names.index(row[3]) for row in rows])
    has_music = np.array([row[2] == "1" for row in rows], dtype=bool)
    return probabilities, labels, [row[0] for row in rows], names, has_music


def run_evaluation(evaluation: EvaluationArguments, data: DataArguments, split: SplitArguments | None = None) -> dict:
    """Score `evaluation.model` on the chosen tracks; write the reports into `evaluation.output_dir`."""
    from matplotlib.figure import Figure

    from ..plotting import plot_confusion_matrix, plot_roc_curves
    from .data import label_names, load_tracks_for, make_windows
    from .metrics import track_probabilities

    split = split or SplitArguments()
    # Windows are computed before the model is loaded: featurising forks worker processes (num_proc), and forking a
    # process whose torch thread pools have already run can deadlock the workers.
    try:
        config = GenreViTConfig.from_pretrained(evaluation.model)
        feature_extractor = GenreViTFeatureExtractor.from_pretrained(evaluation.model)
    except OSError as error:
        raise ValueError(f"{evaluation.model} is not a GenreViT model folder: {error}") from error
    model_labels = [config.id2label[index] for index in range(config.num_labels)]
    tracks = load_tracks_for(data)
    to_model_ids = check_labels(model_labels, label_names(tracks))
    selected, description = select_tracks(tracks, evaluation, data, split)
    if len(selected) == 0:
        raise ValueError(f"The {evaluation.split} split is empty.")
    windows = make_windows(selected, feature_extractor, cache_dir=data.cache_dir, num_proc=data.num_proc)
    if len(windows) == 0:
        raise ValueError("No readable track in the selected split.")
    classifier = GenreClassifier.from_pretrained(
        evaluation.model, batch_size=evaluation.batch_size, device=evaluation.device
    )
    table = windows.with_format("numpy")
    probabilities = np.concatenate(
        [
            classifier.window_probabilities(table[start : start + 256]["input_values"])
            for start in range(0, len(windows), 256)
        ]
    )
    labels = to_model_ids[np.asarray(windows["labels"])]
    track_ids = windows["track_id"]
    has_music = np.asarray(windows["has_music"], dtype=bool)
    metrics = evaluate_predictions(probabilities, labels, track_ids, model_labels, has_music)
    metrics["context"] = {
        "model": str(evaluation.model),
        "data": str(data.data),
        "split": description,
        "tracks": len(set(track_ids)),
        "windows": len(windows),
    }

    output = Path(evaluation.output_dir)
    write_text_atomic(output / "metrics.json", json.dumps(metrics, indent=2))
    write_text_atomic(output / "report.md", report_markdown(metrics))
    write_text_atomic(
        output / "predictions.csv",
        predictions_csv(track_ids, windows["start_seconds"], has_music, labels, probabilities, model_labels),
    )
    confusion = Figure(figsize=(15, 6.5), layout="constrained")
    window_axes, track_axes = confusion.subplots(1, 2)
    plot_confusion_matrix(metrics["window"]["confusion_matrix"], model_labels, "Windows", ax=window_axes)
    plot_confusion_matrix(metrics["track"]["confusion_matrix"], model_labels, "Tracks (mean of windows)", ax=track_axes)
    save_figure_atomic(confusion, output / "confusion_matrix.png")
    roc = Figure(figsize=(14, 6.5), layout="constrained")
    window_roc, track_roc = roc.subplots(1, 2)
    plot_roc_curves(labels, probabilities, model_labels, "Windows, one vs rest", ax=window_roc)
    track_probs, track_labels, _ = track_probabilities(probabilities, labels, track_ids, has_music)
    plot_roc_curves(track_labels, track_probs, model_labels, "Tracks, one vs rest", ax=track_roc)
    save_figure_atomic(roc, output / "roc_curves.png")
    return metrics


def main(argv=None) -> int:
    evaluation, data, split = parse(
        EVALUATION_OPTIONS, argv, prog="evaluate.py", description="Evaluate a GenreViT model at window and track level."
    )
    try:
        metrics = run_evaluation(evaluation, data, split)
    except ValueError as error:
        print(f"evaluate.py: error: {error}", file=sys.stderr)
        return 2
    window, track = metrics["window"], metrics["track"]
    print(
        f"window accuracy {window['accuracy']:.4f} ({window['count']} windows), "
        f"track accuracy {track['accuracy']:.4f} ({track['count']} tracks); report in {evaluation.output_dir}"
    )
    return 0


__all__ = ["check_labels", "main", "read_predictions_csv", "run_evaluation"]
