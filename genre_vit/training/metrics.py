"""Classification metrics at window and track level, computed with scikit-learn.

A track's probabilities are the mean of its windows' probabilities over the windows with music, as in
`analyze_full_song` (`genre_vit.results.mean_window_probabilities`).
"""

import math
from collections.abc import Sequence

import numpy as np

from ..results import mean_window_probabilities


def track_probabilities(
    probabilities: np.ndarray, labels: np.ndarray, track_ids: Sequence[str], has_music: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Average window probabilities `(N, C)` per track -> `(tracks, C)`, their labels and ids (first-seen order).
    With `has_music` `(N,)` (the windows dataset's column), a track's silent windows are left out of its mean, as
    the analysis leaves them out.

    Raises ValueError if the windows of one track carry different labels.
    """
    order: dict[str, list[int]] = {}
    for index, track in enumerate(track_ids):
        order.setdefault(track, []).append(index)
    ids = list(order)
    music = np.ones(len(probabilities), dtype=bool) if has_music is None else np.asarray(has_music, dtype=bool)
    means = np.stack([mean_window_probabilities(probabilities[order[track]], music[order[track]]) for track in ids])
    track_labels = []
    for track in ids:
        values = np.unique(labels[order[track]])
        if values.size != 1:
            raise ValueError(f"The windows of track {track} have different labels {values.tolist()}.")
        track_labels.append(int(values[0]))
    return means, np.asarray(track_labels), ids


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray, label_names: Sequence[str]) -> dict:
    """Accuracy, macro precision/recall/F1, per-class precision/recall/F1/one-vs-rest AUC/support, confusion matrix.

    Args:
        labels: `(N,)` true class ids.
        probabilities: `(N, C)` predicted probabilities.
        label_names: `C` class names.

    AUC is None for a class with no positive or no negative example (it is undefined there).
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score

    classes = list(range(len(label_names)))
    predictions = probabilities.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=classes, zero_division=0
    )
    macro = precision_recall_fscore_support(labels, predictions, labels=classes, average="macro", zero_division=0)
    per_class = {}
    for index, name in enumerate(label_names):
        positives = labels == index
        auc = None
        if 0 < positives.sum() < len(labels):
            auc = float(roc_auc_score(positives, probabilities[:, index]))
        per_class[name] = {
            "precision": float(precision[index]),
            "recall": float(recall[index]),
            "f1": float(f1[index]),
            "auc": auc,
            "support": int(support[index]),
        }
    aucs = [value["auc"] for value in per_class.values() if value["auc"] is not None]
    return {
        "count": int(len(labels)),
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_precision": float(macro[0]),
        "macro_recall": float(macro[1]),
        "macro_f1": float(macro[2]),
        "macro_auc": float(np.mean(aucs)) if aucs else None,
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(labels, predictions, labels=classes).tolist(),
    }


def evaluate_predictions(
    probabilities: np.ndarray,
    labels: np.ndarray,
    track_ids: Sequence[str],
    label_names: Sequence[str],
    has_music: np.ndarray | None = None,
) -> dict:
    """`{"labels": names, "window": metrics, "track": metrics}`; tracks are scored as `track_probabilities` does."""
    track_probs, track_labels, _ = track_probabilities(probabilities, labels, track_ids, has_music)
    return {
        "labels": list(label_names),
        "window": classification_metrics(labels, probabilities, label_names),
        "track": classification_metrics(track_labels, track_probs, label_names),
    }


def _cell(value: float | None) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def report_markdown(metrics: dict, title: str = "GenreViT evaluation") -> str:
    """A Markdown report: summary at both levels, then the per-genre table of each level."""
    lines = [f"# {title}", ""]
    context = metrics.get("context", {})
    if context:
        lines += [f"- {key}: {value}" for key, value in context.items()] + [""]
    lines += [
        "| level | items | accuracy | macro precision | macro recall | macro F1 | macro AUC |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for level in ("window", "track"):
        m = metrics[level]
        lines.append(
            f"| {level} | {m['count']} | {m['accuracy']:.4f} | {m['macro_precision']:.4f} | {m['macro_recall']:.4f} "
            f"| {m['macro_f1']:.4f} | {_cell(m['macro_auc'])} |"
        )
    for level in ("window", "track"):
        lines += [
            "",
            f"## Per genre, {level} level",
            "",
            "| genre | precision | recall | F1 | AUC | support |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, m in metrics[level]["per_class"].items():
            cells = (f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", _cell(m["auc"]), m["support"])
            lines.append(f"| {name} | " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines) + "\n"


__all__ = ["classification_metrics", "evaluate_predictions", "report_markdown", "track_probabilities"]
