"""The linear probe (`train.py --init-from MODEL --classifier-only`): the logistic regression agrees with sklearn's,
the standardisation is folded into the seed architecture's classifier, and the encoder is left untouched."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_distillation import run_train

from genre_vit import GenreClassifier
from genre_vit.testing import synthetic_track, write_synthetic_genre_dataset
from genre_vit.training.linear_probe import cross_validation_accuracy, fit_linear_probe, fit_logistic_regression


def blobs(seed: int, per_class: int = 40, classes: int = 4, dimension: int = 8, noise: float = 1.5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (classes, dimension))
    labels = np.repeat(np.arange(classes), per_class)
    scale = rng.uniform(0.5, 20, dimension)  # features of very different units, as embeddings can be
    return (centres[labels] + rng.normal(0, noise, (len(labels), dimension))) * scale + 7, labels


def test_logistic_regression_matches_sklearn():
    from sklearn.linear_model import LogisticRegression

    features, labels = blobs(0)
    features = (features - features.mean(0)) / features.std(0)
    for strength in (0.05, 1.0):
        weight, bias = fit_logistic_regression(features, labels, 4, strength)
        reference = LogisticRegression(C=strength, max_iter=10_000, tol=1e-10).fit(features, labels)
        ours = torch.softmax(torch.from_numpy(features @ weight.T + bias), 1).numpy()
        np.testing.assert_allclose(ours, reference.predict_proba(features), atol=2e-3)


def track_blobs(seed: int, tracks_per_class: int = 6, windows_per_track: int = 8, **kwargs):
    """Blobs whose windows come in tracks: `(features, labels, track ids)`."""
    features, labels = blobs(seed, per_class=tracks_per_class * windows_per_track, **kwargs)
    return features, labels, np.arange(len(labels)) // windows_per_track


def test_probe_folds_the_standardisation_into_the_weights_and_chooses_by_grouped_cross_validation():
    features, labels, tracks = track_blobs(1)
    unseen, unseen_labels = blobs(1, per_class=10)
    probe = fit_linear_probe(features, labels, tracks, 4, strengths=(1e-4, 1.0))
    assert set(probe.cross_validation_accuracy_by_strength) == {1e-4, 1.0} and probe.folds == 5
    scores = probe.cross_validation_accuracy_by_strength
    assert probe.strength == max(scores, key=scores.get)
    # the probe works on raw embeddings: no standardisation layer is needed at inference
    assert (probe.predict(unseen).argmax(1) == unseen_labels).mean() >= 0.9
    # the final fit uses every window given, with the chosen strength
    mean, std = features.mean(0), features.std(0) + 1e-6
    weight, bias = fit_logistic_regression((features - mean) / std, labels, 4, probe.strength)
    np.testing.assert_allclose(probe.predict(unseen), ((unseen - mean) / std) @ weight.T + bias, atol=1e-3)


def test_cross_validation_keeps_tracks_together():
    """A probe that memorised tracks would score perfectly if a track's windows were split across folds: every
    track here has its own random label-free offset that identifies it, and labels are random per track."""
    rng = np.random.default_rng(3)
    tracks = np.repeat(np.arange(40), 10)
    labels = np.repeat(rng.permutation(np.arange(40) % 4), 10)
    features = rng.normal(0, 5, (40, 16))[tracks] + rng.normal(0, 0.1, (400, 16))
    accuracy, folds = cross_validation_accuracy(features, labels, tracks, 4, strengths=(100.0,))
    assert folds == 5
    assert accuracy[100.0] < 0.5  # near chance (0.25), never the ~1.0 of leaked tracks


def test_fewer_folds_for_few_tracks_and_a_clear_error_for_one():
    features, labels, tracks = track_blobs(4, tracks_per_class=3)
    assert fit_linear_probe(features, labels, tracks, 4, strengths=(1.0,)).folds == 3
    # a genre of one track (as an artist-disjoint partition can leave) is held out once; the rest choose the folds
    single = tracks != tracks[labels == 3][0]
    keep = (labels != 3) | ~single
    probe = fit_linear_probe(features[keep], labels[keep], tracks[keep], 4, strengths=(1.0,))
    assert probe.folds == 3 and probe.weight.shape[0] == 4
    features, labels, tracks = track_blobs(4, tracks_per_class=1)
    with pytest.raises(ValueError, match="at least 2 tracks of some genre"):
        fit_linear_probe(features, labels, tracks, 4, strengths=(1.0,))


def test_a_tie_keeps_the_stronger_regularisation():
    features, labels, tracks = track_blobs(2, noise=0.1)
    probe = fit_linear_probe(features, labels, tracks, 4, strengths=(3.0, 1.0))
    assert probe.cross_validation_accuracy_by_strength[1.0] == probe.cross_validation_accuracy_by_strength[3.0] == 1.0
    assert probe.strength == 1.0


@pytest.mark.slow
def test_classifier_only_training_keeps_the_encoder_and_learns_the_genres(tmp_path):
    data = write_synthetic_genre_dataset(tmp_path / "data", tracks_per_genre=4, seconds=8.0)
    common = ["--data", data, "--config", "tiny", "--batch-size", "16", "--num-proc", "1"]
    common += ["--split-fractions", "0.75", "0.25", "0.0", "--cache-dir", tmp_path / "cache"]
    encoder = tmp_path / "encoder"
    completed = run_train(*common, "--output-dir", encoder, "--epochs", "3", "--lr", "1e-3")
    assert completed.returncode == 0, completed.stderr[-3000:]

    probed = tmp_path / "probed"
    completed = run_train(
        *common, "--output-dir", probed, "--init-from", encoder, "--classifier-only", "--probe-strengths", "0.1", "1"
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    before, after = load_file(encoder / "model.safetensors"), load_file(probed / "model.safetensors")
    # the probe also gives the model its genre distance (buffers fitted on the same windows)
    assert after.keys() - before.keys() == {"genre_distance.whitening", "genre_distance.whitened_means"}
    assert json.loads((probed / "config.json").read_text())["genre_distance"] is True
    for name in before:
        if name.startswith("classifier."):
            assert not torch.equal(before[name], after[name])
        else:
            torch.testing.assert_close(after[name], before[name], rtol=0, atol=0)
    run = json.loads((probed / "training_run.json").read_text())
    assert run["linear_probe"]["strength"] in (0.1, 1.0) and run["epochs_run"] == 0
    assert set(run["linear_probe"]["cross_validation_accuracy_by_strength"]) == {"0.1", "1"}
    assert run["linear_probe"]["fitted_on"]["tracks"] == 40  # training and validation tracks: 4 of each genre
    # 8-s tracks: windows at 0, 2, 4 s on the grid and 1, 3 s shifted by the default offset of 1 s
    assert run["linear_probe"]["fitted_on"]["windows"] == 40 * 5
    assert run["linear_probe"]["window_offsets_seconds"] == [1.0]
    assert run["linear_probe"]["spectral_tilts_db_per_octave"] == []
    card = (probed / "README.md").read_text()
    assert "linear probe" in card and f"Initialised from `{encoder.name}`" in card  # no machine paths
    assert "no window of a test track was trained on" in card and "cross-validation over the training" in card
    classifier = GenreClassifier.from_pretrained(probed, device="cpu", dtype="float32")
    correct = sum(
        classifier.analyze((synthetic_track(genre, 8.0, seed=500 + genre), 22050)).top_genre
        == classifier.model.config.id2label[genre]
        for genre in range(10)
    )
    assert correct >= 6  # chance is 1 in 10


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--classifier-only"], "--classifier-only needs --init-from"),
        (["--classifier-only", "--init-from", "x", "--probe-strengths", "0"], "--probe-strengths must be positive"),
    ],
)
def test_classifier_only_option_errors(tmp_path, arguments, message):
    completed = run_train("--data", tmp_path, "--output-dir", tmp_path / "out", *arguments)
    assert completed.returncode == 2 and message in completed.stderr
