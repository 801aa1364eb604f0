"""The demo's request handler with the tiny model (no server)."""

import json
import shutil
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from conftest import SAMPLING_RATE
from matplotlib.figure import Figure

import app
from genre_vit import GTZAN_GENRES, GenreAnalysis, GenreClassifier
from genre_vit.plotting import GENRE_COLORS
from genre_vit.testing import synth_music


@pytest.fixture(scope="module")
def classifier(tiny_model, feature_extractor):
    return GenreClassifier(tiny_model, feature_extractor, device="cpu", dtype="float32")


LIMITS = app.Limits(max_upload_mb=5.0, max_minutes=0.5, concurrency=2)


@pytest.fixture()
def result_files():
    files = app.ResultFiles(keep=4)
    yield files
    files.cleanup()


def analyze(path, classifier, result_files):
    return app.analyze_audio(None if path is None else str(path), classifier, LIMITS, result_files)


def named(outputs: dict) -> dict:
    """The result outputs of a handler, every one of them named (the live session aside)."""
    outputs = {name: value for name, value in outputs.items() if name != "live_session"}
    assert set(outputs) == set(app.RESULT_OUTPUTS)
    return outputs


def test_handler_outputs(classifier, write_wav, result_files):
    path = write_wav(synth_music(12.0, seed=1), "song.wav")
    progress = []
    out = named(
        app.analyze_audio(str(path), classifier, LIMITS, result_files, lambda value, **_: progress.append(value))
    )
    expected = classifier.analyze(path)
    assert out["status"] == "" and Path(out["audio"]).name == "analysed.wav"
    ranked = [genre for genre, _ in expected.ranked()]
    labels = out["labels"]
    assert [labels.index(f"</span>{genre}</td>") for genre in ranked] == sorted(
        labels.index(f"</span>{genre}</td>") for genre in ranked
    )  # most likely first
    assert GENRE_COLORS[GTZAN_GENRES.index(ranked[0])] in labels
    assert isinstance(out["timeline"], Figure) and out["timeline"].legends  # its colours explained beside it
    assert labels.startswith('<h4 class="panel-heading">Genres, mean over the song</h4>')
    assert out["sections"].startswith('<h4 class="panel-heading">Sections</h4>')
    assert out["why"] is None  # drawn only when the "why" panel is open (explain_if_open)
    assert out["table"].count("<tr>") == 1 + 5 and "<td>0:00</td><td>0:04</td>" in out["table"]
    assert (
        out["table"].removesuffix("</tbody></table></div>").endswith("%</td></tr>") and "<td>0:12</td>" in out["table"]
    )
    assert [line in out["sections"] for line in expected.section_lines()] == [True] * len(expected.sections())
    choices = out["window_choice"]["choices"]
    assert len(choices) == 5 and out["window_choice"]["value"] == choices[expected.most_confident_window][1]
    result = json.loads(open(out["download"]).read())
    assert result["source"] == "song.wav" and len(result["windows"]) == 5 and result["sections"]
    assert out["summary"].endswith("— 5 windows over 0:12") and out["summary"].startswith(result["verdict"])
    assert expected.verdict in out["answer"]
    assert progress[0] == (0, 5) and progress[-1] == (5, 5)


def test_short_recording_is_padded_and_said(classifier, write_wav, result_files):
    path = write_wav(synth_music(1.5, seed=2), "mic.wav")
    out = named(analyze(path, classifier, result_files))
    assert out["table"].count("<tr>") == 2 and "single window" in out["summary"]


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
            "6.0 MB; the limit is 5.0 MB",
        ),
    ],
)
def test_bad_input_is_one_message_and_cleared_outputs(
    classifier, write_wav, tmp_path, make_file, message, result_files, caplog
):
    """Expected bad input: the message in the status line only (no error badge on every panel: nothing raises),
    every other output cleared, and one log line without a traceback."""
    out = named(analyze(make_file(write_wav, tmp_path), classifier, result_files))
    assert message.split(";")[0] in out["status"] and 'role="alert"' in out["status"]
    assert out["timeline"] is None and out["why"] is None and out["download"] is None
    assert out["labels"] == out["sections"] == out["table"] == out["summary"] == ""
    rejected = [record for record in caplog.records if record.name == "genre_vit.app"]
    assert len(rejected) == 1 and message.split(";")[0] in rejected[0].getMessage()
    assert rejected[0].exc_info is None


