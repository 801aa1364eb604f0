"""GenreViT demo: upload a song or play into the microphone, see its genres and how they move through the track.

Run `python app.py` (a Hugging Face Space runs the same file). Settings, all optional, from the environment:

- `GENRE_VIT_MODEL`: a model folder or Hub repo id; default: the checkpoint bundled in `checkpoints/`, if any.
- `GENRE_VIT_MAX_UPLOAD_MB` (50) and `GENRE_VIT_MAX_MINUTES` (15): the largest upload and the longest audio accepted.
- `GENRE_VIT_MAX_LIVE_MINUTES` (5): the longest live microphone session.
- `GENRE_VIT_CONCURRENCY` (2): requests handled at once (their model passes take turns); the rest wait in the queue.
- `GENRE_VIT_DTYPE` (auto): the compute dtype, `auto` (bfloat16 on a CPU that runs it natively, float32 on a GPU) or
  `float32`.
- `GRADIO_SERVER_NAME`, `GRADIO_SERVER_PORT`: where to listen (Gradio's own variables).

The page only calls the library: `GenreClassifier.analyze` / `explain`, `LiveAnalysis` for the microphone, and the
pure plot functions. The model is loaded once, when the process starts; without a model the page still opens and
says how to provide one. Bad input gets one message in the status line (never an error badge on every panel), and
size and length limits are checked as soon as a file is uploaded.
"""

import html
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np

from genre_vit import GenreAnalysis
from genre_vit.allocator import tune_malloc
from genre_vit.analysis import MODEL_ENV_VAR, GenreClassifier, default_model_source
from genre_vit.audio import AUDIO_FILE_SUFFIXES, format_duration, probe_duration
from genre_vit.capture import CaptureError, CaptureRegistry
from genre_vit.explain import METHOD_SENTENCE
from genre_vit.files import write_atomic
from genre_vit.live import LiveAnalysis
from genre_vit.model_folder import accuracy_statement, model_name
from genre_vit.plotting import genre_color, plot_genre_timeline, plot_window_explanation, text_color_on
from genre_vit.sections import DEFAULT_MIN_SECTION_SECONDS, DEFAULT_SWITCH_PENALTY

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
GRADIO_CACHE_CLEANUP = (600, 1800)
"""Every 10 minutes Gradio deletes the uploads and outputs it cached more than 30 minutes ago."""

LIVE_UPDATE_SECONDS = 2.0
"""The microphone sends its audio every hop: one new window per update."""

CAPTURE_COOKIE = "genre_vit_capture"
CAPTURE_ROUTE = "/genre-vit/capture/{capture_id}"

MICROPHONE_HEAD = """<script>
(() => {
  // Two things about the page's microphone that Gradio's recorder does not do.
  // 1. Music-grade capture: Gradio asks with {audio: true}, which leaves the browser's voice processing on (echo
  //    cancellation, noise suppression, automatic gain), and that reshapes music: a metal clip was heard as hip-hop.
  // 2. Nothing lost: Gradio's streaming drops a chunk that is ready while the previous one is still being answered.
  //    So the page taps the same stream itself and posts every sample, in numbered pieces every half second, to the
  //    server (CAPTURE_ROUTE), which puts them back in order; the cookie tells the live handlers which capture is
  //    this page's. Gradio's chunks then only pace the updates.
  const devices = navigator.mediaDevices;
  if (!devices || !devices.getUserMedia || devices.getUserMedia.genreVit) return;
  const original = devices.getUserMedia.bind(devices);
  const tapSource = `class GenreVitTap extends AudioWorkletProcessor {
    process(inputs) {
      const channels = inputs[0];
      if (channels && channels.length) {
        const mono = new Float32Array(channels[0].length);
        for (const channel of channels) for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / channels.length;
        this.port.postMessage(mono, [mono.buffer]);
      }
      return true;
    }
  }
  registerProcessor("genre-vit-tap", GenreVitTap);`;
  const post = async (url, body) => {
    for (let attempt = 0; attempt < 6; attempt++) {
      try {
        const headers = { "Content-Type": "application/octet-stream" };
        const response = await fetch(url, { method: "POST", body, headers });
        if (response.ok || response.status < 500) return;
      } catch (error) {}
      await new Promise((resolve) => setTimeout(resolve, 250 * (attempt + 1)));
    }
  };
  const capture = async (stream) => {
    const id = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
    const context = new AudioContext();
    await context.audioWorklet.addModule(URL.createObjectURL(new Blob([tapSource], { type: "text/javascript" })));
    const source = context.createMediaStreamSource(stream);
    const tap = new AudioWorkletNode(context, "genre-vit-tap");
    let pieces = [], length = 0, number = 0, sending = Promise.resolve(), closed = false;
    tap.port.onmessage = (event) => { pieces.push(event.data); length += event.data.length; };
    source.connect(tap);
    tap.connect(context.destination);  // silent: the tap writes no output, but a node that reaches the output runs
    const send = (final) => {
      const samples = new Float32Array(length);
      let offset = 0;
      for (const piece of pieces) { samples.set(piece, offset); offset += piece.length; }
      pieces = []; length = 0;
      const url = `genre-vit/capture/${id}?piece=${number++}&rate=${context.sampleRate}${final ? "&final=1" : ""}`;
      sending = sending.then(() => post(url, samples.buffer));
      return sending;
    };
    const timer = setInterval(() => send(false), 500);
    for (const track of stream.getAudioTracks()) {
      const stop = track.stop.bind(track);
      track.stop = () => {
        if (!closed) {
          closed = true;
          clearInterval(timer);
          source.disconnect();
          send(true).then(() => context.close());
        }
        stop();
      };
    }
    document.cookie = `CAPTURE_COOKIE=${id}; path=/; SameSite=Strict`;
  };
  const forMusic = async (constraints) => {
    if (!constraints || !constraints.audio) return original(constraints);
    const audio = constraints.audio === true ? {} : constraints.audio;
    const unprocessed = { echoCancellation: false, noiseSuppression: false, autoGainControl: false };
    const stream = await original({ ...constraints, audio: { ...audio, ...unprocessed } });
    document.cookie = "CAPTURE_COOKIE=; path=/; max-age=0";  // until this capture runs, Gradio's chunks count
    try {
      await capture(stream);
    } catch (error) {
      console.warn("GenreViT: the page could not tap the microphone; Gradio's stream is used instead.", error);
    }
    return stream;
  };
  forMusic.genreVit = true;
  devices.getUserMedia = forMusic;
})();
</script>""".replace("CAPTURE_COOKIE", CAPTURE_COOKIE).replace("CAPTURE_ROUTE", CAPTURE_ROUTE)
"""Page head script: music-grade, lossless microphone capture (see its comments)."""

