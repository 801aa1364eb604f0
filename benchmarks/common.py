"""Helpers shared by the benchmarks: synthetic music, a randomly initialised default model, timing."""

import time
from pathlib import Path

import numpy as np
import soundfile
import torch

from genre_vit import GenreViTConfig, GenreViTFeatureExtractor, GenreViTForAudioClassification

SAMPLING_RATE = 22050


def synth_music(seconds: float, seed: int = 0, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """Harmonic notes changing every 0.5 s over a noisy beat: enough structure for realistic decoder/STFT work."""
    rng = np.random.default_rng(seed)
    samples = int(round(seconds * sampling_rate))
    time_axis = np.arange(samples) / sampling_rate
    note = int(0.5 * sampling_rate)
    frequencies = np.repeat(rng.uniform(110, 880, size=samples // note + 1), note)[:samples]
    phase = 2 * np.pi * np.cumsum(frequencies) / sampling_rate
    tone = sum(np.sin(k * phase) / k for k in (1, 2, 3))
    beat = np.exp(-30 * (time_axis % 0.5)) * rng.standard_normal(samples)
    return (0.25 * tone + 0.2 * beat).astype(np.float32)


def write_song(path: Path, seconds: float, sampling_rate: int = 44100, stereo: bool = True) -> Path:
    """A song file as users have them: 44.1 kHz stereo, format from the suffix (mp3, flac, wav)."""
    waveform = synth_music(seconds, sampling_rate=sampling_rate)
    data = np.stack([waveform, np.roll(waveform, 100)], axis=1) * 0.7 if stereo else waveform
    soundfile.write(path, data, sampling_rate)
    return path


def default_model(seed: int = 0) -> tuple[GenreViTForAudioClassification, GenreViTFeatureExtractor]:
    """The seed architecture with random weights (timing does not depend on the weights)."""
    torch.manual_seed(seed)
    return GenreViTForAudioClassification(GenreViTConfig()).eval(), GenreViTFeatureExtractor()


def best_time(function, repeats: int = 3) -> float:
    """Best wall time in seconds of `repeats` calls (the least disturbed by other load)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)
