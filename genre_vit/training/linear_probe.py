"""Fit only the classifier of a pre-trained GenreViT: a linear probe of its frozen encoder.

With few labelled tracks (tens per genre), fine-tuning 25M parameters overfits or underfits, while the pooled
embedding of an encoder pre-trained by distillation (`train.py --classification-weight 0 --teacher-targets ...`)
already separates genres. `train.py --init-from MODEL --classifier-only` then:

1. embeds every training and validation window once with the frozen encoder (`(windows, hidden_size)`, the
   pooled, final-LayerNorm'd embedding that the classifier reads);
2. chooses the L2 strength among `--probe-strengths` (sklearn's `C`: larger is less regularised) by a grouped,
   stratified cross-validation over the training and validation tracks together (`PROBE_FOLDS` folds; a track's
   windows are always on the same side; best pooled held-out window accuracy, ties to the stronger regularisation);
3. fits the classifier with that strength on all of those windows: an L2-regularised multinomial logistic regression
   (full-batch L-BFGS, deterministic) on embeddings standardised with their mean and standard deviation;
4. folds the standardisation into the weights, so the shipped model is the seed architecture, `Linear(hidden, labels)`
   on the pooled embedding, with no extra layer;
5. fits the model's genre distance on the same windows (`fit_genre_distance`): each genre's mean embedding and the
   shared within-genre covariance (Ledoit-Wolf shrinkage, since 512 dimensions meet a few thousand windows), buffers
   that say how far a new window lies from every genre it learnt (`GenreViTGenreDistance`).

Why cross-validation rather than the validation split alone, as `train.py`'s other mode does: with ~14 validation
tracks, one track more or less right swings the choice; five folds over ~75 tracks choose steadily, and the final fit
then learns from every labelled track. On the 94 GTZAN clips (5 outer folds, the shipped encoder) this took the
track accuracy from 0.670 to 0.712 with the same encoder (runs recorded in the model card). The test split is never
embedded.
"""

import time
from dataclasses import dataclass

import numpy as np
import torch

DEFAULT_PROBE_STRENGTHS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
"""Inverse L2 strengths tried (sklearn's `C`, per window)."""

DEFAULT_PROBE_WINDOW_OFFSETS = (1.0,)
"""Shifts (seconds) of the extra windows the probe learns from: the 2-s grid moved by 1 s puts a window start between
every two of the grid's, which doubles the windows of each training track without new audio."""

PROBE_FOLDS = 5
"""Folds of the cross-validation that chooses the strength (fewer when there are fewer tracks per genre)."""

PROBE_SEED = 0
"""Seed of the fold assignment, so a run is reproducible."""


