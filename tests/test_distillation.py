"""Distillation from teacher targets, initialisation from a model folder and patchout, with synthetic teacher
targets (no TensorFlow): the product side of training with a teacher."""

import functools
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPOSITORY, train_in_process
from safetensors.torch import load_file

from genre_vit import GTZAN_GENRES, GenreViTConfig, GenreViTForAudioClassification
from genre_vit.spectrogram import LogMelWindowing
from genre_vit.testing import synthetic_track, write_synthetic_genre_dataset
from genre_vit.training.data import load_tracks
from genre_vit.training.distillation import GenreViTWithTeacherHead, TeacherTargets, softened_kl_divergence
from genre_vit.training.trainer import TrainingOptions, _student_label_names

GENRES = list(GTZAN_GENRES)


def write_targets(
    path, tracks: dict[str, float], dimension: int = 6, patch_seconds: float = 3.0, sources: dict | None = None
):
    """A targets file like scripts/musicnn_teacher.py writes: patches every second; patch `i` of a track holds the
    value `i` in every dimension (so window means are easy to predict); `sources` gives each track's audio file.
    Each patch also has `genre_probabilities` over GTZAN's genres, as scripts/ensemble_targets.py writes."""
    arrays = {"tags": np.array(["a", "b"]), "patch_seconds": np.float32(patch_seconds), "genres": np.array(GENRES)}
    for track, seconds in tracks.items():
        starts = np.arange(0, seconds - patch_seconds + 1e-9, 1.0, dtype=np.float32)
        values = np.repeat(np.arange(len(starts), dtype=np.float16)[:, None], dimension, axis=1)
        arrays |= {f"{track}/start_seconds": starts, f"{track}/max_pool": values}
        arrays |= {f"{track}/tag_probabilities": values[:, :2], f"{track}/duration_seconds": np.float32(seconds)}
        arrays[f"{track}/genre_probabilities"] = np.full((len(starts), len(GENRES)), 0.05, np.float32)
        arrays[f"{track}/genre_probabilities"][:, 3] = 0.55
        if sources:
            arrays[f"{track}/source"] = np.array(str(sources[track]))
    np.savez(path, **arrays)
    return path


def test_window_targets_average_the_patches_centred_in_the_window(tmp_path):
    targets = TeacherTargets.load(write_targets(tmp_path / "t.npz", {"rock.00000": 10.0}))
    assert targets.dimension == 6 and targets.patch_seconds == 3.0
    # patches start at 0..7 s, centres 1.5..8.5 s; the window [0, 4) holds centres 1.5, 2.5, 3.5 -> patches 0, 1, 2
    np.testing.assert_allclose(targets.window_targets("rock.00000", np.array([0.0, 6.0]), 4.0)[:, 0], [1.0, 6.0])
    np.testing.assert_allclose(targets.track_target("rock.00000"), np.full(6, 3.5))
    assert targets.tags == ()  # only tag probabilities have named columns
    assert TeacherTargets.load(tmp_path / "t.npz", "tag_probabilities").tags == ("a", "b")


def test_targets_that_do_not_match_the_tracks_are_a_clear_error(tmp_path):
    targets = TeacherTargets.load(write_targets(tmp_path / "t.npz", {"rock.00000": 10.0}))
    with pytest.raises(ValueError, match=r"do not match the tracks: 2 of 3 tracks have none \(jazz.00001, pop.00002\)"):
        targets.check_tracks(["rock.00000", "jazz.00001", "pop.00002"])
    with pytest.raises(ValueError, match="does not exist"):
        TeacherTargets.load(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match=r"not a teacher targets file with 'logits' .*holds .*max_pool"):
        TeacherTargets.load(tmp_path / "t.npz", "logits")


