"""Synthetic audio for tests, benchmarks and demos: deterministic, made from sine waves and noise only.

- `synth_music`: a music-like signal (notes, a beat, a little noise) of any length.
- `synthetic_track` / `write_synthetic_genre_dataset`: ten clearly different signal classes laid out like GTZAN
  (`genres/<genre>/<genre>.0000k.wav`), so that a model can be shown to learn within a few CPU epochs.
"""

from pathlib import Path

import numpy as np

from .audio import SAMPLING_RATE
from .configuration_genre_vit import GTZAN_GENRES


def synth_music(seconds: float, seed: int = 0, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """A deterministic music-like signal: a few harmonic notes changing every 0.5 s, a beat and a little noise."""
    rng = np.random.default_rng(seed)
    samples = int(round(seconds * sampling_rate))
    time = np.arange(samples) / sampling_rate
    note_length = int(0.5 * sampling_rate)
    frequencies = np.repeat(rng.uniform(110, 880, size=samples // note_length + 1), note_length)[:samples]
    phase = 2 * np.pi * np.cumsum(frequencies) / sampling_rate
    tone = sum(np.sin(k * phase) / k for k in (1, 2, 3))
    beat = np.exp(-30 * (time % 0.5)) * rng.standard_normal(samples)
    return (0.25 * tone + 0.2 * beat + 0.01 * rng.standard_normal(samples)).astype(np.float32)


def _noise(rng, samples, exponent):
    """Noise with a 1/f^exponent power spectrum (0 white, 1 pink, 2 brown), unit peak."""
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    frequencies = np.maximum(np.fft.rfftfreq(samples, 1 / SAMPLING_RATE), 1.0)
    signal = np.fft.irfft(spectrum / frequencies ** (exponent / 2), n=samples)
    return signal / np.abs(signal).max()


def _notes(rng, time, low, high, note_seconds=0.25, partials=1):
    """A melody of random notes in [low, high] Hz, one every `note_seconds`, with `partials` harmonics."""
    steps = (time // note_seconds).astype(int)
    frequencies = rng.uniform(low, high, size=steps.max() + 1)[steps]
    phase = 2 * np.pi * np.cumsum(frequencies) / SAMPLING_RATE
    return sum(np.sin(k * phase) / k for k in range(1, partials + 1))


def synthetic_track(class_index: int, seconds: float, seed: int) -> np.ndarray:
    """One track of class `class_index` (0-9). Classes differ in pitch range, rhythm and noise colour; within a
    track the notes, rates and sweeps vary over the class's whole range, so every window is typical of its class."""
    rng = np.random.default_rng(seed)
    samples = int(seconds * SAMPLING_RATE)
    time = np.arange(samples) / SAMPLING_RATE
    if class_index == 0:  # low melody
        signal = _notes(rng, time, 80, 250, partials=2)
    elif class_index == 1:  # high melody
        signal = _notes(rng, time, 2500, 5000)
    elif class_index == 2:  # white noise
        signal = _noise(rng, samples, 0)
    elif class_index == 3:  # brown noise
        signal = _noise(rng, samples, 2)
    elif class_index == 4:  # click train, 3-6 clicks a second
        rate = rng.uniform(3, 6)
        signal = np.exp(-200 * (time % (1 / rate))) * rng.standard_normal(samples)
    elif class_index == 5:  # rising sweeps
        period = rng.uniform(0.8, 1.5)
        position = time % period
        signal = np.sin(2 * np.pi * (200 + 1500 * position / period) * position)
    elif class_index == 6:  # mid melody with many partials
        signal = _notes(rng, time, 300, 700, partials=7)
    elif class_index == 7:  # tremolo melody (8 Hz amplitude modulation)
        signal = _notes(rng, time, 900, 1500, note_seconds=1.0) * (0.5 + 0.5 * np.sin(2 * np.pi * 8 * time))
    elif class_index == 8:  # band-limited noise bursts, 2-4 kHz, two a second
        spectrum = np.fft.rfft(rng.standard_normal(samples))
        frequencies = np.fft.rfftfreq(samples, 1 / SAMPLING_RATE)
        spectrum[(frequencies < 2000) | (frequencies > 4000)] = 0
        signal = np.fft.irfft(spectrum, n=samples) * ((time % 0.5) < 0.25)
    else:  # low and high notes alternating every half second
        signal = np.where((time % 1.0) < 0.5, _notes(rng, time, 150, 300), _notes(rng, time, 1500, 3000))
    signal = signal + 0.01 * rng.standard_normal(samples)
    return (0.5 * signal / np.abs(signal).max()).astype(np.float32)


def write_synthetic_genre_dataset(root, tracks_per_genre: int = 10, seconds: float = 10.0) -> Path:
    """Write `root/genres/<genre>/<genre>.0000k.wav`, GTZAN's layout and names, one signal class per genre."""
    import soundfile

    root = Path(root)
    for class_index, genre in enumerate(GTZAN_GENRES):
        folder = root / "genres" / genre
        folder.mkdir(parents=True, exist_ok=True)
        for track in range(tracks_per_genre):
            waveform = synthetic_track(class_index, seconds, seed=1000 * class_index + track)
            soundfile.write(folder / f"{genre}.{track:05d}.wav", waveform, SAMPLING_RATE)
    return root


__all__ = ["synth_music", "synthetic_track", "write_synthetic_genre_dataset"]
