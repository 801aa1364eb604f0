"""GenreViT demo: upload a song or record one, see its genres and how they move through the track.

Run `python app.py` (a Hugging Face Space runs the same file). Settings, all optional, from the environment:

- `GENRE_VIT_MODEL`: a model folder or Hub repo id; default: the checkpoint bundled in `checkpoints/`, if any.
- `GENRE_VIT_MAX_UPLOAD_MB` (50) and `GENRE_VIT_MAX_MINUTES` (15): the largest upload and the longest audio accepted.
- `GENRE_VIT_CONCURRENCY` (2): requests analysed at once; the rest wait in the queue.
- `GRADIO_SERVER_NAME`, `GRADIO_SERVER_PORT`: where to listen (Gradio's own variables).

The page only calls the library: `GenreClassifier.analyze` and the plot functions. The model is loaded once, when
the process starts; without a model the page still opens and says how to provide one.
"""

import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from genre_vit import GenreAnalysis
from genre_vit.analysis import MODEL_ENV_VAR, GenreClassifier, default_model_source
from genre_vit.audio import format_duration
from genre_vit.plotting import plot_genre_timeline

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
GRADIO_CACHE_CLEANUP = (600, 1800)
"""Every 10 minutes Gradio deletes the uploads and outputs it cached more than 30 minutes ago."""

logger = logging.getLogger("genre_vit.app")


@dataclass(frozen=True)
class Limits:
    """What the app accepts: upload size in MB, audio length in minutes, requests analysed at once."""

    max_upload_mb: float = 50.0
    max_minutes: float = 15.0
    concurrency: int = 2

    @classmethod
    def from_environment(cls) -> "Limits":
        return cls(
            max_upload_mb=float(os.environ.get("GENRE_VIT_MAX_UPLOAD_MB", cls.max_upload_mb)),
            max_minutes=float(os.environ.get("GENRE_VIT_MAX_MINUTES", cls.max_minutes)),
            concurrency=int(os.environ.get("GENRE_VIT_CONCURRENCY", cls.concurrency)),
        )


class ResultFiles:
    """The JSON downloads of recent results, in one folder of this process that is removed when it exits.

    Gradio copies a file that a handler returns into its own cache as soon as the handler returns (and
    `GRADIO_CACHE_CLEANUP` clears that cache), so only the last `keep` results are kept here; older ones are
    deleted as new ones arrive, and the folder never grows past `keep` entries.
    """

    def __init__(self, keep: int = 16):
        self._folder = tempfile.TemporaryDirectory(prefix="genre-vit-results-")
        self.path = Path(self._folder.name)
        self.keep = keep
        self._lock = threading.Lock()

    def save(self, result: GenreAnalysis, name: str) -> Path:
        """Write `result` as `<name>-genres.json` in a fresh sub-folder (so downloads keep the song's name)."""
        target = self.path / uuid.uuid4().hex / f"{Path(name).stem}-genres.json"
        result.save_json(target)
        with self._lock:
            entries = sorted(self.path.iterdir(), key=lambda entry: entry.stat().st_mtime_ns)
            for old in entries[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)
        return target

    def cleanup(self) -> None:
        self._folder.cleanup()


class BadInput(gr.Error):
    """A user's bad input: shown on the page, logged as one line, no traceback (those are for real bugs)."""

    def __init__(self, message: str):
        super().__init__(message, print_exception=False)
        logger.warning("rejected input: %s", message)


def load_classifier() -> tuple[GenreClassifier | None, str]:
    """The classifier for this process, and a line saying which model it is (or why there is none)."""
    source = default_model_source()
    if source is None:
        return None, (
            f"**No model is configured.** Set `{MODEL_ENV_VAR}` to a model folder or a Hub repo id "
            "(e.g. one written by `train.py`) and restart the app."
        )
    try:
        classifier = GenreClassifier.from_pretrained(source)
    except ValueError as error:
        return None, f"**The model could not be loaded.** {error}"
    return classifier, f"Model: `{source}` on {classifier.device.type}."


