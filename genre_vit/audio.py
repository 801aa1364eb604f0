"""Audio loading: any file a user has -> a mono float32 waveform at GenreViT's sampling rate.

Decoding is what `librosa.load(path, sr=22050, mono=True)` does (libsndfile through soundfile, channel mean,
soxr "HQ" resampling), but streamed in blocks, so a one-hour file never holds more than its decoded mono output
(about 320 MB at 22,050 Hz) plus one block. Formats libsndfile cannot read (m4a/AAC, webm/Opus in Matroska, ...)
are decoded through the system's `ffmpeg` when it is installed.
"""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

SAMPLING_RATE = 22050
"""GenreViT's sampling rate, in Hz."""

AUDIO_FILE_SUFFIXES = frozenset(
    {
        ".wav",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".aiff",
        ".aif",
        ".au",
        ".m4a",
        ".aac",
        ".webm",
        ".wma",
        ".mp4",
        ".mka",
    }
)
"""Suffixes of the files taken as audio when a folder is scanned."""

_BLOCK_FRAMES = 1 << 18
"""Source frames decoded per block (about 6 s at 44.1 kHz)."""


class AudioDecodeError(ValueError):
    """The input is not audio that can be decoded: missing, empty, corrupt or of an unsupported format."""


class AudioTooLongError(ValueError):
    """The audio is longer than the caller's limit."""


def to_mono(waveform: np.ndarray, channel_axis: int = 0) -> np.ndarray:
    """Average the channels of `waveform` (librosa's mono mix). A 1-D waveform is returned as float32."""
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim == 1:
        return waveform
    if waveform.ndim != 2:
        raise ValueError(f"Expected a 1-D or 2-D (channels x samples) waveform, got shape {waveform.shape}.")
    return waveform.mean(axis=channel_axis, dtype=np.float32)


