"""A cold command line: whole-process time of `python -m genre_vit analyze` on a 3-minute MP3, against baselines
timed alternately in the same run.

    python -m benchmarks.bench_cli [--baseline-checkout DIR] [--musicnn PYTHON] [--repeats 3] [--device auto]

- ours: `python -m genre_vit analyze song.mp3` with the bundled model, default settings;
- ours, float32: the same with `--dtype float32`;
- `--baseline-checkout DIR`: an older checkout of this repository (e.g. `git worktree add /tmp/before 0ed57a6`),
  run with its own code and model, the "before" of a change;
- `--musicnn PYTHON`: the python of a virtual environment with musicnn installed; runs its command line
  (`python -m musicnn.tagger song.mp3 --model MSD_musicnn --topN 3`), the tool users compare with.

`--device` goes to our two commands (default: theirs, "auto", i.e. CUDA when present).

Each command runs `--repeats` times, alternating, and the median wall time is reported.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import checkout_environment, write_song

REPOSITORY = Path(__file__).resolve().parents[1]


def wall_time(command: list[str], cwd: Path, environment: dict) -> float:
    started = time.perf_counter()
    completed = subprocess.run(
        command, cwd=cwd, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        reason = completed.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise SystemExit(f"{' '.join(command)} failed (exit {completed.returncode}): {reason[0]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-checkout", type=Path)
    parser.add_argument("--musicnn", help="python of a virtual environment with musicnn")
    parser.add_argument("--device", default="auto", help="--device of our commands: auto, cpu or cuda")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        song = write_song(Path(folder) / "song.mp3", args.seconds)
        ours = [sys.executable, "-m", "genre_vit", "analyze", str(song), "--device", args.device]
        commands = {"ours": (ours, REPOSITORY), "ours, --dtype float32": ([*ours, "--dtype", "float32"], REPOSITORY)}
        if args.baseline_checkout:
            commands[f"before ({args.baseline_checkout.name})"] = (
                [sys.executable, "-m", "genre_vit", "analyze", str(song)],
                args.baseline_checkout.resolve(),
            )
        if args.musicnn:
            commands["musicnn"] = (
                [args.musicnn, "-m", "musicnn.tagger", str(song), "--model", "MSD_musicnn", "--topN", "3"],
                Path(folder),
            )
        times = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, (command, cwd) in commands.items():
                # each checkout imports its own package: PYTHONPATH puts it first
                env = checkout_environment(cwd if name != "musicnn" else None)
                times[name].append(wall_time(command, cwd, env))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"{args.seconds:.0f}-s 44.1-kHz stereo MP3, whole process, ours with --device {args.device}, median of "
        f"{args.repeats} (alternating):"
    )
    for name, value in medians.items():
        print(f"  {name:<28} {value:6.2f} s  ({value / medians['ours']:.2f}x ours)")
    for name in medians:
        if name != "ours":
            print(f"ours is {medians[name] / medians['ours']:.2f}x faster than {name}")


if __name__ == "__main__":
    main()