CAPTURE_WAIT_SECONDS = 5.0
"""How long the end of a recording waits for the page's last pieces of audio."""

CSS = """
.offscreen { position: absolute !important; left: -10000px; width: 1px; height: 1px; overflow: hidden; }
#verdict { font-size: 1.4em; }
.panel-heading { margin: 0 0 0.3em; font-size: 1em; font-weight: 600; }
.answer-badge { padding: 0 0.3em; border-radius: 3px; }
.answer-badge.neutral-answer { background: transparent; color: inherit; border: 2px solid currentColor; }
.answer-reason { margin: 0.3em 0 0; font-size: 1em; }
#status:empty { display: none; }
#status .bad-input { border-left: 4px solid #d33; padding: 6px 10px; background: rgba(221, 51, 51, 0.08); }
.genre-swatch { display: inline-block; width: 0.9em; height: 0.9em; border-radius: 2px; margin-right: 0.35em;
  vertical-align: -0.1em; border: 1px solid rgba(0, 0, 0, 0.25); }
.genre-bars { width: 100%; border-collapse: collapse; font-size: 0.95em; }
.genre-bars td { padding: 2px 4px; white-space: nowrap; }
.genre-bars td.bar { width: 100%; }
.genre-bars .fill { height: 0.9em; border-radius: 2px; min-width: 1px; }
.sections-list { margin: 0; padding-left: 0; list-style: none; }
.sections-list li { margin: 2px 0; }
.windows-scroll { max-height: 22em; overflow: auto; max-width: 100%; }
.windows-scroll table { width: 100%; border-collapse: collapse; font-size: 0.9em; }
.windows-scroll th, .windows-scroll td { padding: 2px 6px; text-align: left; white-space: nowrap; }
.windows-scroll th { position: sticky; top: 0; z-index: 1;
  background: var(--block-background-fill, var(--background-fill-primary, #fff)); }
#timeline img, #why img { width: 100%; height: auto; }
@media (max-width: 600px) { .gradio-container { padding: 4px !important; } h1 { font-size: 1.4em; } }
"""

logger = logging.getLogger("genre_vit.app")


@dataclass(frozen=True)
class Limits:
    """What the app accepts: upload size in MB, audio length in minutes, live-session length in minutes, requests
    analysed at once."""

    max_upload_mb: float = 50.0
    max_minutes: float = 15.0
    max_live_minutes: float = 5.0
    concurrency: int = 2

    @classmethod
    def from_environment(cls) -> "Limits":
        return cls(
            max_upload_mb=float(os.environ.get("GENRE_VIT_MAX_UPLOAD_MB", cls.max_upload_mb)),
            max_minutes=float(os.environ.get("GENRE_VIT_MAX_MINUTES", cls.max_minutes)),
            max_live_minutes=float(os.environ.get("GENRE_VIT_MAX_LIVE_MINUTES", cls.max_live_minutes)),
            concurrency=int(os.environ.get("GENRE_VIT_CONCURRENCY", cls.concurrency)),
        )


