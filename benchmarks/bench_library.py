"""A music library: songs per minute of `GenreClassifier.analyze_many`, in its two ways of decoding, against
analysing the same files one after the other with one decoding thread per file, in the same run.

    python -m benchmarks.bench_library [--songs 12] [--seconds 30] [--format mp3] [--decode-workers 2]
                                       [--device cpu|cuda]

- baseline: one file after the other, each decoded by one thread, then analysed (the library's path until
  decoding was split over threads);
- `analyze_many()` (the default, `decode_workers=0`): each file decoded by as many threads as torch computes
  with, when its turn comes;
- `analyze_many(decode_workers=N)`: the next files decoded in N threads, one per file, while the model runs.

The three are timed in alternating rounds (best round of each), after a warm-up, and must give the same genres.
"""

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.common import write_song
from genre_vit import GenreClassifier
from genre_vit.allocator import tune_malloc
from genre_vit.analysis import default_model_source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=default_model_source())
    parser.add_argument("--songs", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--format", default="mp3")
    parser.add_argument("--decode-workers", type=int, default=2, help="prefetching threads of the third way (2)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="where the model runs: cpu or cuda")
    args = parser.parse_args()
    tune_malloc()  # this process is set up as the command line sets up its own
    classifier = GenreClassifier.from_pretrained(args.model, device=args.device)
    with tempfile.TemporaryDirectory() as folder:
        songs = [write_song(Path(folder) / f"song{i}.{args.format}", args.seconds) for i in range(args.songs)]
        ways = {
            "one after the other, one decoding thread per file (baseline)": lambda: [
                classifier.analyze_prepared(*classifier.prepare(song, decode_threads=1)) for song in songs
            ],
            "analyze_many() (each file decoded by all threads)": lambda: [
                result for _, result in classifier.analyze_many(songs)
            ],
            f"analyze_many(decode_workers={args.decode_workers}) (prefetching)": lambda: [
                result for _, result in classifier.analyze_many(songs, decode_workers=args.decode_workers)
            ],
        }
        classifier.analyze(songs[0])  # warm-up
        seconds = dict.fromkeys(ways, float("inf"))
        genres = {}
        for _ in range(args.rounds):
            for name, way in ways.items():
                started = time.perf_counter()
                results = way()
                seconds[name] = min(seconds[name], time.perf_counter() - started)
                genres[name] = [result.top_genre for result in results]
    assert len({tuple(value) for value in genres.values()}) == 1, "the ways gave different genres"
    print(
        f"{args.songs} songs of {args.seconds:.0f} s ({args.format}), model on {classifier.device}, "
        f"{classifier.dtype}; best of {args.rounds} alternating rounds"
    )
    baseline = next(iter(seconds.values()))
    for name, value in seconds.items():
        print(f"  {name}: {60 * args.songs / value:.1f} songs/min ({baseline / value:.2f}x)")


if __name__ == "__main__":
    main()
