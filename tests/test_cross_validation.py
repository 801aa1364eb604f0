"""cross_validate.py end to end on a small synthesized dataset: folds partition the tracks, the summary agrees with
the per-fold reports, a rerun continues instead of retraining, and the final model carries the numbers."""

import json
import statistics

import pytest
from conftest import TINY_RECIPE, run_script

from genre_vit.testing import write_synthetic_genre_dataset
from genre_vit.training.cross_validation import main
from genre_vit.training.data import load_tracks, split_tracks_for_fold
from genre_vit.training.options import use_bf16

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    return write_synthetic_genre_dataset(tmp_path_factory.mktemp("cv-data"), tracks_per_genre=4, seconds=8.0)


def test_fold_splits_partition_the_tracks(small_dataset):
    tracks = load_tracks(small_dataset)
    tested = []
    for fold in range(2):
        splits = split_tracks_for_fold(tracks, num_folds=2, fold=fold, validation_fraction=0.5, seed=42)
        ids = {name: set(split["track_id"]) for name, split in splits.items()}
        assert not (ids["train"] & ids["validation"] or ids["train"] & ids["test"] or ids["validation"] & ids["test"])
        assert len(ids["train"] | ids["validation"] | ids["test"]) == len(tracks)
        assert sorted(splits["test"]["label"]) == sorted(list(range(10)) * 2)  # stratified: 2 per genre
        tested += splits["test"]["track_id"]
    assert sorted(tested) == sorted(tracks["track_id"])


def test_fold_split_rejects_impossible_requests(small_dataset):
    tracks = load_tracks(small_dataset)
    with pytest.raises(ValueError, match="at least 2 folds"):
        split_tracks_for_fold(tracks, num_folds=5, fold=5)
    with pytest.raises(ValueError, match="5 tracks of some genre"):
        split_tracks_for_fold(tracks, num_folds=5, fold=0)


def test_cross_validation_end_to_end(small_dataset, tmp_path, capsys):
    output = tmp_path / "cv"
    arguments = ["--data", small_dataset, "--output-dir", output, "--folds", "2", "--validation-fraction", "0.5"]
    # bf16 autocast on the CPU, the path the bundled model was trained with.
    completed = run_script("cross_validate.py", *arguments, "--epochs", "2", "--precision", "bf16", *TINY_RECIPE)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "2-fold cross-validation: window accuracy" in completed.stdout

    summary = json.loads((output / "cross_validation.json").read_text())
    folds = [json.loads((output / f"fold-{k}" / "eval" / "metrics.json").read_text()) for k in range(2)]
    accuracies = [fold["window"]["accuracy"] for fold in folds]
    assert summary["mean_std"]["window_accuracy"]["mean"] == pytest.approx(statistics.mean(accuracies))
    assert summary["mean_std"]["window_accuracy"]["std"] == pytest.approx(statistics.stdev(accuracies))
    # Pooled out-of-fold predictions: every track tested once, window counts add up.
    assert summary["pooled"]["track"]["count"] == 40
    assert summary["pooled"]["window"]["count"] == sum(fold["window"]["count"] for fold in folds)
    for k in range(2):
        run = json.loads((output / f"fold-{k}" / "training_run.json").read_text())
        assert f"fold {k + 1} of 2" in run["split_method"] and run["recipe"]["precision"] == "bf16"
        assert not set(run["splits"]["test"]) & (set(run["splits"]["train"]) | set(run["splits"]["validation"]))
    report = (output / "report.md").read_text()
    assert "2-fold cross-validation by track" in report and "| fold-1 |" in report
    assert (output / "confusion_matrix.png").stat().st_size > 0

    final = output / "final"
    run = json.loads((final / "training_run.json").read_text())
    assert run["splits"]["test"] == [] and len(run["splits"]["train"]) + len(run["splits"]["validation"]) == 40
    card = (final / "README.md").read_text()
    assert "There is no test split" in card and "2-fold cross-validation by track" in card
    assert json.loads((final / "cross_validation.json").read_text())["mean_std"] == summary["mean_std"]

    # the rerun, in this process: it trains nothing
    assert main([*arguments, "--epochs", "2", "--precision", "bf16", "--no-final-model", *TINY_RECIPE]) == 0
    assert capsys.readouterr().err.count("already evaluated") == 2
    assert json.loads((output / "cross_validation.json").read_text())["mean_std"] == summary["mean_std"]


def test_cross_validation_rejects_split_files(small_dataset, tmp_path, capsys):
    assert main(["--data", small_dataset, "--output-dir", tmp_path, "--split-files", tmp_path]) == 2
    assert "--split-files does not apply" in capsys.readouterr().err


def test_precision_choice():
    assert use_bf16("auto", on_gpu=False) is False
    assert use_bf16("bf16", on_gpu=False) is True
    assert use_bf16("fp32", on_gpu=True) is False
    with pytest.raises(ValueError, match="--precision"):
        use_bf16("fp16", on_gpu=False)
