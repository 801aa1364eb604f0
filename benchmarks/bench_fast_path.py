"""The fast path against the float32 path, in one run: speed on a 3-minute song, agreement on real music.

    python -m benchmarks.bench_fast_path [--model checkpoints/genre-vit-gtzan] [--data ../shared/data/gtzan]
                                         [--baseline-checkout DIR] [--device cpu|cuda]

1. Speed: a 3-minute 44.1-kHz stereo MP3, end to end in process (decode, windows, model, timeline plot drawn), with
   the default compute dtype ("auto": bfloat16 on a CPU with AVX512-BF16/AMX) and with float32, both measured here
   (best of `--repeats`). With `--baseline-checkout DIR` (an older checkout of this repository, e.g.
   `git worktree add /tmp/before 0ed57a6`), the same end-to-end call of that checkout's code and bundled model is
   timed in the same run, in its own process, as the baseline of the issue ("today's float32 path"); the float32
   path of this checkout shares every feature and plot improvement, so its ratio isolates the compute dtype.
2. Agreement on every clip of `--data` (the real GTZAN clips): the share of windows whose top genre is the same in
   both paths (goal >= 99%), the songs whose top genre is the same (goal: all), and the largest difference of a mean
   genre probability (goal <= 0.01).
3. Where the time goes on the fast path: decoding, the windows' features, the model, and the rest (song spectrogram,
   timeline plot), each timed alone.

With `--device cuda` both paths run their model on the GPU, the fast one in bfloat16 (which "auto" no longer picks
there: see `genre_vit.analysis.resolve_dtype`); decoding and features stay on the CPU, as in the library.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from benchmarks.common import best_time, checkout_environment, wall_times, write_song
from genre_vit import GenreClassifier
from genre_vit.allocator import tune_malloc
from genre_vit.analysis import default_model_source, resolve_device
from genre_vit.audio import AUDIO_FILE_SUFFIXES
from genre_vit.plotting import plot_genre_timeline


def end_to_end(classifier: GenreClassifier, path: Path):
    result = classifier.analyze(path)
    FigureCanvasAgg(plot_genre_timeline(result)).draw()  # rasterised: a bare Figure's canvas.draw() draws nothing
    return result


# Runs in the baseline checkout's own process (its package first on PYTHONPATH): the same end-to-end call as
# `end_to_end`, through that checkout's API (GenreClassifier.analyze and plot_genre_timeline exist since 0ed57a6).
_BASELINE_SCRIPT = """
import json, sys, time
from pathlib import Path
from genre_vit import GenreClassifier
from genre_vit.plotting import plot_genre_timeline
from matplotlib.backends.backend_agg import FigureCanvasAgg
classifier = GenreClassifier.from_pretrained(device="cpu")
song, repeats = Path(sys.argv[1]), int(sys.argv[2])
def end_to_end():
    FigureCanvasAgg(plot_genre_timeline(classifier.analyze(song))).draw()
end_to_end()
times = []
for _ in range(repeats):
    started = time.perf_counter()
    end_to_end()
    times.append(time.perf_counter() - started)
