"""save_pretrained -> from_pretrained round trips: with the package imported, and as remote code without it."""

import copy
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch
from conftest import SAMPLING_RATE
from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification

from genre_vit import GenreClassifier, GenreViTFeatureExtractor, GenreViTForAudioClassification
from genre_vit.model_folder import REMOTE_CODE_FILES


def test_folder_contents(tiny_model_dir):
    names = {path.name for path in tiny_model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= names
    assert set(REMOTE_CODE_FILES) <= names
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["model_type"] == "genre_vit"
    assert config["auto_map"]["AutoModelForAudioClassification"] == "modeling_genre_vit.GenreViTForAudioClassification"
    preprocessor = json.loads((tiny_model_dir / "preprocessor_config.json").read_text())
    assert preprocessor["auto_map"]["AutoFeatureExtractor"] == "feature_extraction_genre_vit.GenreViTFeatureExtractor"


def test_auto_classes_round_trip(tiny_model_dir, tiny_model, song_30s):
    assert AutoConfig.from_pretrained(tiny_model_dir).model_type == "genre_vit"
    model = AutoModelForAudioClassification.from_pretrained(tiny_model_dir).eval()
    extractor = AutoFeatureExtractor.from_pretrained(tiny_model_dir)
    assert isinstance(model, GenreViTForAudioClassification)
    assert isinstance(extractor, GenreViTFeatureExtractor)
    inputs = torch.from_numpy(extractor.extract_windows(song_30s, SAMPLING_RATE).input_values)
    with torch.inference_mode():
        assert torch.equal(model(inputs).logits, tiny_model(inputs).logits)


def test_half_precision_round_trip(tmp_path, tiny_model, feature_extractor, song_30s):
    copy.deepcopy(tiny_model).to(torch.float16).save_pretrained(tmp_path)
    feature_extractor.save_pretrained(tmp_path)
    loaded = GenreViTForAudioClassification.from_pretrained(tmp_path, dtype=torch.float16)
    assert next(loaded.parameters()).dtype == torch.float16
    # The analysis API computes in float32 unless told otherwise, whatever the stored dtype.
    classifier = GenreClassifier.from_pretrained(tmp_path, device="cpu")
    assert next(classifier.model.parameters()).dtype == torch.float32
    full = GenreClassifier(tiny_model, feature_extractor, device="cpu", dtype="float32").analyze(
        (song_30s, SAMPLING_RATE)
    )
    half = classifier.analyze((song_30s, SAMPLING_RATE))
    np.testing.assert_allclose(half.mean_probabilities, full.mean_probabilities, atol=2e-3)


REMOTE_CODE_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["genre_vit"] = None  # make `import genre_vit` fail, even where the package is installed
    try:
        import genre_vit
    except ImportError:
        pass
    else:
        raise SystemExit("genre_vit should not be importable here")
    import numpy as np, torch
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification
    folder = sys.argv[1]
    model = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=True, dtype=torch.float32)
    model.eval()
    extractor = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=True)
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    waveform = np.load(sys.argv[2])
    inputs = torch.from_numpy(extractor.extract_windows(waveform, 22050).input_values)
    with torch.inference_mode():
        np.save(sys.argv[3], model(inputs).logits.numpy())
    """
)


def remote_code_logits(folder, waveform: np.ndarray, work_dir) -> np.ndarray:
    """Logits of `folder`'s model on `waveform`, computed by its own saved code in a process where `genre_vit`
    cannot be imported."""
    np.save(work_dir / "song.npy", waveform)
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environment.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(work_dir / "modules"))
    subprocess.run(
        [
            sys.executable,
            "-c",
            REMOTE_CODE_SCRIPT,
            str(folder),
            str(work_dir / "song.npy"),
            str(work_dir / "logits.npy"),
        ],
        cwd=work_dir,
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    )
    return np.load(work_dir / "logits.npy")


def test_trust_remote_code_without_the_package(tiny_model_dir, tiny_model, feature_extractor, song_30s, tmp_path):
    logits = remote_code_logits(tiny_model_dir, song_30s, tmp_path)
    inputs = torch.from_numpy(feature_extractor.extract_windows(song_30s, SAMPLING_RATE).input_values)
    with torch.inference_mode():
        expected = tiny_model(inputs).logits.numpy()
    # Another process computes these: equal up to float32 rounding (they have differed by 1.2e-7 in a full test run),
    # while any difference in the saved code, weights or preprocessing moves them by far more.
    np.testing.assert_allclose(logits, expected, rtol=1e-6, atol=1e-6)


FOLDER_SAVED_BY_0_1_0 = Path(__file__).parent / "fixtures" / "tiny-genre-vit-saved-by-0.1.0"
"""A tiny model folder written by the code of commit 5ab4291 (before the restructuring and the patchout, attention and
window-rule changes), with the logits that code computed for a fixed input; float16 weights and its own remote code."""


def test_a_folder_saved_by_an_earlier_version_gives_the_same_logits(tmp_path):
    import json

    from genre_vit import GenreViTFeatureExtractor, GenreViTForAudioClassification
    from genre_vit.testing import synth_music

    expected = json.loads((FOLDER_SAVED_BY_0_1_0 / "expected_logits.json").read_text())
    model = GenreViTForAudioClassification.from_pretrained(FOLDER_SAVED_BY_0_1_0, dtype=torch.float32).eval()
    extractor = GenreViTFeatureExtractor.from_pretrained(FOLDER_SAVED_BY_0_1_0)
    windows = extractor.extract_windows(synth_music(8.0, seed=21), SAMPLING_RATE).input_values
    with torch.inference_mode():
        logits = model(torch.from_numpy(windows)).logits.numpy()
    np.testing.assert_allclose(logits, np.array(expected["logits"]), atol=1e-5)

    # Its own (old) remote code, without the package, gives the same logits too.
    old_code_logits = remote_code_logits(FOLDER_SAVED_BY_0_1_0, synth_music(8.0, seed=21), tmp_path)
    np.testing.assert_allclose(old_code_logits, np.array(expected["logits"]), atol=1e-5)
