"""Shared fixtures: synthesized audio, a tiny randomly initialised GenreViT checkpoint, the real GTZAN clips."""

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

import genre_vit
from genre_vit import GenreViTConfig, GenreViTFeatureExtractor, GenreViTForAudioClassification
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
