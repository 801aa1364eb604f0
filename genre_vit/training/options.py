"""Typed options of `train.py`, `evaluate.py` and `cross_validate.py`: dataclasses parsed with
`transformers.HfArgumentParser`, one definition of each option, shared by the three scripts.

The optimisation options are `TrainingArguments` itself (`GenreViTTrainingArguments` only changes the defaults to the
reference recipe and adds the short names the scripts have always had: `--lr`, `--epochs`, `--batch-size`, ...);
the rest are small dataclasses. The library is called with these objects, never with argument strings.
"""

import os
import sys
from dataclasses import dataclass, field
from typing import Literal

import torch
from transformers import HfArgumentParser, TrainingArguments

from .data import DEFAULT_SPLIT_FRACTIONS
from .linear_probe import DEFAULT_PROBE_STRENGTHS, DEFAULT_PROBE_WINDOW_OFFSETS

PRECISIONS = ("auto", "bf16", "fp32")


def use_bf16(precision: str, on_gpu: bool) -> bool:
    """Whether to train under bf16 autocast: `auto` means on a bf16-capable CUDA GPU only; `bf16` forces it (on a
    CPU with AVX512-BF16 or AMX it is about 1.6x faster than fp32 for this model), `fp32` never."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be auto, bf16 or fp32, got {precision!r}.")
    if precision == "auto":
        return on_gpu and torch.cuda.is_bf16_supported()
    return precision == "bf16"


@dataclass
class DataArguments:
    """Where the tracks come from, and where their windows are cached."""

    data: str = field(metadata={"help": "a folder with one sub-folder of audio per genre, or a Hub dataset id"})
    hub_split: str = field(default="train", metadata={"help": "split of a Hub dataset to load"})
    audio_column: str = field(default="audio", metadata={"help": "audio column of a Hub dataset"})
    label_column: str = field(default="genre", metadata={"help": "genre column of a Hub dataset"})
    cache_dir: str | None = field(
        default=None, metadata={"help": "window cache folder (train.py: OUTPUT_DIR/windows-cache)"}
    )
    num_proc: int = field(default=min(4, os.cpu_count() or 1), metadata={"help": "processes for featurising"})
    random_crops: bool = field(
        default=False,
        metadata={
            "help": "train on random 4-s crops anywhere in the training tracks, their log-Mel images computed on the "
            "training device (a GPU when there is one), instead of the cached windows of the 2-s grid "
            "(genre_vit.training.crops)"
        },
    )
    crops_per_epoch: int = field(
        default=0, metadata={"help": "with --random-crops: crops per epoch (0: as many as the 2-s grid has windows)"}
    )
    recording_augmentation: bool = field(
        default=False,
        metadata={
            "help": "with --random-crops: re-record each training crop at random (EQ tilt, band limits, reverb, "
            "noise; genre_vit.training.crops.RecordingAugmentation) while its teacher targets stay those of the "
            "clean audio, so the student learns what survives a change of studio"
        },
    )


@dataclass
class SplitArguments:
    """How tracks are split (always by track): a stratified split, published split files, or one fold of a
    cross-validation."""

    split_fractions: list[float] = field(
        default_factory=lambda: list(DEFAULT_SPLIT_FRACTIONS),
        metadata={"help": "TRAIN VALIDATION TEST fractions of a stratified track split", "metavar": "F"},
    )
    split_files: str | None = field(
        default=None, metadata={"help": "folder with train/valid/test track lists (e.g. the filtered GTZAN split)"}
    )
    folds: int | None = field(
        default=None, metadata={"help": "cross-validation: N stratified track folds; the test split is fold --fold"}
    )
    fold: int = field(default=0, metadata={"help": "with --folds: the 0-based fold that is the test split"})
    validation_fraction: float = field(
        default=0.15, metadata={"help": "with --folds: the part of the non-test tracks used for validation"}
    )

    def __post_init__(self):
        if len(self.split_fractions) != 3:
            raise ValueError(
                f"--split-fractions takes three numbers (train, validation, test), got {self.split_fractions}."
            )
        if self.fold and not self.folds:
            raise ValueError("--fold needs --folds.")
        chosen = [name for name, value in (("--split-files", self.split_files), ("--folds", self.folds)) if value]
        if len(chosen) > 1 or (chosen and list(self.split_fractions) != list(DEFAULT_SPLIT_FRACTIONS)):
            given = chosen + (
                ["--split-fractions"] if list(self.split_fractions) != list(DEFAULT_SPLIT_FRACTIONS) else []
            )
            raise ValueError(f"Choose one way to split: {', '.join(given)} were given together.")


@dataclass
class ModelArguments:
    """What is trained: the architecture, its initialisation, training-only patchout."""

    config: str = field(default="default", metadata={"help": "default | tiny | a config.json or model folder"})
    init_from: str | None = field(default=None, metadata={"help": "start from this model folder's weights"})
    patchout: list[int] | None = field(
        default=None,
        metadata={"help": "ROWS COLUMNS of the 13x9 patch grid dropped per training batch (PaSST)", "metavar": "N"},
    )

    classifier_only: bool = field(
        default=False,
        metadata={
            "help": "with --init-from: keep its encoder frozen and fit only the classifier, as a linear probe of the "
            "pooled embedding (genre_vit.training.linear_probe); no Trainer epochs"
        },
    )

    def __post_init__(self):
        if self.patchout is not None and len(self.patchout) != 2:
            raise ValueError(f"--patchout takes two numbers (rows, columns), got {self.patchout}.")
        if self.classifier_only and not self.init_from:
            raise ValueError("--classifier-only needs --init-from: a pre-trained model whose encoder is kept.")


@dataclass
class ProbeArguments:
    """How the linear probe of `--classifier-only` is fitted (genre_vit.training.linear_probe); also the probe
    options of `scripts/calibrate.py`."""

    probe_strengths: list[float] = field(
        default_factory=lambda: list(DEFAULT_PROBE_STRENGTHS),
        metadata={
            "help": "inverse L2 strengths tried, chosen by cross-validation over the tracks",
            "metavar": "C",
        },
    )
    probe_window_offsets: list[float] = field(
        default_factory=lambda: list(DEFAULT_PROBE_WINDOW_OFFSETS),
        metadata={
            "help": "the probe also learns from windows cut on the window grid shifted by "
            "these many seconds (augmentation; inference keeps the grid); none: pass no value",
            "metavar": "SECONDS",
            "nargs": "*",
        },
    )

    probe_unlabelled_data: str | None = field(
        default=None,
        metadata={
            "help": "with --teacher-targets: a folder of sub-folders of music without labels "
            "(the sub-folders' names are never read). The teacher probe, a logistic regression on the teachers' "
            "features of the labelled tracks, gives each of these tracks genre probabilities, and its windows join "
            "the probe's fit with them as soft targets (genre_vit.training.linear_probe)"
        },
    )
    probe_unlabelled_weight: float = field(
        default=1.0,
        metadata={
            "help": "with --probe-unlabelled-data: the unlabelled windows' total weight in the probe's fit, relative "
            "to all labelled windows'"
        },
    )

    def __post_init__(self):
        if self.probe_unlabelled_weight <= 0:
            raise ValueError(f"--probe-unlabelled-weight must be positive, got {self.probe_unlabelled_weight}.")
        if not self.probe_strengths or any(strength <= 0 for strength in self.probe_strengths):
            raise ValueError(f"--probe-strengths must be positive numbers, got {self.probe_strengths}.")
        if any(offset <= 0 for offset in self.probe_window_offsets):
            raise ValueError(f"--probe-window-offsets must be positive seconds, got {self.probe_window_offsets}.")


@dataclass
class DistillationArguments:
    """A teacher's outputs as an auxiliary target (see genre_vit.training.distillation)."""

    teacher_targets: list[str] | None = field(
        default=None,
        metadata={
            "help": "teacher outputs per track, one or more files (scripts/musicnn_teacher.py, "
            "scripts/handcrafted_targets.py); adds an auxiliary head, never shipped, that regresses the embedding onto "
            "them"
        },
    )
    teacher_output: list[str] = field(
        default_factory=lambda: ["max_pool"],
        metadata={
            "help": "which output of each targets file to learn (one name for all files, or one per file): "
            "musicnn's max_pool, mean_pool, penultimate or tag_probabilities, handcrafted, EfficientAT's embedding or "
            "logits (regressed through the auxiliary head); genre_probabilities (EfficientAT's zero-shot genres or "
            "scripts/ensemble_targets.py's ensemble: matched by the model's own classifier, whose labels become "
            "those genres)"
        },
    )
    teacher_weight: list[float] = field(
        default_factory=lambda: [1.0],
        metadata={"help": "weight of each teacher's loss (one for all files, or one per file)"},
    )
    classification_weight: float = field(
        default=1.0,
        metadata={
            "help": "weight of the genre loss; 0 pre-trains on the teacher alone (labels unused, checkpoint chosen on "
            "validation loss), e.g. on unlabelled music"
        },
    )

    distillation_temperature: float = field(
        default=2.0,
        metadata={
            "help": "temperature that softens both distributions in the KL divergence to a genre_probabilities teacher"
        },
    )

    def __post_init__(self):
        if self.distillation_temperature <= 0:
            raise ValueError(f"--distillation-temperature must be positive, got {self.distillation_temperature}.")
        files = len(self.teacher_targets or [])
        for name, values in (("--teacher-output", self.teacher_output), ("--teacher-weight", self.teacher_weight)):
            if files and len(values) not in (1, files):
                raise ValueError(f"{name} takes one value for all {files} teacher targets files or one per file.")

    def teachers(self) -> list[tuple[str, str, float]]:
        """`(targets file, output, loss weight)` of each teacher, in the order of `--teacher-targets`."""
        files = self.teacher_targets or []
        outputs = self.teacher_output * len(files) if len(self.teacher_output) == 1 else self.teacher_output
        weights = self.teacher_weight * len(files) if len(self.teacher_weight) == 1 else self.teacher_weight
        return list(zip(files, outputs, weights))