@torch.inference_mode()
def embed_windows(model, input_values: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Pooled embeddings `(windows, hidden_size)` float32 of `(windows, 1, F, T)` log-Mel windows."""
    model.eval()
    parameter = next(model.parameters())
    parts = []
    for start in range(0, len(input_values), batch_size):
        batch = torch.as_tensor(input_values[start : start + batch_size], device=parameter.device)
        tokens = model.forward_features(batch.to(parameter.dtype))
        parts.append(model.forward_head(tokens, pre_logits=True).float().cpu().numpy())
    return np.concatenate(parts) if parts else np.zeros((0, model.config.hidden_size), np.float32)


def fit_logistic_regression(
    features: np.ndarray,
    targets: np.ndarray,
    num_labels: int,
    strength: float,
    max_iterations: int = 500,
    sample_weight: np.ndarray | None = None,
    initial: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by full-batch L-BFGS, minimising the (weighted) mean cross-entropy plus
    `||W||^2 / (2 * strength * n)` (sklearn's objective divided by n; the bias is not penalised).

    Pooled embeddings are strongly correlated, so the objective's curvature spans orders of magnitude across
    directions of the weights and plain L-BFGS crawls along the flat ones. So it searches in `V = W R` instead,
    where `R R^T` is a bound on that curvature: a quarter of the windows' weighted second moment (the softmax's
    largest curvature) plus the penalty's `I / (strength * n)`. The objective and its minimum are the same; on real
    embeddings the strength grid is fitted about 3 times faster (`benchmarks/bench_probe.py`).

    Args:
        features: `(n, d)` float features (already standardised).
        targets: `(n,)` label ids in `[0, num_labels)`, or `(n, num_labels)` probabilities (soft targets).
        sample_weight: `(n,)` non-negative weights of the windows in the mean (default: all 1).
        initial: `(weight, bias)` to start from (default: zeros). The objective is strictly convex, so the start
            changes only how many iterations reach its minimum: the solution for a nearby strength is a warm start.
    Returns:
        weight `(num_labels, d)` and bias `(num_labels,)`, float32.
    """
    x, y, window_weight = _objective_inputs(features, targets, sample_weight)
    dimension = x.shape[1]
    if initial is None:
        initial = (np.zeros((num_labels, dimension)), np.zeros(num_labels))
    weight = torch.tensor(initial[0], dtype=torch.float64).reshape(num_labels, dimension)
    second_moment = (x * window_weight[:, None]).T @ x
    penalty_curvature = torch.eye(dimension, dtype=torch.float64) / (strength * len(x))
    curvature_root = torch.linalg.cholesky(second_moment / 4 + penalty_curvature)
    searched = (weight @ curvature_root).requires_grad_()
    bias = torch.tensor(initial[1], dtype=torch.float64).reshape(num_labels).requires_grad_()

    def weight_of(searched):
        return torch.linalg.solve_triangular(curvature_root, searched, upper=False, left=False)

    optimizer = lbfgs(searched, bias, max_iterations=max_iterations)

    def closure():
        optimizer.zero_grad()
        loss = _objective(x, y, window_weight, weight_of(searched), bias, strength)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        return weight_of(searched).float().numpy(), bias.detach().float().numpy()


def lbfgs(*parameters: torch.Tensor, max_iterations: int) -> torch.optim.LBFGS:
    """The full-batch L-BFGS of every probe fit: strong-Wolfe line search, tight tolerances (float64 objectives)."""
    return torch.optim.LBFGS(
        list(parameters),
        lr=1.0,
        max_iter=max_iterations,
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )


def _objective_inputs(features, targets, sample_weight) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`fit_logistic_regression`'s arguments as float64 tensors, the window weights normalised to sum to 1."""
    x = torch.as_tensor(features, dtype=torch.float64)
    targets = np.asarray(targets)
    y = torch.as_tensor(targets, dtype=torch.long if targets.ndim == 1 else torch.float64)
    window_weight = torch.as_tensor(np.ones(len(x)) if sample_weight is None else sample_weight, dtype=torch.float64)
    return x, y, window_weight / window_weight.sum()


def _objective(x, y, window_weight, weight, bias, strength: float) -> torch.Tensor:
    per_window = torch.nn.functional.cross_entropy(x @ weight.T + bias, y, reduction="none")
    return (window_weight * per_window).sum() + weight.pow(2).sum() / (2.0 * strength * len(x))


def logistic_regression_objective(
    features: np.ndarray,
    targets: np.ndarray,
    strength: float,
    weight: np.ndarray,
    bias: np.ndarray,
    sample_weight: np.ndarray | None = None,
) -> float:
    """The objective `fit_logistic_regression` minimises, at `(weight, bias)`: how near a fit came to its minimum."""
    x, y, window_weight = _objective_inputs(features, targets, sample_weight)
    weight, bias = (torch.as_tensor(np.asarray(part), dtype=torch.float64) for part in (weight, bias))
    return float(_objective(x, y, window_weight, weight, bias, strength))


@dataclass
class TeacherLabelledWindows:
    """Windows of music without labels, each with the genre probabilities a teacher gave its track: extra windows of
    the probe's fit, never scored (`run_linear_probe`).

    Attributes:
        embeddings: `(m, D)` pooled embeddings.
        targets: `(m, C)` genre probabilities (soft targets).
        weight: their total weight in the fit, relative to the labelled windows' (1: as much as all of those).
    """

    embeddings: np.ndarray
    targets: np.ndarray
    weight: float

    def __post_init__(self):
        if len(self.embeddings) != len(self.targets) or not len(self.embeddings):
            raise ValueError("Teacher-labelled windows need one target row per embedding, and at least one window.")
        if self.weight <= 0:
            raise ValueError(f"The weight of the teacher-labelled windows must be positive, got {self.weight}.")


@dataclass
class LinearProbe:
    """A fitted probe, already in the embedding's units: `logits = embedding @ weight.T + bias`."""

    weight: np.ndarray
    bias: np.ndarray
    strength: float
    cross_validation_accuracy_by_strength: dict[float, float]
    folds: int


def fit_standardised_probes(
    embeddings: np.ndarray,
    labels: np.ndarray,
    num_labels: int,
    strengths,
    teacher_labelled: TeacherLabelledWindows | None = None,
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Standardise with these embeddings' mean and standard deviation, fit the logistic regression at each strength,
    and fold the standardisation into each returned `(weight (C, D), bias (C,))`, keyed by strength. With
    `teacher_labelled`, its windows join the fit (and the standardisation) with their soft targets, at their
    relative weight.

    The strengths are fitted from the strongest regularisation to the weakest, each starting from the previous
    solution (`fit_logistic_regression`); `benchmarks/bench_probe.py` measures it against plain L-BFGS from zero."""
    fit = StandardisedFit.of(embeddings, labels, num_labels, teacher_labelled)
    probes, previous = {}, None
    for strength in sorted({float(strength) for strength in strengths}):
        previous = fit_logistic_regression(
            fit.features,
            fit.targets,
            num_labels,
            strength,
            sample_weight=fit.sample_weight,
            initial=previous,
        )
        probes[strength] = fit.in_embedding_units(*previous)
    return probes


@dataclass
class StandardisedFit:
    """What a probe's logistic regression is fitted on: the windows standardised with their mean and standard
    deviation, their targets and weights (`fit_standardised_probes`).

    Attributes:
        features: `(n, D)` standardised embeddings, the labelled windows first.
        targets: `(n,)` label ids, or `(n, C)` probabilities where teacher-labelled windows join.
        sample_weight: `(n,)` window weights, or None (all equal).
        mean, std: `(D,)` the standardisation.
    """

    features: np.ndarray
    targets: np.ndarray
    sample_weight: np.ndarray | None
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of(cls, embeddings, labels, num_labels: int, teacher_labelled: TeacherLabelledWindows | None = None):
        """The labelled windows, and `teacher_labelled`'s with their soft targets, the two sets weighing 1 to
        `teacher_labelled.weight` in all."""
        targets, sample_weight = labels, None
        if teacher_labelled is not None:
            targets = np.concatenate([np.eye(num_labels)[labels], teacher_labelled.targets])
            sample_weight = np.concatenate(
                [
                    np.full(len(labels), 1.0 / len(labels)),
                    np.full(len(teacher_labelled.targets), teacher_labelled.weight / len(teacher_labelled.targets)),
                ]
            )
            embeddings = np.concatenate([embeddings, teacher_labelled.embeddings])
        mean = embeddings.mean(axis=0)
        std = embeddings.std(axis=0) + 1e-6
        return cls((embeddings - mean) / std, targets, sample_weight, mean, std)

    def in_embedding_units(self, weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A classifier of the standardised features as one of the raw embeddings (the standardisation folded in)."""
        return weight / self.std, bias - (weight / self.std) @ self.mean


def cross_validation_accuracy(
    embeddings: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    num_labels: int,
    strengths,
    folds: int = PROBE_FOLDS,
    seed: int = PROBE_SEED,
    teacher_labelled: TeacherLabelledWindows | None = None,
) -> tuple[dict[float, float], int]:
    """Held-out window accuracy (pooled over folds) of each strength in a grouped, stratified `folds`-fold split of
    the windows (`groups`: the track of each window), and the number of folds used: at most `folds`, at least 2,
    and no more than the tracks of the smallest genre that has two. A genre of one track (an artist-disjoint
    partition can leave one) is held out once, where no strength can name it: it costs every strength the same.
    `teacher_labelled` windows join every fold's fit and are never held out."""
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold

    tracks_per_label = [len(np.unique(groups[labels == label])) for label in np.unique(labels)]
    several = [count for count in tracks_per_label if count >= 2]
    if not several:
        raise ValueError(
            "The linear probe chooses its strength by cross-validation over tracks and needs at least 2 tracks of "
            "some genre among the training and validation tracks; every genre has 1."
        )
    folds = min(folds, min(several))
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    correct = {float(strength): 0 for strength in strengths}
    with warnings.catch_warnings():  # sklearn's note that a one-track genre cannot be in every fold: known, above
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        splits = list(splitter.split(embeddings, labels, groups))
    for train_index, held_out_index in splits:
        probes = fit_standardised_probes(
            embeddings[train_index], labels[train_index], num_labels, correct, teacher_labelled
        )
        for strength, (weight, bias) in probes.items():
            predictions = (embeddings[held_out_index] @ weight.T + bias).argmax(axis=1)
            correct[strength] += int((predictions == labels[held_out_index]).sum())
    return {strength: count / len(labels) for strength, count in correct.items()}, folds


def fit_linear_probe(
    embeddings: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    num_labels: int,
    strengths=DEFAULT_PROBE_STRENGTHS,
    folds: int = PROBE_FOLDS,
    seed: int = PROBE_SEED,
    teacher_labelled: TeacherLabelledWindows | None = None,
) -> LinearProbe:
    """Choose the strength by grouped cross-validation, then fit on all the windows (module docstring, steps 2-4);
    `teacher_labelled` windows join every fit."""
    if not strengths:
        raise ValueError("The linear probe needs at least one regularisation strength.")
    accuracy, folds = cross_validation_accuracy(
        embeddings, labels, groups, num_labels, strengths, folds, seed, teacher_labelled
    )
    chosen = max(sorted(accuracy), key=lambda s: accuracy[s])  # ascending: a tie keeps the stronger regularisation
    weight, bias = fit_standardised_probes(embeddings, labels, num_labels, [chosen], teacher_labelled)[chosen]
    return LinearProbe(
        weight=weight, bias=bias, strength=chosen, cross_validation_accuracy_by_strength=accuracy, folds=folds
    )


FAR_AWAY = 1e4
"""Whitened coordinate given to the mean of a genre without training windows, so that it is never the nearest."""


def fit_genre_distance(embeddings: np.ndarray, labels: np.ndarray, num_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """The buffers of a `GenreViTGenreDistance` from training windows.

    Args:
        embeddings: `(n, D)` pooled embeddings of the training windows.
        labels: `(n,)` their genre ids in `[0, num_labels)`.
    Returns:
        `whitening` `(D, D)` (the inverse square root of the Ledoit-Wolf-shrunk within-genre covariance) and
        `whitened_means` `(num_labels, D)`, float32. A genre without windows gets a mean `FAR_AWAY`.
    """
    from sklearn.covariance import LedoitWolf

    embeddings = np.asarray(embeddings, dtype=np.float64)
    means = np.zeros((num_labels, embeddings.shape[1]))
    present = np.zeros(num_labels, dtype=bool)
    residuals = np.empty_like(embeddings)
    for label in range(num_labels):
        rows = labels == label
        if rows.any():
            present[label] = True
            means[label] = embeddings[rows].mean(axis=0)
            residuals[rows] = embeddings[rows] - means[label]
    covariance = LedoitWolf(assume_centered=True).fit(residuals).covariance_
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    whitening = (eigenvectors / np.sqrt(np.maximum(eigenvalues, 1e-12))) @ eigenvectors.T
    whitened_means = means @ whitening.T
    whitened_means[~present] = FAR_AWAY
    return whitening.astype(np.float32), whitened_means.astype(np.float32)


def teacher_probe_probabilities(
    labelled_features: np.ndarray, labels: np.ndarray, features: np.ndarray, num_labels: int
) -> np.ndarray:
    """The teacher probe's genre probabilities `(n, num_labels)` of tracks described by a teacher's `features`
    `(n, F)`: a standardised logistic regression (`anchors.probe`, the protocol table's teacher probe) fitted on
    the labelled tracks' `labelled_features` `(k, F)` and `labels` `(k,)`. A genre without labelled tracks gets 0."""
    from .anchors import probe

    fitted, classes = probe(labelled_features, labels, features)
    probabilities = np.zeros((len(features), num_labels))
    probabilities[:, classes] = fitted
    return probabilities


def encoder_fingerprint(model) -> str:
    """A digest of the encoder's weights (everything but the classifier and the genre distance): two models with
    the same fingerprint embed every window alike."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if name.startswith(("classifier.", "genre_distance.")):
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def windows_key(windows) -> str | None:
    """A name for a windows dataset that is the same whenever its windows are: the Arrow files it is read from
    (`data.make_windows` names them after the tracks, their files and the settings), as they are on disk, and its
    row selection. None for windows held only in memory, which have no such name."""
    import hashlib
    import json
    import os

    files = []
    for cache_file in windows.cache_files:
        status = os.stat(cache_file["filename"])
        files.append([os.path.realpath(cache_file["filename"]), status.st_size, status.st_mtime_ns])
    if not files:
        return None
    digest = hashlib.sha256(json.dumps(files).encode())
    if windows._indices is not None:
        digest.update(np.asarray(windows._indices.column(0)).tobytes())
    return digest.hexdigest()[:16]


def embed_windows_cached(model, windows, batch_size: int = 64, cache_dir=None) -> np.ndarray:
    """`embed_windows` of a windows dataset (column `input_values`), kept in `cache_dir` (when given) under the
    encoder's fingerprint and the windows' name (`windows_key`), so that fits of the same encoder on the same
    windows (a calibration's folds, the protocol table's, candidate probes) embed them once."""
    from pathlib import Path

    from ..files import write_atomic

    key = windows_key(windows) if cache_dir is not None else None
    path = None if key is None else Path(cache_dir) / f"embeddings-{encoder_fingerprint(model)}-{key}.npy"
    if path is not None and path.is_file():
        return np.load(path)
    data = windows.with_format("numpy", columns=["input_values"])
    # a thousand windows at a time: hours of music as one array would take gigabytes
    blocks = [
        embed_windows(model, data[start : start + 1024]["input_values"], batch_size)
        for start in range(0, len(data), 1024)
    ]
    embeddings = np.concatenate(blocks) if blocks else np.zeros((0, model.config.hidden_size), np.float32)
    if path is not None:
        write_atomic(path, lambda temporary: np.save(temporary, embeddings))
    return embeddings


def run_linear_probe(
    model,
    windows: dict,
    strengths=DEFAULT_PROBE_STRENGTHS,
    batch_size: int = 64,
    teacher_labelled: dict | None = None,
    cache_dir=None,
) -> dict:
    """Embed `windows["train"]` and `windows["validation"]` (datasets with `input_values`, `labels`, `track_id`), fit
    the probe on both, write it into `model.classifier`, and return what happened (for the run record).

    `teacher_labelled` (optional): `{"windows": dataset of unlabelled windows (`input_values`, `track_id`),
    "track_probabilities": {track id: (C,) teacher genre probabilities}, "weight": relative weight}`: those windows
    join the probe's fit with their track's probabilities as soft targets (`TeacherLabelledWindows`). The genre
    distance stays fitted on the labelled windows alone.

    `cache_dir` (optional): where every embedding is kept (`embed_windows_cached`), so that the fits of one encoder
    on the same windows (a calibration's folds and the protocol table's, candidate probes) embed them once."""
    started = time.perf_counter()
    embeddings, labels, groups = [], [], []
    for name in ("train", "validation"):
        data = windows[name].with_format("numpy", columns=["labels", "track_id"])
        embeddings.append(embed_windows_cached(model, windows[name], batch_size, cache_dir))
        labels.append(np.asarray(data["labels"]))
        groups.append(np.asarray(data["track_id"]))
    extra = None
    if teacher_labelled is not None:
        unlabelled = teacher_labelled["windows"]
        probabilities = teacher_labelled["track_probabilities"]
        extra = TeacherLabelledWindows(
            embeddings=embed_windows_cached(model, unlabelled, batch_size, cache_dir),
            targets=np.stack([probabilities[track] for track in unlabelled["track_id"]]),
            weight=teacher_labelled["weight"],
        )
    embed_seconds = time.perf_counter() - started
    groups, embeddings, labels = np.concatenate(groups), np.concatenate(embeddings), np.concatenate(labels)
    probe = fit_linear_probe(embeddings, labels, groups, model.config.num_labels, strengths, teacher_labelled=extra)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(probe.weight))
        model.classifier.bias.copy_(torch.from_numpy(probe.bias))
    whitening, whitened_means = fit_genre_distance(embeddings, labels, model.config.num_labels)
    model.set_genre_distance(torch.from_numpy(whitening), torch.from_numpy(whitened_means))
    record = {
        "strength": probe.strength,
        "selection": f"grouped stratified {probe.folds}-fold cross-validation over the training and validation tracks",
        "cross_validation_accuracy_by_strength": {
            f"{s:g}": a for s, a in probe.cross_validation_accuracy_by_strength.items()
        },
        "cross_validation_accuracy": probe.cross_validation_accuracy_by_strength[probe.strength],
        "fitted_on": {"tracks": int(len(np.unique(groups))), "windows": int(len(groups))},
        "embed_seconds": embed_seconds,
        "fit_seconds": time.perf_counter() - started - embed_seconds,
    }
    if extra is not None:
        answers = np.bincount(np.stack(list(probabilities.values())).argmax(axis=1), minlength=model.config.num_labels)
        record["teacher_labelled"] = {
            "tracks": len(probabilities),
            "windows": len(extra.embeddings),
            "weight": extra.weight,
            "teacher_answers": {name: int(count) for name, count in zip(model.config.id2label.values(), answers)},
        }
    return record


__all__ = [
    "DEFAULT_PROBE_STRENGTHS",
    "DEFAULT_PROBE_WINDOW_OFFSETS",
    "FAR_AWAY",
    "PROBE_FOLDS",
    "LinearProbe",
    "StandardisedFit",
    "TeacherLabelledWindows",
    "cross_validation_accuracy",
    "embed_windows",
    "embed_windows_cached",
    "encoder_fingerprint",
    "fit_genre_distance",
    "fit_linear_probe",
    "fit_logistic_regression",
    "fit_standardised_probes",
    "lbfgs",
    "logistic_regression_objective",
    "run_linear_probe",
    "teacher_probe_probabilities",
    "windows_key",
]