def window_table(result: GenreAnalysis) -> list[list[str]]:
    """One row per window: start, end, top genre, its probability."""
    return [
        [format_duration(start), format_duration(end), result.genres[row.argmax()], f"{row.max():.0%}"]
        for start, end, row in zip(result.window_start_times, result.window_end_times, result.window_probabilities)
    ]


def analyze_audio(
    audio_path: str | None, classifier: GenreClassifier | None, limits: Limits, result_files: ResultFiles
):
    """The request handler: an uploaded or recorded file -> (label chart, timeline figure, window table, JSON file,
    summary). Bad input raises `gr.Error` with a message for the page."""
    if classifier is None:
        raise BadInput(f"No model is loaded. Set {MODEL_ENV_VAR} and restart the app.")
    if not audio_path:
        raise BadInput("Upload a song or record one first.")
    size_mb = os.path.getsize(audio_path) / 1e6
    if size_mb > limits.max_upload_mb:
        raise BadInput(f"The file is {size_mb:.0f} MB; the limit is {limits.max_upload_mb:g} MB.")
    try:
        result = classifier.analyze(audio_path, max_seconds=limits.max_minutes * 60)
    except ValueError as error:  # every bad-input error of the library is a ValueError with a user-facing message
        raise BadInput(str(error)) from None
    summary = result.summary()
    notes = list(result.notes)
    if result.num_windows == 1 and result.duration_seconds < classifier.feature_extractor.window_seconds:
        notes.append(
            f"The audio is shorter than {classifier.feature_extractor.window_seconds:g} s: it was zero-padded "
            "and the result comes from a single window."
        )
    for note in notes:
        gr.Warning(note)
        summary += f" ({note})"
    json_path = result_files.save(result, Path(audio_path).name)
    labels = {genre: float(probability) for genre, probability in result.ranked()}
    return labels, plot_genre_timeline(result), window_table(result), str(json_path), summary


def build_demo(
    classifier: GenreClassifier | None, model_line: str, limits: Limits, result_files: ResultFiles | None = None
) -> gr.Blocks:
    examples = sorted(str(path) for path in EXAMPLES_DIR.glob("*.ogg"))
    result_files = result_files or ResultFiles(keep=max(16, 4 * limits.concurrency))
    with gr.Blocks(title="GenreViT: music genre over time", delete_cache=GRADIO_CACHE_CLEANUP) as demo:
        gr.Markdown(
            "# GenreViT\nUpload a song or record from the microphone: the genre of the whole song, and how it moves "
            "through the track, window by window (4-s windows every 2 s).\n\n"
            f"{model_line} Limits: {limits.max_upload_mb:g} MB, {limits.max_minutes:g} minutes."
        )
        with gr.Row():
            with gr.Column(scale=1):
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Song", elem_id="song")
                analyze_button = gr.Button(
                    "Analyze", variant="primary", interactive=classifier is not None, elem_id="analyze"
                )
                if examples:
                    gr.Examples(examples=examples, inputs=audio, label="Synthesized examples (CC0)")
            with gr.Column(scale=1):
                summary = gr.Textbox(label="Summary", interactive=False, elem_id="summary")
                labels = gr.Label(num_top_classes=10, label="Genres (mean over the song)", elem_id="genre-label")
        timeline = gr.Plot(label="Genre over time", elem_id="timeline")
        with gr.Row():
            table = gr.Dataframe(
                headers=["start", "end", "top genre", "confidence"],
                label="Windows",
                interactive=False,
                elem_id="windows-table",
            )
            download = gr.File(label="Full result (JSON)", elem_id="result-json")
        analyze_button.click(
            lambda path: analyze_audio(path, classifier, limits, result_files),
            inputs=audio,
            outputs=[labels, timeline, table, download, summary],
            api_name="analyze",
        )
    demo.queue(default_concurrency_limit=limits.concurrency, max_size=64)
    return demo


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    # A Space or a supervisor stops the app with SIGTERM: exit normally, so the result folder is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    limits = Limits.from_environment()
    classifier, model_line = load_classifier()
    print(f"GenreViT start-up: {model_line}", flush=True)
    demo = build_demo(classifier, model_line, limits)
    demo.launch(max_file_size=f"{limits.max_upload_mb:g}mb", show_error=True)


if __name__ == "__main__":
    main()
