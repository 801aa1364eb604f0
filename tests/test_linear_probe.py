"""The linear probe (`train.py --init-from MODEL --classifier-only`): the logistic regression agrees with sklearn's,
the standardisation is folded into the seed architecture's classifier, and the encoder is left untouched."""

import json

import numpy as np
import pytest
import torch
from conftest import train_in_process
from safetensors.torch import load_file

from genre_vit import GTZAN_GENRES, GenreClassifier
from genre_vit.testing import synthetic_track, write_synthetic_genre_dataset
from genre_vit.training.anchors import MUSICNN_MSD_GENRE_TAGS
from genre_vit.training.linear_probe import (
    TeacherLabelledWindows,
    cross_validation_accuracy,
    fit_linear_probe,
    fit_logistic_regression,
    fit_standardised_probes,
    teacher_probe_probabilities,
)


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


def test_one_hot_soft_targets_fit_as_the_labels_do():
    features, labels = blobs(5)
    features = (features - features.mean(0)) / features.std(0)
    hard = fit_logistic_regression(features, labels, 4, 1.0)
    soft = fit_logistic_regression(features, np.eye(4)[labels], 4, 1.0)
    for ours, reference in zip(soft, hard):
        np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_a_warm_start_reaches_the_same_minimum():
    """Started from the solution at a stronger regularisation, the fit lands where the fit from zero does, and
    fitting a path of strengths gives each strength the probe that fitting it alone gives."""
    features, labels = blobs(3, noise=3.0)
    standardised = (features - features.mean(0)) / features.std(0)
    strong = fit_logistic_regression(standardised, labels, 4, 0.01)
    from_zero = fit_logistic_regression(standardised, labels, 4, 10.0)
    warm = fit_logistic_regression(standardised, labels, 4, 10.0, initial=strong)
    assert not np.allclose(strong[0], from_zero[0], atol=1e-2)  # the start is not already the answer
    for ours, reference in zip(warm, from_zero):
        np.testing.assert_allclose(ours, reference, atol=2e-3)

    path = fit_standardised_probes(features, labels, 4, (10.0, 0.01, 1.0))
    assert list(path) == [0.01, 1.0, 10.0]
    for strength, (weight, bias) in path.items():
        alone_weight, alone_bias = fit_standardised_probes(features, labels, 4, [strength])[strength]
        np.testing.assert_allclose(features @ weight.T + bias, features @ alone_weight.T + alone_bias, atol=1e-2)


# plain L-BFGS is stopped after 20 iterations on purpose, which sklearn warns of
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_preconditioning_reaches_the_same_minimum_in_fewer_iterations():
    """Correlated features (as pooled embeddings are) and overlapping genres (as real ones do): the preconditioned
    fit ends at sklearn's minimum of the same objective (plain L-BFGS), and within a small iteration budget it
    comes much nearer to it than plain L-BFGS does."""
    from sklearn.linear_model import LogisticRegression

    from genre_vit.training.linear_probe import logistic_regression_objective

    rng = np.random.default_rng(3)
    latent = rng.normal(size=(2000, 8))
    features = latent @ rng.normal(size=(8, 64)) + 0.05 * rng.normal(size=(2000, 64))
    features = (features - features.mean(0)) / features.std(0)
    labels = (latent[:, :4] @ rng.normal(size=(4, 5)) + rng.gumbel(size=(2000, 5))).argmax(axis=1)

    def objective(fit):
        return logistic_regression_objective(features, labels, 10.0, *fit)

    def plain(iterations):  # sklearn's objective is n times ours: the same minimum
        model = LogisticRegression(C=10.0, max_iter=iterations, tol=1e-10).fit(features, labels)
        return model.coef_, model.intercept_

    preconditioned = fit_logistic_regression(features, labels, 5, 10.0, max_iterations=5000)
    assert objective(preconditioned) == pytest.approx(objective(plain(5000)), abs=1e-6)
    probabilities = [torch.softmax(torch.from_numpy(features @ w.T + b), 1) for w, b in (preconditioned, plain(5000))]
    np.testing.assert_allclose(*probabilities, atol=1e-3)
    excess_preconditioned = objective(fit_logistic_regression(features, labels, 5, 10.0, 20)) - objective(
        preconditioned
    )
    assert excess_preconditioned < (objective(plain(20)) - objective(preconditioned)) / 10


def logits(probe, embeddings: np.ndarray) -> np.ndarray:
    return embeddings @ probe.weight.T + probe.bias


