"""Training with the Hugging Face `Trainer`: the reference recipe as defaults, honest splits, reproducible output.

`train.py` at the repository root only calls `main()`. The run writes into `--output-dir`:

- the best model (chosen on validation accuracy only), its config and feature extractor, with `save_pretrained`
  (safetensors in shards of at most 15 MB, plus the remote code for `trust_remote_code=True`);
- `training_run.json`: the resolved arguments, library versions, the track ids of every split, timings and
  validation metrics;
- `README.md`: a model card;
- `checkpoints/`: the Trainer's checkpoints, for `--resume`.
"""

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback

from ..configuration_genre_vit import GenreViTConfig
from ..feature_extraction_genre_vit import GenreViTFeatureExtractor
from ..files import write_text_atomic
from ..model_folder import CHECKPOINTS_FOLDER, MAX_SHARD_SIZE, MODEL_CARD_FILE, RUN_FILE
from ..modeling_genre_vit import GenreViTForAudioClassification
from .data import add_data_arguments, add_split_fractions_argument, load_tracks_from_arguments
from .model_card import model_card

DEFAULT_SEED = 42
PRECISIONS = ("auto", "bf16", "fp32")


@dataclass
class TrainingRecipe:
    """The reference recipe: focal loss (from the model config), AdamW, cosine to `min_learning_rate`."""

    epochs: float = 150
    batch_size: int = 64
    eval_batch_size: int = 128
    learning_rate: float = 1e-4
    min_learning_rate: float = 1e-7
    weight_decay: float = 0.1
    warmup_steps: int = 0
    early_stopping_patience: int = 10
    seed: int = DEFAULT_SEED
    dataloader_workers: int = 0
    precision: str = "auto"
    """One of `PRECISIONS`; see `use_bf16`."""


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries that shape a run."""
    import importlib.metadata as metadata

    versions = {"python": platform.python_version()}
    for package in (
        "torch",
        "transformers",
        "datasets",
        "accelerate",
        "numpy",
        "librosa",
        "soundfile",
        "soxr",
        "scikit-learn",
        "huggingface_hub",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    versions["cuda"] = torch.version.cuda or "none"
    return versions


def build_config(spec: str, label_names: list[str]) -> GenreViTConfig:
    """`default` (the seed architecture), `tiny`, or a path to a config JSON / model folder; labels from the data."""
    id2label = dict(enumerate(label_names))
    if spec == "default":
        return GenreViTConfig(id2label=id2label)
    if spec == "tiny":
        return GenreViTConfig.tiny(id2label=id2label)
    path = Path(spec)
    if not path.exists():
        raise ValueError(f"--config must be 'default', 'tiny' or a config file/folder; {spec} does not exist.")
    config = GenreViTConfig.from_pretrained(path)
    config.id2label = id2label
    config.label2id = {name: index for index, name in id2label.items()}
    return config


def compute_accuracy(eval_prediction) -> dict[str, float]:
    from sklearn.metrics import accuracy_score

    logits, labels = eval_prediction.predictions, eval_prediction.label_ids
    logits = logits[0] if isinstance(logits, tuple) else logits
    return {"accuracy": float(accuracy_score(labels, np.asarray(logits).argmax(axis=-1)))}


def use_bf16(precision: str, on_gpu: bool) -> bool:
    """Whether to train under bf16 autocast: `auto` means on a bf16-capable CUDA GPU only; `bf16` forces it (on a
    CPU with AVX512-BF16 or AMX it is about 1.6x faster than fp32 for this model), `fp32` never."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be auto, bf16 or fp32, got {precision!r}.")
    if precision == "auto":
        return on_gpu and torch.cuda.is_bf16_supported()
    return precision == "bf16"