class ResultFiles:
    """The JSON downloads (and microphone recordings) of recent results, in one folder of this process that is
    removed when it exits.

    Gradio copies a file that a handler returns into its own cache as soon as the handler returns (and
    `GRADIO_CACHE_CLEANUP` clears that cache), so only the last `keep` results are kept here; older ones are
    deleted as new ones arrive, and the folder never grows past `keep` entries.
    """

    def __init__(self, keep: int = 16):
        self._folder = tempfile.TemporaryDirectory(prefix="genre-vit-results-")
        self.path = Path(self._folder.name)
        self.keep = keep
        self._lock = threading.Lock()

    def new_folder(self) -> Path:
        """A fresh sub-folder for one result (so downloads keep the song's name); the oldest ones are removed."""
        folder = self.path / uuid.uuid4().hex
        folder.mkdir()
        with self._lock:
            entries = sorted(self.path.iterdir(), key=lambda entry: entry.stat().st_mtime_ns)
            for old in entries[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)
        return folder

    def save(self, result: GenreAnalysis, waveform: np.ndarray, sampling_rate: int) -> tuple[Path, Path]:
        """Write `result` as `<source>-genres.json` and the analysed audio (the prepared mono waveform, float32 WAV)
        as `analysed.wav` in a fresh sub-folder; returns both paths. The audio is what an explanation of the song's
        windows reads later: no decoding again, and no dependence on Gradio's cache keeping the upload."""
        import soundfile

        folder = self.new_folder()
        json_path = result.save_json(folder / f"{Path(result.source or 'recording').stem}-genres.json")
        audio_path = folder / "analysed.wav"
        write_atomic(
            audio_path,
            lambda temporary: soundfile.write(temporary, waveform, sampling_rate, format="WAV", subtype="FLOAT"),
        )
        return json_path, audio_path

    def cleanup(self) -> None:
        self._folder.cleanup()


def reject(message: str) -> str:
    """A user's bad input: logged as one line (no traceback; those are for real bugs), and returned as the status
    line's HTML, the one place the page shows it."""
    logger.warning("rejected input: %s", message)
    return f'<div class="bad-input" role="alert">{html.escape(message)}</div>'


@dataclass(frozen=True)
class LoadedModel:
    """The process's classifier (or None) and what the page says about it."""

    classifier: GenreClassifier | None
    description: str
    """Markdown: the model's name and what its own records say of its accuracy, or why there is no model."""


def load_classifier() -> LoadedModel:
    """The classifier for this process, and a line saying which model it is (or why there is none)."""
    source = default_model_source()
    if source is None:
        return LoadedModel(
            None,
            f"**No model is configured.** Set `{MODEL_ENV_VAR}` to a model folder or a Hub repo id "
            "(e.g. one written by `train.py`) and restart the app.",
        )
    try:
        classifier = GenreClassifier.from_pretrained(source, dtype=os.environ.get("GENRE_VIT_DTYPE", "auto"))
    except ValueError as error:
        return LoadedModel(None, f"**The model could not be loaded.** {error}")
    logger.info("Model: %s on %s, computing in %s", source, classifier.device.type, classifier.dtype)
    accuracy = accuracy_statement(source) or "Its folder reports no accuracy on unseen tracks."
    return LoadedModel(classifier, f"Model **{model_name(source)}**. {accuracy}")


def _swatch(index: int) -> str:
    return f'<span class="genre-swatch" style="background:{genre_color(index)}"></span>'


def genre_bars_html(result: GenreAnalysis) -> str:
    """The mean genre probabilities as coloured bars, most likely first."""
    rows = []
    for genre, probability in result.ranked():
        index = result.genres.index(genre)
        rows.append(
            f"<tr><td>{_swatch(index)}{html.escape(genre)}</td><td>{probability:.0%}</td>"
            f'<td class="bar"><div class="fill" style="width:{probability * 100:.1f}%;'
            f'background:{genre_color(index)}"></div></td></tr>'
        )
    return (
        '<h4 class="panel-heading">Genres, mean over the song</h4>'
        f'<table class="genre-bars" aria-label="mean genre probabilities">{"".join(rows)}</table>'
    )


def sections_html(result: GenreAnalysis) -> str:
    """The sections, one per line: `0:00-1:12 rock (78%)` with the genre's colour."""
    sections = result.sections()
    items = [
        f"<li>{_swatch(result.genres.index(section.genre))}{html.escape(line)}</li>"
        for section, line in zip(sections, result.section_lines(sections))
    ]
    rule = (
        f"Smoothed top genre: a change must gather {DEFAULT_SWITCH_PENALTY:g} nats of evidence; sections shorter "
        f"than {DEFAULT_MIN_SECTION_SECONDS:g} s are merged into a neighbour."
    )
    return (
        f'<h4 class="panel-heading">Sections</h4><ul class="sections-list">{"".join(items)}</ul><small>{rule}</small>'
    )