def test_each_teacher_counts_by_its_weight_not_its_size():
    student = GenreViTForAudioClassification(GenreViTConfig.tiny()).eval()
    model = GenreViTWithTeacherHead(student, [6, 2], [1.0, 0.5], classification_weight=0.0)
    windows, labels = torch.rand(3, 1, 216, 144), torch.tensor([0, 1, 2])
    targets = torch.randn(3, 8)
    with torch.no_grad():
        embedding = student.forward_head(student.forward_features(windows), pre_logits=True)
        predicted = model.teacher_head(embedding)
        expected = torch.nn.functional.mse_loss(predicted[:, :6], targets[:, :6])
        expected += 0.5 * torch.nn.functional.mse_loss(predicted[:, 6:], targets[:, 6:])
        torch.testing.assert_close(model(windows, labels, targets).loss, expected)
    with pytest.raises(ValueError, match="2 teachers but 1 teacher weights"):
        GenreViTWithTeacherHead(student, [6, 2], [1.0])


def test_a_genre_distribution_teacher_is_matched_by_the_classifier_at_a_temperature():
    student = GenreViTForAudioClassification(GenreViTConfig.tiny()).eval()
    model = GenreViTWithTeacherHead(
        student, [6, 10], [1.0, 2.0], classification_weight=0.0, distributions=[False, True], temperature=2.0
    )
    assert model.teacher_head.out_features == 6  # the distribution is the classifier's to learn, not the head's
    windows = torch.rand(3, 1, 216, 144)
    folder_labels = torch.tensor([0, 11, 12])  # unlabelled music's folders, not genres: unused at weight 0
    probabilities = torch.softmax(torch.randn(3, 10), dim=-1)
    targets = torch.cat([torch.randn(3, 6), probabilities], dim=1)
    with torch.no_grad():
        output = model(windows, folder_labels, targets)
        embedding = student.forward_head(student.forward_features(windows), pre_logits=True)
        regression = torch.nn.functional.mse_loss(model.teacher_head(embedding), targets[:, :6])
        softened = probabilities.sqrt() / probabilities.sqrt().sum(dim=1, keepdim=True)
        student_log = torch.log_softmax(output.logits / 2.0, dim=-1)
        divergence = 4.0 * (softened * (softened.log() - student_log)).sum(dim=1).mean()
        torch.testing.assert_close(output.loss, regression + 2.0 * divergence)
    # a student that answers the teacher's own distribution has nothing left to learn
    torch.testing.assert_close(softened_kl_divergence(probabilities.log() + 3.0, probabilities, 2.0), torch.tensor(0.0))
    with pytest.raises(ValueError, match="distribution teacher has 5 classes; the student has 10"):
        GenreViTWithTeacherHead(student, [5], [1.0], distributions=[True])


def test_a_distribution_teacher_gives_the_student_its_genres(tmp_path, capsys):
    write_targets(tmp_path / "t.npz", {"music-1": 8.0})
    teacher = TeacherTargets.load(tmp_path / "t.npz", "genre_probabilities")
    assert teacher.is_distribution and list(teacher.tags) == GENRES
    assert not TeacherTargets.load(tmp_path / "t.npz", "tag_probabilities").is_distribution
    common = ["--data", tmp_path, "--output-dir", tmp_path / "out", "--random-crops"]
    options = TrainingOptions.from_command_line([*map(str, common), "--classification-weight", "0"])
    assert _student_label_names(["drascula", "wesnoth"], [teacher], options) == GENRES
    labelled = TrainingOptions.from_command_line(list(map(str, common)))
    assert _student_label_names(GENRES, [teacher], labelled) == GENRES
    with pytest.raises(ValueError, match=r"not the data's labels \(drascula, wesnoth\).*--classification-weight 0"):
        _student_label_names(["drascula", "wesnoth"], [teacher], labelled)
    with pytest.raises(SystemExit):
        TrainingOptions.from_command_line([*map(str, common), "--distillation-temperature", "0"])
    assert "--distillation-temperature must be positive, got 0.0." in capsys.readouterr().err


