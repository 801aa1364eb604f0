"""Audio loading: any file a user has -> a mono float32 waveform at GenreViT's sampling rate.

Decoding is what `librosa.load(path, sr=22050, mono=True)` does (libsndfile through soundfile, channel mean,
soxr "HQ" resampling), but streamed in blocks, so a one-hour file never holds more than its decoded mono output
(about 320 MB at 22,050 Hz) plus one block. Formats libsndfile cannot read (m4a/AAC, webm/Opus in Matroska, ...)
are decoded through the system's `ffmpeg` when it is installed.
"""

import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

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

_BLOCK_FRAMES = 1 << 15
"""Source frames decoded per read (0.74 s at 44.1 kHz): a damaged file loses at most this much before the damage."""


class AudioDecodeError(ValueError):
    """The input is not audio that can be decoded: missing, empty, corrupt or of an unsupported format."""


class AudioTooLongError(ValueError):
    """The audio is longer than the caller's limit."""


class AudioTooShortError(ValueError):
    """The audio is empty, or shorter than the analysis minimum."""


class SilentAudioError(ValueError):
    """The audio is (digitally) silent: there is nothing to classify."""


class AudioTruncatedWarning(UserWarning):
    """Only part of the file could be decoded (a truncated download, a damaged file); only that part is used."""


@dataclass(frozen=True)
class DecodedAudio:
    """A decoded file.

    Attributes:
        waveform: `(samples,)` mono float32 at the requested sampling rate: exactly the samples that decoded.
        notes: remarks meant for the user, e.g. that the file is cut short; empty when decoding was clean.
    """

    waveform: np.ndarray
    notes: tuple[str, ...] = ()


def to_mono(waveform: np.ndarray, channel_axis: int = 0) -> np.ndarray:
    """Average the channels of a `(channels, samples)` (`channel_axis=0`) or `(samples, channels)` (`channel_axis=1`)
    waveform: librosa's mono mix, and the one used for files, arrays and live streams. A 1-D waveform is returned
    as float32."""
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim == 1:
        return waveform
    if waveform.ndim != 2:
        raise ValueError(f"Expected a 1-D or 2-D waveform, got shape {waveform.shape}.")
    # A product with equal weights: numpy's mean over the short, strided channel axis took 25x longer (half of the
    # decoding time of a stereo WAV); for mono and stereo the sums are the same.
    weights = np.full(waveform.shape[channel_axis], 1.0 / waveform.shape[channel_axis], dtype=np.float32)
    return weights @ waveform if channel_axis == 0 else waveform @ weights


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
    print resync notes on the process's stderr.
    """
    with path.open("rb") as file:
        header = file.read(4)
    is_mpeg_frame = len(header) >= 2 and header[0] == 0xFF and (header[1] & 0xE0) == 0xE0
    return header.startswith(_LIBSNDFILE_SIGNATURES) or is_mpeg_frame


_TRUNCATION_TOLERANCE_SECONDS = 0.5
_TRUNCATION_TOLERANCE_SHARE = 0.02
"""Decoded audio may fall short of the header's length by the larger of these (seconds; share of the announced
length) before the file is reported as cut short: MP3 headers count encoder delay and padding, and a tag after the
last frame, which libmpg123 may stop on, adds to a length estimated from the file's size."""