@pytest.mark.parametrize(
    "make_file, message",
    [
        (lambda write, tmp: write(synth_music(40.0), "long.wav"), "long.wav is 0:40 long; the limit is 0:30"),
        (lambda write, tmp: (tmp / "page.mp3").write_text("<html>nope</html>" * 50) and tmp / "page.mp3", "page.mp3"),
        (
            lambda write, tmp: (tmp / "big.wav").write_bytes(b"\0" * 6_000_000) is not None and tmp / "big.wav",
            "big.wav is 6.0 MB; the limit is 5.0 MB",
        ),
    ],
)
def test_limits_are_checked_at_upload_time(classifier, result_files, write_wav, tmp_path, make_file, message):
    previous = named(analyze(write_wav(synth_music(8.0), "previous.wav"), classifier, result_files))
    assert previous["answer"] and previous["timeline"] is not None
    refused = app.check_upload(str(make_file(write_wav, tmp_path)), LIMITS)
    assert refused["song"] is None and message in refused["status"]  # the player is cleared, the message shown
    # the previous song's results leave the page with it
    assert refused["answer"] == refused["labels"] == refused["table"] == "" and refused["timeline"] is None
    assert set(app.RESULT_OUTPUTS) <= set(refused)
    # Analyze pressed next repeats why, instead of asking for a file
    again = named(app.analyze_audio(None, classifier, LIMITS, result_files, None, refused["upload_rejection"]))
    assert message in again["status"]
    fine = write_wav(synth_music(5.0), "fine.wav")
    accepted = app.check_upload(str(fine), LIMITS)
    assert accepted["song"] == gr.skip() and accepted["status"] == "" and accepted["upload_rejection"] == ""


def test_no_input_and_no_model(classifier, result_files):
    assert "Upload a song" in named(analyze(None, classifier, result_files))["status"]
    assert "No model is loaded" in named(app.analyze_audio("song.wav", None, LIMITS, result_files))["status"]


def test_explaining_another_window(classifier, write_wav):
    path = write_wav(synth_music(12.0, seed=5), "song.wav")
    figure = app.explain_window(4.0, str(path), classifier, LIMITS)
    assert isinstance(figure, Figure) and "0:04-0:08" in figure.axes[0].get_title()
    assert app.explain_window(None, str(path), classifier, LIMITS) is None


def test_live_microphone_updates_then_the_full_result(classifier, result_files):
    song = synth_music(9.0, seed=6, sampling_rate=48000)
    pcm = np.round(song * 20000).astype(np.int16)
    session, lines, figures = None, [], []
    for start in range(0, pcm.size, 96000):  # 2 s at 48 kHz per update, as the page streams
        session, line, figure, status = app.live_update(
            (48000, pcm[start : start + 96000]), session, classifier, LIMITS
        )
        lines.append(line)
        figures.append(figure)
        assert status == ""
    assert lines[0].startswith("Listening… 0:02 heard")
    assert lines[2].startswith("Now: **") and "1 windows" in lines[2] and "3 windows" in lines[4]
    assert isinstance(figures[-1], Figure)
    outputs = app.finish_live(session, classifier, LIMITS, result_files)
    out = named(outputs)
    assert outputs["live_session"] is None and out["status"] == "" and out["summary"].endswith("4 windows over 0:09")
    assert Path(out["audio"]).name == "analysed.wav" and Path(out["audio"]).is_file()
    silent = app.LiveAnalysis(classifier)
    silent.add(np.zeros(3 * 48000, dtype=np.int16), 48000)
    assert "silent" in named(app.finish_live(silent, classifier, LIMITS, result_files))["status"]


