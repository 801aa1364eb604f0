"""The feature extractor against a direct librosa computation, its window grid, and its input checks."""

import librosa
import numpy as np
import pytest
import torch
from conftest import MEL_PARAMETERS, SAMPLING_RATE, librosa_window_image, padded_window
from transformers.audio_utils import mel_filter_bank

from genre_vit import GenreViTFeatureExtractor
from genre_vit.spectrogram import LogMelFrontEnd, banded_filter_groups
from genre_vit.testing import synth_music


@pytest.mark.parametrize(
    "seconds, expected_starts",
    [
        (0.5, [0.0]),
        (4.0, [0.0]),
        (4.1, [0.0, 0.1]),
        (30.0, [2.0 * k for k in range(14)]),
        (30.013, [2.0 * k for k in range(14)] + [26.013]),
        (31.0, [2.0 * k for k in range(14)] + [27.0]),
        (180.0, [2.0 * k for k in range(89)]),
        (181.0, [2.0 * k for k in range(89)] + [177.0]),
    ],
)
def test_window_rule_at_the_edges(feature_extractor, seconds, expected_starts):
    """The 2-s grid while windows fit, then one window that ends where the audio ends: only audio shorter than a
    window is padded, and every sample is in a window."""
    samples = int(round(seconds * SAMPLING_RATE))
    starts = feature_extractor.window_start_times(samples)
    np.testing.assert_allclose(starts, expected_starts, atol=1 / SAMPLING_RATE)
    assert feature_extractor.num_windows(samples) == len(expected_starts)
    result = feature_extractor.extract_windows(synth_music(samples / SAMPLING_RATE), SAMPLING_RATE)
    assert result.input_values.shape == (len(expected_starts), 1, 216, 144)
    assert result.input_values.dtype == np.float32
    np.testing.assert_allclose(result.start_times, starts)
    window_end_samples = feature_extractor.window_start_samples(samples) + feature_extractor.window_samples
    if samples > feature_extractor.window_samples:
        assert window_end_samples.max() == samples  # the last window ends exactly at the last sample: no padding
    else:
        assert len(starts) == 1 and starts[0] == 0.0  # audio up to one window: one window, zero-padded
    assert result.input_values.min() >= 0.0 and result.input_values.max() <= 1.0


def test_no_window_is_mostly_padding_on_a_clip_just_over_30_s(feature_extractor):
    """A GTZAN clip of 30.013 s used to get a 15th window at 28 s holding 2 s of audio and 2 s of zeros; now its last
    window is all audio and looks like its neighbour, not like half a window of silence."""
    waveform = synth_music(30.013, seed=6)
    result = feature_extractor.extract_windows(waveform, SAMPLING_RATE)
    last = result.input_values[-1, 0]
    reference = librosa_window_image(padded_window(waveform, len(waveform) - 88200))
    assert np.abs(last - reference).mean() < 0.015
    padded_old_window = librosa_window_image(padded_window(waveform, 28 * 22050))
    assert np.abs(last - padded_old_window).mean() > 0.05


def test_single_padded_window_equals_librosa_exactly(feature_extractor):
    """Up to 4 s there is one window and no neighbouring audio, so the definitions coincide."""
    waveform = synth_music(2.5, seed=3)
    ours = feature_extractor.extract_windows(waveform, SAMPLING_RATE).input_values[0, 0]
    np.testing.assert_allclose(ours, librosa_window_image(padded_window(waveform, 0)), atol=2e-4)


