"""Honest confidence: the genre distance, the temperature, the "none of these genres" answer and the calibration."""

import json
import runpy
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPOSITORY, make_analysis

from genre_vit import GenreClassifier, GenreViTConfig, GenreViTForAudioClassification
from genre_vit.network import GenreViTGenreDistance, GenreViTNetwork
from genre_vit.results import ANSWER_GENRE, ANSWER_NONE_OF_THESE, ANSWER_UNCERTAIN, GenreAnalysis
from genre_vit.testing import write_synthetic_genre_dataset
from genre_vit.training.calibration import (
    DEFAULT_KEEP_QUANTILE,
    calibrate_model,
    fit_temperature,
    tempered_track_probabilities,
)
from genre_vit.training.linear_probe import FAR_AWAY, fit_genre_distance
from genre_vit.training.options import ProbeArguments


def clustered_embeddings(rng, genres=10, per_genre=200, width=64, spread=0.3):
    centres = rng.normal(size=(genres, width))
    mixing = rng.normal(size=(width, width)) * spread / np.sqrt(width)  # a correlated, not spherical, spread
    labels = np.repeat(np.arange(genres), per_genre)
    return centres[labels] + rng.normal(size=(len(labels), width)) @ mixing.T, labels, centres, mixing


def genre_distance_module(whitening, whitened_means) -> GenreViTGenreDistance:
    module = GenreViTGenreDistance(GenreViTConfig.tiny())
    module.whitening.copy_(torch.from_numpy(whitening))
    module.whitened_means.copy_(torch.from_numpy(whitened_means))
    return module


def test_genre_distance_is_about_one_for_new_windows_of_a_genre_and_large_far_from_all():
    rng = np.random.default_rng(0)
    embeddings, labels, centres, mixing = clustered_embeddings(rng)
    module = genre_distance_module(*fit_genre_distance(embeddings, labels, 10))
    new_labels = np.repeat(np.arange(10), 20)
    new = centres[new_labels] + rng.normal(size=(200, 64)) @ mixing.T
    typical = module(torch.from_numpy(new).float()).numpy()
    assert 0.8 < typical.mean() < 1.3
    # as far from every centre as the centres are apart: unlike any genre learnt
    far = module(torch.from_numpy(rng.normal(size=(50, 64)) * 1.5).float()).numpy()
    assert far.min() > 3 * typical.max()


def test_a_genre_without_training_windows_is_never_the_nearest():
    rng = np.random.default_rng(1)
    embeddings, labels, centres, _ = clustered_embeddings(rng)
    keep = labels != 3
    whitening, whitened_means = fit_genre_distance(embeddings[keep], labels[keep], 10)
    assert np.all(whitened_means[3] == FAR_AWAY)
    at_missing_centre = genre_distance_module(whitening, whitened_means)(torch.from_numpy(centres[3:4]).float())
    assert at_missing_centre.item() > 2  # measured from the nearest learnt genre, not from genre 3


def test_the_temperature_undoes_overconfidence():
    rng = np.random.default_rng(2)
    true_logits = rng.normal(size=(400, 10)) * 1.5
    true_probabilities = np.exp(true_logits) / np.exp(true_logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(10, p=p) for p in true_probabilities])
    overconfident = np.exp(3 * true_logits)
    overconfident /= overconfident.sum(axis=1, keepdims=True)
    tracks = [np.repeat(p[None], 5, axis=0) for p in overconfident]  # 5 identical windows per track
    temperature, losses = fit_temperature(tracks, labels)
    assert 2.3 < temperature < 4.0
    assert losses["negative_log_likelihood"] < losses["negative_log_likelihood_at_1"]


def test_tempered_answers_at_temperature_one_are_the_window_mean():
    windows = np.random.default_rng(3).dirichlet(np.ones(10), size=7)
    np.testing.assert_allclose(tempered_track_probabilities(windows, 1.0), windows.mean(axis=0), rtol=1e-6)
    flat = tempered_track_probabilities(windows, 1e6)
    np.testing.assert_allclose(flat, np.full(10, 0.1), atol=1e-4)


def with_distances(probabilities, distances, threshold, has_music=None) -> GenreAnalysis:
    base = make_analysis(probabilities)
    return GenreAnalysis(
        genres=base.genres,
        window_start_times=base.window_start_times,
        window_end_times=base.window_end_times,
        window_probabilities=base.window_probabilities,
        duration_seconds=base.duration_seconds,
        source=base.source,
        window_has_music=has_music,
        window_genre_distances=np.asarray(distances, dtype=np.float64),
        none_of_these_distance=threshold,
    )


