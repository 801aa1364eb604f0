"""Live analysis of audio that arrives in chunks (a microphone): genre per window as soon as each window is heard.

`LiveAnalysis.add(chunk, sampling_rate)` takes each new piece of audio (any rate, mono or `(samples, channels)`,
float or integer PCM), resamples it as one continuous stream, and runs the model on every window of the 2-s grid
that is now complete, so the genre over time grows by one window per hop. `result()` gives a `GenreAnalysis` of what
was heard so far; `finish()` the final one, by the same full analysis as a file (`GenreClassifier.analyze`), which
also adds the last window that ends with the audio.

A grid window is computed once its audio and the half FFT frame after it have arrived, so its probabilities equal
those of the full analysis of the same audio.
"""

import time

import numpy as np

from .analysis import SPECTROGRAM_FRAMES_PER_SECOND, GenreClassifier, window_has_music
from .audio import AudioTooLongError, GrowingBuffer, format_duration, to_mono
from .results import GenreAnalysis


def pcm_to_float(samples: np.ndarray) -> np.ndarray:
    """Mono float32 in [-1, 1] from `(samples,)` or `(samples, channels)` float or integer PCM."""
    samples = np.asarray(samples)
    if np.issubdtype(samples.dtype, np.integer):
        samples = samples.astype(np.float32) / float(-np.iinfo(samples.dtype).min)
    samples = samples.astype(np.float32, copy=False)
    return to_mono(samples, channel_axis=1)


class LiveAnalysis:
    """Windows of a growing recording, analysed as they complete (module docstring).

    Args:
        classifier: the model and feature extractor.
        max_seconds: longer recordings raise `AudioTooLongError` (the microphone's limit).
    """

    def __init__(self, classifier: GenreClassifier, max_seconds: float | None = None):
        self.classifier = classifier
        self.extractor = classifier.feature_extractor
        self.max_seconds = max_seconds
        self._buffer = GrowingBuffer(60 * self.extractor.sampling_rate)
        self._resampler = None
        self._input_rate = None
        self._finished = False
        self.start_times: list[float] = []
        self.probabilities: list[np.ndarray] = []
        self.genre_distances: list[float] = []
        self.last_update_seconds = 0.0
        """Processing time of the last `add`, in seconds (resampling, features and model)."""

    @property
    def seconds_heard(self) -> float:
        return len(self._buffer) / self.extractor.sampling_rate

    def waveform(self) -> np.ndarray:
        """Everything heard so far, mono float32 at the extractor's rate (a view, valid until the next `add`)."""
        return self._buffer.view()

    def add(self, chunk: np.ndarray, sampling_rate: int) -> int:
        """Append a chunk of audio and analyse the windows it completes; returns how many were added."""
        import soxr

        started = time.perf_counter()
        if self._finished:
            raise ValueError("This recording is finished; start a new LiveAnalysis.")
        if self._input_rate is None:
            self._input_rate = int(sampling_rate)
            if self._input_rate != self.extractor.sampling_rate:
                self._resampler = soxr.ResampleStream(
                    self._input_rate, self.extractor.sampling_rate, 1, dtype="float32", quality="HQ"
                )
        elif int(sampling_rate) != self._input_rate:
            raise ValueError(f"The stream changed its sampling rate from {self._input_rate} to {sampling_rate} Hz.")
        samples = pcm_to_float(chunk)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=False)
        self._buffer.append(samples)
        if self.max_seconds is not None and self.seconds_heard > self.max_seconds:
            raise AudioTooLongError(f"The recording passed the limit of {format_duration(self.max_seconds)}.")
        added = self._analyse_complete_windows()
        self.last_update_seconds = time.perf_counter() - started
        return added

    def _analyse_complete_windows(self) -> int:
        extractor = self.extractor
        waveform = self.waveform()
        needed_after = extractor.window_samples + extractor.n_fft // 2  # the last frame's right half
        starts = []
        next_start = len(self.start_times) * extractor.hop_samples
        while next_start + needed_after <= waveform.shape[0]:
            starts.append(next_start)
            next_start += extractor.hop_samples
        if not starts:
            return 0
        images = extractor.windows_at(waveform, np.asarray(starts))
        probabilities, distances = self.classifier.window_outputs(images)
        self.probabilities.extend(probabilities)
        if distances is not None:
            self.genre_distances.extend(distances)
        self.start_times.extend(start / extractor.sampling_rate for start in starts)
        return len(starts)

    def result(self) -> GenreAnalysis | None:
        """What was heard so far, window by window (None before the first window is complete)."""
        if not self.start_times:
            return None
        starts = np.asarray(self.start_times)
        start_samples = np.rint(starts * self.extractor.sampling_rate).astype(np.int64)
        has_music = window_has_music(self.waveform(), start_samples, self.extractor.window_samples)
        return GenreAnalysis(
            genres=self.classifier.genres,
            window_start_times=starts,
            window_end_times=starts + self.extractor.window_seconds,
            window_probabilities=np.stack(self.probabilities),
            duration_seconds=self.seconds_heard,
            source="microphone",
            spectrogram=self.extractor.song_spectrogram(self.waveform(), SPECTROGRAM_FRAMES_PER_SECOND),
            spectrogram_frames_per_second=SPECTROGRAM_FRAMES_PER_SECOND,
            window_has_music=has_music if has_music.any() else None,  # a silent start: shown as heard
            window_genre_distances=np.asarray(self.genre_distances) if self.genre_distances else None,
            none_of_these_distance=getattr(self.classifier.model.config, "none_of_these_distance", None),
        )

    def finish(self) -> GenreAnalysis:
        """The full analysis of the whole recording (raises the library's bad-input errors, e.g. for silence)."""
        if self._resampler is not None:
            self._buffer.append(self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
        self._finished = True
        return self.classifier.analyze(
            (self._buffer.values(), self.extractor.sampling_rate), max_seconds=self.max_seconds
        )


__all__ = ["LiveAnalysis", "pcm_to_float"]
