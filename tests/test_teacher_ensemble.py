"""Teachers as genre classifiers: the product of experts and the Emotify halves."""

import numpy as np

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