def test_the_three_answers_in_words_json_and_csv():
    clear = np.tile(np.r_[0.9, np.full(9, 0.1 / 9)], (3, 1))  # blues, clearly
    close = np.tile(np.r_[0.4, 0.35, np.full(8, 0.25 / 8)], (3, 1))  # blues or classical

    confident = with_distances(clear, [1.0, 1.1, 0.9], threshold=1.5)
    assert confident.answer == ANSWER_GENRE and confident.is_confident and confident.verdict == "blues"
    assert confident.answer_reason() == ""

    uncertain = with_distances(close, [1.0, 1.1, 0.9], threshold=1.5)
    assert uncertain.answer == ANSWER_UNCERTAIN and uncertain.verdict == "uncertain: blues or classical"
    assert uncertain.answer_reason().startswith("Uncertain")

    unlike = with_distances(clear, [2.0, 1.9, 2.1], threshold=1.5)
    assert unlike.answer == ANSWER_NONE_OF_THESE and not unlike.is_confident
    assert unlike.verdict == "none of the ten genres fits (closest: blues)"
    assert unlike.summary().startswith("none of the ten genres fits (closest: blues), 90% — 3 windows")
    assert unlike.answer_reason().startswith("This music sounds unlike every genre the model knows")
    record = json.loads(unlike.to_json())
    assert record["answer"] == "none_of_these" and record["verdict"] == unlike.verdict
    assert record["genre_distance"] == pytest.approx(2.0) and record["none_of_these_distance"] == 1.5
    assert [w["genre_distance"] for w in record["windows"]] == [2.0, 1.9, 2.1]


def test_windows_without_music_do_not_count_in_the_distance():
    clear = np.tile(np.r_[0.9, np.full(9, 0.1 / 9)], (3, 1))
    analysis = with_distances(clear, [1.0, 9.0, 1.2], threshold=1.5, has_music=np.array([True, False, True]))
    assert analysis.genre_distance == pytest.approx(1.1) and analysis.answer == ANSWER_GENRE


def test_a_model_without_a_genre_distance_never_answers_none_of_these():
    analysis = make_analysis(np.tile(np.r_[0.9, np.full(9, 0.1 / 9)], (3, 1)))
    assert analysis.genre_distance is None and analysis.answer == ANSWER_GENRE
    record = json.loads(analysis.to_json())
    assert record["genre_distance"] is None and record["windows"][0]["genre_distance"] is None


def distance_model(threshold: float, temperature: float = 1.0) -> GenreViTForAudioClassification:
    torch.manual_seed(0)
    config = GenreViTConfig.tiny(genre_distance=True, none_of_these_distance=threshold, temperature=temperature)
    model = GenreViTForAudioClassification(config).eval()
    rng = np.random.default_rng(4)
    model.set_genre_distance(torch.eye(64), torch.from_numpy(rng.normal(size=(10, 64))).float())
    return model


def test_genre_distance_and_temperature_survive_saving_and_both_loaders(tmp_path, feature_extractor):
    model = distance_model(threshold=0.5, temperature=2.0)
    model.save_pretrained(tmp_path)
    feature_extractor.save_pretrained(tmp_path)
    windows = torch.randn(3, 1, 216, 144)
    with torch.no_grad():
        expected = model(windows)
        loaded = GenreViTForAudioClassification.from_pretrained(tmp_path).eval()(windows)
        plain = GenreViTNetwork.from_folder(tmp_path)
        plain_tokens = plain.forward_features(windows)
        plain_logits, plain_distances = plain.forward_head(plain_tokens), plain.window_genre_distances(plain_tokens)
        untempered = model.classifier(model.forward_head(model.forward_features(windows), pre_logits=True))
    torch.testing.assert_close(expected.logits, untempered / 2.0)
    for logits, distances in ((loaded.logits, loaded.genre_distance), (plain_logits, plain_distances)):
        torch.testing.assert_close(logits, expected.logits)
        torch.testing.assert_close(distances, expected.genre_distance)
    assert expected.genre_distance.shape == (3,)
    # whole-song input: the song's distance is the mean over its real windows
    songs = windows.unsqueeze(0).expand(2, 3, 1, 216, 144)
    mask = torch.tensor([[True, True, True], [True, False, True]])
    with torch.no_grad():
        song = model(songs, window_mask=mask)
    torch.testing.assert_close(song.genre_distance[0], expected.genre_distance.mean())
    torch.testing.assert_close(song.genre_distance[1], expected.genre_distance[[0, 2]].mean())


def test_the_library_answers_none_of_these_beyond_the_threshold(tmp_path, feature_extractor, song_30s):
    for threshold, answer in ((1e-3, ANSWER_NONE_OF_THESE), (1e3, None)):
        folder = tmp_path / f"threshold-{threshold:g}"
        distance_model(threshold).save_pretrained(folder)
        feature_extractor.save_pretrained(folder)
        result = GenreClassifier.from_pretrained(folder, device="cpu", dtype="float32").analyze((song_30s, 22050))
        assert result.none_of_these_distance == pytest.approx(threshold)
        assert result.window_genre_distances.shape == (result.num_windows,)
        if answer:
            assert result.answer == answer and result.verdict.startswith("none of the ten genres fits")
        else:
            assert result.answer != ANSWER_NONE_OF_THESE


