"""Command line: `python -m genre_vit analyze PATH... [--model ...]`.

It only calls the library (`GenreClassifier`, the plot functions, the atomic writers).
"""

import argparse
import csv
import io
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .audio import AUDIO_FILE_SUFFIXES
from .model_folder import MAX_SHARD_SIZE, RECORD_FILES

PROGRAM = "genre_vit"


class CommandError(Exception):
    """A user error: printed as one line, exit code 2."""


def collect_audio_files(paths: Sequence[str]) -> list[Path]:
    """Expand folders (recursively, sorted) into their audio files; keep files as given."""
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_FILE_SUFFIXES)
            if not found:
                raise CommandError(f"{path} contains no audio files ({', '.join(sorted(AUDIO_FILE_SUFFIXES))}).")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise CommandError(f"{path} does not exist.")
    return files


def format_ranking(result) -> str:
    """A ranked genre table with bars, for the terminal."""
    lines = [f"{result.source or 'audio'}: {result.summary()}", "", f"  {'genre':<10} {'probability':>11}"]
    for genre, probability in result.ranked():
        bar = "█" * int(round(probability * 30))
        lines.append(f"  {genre:<10} {probability:>10.1%}  {bar}")
    lines += ["", "Sections:"] + [f"  {line}" for line in result.section_lines()]
    return "\n".join(lines)


