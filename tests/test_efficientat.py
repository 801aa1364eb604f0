"""The EfficientAT `mn04_as` teacher: the released weights load strictly and reproduce the reference outputs."""

import numpy as np
import pytest
import torch
from conftest import REPOSITORY

from genre_vit.training.efficientat import (
    GENRE_CLASS_INDICES,
    EfficientATTagger,
    class_names,
    genre_probabilities,
    kaldi_mel_filters,
    round_channels,
    tag_patches,
)

TEACHER_DIR = REPOSITORY.parent / "shared" / "models" / "efficientat-mn04-as"
requires_teacher = pytest.mark.skipif(
    not (TEACHER_DIR / "mn04_as_mAP_432.pt").is_file(), reason=f"EfficientAT weights not found in {TEACHER_DIR}"
)


@pytest.fixture(scope="module")
def tagger() -> EfficientATTagger:
    return EfficientATTagger.from_state_dict(TEACHER_DIR / "mn04_as_mAP_432.pt")


def test_channel_rounding_follows_the_width_rule():
    assert [round_channels(c * 0.4) for c in (16, 64, 24, 72, 40, 120, 960)] == [8, 24, 16, 32, 16, 48, 384]


def test_kaldi_mel_filters_are_triangles_up_to_15_khz():
    filters = kaldi_mel_filters(128, 1024, 32000, 0.0, 15000.0)
    assert filters.shape == (128, 513)
    assert np.all(filters[:, -1] == 0) and np.all(filters >= 0) and np.all(filters <= 1)
    assert np.all(filters[:, int(15000 / 31.25) + 1 :] == 0)  # nothing above 15 kHz (bins are 31.25 Hz apart)
    assert np.all(filters.argmax(axis=1)[1:] >= filters.argmax(axis=1)[:-1])  # centres rise


def test_an_untrained_tagger_has_the_released_shapes():
    model = EfficientATTagger().eval()
    assert sum(parameter.numel() for parameter in model.parameters()) == 983_599
    with torch.inference_mode():
        output = model(torch.zeros(2, 32000))
    assert output.logits.shape == (2, 527) and output.embedding.shape == (2, 384)


@requires_teacher
def test_the_released_weights_reproduce_the_reference_outputs(tagger):
    reference = np.load(TEACHER_DIR / "reference" / "mn04_as_reference.npz")
    with torch.inference_mode():
        log_mel = tagger.front_end(torch.from_numpy(reference["waveform_32k"]))[:, 0].numpy()
        output = tagger.forward_log_mel(torch.from_numpy(reference["log_mel"])[:, None])
    np.testing.assert_allclose(log_mel, reference["log_mel"], atol=2e-4, rtol=0)
    np.testing.assert_allclose(output.logits.numpy(), reference["logits"], atol=2e-5, rtol=0)
    np.testing.assert_allclose(output.embedding.numpy(), reference["embedding"], atol=1e-5, rtol=0)


@requires_teacher
def test_the_genre_classes_are_the_gtzan_genres_and_the_zero_shot_answers_are_right(tagger):
    names = class_names(TEACHER_DIR / "class_labels_indices.csv")
    assert [names[index] for index in GENRE_CLASS_INDICES.values()] == [
        "Blues",
        "Classical music",
        "Country",
        "Disco",
        "Hip hop music",
        "Jazz",
        "Heavy metal",
        "Pop music",
        "Reggae",
        "Rock music",
    ]
    reference = np.load(TEACHER_DIR / "reference" / "mn04_as_reference.npz")
    patches = tag_patches(tagger, reference["waveform_32k"][1], patch_seconds=4.0, patch_hop_seconds=2.0)
    assert patches["logits"].shape == (4, 527) and patches["embedding"].shape == (4, 384)
    np.testing.assert_allclose(patches["start_seconds"], [0, 2, 4, 6])
    genres = list(GENRE_CLASS_INDICES)
    probabilities = genre_probabilities(patches["logits"], genres).mean(axis=0)
    assert genres[int(probabilities.argmax())] == "classical"  # reference clip 1 is classical.00000
