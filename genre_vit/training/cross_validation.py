"""K-fold cross-validation by track, then the model to ship: trained on all tracks but a validation part.

`cross_validate.py` at the repository root only calls `main()`; it takes every `train.py` option plus `--folds`.
For fold k of N (0-based), the tracks are split into N stratified, seeded folds; fold k is the test split and a
stratified `--validation-fraction` of the others chooses the checkpoint. Everything goes into `--output-dir`:

- `fold-k/`: the fold's `train.py` model folder; `fold-k/eval/`: its `evaluate.py` report on the held-out fold;
- `cross_validation.json`: per-fold metrics, their mean and standard deviation, and the pooled out-of-fold metrics
  (every track is tested exactly once over the folds, so the pooled per-genre table covers the whole dataset);
- `report.md`, `confusion_matrix.png`: the same, for people;
- `final/` (unless `--no-final-model`): a model trained with the same options on all tracks except a stratified
  validation part; its model card and a copy of `cross_validation.json` carry the cross-validated numbers, which
  are the honest estimate of how it does on tracks it has not seen.

A fold whose `eval/metrics.json` exists is not run again, so an interrupted run continues where it stopped.
"""

import dataclasses
import json
import multiprocessing
import sys
from pathlib import Path

import numpy as np

from ..configuration_genre_vit import GenreViTConfig
from ..files import save_figure_atomic, write_text_atomic
from ..model_folder import CROSS_VALIDATION_FILE, MODEL_CARD_FILE, RUN_FILE
from .evaluation import read_predictions_csv, run_evaluation
from .metrics import evaluate_predictions
from .model_card import cross_validation_markdown, format_mean_std
from .options import TRAINING_OPTIONS, CrossValidationArguments, EvaluationArguments, parse
from .trainer import TrainingOptions

REPORT_FILE = "report.md"

SUMMARY_METRICS = (
    ("window", "accuracy"),
    ("track", "accuracy"),
    ("window", "macro_f1"),
    ("track", "macro_f1"),
    ("window", "macro_auc"),
    ("track", "macro_auc"),
)
"""(level, metric) pairs reported per fold and as mean ± std."""


def fold_folder(output_dir: Path, fold: int) -> Path:
    return Path(output_dir) / f"fold-{fold}"


def summarize_folds(fold_dirs: list[Path]) -> dict:
    """Per-fold metrics (from each `eval/metrics.json`), mean and sample standard deviation over the folds, and the
    metrics of all out-of-fold predictions pooled."""
    per_fold = []
    pooled_parts = []
    for fold_dir in fold_dirs:
        metrics = json.loads((fold_dir / "eval" / "metrics.json").read_text())
        run = json.loads((fold_dir / RUN_FILE).read_text())
        per_fold.append(
            {
                "fold": fold_dir.name,
                "test_tracks": metrics["track"]["count"],
                "test_windows": metrics["window"]["count"],
                # the checkpoint's validation accuracy, or the linear probe's cross-validated accuracy
                "selection_accuracy": run["validation_metrics"].get(
                    "eval_accuracy", run["validation_metrics"].get("probe_cross_validation_accuracy")
                ),
                "epochs_run": run["epochs_run"],
                "train_seconds": run["train_seconds"],
                **{f"{level}_{name}": metrics[level][name] for level, name in SUMMARY_METRICS},
            }
        )
        pooled_parts.append(read_predictions_csv(fold_dir / "eval"))
    names = pooled_parts[0][3]
    if any(part[3] != names for part in pooled_parts):
        raise ValueError("The folds were evaluated with different label sets.")
    track_ids = [track for part in pooled_parts for track in part[2]]
    if len(set(track_ids)) != sum(len(set(part[2])) for part in pooled_parts):
        raise ValueError("A track was tested in more than one fold; the folds are not a partition.")
    pooled = evaluate_predictions(
        np.concatenate([part[0] for part in pooled_parts]),
        np.concatenate([part[1] for part in pooled_parts]),
        track_ids,
        names,
        np.concatenate([part[4] for part in pooled_parts]),
    )
    summary = {}
    for level, name in SUMMARY_METRICS:
        values = np.array([fold[f"{level}_{name}"] for fold in per_fold if fold[f"{level}_{name}"] is not None])
        summary[f"{level}_{name}"] = {
            "mean": float(values.mean()) if values.size else None,
            "std": float(values.std(ddof=1)) if values.size > 1 else None,
        }
    return {
        "folds": len(per_fold),
        "per_fold": per_fold,
        "mean_std": summary,
        "pooled": pooled,
        "train_seconds": float(sum(fold["train_seconds"] for fold in per_fold)),
    }


