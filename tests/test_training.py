"""train.py and evaluate.py end to end on a synthesized 10-class dataset, plus splits, resume and bad data."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import GTZAN_DIR, REPOSITORY, TINY_RECIPE, free_port, run_python, run_script, train_in_process

from genre_vit import GTZAN_GENRES, GenreClassifier, GenreViTFeatureExtractor
from genre_vit.model_folder import REMOTE_CODE_FILES
from genre_vit.testing import synthetic_track, write_synthetic_genre_dataset
from genre_vit.training.data import (
    assert_track_disjoint,
    load_tracks,
    make_windows,
    read_split_files,
    split_tracks,
    split_tracks_from_files,
    tilt_gain_db,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """10 genres x 10 tracks x 30 s of clearly different signals, plus GTZAN's corrupt jazz.00054.wav."""
    root = write_synthetic_genre_dataset(tmp_path_factory.mktemp("synthetic-gtzan"), tracks_per_genre=10, seconds=30.0)
    (root / "genres" / "jazz" / "jazz.00054.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage" * 10)
    return root


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    output = tmp_path_factory.mktemp("run") / "genre-vit-synthetic"
    completed = run_script("train.py", "--data", dataset, "--output-dir", output, "--epochs", "10", *TINY_RECIPE)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return output, completed


def test_training_learns_and_chooses_on_validation(trained):
    output, completed = trained
    run = json.loads((output / "training_run.json").read_text())
    assert run["validation_metrics"]["eval_accuracy"] >= 0.8  # chance is 0.1
    assert "validation accuracy" in completed.stdout
    best_epoch_accuracy = max(e["eval_accuracy"] for e in run["log_history"] if "eval_accuracy" in e)
    assert run["validation_metrics"]["eval_accuracy"] == pytest.approx(best_epoch_accuracy)
    assert run["recipe"]["weight_decay"] == 0.1 and run["recipe"]["min_learning_rate"] == 1e-7
    assert run["recipe"]["seed"] == 42 and run["versions"]["torch"] and run["versions"]["transformers"]
    splits = {name: set(ids) for name, ids in run["splits"].items()}
    assert not (splits["train"] & splits["validation"]) and not (splits["train"] & splits["test"])
    assert not (splits["validation"] & splits["test"])
    assert len(splits["train"]) == 81 and len(splits["validation"]) == 10 and len(splits["test"]) == 10
    if "jazz.00054" in splits["train"] | splits["validation"]:
        assert run["skipped_tracks"] == ["jazz.00054"] and "jazz.00054" in completed.stderr


def test_model_folder(trained):
    output, _ = trained
    names = {path.name for path in output.iterdir()}
    assert {
        "config.json",
        "preprocessor_config.json",
        "README.md",
        "training_run.json",
        *REMOTE_CODE_FILES,
    } <= names
    weights = list(output.glob("*.safetensors"))
    assert weights and all(path.stat().st_size <= 15_000_000 for path in weights)
    card = (output / "README.md").read_text()
    assert "pipeline_tag: audio-classification" in card and "Validation window accuracy" in card
    classifier = GenreClassifier.from_pretrained(output, device="cpu")
    result = classifier.analyze((synthetic_track(3, 10.0, seed=99), 22050))
    assert result.top_genre == GTZAN_GENRES[3]


def test_evaluate_reports_are_consistent(trained, dataset, tmp_path):
    model, _ = trained
    completed = run_script("evaluate.py", "--model", model, "--data", dataset, "--output-dir", tmp_path / "eval")
    assert completed.returncode == 0, completed.stderr[-3000:]
    folder = tmp_path / "eval"
    assert {p.name for p in folder.iterdir()} == {
        "metrics.json",
        "report.md",
        "confusion_matrix.png",
        "roc_curves.png",
        "predictions.csv",
    }
    metrics = json.loads((folder / "metrics.json").read_text())
    rows = list(csv.DictReader((folder / "predictions.csv").open()))
    run = json.loads((model / "training_run.json").read_text())
    test_tracks = set(run["splits"]["test"]) - {"jazz.00054"}
    assert {row["track_id"] for row in rows} == test_tracks
    window, track = metrics["window"], metrics["track"]
    assert window["count"] == len(rows) and track["count"] == len(test_tracks)
    assert sum(c["support"] for c in window["per_class"].values()) == len(rows)
    assert sum(c["support"] for c in track["per_class"].values()) == len(test_tracks)
    assert np.sum(window["confusion_matrix"]) == len(rows)
    recomputed = np.mean([row["label"] == row["predicted"] for row in rows])
    assert window["accuracy"] == pytest.approx(recomputed)
    assert window["accuracy"] >= 0.8
    report = (folder / "report.md").read_text()
    assert "| blues |" in report and "## Per genre, track level" in report
    for image in ("confusion_matrix.png", "roc_curves.png"):
        assert (folder / image).read_bytes()[:4] == b"\x89PNG"


