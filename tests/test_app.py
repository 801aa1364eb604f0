"""The demo's request handler with the tiny model (no server)."""

import json
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from conftest import SAMPLING_RATE
from matplotlib.figure import Figure

import app
from genre_vit import GenreClassifier
from genre_vit.testing import synth_music


@pytest.fixture(scope="module")
def classifier(tiny_model, feature_extractor):
    return GenreClassifier(tiny_model, feature_extractor, device="cpu")


LIMITS = app.Limits(max_upload_mb=5.0, max_minutes=0.5, concurrency=2)


@pytest.fixture()
def result_files():
    files = app.ResultFiles(keep=4)
    yield files
    files.cleanup()


def analyze(path, classifier, result_files):
    return app.analyze_audio(None if path is None else str(path), classifier, LIMITS, result_files)


def test_handler_outputs(classifier, write_wav, result_files):
    path = write_wav(synth_music(12.0, seed=1), "song.wav")
    labels, figure, table, json_path, summary = analyze(path, classifier, result_files)
    assert list(labels) == [genre for genre, _ in classifier.analyze(path).ranked()]
    assert sum(labels.values()) == pytest.approx(1.0, abs=1e-5)
    assert isinstance(figure, Figure)
    assert len(table) == 5 and table[0][:2] == ["0:00", "0:04"] and table[-1][1] == "0:12"
    result = json.loads(open(json_path).read())
    assert result["source"] == "song.wav" and len(result["windows"]) == 5
    assert summary.endswith("— 5 windows over 0:12") and summary.startswith(result["top_genre"])


def test_short_recording_is_padded_and_said(classifier, write_wav, result_files):
    path = write_wav(synth_music(1.5, seed=2), "mic.wav")
    with pytest.warns(UserWarning, match="single window"):
        *_, table, _, summary = analyze(path, classifier, result_files)
    assert len(table) == 1 and "single window" in summary


@pytest.mark.parametrize(
    "make_file, message",
    [
        (lambda write, tmp: write(np.zeros(5 * SAMPLING_RATE, dtype=np.float32), "silent.wav"), "silent"),
        (lambda write, tmp: write(synth_music(0.5), "blip.wav"), "at least 1 s"),
        (lambda write, tmp: write(synth_music(40.0), "long.wav"), "the limit is 0:30"),
        (lambda write, tmp: (tmp / "fake.mp3").write_text("<html>nope</html>" * 50) and tmp / "fake.mp3", "fake.mp3"),
        (lambda write, tmp: (tmp / "empty.wav").write_bytes(b"") is not None and tmp / "empty.wav", "empty"),
        (
            lambda write, tmp: (tmp / "big.wav").write_bytes(b"\0" * 6_000_000) is not None and tmp / "big.wav",
            "6 MB; the limit is 5 MB",
        ),
    ],
)
def test_bad_input_is_a_page_error(classifier, write_wav, tmp_path, make_file, message, result_files, caplog):
    """Expected bad input: a message on the page and one log line, no traceback (no chained exception either, and
    Gradio is told not to print one)."""
    with pytest.raises(gr.Error, match=message) as raised:
        analyze(make_file(write_wav, tmp_path), classifier, result_files)
    error = raised.value
    assert error.print_exception is False and error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    rejected = [record for record in caplog.records if record.name == "genre_vit.app"]
    assert len(rejected) == 1 and message.split(";")[0] in rejected[0].getMessage()
    assert rejected[0].exc_info is None


def test_no_input_and_no_model(classifier, result_files):
    with pytest.raises(gr.Error, match="Upload a song"):
        analyze(None, classifier, result_files)
    with pytest.raises(gr.Error, match="No model is loaded"):
        app.analyze_audio("song.wav", None, LIMITS, result_files)


def test_a_run_of_requests_leaves_no_growth(classifier, write_wav, result_files, tmp_path):
    """Every analysis used to leave a /tmp/genre-vit-* folder behind; now results live in one folder of the
    process, which keeps only the last few and is removed with it."""
    import tempfile

    before = set(Path(tempfile.gettempdir()).glob("genre-vit-*"))
    path = write_wav(synth_music(5.0, seed=3), "song.wav")
    json_paths = [analyze(path, classifier, result_files)[3] for _ in range(10)]
    assert set(Path(tempfile.gettempdir()).glob("genre-vit-*")) - before == set()
    assert len(list(result_files.path.iterdir())) == result_files.keep
    assert Path(json_paths[-1]).is_file() and not Path(json_paths[0]).exists()
    assert Path(json_paths[-1]).name == "song-genres.json"
    result_files.cleanup()
    assert not result_files.path.exists()


def test_a_truncated_upload_is_analysed_and_the_page_says_so(classifier, write_wav, result_files):
    path = write_wav(synth_music(30.0, seed=4), "cut.wav")
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])
    with pytest.warns(UserWarning, match="cut short"):
        *_, table, _, summary = analyze(path, classifier, result_files)
    assert "cut short" in summary and len(table) == 4  # the 10 s that are there


def test_model_resolution(monkeypatch, tiny_model_dir, tmp_path):
    monkeypatch.setenv("GENRE_VIT_MODEL", str(tiny_model_dir))
    classifier, line = app.load_classifier()
    assert classifier is not None and str(tiny_model_dir) in line
    monkeypatch.setenv("GENRE_VIT_MODEL", str(tmp_path / "nowhere"))
    classifier, line = app.load_classifier()
    assert classifier is None and "could not be loaded" in line
    monkeypatch.delenv("GENRE_VIT_MODEL")
    monkeypatch.setattr("genre_vit.analysis.BUNDLED_MODEL_DIR", tmp_path / "no-bundle")
    classifier, line = app.load_classifier()
    assert classifier is None and "GENRE_VIT_MODEL" in line
    demo = app.build_demo(None, line, LIMITS)  # the page still builds without a model
    assert isinstance(demo, gr.Blocks)


def test_limits_from_environment(monkeypatch):
    monkeypatch.setenv("GENRE_VIT_MAX_UPLOAD_MB", "20")
    monkeypatch.setenv("GENRE_VIT_MAX_MINUTES", "3")
    assert app.Limits.from_environment() == app.Limits(max_upload_mb=20.0, max_minutes=3.0, concurrency=2)