def test_shared_stft_frames_equal_per_window_librosa_frames(feature_extractor):
    """Inside a window (16 frames from either edge) the shared STFT equals a per-window librosa STFT."""
    waveform = synth_music(20.0, seed=4)
    for window in (1, 3, 7):
        first = int(feature_extractor._first_frames(np.array([window * 44100]))[0])
        start_sample = first * 64
        assert abs(start_sample - window * 44100) <= 32  # the documented snap of the window start
        reference = librosa.feature.melspectrogram(y=padded_window(waveform, start_sample), **MEL_PARAMETERS).T
        ours = feature_extractor._mel_power_frames(waveform, first, feature_extractor.frames_per_window)
        interior = slice(16, -17)
        np.testing.assert_allclose(ours[interior], reference[interior], rtol=1e-4, atol=1e-6 * reference.max())


def test_full_pipeline_is_close_to_per_window_librosa(feature_extractor):
    """Stated tolerance of the shared-STFT definition against per-window computation on music-like audio (on the
    [0, 1] scale): mean absolute difference below 0.015 per window, and 99% of the pixels away from the three edge
    columns on each side within 0.025. The edge columns themselves can differ by up to about 0.5."""
    waveform = synth_music(30.0, seed=5)
    ours = feature_extractor.extract_windows(waveform, SAMPLING_RATE).input_values[:, 0]
    for window in range(ours.shape[0]):
        reference = librosa_window_image(padded_window(waveform, window * 44100))
        difference = np.abs(ours[window] - reference)
        assert difference.mean() < 0.015
        assert np.percentile(difference[:, 3:-3], 99) < 0.025


@pytest.mark.parametrize("block_windows", [1, 4, 100])
def test_blocks_do_not_change_the_result(feature_extractor, song_30s, block_windows):
    whole = feature_extractor.extract_windows(song_30s, SAMPLING_RATE).input_values
    blocks = list(feature_extractor.iter_windows(song_30s, SAMPLING_RATE, block_windows=block_windows))
    assert max(block.input_values.shape[0] for block in blocks) <= block_windows
    np.testing.assert_allclose(np.concatenate([b.input_values for b in blocks]), whole, atol=1e-6)


def test_digital_silence_gives_zeros(feature_extractor):
    result = feature_extractor.extract_windows(np.zeros(SAMPLING_RATE * 5, dtype=np.float32), SAMPLING_RATE)
    assert np.all(result.input_values == 0)


@pytest.mark.parametrize(
    "waveform, sampling_rate, message",
    [
        (np.zeros(44100, dtype=np.float32), 44100, "22050 Hz"),
        (np.array([0.0, np.nan, 0.1], dtype=np.float32), 22050, "NaN or infinite"),
        (np.array([0.0, np.inf], dtype=np.float32), 22050, "NaN or infinite"),
        (np.zeros(0, dtype=np.float32), 22050, "empty"),
        (np.zeros((2, 22050), dtype=np.float32), 22050, "mono 1-D"),
        (np.array(["a", "b"]), 22050, "real-valued"),
    ],
)
def test_bad_input_raises_value_error(feature_extractor, waveform, sampling_rate, message):
    with pytest.raises(ValueError, match=message):
        feature_extractor.extract_windows(waveform, sampling_rate)


def test_call_batches_songs_with_a_window_mask(feature_extractor):
    short, long = synth_music(3.0, seed=6), synth_music(9.0, seed=7)
    batch = feature_extractor([short, long], sampling_rate=SAMPLING_RATE, return_tensors="pt")
    assert batch["input_values"].shape == (2, 4, 1, 216, 144)
    assert batch["window_mask"].tolist() == [[True, False, False, False], [True, True, True, True]]
    assert torch.all(batch["input_values"][0, 1:] == 0)
    single = feature_extractor(long, sampling_rate=SAMPLING_RATE, return_tensors="np")
    assert single["input_values"].shape == (1, 4, 1, 216, 144)
    np.testing.assert_array_equal(single["input_values"][0], batch["input_values"][1].numpy())


def test_saved_config_describes_the_mask_it_returns(tmp_path, feature_extractor):
    """The extractor returns `window_mask`, not an `attention_mask`: its saved config must not promise one."""
    import json

    feature_extractor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved.get("return_attention_mask") is False
    batch = feature_extractor(np.zeros(SAMPLING_RATE * 5, dtype=np.float32) + 0.1, sampling_rate=SAMPLING_RATE)
    assert set(batch) == {"input_values", "window_mask"}


