"""Synthesize the demo's example clips (deterministic; CC0, see README.md here): `python examples/make_examples.py`.

They are made from sine waves and noise by this script alone, so they carry no third-party rights.
"""

from pathlib import Path

import numpy as np
import soundfile

from genre_vit.audio import SAMPLING_RATE

SECONDS = 12.0


def _envelope(time, start, decay):
    active = time >= start
    return np.where(active, np.exp(-decay * (time - start)), 0.0)


def four_on_the_floor(seed: int = 0) -> np.ndarray:
    """120 bpm kick on every beat, snare on 2 and 4, off-beat hi-hats, an octave bass line and chord stabs."""
    rng = np.random.default_rng(seed)
    time = np.arange(int(SECONDS * SAMPLING_RATE)) / SAMPLING_RATE
    beat = 0.5
    signal = np.zeros_like(time)
    bass_notes = [55.0, 55.0, 73.4, 65.4]
    for index, start in enumerate(np.arange(0, SECONDS, beat)):
        kick_phase = 2 * np.pi * (50 * (time - start) + 60 * (1 - np.exp(-30 * (time - start))) / 30)
        signal += 0.9 * _envelope(time, start, 25) * np.sin(kick_phase)
        if index % 2 == 1:
            signal += 0.4 * _envelope(time, start, 18) * rng.standard_normal(time.size)
        signal += 0.15 * _envelope(time, start + beat / 2, 60) * rng.standard_normal(time.size)
        note = bass_notes[(index // 4) % 4]
        for octave, offset in ((1, 0.0), (2, beat / 2)):
            signal += 0.3 * _envelope(time, start + offset, 6) * np.sin(2 * np.pi * note * octave * (time - start))
        if index % 4 == 2:
            for ratio in (1.0, 1.26, 1.5):
                signal += 0.08 * _envelope(time, start, 4) * np.sin(2 * np.pi * 4 * note * ratio * time)
    return (0.7 * signal / np.abs(signal).max()).astype(np.float32)


def slow_arpeggios() -> np.ndarray:
    """Soft piano-like arpeggios (decaying harmonics) over C, A minor, F and G, at 72 bpm."""
    time = np.arange(int(SECONDS * SAMPLING_RATE)) / SAMPLING_RATE
    chords = [(261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6), (196.0, 246.9, 293.7)]
    step = 60 / 72 / 2
    signal = np.zeros_like(time)
    for index, start in enumerate(np.arange(0, SECONDS, step)):
        chord = chords[(index // 6) % 4]
        frequency = chord[index % 3] * (2 if index % 6 >= 3 else 1)
        for harmonic, weight in ((1, 1.0), (2, 0.4), (3, 0.15)):
            signal += weight * _envelope(time, start, 2.5) * np.sin(2 * np.pi * harmonic * frequency * (time - start))
    return (0.6 * signal / np.abs(signal).max()).astype(np.float32)


def main() -> None:
    folder = Path(__file__).resolve().parent
    soundfile.write(folder / "synth-dance-beat.ogg", four_on_the_floor(), SAMPLING_RATE, format="OGG", subtype="VORBIS")
    soundfile.write(folder / "synth-arpeggios.ogg", slow_arpeggios(), SAMPLING_RATE, format="OGG", subtype="VORBIS")


if __name__ == "__main__":
    main()
