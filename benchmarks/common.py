"""Helpers shared by the benchmarks: song files, a randomly initialised default model, timing."""

import os
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

from genre_vit import GenreViTConfig, GenreViTFeatureExtractor, GenreViTForAudioClassification
from genre_vit.testing import synth_music


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


def wall_times(function, repeats: int = 3) -> list[float]:
    """Wall times in seconds of `repeats` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def best_time(function, repeats: int = 3) -> float:
    """Best wall time in seconds of `repeats` calls (the least disturbed by other load)."""
    return min(wall_times(function, repeats))


def checkout_environment(checkout: Path | None = None) -> dict:
    """The environment a benchmarked process runs in: offline, the default (bundled) model rather than
    `$GENRE_VIT_MODEL`, and, given a checkout of this repository, that checkout's package first on the path."""
    environment = dict(os.environ, HF_HUB_OFFLINE="1")
    environment.pop("GENRE_VIT_MODEL", None)
    if checkout is not None:  # first, and what was on the path stays after it (packages installed with --target)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout), os.environ.get("PYTHONPATH")]))
    return environment