def test_save_and_load(tmp_path, song_30s):
    extractor = GenreViTFeatureExtractor(db_top_db=60.0)
    extractor.save_pretrained(tmp_path)
    assert (tmp_path / "preprocessor_config.json").exists()
    loaded = GenreViTFeatureExtractor.from_pretrained(tmp_path)
    assert loaded.to_dict() == extractor.to_dict()
    assert loaded.db_top_db == 60.0 and "mel_filters" not in loaded.to_dict()
    np.testing.assert_array_equal(
        loaded.extract_windows(song_30s, SAMPLING_RATE).input_values,
        extractor.extract_windows(song_30s, SAMPLING_RATE).input_values,
    )


@pytest.mark.parametrize("n_fft, n_mels, bands_per_group", [(2048, 128, 16), (512, 128, 7), (2048, 40, 64)])
def test_banded_filter_groups_give_the_dense_product(n_fft, n_mels, bands_per_group):
    # (512, 128): a 512-point FFT has too few low bins for 128 bands, so some filters are all zero.
    filters = torch.from_numpy(
        mel_filter_bank(n_fft // 2 + 1, n_mels, 0.0, 11025.0, 22050, norm="slaney", mel_scale="slaney")
    ).float()
    groups = banded_filter_groups(filters, bands_per_group)
    assert [group[0] for group in groups] == list(range(0, n_mels, bands_per_group))
    assert groups[-1][1] == n_mels
    power = torch.rand(300, filters.shape[0])
    banded = torch.zeros(300, n_mels)
    for first_band, last_band, first_row, last_row, group_filters in groups:
        banded[:, first_band:last_band] = power[:, first_row:last_row] @ group_filters
        outside = torch.ones(filters.shape[0], dtype=torch.bool)
        outside[first_row:last_row] = False
        assert not filters[outside, first_band:last_band].any()  # no non-zero weight left out
    torch.testing.assert_close(banded, power @ filters, rtol=1e-5, atol=1e-6)


def test_front_end_on_crops_gives_the_windows_of_the_song(feature_extractor, song_30s):
    """Batches of crops (training and distillation on a GPU) give the windows the analysis computes from the whole
    song, to float rounding: one front end for both."""
    front_end = feature_extractor.front_end
    starts = feature_extractor.window_start_samples(song_30s.shape[0])
    expected = feature_extractor.extract_windows(song_30s, SAMPLING_RATE).input_values
    half = feature_extractor.n_fft // 2
    padded = np.pad(song_30s, (half, half + feature_extractor.n_fft))  # zeros past the end, as the STFT sees
    first_samples = feature_extractor._first_frames(starts) * feature_extractor.hop_length
    crop = (feature_extractor.frames_per_window - 1) * feature_extractor.hop_length + feature_extractor.n_fft
    crops = torch.from_numpy(np.stack([padded[first : first + crop] for first in first_samples]))
    with torch.inference_mode():
        images = front_end(crops).numpy()
    assert images.shape == expected.shape
    np.testing.assert_allclose(images, expected, rtol=0, atol=2e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_front_end_on_a_gpu_gives_the_cpu_images(feature_extractor, song_30s):
    front_end = LogMelFrontEnd(feature_extractor)
    crop = (front_end.frames_per_window - 1) * front_end.hop_length + front_end.n_fft
    crops = torch.from_numpy(np.stack([song_30s[:crop], song_30s[44100 : 44100 + crop]]))
    with torch.inference_mode():
        on_cpu = front_end(crops)
        on_gpu = front_end.to("cuda")(crops.to("cuda")).cpu()
    torch.testing.assert_close(on_gpu, on_cpu, rtol=0, atol=1e-4)