def test_evaluate_rejects_mismatched_labels(trained, tmp_path):
    model, _ = trained
    for genre in ("blues", "polka"):
        (tmp_path / "data" / genre).mkdir(parents=True)
        soundfile.write(tmp_path / "data" / genre / f"{genre}.00000.wav", synthetic_track(0, 5.0, seed=1), 22050)
    completed = run_script(
        "evaluate.py",
        "--model",
        model,
        "--data",
        tmp_path / "data",
        "--split",
        "all",
        "--output-dir",
        tmp_path / "eval",
    )
    assert completed.returncode == 2
    assert "labels disagree" in completed.stderr and "polka" in completed.stderr
    assert not (tmp_path / "eval").exists()


def test_split_integrity(dataset):
    tracks = load_tracks(dataset)
    assert len(tracks) == 101 and tracks.features["label"].names == list(GTZAN_GENRES)
    splits = split_tracks(tracks, (0.8, 0.1, 0.1), seed=42)
    assert [len(s) for s in splits.values()] == [81, 10, 10]  # jazz's 11 tracks: 9 / 1 / 1
    for name in ("validation", "test"):
        assert set(splits[name]["label"]) == set(range(10))  # stratified: every genre in every split
    assert split_tracks(tracks, (0.8, 0.1, 0.1), seed=42)["test"]["track_id"] == splits["test"]["track_id"]
    assert split_tracks(tracks, (0.8, 0.1, 0.1), seed=7)["test"]["track_id"] != splits["test"]["track_id"]
    assert_track_disjoint(splits)
    with pytest.raises(ValueError, match="in both the train and the test split"):
        assert_track_disjoint({"train": splits["train"], "test": splits["train"].select([0])})
    with pytest.raises(ValueError, match="summing to 1"):
        split_tracks(tracks, (0.5, 0.1, 0.1))


def test_windows_keep_tracks_together_and_skip_corrupt_clips(dataset, tmp_path, caplog):
    tracks = load_tracks(dataset)
    jazz = tracks.filter(lambda row: row["track_id"] in {"jazz.00054", "jazz.00001", "blues.00002"})
    extractor = GenreViTFeatureExtractor()
    windows = make_windows(jazz, extractor, cache_dir=tmp_path / "cache")
    assert sorted(windows.unique("track_id")) == ["blues.00002", "jazz.00001"]
    assert "Skipped 1 unreadable track(s): jazz.00054" in caplog.text
    assert len(windows) == 28 and windows[0]["input_values"] is not None
    per_track = {}
    for track, label in zip(windows["track_id"], windows["labels"]):
        per_track.setdefault(track, set()).add(label)
    assert all(len(labels) == 1 for labels in per_track.values())
    # A second run loads the cached windows instead of recomputing them.
    cached = list((tmp_path / "cache").glob("windows-*.arrow"))
    assert len(cached) == 1
    modified = cached[0].stat().st_mtime_ns
    again = make_windows(jazz, extractor, cache_dir=tmp_path / "cache")
    assert again["track_id"] == windows["track_id"] and cached[0].stat().st_mtime_ns == modified