def test_teacher_labelled_windows_teach_what_the_labels_lack():
    """Labelled windows of genres 0-2 only; windows of the fourth cluster come without labels but with a teacher's
    probabilities that put them in genre 3: the probe then names that cluster, which it cannot learn otherwise."""
    features, labels, tracks = track_blobs(6)
    labelled = labels < 3
    unseen, unseen_labels = blobs(6, per_class=10)
    cluster = features[labels == 3]
    teacher = TeacherLabelledWindows(cluster, np.tile([0.05, 0.05, 0.1, 0.8], (len(cluster), 1)), weight=0.5)
    plain = fit_linear_probe(features[labelled], labels[labelled], tracks[labelled], 4, strengths=(1.0,))
    taught = fit_linear_probe(
        features[labelled], labels[labelled], tracks[labelled], 4, strengths=(1.0,), teacher_labelled=teacher
    )
    fourth = unseen[unseen_labels == 3]
    assert (logits(plain, fourth).argmax(1) == 3).mean() == 0.0
    assert (logits(taught, fourth).argmax(1) == 3).mean() >= 0.9
    # the labelled genres stay learnt
    known = unseen_labels < 3
    assert (logits(taught, unseen[known]).argmax(1) == unseen_labels[known]).mean() >= 0.9
    with pytest.raises(ValueError, match="must be positive"):
        TeacherLabelledWindows(cluster, teacher.targets, weight=0.0)
    with pytest.raises(ValueError, match="one target row per embedding"):
        TeacherLabelledWindows(cluster, teacher.targets[:-1], weight=1.0)


def test_the_teacher_probe_gives_no_probability_to_genres_without_labelled_tracks():
    features, labels = blobs(7, per_class=12)
    keep = labels != 2
    probabilities = teacher_probe_probabilities(features[keep], labels[keep], features, 4)
    assert probabilities.shape == (len(features), 4)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-6)
    assert (probabilities[:, 2] == 0).all()
    assert (probabilities[keep].argmax(1) == labels[keep]).mean() >= 0.9


MSD_GENRE_TAGS = sorted({tag for tags in MUSICNN_MSD_GENRE_TAGS.values() for tag in tags}) + ["instrumental"]


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
    assert (logits(probe, unseen).argmax(1) == unseen_labels).mean() >= 0.9
    # the final fit uses every window given, with the chosen strength
    mean, std = features.mean(0), features.std(0) + 1e-6
    weight, bias = fit_logistic_regression((features - mean) / std, labels, 4, probe.strength)
    np.testing.assert_allclose(logits(probe, unseen), ((unseen - mean) / std) @ weight.T + bias, atol=1e-3)


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


def test_windows_are_named_by_their_files_and_their_selection(tmp_path):
    """The embeddings cache's name for a set of windows: the same for the same windows read again, another for
    another selection of them or for other files, and none for windows only in memory."""
    from datasets import Dataset

    from genre_vit.training.linear_probe import windows_key

    windows = Dataset.from_dict({"input_values": [[0.0], [1.0], [2.0]]})
    assert windows_key(windows) is None
    windows.save_to_disk(tmp_path / "a")
    windows.save_to_disk(tmp_path / "b")
    stored, again = Dataset.load_from_disk(tmp_path / "a"), Dataset.load_from_disk(tmp_path / "a")
    assert windows_key(stored) == windows_key(again) is not None
    assert windows_key(stored.select([0, 2])) == windows_key(again.select([0, 2])) != windows_key(stored)
    assert windows_key(Dataset.load_from_disk(tmp_path / "b")) != windows_key(stored)


@pytest.mark.slow
def test_classifier_only_training_keeps_the_encoder_and_learns_the_genres(tmp_path):
    data = write_synthetic_genre_dataset(tmp_path / "data", tracks_per_genre=4, seconds=8.0)
    common = ["--data", data, "--config", "tiny", "--batch-size", "16", "--num-proc", "1"]
    common += ["--split-fractions", "0.75", "0.25", "0.0", "--cache-dir", tmp_path / "cache"]
    encoder = tmp_path / "encoder"
    train_in_process(*common, "--output-dir", encoder, "--epochs", "3", "--lr", "1e-3")

    probed = tmp_path / "probed"
    train_in_process(
        *common, "--output-dir", probed, "--init-from", encoder, "--classifier-only", "--probe-strengths", "0.1", "1"
    )
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


def write_genre_teacher_targets(
    path, genre_of_track: dict[str, int], seconds: float = 8.0, tag_of_track: dict[str, str] | None = None
):
    """A targets file whose `max_pool` says each track's genre (a one-hot of 10, plus a little noise), and whose
    `genre_probabilities` (an ensemble's) give it 0.91; with `tag_of_track`, also musicnn-like `tag_probabilities`
    (0.9 for the track's tag, 0.05 for the others)."""
    rng = np.random.default_rng(0)
    arrays = {"patch_seconds": np.float32(3.0), "genres": np.array(GTZAN_GENRES)}
    if tag_of_track is not None:
        arrays["tags"] = np.array(MSD_GENRE_TAGS)
    starts = np.arange(0, seconds - 3.0 + 1e-9, 1.0, dtype=np.float32)
    for track, genre in genre_of_track.items():
        values = np.eye(10)[np.full(len(starts), genre)] + rng.normal(0, 0.05, (len(starts), 10))
        arrays |= {f"{track}/start_seconds": starts, f"{track}/max_pool": values.astype(np.float32)}
        arrays[f"{track}/genre_probabilities"] = (np.eye(10)[np.full(len(starts), genre)] * 0.9 + 0.01).astype("f4")
        if tag_of_track is not None:
            tags = np.full((len(starts), len(MSD_GENRE_TAGS)), 0.05, np.float32)
            tags[:, MSD_GENRE_TAGS.index(tag_of_track.get(track, "instrumental"))] = 0.9
            arrays[f"{track}/tag_probabilities"] = tags
    np.savez(path, **arrays)
    return path


