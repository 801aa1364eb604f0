"""Pack unlabelled music and its teacher targets into a small folder that `train.py --random-crops` reads.

Distillation pre-training wants hours of audio on the machine that trains, often a GPU machine without librosa or
the original files. This writes, from teacher-targets files (`scripts/musicnn_teacher.py`,
`scripts/handcrafted_targets.py`), whose `TRACK/source` entries name each track's audio:

- `OUTPUT/audio/unlabelled/TRACK.opus`: every track as 24-kbit/s mono Opus at 24 kHz (ffmpeg with libopus; 11.5 h
  make 137 MB), in the one-folder-per-genre layout `train.py` reads (a single "genre": labels are not used when
  `--classification-weight` is 0);
- `OUTPUT/targets/NAME.npz`: each targets file, copied as it is.

    python scripts/pack_audio.py --teacher-targets runs/teacher/msd.npz runs/teacher/handcrafted.npz --output packed
    python train.py --data packed/audio --random-crops --classification-weight 0 \\
        --teacher-targets packed/targets/msd.npz packed/targets/handcrafted.npz --teacher-output max_pool handcrafted \\
        --teacher-weight 1 3 --split-fractions 0.95 0.05 0 --output-dir runs/pretrained ...

An interrupted run resumes (tracks already encoded are kept); every file is written atomically, and a source ffmpeg
cannot encode is a one-line error that leaves nothing half-written.
"""

import argparse
import shutil
import subprocess
from pathlib import Path

import numpy as np


def track_sources(targets_files: list[Path]) -> dict[str, str]:
    """Track id -> its audio file, from the `TRACK/source` entries of the first targets file; every other file must
    hold the same tracks."""
    keys, sources = None, {}
    for path in targets_files:
        with np.load(path) as data:
            file_keys = sorted(name[: -len("/start_seconds")] for name in data.files if name.endswith("/start_seconds"))
            if keys is None:
                keys = file_keys
                sources = {k: str(data[f"{k}/source"]) for k in keys if f"{k}/source" in data.files}
            elif file_keys != keys:
                raise SystemExit(f"{path} holds other tracks than {targets_files[0]}.")
    missing = [k for k in keys if k not in sources or not Path(sources[k]).is_file()]
    if missing:
        raise SystemExit(
            f"{len(missing)} tracks have no readable source audio (e.g. {missing[0]}): run from the folder the "
            "teacher ran in, where the `TRACK/source` paths of the targets file resolve."
        )
    return sources


def encode(source: str, key: str, target: Path) -> None:
    """`source` as 24-kbit/s mono Opus at `target`, written atomically."""
    temporary = target.with_suffix(".partial.opus")
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", source, "-ac", "1", "-ar", "24000"]
    encoded = subprocess.run(
        [*command, "-c:a", "libopus", "-b:a", "24k", str(temporary)], check=False, capture_output=True, text=True
    )
    if encoded.returncode != 0:
        temporary.unlink(missing_ok=True)
        reason = (encoded.stderr.strip().splitlines() or ["no message"])[-1]
        raise SystemExit(f"ffmpeg could not encode {source} ({key}): {reason}")
    temporary.replace(target)


def pack(targets_files: list[Path], output: Path) -> int:
    """Write the packed folder (module docstring); returns the number of tracks."""
    from genre_vit.files import write_atomic

    if shutil.which("ffmpeg") is None:
        raise SystemExit("Packing needs ffmpeg with libopus on the PATH.")
    sources = track_sources(targets_files)
    (output / "targets").mkdir(parents=True, exist_ok=True)
    for path in targets_files:
        write_atomic(output / "targets" / path.name, lambda temporary, path=path: shutil.copyfile(path, temporary))
    folder = output / "audio" / "unlabelled"
    folder.mkdir(parents=True, exist_ok=True)
    for key in sorted(sources):
        if not (folder / f"{key}.opus").is_file():
            encode(sources[key], key, folder / f"{key}.opus")
    return len(sources)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher-targets", type=Path, nargs="+", required=True, help="teacher-targets files")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    tracks = pack(args.teacher_targets, args.output)
    print(f"{tracks} tracks under {args.output / 'audio'}, their targets under {args.output / 'targets'}")


if __name__ == "__main__":
    main()