def summary_csv(rows: list[tuple[Path, object]], genres: Sequence[str]) -> str:
    """One row per analysed file: path, duration, windows, top genre, confidence, then the mean probabilities."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "duration_seconds", "windows", "top_genre", "confidence", "verdict", "sections", *genres])
    for path, result in rows:
        writer.writerow(
            [
                str(path),
                f"{result.duration_seconds:.3f}",
                result.num_windows,
                result.top_genre,
                f"{result.confidence:.6f}",
                result.verdict,
                "; ".join(result.section_lines()),
                *(f"{p:.6f}" for p in result.mean_probabilities),
            ]
        )
    return buffer.getvalue()


def _analyze_with_progress_bar(classifier, path: Path, max_seconds: float | None, disable: bool):
    """One song, with a bar of windows on stderr while it runs (only on a terminal, and never with --quiet)."""
    from tqdm.auto import tqdm

    with tqdm(desc=path.name, unit="window", file=sys.stderr, disable=True if disable else None, leave=False) as bar:

        def advance(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        return classifier.analyze(path, max_seconds=max_seconds, progress=advance)


def run_analyze(args: argparse.Namespace) -> int:
    from .analysis import GenreClassifier
    from .files import save_figure_atomic, write_text_atomic
    from .plotting import plot_genre_report

    files = collect_audio_files(args.paths)
    single = len(files) == 1
    if args.plot and not single and Path(args.plot).suffix:
        raise CommandError("With several files, --plot takes a folder (one PNG per file is written there).")
    classifier = GenreClassifier.from_pretrained(
        args.model, batch_size=args.batch_size, device=args.device, dtype=args.dtype
    )
    max_seconds = args.max_minutes * 60 if args.max_minutes else None

    results, failures = [], []
    progress = None
    if not single:
        from tqdm.auto import tqdm

        progress = tqdm(files, desc="analysing", unit="file", file=sys.stderr, disable=args.quiet)
    for path in progress if progress is not None else files:
        try:
            if single:
                result = _analyze_with_progress_bar(classifier, path, max_seconds, disable=args.quiet)
            else:
                result = classifier.analyze(path, max_seconds=max_seconds)
        except ValueError as error:  # every bad-input error of the library is a ValueError
            if single:
                raise CommandError(str(error)) from error
            failures.append((path, str(error)))
            (progress.write if progress else print)(f"skipped {path}: {error}", file=sys.stderr)
            continue
        results.append((path, result))
        for note in result.notes:
            (progress.write if progress else print)(f"{PROGRAM}: warning: {note}", file=sys.stderr)
        if args.plot:
            plot_path = Path(args.plot) if single else Path(args.plot) / f"{path.stem}.png"
            save_figure_atomic(plot_genre_report(result), plot_path)

    if single:
        print(format_ranking(results[0][1]))
    else:
        for path, result in results:
            print(f"{path}\t{result.summary()}")
        print(f"{len(results)} analysed, {len(failures)} failed", file=sys.stderr)
    if args.json:
        payload = (
            results[0][1].to_dict() if single else [result.to_dict() | {"path": str(path)} for path, result in results]
        )
        write_text_atomic(args.json, json.dumps(payload, indent=2))
    if args.csv:
        write_text_atomic(args.csv, summary_csv(results, classifier.genres))
    return 1 if failures else 0


def run_convert(args: argparse.Namespace) -> int:
    import shutil

    import torch

    from .feature_extraction_genre_vit import GenreViTFeatureExtractor
    from .modeling_genre_vit import GenreViTForAudioClassification

    source, target = Path(args.source), Path(args.target)
    if target.exists() and any(target.iterdir()):
        raise CommandError(f"{target} exists and is not empty.")
    try:
        model = GenreViTForAudioClassification.from_pretrained(source, dtype=getattr(torch, args.dtype))
        feature_extractor = GenreViTFeatureExtractor.from_pretrained(source)
    except OSError as error:
        raise CommandError(f"Could not load a GenreViT model from {source}: {error}") from error
    model.save_pretrained(target, max_shard_size=args.max_shard_size)
    feature_extractor.save_pretrained(target)
    for name in RECORD_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)
    size = sum(p.stat().st_size for p in target.glob("*.safetensors")) / 1e6
    print(f"{target}: {args.dtype} weights, {size:.1f} MB of safetensors")
    return 0


def build_parser() -> argparse.ArgumentParser:

    parser = argparse.ArgumentParser(prog=PROGRAM, description="GenreViT: music-genre classification of whole songs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    analyze = commands.add_parser(
        "analyze",
        help="analyse songs: genre ranking, per-window probabilities, plots",
        description="Analyse audio files (or every audio file in folders) with a GenreViT model.",
    )
    analyze.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders of audio files")
    analyze.add_argument(
        "--model", help="model folder or Hub repo id (default: $GENRE_VIT_MODEL, else the bundled model)"
    )
    analyze.add_argument("--json", metavar="FILE", help="write the full result(s) as JSON")
    analyze.add_argument("--csv", metavar="FILE", help="write one summary row per file as CSV")
    analyze.add_argument(
        "--plot",
        metavar="FILE_OR_DIR",
        help="write the bar chart and the timeline as an image (a folder for several files)",
    )
    analyze.add_argument("--batch-size", type=int, default=32, metavar="N", help="windows per forward pass (32)")
    analyze.add_argument("--device", default="auto", help="cpu, cuda, or auto (default: cuda when available)")
    analyze.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "bfloat16", "float16"],
        help="compute dtype (float32; bfloat16 is faster on a GPU)",
    )
    analyze.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        metavar="M",
        help="refuse audio longer than M minutes (default: no limit)",
    )
    analyze.add_argument("--quiet", action="store_true", help="no progress bar")
    analyze.set_defaults(handler=run_analyze)

    convert = commands.add_parser(
        "convert",
        help="re-save a model folder in another dtype, in shards (e.g. float16 to ship it)",
        description="Re-save a GenreViT model folder (weights, feature extractor, run record, card) in another dtype.",
    )
    convert.add_argument("source", help="model folder")
    convert.add_argument("target", help="new, empty folder")
    convert.add_argument("--dtype", default="float16", choices=["float32", "float16", "bfloat16"])
    convert.add_argument(
        "--max-shard-size", default=MAX_SHARD_SIZE, help=f"largest safetensors shard ({MAX_SHARD_SIZE})"
    )
    convert.set_defaults(handler=run_convert)
    return parser


def _die_of_broken_pipe() -> None:
    """End as standard Unix tools do when the reader of their output has gone (`... | head`): silently, killed by
    SIGPIPE (exit status 141 in a shell). Python would otherwise report the BrokenPipeError, or print "Exception
    ignored" when it flushes stdout at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGPIPE)
    sys.exit(1)  # no SIGPIPE on this platform


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # weight-loading bars would drown the result table
    try:
        status = args.handler(args)
        sys.stdout.flush()  # inside the try: a closed pipe must surface here, not at interpreter exit
        return status
    except BrokenPipeError:
        _die_of_broken_pipe()
    except (CommandError, ValueError, OSError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"{PROGRAM}: error: {message}", file=sys.stderr)
        return 2


__all__ = ["build_parser", "main"]