def window_time(seconds: float) -> str:
    """A window's start or end for the table: `m:ss`, with tenths where it is not on a whole second (the last window
    ends with the audio, e.g. `0:10.1`-`0:14.1`, and would otherwise read like the grid's `0:10`-`0:14`)."""
    whole, tenths = divmod(int(round(seconds * 10)), 10)
    return format_duration(whole) + (f".{tenths}" if tenths else "")


def window_table_html(result: GenreAnalysis) -> str:
    """One row per window (start, end, top genre in its colour, its probability), in a scrolling box; a window
    without music says so instead of a genre."""
    rows = []
    windows = zip(
        result.window_start_times, result.window_end_times, result.window_probabilities, result.window_has_music
    )
    for start, end, row, has_music in windows:
        if not has_music:
            rows.append(
                f'<tr class="no-music"><td>{window_time(start)}</td><td>{window_time(end)}</td>'
                "<td>no music</td><td>–</td></tr>"
            )
            continue
        index = int(row.argmax())
        rows.append(
            f"<tr><td>{window_time(start)}</td><td>{window_time(end)}</td>"
            f"<td>{_swatch(index)}{html.escape(result.genres[index])}</td><td>{row[index]:.0%}</td></tr>"
        )
    header = "<tr><th>start</th><th>end</th><th>top genre</th><th>probability</th></tr>"
    return f'<div class="windows-scroll"><table><thead>{header}</thead><tbody>{"".join(rows)}</tbody></table></div>'


def answer_html(result: GenreAnalysis) -> str:
    """The verdict, large, in the top genre's colour where it names one genre (an outlined neutral badge for "none of
    the genres fits" and for a song that changes genre, so that no genre's colour reads as the answer), with the
    reason when it is not a confident genre."""
    if result.fits_none_of_these or result.changing_genres():
        badge = 'class="answer-badge neutral-answer"'
    else:
        color = genre_color(result.genres.index(result.top_genre))
        badge = f'class="answer-badge" style="background:{color};color:{text_color_on(color)}"'
    reason = result.answer_reason()
    rule = f'<p class="answer-reason">{html.escape(reason)}</p>' if reason else ""
    return f'<div id="verdict"><span {badge}>{html.escape(result.verdict)}</span></div>{rule}'


def window_choices(result: GenreAnalysis) -> list[tuple[str, float]]:
    """Dropdown entries `("0:10-0:14 rock 65%", start_seconds)`, one per window with music (a silent window has
    nothing to explain)."""
    windows = zip(
        result.window_start_times, result.window_end_times, result.window_probabilities, result.window_has_music
    )
    return [
        (f"{window_time(start)}-{window_time(end)} {result.genres[row.argmax()]} {row.max():.0%}", float(start))
        for start, end, row, has_music in windows
        if has_music
    ]


RESULT_OUTPUTS = (
    "status",
    "answer",
    "summary",
    "labels",
    "sections",
    "timeline",
    "window_choice",
    "why",
    "table",
    "download",
    "audio",
)
"""The names of the outputs an analysis updates; `build_demo` maps each to its component, so the handlers return
dicts by name (Gradio's dict returns) rather than tuples by position."""


def rejected_outputs(message: str) -> dict:
    """What every output shows after bad input: the message in the status line, everything else cleared."""
    cleared = {"answer": "", "summary": "", "labels": "", "sections": "", "table": ""}
    nothing = {"timeline": None, "why": None, "download": None, "audio": None}
    return {"status": reject(message), **cleared, **nothing, "window_choice": gr.update(choices=[], value=None)}


UPLOAD_HEAD = """<script>
(() => {
  // Gradio refuses a file that is not audio, or larger than the limit, with a toast in a corner before anything
  // reaches the server. Every refusal belongs in the status line, with the previous song's results cleared: so the
  // page checks the file first and hands the refusal to the server's one rejection path (REJECTION_ID).
  const limitBytes = MAX_UPLOAD_BYTES;
  const audioSuffixes = AUDIO_SUFFIXES;
  const megabytes = (bytes) => (bytes < 1e7 ? (bytes / 1e6).toFixed(1) : Math.round(bytes / 1e6)) + ' MB';
  const problem = (file) => {
    const suffix = file.name.includes('.') ? file.name.split('.').pop().toLowerCase() : '';
    if (!audioSuffixes.includes(suffix) && !(file.type || '').startsWith('audio/'))
      return `${file.name} is not an audio file: upload a song (MP3, WAV, FLAC, OGG, Opus, M4A or AAC).`;
    if (file.size > limitBytes)
      return `${file.name} is ${megabytes(file.size)}; the limit is ${megabytes(limitBytes)}.`;
    return null;
  };
  const refuse = (event, files) => {
    const message = files && files.length ? problem(files[0]) : null;
    if (!message) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    if (event.type === 'change') event.target.value = '';
    // the box's change event carries it; emptied first, so that the same refusal twice is two changes
    const box = document.querySelector('#REJECTION_ID textarea');
    for (const value of ['', message]) {
      box.value = value;
      box.dispatchEvent(new Event('input', {bubbles: true}));
    }
  };
  document.addEventListener('change', (event) => {
    if (event.target.closest && event.target.closest('#song') && event.target.files) refuse(event, event.target.files);
  }, true);
  document.addEventListener('drop', (event) => {
    const files = event.dataTransfer && event.dataTransfer.files;
    if (event.target.closest && event.target.closest('#song')) refuse(event, files);
  }, true);
})();
</script>"""


