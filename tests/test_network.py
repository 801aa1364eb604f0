"""The plain-PyTorch inference path: `GenreViTNetwork` and `LogMelWindowing` read a model folder without transformers
and compute exactly what the Hugging Face classes compute."""

import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import REPOSITORY

from genre_vit.analysis import GenreClassifier, ModelNotFoundError
from genre_vit.audio import SAMPLING_RATE
from genre_vit.network import GenreViTNetwork, StoredConfig
from genre_vit.spectrogram import LogMelWindowing


def test_network_from_folder_gives_the_models_logits(tiny_model_dir, tiny_model, feature_extractor, song_30s):
    network = GenreViTNetwork.from_folder(tiny_model_dir)
    assert not network.training
    assert sum(p.numel() for p in network.parameters()) == sum(p.numel() for p in tiny_model.parameters())
    windows = torch.from_numpy(feature_extractor.extract_windows(song_30s, SAMPLING_RATE).input_values)
    with torch.inference_mode():
        np.testing.assert_array_equal(network(windows).numpy(), tiny_model(windows).logits.numpy())
        tokens, attentions = network.encode_with_attentions(windows[:2])
        expected_tokens, expected_attentions = tiny_model.encode_with_attentions(windows[:2])
    torch.testing.assert_close(tokens, expected_tokens)
    assert len(attentions) == tiny_model.config.num_hidden_layers
    torch.testing.assert_close(attentions[-1], expected_attentions[-1])


def test_stored_config_reads_labels_and_grid(tiny_model_dir, tiny_model):
    config = StoredConfig.from_folder(tiny_model_dir)
    assert dict(config.id2label) == tiny_model.config.id2label
    assert config.num_labels == 10 and config.patch_grid == (13, 9)
    with pytest.raises(AttributeError, match="no 'no_such_field'"):
        config.no_such_field  # noqa: B018


def test_windowing_from_folder_matches_the_feature_extractor(tiny_model_dir, feature_extractor, song_30s):
    windowing = LogMelWindowing.from_folder(tiny_model_dir)
    assert type(windowing) is LogMelWindowing
    # Equal up to float32 rounding: in a full test run the two computations have differed in the last bits (at
    # most 6.7e-7 on these [0, 1] images), while a wrong parameter moves pixels by 1e-2 or more.
    np.testing.assert_allclose(
        windowing.extract_windows(song_30s, SAMPLING_RATE).input_values,
        feature_extractor.extract_windows(song_30s, SAMPLING_RATE).input_values,
        rtol=0,
        atol=2e-6,
    )


@pytest.mark.parametrize("mel_scale", ["slaney", "htk"])
@pytest.mark.parametrize("norm", ["slaney", None])
def test_mel_filters_equal_transformers(mel_scale, norm):
    from transformers.audio_utils import mel_filter_bank as reference_filters

    from genre_vit.spectrogram import mel_filter_bank

    ours = mel_filter_bank(1025, 128, 30.0, 11025.0, 22050, norm=norm, mel_scale=mel_scale)
    reference = reference_filters(
        num_frequency_bins=1025,
        num_mel_filters=128,
        min_frequency=30.0,
        max_frequency=11025.0,
        sampling_rate=22050,
        norm=norm,
        mel_scale=mel_scale,
    )
    np.testing.assert_allclose(ours, reference, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("win_length", [2048, 1000])
def test_front_end_uses_librosas_filters_and_window(win_length):
    """The filter bank is transformers.audio_utils'; it and the analysis window are librosa's (to float32)."""
    import librosa

    front_end = LogMelWindowing(win_length=win_length).front_end
    filters = librosa.filters.mel(sr=22050, n_fft=2048, n_mels=128, fmin=0.0, fmax=11025.0, htk=False, norm="slaney")
    np.testing.assert_allclose(front_end.mel_filters.numpy(), filters.T, rtol=1e-5, atol=1e-9)
    window = librosa.util.pad_center(librosa.filters.get_window("hann", win_length, fftbins=True), size=2048)
    np.testing.assert_allclose(front_end.window.numpy(), window, rtol=0, atol=1e-7)


def _copy_model(source, target):
    shutil.copytree(source, target)
    return target


def test_damaged_folders_get_clear_errors(tiny_model_dir, tmp_path):
    wrong_type = _copy_model(tiny_model_dir, tmp_path / "wrong-type")
    config = json.loads((wrong_type / "config.json").read_text())
    (wrong_type / "config.json").write_text(json.dumps({**config, "model_type": "vit"}))
    with pytest.raises(ModelNotFoundError, match="not a GenreViT model folder: .*'vit' model"):
        GenreClassifier.from_pretrained(wrong_type)

    wider = _copy_model(tiny_model_dir, tmp_path / "wider")
    (wider / "config.json").write_text(json.dumps({**config, "hidden_size": 128}))
    with pytest.raises(ModelNotFoundError, match="do not fit the config"):
        GenreClassifier.from_pretrained(wider)

    no_weights = _copy_model(tiny_model_dir, tmp_path / "no-weights")
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(ModelNotFoundError, match="has no model.safetensors"):
        GenreClassifier.from_pretrained(no_weights)

    truncated = _copy_model(tiny_model_dir, tmp_path / "truncated")
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelNotFoundError, match="Cannot read the weights"):
        GenreClassifier.from_pretrained(truncated)


def test_analysis_and_the_command_line_do_not_import_transformers(tiny_model_dir, write_wav, song_30s):
    """The inference path stays free of transformers, whose import is most of a cold start (its model machinery
    about 3 s, even `transformers.audio_utils` 0.57 s)."""
    path = write_wav(song_30s)
    script = textwrap.dedent(
        f"""
        import sys
        import genre_vit
        assert "transformers" not in sys.modules, "import genre_vit imported transformers"
        from genre_vit.cli import main
        status = main(["analyze", {str(path)!r}, "--model", {str(tiny_model_dir)!r}, "--dtype", "float32"])
        assert status == 0, status
        loaded = sorted(name for name in sys.modules if name.split(".")[0] == "transformers")
        print("TRANSFORMERS", len(loaded), loaded[:3])
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPOSITORY, timeout=300
    )
    assert completed.returncode == 0, completed.stderr
    assert "TRANSFORMERS 0 []" in completed.stdout, completed.stdout


def test_hugging_face_names_register_the_auto_classes():
    script = textwrap.dedent(
        """
        import sys
        import genre_vit
        config_class = genre_vit.GenreViTConfig
        from transformers import AutoConfig
        assert isinstance(AutoConfig.for_model("genre_vit"), config_class)
        print("OK")
        """
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0 and "OK" in completed.stdout, completed.stderr


def test_a_stored_config_is_read_only_and_replace_makes_a_changed_copy(tiny_model_dir):
    stored = StoredConfig.from_folder(tiny_model_dir)
    with pytest.raises(AttributeError, match="read-only"):
        stored.temperature = 1.0
    cooler = stored.replace(temperature=2.0)
    assert cooler.temperature == 2.0 and stored.temperature == 1.0
    assert cooler.id2label == stored.id2label and cooler.num_labels == stored.num_labels