@pytest.mark.slow
def test_handcrafted_targets_are_read_like_a_teachers(tmp_path):
    data = write_synthetic_genre_dataset(tmp_path / "data", tracks_per_genre=1, seconds=6.0)
    output = tmp_path / "handcrafted.npz"
    completed = subprocess.run(
        [sys.executable, str(REPOSITORY / "scripts" / "handcrafted_targets.py"), "--output", output, data],
        check=False,
        env=dict(os.environ, HF_HUB_OFFLINE="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    targets = TeacherTargets.load(output, "handcrafted")
    track_ids = load_tracks(data)["track_id"]
    targets.check_tracks(track_ids)  # keyed by the ids train.py gives the tracks
    assert targets.dimension == 84 and targets.patch_seconds == 3.0
    np.testing.assert_allclose(targets.patch_starts[track_ids[0]], [0.0, 1.0, 2.0, 3.0])  # 3-s patches every 1 s
    first = targets.values[track_ids[0]]
    assert np.isfinite(first).all() and (first[:, 42:] >= 0).all()  # means, then non-negative deviations
    # a second run finds every track done (OUTPUT.parts) and writes the same file
    again = tmp_path / "again.npz"
    (tmp_path / "again.npz.parts").symlink_to(tmp_path / "handcrafted.npz.parts")
    subprocess.run(
        [sys.executable, str(REPOSITORY / "scripts" / "handcrafted_targets.py"), "--output", again, data],
        check=True,
        env=dict(os.environ, HF_HUB_OFFLINE="1"),
        capture_output=True,
        timeout=300,
    )
    np.testing.assert_array_equal(TeacherTargets.load(again, "handcrafted").values[track_ids[0]], first)

    empty = tmp_path / "empty"
    empty.mkdir()
    completed = subprocess.run(
        [sys.executable, str(REPOSITORY / "scripts" / "handcrafted_targets.py"), "--output", tmp_path / "x.npz", empty],
        check=False,
        env=dict(os.environ, HF_HUB_OFFLINE="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    expected = (
        f"error: {empty} does not look like a genre dataset: expected one sub-folder of audio files per genre "
        "(directly, or under genres/ or genres_original/)."
    )
    assert completed.returncode == 1 and completed.stderr.strip().splitlines() == [expected]
    assert not (tmp_path / "x.npz").exists() and not (tmp_path / "x.npz.parts").exists()


def test_patchout_shortens_training_sequences_only():
    config = GenreViTConfig.tiny(patchout_frequency_rows=6, patchout_time_columns=4)
    model = GenreViTForAudioClassification(config)
    windows = torch.rand(2, 1, 216, 144)
    assert model.train().genre_vit(windows).last_hidden_state.shape[1] == 1 + 7 * 5
    assert model.eval().genre_vit(windows).last_hidden_state.shape[1] == 118
    with pytest.raises(Exception, match="Patchout must leave patches"):  # @strict wraps the ValueError
        GenreViTConfig.tiny(patchout_frequency_rows=13)


@pytest.mark.slow
def test_train_with_teacher_targets_then_initialise_from_the_result(tmp_path):
    data = write_synthetic_genre_dataset(tmp_path / "data", tracks_per_genre=3, seconds=8.0)
    track_ids = [path.stem for path in sorted((data / "genres").rglob("*.wav"))]
    targets = write_targets(tmp_path / "targets.npz", {track: 8.0 for track in track_ids})
    common = ["--data", data, "--config", "tiny", "--batch-size", "16", "--num-proc", "1"]
    common += ["--split-fractions", "0.6", "0.4", "0.0", "--cache-dir", tmp_path / "cache"]

    distilled = tmp_path / "distilled"
    train_in_process(
        *common,
        "--output-dir",
        distilled,
        "--epochs",
        "2",
        "--teacher-targets",
        targets,
        targets,
        "--teacher-output",
        "max_pool",
        "tag_probabilities",
        "--teacher-weight",
        "1",
        "0.5",
        "--patchout",
        "2",
        "2",
        "--classification-weight",
        "0",
    )
    run = json.loads((distilled / "training_run.json").read_text())
    assert run["teacher"] == [
        {"targets": str(targets), "output": "max_pool", "weight": 1.0, "dimension": 6},
        {"targets": str(targets), "output": "tag_probabilities", "weight": 0.5, "dimension": 2},
    ]
    best = [e for e in run["log_history"] if "eval_loss" in e]
    assert run["validation_metrics"]["eval_loss"] == pytest.approx(min(e["eval_loss"] for e in best[:-1]))
    shipped = load_file(distilled / "model.safetensors")
    assert not any("teacher_head" in name for name in shipped)  # the auxiliary head is never part of the model
    reference = GenreViTForAudioClassification(GenreViTConfig.tiny())
    assert sum(t.numel() for t in shipped.values()) == sum(p.numel() for p in reference.parameters())
    config = json.loads((distilled / "config.json").read_text())
    assert config["patchout_frequency_rows"] == 2 and config["patchout_time_columns"] == 2

    fine_tuned = tmp_path / "fine-tuned"
    train_in_process(
        *common, "--output-dir", fine_tuned, "--epochs", "1", "--init-from", distilled, "--lr", "1e-12", "--min-lr", "0"
    )
    tuned = load_file(fine_tuned / "model.safetensors")
    name = "genre_vit.embeddings.patch_embeddings.weight"
    torch.testing.assert_close(tuned[name], shipped[name])

    mismatched = write_targets(tmp_path / "other.npz", {"blues.00000": 8.0})
    with pytest.raises(ValueError, match="do not match the tracks"):
        train_in_process(*common, "--output-dir", tmp_path / "bad", "--epochs", "1", "--teacher-targets", mismatched)


def two_track_crop_source(tmp_path):
    """The windowing, two synthetic tracks ("a", label 3, 10 s; "b", label 6, 7 s), a random teacher of them and
    the crop source of both."""
    from genre_vit.training.crops import TrackAudio, _CropSource

    windowing = LogMelWindowing()
    waveforms = [synthetic_track(3, 10.0, seed=1), synthetic_track(6, 7.0, seed=2)]
    audio = TrackAudio(["a", "b"], [3, 6], waveforms, windowing.sampling_rate)
    teacher = TeacherTargets.load(write_random_targets(tmp_path / "targets.npz"), "max_pool")
    source = _CropSource(audio, windowing, [teacher], mean=np.zeros(5), std=np.ones(5))
    return windowing, waveforms, teacher, source


def test_random_crops_are_the_librarys_windows_and_targets(tmp_path):
    """Crops drawn anywhere in a track, next to its edges too, give the analysis' windows once featurised on the
    device, and the teachers' window targets; the same index always draws the same crop."""
    from genre_vit.training.crops import GridCropDataset, RandomCropDataset

    windowing, waveforms, teacher, source = two_track_crop_source(tmp_path)
    crops = RandomCropDataset(source, length=50, seed=7)
    assert torch.equal(crops[3]["crops"], crops[3]["crops"]) and not torch.equal(crops[3]["crops"], crops[4]["crops"])
    front_end = windowing.front_end
    for index in range(0, 50, 7):
        item = crops[index]
        track = [3, 6].index(item["labels"])  # the labels tell the tracks apart
        waveform = waveforms[track]
        last = (len(waveform) - windowing.window_samples) // windowing.hop_length
        starts = np.arange(last + 1) * windowing.hop_length
        padded = np.pad(waveform, (windowing.n_fft // 2, windowing.n_fft))
        matches = [s for s in starts if np.array_equal(padded[s : s + len(item["crops"])], item["crops"].numpy())]
        assert len(matches) == 1  # the crop is exactly one window's frames of the track
        start = int(matches[0])
        with torch.inference_mode():
            image = front_end(item["crops"][None]).numpy()
        np.testing.assert_allclose(image, windowing.windows_at(waveform, np.array([start])), rtol=0, atol=2e-5)
        expected = teacher.window_targets(["a", "b"][track], np.array([start / 22050]), 4.0)[0]
        np.testing.assert_allclose(item["teacher_targets"].numpy(), expected, rtol=1e-5, atol=1e-5)
    grid = GridCropDataset(source)
    assert len(grid) == windowing.num_windows(len(waveforms[0])) + windowing.num_windows(len(waveforms[1]))


def test_recording_augmentation_re_records_crops_and_keeps_the_clean_targets(tmp_path):
    """Each training crop is re-recorded (the same one for the same index), with the teachers' targets of the clean
    audio; a low-pass takes the highs away; validation crops stay clean."""
    from genre_vit.training.crops import GridCropDataset, RandomCropDataset, RecordingAugmentation, crop_datasets

    windowing, _, _, source = two_track_crop_source(tmp_path)
    clean = RandomCropDataset(source, length=20, seed=7)
    augmented = RandomCropDataset(source, length=20, seed=7, augmentation=RecordingAugmentation(22050))
    for index in range(20):
        before, after = clean[index], augmented[index]
        assert after["crops"].shape == before["crops"].shape and after["crops"].dtype == torch.float32
        assert not torch.equal(after["crops"], before["crops"])
        assert torch.equal(after["crops"], augmented[index]["crops"])
        torch.testing.assert_close(after["teacher_targets"], before["teacher_targets"], rtol=0, atol=0)
    _, validation, _, _ = crop_datasets(
        source.audio, source.audio, windowing, source.teachers, 20, 7, RecordingAugmentation(22050)
    )
    clean_grid = GridCropDataset(source)
    assert all(torch.equal(validation[i]["crops"], clean_grid[i]["crops"]) for i in range(len(clean_grid)))

    dull = RecordingAugmentation(
        22050,
        max_tilt_db_per_octave=0.0,
        low_pass_hz=(2000.0, 2000.0),
        low_pass_probability=1.0,
        high_pass_probability=0.0,
        reverb_probability=0.0,
        noise_probability=0.0,
    )
    crop = clean[0]["crops"].numpy()
    spectrum_before = np.abs(np.fft.rfft(crop)) ** 2
    spectrum_after = np.abs(np.fft.rfft(dull(crop, np.random.default_rng(0)))) ** 2
    highs = np.fft.rfftfreq(len(crop), 1 / 22050) > 4000  # an octave above the cut-off: 24 dB down
    assert spectrum_after[highs].sum() < spectrum_before[highs].sum() * 10 ** (-2.0)
    lows = np.fft.rfftfreq(len(crop), 1 / 22050) < 1000
    np.testing.assert_allclose(spectrum_after[lows].sum(), spectrum_before[lows].sum(), rtol=1e-6)


def test_recording_augmentation_needs_random_crops(tmp_path, capsys):
    from genre_vit.training.trainer import TrainingOptions

    arguments = ["--data", str(tmp_path), "--recording-augmentation", "--output-dir", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as exit_info:
        TrainingOptions.from_command_line(arguments)
    assert exit_info.value.code == 2
    assert "--recording-augmentation re-records random crops" in capsys.readouterr().err


def test_time_budget_callback_checkpoints_and_stops():
    from transformers import TrainerControl, TrainerState

    from genre_vit.training.crops import TimeBudgetCallback

    callback = TimeBudgetCallback(save_every_minutes=1.0, budget_minutes=2.0)
    state, control = TrainerState(), TrainerControl()
    callback.on_train_begin(None, state, control)
    assert not callback.on_step_end(None, state, control).should_save
    callback.last_save -= 61
    assert callback.on_step_end(None, state, control).should_save
    control = TrainerControl()
    callback.on_save(None, state, control)
    assert not callback.on_step_end(None, state, control).should_save
    callback.started -= 121
    control = callback.on_step_end(None, state, control)
    assert control.should_save and control.should_training_stop


def write_random_targets(path):
    """Two tracks' random patch targets (3-s patches every second)."""
    rng = np.random.default_rng(0)
    arrays = {"patch_seconds": np.float32(3.0)}
    for track, seconds in {"a": 10.0, "b": 7.0}.items():
        starts = np.arange(0, seconds - 3.0 + 1e-9, 1.0, dtype=np.float32)
        arrays |= {f"{track}/start_seconds": starts, f"{track}/max_pool": rng.normal(size=(len(starts), 5))}
    np.savez(path, **arrays)
    return path


def ffmpeg_has_libopus() -> bool:
    if shutil.which("ffmpeg") is None:
        return False
    encoders = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, check=False)
    return "libopus" in encoders.stdout


@pytest.mark.slow
@pytest.mark.skipif(not ffmpeg_has_libopus(), reason="packing encodes with ffmpeg's libopus")
def test_packed_audio_pretrains_on_random_crops_with_time_checkpoints_and_resume(tmp_path):
    data = write_synthetic_genre_dataset(tmp_path / "data", tracks_per_genre=1, seconds=8.0)
    paths = {path.stem: path for path in sorted((data / "genres").rglob("*.wav"))}
    targets = write_targets(tmp_path / "targets.npz", {track: 8.0 for track in paths}, sources=paths)
    run = functools.partial(
        subprocess.run, check=False, env=dict(os.environ, HF_HUB_OFFLINE="1"), capture_output=True, text=True
    )
    packed = tmp_path / "packed"
    pack = [sys.executable, str(REPOSITORY / "scripts" / "pack_audio.py"), "--teacher-targets", targets]
    completed = run([*pack, "--output", packed], timeout=600)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert sorted(path.stem for path in (packed / "audio" / "unlabelled").glob("*.opus")) == sorted(paths)
    assert (packed / "targets" / "targets.npz").read_bytes() == targets.read_bytes()

    encoder = tmp_path / "encoder"
    common = ["--data", packed / "audio", "--random-crops", "--classification-weight", "0", "--config", "tiny"]
    common += ["--teacher-targets", *[packed / "targets" / "targets.npz"] * 3]
    common += ["--teacher-output", "max_pool", "tag_probabilities", "genre_probabilities"]
    common += ["--teacher-weight", "1", "0.5", "1", "--distillation-temperature", "3"]
    common += ["--split-fractions", "0.8", "0.2", "0", "--batch-size", "4", "--patchout", "2", "2", "--num-proc", "1"]
    common += ["--output-dir", encoder, "--save-every-minutes", "0.0001", "--logging-strategy", "steps"]
    common += ["--logging-steps", "1", "--save-strategy", "no", "--eval-strategy", "no"]
    common += ["--load-best-model-at-end", "false", "--save-total-limit", "10"]
    train_in_process(*common, "--max-steps", "4")
    checkpoints = sorted((encoder / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert [p.name for p in checkpoints] == ["checkpoint-1", "checkpoint-2", "checkpoint-3", "checkpoint-4"]
    first = json.loads((encoder / "training_run.json").read_text())
    assert first["split_sizes"]["train"]["tracks"] == 8 and first["split_method"].endswith("random crops")
    model = GenreViTForAudioClassification.from_pretrained(encoder, dtype=torch.float32)
    assert sum(p.numel() for p in model.genre_vit.parameters()) == sum(
        p.numel() for p in GenreViTForAudioClassification(GenreViTConfig.tiny()).genre_vit.parameters()
    )
    # the ensemble's genres, which its classifier learnt, not the packed audio's one folder
    assert list(model.config.id2label.values()) == GENRES
    assert first["teacher"][2] == {
        "targets": str(packed / "targets" / "targets.npz"),
        "output": "genre_probabilities",
        "weight": 1.0,
        "dimension": 10,
        "temperature": 3.0,
    }
    assert not any("teacher_head" in name or "front_end" in name for name in load_file(encoder / "model.safetensors"))

    train_in_process(*common, "--max-steps", "6", "--resume")
    resumed = json.loads((encoder / "training_run.json").read_text())
    assert resumed["resumed_from"].endswith("checkpoint-4") and resumed["global_steps"] == 6
    losses = [entry["loss"] for entry in resumed["log_history"] if "loss" in entry]
    assert losses[:4] == [entry["loss"] for entry in first["log_history"] if "loss" in entry]  # the history goes on
    assert len(losses) == 6 and all(np.isfinite(losses))

    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not audio")
    broken = write_targets(tmp_path / "broken.npz", {"rock.00000": 8.0}, sources={"rock.00000": not_audio})
    completed = run([*pack[:-1], broken, "--output", tmp_path / "b"], timeout=600)
    assert completed.returncode == 1 and completed.stderr.strip().startswith(f"ffmpeg could not encode {not_audio}")
    assert len(completed.stderr.strip().splitlines()) == 1
    assert not list((tmp_path / "b").rglob("*.opus"))  # nothing half-written