def test_a_run_of_requests_leaves_no_growth(classifier, write_wav, result_files, tmp_path):
    """Every analysis used to leave a /tmp/genre-vit-* folder behind; now results live in one folder of the
    process, which keeps only the last few and is removed with it."""
    import tempfile

    before = set(Path(tempfile.gettempdir()).glob("genre-vit-*"))
    path = write_wav(synth_music(5.0, seed=3), "song.wav")
    json_paths = [named(analyze(path, classifier, result_files))["download"] for _ in range(10)]
    assert set(Path(tempfile.gettempdir()).glob("genre-vit-*")) - before == set()
    assert len(list(result_files.path.iterdir())) == result_files.keep
    assert Path(json_paths[-1]).is_file() and not Path(json_paths[0]).exists()
    assert Path(json_paths[-1]).name == "song-genres.json"
    result_files.cleanup()
    assert not result_files.path.exists()


def test_a_truncated_upload_is_analysed_and_the_page_says_so(classifier, write_wav, result_files):
    path = write_wav(synth_music(30.0, seed=4), "cut.wav")
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])
    out = named(analyze(path, classifier, result_files))
    assert "cut short" in out["summary"] and out["table"].count("<tr>") == 1 + 4  # the 10 s that are there


def test_model_resolution(monkeypatch, tiny_model_dir, tmp_path):
    monkeypatch.setenv("GENRE_VIT_MODEL", str(tiny_model_dir))
    loaded = app.load_classifier()
    assert loaded.classifier is not None
    assert f"Model **{tiny_model_dir.name}**" in loaded.description and str(tiny_model_dir) not in loaded.description
    assert "reports no accuracy" in loaded.description
    monkeypatch.setenv("GENRE_VIT_MODEL", str(tmp_path / "nowhere"))
    loaded = app.load_classifier()
    assert loaded.classifier is None and "could not be loaded" in loaded.description
    monkeypatch.delenv("GENRE_VIT_MODEL")
    monkeypatch.setattr("genre_vit.analysis.BUNDLED_MODEL_DIR", tmp_path / "no-bundle")
    loaded = app.load_classifier()
    assert loaded.classifier is None and "GENRE_VIT_MODEL" in loaded.description
    demo = app.build_demo(loaded, LIMITS)  # the page still builds without a model
    assert isinstance(demo, gr.Blocks)


def test_the_page_states_the_models_own_accuracy(tiny_model_dir, tmp_path, monkeypatch):
    folder = tmp_path / "my-genre-model"
    shutil.copytree(tiny_model_dir, folder)
    record = {
        "folds": 5,
        "mean_std": {"track_accuracy": {"mean": 0.8123, "std": 0.05}},
        "per_fold": [
            {"test_tracks": 19},
            {"test_tracks": 19},
            {"test_tracks": 19},
            {"test_tracks": 19},
            {"test_tracks": 18},
        ],
    }
    (folder / "cross_validation.json").write_text(json.dumps(record))
    monkeypatch.setenv("GENRE_VIT_MODEL", str(folder))
    loaded = app.load_classifier()
    card = "More in its model card (README.md in its folder)."
    assert loaded.description == (
        "Model **my-genre-model**. Right on 81% of GTZAN tracks it was not trained on (5-fold cross-validation; "
        f"neighbouring GTZAN tracks share artists, so music from elsewhere fares worse). {card}"
    )
    # a figure on music from outside GTZAN leads, in one sentence
    protocols = {"emotify_test": {"track_accuracy": 0.3, "tracks": 105, "data": "Emotify test half"}}
    (folder / "evaluation_protocols.json").write_text(json.dumps(protocols))
    assert app.load_classifier().description == (
        "Model **my-genre-model**. Right on 30% of 105 songs from outside GTZAN (Emotify test half: classical, pop "
        f"and rock). {card}"
    )
    protocols["emotify_test"] |= {"confident_answers": 40, "confident_answers_right": 34}
    (folder / "evaluation_protocols.json").write_text(json.dumps(protocols))
    assert app.load_classifier().description.endswith(f"; 85% of its confident answers were right. {card}")
    from genre_vit.model_folder import model_card_reference

    assert model_card_reference("someone/genre-vit") == "its [model card](https://huggingface.co/someone/genre-vit)"


