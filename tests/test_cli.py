"""`python -m genre_vit analyze` end to end, in a subprocess as a user runs it."""

import csv
import json
import os
import subprocess
import sys

import pytest
from conftest import REPOSITORY

from genre_vit.analysis import BUNDLED_MODEL_DIR
from genre_vit.testing import synth_music


def run_cli(*arguments, cwd=None, environment=None):
    environment = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPOSITORY)) | (environment or {})
    if "GENRE_VIT_MODEL" not in (environment or {}):
        environment.pop("GENRE_VIT_MODEL", None)
    return subprocess.run(
        [sys.executable, "-m", "genre_vit", *map(str, arguments)],
        cwd=cwd or REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_help():
    for arguments in ([], ["analyze"]):
        completed = run_cli(*arguments, "--help")
        assert completed.returncode == 0 and "usage:" in completed.stdout
    assert "--batch-size" in run_cli("analyze", "--help").stdout


def test_single_file(tmp_path, tiny_model_dir, write_wav):
    song = write_wav(synth_music(12.0, seed=4), "song.wav")
    completed = run_cli(
        "analyze",
        song,
        "--model",
        tiny_model_dir,
        "--json",
        tmp_path / "out.json",
        "--csv",
        tmp_path / "out.csv",
        "--plot",
        tmp_path / "plot.png",
        "--device",
        "cpu",
    )
    assert completed.returncode == 0, completed.stderr
    assert "song.wav:" in completed.stdout and "5 windows over 0:12" in completed.stdout
    assert sum(genre in completed.stdout for genre in ("blues", "rock", "jazz", "metal")) == 4
    result = json.loads((tmp_path / "out.json").read_text())
    assert len(result["windows"]) == 5 and result["source"] == "song.wav"
    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    assert len(rows) == 1 and rows[0]["top_genre"] == result["top_genre"]
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.json", "plot.png", "song.wav"]


def test_folder_writes_one_row_per_file_and_skips_bad_ones(tmp_path, tiny_model_dir, write_wav):
    folder = tmp_path / "songs"
    folder.mkdir()
    for index in range(3):
        write_wav(synth_music(5.0 + index, seed=index), f"songs/track{index}.wav")
    (folder / "notes.txt").write_text("not audio, and not picked up")
    (folder / "broken.mp3").write_text("not audio, but named like it")
    completed = run_cli(
        "analyze", folder, "--model", tiny_model_dir, "--csv", tmp_path / "all.csv", "--plot", tmp_path / "plots"
    )
    assert completed.returncode == 1  # one file failed
    assert "skipped" in completed.stderr and "broken.mp3" in completed.stderr
    assert "3 analysed, 1 failed" in completed.stderr
    rows = list(csv.DictReader((tmp_path / "all.csv").open()))
    assert [os.path.basename(row["path"]) for row in rows] == ["track0.wav", "track1.wav", "track2.wav"]
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["track0.png", "track1.png", "track2.png"]


@pytest.mark.parametrize(
    "make_input, message",
    [
        (lambda tmp: tmp / "missing.wav", "does not exist"),
        (lambda tmp: (tmp / "fake.mp3").write_text("hello") and tmp / "fake.mp3", "fake.mp3"),
        (lambda tmp: (tmp / "empty.wav").write_bytes(b"") is not None and tmp / "empty.wav", "empty"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(tmp_path, tiny_model_dir, make_input, message):
    completed = run_cli("analyze", make_input(tmp_path), "--model", tiny_model_dir, "--json", tmp_path / "out.json")
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genre_vit: error:") and message in lines[0]
    assert not (tmp_path / "out.json").exists()


def test_silence(tmp_path, tiny_model_dir, write_wav):
    silent = write_wav(synth_music(5.0) * 0, "silent.wav")
    completed = run_cli("analyze", silent, "--model", tiny_model_dir)
    assert completed.returncode == 2 and "silent" in completed.stderr


def test_default_model(tmp_path, tiny_model_dir, write_wav):
    """Without --model: $GENRE_VIT_MODEL, else the bundled checkpoint, else a clear error."""
    song = write_wav(synth_music(5.0), "song.wav")
    completed = run_cli("analyze", song, environment={"GENRE_VIT_MODEL": str(tiny_model_dir)})
    assert completed.returncode == 0 and "2 windows over 0:05" in completed.stdout
    completed = run_cli("analyze", song)
    if BUNDLED_MODEL_DIR.joinpath("config.json").exists():
        assert completed.returncode == 0 and "2 windows over 0:05" in completed.stdout
    else:
        assert completed.returncode == 2 and "No model given" in completed.stderr


def test_convert_to_float16_in_shards(tmp_path, tiny_model_dir):
    import shutil

    source = tmp_path / "full"
    shutil.copytree(tiny_model_dir, source)
    records = {"training_run.json": '{"splits": {}}', "cross_validation.json": '{"folds": 5}', "README.md": "# card"}
    for name, text in records.items():
        (source / name).write_text(text)
    completed = run_cli("convert", source, tmp_path / "half", "--max-shard-size", "50KB")
    assert completed.returncode == 0, completed.stderr
    for name, text in records.items():  # the run's records and card travel with the weights
        assert (tmp_path / "half" / name).read_text() == text
    shards = sorted((tmp_path / "half").glob("*.safetensors"))
    # The limit counts tensor bytes; each file adds its small JSON header.
    assert len(shards) > 1 and all(path.stat().st_size <= 50_000 + 4_096 for path in shards)
    assert json.loads((tmp_path / "half" / "config.json").read_text())["dtype"] == "float16"
    song = tmp_path / "song.wav"
    import soundfile

    soundfile.write(song, synth_music(6.0), 22050)
    for model in (tiny_model_dir, tmp_path / "half"):
        assert run_cli("analyze", song, "--model", model).returncode == 0
    again = run_cli("convert", tiny_model_dir, tmp_path / "half")
    assert again.returncode == 2 and "not empty" in again.stderr