def training_arguments(
    output_dir: Path, recipe: TrainingRecipe, max_steps: int = -1, selection_metric: str = "accuracy"
):
    """`TrainingArguments` for the recipe: evaluate and checkpoint every epoch, keep the best on validation
    accuracy, bf16 (see `use_bf16`) and TF32 on a CUDA GPU, gloo for multi-process CPU runs (`torchrun` on a machine
    without GPU)."""
    from transformers import TrainingArguments

    on_gpu = torch.cuda.is_available()
    distributed_cpu = not on_gpu and int(os.environ.get("WORLD_SIZE", "1")) > 1
    return TrainingArguments(
        output_dir=str(output_dir / CHECKPOINTS_FOLDER),
        num_train_epochs=recipe.epochs,
        max_steps=max_steps,
        per_device_train_batch_size=recipe.batch_size,
        per_device_eval_batch_size=recipe.eval_batch_size,
        learning_rate=recipe.learning_rate,
        weight_decay=recipe.weight_decay,
        optim="adamw_torch_fused" if on_gpu else "adamw_torch",
        lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr": recipe.min_learning_rate},
        warmup_steps=recipe.warmup_steps,
        eval_strategy="epoch",
        save_strategy="epoch",
        logging_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model=selection_metric,
        greater_is_better=selection_metric == "accuracy",
        save_total_limit=2,
        seed=recipe.seed,
        data_seed=recipe.seed,
        bf16=use_bf16(recipe.precision, on_gpu),
        tf32=True if on_gpu else None,
        dataloader_num_workers=recipe.dataloader_workers,
        dataloader_pin_memory=on_gpu,
        # Without use_cpu, accelerate treats a multi-process CPU run as NOT distributed: no DDP, no gradient sync.
        use_cpu=not on_gpu,
        ddp_backend="gloo" if distributed_cpu else None,
        report_to="none",
        disable_tqdm=not sys.stderr.isatty(),
    )


def initialise_from(source: str, config: GenreViTConfig) -> GenreViTForAudioClassification:
    """GenreViT with `config`, its weights taken from a saved model folder (e.g. a distillation pre-training run).

    The encoder must have the same shape; a classifier head for other labels is left newly initialised.
    """
    try:
        model = GenreViTForAudioClassification.from_pretrained(
            source, config=config, ignore_mismatched_sizes=True, dtype=torch.float32
        )
    except OSError as error:
        raise ValueError(f"--init-from: {source} is not a GenreViT model folder ({error}).") from error
    return model


def _resolve_resume(checkpoints: Path, resume: bool) -> str | None:
    """The last Trainer checkpoint in `checkpoints` when resuming (None, with a note, where there is none)."""
    from transformers.trainer_utils import get_last_checkpoint

    if not resume:
        return None
    found = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
    if found is None:
        print(f"--resume: no checkpoint in {checkpoints}; starting from scratch.", file=sys.stderr)
    return found


class CheckpointRecordCallback(TrainerCallback):
    """Writes the run's resolved arguments, library versions and splits into every Trainer checkpoint folder."""

    def __init__(self, record: dict):
        self.record = record

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            write_text_atomic(folder / RUN_FILE, json.dumps(self.record, indent=2, default=str))
        return control