def resample(waveform: np.ndarray, orig_sampling_rate: int, target_sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """Resample a mono waveform with soxr "HQ" (librosa's default `res_type="soxr_hq"`). Rates in Hz."""
    import soxr

    if orig_sampling_rate <= 0:
        raise ValueError(f"Sampling rate must be positive, got {orig_sampling_rate}.")
    waveform = np.asarray(waveform, dtype=np.float32)
    if orig_sampling_rate == target_sampling_rate:
        return waveform
    return soxr.resample(waveform, orig_sampling_rate, target_sampling_rate, quality="HQ").astype(np.float32)


def _check_duration(seconds: float, max_seconds: float | None, source: str) -> None:
    if max_seconds is not None and seconds > max_seconds:
        raise AudioTooLongError(
            f"{source} is {format_duration(seconds)} long; the limit is {format_duration(max_seconds)}."
        )


def format_duration(seconds: float) -> str:
    """`204.3` -> `"3:24"`; an hour or more -> `"1:02:03"`."""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


_LIBSNDFILE_SIGNATURES = (b"RIFF", b"RIFX", b"RF64", b"BW64", b"fLaC", b"OggS", b"ID3", b"FORM", b".snd", b"caff")


def _looks_like_libsndfile_audio(path: Path) -> bool:
    """Whether the file starts like a container libsndfile reads (or an MPEG audio frame).

    Anything else goes straight to ffmpeg: handing libsndfile a text file renamed .mp3 makes its MPEG decoder
    print resync notes on the process's stderr, which would pollute the CLI's one-line errors.
    """
    with path.open("rb") as file:
        header = file.read(4)
    is_mpeg_frame = len(header) >= 2 and header[0] == 0xFF and (header[1] & 0xE0) == 0xE0
    return header.startswith(_LIBSNDFILE_SIGNATURES) or is_mpeg_frame


def _decode_with_soundfile(path: Path, sampling_rate: int, max_seconds: float | None):
    """Decode with libsndfile in blocks; None where libsndfile cannot open the file."""
    import soundfile
    import soxr

    if not _looks_like_libsndfile_audio(path):
        return None
    try:
        audio_file = soundfile.SoundFile(str(path))
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        return None
    with audio_file:
        if audio_file.frames > 0:
            _check_duration(audio_file.frames / audio_file.samplerate, max_seconds, path.name)
        resampler = None
        if audio_file.samplerate != sampling_rate:
            resampler = soxr.ResampleStream(audio_file.samplerate, sampling_rate, 1, dtype="float32", quality="HQ")
        output = _GrowingBuffer(int(audio_file.frames * sampling_rate / audio_file.samplerate) + 64)
        decoded = 0
        try:
            for block in audio_file.blocks(blocksize=_BLOCK_FRAMES, dtype="float32", always_2d=True):
                decoded += block.shape[0]
                _check_duration(decoded / audio_file.samplerate, max_seconds, path.name)
                mono = block.mean(axis=1, dtype=np.float32)
                output.append(resampler.resample_chunk(mono, last=False) if resampler else mono)
        except soundfile.LibsndfileError as error:
            raise AudioDecodeError(f"{path.name} is corrupt or truncated: {error}") from error
        if resampler is not None:
            output.append(resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
    return output.values()


class _GrowingBuffer:
    """A float32 array filled block by block. Sized from the header's frame count, it never holds the audio twice;
    it doubles if the header under-counts."""

    def __init__(self, capacity: int):
        self._data = np.empty(max(capacity, 1024), dtype=np.float32)
        self._size = 0

    def append(self, block: np.ndarray) -> None:
        end = self._size + block.size
        if end > self._data.size:
            grown = np.empty(max(end, 2 * self._data.size), dtype=np.float32)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._data[self._size : end] = block
        self._size = end

    def values(self) -> np.ndarray:
        if self._size < self._data.size // 2:  # a gross over-estimate: do not keep the unused tail alive
            return self._data[: self._size].copy()
        return self._data[: self._size]


def _decode_with_ffmpeg(path: Path, sampling_rate: int, max_seconds: float | None) -> np.ndarray:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioDecodeError(
            f"{path.name} is not audio that libsndfile can read (WAV, FLAC, OGG, MP3, ...), and ffmpeg, which "
            "decodes the other formats (m4a, webm, ...), is not installed."
        )
    command = [
        ffmpeg,
        "-nostdin",
        "-v",
        "error",
        "-i",
        str(path),
        "-vn",
        "-f",
        "f32le",
        "-ac",
        "1",
        "-ar",
        str(sampling_rate),
        "-",
    ]
    pieces, decoded_bytes = [], 0
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        try:
            while chunk := process.stdout.read(1 << 20):
                pieces.append(chunk)
                decoded_bytes += len(chunk)
                _check_duration(decoded_bytes / 4 / sampling_rate, max_seconds, path.name)
        except AudioTooLongError:
            process.kill()
            raise
        stderr = process.stderr.read().decode(errors="replace").strip()
    if process.returncode != 0:
        reason = (
            stderr.splitlines()[-1].replace(f"{path}: ", "") if stderr else f"ffmpeg exited with {process.returncode}"
        )
        raise AudioDecodeError(f"{path.name} is not audio that can be decoded ({reason}).")
    data = b"".join(pieces)
    return np.frombuffer(data[: len(data) - len(data) % 4], dtype="<f4").astype(np.float32)


def load_audio(
    path: str | os.PathLike, sampling_rate: int = SAMPLING_RATE, max_seconds: float | None = None
) -> np.ndarray:
    """Decode an audio file to a mono float32 waveform at `sampling_rate` Hz.

    Args:
        path: a file in any format libsndfile reads (WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF, ...) or, with ffmpeg
            installed, any format ffmpeg reads (m4a, webm, ...).
        sampling_rate: output rate in Hz.
        max_seconds: raise `AudioTooLongError` as soon as the audio is known to be longer (checked before and
            while decoding, so a huge file is not decoded in full).

    Returns:
        `(samples,)` float32 waveform.

    Raises:
        AudioDecodeError: missing, empty, unreadable or non-audio file, or a file with no samples.
        AudioTooLongError: longer than `max_seconds`.
    """
    path = Path(path)
    if not path.exists():
        raise AudioDecodeError(f"{path} does not exist.")
    if not path.is_file():
        raise AudioDecodeError(f"{path} is not a file.")
    if path.stat().st_size == 0:
        raise AudioDecodeError(f"{path.name} is empty (0 bytes).")
    waveform = _decode_with_soundfile(path, sampling_rate, max_seconds)
    if waveform is None:
        waveform = _decode_with_ffmpeg(path, sampling_rate, max_seconds)
    if waveform.size == 0:
        raise AudioDecodeError(f"{path.name} contains no audio samples.")
    if not np.isfinite(waveform).all():
        raise AudioDecodeError(f"{path.name} decodes to NaN or infinite samples.")
    return waveform


__all__ = [
    "AUDIO_FILE_SUFFIXES",
    "AudioDecodeError",
    "AudioTooLongError",
    "SAMPLING_RATE",
    "format_duration",
    "load_audio",
    "resample",
    "to_mono",
]
