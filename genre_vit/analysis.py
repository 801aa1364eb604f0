"""Full-song genre analysis: the one library API that the CLI, the app and the scripts call.

`GenreClassifier` holds a model and its feature extractor and analyses songs in bounded blocks of windows;
`analyze_full_song` is the one-call form. Both return a `GenreAnalysis`.

Inference needs torch and numpy only: `GenreClassifier.from_pretrained` reads a model folder (or a Hub snapshot)
into the plain-PyTorch `GenreViTNetwork` and `LogMelWindowing`, without importing transformers. A loaded
`GenreViTForAudioClassification` and `GenreViTFeatureExtractor` (e.g. right after training) work as well.
"""

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from .audio import AudioTooShortError, DecodedAudio, SilentAudioError, prepare_waveform
from .explain import WindowExplanation, attention_rollout
from .model_folder import could_be_hub_id
from .network import GenreViTNetwork
from .results import GenreAnalysis
from .spectrogram import MUSIC_MIN_RMS_DBFS, LogMelWindowing, window_has_music

MODEL_ENV_VAR = "GENRE_VIT_MODEL"
"""Environment variable naming the default model: a local folder or a Hub repo id."""

SILENCE_PEAK_DBFS = -70.0
"""Audio whose loudest sample is below this level (dB relative to full scale) is treated as silence."""


SPECTROGRAM_FRAMES_PER_SECOND = 10.0
"""Time resolution of the song overview that results carry for drawing."""


class ModelNotFoundError(ValueError):
    """No model was given and none is configured."""


BUNDLED_MODEL_DIR = Path(__file__).resolve().parent.parent / "checkpoints" / "genre-vit-gtzan"
"""Where a source checkout keeps its shipped model (absent in an installed wheel, and until one is shipped)."""


def default_model_source() -> str | None:
    """The model to use when none is named: `$GENRE_VIT_MODEL`, else the bundled checkpoint if present, else None."""
    if os.environ.get(MODEL_ENV_VAR):
        return os.environ[MODEL_ENV_VAR]
    if (BUNDLED_MODEL_DIR / "config.json").is_file():
        return str(BUNDLED_MODEL_DIR)
    return None


def _download_model(repo_id: str, **hub_kwargs) -> Path:
    """The local snapshot of a Hub model repo: its JSON files and safetensors weights (downloaded once, then cached;
    with `HF_HUB_OFFLINE=1`, the cache only)."""
    from huggingface_hub import snapshot_download  # imported here: local folders do not need it

    return Path(snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors"], **hub_kwargs))


def _first_line(error: BaseException, limit: int = 200) -> str:
    text = str(error).strip().splitlines()
    line = text[0] if text else type(error).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def resolve_device(device: str | torch.device | None) -> torch.device:
    """`None`/`"auto"` -> CUDA when available, else CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA was asked for but no CUDA device is available; use --device cpu.")
    return device


def native_bfloat16(device: torch.device) -> bool:
    """Whether `device` computes in bfloat16 natively: a CUDA GPU that supports it, or a CPU with AVX512-BF16 or
    AMX-BF16 (read from /proc/cpuinfo; False where that is not available), where oneDNN runs bfloat16 matrix
    products several times faster than float32 ones."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"}) and torch.backends.mkldnn.is_available()
    except OSError:
        pass
    return False


