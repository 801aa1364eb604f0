"""GenreViT's features: a mono 22,050 Hz waveform -> 4-s log-Mel windows as 216x144 images in [0, 1].

Units: waveforms are in samples, spectrograms in STFT frames, times in seconds.

The chosen definition (what "4-s windows with a 2-s hop" means here, exactly):

1. Windows (the window rule, the one place where it is defined): audio of `n` samples no longer than one window
   (`window_samples` = 4 s = 88,200 samples) gives one window at sample 0, zero-padded at the end; this is the only
   window that ever holds padding. Longer audio gives windows at `k * hop_samples` (`hop_samples` = 2 s = 44,100
   samples) for every `k` whose window ends inside the audio, plus, where those leave a tail uncovered, one last
   window that ends exactly where the audio ends (it overlaps its neighbour by more than the usual 2 s). So every
   sample is covered, no window is padded, and the count is `1 + ceil((n - window_samples) / hop_samples)`:
   4.0 s -> 1 window at 0 s; 4.1 s -> 2 at 0 and 0.1 s; 30.0 s -> 14 at 0, 2, ..., 26 s; 30.013 s -> 15, the last at
   26.013 s; 31 s -> 15, the last at 27 s. (Before, the last window started on the 2-s grid and was padded: a
   30.013-s GTZAN clip got a window at 28 s holding 2 s of audio and 2 s of zeros.)
2. Spectrogram: one power STFT over the whole signal (`n_fft` 2048, periodic Hann window of 2048, hop 64, frames
   centred on sample `i * 64` with zeros outside the signal, as librosa's `center=True, pad_mode="constant"`), then
   a 128-band Slaney Mel filterbank from 0 to 11,025 Hz. It is computed once and sliced; for long signals it is
   computed block by block with `n_fft // 2` samples of context, which gives the same frames.
3. A window starting at sample `s` takes the `1 + window_samples // 64` = 1,379 frames starting at frame
   `round(s / 64)`. Because 44,100 is not a multiple of 64, that start lies up to 32 samples (1.5 ms) from `s`.
   The frames at the window's two edges (16 frames each side) see the neighbouring audio instead of the zero
   padding a separate per-window STFT would see; everywhere else the frames equal a per-window librosa
   computation to float32 precision. After the whole recipe, the two definitions differ on music by less than
   0.015 on average per window (on the [0, 1] scale), 99% of the non-edge pixels by less than 0.025, and the
   outermost columns by up to about 0.5 (tests/test_feature_extraction.py measures all three). Training and
   inference both use this definition, so the model never sees the other one.
4. Per window: power to dB with `ref` = the window's maximum, `amin` 1e-10 and `top_db` 80, then min-max to
   [0, 1] (a constant window, e.g. digital silence, gives zeros), then a bilinear resize (half-pixel centres, no
   antialiasing: `torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`) of the
   (128 Mel x 1,379 frame) image to (216 x 144). Rows run from low to high frequency, columns forward in time.

The computation is one torch module, `LogMelFrontEnd`: `torch.stft`, the Slaney Mel filter bank (`mel_filter_bank`:
librosa's and `transformers.audio_utils`' to 1e-10, tested), and the dB, scaling and resize in torch, on the CPU or
a GPU. It serves the analysis, training's featurisation, distillation on a GPU (batches of random crops) and the
saved remote code. `LogMelWindowing` applies it to numpy waveforms with the window rule, and
`GenreViTFeatureExtractor` (feature_extraction_genre_vit.py) is that as a Hugging Face feature extractor (saved as
`preprocessor_config.json`, batches for the model, the Auto classes). librosa is not needed: the features compute
where it is missing (a bare GPU machine, a `trust_remote_code` checkout).
"""

import inspect
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .network import read_json

logger = logging.getLogger(__name__)

_STFT_CHUNK_FRAMES = 1024
"""STFT frames transformed and reduced to Mel bands at a time: their spectrum (8 MB) is still in the cache when it is
squared and projected. A 3-minute song's window features took 164-169 ms in chunks of 512-1,024 frames, against 238 ms
in chunks of 4,096 (33 MB) and 212 ms in chunks of 128, with the same images to the bit."""

