"""Training with the Hugging Face `Trainer`: the reference recipe as defaults, honest splits, reproducible output.

`train.py` at the repository root only calls `main()`; the options are the dataclasses of
`genre_vit.training.options`. The run writes into `--output-dir`:

- the best model (chosen on validation accuracy only), its config and feature extractor, with `save_pretrained`
  (safetensors in shards of at most 15 MB, plus the remote code for `trust_remote_code=True`);
- `training_run.json`: the resolved arguments, library versions, the track ids of every split, timings and
  validation metrics;
- `README.md`: a model card;
- `checkpoints/`: the Trainer's checkpoints, for `--resume`.
"""

import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback

from ..configuration_genre_vit import GenreViTConfig
from ..feature_extraction_genre_vit import GenreViTFeatureExtractor
from ..files import write_text_atomic
from ..model_folder import CHECKPOINTS_FOLDER, MAX_SHARD_SIZE, MODEL_CARD_FILE, RUN_FILE
from ..modeling_genre_vit import GenreViTForAudioClassification
from .model_card import model_card
from .options import (
    TRAINING_OPTIONS,
    DataArguments,
    DistillationArguments,
    GenreViTTrainingArguments,
    ModelArguments,
    ProbeArguments,
    SplitArguments,
    parse,
)


@dataclasses.dataclass
class TrainingOptions:
    """Everything a training run is told: where the data is, how it is split, what model, which teacher, and the
    Trainer's own arguments (the recipe)."""

    data: DataArguments
    split: SplitArguments
    model: ModelArguments
    probe: ProbeArguments
    distillation: DistillationArguments
    training: GenreViTTrainingArguments

    @classmethod
    def from_command_line(cls, argv=None, prog: str = "train.py") -> "TrainingOptions":
        return parse(TRAINING_OPTIONS, argv, prog=prog, description=TRAIN_DESCRIPTION, combine=cls)

    def __post_init__(self):
        """Checks that span the option groups, made before any work."""
        data, model, distillation = self.data, self.model, self.distillation
        if self.probe.probe_unlabelled_data and not model.classifier_only:
            raise ValueError("--probe-unlabelled-data feeds the linear probe: it needs --classifier-only.")
        if data.random_crops and model.classifier_only:
            raise ValueError("--random-crops trains the network; --classifier-only fits a probe on cached windows.")
        if model.classifier_only and bool(distillation.teacher_targets) != bool(self.probe.probe_unlabelled_data):
            raise ValueError(
                "With --classifier-only, --teacher-targets and --probe-unlabelled-data go together: the teachers "
                "label the unlabelled music for the probe."
            )
        if data.recording_augmentation and not data.random_crops:
            raise ValueError("--recording-augmentation re-records random crops: it needs --random-crops.")

    def replace(self, **changes) -> "TrainingOptions":
        """A copy with some fields of the groups changed: `replace(split={"fold": 2}, training={"output_dir": d})`."""
        return dataclasses.replace(
            self, **{name: dataclasses.replace(getattr(self, name), **fields) for name, fields in changes.items()}
        )

    def to_dict(self) -> dict:
        # TrainingArguments.to_dict makes its enums and tokens JSON-ready; the other groups are plain dataclasses.
        groups = {group.name: getattr(self, group.name) for group in dataclasses.fields(self)}
        return {name: dataclasses.asdict(value) for name, value in groups.items() if name != "training"} | {
            "training": self.training.to_dict()
        }

    def recipe(self) -> dict:
        """The recipe in the words of the model card."""
        training = self.training
        return {
            "epochs": training.num_train_epochs,
            "max_steps": training.max_steps,
            "batch_size": training.per_device_train_batch_size,
            "learning_rate": training.learning_rate,
            "min_learning_rate": training.min_lr,
            "weight_decay": training.weight_decay,
            "warmup_steps": training.warmup_steps,
            "early_stopping_patience": training.patience,
            "seed": training.seed,
            "precision": training.precision,
        }


TRAIN_DESCRIPTION = "Train GenreViT with the Hugging Face Trainer (defaults: the reference recipe)."


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


