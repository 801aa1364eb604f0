"""Teacher targets for distillation: a pre-trained tagger's outputs on the training audio, aligned to GenreViT's
windows.

The teacher runs outside the product (`scripts/musicnn_teacher.py`, in its own TensorFlow environment) and writes
one `.npz` file: for every track (key: its track id, the file name without suffix), the start times of its 3-s
teacher patches (`KEY/start_seconds`, seconds) and the teacher's outputs on them (`KEY/max_pool`, `KEY/penultimate`,
`KEY/tag_probabilities`, ...). `TeacherTargets` reads one of those outputs and gives, for a window of a track, the
mean over the teacher patches whose centre lies inside the window: the target that training regresses onto through
an auxiliary head (see `genre_vit.training`). One output is not regressed: `genre_probabilities`, a distribution
over the student's own labels (EfficientAT's zero-shot genres, or the teacher ensemble's from
`scripts/ensemble_targets.py`), which the student's classifier matches with a KL divergence at a temperature.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..modeling_genre_vit import GenreViTClassifierOutput

DEFAULT_PATCH_SECONDS = 3.0
"""Length of a teacher patch when the file does not say (musicnn's taggers were trained on 3-s inputs)."""

DISTRIBUTION_OUTPUT = "genre_probabilities"
"""The teacher output that is a distribution over genres (the file's `genres`): the student's classifier matches it
(KL divergence at a temperature) instead of an auxiliary head regressing it."""


@dataclass(frozen=True)
class TeacherTargets:
    """One teacher output for every track of a targets file.

    Attributes:
        output: which teacher output: musicnn's `max_pool` (its pooled features, the default), `mean_pool`,
            `penultimate` or `tag_probabilities` (`scripts/musicnn_teacher.py`), or `handcrafted` descriptors
            (`scripts/handcrafted_targets.py`); any output a file holds for every track can be read.
        patch_seconds: length of a teacher patch, in seconds.
        patch_starts: track id -> `(patches,)` patch start times, in seconds.
        values: track id -> `(patches, D)` float32 teacher outputs.
        source: the file they were read from.
        tags: the name of each of the `D` columns where they have names: the file's `tags` for
            `tag_probabilities`, its `genres` for `genre_probabilities`; empty otherwise.
    """

    output: str
    patch_seconds: float
    patch_starts: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    source: str
    tags: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: str | os.PathLike, output: str = "max_pool") -> "TeacherTargets":
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"Teacher targets file {path} does not exist (scripts/musicnn_teacher.py writes one).")
        with np.load(path, allow_pickle=False) as data:
            keys = [name[: -len("/start_seconds")] for name in data.files if name.endswith("/start_seconds")]
            if not keys or any(f"{key}/{output}" not in data.files for key in keys):
                held = sorted({name.rsplit("/", 1)[1] for name in data.files if "/" in name} - {"start_seconds"})
                raise ValueError(
                    f"{path} is not a teacher targets file with {output!r} for every track"
                    + (f" (it holds {', '.join(held)})." if held else ".")
                )
            patch_seconds = float(data["patch_seconds"]) if "patch_seconds" in data.files else DEFAULT_PATCH_SECONDS
            starts = {key: data[f"{key}/start_seconds"].astype(np.float64) for key in keys}
            values = {key: data[f"{key}/{output}"].astype(np.float32) for key in keys}
            names = {"tag_probabilities": "tags", DISTRIBUTION_OUTPUT: "genres"}.get(output)
            tags = tuple(str(tag) for tag in data[names]) if names in data.files else ()
        return cls(
            output=output, patch_seconds=patch_seconds, patch_starts=starts, values=values, source=str(path), tags=tags
        )

    @property
    def is_distribution(self) -> bool:
        """Whether these targets are genre probabilities for the student's classifier, not features to regress."""
        return self.output == DISTRIBUTION_OUTPUT

    @property
    def dimension(self) -> int:
        return int(next(iter(self.values.values())).shape[1])

    def check_tracks(self, track_ids: Sequence[str]) -> None:
        """Raise ValueError, naming a few, unless every track has targets (the file belongs to these tracks)."""
        missing = sorted(set(track_ids) - self.values.keys())
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise ValueError(
                f"The teacher targets in {self.source} do not match the tracks: {len(missing)} of "
                f"{len(set(track_ids))} tracks have none ({shown}). Compute them for this data with "
                "scripts/musicnn_teacher.py."
            )

    def window_targets(self, track_id: str, start_seconds: np.ndarray, window_seconds: float) -> np.ndarray:
        """`(windows, D)` targets of a track's windows starting at `start_seconds` (s) and `window_seconds` long: the
        mean over the teacher patches whose centre lies inside the window (the nearest patch where none does)."""
        starts = self.patch_starts[track_id]
        centres = starts + self.patch_seconds / 2
        values = self.values[track_id]
        targets = np.empty((len(start_seconds), values.shape[1]), dtype=np.float32)
        for row, start in enumerate(np.asarray(start_seconds, dtype=np.float64)):
            inside = (centres >= start) & (centres < start + window_seconds)
            if inside.any():
                targets[row] = values[inside].mean(axis=0)
            else:
                targets[row] = values[np.argmin(np.abs(centres - (start + window_seconds / 2)))]
        return targets

    def track_target(self, track_id: str) -> np.ndarray:
        """`(D,)` mean over all of a track's patches."""
        return self.values[track_id].mean(axis=0)