def write_summary(summary: dict, output_dir: Path, command: str) -> None:
    from matplotlib.figure import Figure

    from ..plotting import plot_confusion_matrix

    output_dir = Path(output_dir)
    write_text_atomic(output_dir / CROSS_VALIDATION_FILE, json.dumps(summary | {"command": command}, indent=2))
    write_text_atomic(
        output_dir / REPORT_FILE,
        f"# GenreViT cross-validation\n\n`{command}`\n\n" + cross_validation_markdown(summary),
    )
    names = summary["pooled"]["labels"]
    figure = Figure(figsize=(15, 6.5), layout="constrained")
    window_axes, track_axes = figure.subplots(1, 2)
    plot_confusion_matrix(
        summary["pooled"]["window"]["confusion_matrix"], names, "Windows, out of fold", ax=window_axes
    )
    plot_confusion_matrix(summary["pooled"]["track"]["confusion_matrix"], names, "Tracks, out of fold", ax=track_axes)
    save_figure_atomic(figure, output_dir / "confusion_matrix.png")


def _train_in_fresh_process(options: TrainingOptions) -> dict:
    """`run_training` in a spawned process. Why: featurising forks worker processes (`datasets.map` with
    `num_proc`), and forking a process whose torch thread pools have already run can deadlock the children; a fresh
    process per model also returns all of its memory."""
    from concurrent.futures import ProcessPoolExecutor

    from .trainer import run_training

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as executor:
        return executor.submit(run_training, options).result()


def run_cross_validation(options: TrainingOptions, no_final_model: bool, command: str) -> dict:
    """Train and evaluate every fold (skipping finished ones), summarise, then train the final model. `command` is
    recorded with the results."""
    from .model_card import model_card

    output_dir = Path(options.training.output_dir)
    folds = options.split.folds
    fold_dirs = []
    for fold in range(folds):
        folder = fold_folder(output_dir, fold)
        fold_dirs.append(folder)
        if (folder / "eval" / "metrics.json").exists():
            print(f"fold {fold}: already evaluated in {folder}, kept", file=sys.stderr)
            continue
        _train_in_fresh_process(
            options.replace(split={"fold": fold}, training={"output_dir": str(folder), "push_to_hub": False})
        )
        # One process, many folds: after the first evaluation has run torch here, featurising must not fork.
        metrics = run_evaluation(
            EvaluationArguments(model=str(folder), output_dir=str(folder / "eval")),
            dataclasses.replace(options.data, num_proc=1),
        )
        print(
            f"fold {fold}: window accuracy {metrics['window']['accuracy']:.4f}, "
            f"track accuracy {metrics['track']['accuracy']:.4f}",
            file=sys.stderr,
        )
    summary = summarize_folds(fold_dirs)
    write_summary(summary, output_dir, command)

    if not no_final_model:
        final_dir = output_dir / "final"
        validation = options.split.validation_fraction
        run = _train_in_fresh_process(
            options.replace(
                split={"folds": None, "fold": 0, "split_fractions": [1 - validation, validation, 0.0]},
                training={"output_dir": str(final_dir)},
            )
        )
        run["cross_validation"] = summary
        write_text_atomic(final_dir / CROSS_VALIDATION_FILE, json.dumps(summary | {"command": command}, indent=2))
        write_text_atomic(final_dir / MODEL_CARD_FILE, model_card(run, GenreViTConfig.from_pretrained(final_dir)))
    return summary


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else [str(value) for value in argv]
    description = (
        "K-fold track-level cross-validation of GenreViT with train.py's options, then a final model trained on all "
        "tracks but a validation part."
    )
    *groups, cross_validation = parse(
        (*TRAINING_OPTIONS, CrossValidationArguments), argv, prog="cross_validate.py", description=description
    )
    options = TrainingOptions(*groups)
    if options.split.split_files:
        print("cross_validate.py: error: --split-files does not apply; the folds are the split.", file=sys.stderr)
        return 2
    if not options.split.folds:
        options = options.replace(split={"folds": 5})
    try:
        summary = run_cross_validation(
            options, cross_validation.no_final_model, command="python cross_validate.py " + " ".join(argv)
        )
    except ValueError as error:
        print(f"cross_validate.py: error: {error}", file=sys.stderr)
        return 2
    window, track = summary["mean_std"]["window_accuracy"], summary["mean_std"]["track_accuracy"]
    print(
        f"{summary['folds']}-fold cross-validation: window accuracy {format_mean_std(window)}, "
        f"track accuracy {format_mean_std(track)}; report in {Path(options.training.output_dir) / REPORT_FILE}"
    )
    return 0


__all__ = ["main", "run_cross_validation", "summarize_folds"]