def test_limits_from_environment(monkeypatch):
    monkeypatch.setenv("GENRE_VIT_MAX_UPLOAD_MB", "20")
    monkeypatch.setenv("GENRE_VIT_MAX_MINUTES", "3")
    assert app.Limits.from_environment() == app.Limits(max_upload_mb=20.0, max_minutes=3.0, concurrency=2)
    monkeypatch.setenv("GENRE_VIT_MAX_LIVE_MINUTES", "1.5")
    assert app.Limits.from_environment().max_live_minutes == 1.5


def test_explanation_only_when_the_panel_is_open(classifier, write_wav):
    path = write_wav(synth_music(12.0, seed=6), "song.wav")
    assert app.explain_if_open(False, 4.0, str(path), classifier, LIMITS) == gr.skip()
    figure = app.explain_if_open(True, 4.0, str(path), classifier, LIMITS)
    assert isinstance(figure, Figure) and "0:04-0:08" in figure.axes[0].get_title()
    assert app.explain_if_open(True, None, None, classifier, LIMITS) is None  # opened before any analysis


def test_silent_windows_are_listed_as_no_music_and_cannot_be_explained(classifier):
    song = np.concatenate(
        [synth_music(12.0, seed=2), np.zeros(20 * SAMPLING_RATE, np.float32), synth_music(12.0, seed=3)]
    )
    result = classifier.analyze((song, SAMPLING_RATE))
    silent = int((~result.window_has_music).sum())
    assert silent >= 6
    table = app.window_table_html(result)
    assert table.count("<td>no music</td>") == silent
    assert table.count("<tr") == result.num_windows + 1  # the header
    choices = app.window_choices(result)
    assert len(choices) == result.num_windows - silent
    silent_starts = set(result.window_start_times[~result.window_has_music].tolist())
    assert not silent_starts & {start for _, start in choices}


def test_examples_are_served_from_their_folder_so_the_cache_clean_up_keeps_them():
    """Gradio copies a file it shows into its cache unless the file lies in a static path; the cache clean-up would
    delete such copies of the examples while the server runs."""
    from gradio.processing_utils import move_files_to_cache

    demo = app.build_demo(app.LoadedModel(None, "no model"), LIMITS)
    song = next(block for block in demo.blocks.values() if isinstance(block, gr.Audio) and block.elem_id == "song")
    examples = sorted(app.EXAMPLES_DIR.glob("*.ogg"))
    assert examples
    for path in examples:
        served = move_files_to_cache(song.postprocess(str(path)), song, postprocess=True)
        assert Path(served["path"]) == path


def test_a_file_gone_from_the_server_gets_a_clear_message(tmp_path):
    assert (
        app.upload_problem(str(tmp_path / "song.ogg"), LIMITS)
        == "song.ogg is no longer on the server; upload it again."
    )


def test_explaining_a_window_reads_the_analysed_audio_even_once_the_upload_is_gone(
    classifier, write_wav, result_files, monkeypatch
):
    path = write_wav(synth_music(12.0, seed=4), "song.wav")
    out = named(analyze(path, classifier, result_files))
    path.unlink()  # Gradio's cache clean-up removed the upload
    decoded = []
    real_prepare = classifier.prepare
    monkeypatch.setattr(classifier, "prepare", lambda *a, **k: decoded.append(a[0]) or real_prepare(*a, **k))
    figure = app.explain_window(2.0, out["audio"], classifier, LIMITS)
    assert isinstance(figure, Figure)
    assert decoded == [out["audio"]]  # the kept waveform, a float32 WAV at the model's rate, not the upload
    import soundfile

    kept, rate = soundfile.read(out["audio"], dtype="float32")
    assert rate == SAMPLING_RATE and kept.size == 12 * SAMPLING_RATE