def target_standardisation(targets: np.ndarray, teachers: Sequence[TeacherTargets]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation `(D,)` of the teachers' concatenated targets `(N, D)`; a distribution's columns
    keep mean 0 and deviation 1, so that they stay probabilities."""
    mean, std = targets.mean(axis=0), targets.std(axis=0)
    first = 0
    for teacher in teachers:
        if teacher.is_distribution:
            mean[first : first + teacher.dimension], std[first : first + teacher.dimension] = 0.0, 1.0
        first += teacher.dimension
    return mean, std


def add_teacher_targets(windows, teachers: Sequence[TeacherTargets], window_seconds: float, mean=None, std=None):
    """Add a `teacher_targets` column `(D,)` to a windows dataset (columns `track_id`, `start_seconds`): the targets of
    each of `teachers`, concatenated in that order, each dimension standardised with `mean` and `std` (from
    `target_standardisation` of these windows when not given, i.e. on the training split).

    Returns `(windows, mean, std)`.
    """
    track_ids = np.asarray(windows["track_id"])
    starts = np.asarray(windows["start_seconds"], dtype=np.float64)
    rows_by_track = {track: np.flatnonzero(track_ids == track) for track in dict.fromkeys(track_ids)}
    parts = []
    for teacher in teachers:
        teacher.check_tracks(list(rows_by_track))
        targets = np.empty((len(track_ids), teacher.dimension), dtype=np.float32)
        for track, rows in rows_by_track.items():
            targets[rows] = teacher.window_targets(track, starts[rows], window_seconds)
        parts.append(targets)
    targets = np.concatenate(parts, axis=1)
    if mean is None:
        mean, std = target_standardisation(targets, teachers)
    targets = (targets - mean) / np.maximum(std, 1e-6)
    return windows.add_column("teacher_targets", list(targets)), mean, std


class GenreViTWithTeacherHead(torch.nn.Module):
    """Training-time wrapper: GenreViT plus an auxiliary linear head that regresses the pooled embedding onto the
    teachers' (standardised, concatenated) targets. Only `student` is saved as the model; the head is never shipped.

    Loss: `classification_weight * genre loss + sum over teachers of weight * that teacher's loss`. A regressed
    teacher's loss is the mean squared error over its own dimensions (so a 753-value tagger and 84 hand-made
    descriptors count by their weights, not by their sizes). A distribution teacher (`is_distribution`: genre
    probabilities over the student's labels) is matched by the student's own logits:
    `temperature**2 * KL(teacher || student)`, both distributions softened by `temperature` (Hinton et al., 2015).
    """

    def __init__(
        self,
        student,
        teacher_dimensions: Sequence[int],
        teacher_weights: Sequence[float],
        classification_weight: float = 1.0,
        distributions: Sequence[bool] = (),
        temperature: float = 1.0,
    ):
        super().__init__()
        if len(teacher_weights) != len(teacher_dimensions):
            raise ValueError(f"{len(teacher_dimensions)} teachers but {len(teacher_weights)} teacher weights.")
        distributions = list(distributions) or [False] * len(teacher_dimensions)
        for dimension, distribution in zip(teacher_dimensions, distributions):
            if distribution and dimension != student.config.num_labels:
                raise ValueError(
                    f"A distribution teacher has {dimension} classes; the student has {student.config.num_labels}."
                )
        self.student = student
        self.config = student.config
        regressed = sum(d for d, distribution in zip(teacher_dimensions, distributions) if not distribution)
        self.teacher_head = torch.nn.Linear(student.config.hidden_size, regressed) if regressed else None
        self.teacher_slices = np.cumsum([0, *teacher_dimensions]).tolist()
        self.teacher_weights = [float(w) for w in teacher_weights]
        self.distributions = distributions
        self.classification_weight = classification_weight
        self.temperature = float(temperature)

    def forward(self, input_values, labels=None, teacher_targets=None):
        embedding = self.student.forward_head(self.student.forward_features(input_values), pre_logits=True)
        logits = self.student.classifier(embedding)
        loss = None
        if labels is not None:
            # The folder labels of unlabelled music need not be the student's classes: unused at weight 0.
            loss = self.classification_weight * self.student._loss(logits, labels) if self.classification_weight else 0
            if teacher_targets is not None:
                predicted = self.teacher_head(embedding).float() if self.teacher_head is not None else None
                targets = teacher_targets.float()
                head_first = 0
                for weight, distribution, first, end in zip(
                    self.teacher_weights, self.distributions, self.teacher_slices, self.teacher_slices[1:]
                ):
                    if distribution:
                        error = softened_kl_divergence(logits.float(), targets[:, first:end], self.temperature)
                    else:
                        head_end = head_first + end - first
                        error = torch.nn.functional.mse_loss(predicted[:, head_first:head_end], targets[:, first:end])
                        head_first = head_end
                    loss = loss + weight * error
        return GenreViTClassifierOutput(loss=loss, logits=logits)


def softened_kl_divergence(logits: torch.Tensor, probabilities: torch.Tensor, temperature: float) -> torch.Tensor:
    """`temperature**2 * KL(teacher || student)`, a mean over the batch: the teacher's `probabilities` `(B, C)`
    softened as `softmax(log p / temperature)`, the student's `logits` `(B, C)` as `softmax(logits / temperature)`.
    The factor keeps the gradients' scale independent of the temperature."""
    teacher = torch.softmax(torch.log(probabilities.clamp_min(1e-8)) / temperature, dim=-1)
    student = torch.log_softmax(logits / temperature, dim=-1)
    return temperature**2 * torch.nn.functional.kl_div(student, teacher, reduction="batchmean")


__all__ = [
    "DEFAULT_PATCH_SECONDS",
    "DISTRIBUTION_OUTPUT",
    "GenreViTWithTeacherHead",
    "TeacherTargets",
    "add_teacher_targets",
    "softened_kl_divergence",
    "target_standardisation",
]