def resolve_dtype(dtype: torch.dtype | str, device: torch.device) -> torch.dtype:
    """ "auto" -> bfloat16 on a CPU that runs it natively (`native_bfloat16`), else float32; a dtype name (e.g.
    "float32") -> that dtype. bfloat16 agrees with float32 on real music (benchmarks/bench_fast_path.py; measured
    figures in the README).

    On a GPU "auto" is float32: there the model is a small share of an analysis (13 ms of a 3-minute song's 0.5 s on
    an H100, the rest being decoding and features on the CPU), so bfloat16 gained 4% end to end while its first use
    cost a cold command line 1.4 s (6.5 against 5.2 s) and moved 0.4% of window answers."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cpu" and native_bfloat16(device) else torch.float32
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"Unknown dtype {dtype!r}; choose auto, float32, bfloat16 or float16.")
    return getattr(torch, dtype)


class GenreClassifier:
    """A GenreViT model and its feature extractor, ready to analyse songs of any length.

    Args:
        model: a `GenreViTNetwork` or `GenreViTForAudioClassification` (put in eval mode here).
        feature_extractor: the model's `LogMelWindowing` or `GenreViTFeatureExtractor`.
        batch_size: windows per forward pass; also the block of audio featurised at a time, which bounds memory.
        device: where the model runs; the model is moved there.
        dtype: the compute dtype of the encoder: "auto" (`resolve_dtype`: bfloat16 where the hardware runs it
            natively, else float32), a torch dtype or its name. With bfloat16 (or float16) the encoder's matrix
            products run in it under `torch.autocast`, while its residual stream, LayerNorms and softmaxes, and the
            classifier, stay in float32: on real music this keeps 99.6% of window answers and mean probabilities
            within 0.006 of the float32 path (benchmarks/bench_fast_path.py), where running everything in bfloat16
            moves them by 0.014. The caller's weights are never converted; `from_pretrained`, which owns its model,
            also stores the encoder's Linear weights in that dtype, which saves autocast a cast per call (about a
            quarter of a 15-window call) with the same results to the bit.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        feature_extractor: LogMelWindowing,
        batch_size: int = 32,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str = "auto",
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model = model.eval().to(self.device)
        self.feature_extractor = feature_extractor
        self.batch_size = batch_size
        self.genres = tuple(model.config.id2label[index] for index in range(model.config.num_labels))
        # One forward pass at a time: torch already spreads one pass over every core, and concurrent passes from
        # several threads (a server's requests) only oversubscribe them. Decoding, features and plots of other
        # requests still run beside it.
        self._model_lock = threading.Lock()

    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike | None = None,
        batch_size: int = 32,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str = "auto",
        **hub_kwargs,
    ) -> "GenreClassifier":
        """Load a model folder or Hub repo id (default: `default_model_source()`).

        `dtype` is the compute dtype (see the class): "auto" (`resolve_dtype`: bfloat16 where the hardware runs it
        natively, else float32), or a torch dtype or its name; pass "float32" for the reference path. The weights
        are loaded into float32 whatever their stored dtype. `hub_kwargs` (e.g. `revision`, `token`, `cache_dir`)
        go to `huggingface_hub.snapshot_download` when `source` is a repo id.
        """
        source = source or default_model_source()
        if source is None:
            raise ModelNotFoundError(
                f"No model given and none is bundled. Pass a model folder or Hub repo id (--model), or set "
                f"{MODEL_ENV_VAR}."
            )
        device = resolve_device(device)
        dtype = resolve_dtype(dtype, device)
        source = str(source)
        local = Path(source).expanduser()
        if local.is_file():
            raise ModelNotFoundError(
                f"{source} is a file; a model is a folder (config.json, weights, preprocessor_config.json) or a Hub "
                "repo id."
            )
        if not local.is_dir() and not could_be_hub_id(source):
            raise ModelNotFoundError(f"No model folder exists at {source}.")
        try:
            folder = local if local.is_dir() else _download_model(source, **hub_kwargs)
            model = GenreViTNetwork.from_folder(folder)
            feature_extractor = LogMelWindowing.from_folder(folder)
        except (OSError, ValueError) as error:  # huggingface_hub's errors derive from these
            reason = _first_line(error)
            if local.is_dir():
                raise ModelNotFoundError(f"{source} is not a GenreViT model folder: {reason}") from error
            raise ModelNotFoundError(
                f"No model folder exists at {source}, and no model {source!r} could be loaded from the Hugging Face "
                f"Hub either ({reason})."
            ) from error
        if dtype != torch.float32:
            for module in model.genre_vit.modules():
                if isinstance(module, torch.nn.Linear):
                    module.to(dtype)
        return cls(model, feature_extractor, batch_size=batch_size, device=device, dtype=dtype)

    def _check_content(self, waveform: np.ndarray, min_seconds: float) -> None:
        seconds = waveform.size / self.feature_extractor.sampling_rate
        if seconds < min_seconds:
            raise AudioTooShortError(f"The audio is {seconds:.2f} s long; at least {min_seconds:g} s is needed.")
        peak = float(max(waveform.max(), -waveform.min()))  # no temporary copy of a long waveform
        if peak <= 10 ** (SILENCE_PEAK_DBFS / 20):
            level = "-inf" if peak == 0 else f"{20 * np.log10(peak):.0f}"
            raise SilentAudioError(f"The audio is silent (peak level {level} dBFS): there is nothing to classify.")

    def window_probabilities(self, input_values: np.ndarray) -> np.ndarray:
        """Genre probabilities `(n, C)` of featurised windows `(n, 1, F, W)`, `batch_size` at a time."""
        return self.window_outputs(input_values)[0]

    def window_outputs(self, input_values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Genre probabilities `(n, C)` of featurised windows `(n, 1, F, W)`, and their distances to the nearest
        genre `(n,)` (None for a model without a genre distance), `batch_size` at a time."""
        blocks = [
            self._forward_windows(input_values[start : start + self.batch_size])[:2]
            for start in range(0, len(input_values), self.batch_size)
        ]
        probabilities = np.concatenate([block[0] for block in blocks])
        if self.model.genre_distance is None:
            return probabilities, None
        return probabilities, np.concatenate([block[1] for block in blocks])

    @torch.inference_mode()
    def _forward_windows(
        self, input_values: np.ndarray, output_attentions: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None, tuple[torch.Tensor, ...] | None]:
        """One forward pass over windows `(n, 1, F, W)`: genre probabilities `(n, C)`, distances to the nearest
        genre `(n,)` (None without a genre distance), and every block's attention weights `(n, heads, S, S)` when
        asked (else None). The encoder runs in the compute dtype (`autocast`), the head and the distance on its
        float32 output, for the analysis and the explanations alike."""
        batch = torch.as_tensor(np.asarray(input_values)).to(self.device)
        with self._model_lock, self.autocast():
            if output_attentions:
                tokens, attentions = self.model.encode_with_attentions(batch)
            else:
                tokens, attentions = self.model.forward_features(batch), None
        tokens = tokens.to(self.model.classifier.weight.dtype)
        logits = self.model.forward_head(tokens)
        distances = self.model.window_genre_distances(tokens)
        if distances is not None:
            distances = distances.float().cpu().numpy()
        return logits.float().softmax(-1).cpu().numpy(), distances, attentions

    def autocast(self):
        """The context in which the encoder runs: `torch.autocast` to the compute dtype, or nothing for float32."""
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)

    def iter_window_outputs(self, waveform: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """Yield `(start_times (n,), probabilities (n, C), genre distances (n,) or None)` blocks of at most
        `batch_size` windows."""
        # The waveform comes from audio.prepare_waveform, already checked: the extractor need not check it again.
        for block in self.feature_extractor.iter_windows(
            waveform, self.feature_extractor.sampling_rate, block_windows=self.batch_size, validate=False
        ):
            yield block.start_times, *self.window_outputs(block.input_values)

    def explain(
        self,
        audio,
        start_seconds: float,
        sampling_rate: int | None = None,
        max_seconds: float | None = None,
    ) -> WindowExplanation:
        """Why the window of `audio` that starts nearest `start_seconds` got its genres: its log-Mel image and an
        attention-rollout relevance map on the patch grid (`genre_vit.explain`). `audio` as for `analyze`."""
        waveform = self.prepare(audio, sampling_rate, max_seconds)[0].waveform
        starts = self.feature_extractor.window_start_samples(waveform.size)
        start = int(starts[np.argmin(np.abs(starts - start_seconds * self.feature_extractor.sampling_rate))])
        image = self.feature_extractor.windows_at(waveform, np.array([start]))
        probabilities, _, attentions = self._forward_windows(image, output_attentions=True)
        relevance = attention_rollout([weights.float().cpu() for weights in attentions], self.model.config.patch_grid)
        return WindowExplanation(
            start_seconds=start / self.feature_extractor.sampling_rate,
            image=image[0, 0],
            relevance=relevance[0],
            probabilities=probabilities[0],
            genres=self.genres,
            patch_size=self.model.config.patch_size,
            window_seconds=self.feature_extractor.window_seconds,
        )

    def analyze(
        self,
        audio,
        sampling_rate: int | None = None,
        min_seconds: float = 1.0,
        max_seconds: float | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> GenreAnalysis:
        """Analyse one song.

        Args:
            audio: a file path, a `(waveform, sampling_rate)` tuple, or a waveform with `sampling_rate`. Waveforms
                may be mono `(samples,)` or `(channels, samples)`; they are mixed down and resampled as needed.
            min_seconds: shorter audio raises `AudioTooShortError` (anything from `min_seconds` to 4 s is one
                zero-padded window).
            max_seconds: longer audio raises `AudioTooLongError` (checked before a file is decoded in full).
            progress: called as `progress(windows_done, windows_total)` after the audio is decoded (0 done) and after
                every block of `batch_size` windows, e.g. to drive a progress bar.

        Raises:
            AudioDecodeError, AudioTooLongError, AudioTooShortError, SilentAudioError, ValueError: bad input,
                with a message meant for the user.
        """
        prepared, source = self.prepare(audio, sampling_rate, max_seconds)
        return self.analyze_prepared(prepared, source, min_seconds, progress)

    def prepare(
        self,
        audio,
        sampling_rate: int | None = None,
        max_seconds: float | None = None,
    ) -> tuple[DecodedAudio, str | None]:
        """`genre_vit.audio.prepare_waveform` at the extractor's rate: what `analyze_prepared` takes, decoded once
        (e.g. by a server that keeps the audio to explain a window of it later)."""
        return prepare_waveform(audio, sampling_rate, max_seconds, target_rate=self.feature_extractor.sampling_rate)

    def analyze_prepared(
        self,
        prepared: DecodedAudio,
        source: str | None = None,
        min_seconds: float = 1.0,
        progress: Callable[[int, int], None] | None = None,
    ) -> GenreAnalysis:
        """`analyze` for audio already decoded by `prepare`."""
        waveform, notes = prepared.waveform, prepared.notes
        self._check_content(waveform, min_seconds)
        extractor = self.feature_extractor
        # before the model: audio with no window of music is refused without paying for its windows
        has_music = window_has_music(waveform, extractor.window_start_samples(waveform.size), extractor.window_samples)
        if not has_music.any():
            raise SilentAudioError(
                f"No window of the audio reaches {MUSIC_MIN_RMS_DBFS:.0f} dBFS: it is silence or near it, with "
                "nothing to classify."
            )
        total = len(has_music)  # one flag per window
        starts, probabilities, distances, done = [], [], [], 0
        if progress is not None:
            progress(0, total)
        for block_starts, block_probabilities, block_distances in self.iter_window_outputs(waveform):
            starts.append(block_starts)
            probabilities.append(block_probabilities)
            distances.append(block_distances)
            done += len(block_starts)
            if progress is not None:
                progress(done, total)
        start_times = np.concatenate(starts)
        duration = waveform.size / self.feature_extractor.sampling_rate
        return GenreAnalysis(
            genres=self.genres,
            window_start_times=start_times,
            window_end_times=np.minimum(start_times + self.feature_extractor.window_seconds, duration),
            window_probabilities=np.concatenate(probabilities),
            duration_seconds=duration,
            source=source,
            notes=notes,
            spectrogram=self.feature_extractor.song_spectrogram(waveform, SPECTROGRAM_FRAMES_PER_SECOND),
            spectrogram_frames_per_second=SPECTROGRAM_FRAMES_PER_SECOND,
            window_has_music=has_music,
            window_genre_distances=None if distances[0] is None else np.concatenate(distances),
            none_of_these_distance=getattr(self.model.config, "none_of_these_distance", None),
        )

    def analyze_many(
        self, paths, max_seconds: float | None = None, min_seconds: float = 1.0
    ) -> Iterator[tuple[Path, "GenreAnalysis | ValueError"]]:
        """Analyse many files, one after the other. Yields `(path, result)` in the order of `paths`, where `result`
        is the `GenreAnalysis` or the bad-input error (a ValueError) of that file."""
        for path in map(Path, paths):
            try:
                result = self.analyze(path, min_seconds=min_seconds, max_seconds=max_seconds)
            except ValueError as error:  # the library's bad-input errors
                result = error
            yield path, result


def analyze_full_song(
    audio,
    model: torch.nn.Module | str | os.PathLike | None = None,
    feature_extractor: LogMelWindowing | None = None,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    sampling_rate: int | None = None,
    dtype: torch.dtype | str = "auto",
) -> GenreAnalysis:
    """Analyse a whole song: mean genre probabilities and per-window probabilities with times.

    Args:
        audio: a file path, a `(waveform, sampling_rate)` tuple, or a waveform with `sampling_rate`.
        model: a loaded model, a model folder or Hub repo id, or None for `$GENRE_VIT_MODEL` or the bundled model.
        feature_extractor: needed with a loaded model; loaded with the model otherwise.
        batch_size: windows per forward pass.
        device: `"cpu"`, `"cuda"`, or None for CUDA when available.
        dtype: the compute dtype (`GenreClassifier`): "auto" (bfloat16 where native, else float32) or "float32".

    For many songs, build one `GenreClassifier` and call `analyze` on each, so the model loads once.
    """
    if isinstance(model, torch.nn.Module):
        if feature_extractor is None:
            raise ValueError("Pass the model's feature_extractor along with a loaded model.")
        classifier = GenreClassifier(model, feature_extractor, batch_size=batch_size, device=device, dtype=dtype)
    else:
        classifier = GenreClassifier.from_pretrained(model, batch_size=batch_size, device=device, dtype=dtype)
    return classifier.analyze(audio, sampling_rate=sampling_rate)


__all__ = [
    "MODEL_ENV_VAR",
    "MUSIC_MIN_RMS_DBFS",
    "AudioTooShortError",
    "GenreClassifier",
    "ModelNotFoundError",
    "SilentAudioError",
    "analyze_full_song",
    "default_model_source",
    "native_bfloat16",
    "resolve_device",
    "resolve_dtype",
    "window_has_music",
]