def upload_head(limits: Limits) -> str:
    """`UPLOAD_HEAD` with this server's upload limit and the audio suffixes it accepts."""
    return (
        UPLOAD_HEAD.replace("MAX_UPLOAD_BYTES", str(int(limits.max_upload_mb * 1e6)))
        .replace("AUDIO_SUFFIXES", json.dumps(sorted(suffix.lstrip(".") for suffix in AUDIO_FILE_SUFFIXES)))
        .replace("REJECTION_ID", BROWSER_REJECTION_ID)
    )


BROWSER_REJECTION_ID = "browser-rejection"
"""The hidden text box through which the page's own upload check (`UPLOAD_HEAD`) reports a refused file."""


def megabytes(size_bytes: float) -> str:
    """`2.4 MB` under 10 MB, `62 MB` above: the size as the status line says it (the page's script says it alike)."""
    return f"{size_bytes / 1e6:.1f} MB" if size_bytes < 1e7 else f"{size_bytes / 1e6:.0f} MB"


def browser_rejected(message: str) -> dict:
    """The page's own upload check refused a file (`UPLOAD_HEAD`): the same outputs as `check_upload`'s refusal.
    An empty message is the box being emptied before the next one, and changes nothing."""
    if not message:
        return {"song": gr.skip(), "upload_rejection": gr.skip()} | {name: gr.skip() for name in RESULT_OUTPUTS}
    return rejected_outputs(message) | {"song": None, "upload_rejection": message}


def upload_problem(audio_path: str, limits: Limits) -> str | None:
    """Why an uploaded file cannot be analysed, from its size and header alone (None if it looks fine)."""
    if not os.path.isfile(audio_path):
        return f"{Path(audio_path).name} is no longer on the server; upload it again."
    size = os.path.getsize(audio_path)
    if size > limits.max_upload_mb * 1e6:
        return f"{Path(audio_path).name} is {megabytes(size)}; the limit is {megabytes(limits.max_upload_mb * 1e6)}."
    try:
        probe_duration(audio_path, max_seconds=limits.max_minutes * 60)
    except ValueError as error:
        return str(error)
    return None


def check_upload(audio_path: str | None, limits: Limits) -> dict:
    """Runs as soon as a file is uploaded: refuse what is too large, too long or not audio before anyone clicks.
    A refused file is taken out of the player, the previous song's results are cleared, and the reason stays (as
    `upload_rejection`) for an Analyze pressed afterwards. Returns outputs by name: `RESULT_OUTPUTS`, `song` (the
    upload player) and `upload_rejection`."""
    problem = upload_problem(audio_path, limits) if audio_path else None
    if problem is None:
        return {"song": gr.skip(), "status": "", "upload_rejection": ""}
    return rejected_outputs(problem) | {"song": None, "upload_rejection": problem}


def result_outputs(
    result: GenreAnalysis, classifier: GenreClassifier, waveform: np.ndarray, result_files: ResultFiles
) -> dict:
    """Everything the page shows for a finished analysis, by output name (`RESULT_OUTPUTS`).
    `waveform` is the analysed audio (mono, at the extractor's rate), kept with the result for explaining its windows
    later. The decoder's notes, and a note when the audio was shorter than one window, follow the summary.

    The explanation is not computed here: it is drawn when the "Why this genre?" panel is open (`explain_if_open`,
    chained after the analysis, or the panel's opening). Computing and drawing it for every request took a quarter
    of the server's time per upload, for a panel most visitors never open."""
    notes = list(result.notes)
    window_seconds = classifier.feature_extractor.window_seconds
    if result.num_windows == 1 and result.duration_seconds < window_seconds:
        notes.append(
            f"The audio is shorter than {window_seconds:g} s: it was zero-padded and the result comes from a single "
            "window."
        )
    summary = result.summary()
    for note in notes:
        summary += f" ({note})"
    json_path, audio_path = result_files.save(result, waveform, classifier.feature_extractor.sampling_rate)
    chosen = float(result.window_start_times[result.most_confident_window])
    return {
        "status": "",
        "answer": answer_html(result),
        "summary": summary,
        "labels": genre_bars_html(result),
        "sections": sections_html(result),
        "timeline": plot_genre_timeline(result),
        "window_choice": gr.update(choices=window_choices(result), value=chosen),
        "why": None,  # the previous song's explanation goes; `explain_if_open` draws this one's when the panel is open
        "table": window_table_html(result),
        "download": str(json_path),
        "audio": str(audio_path),
    }


