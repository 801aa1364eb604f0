"""The typed options shared by train.py, evaluate.py and cross_validate.py (HfArgumentParser over dataclasses)."""

import pytest

from genre_vit.training.options import EVALUATION_OPTIONS, TRAINING_OPTIONS, parse
from genre_vit.training.trainer import TrainingOptions, trainer_arguments


def test_short_names_map_onto_training_arguments_and_the_recipe_is_the_default(tmp_path):
    options = TrainingOptions.from_command_line(
        [
            "--data",
            "d",
            "--output-dir",
            str(tmp_path),
            "--lr",
            "3e-4",
            "--epochs",
            "7",
            "--batch-size",
            "16",
            "--dataloader-workers",
            "1",
            "--patchout",
            "6",
            "4",
            "--teacher-targets",
            "t.npz",
            "--folds",
            "5",
            "--fold",
            "2",
        ]
    )
    training = options.training
    assert (training.learning_rate, training.num_train_epochs, training.per_device_train_batch_size) == (3e-4, 7, 16)
    assert training.dataloader_num_workers == 1 and options.model.patchout == [6, 4]
    assert options.split.folds == 5 and options.split.fold == 2 and options.distillation.teacher_targets == ["t.npz"]
    defaults = TrainingOptions.from_command_line(["--data", "d", "--output-dir", str(tmp_path)]).training
    assert (defaults.learning_rate, defaults.weight_decay, defaults.per_device_train_batch_size) == (1e-4, 0.1, 0)
    assert defaults.num_train_epochs == 150 and defaults.patience == 10 and defaults.seed == 42
    assert defaults.lr_scheduler_kwargs == {"min_lr": 1e-7} and defaults.load_best_model_at_end


def test_the_trainer_gets_checkpoints_under_the_model_folder_and_the_chosen_metric(tmp_path):
    options = TrainingOptions.from_command_line(
        ["--data", "d", "--output-dir", str(tmp_path), "--push-to-hub", "--hub-model-id", "me/genre-vit"]
    )
    arguments = trainer_arguments(options, "loss")
    assert arguments.output_dir == str(tmp_path / "checkpoints")
    assert arguments.metric_for_best_model == "loss" and arguments.greater_is_better is False
    assert arguments.push_to_hub is False and options.training.push_to_hub  # the folder is pushed once, at the end
    fold = options.replace(split={"folds": 5, "fold": 3}, training={"output_dir": str(tmp_path / "fold-3")})
    assert fold.split.fold == 3 and fold.training.learning_rate == options.training.learning_rate
    assert options.split.folds is None  # replace returns a copy


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--fold", "2"], "--fold needs --folds"),
        (["--folds", "5", "--split-files", "lists"], "Choose one way to split"),
        (["--split-fractions", "0.5", "0.5"], "three numbers"),
        (["--patchout", "6"], "two numbers"),
        (["--teacher-targets", "a.npz", "b.npz", "--teacher-weight", "1", "2", "3"], "one value for all 2"),
    ],
)
def test_contradictory_options_are_usage_errors(tmp_path, capsys, arguments, message):
    with pytest.raises(SystemExit) as exit_info:
        parse(TRAINING_OPTIONS, ["--data", "d", "--output-dir", str(tmp_path), *arguments], prog="train.py")
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_each_teacher_file_gets_its_output_and_weight():
    def teachers(*arguments):
        return TrainingOptions.from_command_line(
            ["--data", "d", "--output-dir", "o", *arguments]
        ).distillation.teachers()

    assert teachers() == []
    assert teachers("--teacher-targets", "t.npz") == [("t.npz", "max_pool", 1.0)]
    assert teachers("--teacher-targets", "a.npz", "b.npz", "--teacher-output", "max_pool", "handcrafted") == [
        ("a.npz", "max_pool", 1.0),
        ("b.npz", "handcrafted", 1.0),
    ]
    assert teachers("--teacher-targets", "a.npz", "b.npz", "--teacher-weight", "1", "0.5")[1] == (
        "b.npz",
        "max_pool",
        0.5,
    )


def test_evaluation_options():
    evaluation, data, split = parse(EVALUATION_OPTIONS, ["--model", "m", "--data", "d", "--output-dir", "o"])
    assert (evaluation.model, evaluation.split, evaluation.batch_size, data.data) == ("m", "test", 64, "d")
    assert split.split_fractions == [0.8, 0.1, 0.1]


def test_the_automatic_batch_size_keeps_epochs_of_32_steps():
    from genre_vit.training.options import auto_batch_size

    assert auto_batch_size(12_000) == 64  # full GTZAN's training windows: the reference's batch
    assert auto_batch_size(2_048) == 64 and auto_batch_size(2_047) == 56
    assert auto_batch_size(300) == 8 and auto_batch_size(20) == 8  # a small labelled set: as many steps as it allows
    assert auto_batch_size(4_096, processes=4) == 32  # 32 steps per epoch across the processes


def test_push_to_hub_without_a_repository_is_refused_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        TrainingOptions.from_command_line(["--data", "d", "--output-dir", str(tmp_path), "--push-to-hub"])
    assert exit_info.value.code == 2
    assert "--push-to-hub needs --hub-model-id" in capsys.readouterr().err
