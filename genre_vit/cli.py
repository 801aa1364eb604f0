"""Command line: `python -m genre_vit analyze PATH... [--model ...]`.

It only calls the library (`GenreClassifier`, the plot functions, the atomic writers).
"""

import argparse
import contextlib
import csv
import io
import json
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from .allocator import tune_malloc
from .audio import AUDIO_FILE_SUFFIXES
from .model_folder import MAX_SHARD_SIZE, RECORD_FILES

PROGRAM = "genre-vit"
"""The installed command's name, which its messages start with (also under `python -m genre_vit`)."""


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
    lines = [f"{result.source or 'audio'}: {result.summary()}"]
    if result.answer_reason():
        lines.append(f"  {result.answer_reason()}")
    lines += ["", f"  {'genre':<10} {'probability':>11}"]
    for genre, probability in result.ranked():
        bar = "█" * int(round(probability * 30))
        lines.append(f"  {genre:<10} {probability:>10.1%}  {bar}")
    lines += ["", "Sections:"] + [f"  {line}" for line in result.section_lines()]
    return "\n".join(lines)


def summary_csv(rows: list[tuple[Path, object]], genres: Sequence[str]) -> str:
    """One row per analysed file: path, duration, windows, top genre, confidence, verdict, answer kind, genre
    distance, sections, the decoder's notes (e.g. a file cut short), then the mean probabilities."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["path", "duration_seconds", "windows", "top_genre", "confidence", "verdict", "answer", "genre_distance"]
    writer.writerow([*header, "sections", "notes", *genres])
    for path, result in rows:
        writer.writerow(
            [
                str(path),
                f"{result.duration_seconds:.3f}",
                result.num_windows,
                result.top_genre,
                f"{result.confidence:.6f}",
                result.verdict,
                result.answer,
                "" if result.genre_distance is None else f"{result.genre_distance:.4f}",
                "; ".join(result.section_lines()),
                " ".join(result.notes),
                *(f"{p:.6f}" for p in result.mean_probabilities),
            ]
        )
    return buffer.getvalue()


class Distributed:
    """This process's share of a multi-process run launched by `torchrun` (or `accelerate launch`), which set
    `RANK`, `WORLD_SIZE` and `LOCAL_RANK`; a single process is rank 0 of 1.

    Rank r analyses files r, r + N, r + 2N, ... and writes its rows to a part file next to each output; then every
    rank says whether it succeeded (`agree`: gloo on CPUs, NCCL on GPUs), and where all did, rank 0 merges the parts
    in the files' order into the one output and removes them. A rank that fails says so too, so the others end with
    an error instead of waiting for it. Several nodes need the output folder on a shared filesystem.
    """

    def __init__(self):
        self.rank = int(os.environ.get("RANK", "0"))
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def device(self, requested: str) -> str:
        """Each rank on its own GPU when GPUs are used."""
        import torch

        if self.active and requested in ("auto", "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return requested

    def share(self, files: list[Path]) -> list[Path]:
        return files[self.rank :: self.world_size]

    def agree(self, succeeded: bool) -> bool:
        """Wait for every rank and tell whether all of them succeeded (True for a single process)."""
        if not self.active:
            return succeeded
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        outcomes = [None] * self.world_size
        dist.all_gather_object(outcomes, succeeded)
        return all(outcomes)

    def close(self) -> None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()

    def part(self, path: str | os.PathLike, rank: int | None = None) -> Path:
        rank = self.rank if rank is None else rank
        return Path(f"{path}.part-{rank}-of-{self.world_size}")


def _analyze_with_progress_bar(classifier, path: Path, max_seconds: float | None, disable: bool):
    """One song, with a bar of windows on stderr while it runs (only on a terminal, and never with --quiet)."""
    from tqdm.auto import tqdm

    with tqdm(desc=path.name, unit="window", file=sys.stderr, disable=True if disable else None, leave=False) as bar:

        def advance(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        return classifier.analyze(path, max_seconds=max_seconds, progress=advance)


def run_analyze(args: argparse.Namespace) -> int:
    files = collect_audio_files(args.paths)
    single = len(files) == 1
    if args.plot and not single and Path(args.plot).suffix:
        raise CommandError("With several files, --plot takes a folder (one PNG per file is written there).")
    distributed = Distributed()
    if distributed.active and single:
        raise CommandError("A distributed run needs several files (a folder) to share between its processes.")
    if not distributed.active:
        return _analyze_files(args, files, distributed)
    try:
        failed = _analyze_files(args, files, distributed)
    except BaseException:
        distributed.agree(False)  # the other ranks end instead of waiting for this one
        distributed.close()
        raise
    if not distributed.agree(True):
        distributed.close()
        raise CommandError("Another process of this distributed run failed (its messages say why); nothing was merged.")
    if distributed.rank == 0:
        _merge_outputs(args, files, distributed)
    distributed.close()
    return failed


def _analyze_files(args: argparse.Namespace, files: list[Path], distributed: Distributed) -> int:
    """This process's share of the files: analysed, printed, and written (whole, or as this rank's parts). Returns
    the exit status: 1 where a file could not be analysed."""
    from .analysis import GenreClassifier
    from .files import save_figure_atomic, write_text_atomic

    single = len(files) == 1
    classifier = GenreClassifier.from_pretrained(
        args.model, batch_size=args.batch_size, device=distributed.device(args.device), dtype=args.dtype
    )
    max_seconds = args.max_minutes * 60 if args.max_minutes else None

    def plot(path, result):
        if args.plot:
            from .plotting import plot_genre_report

            plot_path = Path(args.plot) if single else Path(args.plot) / f"{path.stem}.png"
            save_figure_atomic(plot_genre_report(result), plot_path)

    results, failures = [], []
    if single:
        path = files[0]
        try:
            result = _analyze_with_progress_bar(classifier, path, max_seconds, disable=args.quiet)
        except ValueError as error:
            raise CommandError(str(error)) from error
        results.append((path, result))
        for note in result.notes:
            print(f"{PROGRAM}: warning: {note}", file=sys.stderr)
        plot(path, result)
        print(format_ranking(result))
    else:
        from tqdm.auto import tqdm

        mine = distributed.share(files)
        with tqdm(
            total=len(mine), desc="analysing", unit="file", file=sys.stderr, disable=args.quiet or None
        ) as progress:
            for path, result in classifier.analyze_many(mine, max_seconds):
                progress.update()
                if isinstance(result, ValueError):
                    failures.append((path, str(result)))
                    progress.write(f"skipped {path}: {result}", file=sys.stderr)
                    continue
                results.append((path, result))
                for note in result.notes:
                    progress.write(f"{PROGRAM}: warning: {note}", file=sys.stderr)
                plot(path, result)
                print(f"{path}\t{result.summary()}", flush=True)
        print(f"{len(results)} analysed, {len(failures)} failed", file=sys.stderr)

    outputs = []
    if args.json:
        payload = (
            results[0][1].to_dict() if single else [result.to_dict() | {"path": str(path)} for path, result in results]
        )
        outputs.append((args.json, json.dumps(payload, indent=2)))
    if args.csv:
        outputs.append((args.csv, summary_csv(results, classifier.genres)))
    for path, text in outputs:
        write_text_atomic(distributed.part(path) if distributed.active else path, text)
    return 1 if failures else 0


def _merge_outputs(args: argparse.Namespace, files: list[Path], distributed: Distributed) -> None:
    """Rank 0: every rank's parts of each output, merged in the files' order into the output; the parts removed."""
    from .files import write_text_atomic

    order = {str(path): index for index, path in enumerate(files)}
    for path, kind in ((args.json, "json"), (args.csv, "csv")):
        if not path:
            continue
        parts = [distributed.part(path, rank) for rank in range(distributed.world_size)]
        write_text_atomic(path, _merge_parts(parts, kind, order))
        for part in parts:
            part.unlink()


def _merge_parts(parts: list[Path], kind: str, order: dict[str, int]) -> str:
    """One CSV (one header) or one JSON list from the ranks' parts, rows in the order of the files."""
    if kind == "json":
        items = [item for part in parts for item in json.loads(part.read_text())]
        items.sort(key=lambda item: order[item["path"]])
        return json.dumps(items, indent=2)
    header, rows = None, []
    for part in parts:
        reader = csv.reader(io.StringIO(part.read_text()))
        header = next(reader)
        rows.extend(reader)
    rows.sort(key=lambda row: order[row[0]])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


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
        default="auto",
        choices=["auto", "float32", "bfloat16", "float16"],
        help="compute dtype (auto: bfloat16 on a CPU that runs it natively, else float32; float32 for the "
        "exact reference path)",
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


@contextlib.contextmanager
def _native_stderr_discarded() -> Iterator[None]:
    """Native decoders (libmpg123 inside libsndfile) print warnings such as "Xing stream size off by more than 1%"
    straight to file descriptor 2, which would break the command's one-line messages; what matters (a file cut
    short) is already the decoder's own note. So, for the command's run, descriptor 2 points at the null device
    while Python's `sys.stderr` keeps the terminal through a duplicate of it."""
    try:
        sys.stderr.flush()
        terminal = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no descriptor 2 to keep
        yield
        return
    python_stderr = sys.stderr
    sys.stderr = os.fdopen(
        terminal, "w", buffering=1, encoding=getattr(python_stderr, "encoding", None) or "utf-8", errors="replace"
    )
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)
        sys.stderr.close()
        sys.stderr = python_stderr


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    tune_malloc()  # the model's large activations reuse memory instead of faulting in new pages (genre_vit.allocator)
    with _native_stderr_discarded():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
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