def test_shifted_windows_add_to_the_grid_without_changing_it(dataset, tmp_path):
    """`offsets_seconds` (the probe's augmentation) keeps the window rule's windows, in order, and adds the windows of
    the shifted grid, each the image that `windows_at` computes at its start; the cache keeps the two apart."""
    from genre_vit.audio import load_audio

    tracks = load_tracks(dataset)
    one = tracks.filter(lambda row: row["track_id"] == "blues.00002")
    extractor = GenreViTFeatureExtractor()
    plain = make_windows(one, extractor, cache_dir=tmp_path / "cache")
    shifted = make_windows(one, extractor, cache_dir=tmp_path / "cache", offsets_seconds=[1.0])
    assert len(list((tmp_path / "cache").glob("windows-*.arrow"))) == 2
    grid = np.asarray(plain["start_seconds"])
    starts = np.asarray(shifted["start_seconds"])
    np.testing.assert_array_equal(starts[: len(grid)], grid)  # 0, 2, ..., then the end-aligned window
    extra = starts[len(grid) :]
    np.testing.assert_allclose(extra, np.arange(len(extra)) * 2.0 + 1.0, atol=1e-5)  # 1, 3, 5, ... s
    assert len(extra) == len(grid) - 1
    np.testing.assert_array_equal(np.asarray(shifted["input_values"][: len(grid)]), np.asarray(plain["input_values"]))
    waveform = load_audio(one[0]["audio_path"])
    expected = extractor.windows_at(waveform, np.round(extra[:3] * 22050).astype(np.int64))
    np.testing.assert_allclose(np.asarray(shifted["input_values"][len(grid) : len(grid) + 3]), expected, atol=1e-6)


def test_tilt_gains_are_so_many_db_per_octave_about_1_khz_and_limited():
    frequencies = np.array([250.0, 1000.0, 4000.0, 1.0])
    gains = tilt_gain_db(frequencies, db_per_octave=3.0, limit_db=20.0)
    np.testing.assert_allclose(gains, [-6.0, 0.0, 6.0, 3.0 * np.log2(20 / 1000)])  # below 20 Hz counts as 20 Hz
    assert tilt_gain_db(np.array([64000.0]), db_per_octave=3.0, limit_db=12.0)[0] == 12.0  # +18 dB, limited


def test_split_files(dataset, tmp_path):
    lists = tmp_path / "splits"
    lists.mkdir()
    (lists / "train_filtered.txt").write_text("".join(f"{g}/{g}.0000{i}.wav\n" for g in GTZAN_GENRES for i in range(6)))
    (lists / "valid_filtered.txt").write_text("".join(f"{g}/{g}.00006.wav\n" for g in GTZAN_GENRES))
    (lists / "test_filtered.txt").write_text(
        "".join(f"{g}/{g}.00007.wav\n" for g in GTZAN_GENRES) + "rock/rock.00099.wav\n"
    )
    splits = split_tracks_from_files(load_tracks(dataset), lists)
    assert [len(s) for s in splits.values()] == [60, 10, 10]
    assert splits["test"]["track_id"][0] == "blues.00007"
    (lists / "valid_filtered.txt").write_text("blues/blues.00000.wav\n")
    with pytest.raises(ValueError, match="blues.00000 is in both"):
        split_tracks_from_files(load_tracks(dataset), lists)


def test_split_files_take_track_ids_with_or_without_folder_and_suffix(tmp_path):
    """`blues.00029` is the id of `blues/blues.00029.wav`: only an audio suffix is taken off, not the id's number."""
    lists = tmp_path / "splits"
    lists.mkdir()
    (lists / "train_filtered.txt").write_text("blues/blues.00029.wav\nblues.00030\nrock/rock.00001.au\n")
    (lists / "valid_filtered.txt").write_text("jazz.00001\n")
    (lists / "test_filtered.txt").write_text("pop/pop.00002.flac\n")
    assert read_split_files(lists) == {
        "train": ["blues.00029", "blues.00030", "rock.00001"],
        "validation": ["jazz.00001"],
        "test": ["pop.00002"],
    }


@pytest.mark.skipif(not (GTZAN_DIR / "splits").is_dir(), reason="published GTZAN split lists not found")
def test_published_split_files_parse():
    lists = read_split_files(GTZAN_DIR / "splits")
    assert [len(lists[name]) for name in ("train", "validation", "test")] == [443, 197, 290]
    assert lists["train"][0].count(".") == 1 and "/" not in lists["train"][0]