@pytest.mark.slow
def test_the_probe_learns_the_teachers_answers_on_unlabelled_music(tmp_path, tiny_model_dir):
    """`--probe-unlabelled-data` with `--teacher-targets`: synthetic disco (genre 3) without labels, which the
    teacher calls jazz (genre 5), pulls the probe's answers on that music towards jazz."""
    import soundfile

    data = write_synthetic_genre_dataset(tmp_path / "data", tracks_per_genre=3, seconds=8.0)
    unlabelled = tmp_path / "unlabelled" / "music"
    unlabelled.mkdir(parents=True)
    for index in range(4):
        soundfile.write(unlabelled / f"song{index}.wav", synthetic_track(3, 8.0, seed=900 + index), 22050)
    genre_of_track = {f"{genre}.{track:05d}": g for g, genre in enumerate(GTZAN_GENRES) for track in range(3)}
    genre_of_track |= {f"song{index}": 5 for index in range(4)}
    # musicnn's tags call the songs rock, which the teacher probe does not
    tag_of_track = {f"song{index}": "rock" for index in range(4)}
    targets = write_genre_teacher_targets(tmp_path / "teacher.npz", genre_of_track, tag_of_track=tag_of_track)
    common = ["--data", data, "--init-from", tiny_model_dir, "--classifier-only", "--probe-strengths", "1"]
    common += ["--num-proc", "1", "--split-fractions", "0.7", "0.3", "0.0", "--cache-dir", tmp_path / "cache"]
    plain, taught = tmp_path / "plain", tmp_path / "taught"
    train_in_process(*common, "--output-dir", plain)
    teacher = ["--teacher-targets", targets, "--probe-unlabelled-data", tmp_path / "unlabelled"]
    train_in_process(*common, *teacher, "--probe-unlabelled-weight", "2", "--output-dir", taught)

    run = json.loads((taught / "training_run.json").read_text())
    record = run["linear_probe"]["teacher_labelled"]
    # four 8-s songs: windows at 0, 2 and 4 s (the probe's shifted windows are for labelled tracks only)
    assert record["tracks"] == 4 and record["windows"] == 12 and record["weight"] == 2.0
    assert record["teacher_answers"]["jazz"] == 4
    assert run["teacher"][0]["output"] == "max_pool"
    card = (taught / "README.md").read_text()
    assert "soft targets of their 12 windows" in card and "together 2 times as heavy" in card
    assert "auxiliary" not in card and "Distilled" not in card  # nothing was distilled in this run
    songs = [(synthetic_track(3, 8.0, seed=900 + index), 22050) for index in range(4)]

    def jazz(folder):
        classifier = GenreClassifier.from_pretrained(folder, device="cpu", dtype="float32")
        return np.mean([classifier.analyze(song).mean_probabilities[5] for song in songs])

    assert jazz(taught) > jazz(plain) + 0.2
    # the ensemble's file answers in genres itself: its songs' probabilities teach the probe, with no teacher probe
    ensemble = ["--teacher-targets", targets, "--teacher-output", "genre_probabilities"]
    train_in_process(*common, *ensemble, *teacher[2:], "--output-dir", tmp_path / "ensemble")
    run = json.loads((tmp_path / "ensemble" / "training_run.json").read_text())
    assert run["linear_probe"]["teacher_labelled"]["teacher_answers"]["jazz"] == 4
    assert jazz(tmp_path / "ensemble") > jazz(plain) + 0.2
    # every set of windows is embedded once per encoder: the second fit found the training and validation windows'
    # embeddings in the cache, and added the unlabelled music's
    assert len(list((tmp_path / "cache").glob("embeddings-*.npy"))) == 3


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--classifier-only", "--init-from", "x", "--teacher-targets", "t.npz"], "go together"),
        (["--probe-unlabelled-data", "u"], "--probe-unlabelled-data feeds the linear probe"),
        (
            ["--classifier-only", "--init-from", "x", "--probe-unlabelled-data", "u", "--probe-unlabelled-weight", "0"],
            "--probe-unlabelled-weight must be positive",
        ),
        (["--classifier-only"], "--classifier-only needs --init-from"),
        (["--classifier-only", "--init-from", "x", "--probe-strengths", "0"], "--probe-strengths must be positive"),
    ],
)
def test_classifier_only_option_errors(tmp_path, capsys, arguments, message):
    from genre_vit.training.trainer import TrainingOptions

    with pytest.raises(SystemExit) as exit_info:
        TrainingOptions.from_command_line(["--data", str(tmp_path), "--output-dir", str(tmp_path / "out"), *arguments])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