def test_live_audio_comes_from_the_pages_capture_when_it_has_one(classifier, result_files):
    from genre_vit.capture import CaptureRegistry

    captures = CaptureRegistry()
    capture_id = "a" * 32
    song = synth_music(10.0, seed=6, sampling_rate=48000)
    gradio_chunk = (48000, np.zeros(96000, np.float32))  # what Gradio streamed: ignored beside the page's capture
    assert app.live_audio(gradio_chunk, capture_id, captures) is None  # its first piece has not come yet
    for number, start in enumerate(range(0, song.size, 24000)):
        captures.add(capture_id, number, song[start : start + 24000], 48000, 60, start + 24000 >= song.size)
    session = None
    session, line, _, status = app.live_update(gradio_chunk, session, classifier, LIMITS, capture_id, captures)
    assert session.seconds_heard == pytest.approx(10.0, abs=0.01) and "10 s" not in status
    out = named(app.finish_live(session, classifier, LIMITS, result_files, capture_id, captures))
    assert out["summary"].endswith("windows over 0:10") and captures.get(capture_id) is None
    assert app.live_audio(gradio_chunk, None, captures)[1] == 48000  # no capture: Gradio's chunk


def medley() -> GenreAnalysis:
    """Ten 30-s sections, one per genre, each found exactly: no genre leads over the whole song."""

    genres = [index for index in range(10) for _ in range(15)]
    probabilities = np.full((len(genres), 10), 0.02)
    probabilities[np.arange(len(genres)), genres] = 0.82
    starts = np.arange(len(genres)) * 2.0
    return GenreAnalysis(GTZAN_GENRES, starts, starts + 4.0, probabilities, 300.0)


def test_a_medley_is_answered_as_a_song_that_changes_genre_in_a_neutral_badge():
    result = medley()
    assert result.is_uncertain and result.verdict == "changes genre: blues, classical, country and 7 more"
    assert result.summary().startswith("changes genre: blues, classical, country and 7 more (10 sections)")
    answer = app.answer_html(result)
    assert 'class="answer-badge neutral-answer"' in answer and "background:" not in answer  # no genre's colour
    assert "its sections, listed with their times, differ" in answer
    clear = np.tile(np.r_[0.9, np.full(9, 0.1 / 9)], (3, 1))
    rock = GenreAnalysis(GTZAN_GENRES, np.array([0.0, 2, 4]), np.array([4.0, 6, 8]), clear[:, ::-1].copy(), 8.0)
    assert rock.verdict == "rock" and f"background:{GENRE_COLORS[9]}" in app.answer_html(rock)


def test_an_analysis_shows_one_progress_bar_on_the_answer():
    demo = app.build_demo(app.LoadedModel(None, "no model"), LIMITS)
    analyze_upload = next(function for function in demo.fns.values() if function.api_name == "analyze")
    assert [block.elem_id for block in analyze_upload.show_progress_on] == ["answer"]


def test_the_window_table_tells_the_last_window_from_the_grids(classifier):
    result = classifier.analyze((synth_music(14.1, seed=7), SAMPLING_RATE))
    rows = [
        (start, end) for start, end in zip(result.window_start_times, result.window_end_times, strict=True)
    ]  # the grid's windows and one that ends with the audio
    assert len(rows) == 7 and rows[-1] == pytest.approx((10.1, 14.1))
    table = app.window_table_html(result)
    assert "<td>0:10</td><td>0:14</td>" in table and "<td>0:10.1</td><td>0:14.1</td>" in table
    labels = [label for label, _ in app.window_choices(result)]
    assert len(set(labels)) == len(labels)


def test_the_window_chosen_to_explain_after_an_analysis_is_one_with_music(classifier, result_files, write_wav):
    """The dropdown's value must be one of its choices: a silent window is no choice (Gradio refused the value)."""
    song = np.concatenate([synth_music(8.0, seed=2), np.zeros(12 * SAMPLING_RATE, np.float32), synth_music(8.0)])
    out = named(analyze(write_wav(song, "gap.wav"), classifier, result_files))  # 28 s: within the test's limit
    assert out["status"] == "" and "without music" in out["summary"]
    update = out["window_choice"]
    assert update["value"] in [value for _, value in update["choices"]]