def trainer_arguments(options: TrainingOptions, selection_metric: str) -> GenreViTTrainingArguments:
    """The Trainer's arguments for a run: checkpoints under `OUTPUT_DIR/checkpoints`, the checkpoint chosen on
    `selection_metric` of the validation split, no Hub upload by the Trainer (the finished folder is pushed once)."""
    return dataclasses.replace(
        options.training,
        output_dir=str(Path(options.training.output_dir) / CHECKPOINTS_FOLDER),
        metric_for_best_model=selection_metric,
        greater_is_better=selection_metric == "accuracy",
        push_to_hub=False,
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


def run_training(options: TrainingOptions) -> dict:
    """Load, split, featurise, train, save. Returns the run record (also written to `training_run.json`)."""
    from transformers import set_seed

    from .data import (
        assert_track_disjoint,
        label_names,
        load_tracks_for,
        make_windows,
        split_tracks_for,
    )

    data, model_options, distillation, training = options.data, options.model, options.distillation, options.training
    output_dir = Path(training.output_dir)
    set_seed(training.seed)
    selection_metric = "accuracy" if distillation.classification_weight > 0 else "loss"
    arguments = trainer_arguments(options, selection_metric)
    feature_extractor = GenreViTFeatureExtractor()
    cache_dir = Path(data.cache_dir) if data.cache_dir else output_dir / "windows-cache"

    with arguments.main_process_first(desc="preparing windows"):
        tracks = load_tracks_for(data)
        names = label_names(tracks)
        track_splits, split_method = split_tracks_for(tracks, options.split, training.seed)
    if data.random_crops:
        return _train_on_random_crops(options, arguments, names, track_splits, split_method, feature_extractor)
    with arguments.main_process_first(desc="preparing windows"):
        # The probe fits on training and validation tracks alike, so both get its extra (shifted) windows.
        offsets = options.probe.probe_window_offsets if model_options.classifier_only else ()
        windows = {
            name: make_windows(
                split,
                feature_extractor,
                cache_dir=cache_dir,
                num_proc=data.num_proc,
                offsets_seconds=offsets,
            )
            for name, split in track_splits.items()
            if name in ("train", "validation")
        }
    assert_track_disjoint(windows | {"test": track_splits["test"]})
    if len(windows["train"]) == 0 or len(windows["validation"]) == 0:
        raise ValueError(
            "Training needs a non-empty train and validation split (the checkpoint is chosen on validation)."
        )

    options, arguments = _with_batch_size(options, arguments, len(windows["train"]))
    record = _run_record(options, track_splits)
    if model_options.classifier_only:
        return _fit_classifier_only(
            options,
            _build_model(options, names),
            feature_extractor,
            windows,
            track_splits,
            split_method,
            record,
            cache_dir,
        )
    teachers = _load_teachers(options, record)
    student = model = _build_model(options, _student_label_names(names, teachers, options))
    columns = ["input_values", "labels"]
    if teachers:
        from .distillation import add_teacher_targets

        windows["train"], mean, std = add_teacher_targets(windows["train"], teachers, feature_extractor.window_seconds)
        windows["validation"], *_ = add_teacher_targets(
            windows["validation"], teachers, feature_extractor.window_seconds, mean, std
        )
        model = _with_teacher_head(options, student, teachers)
        columns.append("teacher_targets")
    train_dataset = windows["train"].with_format("torch", columns=columns)
    eval_dataset = windows["validation"].with_format("torch", columns=columns)
    data_record = _data_record(options, record["splits"], _readable(windows), windows, split_method)
    return _run_trainer(
        options, arguments, model, student, feature_extractor, train_dataset, eval_dataset, record | data_record
    )


def _readable(windows: dict) -> dict:
    """The ids of the tracks that have windows, by split."""
    return {name: set(dataset.unique("track_id")) for name, dataset in windows.items()}


def _run_record(options: TrainingOptions, track_splits: dict) -> dict:
    """What every run records before it trains: resolved arguments, the recipe, library versions, the splits."""
    from .data import split_track_ids

    return {
        "arguments": options.to_dict(),
        "recipe": options.recipe(),
        "versions": library_versions(),
        "splits": split_track_ids(track_splits),
    }


def _load_teachers(options: TrainingOptions, record: dict) -> list:
    """The `--teacher-targets` of a run (none without), noted in its record."""
    from .distillation import TeacherTargets

    specifications = options.distillation.teachers()  # (targets file, output, loss weight) per teacher
    teachers = [TeacherTargets.load(path, output) for path, output, _ in specifications]
    if teachers:
        record["teacher"] = [
            {"targets": path, "output": output, "weight": weight, "dimension": teacher.dimension}
            | ({"temperature": options.distillation.distillation_temperature} if teacher.is_distribution else {})
            for (path, output, weight), teacher in zip(specifications, teachers)
        ]
    return teachers


def _student_label_names(names: list[str], teachers, options: TrainingOptions) -> list[str]:
    """The student's labels: the data's, unless a distribution teacher (genre probabilities) teaches the classifier
    its genres, when they are the teacher's; the data's folder labels then mean something only if they are the
    same genres."""
    genres = {teacher.tags for teacher in teachers if teacher.is_distribution}
    if not genres:
        return names
    if len(genres) > 1:
        raise ValueError("The genre_probabilities teachers name different genres; give teachers of one label set.")
    (teacher_genres,) = genres
    if list(teacher_genres) != list(names) and options.distillation.classification_weight:
        raise ValueError(
            f"The teacher's genres ({', '.join(teacher_genres)}) are not the data's labels ({', '.join(names)}): "
            "learn them from the teacher alone with --classification-weight 0."
        )
    return list(teacher_genres)


def _with_teacher_head(options: TrainingOptions, student, teachers):
    from .distillation import GenreViTWithTeacherHead

    return GenreViTWithTeacherHead(
        student,
        [teacher.dimension for teacher in teachers],
        [weight for *_, weight in options.distillation.teachers()],
        options.distillation.classification_weight,
        distributions=[teacher.is_distribution for teacher in teachers],
        temperature=options.distillation.distillation_temperature,
    )


def _train_on_random_crops(options, arguments, names, track_splits, split_method, feature_extractor) -> dict:
    """`--random-crops`: the tracks decoded once, random crops featurised on the training device
    (`genre_vit.training.crops`), then the same Trainer run as for cached windows."""
    from .crops import FeaturesOnDevice, RecordingAugmentation, TrackAudio, crop_datasets, grid_windows
    from .data import assert_disjoint_ids

    training = options.training
    audio = {
        name: TrackAudio.decode(track_splits[name], feature_extractor.sampling_rate) for name in ("train", "validation")
    }
    if not audio["train"].track_ids or not audio["validation"].track_ids:
        raise ValueError(
            "Training needs a non-empty train and validation split (the checkpoint is chosen on validation)."
        )
    assert_disjoint_ids({name: a.track_ids for name, a in audio.items()} | {"test": track_splits["test"]["track_id"]})
    crops_per_epoch = options.data.crops_per_epoch or len(grid_windows(audio["train"], feature_extractor))
    options, arguments = _with_batch_size(options, arguments, crops_per_epoch)
    record = _run_record(options, track_splits)
    teachers = _load_teachers(options, record)
    student = _build_model(options, _student_label_names(names, teachers, options))
    for teacher in teachers:
        teacher.check_tracks(audio["train"].track_ids + audio["validation"].track_ids)
    augmentation = None
    if options.data.recording_augmentation:
        augmentation = RecordingAugmentation(feature_extractor.sampling_rate)
    train_dataset, eval_dataset, _, _ = crop_datasets(
        audio["train"], audio["validation"], feature_extractor, teachers, crops_per_epoch, training.seed, augmentation
    )
    model = _with_teacher_head(options, student, teachers) if teachers else student
    model = FeaturesOnDevice(model, feature_extractor)
    readable = {name: set(decoded.track_ids) for name, decoded in audio.items()}
    windows = {"train": train_dataset, "validation": eval_dataset}
    data_record = _data_record(options, record["splits"], readable, windows, split_method + "; random crops")
    data_record["hours"] = {name: decoded.hours for name, decoded in audio.items()}
    return _run_trainer(
        options, arguments, model, student, feature_extractor, train_dataset, eval_dataset, record | data_record
    )


def _with_batch_size(options: TrainingOptions, arguments, train_windows: int):
    """`--batch-size 0` resolved for `train_windows` training windows (`options.auto_batch_size`), in the options
    (and so the run record) and the Trainer's arguments."""
    from .options import auto_batch_size

    if options.training.per_device_train_batch_size > 0:
        return options, arguments
    batch_size = auto_batch_size(train_windows, arguments.world_size)
    options = options.replace(training={"per_device_train_batch_size": batch_size})
    return options, dataclasses.replace(arguments, per_device_train_batch_size=batch_size)


def _build_model(options: TrainingOptions, names: list[str]) -> GenreViTForAudioClassification:
    """The model a run trains: the configured architecture with the data's labels, fresh or from `--init-from`."""
    config = build_config(options.model.config, names)
    if options.model.patchout:
        config.patchout_frequency_rows, config.patchout_time_columns = options.model.patchout
        config.validate()
    if options.model.init_from:
        return initialise_from(options.model.init_from, config)
    return GenreViTForAudioClassification(config)


def _run_trainer(
    options, arguments, model, student, feature_extractor, train_dataset, eval_dataset, record: dict
) -> dict:
    """Train `model` (the student, or a wrapper that trains it) with the Trainer, then save the student's folder
    with `feature_extractor`. Returns the run record."""
    from transformers import EarlyStoppingCallback, Trainer

    from .crops import TimeBudgetCallback

    training = options.training
    output_dir = Path(training.output_dir)
    callbacks = [CheckpointRecordCallback(record)]
    if getattr(arguments.eval_strategy, "value", arguments.eval_strategy) != "no":  # early stopping needs evaluations
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=training.patience))
    if training.save_every_minutes or training.time_budget_minutes:
        callbacks.append(TimeBudgetCallback(training.save_every_minutes, training.time_budget_minutes))
    trainer = Trainer(
        model=model,
        args=arguments,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        compute_metrics=compute_accuracy,
        callbacks=callbacks,
    )
    resume_from = _resolve_resume(output_dir / CHECKPOINTS_FOLDER, training.resume)
    started = time.perf_counter()
    train_output = trainer.train(resume_from_checkpoint=resume_from)
    train_seconds = time.perf_counter() - started
    validation_metrics = trainer.evaluate()

    run = record | {
        "device": str(trainer.args.device),
        "world_size": trainer.args.world_size,
        "parameters": sum(p.numel() for p in student.parameters()),  # the shipped model, not the teacher head
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
        save_model_folder(student, feature_extractor, output_dir, run, training)
    return run


def _data_record(options: TrainingOptions, track_ids: dict, readable: dict, windows: dict, split_method: str) -> dict:
    """What a run record says of its data: the source, how it was split, the split sizes, the unreadable tracks.
    `readable` holds the ids of the training and validation tracks that decoded, `windows` their windows per epoch
    (anything with a length), by split."""
    skipped = sorted(
        (set(track_ids["train"]) - readable["train"]) | (set(track_ids["validation"]) - readable["validation"])
    )
    return {
        "output_name": Path(options.training.output_dir).name,
        "data": str(options.data.data),
        "split_method": split_method,
        "tracks": sum(len(ids) for ids in track_ids.values()) - len(skipped),
        "skipped_tracks": skipped,
        "split_sizes": {
            name: {"tracks": len(track_ids[name]), "windows": len(windows[name]) if name in windows else None}
            for name in track_ids
        },
    }


def _fit_classifier_only(
    options, model, feature_extractor, windows, track_splits, split_method, record, cache_dir: Path
) -> dict:
    """`--classifier-only`: a linear probe of the frozen encoder of `--init-from` (genre_vit.training.linear_probe)."""
    from .data import split_track_ids
    from .linear_probe import run_linear_probe

    output_dir = Path(options.training.output_dir)
    device = options.training.device
    teacher_labelled = _teacher_labelled_windows(options, feature_extractor, windows, record, cache_dir)
    model.to(device)
    started = time.perf_counter()
    probe = run_linear_probe(
        model,
        windows,
        options.probe.probe_strengths,
        batch_size=options.training.per_device_eval_batch_size,
        teacher_labelled=teacher_labelled,
        cache_dir=cache_dir,
    )
    model.to("cpu")
    probe["window_offsets_seconds"] = list(options.probe.probe_window_offsets)
    run = (
        record
        | _data_record(options, split_track_ids(track_splits), _readable(windows), windows, split_method)
        | {
            "device": str(device),
            "world_size": 1,
            "parameters": sum(p.numel() for p in model.parameters()),
            "resumed_from": None,
            "epochs_run": 0.0,
            "global_steps": 0,
            "best_checkpoint": None,
            "train_seconds": time.perf_counter() - started,
            "train_windows_per_second": None,
            # The validation tracks are part of the probe's fit and its cross-validation: no separate validation score.
            "validation_metrics": {"probe_cross_validation_accuracy": probe["cross_validation_accuracy"]},
            "linear_probe": probe,
            "log_history": [],
        }
    )
    save_model_folder(model, feature_extractor, output_dir, run, options.training)
    return run


def _teacher_labelled_windows(options, feature_extractor, windows, record, cache_dir: Path) -> dict | None:
    """`--probe-unlabelled-data` with `--teacher-targets`: the unlabelled tracks' windows and the teacher's genre
    probabilities of each of those tracks (`linear_probe.run_linear_probe`'s `teacher_labelled`), or None: a
    `genre_probabilities` teacher's own (the mean over the track's patches), else the teacher probe's, which learns
    from the labelled training and validation tracks alone."""
    if not options.probe.probe_unlabelled_data:
        return None
    from .data import load_tracks_from_folder, make_windows
    from .linear_probe import teacher_probe_probabilities

    teachers = _load_teachers(options, record)
    unlabelled = load_tracks_from_folder(options.probe.probe_unlabelled_data)
    labelled = {}
    for name in ("train", "validation"):
        for track, label in zip(windows[name]["track_id"], windows[name]["labels"]):
            labelled[track] = label
    unlabelled_ids = list(unlabelled["track_id"])
    overlap = sorted(set(unlabelled_ids) & labelled.keys())
    if overlap:
        raise ValueError(
            f"--probe-unlabelled-data holds {len(overlap)} labelled training track(s) ({', '.join(overlap[:3])}): "
            "give it music that is not in --data."
        )
    genres = windows["train"].features["labels"].names
    if any(teacher.is_distribution for teacher in teachers):
        # a teacher that answers in genres (the ensemble's file) labels the music itself: no teacher probe
        if len(teachers) != 1 or list(teachers[0].tags) != list(genres):
            raise ValueError(
                "A genre_probabilities teacher labels the unlabelled music by itself: give it alone, with the "
                f"data's genres ({', '.join(genres)})."
            )
        teachers[0].check_tracks(unlabelled_ids)
        probabilities = np.stack([teachers[0].track_target(track) for track in unlabelled_ids])
    else:
        for teacher in teachers:
            teacher.check_tracks([*labelled, *unlabelled_ids])

        def features(tracks):
            return np.stack([np.concatenate([t.track_target(track) for t in teachers]) for track in tracks])

        probabilities = teacher_probe_probabilities(
            features(list(labelled)), np.array(list(labelled.values())), features(unlabelled_ids), len(genres)
        )
    return {
        "weight": options.probe.probe_unlabelled_weight,
        "windows": make_windows(unlabelled, feature_extractor, cache_dir=cache_dir, num_proc=options.data.num_proc),
        "track_probabilities": dict(zip(unlabelled_ids, probabilities)),
    }


def save_model_folder(model, feature_extractor, output_dir: Path, run: dict, training=None) -> None:
    """Model (sharded safetensors + remote code), feature extractor, run record and model card; pushed to the Hub
    where `training` (the run's `GenreViTTrainingArguments`) asks for it."""
    model.save_pretrained(output_dir, max_shard_size=MAX_SHARD_SIZE)
    feature_extractor.save_pretrained(output_dir)
    write_text_atomic(output_dir / RUN_FILE, json.dumps(run, indent=2, default=str))
    write_text_atomic(output_dir / MODEL_CARD_FILE, model_card(run, model.config))
    if training is not None and training.push_to_hub:
        from .hub import push_folder

        push_folder(output_dir, training.hub_model_id)


def main(argv=None) -> int:
    options = TrainingOptions.from_command_line(argv)
    try:
        run = run_training(options)
    except ValueError as error:
        print(f"train.py: error: {error}", file=sys.stderr)
        return 2
    metrics = run["validation_metrics"]
    if "probe_cross_validation_accuracy" in metrics:
        summary = f"linear probe: cross-validated window accuracy {metrics['probe_cross_validation_accuracy']:.4f}"
    else:
        name = "accuracy" if "eval_accuracy" in metrics else "loss"
        metric = metrics.get("eval_accuracy", metrics.get("eval_loss"))
        summary = f"validation {name} {metric:.4f} after {run['epochs_run']:.0f} epochs"
    print(f"{summary}; model saved in {options.training.output_dir}")
    return 0


__all__ = [
    "TrainingOptions",
    "build_config",
    "library_versions",
    "main",
    "run_training",
    "trainer_arguments",
]
