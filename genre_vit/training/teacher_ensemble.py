"""The teachers as genre classifiers, and their ensembles: the anchors a distilled student has to beat.

Every system here answers a track with ten genre probabilities from a teacher targets file
(`scripts/efficientat_teacher.py`, `scripts/musicnn_teacher.py`):

- **zero-shot**: EfficientAT's genre classes (`genre_probabilities`, a softmax over their logits), averaged over a
  track's patches; it fitted no GTZAN label.
- **probe**: a logistic regression on a track's mean teacher features (standardised), fitted on the GTZAN labels.
- **product of experts**: a probe's probabilities times the zero-shot probabilities to the power `weight`,
  renormalised; `weight` is chosen on the validation half of the cross-dataset set, never on its test half.

Selection and report follow the protocols of `scripts/teacher_table.py`: Emotify's excerpts with odd numbers choose,
those with even numbers report.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .distillation import TeacherTargets

PROBE_STRENGTHS = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
"""Inverse regularisation strengths (sklearn's C) a probe chooses from: 99 clips and hundreds of features need
strong regularisation."""

PRIOR_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
"""Weights of the zero-shot prior a product of experts chooses from (0: the probe alone)."""


@dataclass(frozen=True)
class Track:
    """A track of a protocol: its key in the targets files, its genre folder and, for Emotify, its half."""

    key: str
    genre: str
    half: str  # "validation", "test" or "" (GTZAN)


def tracks_of(targets: TeacherTargets) -> list[Track]:
    """The tracks of a targets file, with the genre read from each file's folder and Emotify's half from its number
    (odd: validation, even: test)."""
    tracks = []
    with np.load(targets.source, allow_pickle=False) as data:
        for key in sorted(targets.values):
            source = Path(str(data[f"{key}/source"]))
            half = ""
            if source.stem.isdigit():
                half = "validation" if int(source.stem) % 2 else "test"
            tracks.append(Track(key=key, genre=source.parent.name, half=half))
    return tracks


def track_means(targets: Sequence[TeacherTargets], keys: Sequence[str]) -> np.ndarray:
    """`(tracks, D)`: each track's mean over its patches of every teacher's output, concatenated."""
    return np.stack([np.concatenate([t.track_target(key) for t in targets]) for key in keys]).astype(np.float64)


def fit_probe(features: np.ndarray, labels: np.ndarray, strength: float, classes: int):
    """A standardised logistic regression; returns `predict(features) -> (n, classes)` probabilities."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=strength, max_iter=5000))
    model.fit(features, labels)

    def predict(new_features: np.ndarray) -> np.ndarray:
        probabilities = np.zeros((len(new_features), classes))
        probabilities[:, model.classes_] = model.predict_proba(new_features)
        return probabilities

    return predict


def product_of_experts(probe: np.ndarray, prior: np.ndarray, weight: float) -> np.ndarray:
    """`probe * prior ** weight`, renormalised per row (`(n, C)` each)."""
    logits = np.log(np.maximum(probe, 1e-12)) + weight * np.log(np.maximum(prior, 1e-12))
    logits -= logits.max(axis=1, keepdims=True)
    product = np.exp(logits)
    return product / product.sum(axis=1, keepdims=True)


def cross_validated_probabilities(
    features: np.ndarray, labels: np.ndarray, strength: float, classes: int, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Out-of-fold probe probabilities `(n, C)` from a stratified `folds`-fold split by track."""
    from sklearn.model_selection import StratifiedKFold

    out = np.zeros((len(labels), classes))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(features, labels):
        out[test] = fit_probe(features[train], labels[train], strength, classes)(features[test])
    return out


__all__ = [
    "PRIOR_WEIGHTS",
    "PROBE_STRENGTHS",
    "Track",
    "cross_validated_probabilities",
    "fit_probe",
    "product_of_experts",
    "track_means",
    "tracks_of",
]