def analyze_audio(
    audio_path: str | None,
    classifier: GenreClassifier | None,
    limits: Limits,
    result_files: ResultFiles,
    progress=None,
    upload_rejection: str = "",
) -> dict:
    """The upload handler: a file -> every result output by name (or the bad-input message and cleared outputs).
    `upload_rejection`: why the last upload was refused (`check_upload`), repeated where no file is left."""
    if classifier is None:
        return rejected_outputs(f"No model is loaded. Set {MODEL_ENV_VAR} and restart the app.")
    if not audio_path:
        return rejected_outputs(upload_rejection or "Upload a song or record one first.")
    problem = upload_problem(audio_path, limits)
    if problem is not None:
        return rejected_outputs(problem)

    def report(done: int, total: int) -> None:
        if progress is not None:
            progress((done, total), desc="Analysing windows", unit="windows")

    try:
        prepared, source = classifier.prepare(audio_path, max_seconds=limits.max_minutes * 60)
        result = classifier.analyze_prepared(prepared, source, progress=report)
    except ValueError as error:  # every bad-input error of the library is a ValueError with a user message
        return rejected_outputs(str(error))
    return result_outputs(result, classifier, prepared.waveform, result_files)


def explain_window(start_seconds, audio, classifier: GenreClassifier | None, limits: Limits):
    """The "why" plot for the window the user picked (None when there is nothing to explain)."""
    if classifier is None or audio is None or start_seconds is None:
        return None
    try:
        explanation = classifier.explain(audio, start_seconds=float(start_seconds), max_seconds=limits.max_minutes * 60)
    except ValueError:  # the file was analysed a moment ago; if it is gone, there is nothing to explain
        return None
    return plot_window_explanation(explanation)


def explain_if_open(panel_open: bool, start_seconds, audio, classifier: GenreClassifier | None, limits: Limits):
    """After an analysis: the "why" plot of the chosen window when the panel is open; otherwise nothing is computed
    (`gr.skip()`), and opening the panel draws it."""
    if not panel_open:
        return gr.skip()
    return explain_window(start_seconds, audio, classifier, limits)


def live_audio(chunk, capture_id: str | None, captures: CaptureRegistry | None) -> tuple[np.ndarray, int] | None:
    """The new audio of a live recording, `(samples, rate)`: what the page's own capture has delivered in order since
    the last call where the page runs one (`capture_id`, from its cookie, in `captures`), else Gradio's streamed
    chunk (an API client's recording). None where there is nothing."""
    if capture_id and captures is not None:
        capture = captures.get(capture_id)
        if capture is None:  # the page's first piece is still on its way: Gradio's chunk would start another stream
            return None
        return capture.take(), capture.sampling_rate
    if chunk is None:
        return None
    sampling_rate, samples = chunk
    return samples, sampling_rate


def live_update(
    chunk,
    session: LiveAnalysis | None,
    classifier: GenreClassifier | None,
    limits: Limits,
    capture_id: str | None = None,
    captures: CaptureRegistry | None = None,
) -> tuple:
    """Each 2 s of microphone audio: the windows it completes, the current genre and the timeline so far.
    The audio comes from `live_audio`. Returns (session, live line, timeline, status)."""
    audio = live_audio(chunk, capture_id, captures)
    if classifier is None or audio is None:
        return session, gr.skip(), gr.skip(), gr.skip()
    started = time.perf_counter()
    session = session or LiveAnalysis(classifier, max_seconds=limits.max_live_minutes * 60)
    samples, sampling_rate = audio
    try:
        added = session.add(samples, sampling_rate) if len(samples) else 0
    except ValueError as error:
        return session, gr.skip(), gr.skip(), reject(str(error))
    result = session.result()
    heard = format_duration(session.seconds_heard)
    if result is None:
        return session, f"Listening… {heard} heard; the first window needs 4 s.", gr.skip(), ""
    if added == 0:  # the browser may send audio more often than every hop: redraw only when a window is new
        return session, gr.skip(), gr.skip(), gr.skip()
    latest = result.window_probabilities[-1]
    genre = result.genres[int(latest.argmax())]
    line = (
        f"Now: **{genre}** ({latest.max():.0%}) — {heard} heard, {result.num_windows} windows "
        f"(update took {session.last_update_seconds * 1000:.0f} ms)"
    )
    figure = plot_genre_timeline(result)
    logger.info(
        "live update: %d windows; model %.0f ms, with the plot %.0f ms",
        result.num_windows,
        session.last_update_seconds * 1000,
        (time.perf_counter() - started) * 1000,
    )
    return session, line, figure, ""


