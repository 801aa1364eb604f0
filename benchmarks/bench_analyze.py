"""Full-song analysis: file on disk -> probabilities and the timeline plot, against a naive baseline.

    python -m benchmarks.bench_analyze [--seconds 180] [--format mp3]
    python -m benchmarks.bench_analyze --memory-hour     # peak memory of analysing a synthesized 1-hour file

The baseline is the reference notebook's way, measured here in the same run: for each 4-s window, librosa.load with
offset/duration, a Mel spectrogram of that window, dB, min-max, resize, and a batch-1 forward pass.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from benchmarks.common import best_time, default_model, write_song
from genre_vit import GenreClassifier
from genre_vit.plotting import plot_genre_timeline

REFERENCE_CLAIM_SECONDS = (120.0, 300.0)  # "2-5 minutes for a 3-minute song on a CPU"


def naive_analysis(path: Path, model, duration: float) -> np.ndarray:
    import librosa

    probabilities = []
    starts = np.arange(0, max(duration - 4.0, 0) + 1e-9, 2.0)
    with torch.inference_mode():
        for start in starts:
            window, _ = librosa.load(path, sr=22050, mono=True, offset=float(start), duration=4.0)
            window = np.pad(window, (0, max(0, 88200 - window.size)))[:88200]
            mel = librosa.feature.melspectrogram(
                y=window, sr=22050, n_fft=2048, hop_length=64, n_mels=128, window="hann"
            )
            decibels = librosa.power_to_db(mel, ref=np.max)
            scaled = (decibels - decibels.min()) / (decibels.max() - decibels.min() + 1e-12)
            image = torch.nn.functional.interpolate(
                torch.from_numpy(scaled)[None, None], size=(216, 144), mode="bilinear", align_corners=False
            )
            probabilities.append(model(input_values=image.float()).logits.softmax(-1)[0].numpy())
    return np.stack(probabilities)


def ours(path: Path, classifier: GenreClassifier):
    result = classifier.analyze(path)
    FigureCanvasAgg(plot_genre_timeline(result)).draw()  # rasterised: a bare Figure's canvas.draw() draws nothing
    return result


def write_hour_file(path: Path) -> Path:
    """A 1-hour mono FLAC at 22,050 Hz, written minute by minute so that this process stays small."""
    import soundfile

    from genre_vit.testing import synth_music

    with soundfile.SoundFile(path, "w", 22050, 1) as file:
        for minute in range(60):
            file.write(synth_music(60.0, seed=minute))
    return path


def memory_hour(path: Path, batch_size: int, dtype: str) -> None:
    """Analyse a synthesized 1-hour FLAC in a child process and report its peak resident memory (VmHWM, which,
    unlike getrusage's ru_maxrss, does not inherit the parent's peak across fork and exec)."""
    code = (
        "import sys, time;"
        "from genre_vit.allocator import tune_malloc; tune_malloc();"  # as the command line and the app do
        "from benchmarks.common import default_model; from genre_vit import GenreClassifier;"
        "from genre_vit.analysis import resolve_dtype; import torch;"
        "model, fe = default_model(); model = model.to(resolve_dtype(sys.argv[3], torch.device('cpu')));"
        "c = GenreClassifier(model, fe, batch_size=int(sys.argv[2]), device='cpu', dtype='float32');"
        "t = time.perf_counter(); r = c.analyze(sys.argv[1]); t = time.perf_counter() - t;"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1];"
        "print(r.num_windows, f'{t:.1f}', hwm)"
    )
    repository = Path(__file__).resolve().parents[1]
    output = subprocess.run(
        [sys.executable, "-c", code, str(path), str(batch_size), dtype],
        cwd=repository,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    windows, seconds, peak_kb = int(output[0]), float(output[1]), int(output[2])
    peak_gb = peak_kb / 1024**2
    print(
        f"1-hour file, dtype {dtype}: {windows} windows in {seconds:.1f} s; peak resident memory {peak_gb:.2f} GB "
        f"(goal: at most 1.14 GB, the float32 path's peak before the fast path)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--format", default="mp3", choices=["mp3", "flac", "wav", "ogg"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-hour", action="store_true", help="measure peak memory on a 1-hour file instead")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.memory_hour:
        with tempfile.TemporaryDirectory() as folder:
            path = write_hour_file(Path(folder) / "hour.flac")
            for dtype in ("float32", "auto"):  # the float32 path is the baseline, measured in the same run
                memory_hour(path, args.batch_size, dtype)
        return

    model, feature_extractor = default_model()
    classifier = GenreClassifier(model, feature_extractor, batch_size=args.batch_size, device="cpu", dtype="float32")
    with tempfile.TemporaryDirectory() as folder:
        path = write_song(Path(folder) / f"song.{args.format}", args.seconds)
        ours(path, classifier)  # warm-up
        ours_seconds = best_time(lambda: ours(path, classifier), args.repeats)
        result = ours(path, classifier)
        baseline = {}
        baseline_seconds = best_time(lambda: baseline.setdefault("p", naive_analysis(path, model, args.seconds)), 1)
    mean_difference = np.abs(baseline["p"].mean(0) - result.mean_probabilities).max()
    print(f"{args.seconds:.0f}-s {args.format}, {result.num_windows} windows, batch {args.batch_size}")
    print(
        f"ours (decode + features + model + timeline plot): {ours_seconds:.2f} s  (goal <= 5 s: "
        f"{'met' if ours_seconds <= 5 else 'MISSED'})"
    )
    print(f"naive per-window baseline:                        {baseline_seconds:.2f} s")
    print(
        f"speedup over the baseline: {baseline_seconds / ours_seconds:.1f}x; over the reference's claimed "
        f"{REFERENCE_CLAIM_SECONDS[0]:.0f}-{REFERENCE_CLAIM_SECONDS[1]:.0f} s: "
        f"{REFERENCE_CLAIM_SECONDS[0] / ours_seconds:.0f}-{REFERENCE_CLAIM_SECONDS[1] / ours_seconds:.0f}x "
        "(goal >= 25x)"
    )
    print(f"largest difference of the mean probabilities, ours vs baseline: {mean_difference:.4f}")


if __name__ == "__main__":
    main()