def run_training(args: argparse.Namespace) -> dict:
    """Load, split, featurise, train, save. Returns the run record (also written to `training_run.json`)."""
    from transformers import EarlyStoppingCallback, Trainer, set_seed

    from .data import (
        assert_track_disjoint,
        label_names,
        make_windows,
        split_track_ids,
        split_tracks,
        split_tracks_for_fold,
        split_tracks_from_files,
    )

    output_dir = Path(args.output_dir)
    recipe = TrainingRecipe(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        min_learning_rate=args.min_lr,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        early_stopping_patience=args.patience,
        seed=args.seed,
        dataloader_workers=args.dataloader_workers,
        precision=args.precision,
    )
    set_seed(recipe.seed)
    selection_metric = "accuracy" if args.classification_weight > 0 else "loss"
    arguments = training_arguments(output_dir, recipe, max_steps=args.max_steps, selection_metric=selection_metric)
    feature_extractor = GenreViTFeatureExtractor()
    cache_dir = Path(args.cache_dir) if args.cache_dir else output_dir / "windows-cache"

    with arguments.main_process_first(desc="preparing windows"):
        tracks = load_tracks_from_arguments(args)
        names = label_names(tracks)
        if args.split_files:
            track_splits, split_method = (
                split_tracks_from_files(tracks, args.split_files),
                f"split files {args.split_files}",
            )
        elif args.folds:
            track_splits = split_tracks_for_fold(tracks, args.folds, args.fold, args.validation_fraction, recipe.seed)
            split_method = (
                f"fold {args.fold + 1} of {args.folds} (stratified track folds, seed {recipe.seed}) as test; "
                f"validation {args.validation_fraction:g} of the other tracks"
            )
        else:
            fractions = tuple(args.split_fractions)
            track_splits = split_tracks(tracks, fractions, seed=recipe.seed)
            split_method = f"stratified {fractions[0]:g}/{fractions[1]:g}/{fractions[2]:g}, seed {recipe.seed}"
        windows = {
            name: make_windows(split, feature_extractor, cache_dir=cache_dir, num_proc=args.num_proc)
            for name, split in track_splits.items()
            if name in ("train", "validation")
        }
    assert_track_disjoint(windows | {"test": track_splits["test"]})
    if len(windows["train"]) == 0 or len(windows["validation"]) == 0:
        raise ValueError(
            "Training needs a non-empty train and validation split (the checkpoint is chosen on validation)."
        )

    record = {
        "arguments": vars(args),
        "recipe": asdict(recipe),
        "versions": library_versions(),
        "splits": split_track_ids(track_splits),
    }
    config = build_config(args.config, names)
    if args.patchout:
        config.patchout_frequency_rows, config.patchout_time_columns = args.patchout
        config.validate()
    if args.init_from:
        model = initialise_from(args.init_from, config)
    else:
        model = GenreViTForAudioClassification(config)
    student = model
    columns = ["input_values", "labels"]
    if args.teacher_targets:
        from .distillation import GenreViTWithTeacherHead, TeacherTargets, add_teacher_targets

        teacher = TeacherTargets.load(args.teacher_targets, args.teacher_output)
        windows["train"], mean, std = add_teacher_targets(windows["train"], teacher, feature_extractor.window_seconds)
        windows["validation"], *_ = add_teacher_targets(
            windows["validation"], teacher, feature_extractor.window_seconds, mean, std
        )
        model = GenreViTWithTeacherHead(student, teacher.dimension, args.teacher_weight, args.classification_weight)
        columns.append("teacher_targets")
        record["teacher"] = {
            "targets": args.teacher_targets,
            "output": args.teacher_output,
            "dimension": teacher.dimension,
        }
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=windows["train"].with_format("torch", columns=columns),
        eval_dataset=windows["validation"].with_format("torch", columns=columns),
        compute_metrics=compute_accuracy,
        callbacks=[
            EarlyStoppingCallback(early_stopping_patience=recipe.early_stopping_patience),
            CheckpointRecordCallback(record),
        ],
    )
    resume_from = _resolve_resume(output_dir / CHECKPOINTS_FOLDER, args.resume)
    started = time.perf_counter()
    train_output = trainer.train(resume_from_checkpoint=resume_from)
    train_seconds = time.perf_counter() - started
    validation_metrics = trainer.evaluate()

    track_ids = record["splits"]
    readable = {name: set(ds.unique("track_id")) for name, ds in windows.items()}
    skipped = sorted(
        (set(track_ids["train"]) - readable["train"]) | (set(track_ids["validation"]) - readable["validation"])
    )
    run = record | {
        "output_name": output_dir.name,
        "data": str(args.data),
        "split_method": split_method,
        "device": str(arguments.device),
        "world_size": arguments.world_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "tracks": sum(len(ids) for ids in track_ids.values()) - len(skipped),
        "skipped_tracks": skipped,
        "split_sizes": {
            name: {"tracks": len(track_ids[name]), "windows": len(windows[name]) if name in windows else None}
            for name in track_ids
        },
        "resumed_from": resume_from,
        "epochs_run": float(trainer.state.epoch or 0),
        "global_steps": int(trainer.state.global_step),
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "train_seconds": train_seconds,
        "train_windows_per_second": train_output.metrics.get("train_samples_per_second"),
        "validation_metrics": validation_metrics,
        "log_history": trainer.state.log_history,
    }
    if trainer.is_world_process_zero():
        save_model_folder(student, feature_extractor, output_dir, run)
        if args.push_to_hub:
            from .hub import push_folder

            push_folder(output_dir, args.hub_model_id)
    return run


def save_model_folder(model, feature_extractor, output_dir: Path, run: dict) -> None:
    """Model (sharded safetensors + remote code), feature extractor, run record and model card."""
    model.save_pretrained(output_dir, max_shard_size=MAX_SHARD_SIZE)
    feature_extractor.save_pretrained(output_dir)
    write_text_atomic(output_dir / RUN_FILE, json.dumps(run, indent=2, default=str))
    write_text_atomic(output_dir / MODEL_CARD_FILE, model_card(run, model.config))