def finish_live(
    session: LiveAnalysis | None,
    classifier: GenreClassifier | None,
    limits: Limits,
    result_files: ResultFiles,
    capture_id: str | None = None,
    captures: CaptureRegistry | None = None,
) -> dict:
    """When the recording stops: the full analysis of everything heard, like an upload, with the page's capture's
    last pieces (waited for up to `CAPTURE_WAIT_SECONDS`). Returns the result outputs by name and a fresh (empty)
    session as `live_session`."""
    capture = captures.get(capture_id) if captures is not None else None
    if classifier is not None and capture is not None:
        if not capture.wait_until_complete(CAPTURE_WAIT_SECONDS):
            logger.warning("live capture: the page's last pieces did not arrive within %g s", CAPTURE_WAIT_SECONDS)
        samples = capture.take()
        captures.remove(capture_id)
        session = session or LiveAnalysis(classifier, max_seconds=limits.max_live_minutes * 60)
        try:
            if samples.size:
                session.add(samples, capture.sampling_rate)
        except ValueError as error:
            return rejected_outputs(str(error)) | {"live_session": None}
    if classifier is None or session is None or session.seconds_heard == 0:
        return rejected_outputs("Nothing was recorded.") | {"live_session": None}
    try:
        result = session.finish()
    except ValueError as error:
        return rejected_outputs(str(error)) | {"live_session": None}
    return result_outputs(result, classifier, session.waveform(), result_files) | {"live_session": None}


def capture_of(request: gr.Request | None) -> str | None:
    """The id of the page's own microphone capture (`MICROPHONE_HEAD`), from its cookie; None without one."""
    cookies = getattr(request, "cookies", None) or {}
    return cookies.get(CAPTURE_COOKIE) or None


def add_capture_route(app, captures: CaptureRegistry, limits: Limits) -> None:
    """`POST CAPTURE_ROUTE?piece=N&rate=HZ[&final=1]` with float32 little-endian mono samples: one piece of a page's
    microphone capture (`MICROPHONE_HEAD`). Refusals are 4xx with a reason; the page does not retry those."""
    from fastapi import Request
    from fastapi.responses import JSONResponse

    max_piece_bytes = 4 * 192_000 * 10  # ten seconds at the highest rate a page may capture at

    async def receive_piece(capture_id: str, piece: int, rate: int, request: Request, final: bool = False):
        body = await request.body()
        if len(body) % 4 or len(body) > max_piece_bytes or piece < 0:
            return JSONResponse({"error": "A piece is float32 samples, at most ten seconds of them."}, status_code=400)
        try:
            captures.add(capture_id, piece, np.frombuffer(body, "<f4"), rate, limits.max_live_minutes * 60 + 10, final)
        except CaptureError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return {"received": piece}

    app.add_api_route(CAPTURE_ROUTE, receive_piece, methods=["POST"])


