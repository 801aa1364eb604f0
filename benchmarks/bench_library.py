"""A music library: songs per minute of `GenreClassifier.analyze_many` (decoding the next files in threads while
the model runs) against analysing the same files one after the other, in the same run.

    python -m benchmarks.bench_library [--songs 12] [--seconds 30] [--format mp3] [--device cpu|cuda]
"""

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.common import write_song
from genre_vit import GenreClassifier
from genre_vit.analysis import default_model_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=default_model_source())
    parser.add_argument("--songs", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--format", default="mp3")
    parser.add_argument("--decode-workers", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="where the model runs: cpu or cuda")
    args = parser.parse_args()
    classifier = GenreClassifier.from_pretrained(args.model, device=args.device)
    with tempfile.TemporaryDirectory() as folder:
        songs = [write_song(Path(folder) / f"song{i}.{args.format}", args.seconds) for i in range(args.songs)]
        classifier.analyze(songs[0])  # warm-up
        started = time.perf_counter()
        sequential = [classifier.analyze(song) for song in songs]
        sequential_seconds = time.perf_counter() - started
        started = time.perf_counter()
        parallel = [result for _, result in classifier.analyze_many(songs, decode_workers=args.decode_workers)]
        parallel_seconds = time.perf_counter() - started
    assert [r.top_genre for r in parallel] == [r.top_genre for r in sequential]
    print(
        f"{args.songs} songs of {args.seconds:.0f} s ({args.format}), model on {classifier.device}, {classifier.dtype}"
    )
    print(f"  one after the other (baseline): {60 * args.songs / sequential_seconds:.1f} songs/min")
    print(f"  analyze_many, {args.decode_workers} decode threads: {60 * args.songs / parallel_seconds:.1f} songs/min")
    print(f"  ratio: {sequential_seconds / parallel_seconds:.2f}x")


if __name__ == "__main__":
    main()