def test_a_threshold_needs_a_genre_distance():
    # huggingface_hub's strict-dataclass validation wraps the config's ValueError in its own error type
    with pytest.raises(Exception, match="genre_distance"):
        GenreViTConfig.tiny(none_of_these_distance=1.0)
    with pytest.raises(Exception, match="temperature"):
        GenreViTConfig.tiny(temperature=0.0)


@pytest.mark.slow
def test_calibration_chooses_on_the_emotify_validation_half_and_writes_a_calibrated_model(tmp_path, tiny_model_dir):
    """End to end on a synthetic GTZAN-shaped set and an Emotify-shaped folder of numbered excerpts, whose even
    numbers (the test half) are never read."""
    root = write_synthetic_genre_dataset(tmp_path / "data", tracks_per_genre=2, seconds=8.0) / "genres"
    emotify = tmp_path / "emotify"
    excerpts = {1: "classical.00000", 3: "pop.00000", 5: "rock.00001", 7: "disco.00000", 2: "classical.00001"}
    for number, source in excerpts.items():
        genre = "electronic" if number == 7 else source.split(".")[0]
        (emotify / genre).mkdir(parents=True, exist_ok=True)
        shutil.copy(root / source.split(".")[0] / f"{source}.wav", emotify / genre / f"{number}.wav")
    (emotify / "classical" / "2.wav").write_text("the test half is never read")  # would fail to decode

    (tiny_model_dir / "cross_validation.json").write_text("{}")  # the model's own probe recipe, cross-validated
    output = tmp_path / "calibrated"
    probe = ProbeArguments(probe_strengths=[0.1, 1.0], probe_window_offsets=[])
    record = calibrate_model(tiny_model_dir, root, emotify, output, tmp_path / "work", probe=probe)
    (tiny_model_dir / "cross_validation.json").unlink()
    assert not (output / "cross_validation.json").exists()  # another probe: a recipe that record did not measure
    assert record["probe"] == {"probe_strengths": [0.1, 1.0], "probe_window_offsets": []}
    assert record["teachers"] == {}
    assert record["validation_tracks"] == {"gtzan_genres": 3, "other_genres": 1}  # 1, 3 and 5; electronic 7
    assert 0.25 <= record["temperature"] <= 8.0 and 0.0 <= record["validation_track_accuracy"] <= 1.0
    config = json.loads((output / "config.json").read_text())
    assert config["genre_distance"] is True
    assert config["temperature"] == pytest.approx(record["temperature"])
    assert config["none_of_these_distance"] == pytest.approx(record["none_of_these_distance"])
    assert json.loads((output / "calibration.json").read_text()) == json.loads(json.dumps(record))
    run = json.loads((output / "training_run.json").read_text())
    assert run["linear_probe"]["fitted_on"]["tracks"] == 20  # the probe refitted on every GTZAN clip
    result = GenreClassifier.from_pretrained(output, device="cpu").analyze(root / "jazz" / "jazz.00000.wav")
    assert result.genre_distance is not None and result.answer in (ANSWER_GENRE, ANSWER_UNCERTAIN, "none_of_these")
    assert not output.with_name("calibrated.partial").exists()
    assert run["linear_probe"]["cross_validation_accuracy_by_strength"].keys() == {"0.1", "1"}


def test_calibrate_script_parses_the_probe_and_teacher_options_into_their_types(tmp_path, monkeypatch):
    """`scripts/calibrate.py` hands train.py's probe and teacher options to the library as typed groups; bad values
    and library errors end in one line."""
    script = runpy.run_path(str(REPOSITORY / "scripts" / "calibrate.py"))
    received = {}

    def calibrate_model(*arguments):
        received["arguments"] = arguments
        return {"temperature": 1.0}

    monkeypatch.setitem(script["main"].__globals__, "calibrate_model", calibrate_model)
    folders = ["--model", "m", "--gtzan", "g", "--emotify", "e", "--output", "o", "--work-dir", "w"]
    teacher = ["--teacher-targets", "t.npz", "--teacher-output", "genre_probabilities"]
    script["main"]([*folders, *teacher, "--probe-unlabelled-data", "u", "--probe-unlabelled-weight", "3"])
    model, *_, keep_quantile, probe, teachers, cache_dir = received["arguments"]
    assert model == Path("m") and keep_quantile == DEFAULT_KEEP_QUANTILE and cache_dir is None
    assert (probe.probe_unlabelled_data, probe.probe_unlabelled_weight) == ("u", 3.0)
    assert teachers.teachers() == [("t.npz", "genre_probabilities", 1.0)]
    with pytest.raises(SystemExit) as exited:
        script["main"]([*folders, "--probe-unlabelled-weight", "0"])
    assert exited.value.code == 2

    def failing(*arguments):
        raise ValueError("m is not a model folder")

    monkeypatch.setitem(script["main"].__globals__, "calibrate_model", failing)
    with pytest.raises(SystemExit, match="calibrate.py: error: m is not a model folder"):
        script["main"](folders)