def build_demo(
    loaded: LoadedModel,
    limits: Limits,
    result_files: ResultFiles | None = None,
    captures: CaptureRegistry | None = None,
) -> gr.Blocks:
    classifier = loaded.classifier
    examples = sorted(str(path) for path in EXAMPLES_DIR.glob("*.ogg"))
    # Served from examples/ itself rather than copied into Gradio's cache, whose clean-up (GRADIO_CACHE_CLEANUP)
    # would delete the copies and break every example some 40 minutes after start.
    gr.set_static_paths([EXAMPLES_DIR])
    result_files = result_files or ResultFiles(keep=max(16, 4 * limits.concurrency))
    captures = captures or CaptureRegistry()
    with gr.Blocks(title="GenreViT: music genre over time", delete_cache=GRADIO_CACHE_CLEANUP) as demo:
        gr.Markdown(
            "# GenreViT\nUpload a song or play into the microphone: the genre of the whole song, its sections, and "
            "how the genre moves through the track, window by window (4-s windows every 2 s). "
            f"Limits: {limits.max_upload_mb:g} MB and {limits.max_minutes:g} min per file, "
            f"{limits.max_live_minutes:g} min live.",
            elem_id="intro",
        )
        status = gr.HTML(elem_id="status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300):
                with gr.Tabs():
                    with gr.Tab("Upload", id="upload"):
                        audio = gr.Audio(sources=["upload"], type="filepath", label="Song", elem_id="song")
                        analyze_button = gr.Button(
                            "Analyze", variant="primary", interactive=classifier is not None, elem_id="analyze"
                        )
                        if examples:
                            gr.Examples(
                                examples=examples,
                                inputs=audio,
                                label="Examples: real music from outside GTZAN (examples/README.md)",
                            )
                    with gr.Tab("Live microphone", id="live"):
                        microphone = gr.Audio(
                            sources=["microphone"],
                            type="numpy",
                            streaming=True,
                            label="Play or sing",
                            elem_id="microphone",
                            interactive=classifier is not None,
                        )
                        live_line = gr.Markdown("Press record: the genre updates every 2 s.", elem_id="live-now")
            with gr.Column(scale=1, min_width=300):
                answer = gr.HTML(elem_id="answer")
                summary = gr.Textbox(label="Summary", interactive=False, elem_id="summary")
                gr.Markdown(loaded.description, elem_id="model-accuracy")
                labels = gr.HTML(label="Genres (mean over the song)", elem_id="genre-label")
                sections = gr.HTML(label="Sections", elem_id="sections")
        with gr.Row(equal_height=False):  # side by side on a desktop, one above the other on a phone
            with gr.Column(scale=1, min_width=340):
                timeline = gr.Plot(label="Genre over time", elem_id="timeline", show_label=False)
            with gr.Column(scale=1, min_width=340):
                with gr.Accordion("Why this genre?", open=False, elem_id="why-panel") as why_panel:
                    window_choice = gr.Dropdown(label="Window to explain", choices=[], elem_id="why-window")
                    why = gr.Plot(elem_id="why", show_label=False)
                    gr.Markdown(METHOD_SENTENCE)
        table = gr.HTML(elem_id="windows-table")
        download = gr.File(label="Full result (JSON)", elem_id="result-json")
        analysed_audio = gr.State()
        live_session = gr.State()
        why_open = gr.State(False)
        upload_rejection = gr.State("")
        browser_rejection = gr.Textbox(elem_id=BROWSER_REJECTION_ID, elem_classes=["offscreen"], show_label=False)

        components = {
            "status": status,
            "answer": answer,
            "summary": summary,
            "labels": labels,
            "sections": sections,
            "timeline": timeline,
            "window_choice": window_choice,
            "why": why,
            "table": table,
            "download": download,
            "audio": analysed_audio,
            "live_session": live_session,
            "song": audio,
            "upload_rejection": upload_rejection,
        }
        result_components = [components[name] for name in RESULT_OUTPUTS]

        def by_component(outputs: dict) -> dict:
            return {components[name]: value for name, value in outputs.items()}

        def analyze_upload(path, rejection, progress=gr.Progress()):  # noqa: B008 (Gradio injects the tracker)
            return by_component(analyze_audio(path, classifier, limits, result_files, progress, rejection))

        audio.upload(
            lambda path: by_component(check_upload(path, limits)),
            inputs=audio,
            outputs=[audio, upload_rejection, *result_components],
            queue=False,
        )

        browser_rejection.change(
            lambda message: by_component(browser_rejected(message)),
            inputs=browser_rejection,
            outputs=[audio, upload_rejection, *result_components],
            queue=False,
            api_visibility="private",
        )

        def then_explain_if_open(event):
            event.then(
                lambda panel_open, start, path: explain_if_open(panel_open, start, path, classifier, limits),
                inputs=[why_open, window_choice, analysed_audio],
                outputs=why,
                show_progress="hidden",
                api_visibility="private",
            )

        then_explain_if_open(
            analyze_button.click(
                analyze_upload,
                inputs=[audio, upload_rejection],
                outputs=result_components,
                api_name="analyze",
                show_progress_on=answer,  # one progress bar, where the answer will be, not one on every panel
            )
        )
        window_choice.input(
            lambda start, path: explain_window(start, path, classifier, limits),
            inputs=[window_choice, analysed_audio],
            outputs=why,
            api_name="explain",
        )
        why_panel.expand(
            lambda start, path: (True, explain_window(start, path, classifier, limits)),
            inputs=[window_choice, analysed_audio],
            outputs=[why_open, why],
            api_visibility="private",
        )
        why_panel.collapse(lambda: False, outputs=why_open, queue=False, api_visibility="private")

        def stream_live(chunk, session, request: gr.Request):
            return live_update(chunk, session, classifier, limits, capture_of(request), captures)

        def stop_live(session, request: gr.Request):
            return by_component(finish_live(session, classifier, limits, result_files, capture_of(request), captures))

        microphone.stream(
            stream_live,
            inputs=[microphone, live_session],
            outputs=[live_session, live_line, timeline, status],
            stream_every=LIVE_UPDATE_SECONDS,
            time_limit=int(limits.max_live_minutes * 60) + 10,
            concurrency_limit=limits.concurrency,
            show_progress="hidden",
            api_name="live",
        )
        then_explain_if_open(
            microphone.stop_recording(
                stop_live,
                inputs=live_session,
                outputs=[*result_components, live_session],
                api_name="finish_live",
            )
        )
    demo.queue(default_concurrency_limit=limits.concurrency, max_size=64)
    return demo


def main() -> None:
    # Two arenas: a server's worker threads each get an arena by default (8 per core), and the freed memory of large
    # short-lived arrays (windows, plots) stays behind in each, so the process would grow for as long as it serves.
    tune_malloc(arenas=2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    # A Space or a supervisor stops the app with SIGTERM: exit normally, so the result folder is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    limits = Limits.from_environment()
    loaded = load_classifier()
    print(f"GenreViT start-up: {loaded.description}", flush=True)
    captures = CaptureRegistry()
    demo = build_demo(loaded, limits, captures=captures)
    demo.launch(
        max_file_size=f"{limits.max_upload_mb:g}mb",
        show_error=True,
        css=CSS,
        head=MICROPHONE_HEAD + upload_head(limits),
        prevent_thread_lock=True,
    )
    add_capture_route(demo.server_app, captures, limits)
    demo.block_thread()


if __name__ == "__main__":
    main()
