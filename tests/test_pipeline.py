"""`pipeline("audio-classification")` answers for the whole song and agrees with `analyze_full_song`."""

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import SAMPLING_RATE
from transformers import pipeline

from genre_vit import GenreClassifier
from genre_vit.testing import synth_music

# Same audio array in, same windows and same model: only float summation order differs.
PARITY_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def classify(tiny_model_dir):
    return pipeline("audio-classification", model=str(tiny_model_dir), device="cpu")


@pytest.fixture(scope="module")
def classifier(tiny_model, feature_extractor):
    return GenreClassifier(tiny_model, feature_extractor, device="cpu", dtype="float32")


def as_scores(predictions):
    return {item["label"]: item["score"] for item in predictions}


@pytest.mark.parametrize("seconds", [30.0, 180.0])
def test_whole_song_parity_with_analysis(classify, classifier, seconds):
    song = synth_music(seconds, seed=int(seconds))
    predictions = classify({"raw": song, "sampling_rate": SAMPLING_RATE}, top_k=None)
    analysis = classifier.analyze((song, SAMPLING_RATE))
    assert [item["label"] for item in predictions] == [genre for genre, _ in analysis.ranked()]
    scores = as_scores(predictions)
    for genre, probability in analysis.ranked():
        assert scores[genre] == pytest.approx(probability, abs=PARITY_TOLERANCE)
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)


def test_silence_counts_the_same_in_the_pipeline_the_analysis_and_evaluation(
    classify, classifier, feature_extractor, tmp_path
):
    """20 s of digital silence, then music: every path leaves the silent windows out of the song's score."""
    import soundfile

    from genre_vit.training.data import load_tracks_from_folder, make_windows
    from genre_vit.training.metrics import track_probabilities

    song = np.concatenate([np.zeros(20 * SAMPLING_RATE, np.float32), synth_music(20.0, seed=5)])
    analysis = classifier.analyze((song, SAMPLING_RATE))
    assert 0 < analysis.num_windows_without_music < analysis.num_windows
    scores = as_scores(classify({"raw": song, "sampling_rate": SAMPLING_RATE}, top_k=None))
    for index, genre in enumerate(analysis.genres):
        assert scores[genre] == pytest.approx(analysis.mean_probabilities[index], abs=PARITY_TOLERANCE)

    (tmp_path / "blues").mkdir()
    soundfile.write(tmp_path / "blues" / "gap.wav", song, SAMPLING_RATE, subtype="FLOAT")
    windows = make_windows(load_tracks_from_folder(tmp_path), feature_extractor)
    np.testing.assert_array_equal(windows["has_music"], analysis.window_has_music)
    probabilities = classifier.window_probabilities(windows.with_format("numpy")["input_values"])
    track, _, _ = track_probabilities(
        probabilities, np.zeros(len(windows), int), ["gap"] * len(windows), windows["has_music"]
    )
    np.testing.assert_allclose(track[0], analysis.mean_probabilities, atol=PARITY_TOLERANCE)


def test_answer_is_not_the_first_window(classify, classifier):
    """A song whose halves differ: the pipeline's answer is the mean of all windows, not window 0."""
    song = np.concatenate(
        [synth_music(16.0, seed=1), 0.3 * np.random.default_rng(0).standard_normal(16 * SAMPLING_RATE)]
    )
    song = song.astype(np.float32)
    analysis = classifier.analyze((song, SAMPLING_RATE))
    scores = as_scores(classify(song, top_k=None))
    first = analysis.window_probabilities[0]
    mean = analysis.mean_probabilities
    assert np.abs(first - mean).max() > 10 * PARITY_TOLERANCE  # the windows do differ, beyond the tolerance
    for index, genre in enumerate(analysis.genres):
        assert scores[genre] == pytest.approx(mean[index], abs=PARITY_TOLERANCE)


def test_top_k_and_input_forms(classify, write_wav):
    song = synth_music(9.0, seed=3)
    from_array = classify(song, top_k=3)
    assert len(from_array) == 3
    assert classify({"array": song, "sampling_rate": SAMPLING_RATE}, top_k=3) == from_array
    if shutil.which("ffmpeg"):
        path = write_wav(song, "song.wav")
        # ffmpeg decodes the file in the stock pipeline; a 16-bit WAV at 22,050 Hz needs no resampling.
        for decoded in (classify(str(path), top_k=3), classify(path.read_bytes(), top_k=3)):
            assert [item["label"] for item in decoded] == [item["label"] for item in from_array]
            for ours, theirs in zip(decoded, from_array):
                assert ours["score"] == pytest.approx(theirs["score"], abs=1e-3)


def test_batch_of_songs_of_different_lengths(classify, classifier):
    songs = [synth_music(seconds, seed=index) for index, seconds in enumerate((2.0, 9.0, 31.0))]
    batched = classify(songs, top_k=None, batch_size=3)
    assert len(batched) == 3
    for song, predictions in zip(songs, batched):
        analysis = classifier.analyze((song, SAMPLING_RATE), min_seconds=0.0)
        for index, genre in enumerate(analysis.genres):
            assert as_scores(predictions)[genre] == pytest.approx(
                analysis.mean_probabilities[index], abs=PARITY_TOLERANCE
            )


REMOTE_PIPELINE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.modules["genre_vit"] = None  # the package must not be importable here
    import numpy as np
    from transformers import pipeline
    classify = pipeline("audio-classification", model=sys.argv[1], trust_remote_code=True, device="cpu")
    assert type(classify.model).__module__.startswith("transformers_modules")
    print(json.dumps(classify({"raw": np.load(sys.argv[2]), "sampling_rate": 22050}, top_k=None)))
    """
)


def test_trust_remote_code_pipeline_without_the_package(tiny_model_dir, classifier, tmp_path):
    song = synth_music(12.0, seed=5)
    np.save(tmp_path / "song.npy", song)
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environment.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    completed = subprocess.run(
        [sys.executable, "-c", REMOTE_PIPELINE_SCRIPT, str(tiny_model_dir), str(tmp_path / "song.npy")],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    import json

    scores = as_scores(json.loads(completed.stdout.strip().splitlines()[-1]))
    analysis = classifier.analyze((song, SAMPLING_RATE))
    for index, genre in enumerate(analysis.genres):
        assert scores[genre] == pytest.approx(analysis.mean_probabilities[index], abs=PARITY_TOLERANCE)
