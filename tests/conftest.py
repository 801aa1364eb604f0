"""Shared fixtures: synthesized audio, a tiny randomly initialised GenreViT checkpoint, the real GTZAN clips."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile
import torch

import genre_vit
from genre_vit import (
    GTZAN_GENRES,
    GenreAnalysis,
    GenreViTConfig,
    GenreViTFeatureExtractor,
    GenreViTForAudioClassification,
)
from genre_vit.audio import SAMPLING_RATE
from genre_vit.testing import synth_music

REPOSITORY = Path(__file__).resolve().parents[1]
GTZAN_DIR = Path(os.environ.get("GENRE_VIT_GTZAN_DIR", REPOSITORY.parent / "shared" / "data" / "gtzan"))


def free_port() -> int:
    """A localhost TCP port that is free now: for a test server, or for torchrun's rendezvous, so that runs never
    meet on a fixed port such as torchrun's default 29500."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


TINY_RECIPE = ["--config", "tiny", "--batch-size", "16", "--lr", "1e-3", "--num-proc", "2"]


def run_python(*arguments, timeout=600):
    """`python ARGUMENTS...` from the repository root, offline, with the package on the path."""
    environment = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPOSITORY))
    return subprocess.run(
        [sys.executable, *map(str, arguments)],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_script(script, *arguments, timeout=600):
    return run_python(REPOSITORY / script, *arguments, timeout=timeout)


def train_in_process(*arguments) -> dict:
    """What `python train.py ARGUMENTS` runs, in this process (its options parsed as train.py parses them, then
    `run_training`): the run record. A bad option exits as train.py does; a bad input raises its ValueError.
    Tests of what a run does use this; the end-to-end runs of the script are few (`run_script`)."""
    from genre_vit.training.trainer import TrainingOptions, run_training

    return run_training(TrainingOptions.from_command_line([str(argument) for argument in arguments]))


MEL_PARAMETERS = dict(
    sr=22050,
    n_fft=2048,
    hop_length=64,
    win_length=2048,
    window="hann",
    center=True,
    pad_mode="constant",
    power=2.0,
    n_mels=128,
    fmin=0.0,
    fmax=11025.0,
    htk=False,
    norm="slaney",
)


def librosa_window_image(window: np.ndarray) -> np.ndarray:
    """The reference recipe for one 4-s window, computed on its own with librosa and torch."""
    mel = librosa.feature.melspectrogram(y=window, **MEL_PARAMETERS)
    decibels = librosa.power_to_db(mel, ref=np.max, amin=1e-10, top_db=80.0)
    scaled = (decibels - decibels.min()) / (decibels.max() - decibels.min())
    image = torch.nn.functional.interpolate(
        torch.from_numpy(scaled)[None, None], size=(216, 144), mode="bilinear", align_corners=False
    )
    return image[0, 0].numpy()


def padded_window(waveform: np.ndarray, start: int, length: int = 88200) -> np.ndarray:
    window = np.zeros(length, dtype=np.float32)
    piece = waveform[start : start + length]
    window[: piece.size] = piece
    return window


def make_analysis(probabilities: np.ndarray, source: str | None = "song.wav") -> GenreAnalysis:
    starts = np.arange(len(probabilities), dtype=np.float64) * 2.0
    return GenreAnalysis(
        genres=GTZAN_GENRES,
        window_start_times=starts,
        window_end_times=starts + 4.0,
        window_probabilities=probabilities,
        duration_seconds=float(starts[-1] + 4.0),
        source=source,
    )


@pytest.fixture(scope="session")
def feature_extractor() -> GenreViTFeatureExtractor:
    return GenreViTFeatureExtractor()


@pytest.fixture(scope="session")
def tiny_model() -> GenreViTForAudioClassification:
    torch.manual_seed(0)
    return GenreViTForAudioClassification(GenreViTConfig.tiny()).eval()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_model, feature_extractor) -> Path:
    """A saved tiny checkpoint (config, safetensors, feature extractor and remote code), built here, never shipped."""
    folder = tmp_path_factory.mktemp("tiny-genre-vit")
    tiny_model.save_pretrained(folder)
    feature_extractor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def song_30s() -> np.ndarray:
    return synth_music(30.0, seed=1)


@pytest.fixture()
def write_wav(tmp_path):
    """Write a waveform to a wav file in the test's folder and return its path."""

    def write(waveform: np.ndarray, name: str = "clip.wav", sampling_rate: int = SAMPLING_RATE) -> Path:
        path = tmp_path / name
        soundfile.write(path, waveform, sampling_rate)
        return path

    return write


def gtzan_clips(limit_per_genre: int | None = None) -> list[tuple[str, Path]]:
    """(genre, path) of the real GTZAN clips beside the repository, or [] where they are absent."""
    clips = []
    for genre in genre_vit.GTZAN_GENRES:
        paths = sorted((GTZAN_DIR / genre).glob(f"{genre}.*.flac"))[:limit_per_genre]
        clips.extend((genre, path) for path in paths)
    return clips


requires_gtzan = pytest.mark.skipif(not gtzan_clips(), reason=f"real GTZAN clips not found in {GTZAN_DIR}")
