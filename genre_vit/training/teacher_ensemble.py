"""The teachers as genre classifiers, and their ensembles: the anchors a distilled student has to beat.

Every system here answers a track with ten genre probabilities from a teacher targets file
(`scripts/efficientat_teacher.py`, `scripts/musicnn_teacher.py`):

- **zero-shot**: EfficientAT's genre classes (`genre_probabilities`, a softmax over their logits), averaged over a
  track's patches; it fitted no GTZAN label.
- **probe**: a logistic regression on a track's mean teacher features (standardised), fitted on the GTZAN labels.
- **product of experts**: a probe's probabilities times the zero-shot probabilities to the power `weight`,
  renormalised; `weight` is chosen on the validation half of the cross-dataset set, never on its test half.

`teacher_systems` makes every such row, each choice (probe strength, prior weight) made on the tracks it is told
to choose on: in `scripts/protocol_table.py`, Emotify's excerpts with odd numbers; those with even numbers report.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .distillation import TeacherTargets
from .emotify import half_of

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
            tracks.append(Track(key=key, genre=source.parent.name, half=half_of(source)))
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


@dataclass(frozen=True)
class TeacherSystem:
    """A teacher row: its name, what was chosen for it, its `(n, C)` probabilities for the evaluation tracks and
    for the GTZAN tracks (zero-shot, or out of fold under `gtzan_protocol`)."""

    name: str
    chosen: dict
    probabilities: np.ndarray
    gtzan_probabilities: np.ndarray
    gtzan_protocol: str


def teacher_systems(
    efficientat: tuple[str, str],
    musicnn: tuple[str, str] | None,
    gtzan_keys: Sequence[str],
    gtzan_labels: np.ndarray,
    keys: Sequence[str],
    choose_on: np.ndarray,
    choose_labels: np.ndarray,
    classes: int,
    musicnn_output: str = "penultimate",
) -> list[TeacherSystem]:
    """Every teacher row: EfficientAT zero-shot; for each feature set (EfficientAT's embedding, musicnn's
    `musicnn_output`, both concatenated: "EfficientAT + musicnn") its probe and its product of experts with the
    zero-shot prior.

    `efficientat` and `musicnn` are `(GTZAN targets file, evaluation targets file)`; `keys` the evaluation tracks'
    keys; `choose_on` the indices into `keys` whose `choose_labels` pick each row's probe strength and prior weight
    (ties go to the stronger regularisation and the lighter prior). The probes are fitted on every GTZAN track
    (`gtzan_labels`); their GTZAN figures are 5-fold cross-validated with the chosen strength."""
    zero_shot = [TeacherTargets.load(path, "genre_probabilities") for path in efficientat]
    feature_sets = {"EfficientAT": [[TeacherTargets.load(path, "embedding") for path in efficientat]]}
    if musicnn:
        feature_sets["musicnn"] = [[TeacherTargets.load(path, musicnn_output) for path in musicnn]]
        feature_sets["EfficientAT + musicnn"] = feature_sets["EfficientAT"] + feature_sets["musicnn"]
    prior, gtzan_prior = track_means([zero_shot[1]], keys), track_means([zero_shot[0]], gtzan_keys)
    systems = [TeacherSystem("EfficientAT zero-shot", {}, prior, gtzan_prior, "zero-shot")]

    for name, targets in feature_sets.items():
        train = track_means([pair[0] for pair in targets], gtzan_keys)
        evaluated = track_means([pair[1] for pair in targets], keys)
        systems += probe_systems(
            name, train, gtzan_labels, evaluated, choose_on, choose_labels, classes, (prior, gtzan_prior)
        )
    return systems


def probe_systems(
    name: str,
    train: np.ndarray,
    gtzan_labels: np.ndarray,
    evaluated: np.ndarray,
    choose_on: np.ndarray,
    choose_labels: np.ndarray,
    classes: int,
    priors: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[TeacherSystem]:
    """`NAME probe`, a logistic regression on features `train` `(tracks, D)` of the GTZAN tracks, answering the
    evaluation tracks' `evaluated` features; with `priors` (the zero-shot probabilities of the evaluation and the
    GTZAN tracks) also `NAME probe x EfficientAT zero-shot`. The strength and the prior's weight are those that
    name the most `choose_on` tracks right (ties to the stronger regularisation and the lighter prior)."""
    candidates = []  # (right on the choosing tracks, strength, weight, probabilities)
    for strength in PROBE_STRENGTHS:
        probe = fit_probe(train, gtzan_labels, strength, classes)(evaluated)
        for weight in PRIOR_WEIGHTS if priors is not None else (0.0,):
            combined = product_of_experts(probe, priors[0], weight) if weight else probe
            right = int((combined[choose_on].argmax(axis=1) == choose_labels).sum())
            candidates.append((right, strength, weight, combined))
    _, strength, _, probabilities = max((c for c in candidates if c[2] == 0), key=lambda c: c[0])
    out_of_fold = cross_validated_probabilities(train, gtzan_labels, strength, classes)
    systems = [TeacherSystem(f"{name} probe", {"strength": strength}, probabilities, out_of_fold, "5-fold CV")]
    if priors is not None:
        _, strength, weight, probabilities = max(candidates, key=lambda c: c[0])
        out_of_fold = cross_validated_probabilities(train, gtzan_labels, strength, classes)
        systems.append(
            TeacherSystem(
                f"{name} probe x EfficientAT zero-shot",
                {"strength": strength, "prior_weight": weight},
                probabilities,
                product_of_experts(out_of_fold, priors[1], weight),
                "5-fold CV",
            )
        )
    return systems


__all__ = [
    "PRIOR_WEIGHTS",
    "PROBE_STRENGTHS",
    "TeacherSystem",
    "Track",
    "cross_validated_probabilities",
    "fit_probe",
    "probe_systems",
    "product_of_experts",
    "teacher_systems",
    "track_means",
    "tracks_of",
]
