"""The real GTZAN clips beside the repository (skipped where absent)."""

import numpy as np
from conftest import SAMPLING_RATE, gtzan_clips, librosa_window_image, padded_window, requires_gtzan

from genre_vit import GenreClassifier, load_audio


@requires_gtzan
def test_real_clips_decode_to_30_seconds_mono():
    for _, path in gtzan_clips(limit_per_genre=1):
        waveform = load_audio(path)
        assert waveform.ndim == 1 and 29.5 < waveform.size / SAMPLING_RATE < 31.0, path


@requires_gtzan
def test_feature_extractor_on_real_music_is_within_the_stated_tolerance(feature_extractor):
    genre, path = gtzan_clips(limit_per_genre=1)[6]
    waveform = load_audio(path)
    windows = feature_extractor.extract_windows(waveform, SAMPLING_RATE).input_values[:, 0]
    assert windows.shape == (15, 216, 144)
    for index in (0, 5, 13):
        difference = np.abs(windows[index] - librosa_window_image(padded_window(waveform, index * 44100)))
        assert difference.mean() < 0.015
        assert np.percentile(difference[:, 3:-3], 99) < 0.025


@requires_gtzan
def test_analysis_of_a_real_clip(tiny_model, feature_extractor):
    genre, path = gtzan_clips(limit_per_genre=1)[0]
    result = GenreClassifier(tiny_model, feature_extractor, device="cpu", dtype="float32").analyze(path)
    assert result.num_windows == 15 and result.source == path.name
    np.testing.assert_allclose(result.mean_probabilities.sum(), 1.0, atol=1e-5)