def test_resume_continues_from_the_last_checkpoint(tmp_path):
    data = write_synthetic_genre_dataset(tmp_path / "data", tracks_per_genre=3, seconds=8.0)
    output = tmp_path / "run"
    common = ["--data", data, "--output-dir", output, "--split-fractions", "0.6", "0.4", "0.0", *TINY_RECIPE]
    common += ["--num-proc", "1"]  # no datasets.map workers forked from this process, which has run torch
    train_in_process(*common, "--epochs", "2")
    steps_per_epoch = json.loads((output / "training_run.json").read_text())["global_steps"] // 2
    shutil.rmtree(
        output / "checkpoints" / f"checkpoint-{2 * steps_per_epoch}", ignore_errors=True
    )  # "killed" in epoch 2
    train_in_process(*common, "--epochs", "3", "--resume")
    run = json.loads((output / "training_run.json").read_text())
    assert Path(run["resumed_from"]).name == f"checkpoint-{steps_per_epoch}"
    for checkpoint in (output / "checkpoints").glob("checkpoint-*"):  # a record beside every checkpoint
        record = json.loads((checkpoint / "training_run.json").read_text())
        assert record["versions"]["torch"] and record["recipe"]["seed"] == 42 and record["splits"]["train"]
    assert run["global_steps"] == 3 * steps_per_epoch and run["epochs_run"] == 3


def test_distributed_training_with_two_cpu_processes(tmp_path):
    """`torchrun --nproc_per_node 2 train.py`: DDP over gloo on the CPU; both ranks finish, one model is written."""
    data = write_synthetic_genre_dataset(tmp_path / "data", tracks_per_genre=3, seconds=8.0)
    output = tmp_path / "run"
    completed = run_python(
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        free_port(),
        REPOSITORY / "train.py",
        "--data",
        data,
        "--output-dir",
        output,
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--split-fractions",
        "0.6",
        "0.4",
        "0.0",
        "--config",
        "tiny",
        "--num-proc",
        "1",
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.count("validation accuracy") == 2  # both ranks finished
    assert "parallel_mode != ParallelMode.DISTRIBUTED" not in completed.stderr
    run = json.loads((output / "training_run.json").read_text())
    assert run["world_size"] == 2
    train_windows = run["split_sizes"]["train"]["windows"]
    assert run["global_steps"] == -(-train_windows // (8 * 2))  # each step consumed a batch on each rank
    assert [p.name for p in (output / "checkpoints").iterdir()] == [f"checkpoint-{run['global_steps']}"]
    assert (output / "config.json").exists()


def test_trainer_loss_scaling(tmp_path):
    """The logged loss and the gradient of one step are the same for batch 16, for batch 8 x 2 accumulation steps,
    and for two gloo processes of batch 8: the Trainer must scale the loss itself (the model declares that it takes
    no loss kwargs), not multiply it by the number of processes or skip the division by the accumulation steps."""
    probe = REPOSITORY / "tests" / "trainer_step_probe.py"

    def logged(*launcher, batch, accumulation):
        completed = run_python(*launcher, probe, tmp_path / "out", batch, accumulation, timeout=300)
        assert completed.returncode == 0, completed.stderr[-3000:]
        return json.loads(completed.stdout.strip().splitlines()[-1])

    whole = logged(batch=16, accumulation=1)
    accumulated = logged(batch=8, accumulation=2)
    distributed = logged(
        "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", free_port(), batch=8, accumulation=1
    )
    for other in (accumulated, distributed):
        assert other["loss"] == pytest.approx(whole["loss"], rel=1e-3)
        assert other["grad_norm"] == pytest.approx(whole["grad_norm"], rel=1e-3)


@pytest.mark.slow
def test_the_defaults_learn_a_small_labelled_set(tmp_path):
    """A user's first run: 8 tracks of 12 s per genre, the tiny architecture, 40 epochs, no other option. At the
    reference's batch of 64 an epoch was 5 steps and the model reached 0.80 track accuracy on the test tracks; the
    automatic batch size gives it 37 steps an epoch."""
    data = write_synthetic_genre_dataset(tmp_path / "data", tracks_per_genre=8, seconds=12.0)
    output = tmp_path / "run"
    completed = run_script("train.py", "--data", data, "--output-dir", output, "--config", "tiny", "--epochs", "40")
    assert completed.returncode == 0, completed.stderr[-3000:]
    run = json.loads((output / "training_run.json").read_text())
    assert run["recipe"]["batch_size"] == 8
    completed = run_script("evaluate.py", "--model", output, "--data", data, "--output-dir", output / "eval")
    assert completed.returncode == 0, completed.stderr[-3000:]
    metrics = json.loads((output / "eval" / "metrics.json").read_text())
    assert metrics["track"]["accuracy"] >= 0.9, metrics["track"]["accuracy"]
