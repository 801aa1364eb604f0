"""`python -m genre_vit analyze` end to end, in a subprocess as a user runs it."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPOSITORY, free_port

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
    assert len(lines) == 1 and lines[0].startswith("genre-vit: error:") and message in lines[0]
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


@pytest.mark.slow
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


def test_truncated_file_is_analysed_with_one_warning_line(tmp_path, tiny_model_dir, write_wav):
    song = write_wav(synth_music(30.0, seed=5), "cut.wav")
    song.write_bytes(song.read_bytes()[: len(song.read_bytes()) // 3])
    completed = run_cli("analyze", song, "--model", tiny_model_dir, "--device", "cpu", "--csv", tmp_path / "out.csv")
    assert completed.returncode == 0, completed.stderr
    assert "4 windows over 0:10" in completed.stdout
    warnings = completed.stderr.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("genre-vit: warning: cut.wav is cut short")
    (row,) = csv.DictReader((tmp_path / "out.csv").open())
    assert row["notes"].startswith("cut.wav is cut short")  # the warning is in the output too


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg is not installed")
def test_decoder_noise_stays_off_the_terminal(tmp_path, tiny_model_dir, write_wav):
    """libmpg123 prints "Xing stream size off by more than 1%" on the process's stderr for a truncated MP3; the
    command line shows only its own one-line warning."""
    wav = write_wav(synth_music(30.0, seed=8), "source.wav")
    mp3 = tmp_path / "full.mp3"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), "-b:a", "128k", str(mp3)], check=True)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(mp3.read_bytes()[: mp3.stat().st_size // 3])
    completed = run_cli("analyze", cut, "--model", tiny_model_dir, "--device", "cpu")
    assert completed.returncode == 0, completed.stderr
    warnings = completed.stderr.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("genre-vit: warning: cut.mp3 is cut short"), warnings


def test_closed_pipe_ends_silently_like_unix_tools(tiny_model_dir, write_wav):
    """`python -m genre_vit analyze FILE | head -2`: the reader is gone before the table is written. Standard tools
    die of SIGPIPE without a word; so does the CLI (no "Broken pipe" error line, no "Exception ignored")."""
    import signal

    song = write_wav(synth_music(8.0, seed=6), "song.wav")
    environment = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPOSITORY))
    process = subprocess.Popen(
        [sys.executable, "-m", "genre_vit", "analyze", str(song), "--model", str(tiny_model_dir), "--device", "cpu"],
        cwd=REPOSITORY,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()  # before the CLI has loaded its model and written anything
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=300) == -signal.SIGPIPE
    assert stderr == ""


def test_emoji_in_the_file_name_draws_without_a_missing_glyph_warning(tmp_path, tiny_model_dir, write_wav):
    song = write_wav(synth_music(6.0, seed=7), "my \U0001f3b8 song.wav")
    completed = run_cli(
        "analyze",
        song,
        "--model",
        tiny_model_dir,
        "--device",
        "cpu",
        "--plot",
        tmp_path / "plot.png",
        environment={"PYTHONWARNINGS": "error::UserWarning"},
    )
    assert completed.returncode == 0, completed.stderr
    assert "Glyph" not in completed.stderr and completed.stderr == ""
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "model, message",
    [
        ("checkpoints/genre-vit-gtzn", "No model folder exists at checkpoints/genre-vit-gtzn"),
        ("./my-models/run-1", "No model folder exists at ./my-models/run-1."),
        ("someone/genre-vit", "could be loaded from the Hugging Face Hub either"),
    ],
)
def test_mistyped_model_folder_says_so(write_wav, model, message):
    song = write_wav(synth_music(5.0), "song.wav")
    completed = run_cli("analyze", song, "--model", model)
    assert completed.returncode == 2
    assert completed.stderr.startswith("genre-vit: error: ") and message in completed.stderr
    assert "Repo id must be in the form" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_output_files_get_the_umask_permissions(tmp_path, tiny_model_dir, write_wav):
    """Files used to be 0600 whatever the umask (tempfile.mkstemp); now they are what open() would make."""
    song = write_wav(synth_music(6.0), "song.wav")
    outputs = [tmp_path / "out.json", tmp_path / "out.csv", tmp_path / "plot.png"]
    for umask, mode in ((0o022, 0o644), (0o027, 0o640)):
        for output in outputs:
            output.unlink(missing_ok=True)
        completed = subprocess.run(
            [
                "bash",
                "-c",
                f'umask {umask:03o} && exec "$@"',
                "bash",
                sys.executable,
                "-m",
                "genre_vit",
                "analyze",
                str(song),
                "--model",
                str(tiny_model_dir),
                "--device",
                "cpu",
                "--json",
                str(outputs[0]),
                "--csv",
                str(outputs[1]),
                "--plot",
                str(outputs[2]),
            ],
            cwd=REPOSITORY,
            env=dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPOSITORY)),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert completed.returncode == 0, completed.stderr
        assert [oct(output.stat().st_mode & 0o777) for output in outputs] == [oct(mode)] * 3


def test_cli_runs_from_any_folder_once_installed(tmp_path, tiny_model_dir, write_wav):
    """The README's install command installs the package: `python -m genre_vit` and the `genre-vit` command work
    from a folder that is not the repository, with no PYTHONPATH."""
    import shutil

    song = write_wav(synth_music(6.0), "song.wav")
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"} | {"HF_HUB_OFFLINE": "1"}
    module = subprocess.run(
        [sys.executable, "-m", "genre_vit", "analyze", str(song), "--model", str(tiny_model_dir), "--device", "cpu"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert module.returncode == 0, module.stderr
    assert "2 windows over 0:06" in module.stdout
    command = shutil.which("genre-vit", path=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    assert command, "the genre-vit console script is not installed"
    script = subprocess.run([command, "--help"], cwd=tmp_path, env=environment, capture_output=True, text=True)
    assert script.returncode == 0 and "analyze" in script.stdout


@pytest.mark.slow
def test_two_processes_under_torchrun_merge_into_the_single_process_output(tmp_path, tiny_model_dir, write_wav):
    """`torchrun --nproc-per-node 2 -m genre_vit analyze FOLDER`: each rank takes every other file; rank 0 merges
    the parts into one CSV and one JSON, equal to what one process writes."""
    folder = tmp_path / "library"
    folder.mkdir()
    for index in range(5):
        write_wav(synth_music(4.0 + index, seed=40 + index), f"library/song{index}.wav")
    (folder / "broken.mp3").write_text("not audio")
    common = ["--model", tiny_model_dir, "--dtype", "float32", "--quiet"]
    single = run_cli(
        "analyze",
        folder,
        *common,
        "--csv",
        tmp_path / "single.csv",
        "--json",
        tmp_path / "single.json",
        environment={"OMP_NUM_THREADS": "1"},  # as each rank runs below: the same float rounding
    )
    assert single.returncode == 1, single.stderr  # broken.mp3
    environment = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPOSITORY), OMP_NUM_THREADS="1")
    environment.pop("GENRE_VIT_MODEL", None)
    launched = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--master-port",
            str(free_port()),
            "-m",
            "genre_vit",
            "analyze",
            folder,
            *common,
            "--csv",
            tmp_path / "merged.csv",
            "--json",
            tmp_path / "merged.json",
        ],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    merged = (tmp_path / "merged.csv").read_text()
    assert merged == (tmp_path / "single.csv").read_text(), launched.stderr[-3000:]
    assert json.loads((tmp_path / "merged.json").read_text()) == json.loads((tmp_path / "single.json").read_text())
    assert len(merged.splitlines()) == 1 + 5
    assert not list(tmp_path.glob("*.part-*"))  # the parts were merged and removed
    assert "skipped" in launched.stderr and "broken.mp3" in launched.stderr


@pytest.mark.slow
def test_a_rank_that_fails_ends_the_distributed_run_on_every_rank(tmp_path, tiny_model_dir, write_wav):
    """Two gloo processes, the second unable to load its model: both end with an error, and nothing is merged,
    instead of the first waiting for the second for ever."""
    folder = tmp_path / "library"
    folder.mkdir()
    for index in range(4):
        write_wav(synth_music(4.0, seed=60 + index), f"library/song{index}.wav")
    port = str(free_port())
    processes = []
    for rank, model in ((0, tiny_model_dir), (1, tmp_path / "missing-model")):
        environment = dict(
            os.environ,
            HF_HUB_OFFLINE="1",
            PYTHONPATH=str(REPOSITORY),
            OMP_NUM_THREADS="1",
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
        )
        command = [sys.executable, "-m", "genre_vit", "analyze", str(folder), "--model", str(model), "--quiet"]
        command += ["--dtype", "float32", "--csv", str(tmp_path / "merged.csv")]
        processes.append(subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True))
    try:
        errors = [process.communicate(timeout=120)[1] for process in processes]
    finally:
        for process in processes:
            process.kill()
    assert processes[1].returncode != 0 and "missing-model" in errors[1]
    assert processes[0].returncode == 2 and "Another process of this distributed run failed" in errors[0]
    assert not (tmp_path / "merged.csv").exists()
