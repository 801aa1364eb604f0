"""Teachers as genre classifiers: the product of experts and the Emotify halves."""

import subprocess
import sys

import numpy as np
from conftest import REPOSITORY

from genre_vit import GTZAN_GENRES
from genre_vit.training.distillation import TeacherTargets
from genre_vit.training.teacher_ensemble import fit_probe, product_of_experts, track_means, tracks_of


def test_the_product_of_experts_weighs_the_prior_and_stays_a_distribution():
    probe = np.array([[0.6, 0.3, 0.1]])
    prior = np.array([[0.1, 0.2, 0.7]])
    np.testing.assert_allclose(product_of_experts(probe, prior, 0.0), probe)
    combined = product_of_experts(probe, prior, 1.0)
    np.testing.assert_allclose(combined, probe * prior / (probe * prior).sum())
    assert product_of_experts(probe, prior, 4.0).argmax() == 2


def test_emotify_halves_come_from_the_file_numbers_and_genres_from_the_folders(tmp_path):
    arrays = {"patch_seconds": np.float32(4.0)}
    for folder, number in [("pop", 7), ("pop", 8), ("rock", 11), ("electronic", 2)]:
        key = f"{folder}.{number}"
        arrays[f"{key}/start_seconds"] = np.array([0.0, 1.0], np.float32)
        arrays[f"{key}/embedding"] = np.full((2, 3), number, np.float32)
        arrays[f"{key}/source"] = np.str_(f"/music/emotify/{folder}/{number}.opus")
    np.savez(tmp_path / "targets.npz", **arrays)
    targets = TeacherTargets.load(tmp_path / "targets.npz", "embedding")
    tracks = {track.key: track for track in tracks_of(targets)}
    assert (tracks["pop.7"].genre, tracks["pop.7"].half) == ("pop", "validation")
    assert (tracks["pop.8"].half, tracks["electronic.2"].genre) == ("test", "electronic")
    np.testing.assert_allclose(track_means([targets], ["rock.11"]), [[11, 11, 11]])


def test_a_probe_answers_with_every_genre_column_even_for_genres_it_never_saw():
    rng = np.random.default_rng(0)
    features = np.concatenate([rng.normal(0, 1, (10, 4)), rng.normal(4, 1, (10, 4))])
    labels = np.repeat([0, 2], 10)
    probabilities = fit_probe(features, labels, 1.0, classes=3)(features)
    assert probabilities.shape == (20, 3) and np.all(probabilities[:, 1] == 0)
    assert (probabilities.argmax(1) == labels).mean() == 1.0


def test_ensemble_targets_are_the_probe_times_the_prior_on_the_zero_shot_grid(tmp_path):
    genres = list(GTZAN_GENRES)
    rng = np.random.default_rng(0)
    labelled = {"patch_seconds": np.float32(3.0)}
    for number in range(12):
        genre = ("blues", "rock")[number % 2]
        key = f"{genre}.{number:05d}"
        labelled[f"{key}/start_seconds"] = np.arange(5, dtype=np.float32)
        labelled[f"{key}/penultimate"] = rng.normal(4.0 if genre == "rock" else -4.0, 1.0, (5, 8)).astype(np.float32)
        labelled[f"{key}/source"] = np.str_(f"/gtzan/{genre}/{key}.wav")
    np.savez(tmp_path / "labelled.npz", **labelled)
    musicnn = {"patch_seconds": np.float32(3.0)}
    zero_shot = {"patch_seconds": np.float32(4.0), "genres": np.array(genres)}
    uniform = np.full((5, 10), 0.1, np.float32)
    for key, centre in (("game-rocky", 4.0), ("game-bluesy", -4.0)):
        musicnn[f"{key}/start_seconds"] = np.arange(6, dtype=np.float32)
        musicnn[f"{key}/penultimate"] = rng.normal(centre, 1.0, (6, 8)).astype(np.float32)
        zero_shot[f"{key}/start_seconds"] = np.arange(5, dtype=np.float32)
        zero_shot[f"{key}/genre_probabilities"] = uniform
    np.savez(tmp_path / "musicnn.npz", **musicnn)
    np.savez(tmp_path / "efficientat.npz", **zero_shot)
    output = tmp_path / "ensemble.npz"
    command = [sys.executable, str(REPOSITORY / "scripts" / "ensemble_targets.py"), "--output", str(output)]
    command += ["--labelled-musicnn", str(tmp_path / "labelled.npz"), "--musicnn", str(tmp_path / "musicnn.npz")]
    completed = subprocess.run(
        [*command, "--efficientat", str(tmp_path / "efficientat.npz"), "--strength", "1", "--prior-weight", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    targets = TeacherTargets.load(output, "genre_probabilities")
    assert targets.is_distribution and list(targets.tags) == genres and targets.patch_seconds == 4.0
    rocky, bluesy = targets.values["game-rocky"], targets.values["game-bluesy"]
    assert rocky.shape == (5, 10) and np.allclose(rocky.sum(axis=1), 1.0, atol=1e-5)
    assert (rocky.argmax(axis=1) == genres.index("rock")).all()
    assert (bluesy.argmax(axis=1) == genres.index("blues")).all()
    assert completed.stdout.splitlines()[-1].startswith("blues 1, classical 0")

    zero_shot["game-rocky/genre_probabilities"] = np.tile(np.eye(10, dtype=np.float32)[0] * 0.9 + 0.01, (5, 1))
    np.savez(tmp_path / "efficientat.npz", **zero_shot)
    subprocess.run(
        [*command, "--efficientat", str(tmp_path / "efficientat.npz"), "--strength", "1", "--prior-weight", "2"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # a sure zero-shot prior (blues) outweighs the probe (rock) at weight 2
    prior_led = TeacherTargets.load(output, "genre_probabilities").values["game-rocky"]
    assert (prior_led.argmax(axis=1) == genres.index("blues")).all()