def build_parser() -> argparse.ArgumentParser:
    recipe = TrainingRecipe()
    parser = argparse.ArgumentParser(
        prog="train.py", description="Train GenreViT with the Hugging Face Trainer (defaults: the reference recipe)."
    )
    add_data_arguments(parser)
    parser.add_argument("--output-dir", required=True, help="where the model folder is written")
    parser.add_argument("--config", default="default", help="default | tiny | a config.json or model folder")
    parser.add_argument("--epochs", type=float, default=recipe.epochs, help="at most this many epochs (150)")
    parser.add_argument("--max-steps", type=int, default=-1, help="stop after this many optimiser steps (-1: off)")
    parser.add_argument("--batch-size", type=int, default=recipe.batch_size, help="per-device batch (64)")
    parser.add_argument("--lr", type=float, default=recipe.learning_rate, help="peak learning rate (1e-4)")
    parser.add_argument("--min-lr", type=float, default=recipe.min_learning_rate, help="cosine floor (1e-7)")
    parser.add_argument("--warmup-steps", type=int, default=recipe.warmup_steps, help="linear warm-up steps (0)")
    parser.add_argument("--weight-decay", type=float, default=recipe.weight_decay, help="AdamW weight decay (0.1)")
    parser.add_argument(
        "--patience",
        type=int,
        default=recipe.early_stopping_patience,
        help="early-stopping patience in epochs, on validation accuracy (10)",
    )
    parser.add_argument(
        "--seed", type=int, default=recipe.seed, help=f"seed of splits, init and order ({DEFAULT_SEED})"
    )
    split = parser.add_mutually_exclusive_group()
    add_split_fractions_argument(split, help="stratified track split")
    split.add_argument("--split-files", help="folder with train/valid/test track lists (e.g. the filtered GTZAN split)")
    split.add_argument(
        "--folds",
        type=int,
        metavar="N",
        help="cross-validation: split tracks into N stratified folds and test on fold --fold (cross_validate.py "
        "runs every fold)",
    )
    parser.add_argument("--fold", type=int, default=0, help="with --folds: the 0-based fold that is the test split (0)")
    parser.add_argument(
        "--validation-fraction",
        type=float,
        default=0.15,
        help="with --folds: the part of the non-test tracks used for validation (0.15)",
    )
    parser.add_argument("--cache-dir", help="window cache (default: OUTPUT_DIR/windows-cache)")
    parser.add_argument("--num-proc", type=int, default=min(4, os.cpu_count() or 1), help="processes for featurising")
    parser.add_argument("--dataloader-workers", type=int, default=0, help="DataLoader worker processes (0)")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto: bf16 autocast on a bf16-capable GPU, fp32 otherwise; bf16 also speeds up CPUs with AVX512-BF16/AMX",
    )
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in OUTPUT_DIR")
    distillation = parser.add_argument_group("distillation and initialisation")
    distillation.add_argument(
        "--teacher-targets",
        metavar="FILE",
        help="teacher outputs per track (scripts/musicnn_teacher.py); adds an auxiliary head, never shipped, that "
        "regresses the embedding onto them",
    )
    distillation.add_argument(
        "--teacher-output",
        default="max_pool",
        choices=["max_pool", "mean_pool", "penultimate", "tag_probabilities"],
        help="which teacher output to regress onto (max_pool: musicnn's pooled features)",
    )
    distillation.add_argument("--teacher-weight", type=float, default=1.0, help="weight of the teacher loss (1.0)")
    distillation.add_argument(
        "--classification-weight",
        type=float,
        default=1.0,
        help="weight of the genre loss (1.0); 0 pre-trains on the teacher alone (labels unused, checkpoint chosen on "
        "validation loss), e.g. on unlabelled music",
    )
    distillation.add_argument("--init-from", metavar="FOLDER", help="start from this model folder's weights")
    distillation.add_argument(
        "--patchout",
        type=int,
        nargs=2,
        metavar=("ROWS", "COLUMNS"),
        help="drop this many random rows and columns of the 13x9 patch grid per training batch (PaSST)",
    )
    parser.add_argument("--push-to-hub", action="store_true", help="upload the model folder to the Hub at the end")
    parser.add_argument("--hub-model-id", help="Hub repo id for --push-to-hub")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.fold and not args.folds:
        parser.error("--fold needs --folds")
    try:
        run = run_training(args)
    except ValueError as error:
        print(f"train.py: error: {error}", file=sys.stderr)
        return 2
    accuracy = run["validation_metrics"].get("eval_accuracy")
    print(f"validation accuracy {accuracy:.4f} after {run['epochs_run']:.0f} epochs; model saved in {args.output_dir}")
    return 0


__all__ = [
    "PRECISIONS",
    "TrainingRecipe",
    "build_config",
    "library_versions",
    "main",
    "run_training",
    "training_arguments",
]