REFERENCE_BATCH_SIZE = 64
MIN_STEPS_PER_EPOCH = 32


def auto_batch_size(train_windows: int, processes: int = 1) -> int:
    """The batch size per device of `--batch-size 0`: the reference's 64 on a large training split (full GTZAN's
    12,000 windows), smaller where an epoch would otherwise be a handful of steps, so that `--epochs` means about as
    many optimiser steps on a small labelled set: a multiple of 8, at least 8, that gives an epoch of
    `train_windows` at least `MIN_STEPS_PER_EPOCH` steps over `processes` processes. On 8 synthetic tracks of 12 s
    per genre, 40 epochs at the reference's batch of 64 gave 0.80 test track accuracy; at 8, 1.00."""
    fitting = train_windows // (MIN_STEPS_PER_EPOCH * max(processes, 1)) // 8 * 8
    return min(REFERENCE_BATCH_SIZE, max(8, fitting))


@dataclass
class GenreViTTrainingArguments(TrainingArguments):
    """`TrainingArguments` with the reference recipe as defaults: focal loss (from the model config), AdamW lr 1e-4,
    weight decay 0.1, cosine to `min_lr`, batch 64, up to 150 epochs, early stopping, evaluation and a checkpoint
    every epoch, the best checkpoint on validation accuracy, seed 42. `output_dir` is the model folder; the
    Trainer's checkpoints go to its `checkpoints/`. Device-dependent settings (bf16, fused AdamW, TF32, gloo for
    multi-process CPU runs) are resolved from `precision` and the machine."""

    output_dir: str = field(default=None, metadata={"help": "where the model folder is written"})
    num_train_epochs: float = field(default=150, metadata={"help": "at most this many epochs", "aliases": ["--epochs"]})
    per_device_train_batch_size: int = field(
        default=0,
        metadata={
            "help": "batch size per device; 0 (the default): 64, the reference's, unless an epoch of the training "
            "windows would then have fewer than 32 steps, when a smaller batch gives it 32 (at least 8)",
            "aliases": ["--batch-size"],
        },
    )
    per_device_eval_batch_size: int = field(default=128, metadata={"help": "evaluation batch size per device"})
    learning_rate: float = field(default=1e-4, metadata={"help": "peak learning rate", "aliases": ["--lr"]})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay"})
    lr_scheduler_type: str = field(default="cosine_with_min_lr", metadata={"help": "learning-rate schedule"})
    eval_strategy: str = field(default="epoch", metadata={"help": "when to evaluate on validation"})
    save_strategy: str = field(default="epoch", metadata={"help": "when to checkpoint"})
    logging_strategy: str = field(default="epoch", metadata={"help": "when to log"})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "keep the best checkpoint on validation"})
    metric_for_best_model: str = field(default="accuracy", metadata={"help": "validation metric that chooses"})
    save_total_limit: int = field(default=2, metadata={"help": "checkpoints kept"})
    dataloader_num_workers: int = field(
        default=0, metadata={"help": "DataLoader worker processes", "aliases": ["--dataloader-workers"]}
    )
    report_to: str = field(default="none", metadata={"help": "experiment trackers to report to"})
    min_lr: float = field(default=1e-7, metadata={"help": "cosine floor of the learning rate"})
    patience: int = field(default=10, metadata={"help": "early-stopping patience in epochs, on the validation metric"})
    precision: Literal["auto", "bf16", "fp32"] = field(
        default="auto",
        metadata={
            "help": "auto: bf16 autocast on a bf16-capable GPU, fp32 otherwise; bf16 also speeds up CPUs with "
            "AVX512-BF16/AMX"
        },
    )
    resume: bool = field(default=False, metadata={"help": "continue from the last checkpoint in OUTPUT_DIR"})
    save_every_minutes: float = field(
        default=0.0, metadata={"help": "also checkpoint every this many minutes of wall time (0: never)"}
    )
    time_budget_minutes: float = field(
        default=0.0, metadata={"help": "stop, with a checkpoint, after this many minutes of training (0: no budget)"}
    )

    def __post_init__(self):
        if self.output_dir is None:
            raise ValueError("--output-dir is required.")
        # Checked before TrainingArguments names a repository after the output folder, and before any training.
        if self.push_to_hub and not self.hub_model_id:
            raise ValueError("--push-to-hub needs --hub-model-id (e.g. your-name/genre-vit-gtzan).")
        on_gpu = torch.cuda.is_available()
        self.lr_scheduler_kwargs = self.lr_scheduler_kwargs or {"min_lr": self.min_lr}
        self.bf16 = self.bf16 or use_bf16(self.precision, on_gpu)
        if on_gpu:
            self.optim = "adamw_torch_fused"
            self.tf32 = True if self.tf32 is None else self.tf32
        else:
            # Without use_cpu, accelerate treats a multi-process CPU run as NOT distributed: no gradient sync.
            self.use_cpu = True
            if int(os.environ.get("WORLD_SIZE", "1")) > 1:
                self.ddp_backend = self.ddp_backend or "gloo"
        self.dataloader_pin_memory = on_gpu
        self.data_seed = self.seed if self.data_seed is None else self.data_seed
        if self.disable_tqdm is None:
            self.disable_tqdm = not sys.stderr.isatty()
        super().__post_init__()