print(json.dumps({"seconds": min(times), "dtype": str(next(classifier.model.parameters()).dtype)}))
"""


def stage_times(classifier: GenreClassifier, path: Path, end_to_end_seconds: float) -> dict:
    """Seconds of each stage of `end_to_end` on `path`, timed alone (best of 3 each); "rest" is what
    `end_to_end_seconds` leaves (the song's spectrogram, the plot, the glue)."""
    extractor = classifier.feature_extractor
    prepared = classifier.prepare(path)[0]

    def windows():
        return [
            block.input_values
            for block in extractor.iter_windows(
                prepared.waveform, extractor.sampling_rate, block_windows=classifier.batch_size, validate=False
            )
        ]

    blocks = windows()
    stages = {
        "decode": best_time(lambda: classifier.prepare(path)),
        "features": best_time(windows),
        "model": best_time(lambda: [classifier.window_probabilities(block) for block in blocks]),
    }
    stages["rest"] = end_to_end_seconds - sum(stages.values())
    return stages


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return f"CPU, {torch.get_num_threads()} threads"


def baseline_checkout_time(checkout: Path, song: Path, repeats: int) -> dict:
    """Best end-to-end seconds of `checkout`'s code and bundled model on `song`, timed in a process of its own."""
    completed = subprocess.run(
        [sys.executable, "-c", _BASELINE_SCRIPT, str(song), str(repeats)],
        cwd=checkout,
        env=checkout_environment(checkout),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def agreement(fast: GenreClassifier, reference: GenreClassifier, files: list[Path]) -> dict:
    windows = same_windows = same_songs = 0
    largest = 0.0
    for path in files:
        a, b = fast.analyze(path), reference.analyze(path)
        windows += a.num_windows
        same_windows += int((a.window_probabilities.argmax(1) == b.window_probabilities.argmax(1)).sum())
        same_songs += int(a.top_genre == b.top_genre)
        largest = max(largest, float(np.abs(a.mean_probabilities - b.mean_probabilities).max()))
    return {
        "songs": len(files),
        "windows": windows,
        "window_agreement": same_windows / windows,
        "same_songs": same_songs,
        "largest_mean_difference": largest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=default_model_source())
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/gtzan"))
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--baseline-checkout", type=Path, help="an older checkout whose in-process path is the baseline (on the CPU)"
    )
    parser.add_argument("--device", default="cpu", help="where both paths run their model: cpu, cuda or auto")
    args = parser.parse_args()
    if args.model is None:
        parser.error("no model: pass --model")
    tune_malloc()  # this process is set up as the command line and the app set up theirs
    device = resolve_device(args.device)
    # on a GPU "auto" is float32 (the reference itself): the candidate there is bfloat16
    candidate_dtype = "bfloat16" if device.type == "cuda" else "auto"
    fast = GenreClassifier.from_pretrained(args.model, device=device, dtype=candidate_dtype)
    reference = GenreClassifier.from_pretrained(args.model, device=device, dtype="float32")
    fast_dtype = fast.dtype
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; model on {describe_device(fast.device)}; "
        f"fast path computes in {fast_dtype}"
    )

    with tempfile.TemporaryDirectory() as folder:
        song = write_song(Path(folder) / "song.mp3", args.seconds)
        end_to_end(fast, song), end_to_end(reference, song)  # warm-up
        fast_times = wall_times(lambda: end_to_end(fast, song), args.repeats)
        reference_times = wall_times(lambda: end_to_end(reference, song), args.repeats)
        fast_seconds, reference_seconds = min(fast_times), min(reference_times)
        stages = stage_times(fast, song, fast_seconds)
        before = (
            baseline_checkout_time(args.baseline_checkout.resolve(), song, args.repeats)
            if args.baseline_checkout
            else None
        )
    print(f"{args.seconds:.0f}-s MP3 end to end (decode, windows, model, timeline plot), best of {args.repeats}:")
    if before:
        print(f"  before ({args.baseline_checkout.name}, {before['dtype']}): {before['seconds']:.2f} s")
    print(f"  float32 path of this checkout: {reference_seconds:.2f} s (median {np.median(reference_times):.2f} s)")
    print(f"  fast path ({fast_dtype}):  {fast_seconds:.2f} s (median {np.median(fast_times):.2f} s)")
    if before:
        print(f"  speedup over before: {before['seconds'] / fast_seconds:.2f}x")
    print(f"  speedup over this checkout's float32 path: {reference_seconds / fast_seconds:.2f}x")
    print("  fast path by stage: " + ", ".join(f"{name} {seconds:.3f} s" for name, seconds in stages.items()))

    data = Path(args.data)
    files = sorted(p for p in data.rglob("*") if p.suffix.lower() in AUDIO_FILE_SUFFIXES) if data.is_dir() else []
    if not files:
        print(f"agreement: skipped, no audio under {data}")
        return
    started = time.perf_counter()
    stats = agreement(fast, reference, files)
    print(
        f"agreement on {stats['songs']} real clips ({stats['windows']} windows, {time.perf_counter() - started:.0f} s):"
        f" windows {stats['window_agreement']:.2%} (goal >= 99%), songs {stats['same_songs']}/{stats['songs']} "
        f"(goal: all), largest mean-probability difference {stats['largest_mean_difference']:.4f} (goal <= 0.01)"
    )


if __name__ == "__main__":
    main()