PREPROCESSOR_CONFIG_FILE = "preprocessor_config.json"


# The Mel filter bank is written here rather than imported from transformers.audio_utils (whose import costs a cold
# command line about 0.57 s, the budget's margin) or librosa (0.9 s); tests hold it to both, to 1e-10 and 1e-7.
_SLANEY_MIN_LOG_HERTZ = 1000.0
_SLANEY_MIN_LOG_MEL = 15.0
_SLANEY_LOG_STEP = 27.0 / np.log(6.4)


def hertz_to_mel(frequencies: np.ndarray, mel_scale: str = "slaney") -> np.ndarray:
    """Hz -> Mel on the `"slaney"` scale (linear below 1 kHz, logarithmic above; librosa's default) or `"htk"`."""
    frequencies = np.asarray(frequencies, dtype=np.float64)
    if mel_scale == "htk":
        return 2595.0 * np.log10(1.0 + frequencies / 700.0)
    if mel_scale != "slaney":
        raise ValueError(f"mel_scale must be 'slaney' or 'htk', got {mel_scale!r}.")
    mels = 3.0 * frequencies / 200.0
    log_region = frequencies >= _SLANEY_MIN_LOG_HERTZ
    return np.where(
        log_region,
        _SLANEY_MIN_LOG_MEL
        + np.log(np.maximum(frequencies, _SLANEY_MIN_LOG_HERTZ) / _SLANEY_MIN_LOG_HERTZ) * _SLANEY_LOG_STEP,
        mels,
    )


def mel_to_hertz(mels: np.ndarray, mel_scale: str = "slaney") -> np.ndarray:
    """Mel -> Hz, the inverse of `hertz_to_mel`."""
    mels = np.asarray(mels, dtype=np.float64)
    if mel_scale == "htk":
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    if mel_scale != "slaney":
        raise ValueError(f"mel_scale must be 'slaney' or 'htk', got {mel_scale!r}.")
    frequencies = 200.0 * mels / 3.0
    log_region = mels >= _SLANEY_MIN_LOG_MEL
    return np.where(
        log_region, _SLANEY_MIN_LOG_HERTZ * np.exp((mels - _SLANEY_MIN_LOG_MEL) / _SLANEY_LOG_STEP), frequencies
    )


