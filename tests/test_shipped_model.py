"""The checkpoint shipped in `checkpoints/genre-vit-gtzan`: loads offline, is the seed architecture, and beats
chance on the real GTZAN clips it was not trained on (skipped where the clips or the checkpoint are absent)."""

import json

import numpy as np
import pytest
from conftest import GTZAN_DIR, requires_gtzan

from genre_vit import GTZAN_GENRES, GenreClassifier
from genre_vit.analysis import BUNDLED_MODEL_DIR
from genre_vit.model_folder import REMOTE_CODE_FILES

pytestmark = pytest.mark.skipif(not (BUNDLED_MODEL_DIR / "config.json").exists(), reason="no checkpoint is bundled")


# The shipped model's classifier was fitted on all 99 real clips (the recipe's cross-validation measured it on unseen
# tracks, in cross_validation.json), so none of those clips is unseen by it. The check: on them it must do at least
# as well as the cross-validated window accuracy minus two standard deviations on unseen ones (chance is 0.10). A
# broken model, broken preprocessing or a classifier that does not match its encoder falls far below.
@pytest.fixture(scope="module")
def classifier():
    return GenreClassifier.from_pretrained(BUNDLED_MODEL_DIR, device="cpu")


def test_shipped_folder(classifier):
    from huggingface_hub import ModelCard

    assert sum(p.numel() for p in classifier.model.parameters()) == 25_417_738
    assert classifier.genres == GTZAN_GENRES
    shards = list(BUNDLED_MODEL_DIR.glob("*.safetensors"))
    assert shards and all(path.stat().st_size <= 15_000_000 for path in shards)
    # the card states the figures of the folder's own records, and its model-index carries them
    text = (BUNDLED_MODEL_DIR / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    summary = json.loads((BUNDLED_MODEL_DIR / "cross_validation.json").read_text())
    assert summary["folds"] == 5 and summary["pooled"]["track"]["count"] == 99
    protocols = json.loads((BUNDLED_MODEL_DIR / "evaluation_protocols.json").read_text())
    test, gtzan = protocols["emotify_test"], protocols["gtzan"]
    assert test["correct"] / test["tracks"] == pytest.approx(test["track_accuracy"])
    assert f"right on {test['correct']} of {test['tracks']}" in text.replace("\n", " ")
    assert gtzan["right"] == sum(round(f["track_accuracy"] * f["test_tracks"]) for f in summary["per_fold"])
    results = {result.dataset_type: result.metric_value for result in ModelCard(text).data.eval_results}
    assert results == {
        "emotify": round(test["track_accuracy"], 4),
        "gtzan": round(gtzan["right"] / gtzan["tracks"], 4),
    }


def test_shipped_answers_are_calibrated(classifier):
    """Its temperature and "none of these" threshold are those its calibration record states (chosen on the
    Emotify validation half), and audio unlike music is answered "none of these"."""
    record = json.loads((BUNDLED_MODEL_DIR / "calibration.json").read_text())
    config = classifier.model.config
    assert config.genre_distance and classifier.model.genre_distance is not None
    assert config.temperature == pytest.approx(record["temperature"])
    assert config.none_of_these_distance == pytest.approx(record["none_of_these_distance"])
    assert record["validation_tracks"] == {"gtzan_genres": 105, "other_genres": 50}
    seconds = np.arange(20 * 22050) / 22050
    sweep = (0.3 * np.sin(2 * np.pi * (100 * seconds + 100 * seconds**2))).astype(np.float32)
    result = classifier.analyze((sweep, 22050))
    assert result.answer == "none_of_these" and result.verdict.startswith("none of the ten genres fits")
    card = (BUNDLED_MODEL_DIR / "README.md").read_text()
    assert f"{record['temperature']:.2f}" in card and f"{record['none_of_these_distance']:.2f}" in card


@pytest.mark.slow
@requires_gtzan
def test_real_clips_are_classified_as_its_cross_validation_says(classifier):
    run = json.loads((BUNDLED_MODEL_DIR / "training_run.json").read_text())
    fitted = run["splits"]["train"] + run["splits"]["validation"]
    assert len(fitted) == 99 and not run["splits"]["test"]
    correct = total = 0
    for track in fitted:
        genre = track.split(".")[0]
        result = classifier.analyze(GTZAN_DIR / genre / f"{track}.flac")
        predictions = result.window_probabilities.argmax(axis=1)
        correct += int(np.sum(predictions == GTZAN_GENRES.index(genre)))
        total += result.num_windows
    window = json.loads((BUNDLED_MODEL_DIR / "cross_validation.json").read_text())["mean_std"]["window_accuracy"]
    assert correct / total >= window["mean"] - 2 * window["std"]


@pytest.mark.slow
@requires_gtzan
def test_the_fast_path_agrees_with_float32_on_real_clips(classifier):
    """The default compute dtype (bfloat16 on a CPU with native support) against float32 on two real clips per
    genre: the same top genre for every song and nearly every window, mean probabilities within 0.01
    (benchmarks/bench_fast_path.py measures all 94 clips)."""
    import torch

    if classifier.dtype == torch.float32:
        pytest.skip("this machine has no native bfloat16: the default path is the float32 path")
    reference = GenreClassifier.from_pretrained(BUNDLED_MODEL_DIR, device="cpu", dtype="float32")
    windows = same_windows = 0
    for genre in GTZAN_GENRES:
        for path in sorted((GTZAN_DIR / genre).glob("*.flac"))[:2]:
            fast, exact = classifier.analyze(path), reference.analyze(path)
            assert fast.top_genre == exact.top_genre, path.name
            assert np.abs(fast.mean_probabilities - exact.mean_probabilities).max() <= 0.01, path.name
            windows += fast.num_windows
            same_windows += int((fast.window_probabilities.argmax(1) == exact.window_probabilities.argmax(1)).sum())
    assert same_windows / windows >= 0.97


@pytest.mark.parametrize("name", REMOTE_CODE_FILES)
def test_shipped_remote_code_matches_the_package(name):
    """The folder's copies serve `trust_remote_code=True`; they must not drift from the package. After changing
    one of these modules, refresh them with `python -m genre_vit convert` (or copy the file) and re-run the tests."""
    package_file = BUNDLED_MODEL_DIR.parents[1] / "genre_vit" / name
    assert (BUNDLED_MODEL_DIR / name).read_text() == package_file.read_text()
