"""Live analysis of a recording that arrives in chunks (`genre_vit.live`)."""

import numpy as np
import pytest
from conftest import SAMPLING_RATE

from genre_vit import GenreClassifier
from genre_vit.audio import AudioTooLongError, resample
from genre_vit.live import LiveAnalysis, pcm_to_float
from genre_vit.testing import synth_music


@pytest.fixture(scope="module")
def classifier(tiny_model, feature_extractor):
    return GenreClassifier(tiny_model, feature_extractor, batch_size=8, device="cpu", dtype="float32")


def test_windows_arrive_one_per_hop_and_equal_the_full_analysis(classifier):
    song = synth_music(16.0, seed=21)
    live = LiveAnalysis(classifier)
    counts = []
    for start in range(0, song.size, 2 * SAMPLING_RATE):  # 2-s chunks, as the page streams them
        live.add(song[start : start + 2 * SAMPLING_RATE], SAMPLING_RATE)
        counts.append(len(live.start_times))
    # a window needs its 4 s plus half an FFT frame: the first one completes with the third chunk
    assert counts == [0, 0, 1, 2, 3, 4, 5, 6]
    partial = live.result()
    full = classifier.analyze((song, SAMPLING_RATE))
    assert partial.window_start_times.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    np.testing.assert_allclose(partial.window_probabilities, full.window_probabilities[:6], atol=1e-5)
    final = live.finish()
    np.testing.assert_allclose(final.window_probabilities, full.window_probabilities, atol=1e-6)
    assert final.num_windows == 7 and final.duration_seconds == pytest.approx(16.0)


def test_a_48_khz_int16_stereo_stream_is_resampled_as_one_signal(classifier):
    song = synth_music(9.0, seed=22, sampling_rate=48000)
    pcm = np.round(np.stack([song, song], axis=1) * 20000).astype(np.int16)
    live = LiveAnalysis(classifier)
    for start in range(0, len(pcm), 24000):  # half-second chunks
        live.add(pcm[start : start + 24000], 48000)
    assert live.seconds_heard == pytest.approx(9.0, abs=0.02)  # the resampler holds back a few ms until the end
    expected = resample(pcm_to_float(pcm), 48000, SAMPLING_RATE)
    heard = live.waveform()
    np.testing.assert_allclose(heard, expected[: heard.size], atol=2e-3)
    assert len(live.start_times) == 3 and live.last_update_seconds > 0
    with pytest.raises(ValueError, match="sampling rate"):
        live.add(pcm[:100], 44100)
    assert live.finish().duration_seconds == pytest.approx(9.0, abs=1e-3)  # finishing flushes the resampler
    with pytest.raises(ValueError, match="finished"):
        live.add(pcm[:100], 48000)


def test_pcm_conversion():
    assert pcm_to_float(np.array([-32768, 0, 16384], dtype=np.int16)).tolist() == [-1.0, 0.0, 0.5]
    assert pcm_to_float(np.array([[0.5, -0.5], [1.0, 0.0]], dtype=np.float32)).tolist() == [0.0, 0.5]


def test_the_recording_limit(classifier):
    live = LiveAnalysis(classifier, max_seconds=3.0)
    live.add(np.zeros(2 * SAMPLING_RATE, dtype=np.float32), SAMPLING_RATE)
    assert live.result() is None
    with pytest.raises(AudioTooLongError, match="limit of 0:03"):
        live.add(np.zeros(2 * SAMPLING_RATE, dtype=np.float32), SAMPLING_RATE)