def mel_filter_bank(
    num_frequency_bins: int,
    num_mel_filters: int,
    min_frequency: float,
    max_frequency: float,
    sampling_rate: int,
    norm: str | None = "slaney",
    mel_scale: str = "slaney",
) -> np.ndarray:
    """`(num_frequency_bins, num_mel_filters)` triangular Mel filters over the bins of an FFT from 0 Hz to
    `sampling_rate // 2`, with corners equally spaced on the Mel scale between `min_frequency` and `max_frequency`
    (Hz); `norm="slaney"` scales each filter to unit area in Hz, as librosa's `filters.mel(norm="slaney")`."""
    if norm not in (None, "slaney"):
        raise ValueError(f"mel_norm must be 'slaney' or None, got {norm!r}.")
    corners = mel_to_hertz(
        np.linspace(
            hertz_to_mel(min_frequency, mel_scale), hertz_to_mel(max_frequency, mel_scale), num_mel_filters + 2
        ),
        mel_scale,
    )
    bin_frequencies = np.linspace(0, sampling_rate // 2, num_frequency_bins)
    widths = np.diff(corners)
    slopes = corners[None, :] - bin_frequencies[:, None]
    rising = -slopes[:, :-2] / widths[:-1]
    falling = slopes[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        filters *= 2.0 / (corners[2 : num_mel_filters + 2] - corners[:num_mel_filters])
    return filters


def banded_filter_groups(
    filters: torch.Tensor, bands_per_group: int = 16
) -> list[tuple[int, int, int, int, torch.Tensor]]:
    """Split a `(bins, bands)` filter matrix into groups of `bands_per_group` adjacent bands, each with the rows
    (bins) where any of its filters is non-zero: `(first_band, last_band, first_row, last_row, filters)`, ends
    exclusive. Why: a Mel filter covers a few neighbouring bins, so the dense product spends 87% of its work on
    zeros (128 Slaney bands of a 2048-point FFT); products over the groups' bins alone give the same sums 3x
    faster."""
    groups = []
    for first_band in range(0, filters.shape[1], bands_per_group):
        last_band = min(first_band + bands_per_group, filters.shape[1])
        rows = torch.nonzero(filters[:, first_band:last_band].any(dim=1)).flatten()
        first_row, last_row = (int(rows[0]), int(rows[-1]) + 1) if rows.numel() else (0, 0)
        groups.append(
            (first_band, last_band, first_row, last_row, filters[first_row:last_row, first_band:last_band].contiguous())
        )
    return groups


class LogMelFrontEnd(torch.nn.Module):
    """GenreViT's log-Mel front end as a torch module, on whatever device it is moved to.

    Shapes and units: waveforms in samples at `sampling_rate` Hz; STFT frames of `n_fft` samples every `hop_length`;
    `M` = `n_mels` bands; images `(1, F, W)` = `(1, num_frequency_bins, num_time_frames)` in [0, 1].

    - `mel_power(segment)`: `(samples,)` or `(B, samples)` -> `(frames, M)` or `(B, frames, M)` power Mel
      spectrogram of the segment's frames (frame `i` covers samples `i * hop ... i * hop + n_fft`: pad the segment
      yourself for centred frames).
    - `window_images(mel_power, first_frames)`: `(frames, M)` and `(windows,)` first frames -> `(windows, 1, F, W)`.
    - `forward(crops)`: `(B, crop_samples)` crops, each one window of `frames_per_window` frames -> `(B, 1, F, W)`
      (training on random crops, distillation on a GPU).

    Args:
        parameters: what the front end computes, as the attributes of a `LogMelWindowing` (or the feature
            extractor, which is one): `sampling_rate`, `n_fft`, `win_length`, `hop_length`, `n_mels`, `f_min`,
            `f_max`, `mel_scale`, `mel_norm`, `power`, `db_amin`, `db_top_db`, `num_frequency_bins`,
            `num_time_frames` and `frames_per_window`; `LogMelWindowing` documents each and sets every one.
    """

    def __init__(self, parameters: "LogMelWindowing"):
        super().__init__()
        n_fft, win_length, n_mels = parameters.n_fft, parameters.win_length, parameters.n_mels
        frames_per_window, num_time_frames = parameters.frames_per_window, parameters.num_time_frames
        if win_length > n_fft:
            raise ValueError(f"win_length ({win_length}) must not exceed n_fft ({n_fft}).")
        if parameters.mel_norm not in (None, "slaney"):
            raise ValueError(f"mel_norm must be 'slaney' or None, got {parameters.mel_norm!r}.")
        self.n_fft, self.hop_length, self.n_mels, self.power = n_fft, parameters.hop_length, n_mels, parameters.power
        self.db_amin, self.db_top_db = parameters.db_amin, parameters.db_top_db
        self.image_size = (parameters.num_frequency_bins, num_time_frames)
        self.frames_per_window = frames_per_window
        # A periodic Hann window of win_length, centred in n_fft (librosa's and torch.stft's convention).
        left = (n_fft - win_length) // 2
        hann = torch.hann_window(win_length, periodic=True, dtype=torch.float64)
        self.register_buffer("window", torch.nn.functional.pad(hann, (left, n_fft - win_length - left)).float())
        filters = mel_filter_bank(
            num_frequency_bins=n_fft // 2 + 1,
            num_mel_filters=n_mels,
            min_frequency=parameters.f_min,
            max_frequency=parameters.f_max,
            sampling_rate=parameters.sampling_rate,
            norm=parameters.mel_norm,
            mel_scale=parameters.mel_scale,
        )
        self.register_buffer("mel_filters", torch.from_numpy(filters).float())  # (bins, M)
        # The time positions torch's bilinear resize reads for the W image columns (align_corners=False):
        # scale * (column + 0.5) - 0.5, at least 0, in float32.
        scale = torch.tensor(frames_per_window, dtype=torch.float32) / num_time_frames
        position = (scale * (torch.arange(num_time_frames, dtype=torch.float32) + 0.5) - 0.5).clamp_min(0)
        left_column = position.long()
        self.register_buffer("left_frames", left_column)
        self.register_buffer("right_frames", (left_column + 1).clamp_max(frames_per_window - 1))
        self.register_buffer("right_weights", position - left_column.float())
        # On a CPU the Mel product runs over each group of bands' non-zero bins only (`banded_filter_groups`), with
        # the real and imaginary parts side by side: the same sums, 3x faster than the dense product.
        self._cpu_filter_groups = banded_filter_groups(self.mel_filters.repeat_interleave(2, dim=0))

    def mel_power(self, segment: torch.Tensor, hop_length: int | None = None) -> torch.Tensor:
        """`(samples,)` -> `(frames, M)`, or `(B, samples)` -> `(B, frames, M)` (see the class); `hop_length` in
        samples overrides the front end's hop (the song overview's coarse frames)."""
        hop_length = hop_length or self.hop_length
        if segment.ndim == 2 or segment.device.type != "cpu" or self.power != 2.0:
            spectrum = torch.stft(
                segment, self.n_fft, hop_length, self.n_fft, self.window, center=False, return_complex=True
            )
            magnitude = torch.view_as_real(spectrum).square().sum(-1)  # power: |X|^2
            if self.power != 2.0:
                magnitude = magnitude ** (self.power / 2.0)
            return torch.matmul(magnitude.transpose(-1, -2), self.mel_filters)
        num_frames = 1 + (segment.shape[0] - self.n_fft) // hop_length
        mel_power = torch.empty(num_frames, self.n_mels, dtype=torch.float32)
        for chunk_start in range(0, num_frames, _STFT_CHUNK_FRAMES):
            chunk_frames = min(_STFT_CHUNK_FRAMES, num_frames - chunk_start)
            first_sample = chunk_start * hop_length
            last_sample = first_sample + (chunk_frames - 1) * hop_length + self.n_fft
            spectrum = torch.stft(
                segment[first_sample:last_sample],
                self.n_fft,
                hop_length,
                self.n_fft,
                self.window,
                center=False,
                return_complex=True,
            )
            # torch.stft's (bins, frames) result is a view of a frames-major buffer: working on its transpose, with
            # real and imaginary parts side by side, reads memory in order, and squaring each group's columns just
            # before its product reads them while they are in cache.
            parts = torch.view_as_real(spectrum.T).reshape(chunk_frames, -1)
            for first_band, last_band, first_row, last_row, filters in self._cpu_filter_groups:
                torch.matmul(
                    parts[:, first_row:last_row].square(),
                    filters,
                    out=mel_power[chunk_start : chunk_start + chunk_frames, first_band:last_band],
                )
        return mel_power

    def window_images(self, mel_power: torch.Tensor, first_frames: torch.Tensor) -> torch.Tensor:
        """`(frames, M)` Mel power and the first frame of each window `(windows,)` -> `(windows, 1, F, W)`: each
        window's dB (relative to its loudest bin, floored `db_top_db` below it), min-max scaled to [0, 1] and
        resized bilinearly (no antialiasing, `align_corners=False`) from `(M, frames_per_window)` to `(F, W)`.

        What the resize reads is computed, and nothing more. Windows overlap (by half on the 2-s grid), so the dB of
        each frame is taken once; a window's scaling needs only its loudest and quietest bin, found from each frame's
        own; and the resize reads two neighbouring frames for each of the `W` image columns (288 of a window's 1,379
        frames), so only those are scaled. The time axis is interpolated here at the positions torch's bilinear
        resize uses, then the Mel axis by `torch.nn.functional.interpolate` (which leaves the already sized time
        axis as it is): the same images, up to float rounding, as scaling every frame and resizing both axes at
        once, in a fifth of the time.
        """
        decibels = 10.0 * torch.log10(mel_power.clamp_min(self.db_amin))
        loudest = decibels.amax(dim=1).unfold(0, self.frames_per_window, 1)[first_frames].amax(dim=1)
        quietest = decibels.amin(dim=1).unfold(0, self.frames_per_window, 1)[first_frames].amin(dim=1)
        top = loudest[:, None, None]
        floor = torch.maximum(quietest[:, None, None], top - self.db_top_db)
        span = top - floor
        has_range = span > 0
        safe_span = torch.where(has_range, span, torch.ones_like(span))

        def scaled(frame_offsets: torch.Tensor) -> torch.Tensor:  # (windows, W, M) in [0, 1]
            values = decibels[first_frames[:, None] + frame_offsets]
            return torch.where(has_range, (torch.maximum(values, floor) - floor) / safe_span, 0.0)

        left = scaled(self.left_frames)
        columns = left + self.right_weights[None, :, None] * (scaled(self.right_frames) - left)
        return torch.nn.functional.interpolate(
            columns.transpose(1, 2).unsqueeze(1), size=self.image_size, mode="bilinear", align_corners=False
        )

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """`(B, crop_samples)` -> `(B, 1, F, W)`: the window of `frames_per_window` frames at the start of each
        crop (`crop_samples >= (frames_per_window - 1) * hop_length + n_fft`)."""
        mel_power = self.mel_power(crops)[:, : self.frames_per_window]
        batch = mel_power.shape[0]
        first_frames = torch.arange(batch, device=crops.device) * self.frames_per_window
        return self.window_images(mel_power.reshape(-1, self.n_mels), first_frames)


def padded_segment(waveform: np.ndarray, first_sample: int, num_samples: int) -> np.ndarray:
    """`(num_samples,)` float32 samples of `waveform` from `first_sample` (which may be negative), with zeros where
    the span reaches outside the waveform: what the STFT's centred frames see at a signal's edges."""
    segment = np.zeros(num_samples, dtype=np.float32)
    source_start, source_stop = max(first_sample, 0), min(first_sample + num_samples, waveform.shape[0])
    if source_stop > source_start:
        segment[source_start - first_sample : source_stop - first_sample] = waveform[source_start:source_stop]
    return segment


def parameter_names() -> tuple[str, ...]:
    """The parameters of `LogMelWindowing`: what a saved `preprocessor_config.json` holds besides bookkeeping."""
    return tuple(inspect.signature(LogMelWindowing.__init__).parameters)[1:]


@dataclass(frozen=True)
class SpectrogramWindows:
    """Windows of one waveform.

    Attributes:
        input_values: `(windows, 1, num_frequency_bins, num_time_frames)` float32 images in [0, 1].
        start_times: `(windows,)` window start times in seconds.
        has_music: `(windows,)` bool, False for windows without music (`window_has_music`); computed by
            `extract_windows` (the blocks of `iter_windows` leave it None: the analysis computes it once per song).
    """

    input_values: np.ndarray
    start_times: np.ndarray
    has_music: np.ndarray | None = None


MUSIC_MIN_RMS_DBFS = -60.0
"""A window whose RMS level (dB relative to full scale) is below this holds no music: digital silence, or the hiss
of a quiet gap. It is left out of the song's mean and its sections, and drawn as a gap. Quiet music sits well above
it (the softest GTZAN classical windows are around -45 dBFS)."""


def window_has_music(waveform: np.ndarray, start_samples: np.ndarray, window_samples: int) -> np.ndarray:
    """`(T,)` bool: whether each window of `window_samples` from `start_samples` reaches `MUSIC_MIN_RMS_DBFS` (RMS
    over the audio it holds; a window padded past the end counts only its audio).

    The one rule for which windows count in a song's score: the analysis, the whole-song forward (through the
    feature extractor's `window_mask`) and evaluation all use it."""
    threshold = 10 ** (MUSIC_MIN_RMS_DBFS / 10)  # mean square, full scale = 1
    starts = np.clip(np.asarray(start_samples, dtype=np.int64), 0, waveform.shape[0])
    ends = np.minimum(starts + window_samples, waveform.shape[0])
    # one pass over the song: sums of squares of any stretch from a running total
    energy = np.concatenate([[0.0], np.cumsum(np.square(waveform, dtype=np.float64))])
    counts = ends - starts
    return (counts > 0) & (energy[ends] - energy[starts] >= threshold * np.maximum(counts, 1))


class LogMelWindowing:
    r"""
    Turns mono waveforms at `sampling_rate` into GenreViT's log-Mel window images (see the module docstring for the
    exact definition).

    Stereo or other multi-channel audio must be mixed down first: [`genre_vit.audio.load_audio`] decodes any file to
    mono at 22,050 Hz, and `genre_vit.audio.to_mono(waveform, sampling_rate)` does it for arrays.

    Args:
        sampling_rate (`int`, defaults to 22050): required sampling rate of the input, in Hz.
        window_seconds (`float`, defaults to 4.0): window length, in seconds.
        window_hop_seconds (`float`, defaults to 2.0): distance between window starts, in seconds.
        n_fft (`int`, defaults to 2048): FFT size, in samples.
        win_length (`int`, defaults to 2048): length of the Hann analysis window, in samples (<= n_fft).
        hop_length (`int`, defaults to 64): STFT hop, in samples.
        n_mels (`int`, defaults to 128): Mel bands.
        f_min (`float`, defaults to 0.0), f_max (`float`, defaults to 11025.0): Mel filterbank range, in Hz.
        mel_scale (`str`, defaults to `"slaney"`) and mel_norm (`str`, defaults to `"slaney"`): librosa's defaults
            (`htk=False`, `norm="slaney"`), stated explicitly.
        power (`float`, defaults to 2.0): exponent of the magnitude spectrogram (2 = power).
        db_amin (`float`, defaults to 1e-10), db_top_db (`float`, defaults to 80.0): `power_to_db` floor and dynamic
            range; the dB reference is each window's maximum.
        num_frequency_bins (`int`, defaults to 216), num_time_frames (`int`, defaults to 144): output image size.
        block_windows (`int`, defaults to 32): windows computed per block, which bounds memory for long signals.
    """

    def __init__(
        self,
        sampling_rate: int = 22050,
        window_seconds: float = 4.0,
        window_hop_seconds: float = 2.0,
        n_fft: int = 2048,
        win_length: int = 2048,
        hop_length: int = 64,
        n_mels: int = 128,
        f_min: float = 0.0,
        f_max: float = 11025.0,
        mel_scale: str = "slaney",
        mel_norm: str = "slaney",
        power: float = 2.0,
        db_amin: float = 1e-10,
        db_top_db: float = 80.0,
        num_frequency_bins: int = 216,
        num_time_frames: int = 144,
        block_windows: int = 32,
    ):
        if window_hop_seconds <= 0 or window_seconds <= 0:
            raise ValueError("window_seconds and window_hop_seconds must be positive.")
        self.sampling_rate = sampling_rate
        self.window_seconds = window_seconds
        self.window_hop_seconds = window_hop_seconds
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.f_min = f_min
        self.f_max = f_max
        self.mel_scale = mel_scale
        self.mel_norm = mel_norm
        self.power = power
        self.db_amin = db_amin
        self.db_top_db = db_top_db
        self.num_frequency_bins = num_frequency_bins
        self.num_time_frames = num_time_frames
        self.block_windows = block_windows
        self._front_end = None

    @property
    def front_end(self) -> LogMelFrontEnd:
        """The torch front end of these parameters, built on first use: building runs torch operations, and a
        process that has run them must not fork `datasets.map` workers (their thread pools can deadlock)."""
        if self._front_end is None:
            self._front_end = LogMelFrontEnd(self)
        return self._front_end

    @classmethod
    def from_folder(cls, folder) -> "LogMelWindowing":
        """The windowing of a saved model folder's `preprocessor_config.json`, read without transformers."""
        values = read_json(Path(folder) / PREPROCESSOR_CONFIG_FILE)
        return cls(**{name: values[name] for name in parameter_names() if name in values})

    # ------------------------------------------------------------------ the window grid
    @property
    def window_samples(self) -> int:
        """Window length in samples (88,200 by default)."""
        return int(round(self.window_seconds * self.sampling_rate))

    @property
    def hop_samples(self) -> int:
        """Distance between window starts in samples (44,100 by default)."""
        return int(round(self.window_hop_seconds * self.sampling_rate))

    @property
    def frames_per_window(self) -> int:
        """STFT frames per window before the resize (1,379 by default)."""
        return 1 + self.window_samples // self.hop_length

    def window_start_samples(self, num_samples: int) -> np.ndarray:
        """`(windows,)` first sample of each window of a signal of `num_samples` samples (the window rule of the
        module docstring): the 2-s grid while windows fit, then one window ending at the last sample."""
        overhang = num_samples - self.window_samples
        if overhang <= 0:
            return np.zeros(1, dtype=np.int64)
        starts = np.arange(overhang // self.hop_samples + 1, dtype=np.int64) * self.hop_samples
        if starts[-1] < overhang:
            starts = np.append(starts, overhang)
        return starts

    def num_windows(self, num_samples: int) -> int:
        """Windows for a signal of `num_samples` samples (at least one)."""
        return int(self.window_start_samples(num_samples).shape[0])

    def window_start_times(self, num_samples: int) -> np.ndarray:
        """`(windows,)` start time of each window, in seconds."""
        return self.window_start_samples(num_samples) / self.sampling_rate

    def _first_frames(self, start_samples: np.ndarray) -> np.ndarray:
        """Index of the first STFT frame of windows starting at `start_samples`: `round(start / hop_length)`."""
        return (2 * start_samples + self.hop_length) // (2 * self.hop_length)

    # ------------------------------------------------------------------ checks
    def _validate_waveform(self, waveform, sampling_rate: int | None) -> np.ndarray:
        if sampling_rate is None:
            logger.warning(
                "No sampling_rate given to %s; assuming %d Hz. Pass sampling_rate to catch mismatches.",
                type(self).__name__,
                self.sampling_rate,
            )
        elif sampling_rate != self.sampling_rate:
            raise ValueError(
                f"The waveform is sampled at {sampling_rate} Hz but GenreViT needs {self.sampling_rate} Hz. "
                "Resample it first, e.g. with genre_vit.audio.resample or by loading the file with "
                "genre_vit.audio.load_audio."
            )
        waveform = np.asarray(waveform)
        if waveform.ndim != 1:
            raise ValueError(
                f"Expected a mono 1-D waveform, got an array of shape {waveform.shape}. Mix multi-channel audio "
                "down to mono first (genre_vit.audio.to_mono), and pass a batch as a list of 1-D waveforms."
            )
        if waveform.size == 0:
            raise ValueError("The waveform is empty (0 samples).")
        if not np.issubdtype(waveform.dtype, np.number) or np.iscomplexobj(waveform):
            raise ValueError(f"Expected real-valued samples, got dtype {waveform.dtype}.")
        waveform = waveform.astype(np.float32, copy=False)
        if not np.isfinite(waveform).all():
            raise ValueError("The waveform contains NaN or infinite samples.")
        return waveform

    # ------------------------------------------------------------------ computation
    def _mel_power_frames(
        self, waveform: np.ndarray, first_frame: int, num_frames: int, hop_length: int | None = None
    ) -> np.ndarray:
        """`(num_frames, n_mels)` Mel power of STFT frames `first_frame ...`, frame `i` centred on sample
        `i * hop_length` (default: the extractor's hop), with zeros outside the waveform."""
        hop_length = hop_length or self.hop_length
        start = first_frame * hop_length - self.n_fft // 2
        segment = padded_segment(waveform, start, (num_frames - 1) * hop_length + self.n_fft)
        return self.front_end.mel_power(torch.from_numpy(segment), hop_length).numpy()

    def iter_windows(
        self,
        waveform: np.ndarray,
        sampling_rate: int | None = None,
        block_windows: int | None = None,
        validate: bool = True,
    ) -> Iterator[SpectrogramWindows]:
        """Yield the windows of one waveform in blocks of `block_windows`, computing the STFT once per block.

        Memory stays bounded by the block, whatever the length of the waveform. `validate=False` skips the input
        checks for a waveform that is known to be a finite mono float32 array at `sampling_rate` (e.g. from
        `genre_vit.audio.prepare_waveform`), saving a pass over a long signal.
        """
        if validate:
            waveform = self._validate_waveform(waveform, sampling_rate)
        block_windows = block_windows or self.block_windows
        all_starts = self.window_start_samples(waveform.shape[0])
        for block_start in range(0, len(all_starts), block_windows):
            starts = all_starts[block_start : block_start + block_windows]
            yield SpectrogramWindows(
                input_values=self.windows_at(waveform, starts), start_times=starts / self.sampling_rate
            )

    def windows_at(self, waveform: np.ndarray, start_samples: np.ndarray) -> np.ndarray:
        """The windows `(n, 1, F, W)` that start at `start_samples` (ascending) of a prepared mono float32 waveform at
        the extractor's rate: the STFT is computed once over the frames they span, so overlapping windows share it.
        Every window of the analysis, the live microphone, the explanations and training is computed here."""
        first_frames = self._first_frames(np.asarray(start_samples, dtype=np.int64))
        span = int(first_frames[-1] - first_frames[0]) + self.frames_per_window
        mel_frames = self._mel_power_frames(waveform, int(first_frames[0]), span)
        images = self.front_end.window_images(
            torch.from_numpy(mel_frames), torch.from_numpy(first_frames - first_frames[0])
        )
        return images.numpy()

    def song_spectrogram(
        self, waveform: np.ndarray, frames_per_second: float = 10.0, bands: int = 64, top_db: float = 80.0
    ) -> np.ndarray:
        """A coarse log-Mel overview of a whole prepared waveform, for drawing: `(bands, frames)` float16 in [0, 1]
        (band 0 the lowest; `frames_per_second` frames per second of audio; 0 is `top_db` dB below the song's
        loudest bin, 1 the loudest). The extractor's Mel bands are averaged in groups of `n_mels // bands`.

        Memory stays bounded: the song is transformed one minute of frames at a time.
        """
        if self.n_mels % bands:
            raise ValueError(f"bands must divide n_mels ({self.n_mels}), got {bands}.")
        hop_length = max(1, int(round(self.sampling_rate / frames_per_second)))
        num_frames = max(1, -(-waveform.shape[0] // hop_length))
        chunk = int(60 * frames_per_second)
        decibels = np.empty((bands, num_frames), dtype=np.float32)
        for first in range(0, num_frames, chunk):
            count = min(chunk, num_frames - first)
            power = self._mel_power_frames(waveform, first, count, hop_length=hop_length)
            power = power.reshape(count, bands, self.n_mels // bands).mean(axis=2)
            decibels[:, first : first + count] = 10.0 * np.log10(np.maximum(power.T, self.db_amin))
        floor = decibels.max() - top_db
        return ((np.maximum(decibels, floor) - floor) / top_db).astype(np.float16)

    def extract_windows(self, waveform: np.ndarray, sampling_rate: int | None = None) -> SpectrogramWindows:
        """All windows of one mono waveform: `input_values` `(windows, 1, F, W)`, `start_times` `(windows,)` s and
        `has_music` `(windows,)`."""
        waveform = self._validate_waveform(waveform, sampling_rate)
        blocks = list(self.iter_windows(waveform, validate=False))
        return SpectrogramWindows(
            input_values=np.concatenate([block.input_values for block in blocks]),
            start_times=np.concatenate([block.start_times for block in blocks]),
            has_music=window_has_music(waveform, self.window_start_samples(waveform.shape[0]), self.window_samples),
        )


__all__ = [
    "MUSIC_MIN_RMS_DBFS",
    "LogMelWindowing",
    "SpectrogramWindows",
    "LogMelFrontEnd",
    "banded_filter_groups",
    "mel_filter_bank",
    "padded_segment",
    "parameter_names",
    "window_has_music",
]