@dataclass
class CrossValidationArguments:
    """What `cross_validate.py` adds to `train.py`'s options."""

    no_final_model: bool = field(
        default=False, metadata={"help": "only cross-validate; do not train the model to ship"}
    )


@dataclass
class EvaluationArguments:
    """What `evaluate.py` scores, and how."""

    model: str = field(metadata={"help": "model folder or Hub repo id"})
    output_dir: str = field(metadata={"help": "where metrics.json, report.md and the plots go"})
    split: Literal["train", "validation", "test", "all"] = field(
        default="test", metadata={"help": "which split (default: test, as recorded by train.py in the model folder)"}
    )
    ignore_training_split: bool = field(
        default=False, metadata={"help": "do not use the split recorded in the model folder"}
    )
    seed: int = field(default=42, metadata={"help": "seed of a fresh split, when the model folder records none"})
    batch_size: int = field(default=64, metadata={"help": "windows per forward pass"})
    device: str = field(default="auto", metadata={"help": "cpu, cuda or auto"})


TRAINING_OPTIONS = (
    DataArguments,
    SplitArguments,
    ModelArguments,
    ProbeArguments,
    DistillationArguments,
    GenreViTTrainingArguments,
)
EVALUATION_OPTIONS = (EvaluationArguments, DataArguments, SplitArguments)


def parse(option_classes, argv=None, prog: str | None = None, description: str | None = None, combine=None):
    """Parse `argv` into one instance of each class, or into `combine(*instances)` where given (whose checks span
    the classes); a bad value exits with argparse's usage message."""
    parser = HfArgumentParser(option_classes, prog=prog, description=description)
    try:
        parsed = parser.parse_args_into_dataclasses(args=argv)
        return combine(*parsed) if combine else parsed
    except ValueError as error:  # raised by a dataclass's own checks
        parser.error(str(error))


__all__ = [
    "EVALUATION_OPTIONS",
    "PRECISIONS",
    "TRAINING_OPTIONS",
    "CrossValidationArguments",
    "DataArguments",
    "DistillationArguments",
    "EvaluationArguments",
    "GenreViTTrainingArguments",
    "ModelArguments",
    "ProbeArguments",
    "SplitArguments",
    "parse",
    "use_bf16",
]