_CHUNK_SIZE_MISMATCH = re.compile(r"^(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_UNKNOWN_CHUNK_SIZES = (0, 0xFFFFFFFF, 0xFFFFFFFF - 1)  # what streaming writers put in when the size is unknown


def _announced_frames(audio_file) -> int:
    """Frames the file's header announces (0 if unknown).

    For WAV and AIFF, libsndfile reports the frames that are really there and notes a header that claims more in
    `extra_info` ("data : 1323000 (should be 440970)"): that claim is what reveals a truncated file.
    """
    frames = max(audio_file.frames, 0)
    mismatch = _CHUNK_SIZE_MISMATCH.search(audio_file.extra_info or "")
    if mismatch and frames:
        claimed, present = (int(value) for value in mismatch.groups())
        if claimed not in _UNKNOWN_CHUNK_SIZES and present > 0 and claimed > present:
            return int(round(frames * claimed / present))
    return frames


def _decode_with_soundfile(path: Path, sampling_rate: int, max_seconds: float | None) -> "DecodedAudio | None":
    """Decode with libsndfile in blocks; None where libsndfile cannot open the file.

    Reads until the decoder returns no more frames, never trusting the header's frame count: a truncated file gives
    exactly its decodable samples, with a note saying how much of the announced length is missing.
    """
    import soundfile
    import soxr

    if not _looks_like_libsndfile_audio(path):
        return None
    try:
        audio_file = soundfile.SoundFile(str(path))
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        return None
    with audio_file:
        source_rate = audio_file.samplerate
        announced = _announced_frames(audio_file)
        if announced:
            _check_duration(announced / source_rate, max_seconds, path.name)
        resampler = None
        if source_rate != sampling_rate:
            resampler = soxr.ResampleStream(source_rate, sampling_rate, 1, dtype="float32", quality="HQ")
        output = GrowingBuffer(int(announced * sampling_rate / source_rate) + 64)
        blocks = _sequential_blocks(audio_file, _frames_per_read(audio_file, announced))
        decoded, damage = 0, None
        try:
            for mono in blocks:
                decoded += mono.shape[0]
                _check_duration(decoded / source_rate, max_seconds, path.name)
                output.append(resampler.resample_chunk(mono, last=False) if resampler else mono)
        except _DecodingStopped as error:
            damage = str(error)
        finally:
            blocks.close()
        if resampler is not None and decoded:
            output.append(resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
    if decoded == 0:
        reason = f" ({damage})" if damage else ""
        raise AudioDecodeError(f"{path.name} is corrupt or truncated: no audio could be decoded{reason}.")
    notes = []
    announced_seconds, decoded_seconds = announced / source_rate, decoded / source_rate
    tolerance = max(_TRUNCATION_TOLERANCE_SECONDS, _TRUNCATION_TOLERANCE_SHARE * announced_seconds)
    if announced_seconds - decoded_seconds > tolerance or (damage and not announced):
        decoded_text, announced_text = format_duration(decoded_seconds), format_duration(announced_seconds)
        if decoded_text == announced_text:
            decoded_text, announced_text = f"{decoded_seconds:.1f} s", f"{announced_seconds:.1f} s"
        length = f" of its announced {announced_text}" if announced > decoded else ""
        notes.append(
            f"{path.name} is cut short or damaged: only the first {decoded_text}{length} could be decoded; only "
            "that part is used."
        )
    return DecodedAudio(output.values(), tuple(notes))


class _DecodingStopped(Exception):
    """libsndfile stopped on damage; the message is its error."""


def _read_mono(audio_file, frames: int) -> tuple[list[np.ndarray], str | None]:
    """Mono blocks of the next `frames` source frames of an open `soundfile.SoundFile` (fewer at its end), and the
    decoder's error message where it stopped on damage (the blocks before it are kept)."""
    import soundfile

    blocks, read = [], 0
    while read < frames:
        try:
            block = audio_file.read(frames - read, dtype="float32", always_2d=True)
        except soundfile.LibsndfileError as error:
            return blocks, str(error)
        if block.shape[0] == 0:
            break
        blocks.append(to_mono(block, channel_axis=1))
        read += block.shape[0]
    return blocks, None


_MPEG1_MIN_SAMPLING_RATE = 32000
"""MPEG-1 Layer III runs at 32, 44.1 and 48 kHz; an MP3 below that is MPEG-2 (16-24 kHz) or MPEG-2.5."""


def _frames_per_read(audio_file, announced: int) -> int:
    """Source frames to ask libsndfile for at once: `_BLOCK_FRAMES`, but the whole announced length of an MPEG-2
    or 2.5 MP3 (under 32 kHz, e.g. ffmpeg's encoding of 22.05-kHz audio). Between reads of such a stream libmpg123
    prints a bit-reservoir error on the process's stderr at most reads, although the samples are those of one
    read; at those rates a file within the duration limit is small, and one read keeps it quiet."""
    if audio_file.format == "MP3" and audio_file.samplerate < _MPEG1_MIN_SAMPLING_RATE and announced:
        return announced + 1
    return _BLOCK_FRAMES


def _sequential_blocks(audio_file, frames_per_read: int) -> Iterator[np.ndarray]:
    """`(frames,)` mono float32 blocks of the whole file, in order, decoded here `frames_per_read` source frames at
    a time; raises `_DecodingStopped` where decoding stops on damage, after the blocks before it."""
    while True:
        start = audio_file.tell()
        blocks, damage = _read_mono(audio_file, frames_per_read)
        if damage is not None and frames_per_read > _BLOCK_FRAMES:
            # a long read that meets damage keeps nothing it decoded before it: that stretch again, in blocks
            audio_file.seek(start)
            frames_per_read = _BLOCK_FRAMES
            continue
        yield from blocks
        if damage is not None:
            raise _DecodingStopped(damage)
        if not blocks:
            return


class GrowingBuffer:
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

    def __len__(self) -> int:
        return self._size

    def view(self) -> np.ndarray:
        """The samples so far, without a copy (valid until the next `append`)."""
        return self._data[: self._size]

    def values(self) -> np.ndarray:
        """The samples, trimmed: a copy where most of the buffer is unused, so its tail is not kept alive."""
        if self._size < self._data.size // 2:  # a gross over-estimate: do not keep the unused tail alive
            return self._data[: self._size].copy()
        return self._data[: self._size]


FFMPEG_TIMEOUT_SECONDS = 120.0
"""The longest an ffmpeg decode may take before it is ended and the file reported as damaged (a 15-minute song
decodes in a few seconds)."""


def _decode_with_ffmpeg(path: Path, sampling_rate: int, max_seconds: float | None) -> DecodedAudio:
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
    pieces, decoded_bytes, timed_out = [], 0, threading.Event()

    def give_up() -> None:
        timed_out.set()
        process.kill()

    # ffmpeg's messages go to a file, not a pipe: a damaged file can make it write hundreds of kilobytes of them,
    # and a full stderr pipe that nobody reads would stop it while this loop waits for its stdout.
    with (
        tempfile.TemporaryFile() as messages,
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=messages) as process,
    ):
        timer = threading.Timer(FFMPEG_TIMEOUT_SECONDS, give_up)
        timer.start()
        try:
            while chunk := process.stdout.read(1 << 20):
                pieces.append(chunk)
                decoded_bytes += len(chunk)
                _check_duration(decoded_bytes / 4 / sampling_rate, max_seconds, path.name)
        except AudioTooLongError:
            process.kill()
            raise
        finally:
            timer.cancel()
        process.wait()
        messages.seek(0)
        stderr = messages.read().decode(errors="replace").strip()
    if timed_out.is_set():
        raise AudioDecodeError(
            f"{path.name} could not be decoded within {FFMPEG_TIMEOUT_SECONDS:g} s; the file is probably damaged."
        )
    if process.returncode != 0:
        reason = (
            stderr.splitlines()[-1].replace(f"{path}: ", "") if stderr else f"ffmpeg exited with {process.returncode}"
        )
        raise AudioDecodeError(f"{path.name} is not audio that can be decoded ({reason}).")
    data = b"".join(pieces)
    return DecodedAudio(np.frombuffer(data[: len(data) - len(data) % 4], dtype="<f4").astype(np.float32))


def probe_duration(path: str | os.PathLike, max_seconds: float | None = None) -> float | None:
    """The length a file announces, in seconds, read from its header without decoding it (None where the header
    does not say, e.g. some MP3 and Ogg streams). For checks at upload time; `decode_audio` checks again.

    Raises:
        AudioDecodeError: missing, empty or non-audio file (neither libsndfile nor ffprobe can open it).
        AudioTooLongError: announced longer than `max_seconds`.
    """
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise AudioDecodeError(f"{path} does not exist or is not a file.")
    if path.stat().st_size == 0:
        raise AudioDecodeError(f"{path.name} is empty (0 bytes).")
    seconds = None
    if _looks_like_libsndfile_audio(path):
        try:
            with soundfile.SoundFile(str(path)) as audio_file:
                frames = _announced_frames(audio_file)
                seconds = frames / audio_file.samplerate if frames else None
        except (soundfile.LibsndfileError, RuntimeError, TypeError):
            seconds = _probe_with_ffprobe(path)
    else:
        seconds = _probe_with_ffprobe(path)
    if seconds is not None:
        _check_duration(seconds, max_seconds, path.name)
    return seconds


def _probe_with_ffprobe(path: Path) -> float | None:
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return None  # decoding will tell
    command = [ffprobe, "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=codec_type:format=duration"]
    completed = subprocess.run(
        [*command, "-of", "default=noprint_wrappers=1", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,  # a non-zero exit is the answer "not audio"
    )
    fields = dict(line.split("=", 1) for line in completed.stdout.splitlines() if "=" in line)
    if completed.returncode != 0 or fields.get("codec_type") != "audio":
        raise AudioDecodeError(f"{path.name} is not an audio file that can be decoded.")
    try:
        return float(fields.get("duration", ""))
    except ValueError:
        return None


def decode_audio(
    path: str | os.PathLike, sampling_rate: int = SAMPLING_RATE, max_seconds: float | None = None
) -> DecodedAudio:
    """Decode an audio file to a mono float32 waveform at `sampling_rate` Hz, with remarks for the user.

    Args:
        path: a file in any format libsndfile reads (WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF, ...) or, with ffmpeg
            installed, any format ffmpeg reads (m4a, webm, ...).
        sampling_rate: output rate in Hz.
        max_seconds: raise `AudioTooLongError` as soon as the audio is known to be longer (checked before and
            while decoding, so a huge file is not decoded in full).

    Returns:
        `DecodedAudio`: the `(samples,)` waveform of exactly the samples that decoded, and `notes` such as "cut
        short" for a truncated file (whose header announces more than it holds).

    Raises:
        AudioDecodeError: missing, empty, unreadable or non-audio file, or a file with no decodable samples.
        AudioTooLongError: longer than `max_seconds`.
    """
    path = Path(path)
    if not path.exists():
        raise AudioDecodeError(f"{path} does not exist.")
    if not path.is_file():
        raise AudioDecodeError(f"{path} is not a file.")
    if path.stat().st_size == 0:
        raise AudioDecodeError(f"{path.name} is empty (0 bytes).")
    decoded = _decode_with_soundfile(path, sampling_rate, max_seconds)
    if decoded is None:
        decoded = _decode_with_ffmpeg(path, sampling_rate, max_seconds)
    if decoded.waveform.size == 0:
        raise AudioDecodeError(f"{path.name} contains no audio samples.")
    if not np.isfinite(decoded.waveform).all():
        raise AudioDecodeError(f"{path.name} decodes to NaN or infinite samples.")
    return decoded


def prepare_waveform(
    audio,
    sampling_rate: int | None = None,
    max_seconds: float | None = None,
    target_rate: int = SAMPLING_RATE,
) -> tuple[DecodedAudio, str | None]:
    """The one way from what a user has to a checked waveform: a mono float32 `(samples,)` array at `target_rate`
    Hz, non-empty, finite, and within `max_seconds`. Everything after it (features, model) trusts its output.

    Args:
        audio: a file path; a `(waveform, sampling_rate)` tuple; or a waveform with `sampling_rate`. Waveforms may be
            mono `(samples,)` or `(channels, samples)` / `(samples, channels)` (the shorter axis is the channels).
        sampling_rate: the rate of a bare waveform, in Hz.
        max_seconds: longer audio raises `AudioTooLongError` (for files, before they are decoded in full).
        target_rate: output rate in Hz.

    Returns:
        `(DecodedAudio, source)`: the waveform with the decoder's notes, and the file name (None for arrays).

    Raises:
        AudioDecodeError, AudioTooLongError, ValueError: input that cannot be analysed, with a message for the user.
    """
    if isinstance(audio, (str, os.PathLike)):
        decoded = decode_audio(audio, sampling_rate=target_rate, max_seconds=max_seconds)
        return decoded, Path(audio).name
    if isinstance(audio, tuple):
        audio, sampling_rate = audio
    if sampling_rate is None:
        raise ValueError("A waveform needs its sampling rate: pass (waveform, sampling_rate).")
    try:
        waveform = np.asarray(audio, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f"Expected a numeric waveform: {error}") from error
    if waveform.ndim == 2:
        waveform = to_mono(waveform, channel_axis=0 if waveform.shape[0] < waveform.shape[1] else 1)
    if waveform.ndim != 1:
        raise ValueError(f"Expected a mono or (channels, samples) waveform, got shape {waveform.shape}.")
    if waveform.size == 0:
        raise AudioTooShortError("The audio is empty (0 samples).")
    if not np.isfinite(waveform).all():
        raise ValueError("The waveform contains NaN or infinite samples.")
    _check_duration(waveform.size / sampling_rate, max_seconds, "The audio")
    return DecodedAudio(resample(waveform, int(sampling_rate), target_rate)), None


def load_audio(
    path: str | os.PathLike, sampling_rate: int = SAMPLING_RATE, max_seconds: float | None = None
) -> np.ndarray:
    """Decode an audio file to a `(samples,)` mono float32 waveform at `sampling_rate` Hz.

    As `decode_audio`, whose arguments and errors it shares; its notes (e.g. a file cut short) are issued as
    `AudioTruncatedWarning`s.
    """
    decoded = decode_audio(path, sampling_rate=sampling_rate, max_seconds=max_seconds)
    for note in decoded.notes:
        warnings.warn(note, AudioTruncatedWarning, stacklevel=2)
    return decoded.waveform


__all__ = [
    "AUDIO_FILE_SUFFIXES",
    "SAMPLING_RATE",
    "AudioDecodeError",
    "AudioTooLongError",
    "AudioTooShortError",
    "AudioTruncatedWarning",
    "DecodedAudio",
    "SilentAudioError",
    "decode_audio",
    "format_duration",
    "load_audio",
    "prepare_waveform",
    "probe_duration",
    "resample",
    "to_mono",
]
