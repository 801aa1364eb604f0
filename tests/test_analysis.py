import io
import json

import matplotlib
import numpy as np
import pytest
import torch
from conftest import SAMPLING_RATE
from matplotlib.figure import Figure

from genre_vit import (
    GTZAN_GENRES,
    GenreAnalysis,
    GenreClassifier,
    GenreViTConfig,
    GenreViTForAudioClassification,
    analyze_full_song,
)
from genre_vit.analysis import (
    AudioTooShortError,
    ModelNotFoundError,
    SilentAudioError,
    native_bfloat16,
    resolve_dtype,
)
from genre_vit.audio import AudioDecodeError, AudioTooLongError
from genre_vit.files import save_figure_atomic, write_text_atomic
from genre_vit.plotting import (
    GENRE_COLORS,
    plot_genre_bars,
    plot_genre_report,
    plot_genre_timeline,
    plot_window_explanation,
)
from genre_vit.testing import synth_music


@pytest.fixture(scope="module")
def classifier(tiny_model, feature_extractor):
    return GenreClassifier(tiny_model, feature_extractor, batch_size=4, device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def result(classifier, song_30s):
    return classifier.analyze((song_30s, SAMPLING_RATE))


def test_result_is_consistent(result, tiny_model, feature_extractor, song_30s):
    assert result.genres == GTZAN_GENRES
    assert result.num_windows == 14 and result.window_probabilities.shape == (14, 10)
    np.testing.assert_allclose(result.window_probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(result.mean_probabilities, result.window_probabilities.mean(axis=0), atol=1e-7)
    assert np.all(np.diff(result.window_start_times) > 0)
    assert np.all(result.window_end_times > result.window_start_times)
    assert result.window_end_times[-1] == pytest.approx(30.0)
    assert result.duration_seconds == pytest.approx(30.0)
    assert result.top_genre == result.ranked()[0][0] and result.confidence == result.ranked()[0][1]
    # Batched analysis equals one forward pass over all windows.
    windows = torch.from_numpy(feature_extractor.extract_windows(song_30s, SAMPLING_RATE).input_values)
    with torch.inference_mode():
        expected = tiny_model(windows).logits.softmax(-1).numpy()
    np.testing.assert_allclose(result.window_probabilities, expected, atol=1e-5)


def test_exports(result, tmp_path):
    data = json.loads(result.to_json())
    assert data["top_genre"] == result.top_genre and len(data["windows"]) == 14
    window_mean = np.mean([[w["probabilities"][g] for g in GTZAN_GENRES] for w in data["windows"]], axis=0)
    np.testing.assert_allclose([data["mean_probabilities"][g] for g in GTZAN_GENRES], window_mean, atol=1e-6)
    assert data["windows"][1]["start_seconds"] == 2.0 and data["windows"][0]["top_genre"] == result.window_top_genres[0]
    saved = result.save_json(tmp_path / "out" / "result.json")
    assert json.loads(saved.read_text()) == data
    assert result.summary().endswith("— 14 windows over 0:30")


def test_path_waveform_and_stereo_input_agree(classifier, result, song_30s, write_wav):
    path = write_wav(song_30s, "song.wav")
    from_file = classifier.analyze(path)
    assert from_file.source == "song.wav"
    np.testing.assert_allclose(from_file.window_probabilities, result.window_probabilities, atol=1e-4)
    stereo = np.stack([song_30s, song_30s])
    np.testing.assert_allclose(
        classifier.analyze(stereo, sampling_rate=SAMPLING_RATE).window_probabilities,
        result.window_probabilities,
        atol=1e-6,
    )


def test_other_sampling_rates_are_resampled(classifier):
    song = synth_music(10.0, seed=2, sampling_rate=44100)
    analysis = classifier.analyze((song, 44100))
    assert analysis.num_windows == 4 and analysis.duration_seconds == pytest.approx(10.0, abs=1e-3)


def test_short_recording_is_one_padded_window(classifier):
    analysis = classifier.analyze((synth_music(1.5), SAMPLING_RATE))
    assert analysis.num_windows == 1
    assert analysis.window_end_times[0] == pytest.approx(1.5)
    assert analysis.summary().endswith("1 window over 0:02")


@pytest.mark.parametrize(
    "audio, error, message",
    [
        ((np.zeros(SAMPLING_RATE * 5, dtype=np.float32), SAMPLING_RATE), SilentAudioError, "silent"),
        ((np.full(SAMPLING_RATE * 5, 1e-5, dtype=np.float32), SAMPLING_RATE), SilentAudioError, "-100 dBFS"),
        ((synth_music(0.5), SAMPLING_RATE), AudioTooShortError, "0.50 s long; at least 1 s"),
        ((np.zeros(0, dtype=np.float32), SAMPLING_RATE), AudioTooShortError, "empty"),
        ((np.array([0.1, np.nan] * 22050, dtype=np.float32), SAMPLING_RATE), ValueError, "NaN"),
        (np.zeros(10), None, "sampling rate"),
    ],
)
def test_bad_waveforms(classifier, audio, error, message):
    with pytest.raises(error, match=message):
        classifier.analyze(audio)


def test_bad_files(classifier, tmp_path, write_wav):
    fake = tmp_path / "fake.mp3"
    fake.write_text("<html>not a song</html>" * 100)
    with pytest.raises(AudioDecodeError):
        classifier.analyze(fake)
    long = write_wav(synth_music(12.0), "long.wav")
    with pytest.raises(AudioTooLongError):
        classifier.analyze(long, max_seconds=10)


def test_analyze_full_song_loads_from_a_folder(tiny_model_dir, song_30s, result):
    analysis = analyze_full_song(
        (song_30s, SAMPLING_RATE), model=str(tiny_model_dir), batch_size=5, device="cpu", dtype="float32"
    )
    np.testing.assert_allclose(analysis.window_probabilities, result.window_probabilities, atol=1e-6)
    fast = analyze_full_song((song_30s, SAMPLING_RATE), model=str(tiny_model_dir), device="cpu")  # dtype "auto"
    np.testing.assert_allclose(fast.mean_probabilities, result.mean_probabilities, atol=0.01)


def test_bfloat16_path_stores_the_encoder_linears_in_bfloat16_with_the_autocast_results(tiny_model_dir):
    """The fast path keeps the encoder's Linear weights in bfloat16 (no cast per call) and the head in float32; its
    answers are those of the float32 model under autocast, to the bit."""
    from genre_vit.network import GenreViTNetwork

    reference = GenreViTNetwork.from_folder(tiny_model_dir).eval()
    windows = torch.rand(3, 1, 216, 144)
    with torch.inference_mode():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            tokens = reference.forward_features(windows)
        expected = reference.forward_head(tokens.float()).softmax(-1).numpy()
    classifier = GenreClassifier.from_pretrained(tiny_model_dir, device="cpu", dtype="bfloat16")
    linears = [m for m in classifier.model.genre_vit.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(m.weight.dtype == torch.bfloat16 for m in linears)
    assert classifier.model.classifier.weight.dtype == torch.float32
    assert classifier.model.genre_vit.embeddings.patch_embeddings.weight.dtype == torch.float32
    np.testing.assert_array_equal(classifier.window_probabilities(windows.numpy()), expected)


def test_a_callers_model_is_not_converted(feature_extractor, song_30s):
    """`analyze_full_song(model=...)` with a reduced-precision dtype computes under autocast and leaves the
    caller's weights as they were."""
    torch.manual_seed(0)
    model = GenreViTForAudioClassification(GenreViTConfig.tiny()).eval()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    analyze_full_song((song_30s, SAMPLING_RATE), model=model, feature_extractor=feature_extractor, dtype="bfloat16")
    after = model.state_dict()
    assert all(after[name].dtype == torch.float32 and torch.equal(after[name], before[name]) for name in before)


def test_every_entry_point_has_the_same_default_dtype():
    import inspect

    defaults = {
        function.__qualname__: inspect.signature(function).parameters["dtype"].default
        for function in (GenreClassifier.__init__, GenreClassifier.from_pretrained, analyze_full_song)
    }
    assert set(defaults.values()) == {"auto"}, defaults


def test_auto_dtype_is_bfloat16_only_on_a_cpu_that_runs_it_natively():
    """On a GPU the model is a small share of an analysis, so "auto" keeps float32 there (README, GPU table)."""
    cpu = torch.device("cpu")
    assert resolve_dtype("auto", cpu) == (torch.bfloat16 if native_bfloat16(cpu) else torch.float32)
    assert resolve_dtype("auto", torch.device("cuda")) == torch.float32  # decided without touching a GPU
    assert resolve_dtype("float32", cpu) == torch.float32
    assert resolve_dtype("bfloat16", torch.device("cuda")) == torch.bfloat16
    with pytest.raises(ValueError, match="Unknown dtype"):
        resolve_dtype("int8", cpu)


def test_missing_model_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("GENRE_VIT_MODEL", raising=False)
    monkeypatch.setattr("genre_vit.analysis.BUNDLED_MODEL_DIR", tmp_path / "no-bundled-model")
    with pytest.raises(ModelNotFoundError, match="No model given"):
        GenreClassifier.from_pretrained(None)
    with pytest.raises(ModelNotFoundError, match="is not a GenreViT model folder"):
        GenreClassifier.from_pretrained(tmp_path)


def test_plots_are_pure_figures(result, tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    bars, timeline, report = plot_genre_bars(result), plot_genre_timeline(result), plot_genre_report(result)
    assert plt.get_fignums() == before  # no pyplot state touched
    for figure in (bars, timeline, report):
        assert isinstance(figure, Figure)
    (timeline_axes,) = timeline.axes  # every band on one time axis
    assert not plot_genre_timeline(result, legend=False).legends
    section_cells, window_cells, *areas = timeline_axes.collections
    assert [text.get_text() for text in timeline.legends[0].get_texts()] == list(GTZAN_GENRES)
    assert len(areas) == 10  # one stacked area per genre, in the genre colours
    for index, area in enumerate(areas):
        assert matplotlib.colors.to_hex(area.get_facecolor()[0]) == GENRE_COLORS[index].lower()
    assert len(window_cells.get_paths()) == result.num_windows  # one cell per window
    assert len(section_cells.get_paths()) == len(result.sections())
    texts = [t.get_text() for t in timeline_axes.texts]
    assert texts[: len(result.sections())] == [f"{s.genre} {s.probability:.0%}" for s in result.sections()]
    assert {"sections", "top", "log-Mel"} <= set(texts)  # each band is named
    assert timeline_axes.images and timeline_axes.images[0].get_array().shape == result.spectrogram.shape
    timeline.canvas.draw()
    labels = [label.get_text() for label in timeline_axes.get_xticklabels() if label.get_text()]
    assert labels and all(":" in label for label in labels)
    assert len(set(labels)) == len(labels)  # whole seconds, so no label repeats
    short = plot_genre_timeline(
        GenreAnalysis(result.genres, np.array([0.0]), np.array([3.0]), result.window_probabilities[:1], 3.0)
    )
    short.canvas.draw()
    assert not short.axes[0].images and "log-Mel" not in [t.get_text() for t in short.axes[0].texts]  # no empty band
    short_labels = [label.get_text() for label in short.axes[0].get_xticklabels() if label.get_text()]
    assert len(set(short_labels)) == len(short_labels) >= 2
    assert len(bars.axes[0].patches) == 10
    assert len(plot_genre_bars(result, top_k=3).axes[0].patches) == 3
    path = save_figure_atomic(report, tmp_path / "report.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.get_backend()  # the backend is the caller's business; plots never call show()


def test_song_spectrogram_is_a_bounded_overview(feature_extractor, song_30s, result):
    overview = feature_extractor.song_spectrogram(song_30s, frames_per_second=10.0, bands=64)
    assert overview.shape == (64, 300) and overview.dtype == np.float16
    assert 0.0 <= overview.min() and overview.max() == 1.0
    np.testing.assert_array_equal(result.spectrogram, overview)
    # band 0 is the lowest: a low tone lights the bottom bands only
    tone = np.sin(2 * np.pi * 110.0 * np.arange(5 * SAMPLING_RATE) / SAMPLING_RATE).astype(np.float32)
    low = feature_extractor.song_spectrogram(tone).astype(np.float32).mean(axis=1)
    assert low.argmax() < 8


def test_progress_is_reported_per_block(classifier, song_30s):
    calls = []
    classifier.analyze((song_30s, SAMPLING_RATE), progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 14), (4, 14), (8, 14), (12, 14), (14, 14)]  # batch_size 4


def test_explanation_of_a_window(classifier, result, song_30s):
    start = float(result.window_start_times[result.most_confident_window])
    explanation = classifier.explain((song_30s, SAMPLING_RATE), start_seconds=start + 0.4)
    assert explanation.start_seconds == start  # the nearest window start
    assert explanation.relevance.shape == classifier.model.config.patch_grid == (13, 9)
    assert explanation.relevance.min() >= 0 and explanation.relevance.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(
        explanation.probabilities, result.window_probabilities[result.most_confident_window], atol=1e-5
    )
    assert explanation.image.shape == (216, 144) and explanation.relevance_image().shape == (216, 144)
    assert explanation.relevance_image().sum() == pytest.approx(16 * 16, rel=1e-4)  # each patch spread on 16x16 px
    figure = plot_window_explanation(explanation)
    assert isinstance(figure, Figure) and explanation.top_genre in figure.axes[0].get_title()


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "result.json"
    write_text_atomic(target, "old")

    class Unwritable:
        def savefig(self, *args, **kwargs):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_figure_atomic(Unwritable(), tmp_path / "plot.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]
    assert target.read_text() == "old"


def test_analyze_many_gives_each_file_its_result_or_error_in_order(classifier, tmp_path):
    """The same results as one by one, in the order given, a bad file's error in its place."""
    import soundfile

    paths = []
    for index, seconds in enumerate((6.0, 9.0, 5.0)):
        path = tmp_path / f"song{index}.flac"
        soundfile.write(path, synth_music(seconds, seed=index), SAMPLING_RATE)
        paths.append(path)
    broken = tmp_path / "broken.mp3"
    broken.write_text("not audio")
    paths.insert(1, broken)
    expected = [classifier.analyze(path) for path in paths if path != broken]
    outcomes = list(classifier.analyze_many(paths))
    assert [path for path, _ in outcomes] == paths
    assert isinstance(outcomes[1][1], AudioDecodeError)
    results = [result for _, result in outcomes if not isinstance(result, ValueError)]
    for result, reference in zip(results, expected, strict=True):
        np.testing.assert_array_equal(result.window_probabilities, reference.window_probabilities)


def test_silence_is_not_a_genre(classifier, tmp_path):
    """20 s of digital silence, then 30 s of music (as an MP3): the silent windows are marked, drawn as gaps and
    left out of the song's mean and its sections."""
    import soundfile

    waveform = np.concatenate([np.zeros(20 * SAMPLING_RATE, dtype=np.float32), synth_music(30.0, seed=4)])
    path = tmp_path / "late-start.wav"
    soundfile.write(path, waveform, SAMPLING_RATE)
    result = classifier.analyze(path)
    silent = ~result.window_has_music
    # windows at 0, 2, ..., 16 s hold only silence; the one at 18 s already holds 2 s of music
    assert result.window_start_times[silent].tolist() == [0, 2, 4, 6, 8, 10, 12, 14, 16]
    np.testing.assert_allclose(
        result.mean_probabilities, result.window_probabilities[~silent].mean(axis=0), rtol=1e-6, atol=1e-7
    )
    sections = result.sections()
    assert sections and sections[0].start_seconds >= 18.0 and sections[0].first_window == 9
    assert all(section.first_window >= 9 for section in sections) and sections[-1].end_seconds == 50.0
    assert "(9 without music)" in result.summary()
    data = json.loads(result.to_json())
    assert [w["has_music"] for w in data["windows"]] == (~silent).tolist() and data["windows_without_music"] == 9
    assert all(s["start_seconds"] >= 18.0 for s in data["sections"])  # no section starts in the silence
    plot_genre_timeline(result).savefig(io.BytesIO(), format="png")  # the gaps draw
    hiss = np.random.default_rng(0).normal(0.0, 10 ** (-66 / 20), 30 * SAMPLING_RATE).astype(np.float32)
    with pytest.raises(SilentAudioError, match="No window"):  # peaks pass the silence check, but no window is music
        classifier.analyze((hiss, SAMPLING_RATE))


def test_the_bundled_model_loads_by_its_name_from_any_folder(tmp_path, monkeypatch):
    import genre_vit

    monkeypatch.chdir(tmp_path)
    classifier = genre_vit.GenreClassifier.from_pretrained(genre_vit.BUNDLED_MODEL_DIR, device="cpu")
    assert tuple(classifier.genres) == tuple(genre_vit.GTZAN_GENRES)
