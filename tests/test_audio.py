import shutil
import subprocess

import librosa
import numpy as np
import pytest
import soundfile
from conftest import SAMPLING_RATE

from genre_vit.audio import (
    AudioDecodeError,
    AudioTooLongError,
    AudioTruncatedWarning,
    decode_audio,
    format_duration,
    load_audio,
    resample,
    to_mono,
)
from genre_vit.testing import synth_music

requires_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


def stereo_44k(seconds: float = 3.0) -> np.ndarray:
    left, right = synth_music(seconds, seed=1, sampling_rate=44100), synth_music(seconds, seed=2, sampling_rate=44100)
    return np.stack([left, right], axis=1) * 0.5


@pytest.mark.parametrize("suffix", ["wav", "flac", "ogg", "mp3"])
def test_decodes_like_librosa(tmp_path, suffix):
    path = tmp_path / f"clip.{suffix}"
    soundfile.write(path, stereo_44k(), 44100)
    ours = load_audio(path)
    expected, _ = librosa.load(path, sr=SAMPLING_RATE, mono=True)
    assert ours.dtype == np.float32 and ours.ndim == 1
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_streaming_resampler_equals_one_shot_over_many_blocks(tmp_path):
    waveform = synth_music(20.0, seed=3, sampling_rate=48000)  # more than one decoding block
    path = tmp_path / "long.wav"
    soundfile.write(path, waveform, 48000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), resample(waveform, 48000), atol=1e-5)


@requires_ffmpeg
@pytest.mark.parametrize("suffix, codec", [("m4a", "aac"), ("webm", "libopus")])
def test_ffmpeg_formats(tmp_path, suffix, codec):
    source = tmp_path / "source.wav"
    soundfile.write(source, stereo_44k(), 44100)
    target = tmp_path / f"clip.{suffix}"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(source), "-c:a", codec, str(target)], check=True)
    waveform = load_audio(target)
    assert waveform.ndim == 1 and abs(waveform.size / SAMPLING_RATE - 3.0) < 0.1
    assert np.abs(waveform).max() > 0.05


def test_one_channel_mix_for_files_arrays_and_streams(tmp_path):
    """A stereo file, the same samples as an array and as a live stream are mixed to mono the same way, to the bit."""
    from genre_vit.live import pcm_to_float

    stereo = stereo_44k(2.0).astype(np.float32)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, stereo, 44100, subtype="FLOAT")
    decoded = decode_audio(path, sampling_rate=44100).waveform
    np.testing.assert_array_equal(to_mono(stereo, channel_axis=1), decoded)
    np.testing.assert_array_equal(to_mono(stereo.T, channel_axis=0), decoded)
    np.testing.assert_array_equal(pcm_to_float(stereo), decoded)


def test_to_mono_averages_channels():
    stereo = np.stack([np.ones(10), np.zeros(10)])
    np.testing.assert_allclose(to_mono(stereo), 0.5)
    np.testing.assert_allclose(to_mono(stereo.T, channel_axis=1), 0.5)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"This is a text file, not audio. " * 200, "not audio|could not be decoded"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "not audio|could not be decoded|corrupt"),
    ],
)
def test_bad_files_raise_clear_errors(tmp_path, content, message):
    path = tmp_path / "song.mp3"
    path.write_bytes(content)
    with pytest.raises(AudioDecodeError, match=message):
        load_audio(path)


def test_truncated_flac_is_an_error_or_a_shorter_clip_with_a_warning(tmp_path):
    """Half a FLAC file: an error naming the file, or (libsndfile decodes what is there) the decodable part with a
    warning that says how much of the announced length is missing."""
    path = tmp_path / "clip.flac"
    soundfile.write(path, synth_music(5.0), SAMPLING_RATE)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    try:
        with pytest.warns(AudioTruncatedWarning, match=r"clip\.flac is cut short or damaged: .* of its announced 0:05"):
            waveform = load_audio(path)
    except AudioDecodeError as error:
        assert "clip.flac" in str(error)
    else:
        assert 0 < waveform.size < 5 * SAMPLING_RATE


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(AudioDecodeError, match="does not exist"):
        load_audio(tmp_path / "missing.wav")
    with pytest.raises(AudioDecodeError, match="not a file"):
        load_audio(tmp_path)


def test_duration_limit_is_checked_before_decoding(tmp_path):
    path = tmp_path / "long.wav"
    soundfile.write(path, synth_music(12.0), SAMPLING_RATE)
    with pytest.raises(AudioTooLongError, match="0:12 long; the limit is 0:10"):
        load_audio(path, max_seconds=10)
    assert load_audio(path, max_seconds=13).size == 12 * SAMPLING_RATE


def test_format_duration():
    assert format_duration(204.3) == "3:24"
    assert format_duration(3723) == "1:02:03"
    assert format_duration(0.4) == "0:00"


def test_growing_buffer_handles_an_undercounted_header():
    from genre_vit.audio import GrowingBuffer

    buffer = GrowingBuffer(10)
    blocks = [np.arange(n, dtype=np.float32) for n in (700, 1500, 3)]
    for block in blocks:
        buffer.append(block)
    np.testing.assert_array_equal(buffer.values(), np.concatenate(blocks))


def encode_mp3(tmp_path, waveform: np.ndarray, name: str = "full.mp3"):
    """An MP3 made by ffmpeg's LAME encoder (128 kbit/s, with the Xing/LAME header that announces the length)."""
    wav = tmp_path / "source.wav"
    soundfile.write(wav, waveform, SAMPLING_RATE)
    mp3 = tmp_path / name
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), "-c:a", "libmp3lame", "-b:a", "128k", str(mp3)],
        check=True,
    )
    return mp3


def truncate(path, fraction: float, name: str):
    data = path.read_bytes()
    truncated = path.with_name(name)
    truncated.write_bytes(data[: int(len(data) * fraction)])
    return truncated


@requires_ffmpeg
def test_truncated_mp3_gives_exactly_its_decodable_samples_every_time(tmp_path):
    """A third of a 30-s MP3 used to come back as 661,794 samples: the first block repeated and uninitialised
    memory after the ~10 s that decode. Now: the ~10 s, identical on every call, with a note and a warning."""
    waveform = synth_music(30.0, seed=8)
    truncated = truncate(encode_mp3(tmp_path, waveform), 1 / 3, "truncated.mp3")
    first, second = decode_audio(truncated), decode_audio(truncated)
    assert 8.0 * SAMPLING_RATE < first.waveform.size < 11.0 * SAMPLING_RATE
    np.testing.assert_array_equal(first.waveform, second.waveform)
    assert first.notes == second.notes
    assert np.abs(first.waveform).max() < 1.5  # no garbage from uninitialised memory
    # What decodes is the start of the song, not a repeat of its first block.
    reference = load_audio(tmp_path / "full.mp3")[: first.waveform.size]
    np.testing.assert_allclose(first.waveform, reference, atol=1e-4)
    assert len(first.notes) == 1 and "truncated.mp3 is cut short" in first.notes[0] and "0:30" in first.notes[0]
    with pytest.warns(AudioTruncatedWarning, match="cut short"):
        load_audio(truncated)
    assert decode_audio(tmp_path / "full.mp3").notes == ()


@pytest.mark.parametrize("suffix, subtype", [("wav", "PCM_16"), ("flac", "PCM_16"), ("ogg", "VORBIS")])
def test_truncated_files_with_lying_headers(tmp_path, suffix, subtype):
    """WAV and FLAC headers announce 30 s that are not there: the samples that exist, a note that says so. Ogg
    announces no length (it is read from the last page): what decodes is returned, deterministically."""
    full = tmp_path / f"full.{suffix}"
    soundfile.write(full, synth_music(30.0, seed=9), SAMPLING_RATE, subtype=subtype)
    truncated = truncate(full, 1 / 3, f"truncated.{suffix}")
    first, second = decode_audio(truncated), decode_audio(truncated)
    np.testing.assert_array_equal(first.waveform, second.waveform)
    assert first.notes == second.notes
    assert 7.0 * SAMPLING_RATE < first.waveform.size < 10.5 * SAMPLING_RATE
    np.testing.assert_allclose(first.waveform, load_audio(full)[: first.waveform.size], atol=1e-4)
    if suffix == "ogg":
        assert first.notes == ()
    else:
        assert len(first.notes) == 1 and "cut short" in first.notes[0]


def test_a_file_whose_audio_is_all_cut_off_is_an_error(tmp_path):
    full = tmp_path / "full.flac"
    soundfile.write(full, synth_music(5.0), SAMPLING_RATE)
    with pytest.raises(AudioDecodeError, match="no audio could be decoded"):
        decode_audio(truncate(full, 0.02, "stub.flac"))


@requires_ffmpeg
def test_a_whole_22_khz_mp3_decodes_without_a_word_on_stderr(tmp_path, capfd):
    """ffmpeg encodes 22.05-kHz audio as MPEG-2 Layer III, which it decodes without a word. Read in many blocks,
    libmpg123 prints a bit-reservoir error on the process's stderr at most reads of such a valid file (where a
    notebook shows it); the decoded samples are those of one read."""
    mp3 = encode_mp3(tmp_path, synth_music(60.0, seed=3))
    capfd.readouterr()
    decoded = decode_audio(mp3)
    assert capfd.readouterr().err == ""
    assert decoded.notes == ()
    np.testing.assert_allclose(decoded.waveform, soundfile.read(mp3, dtype="float32")[0], rtol=0, atol=2e-7)


@requires_ffmpeg
def test_decoding_leaves_the_processs_stderr_alone(tmp_path, capfd):
    """While files decode in one thread, every line another thread logs reaches stderr, once and in order: the
    library never redirects the process's file descriptors (a server's log must not lose other requests' lines)."""
    import logging
    import threading

    truncated = truncate(encode_mp3(tmp_path, synth_music(30.0, seed=8)), 1 / 3, "truncated.mp3")
    logger = logging.getLogger("genre_vit.tests.other_thread")
    process_stderr = open(2, "w", closefd=False)  # what sys.stderr is outside pytest's capture: descriptor 2
    handler = logging.StreamHandler(process_stderr)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    stop = threading.Event()

    def decode_until_stopped():
        while not stop.is_set():
            decode_audio(truncated)

    decoder = threading.Thread(target=decode_until_stopped)
    decoder.start()
    try:
        for number in range(300):
            logger.info("request %d served", number)
    finally:
        stop.set()
        decoder.join()
        logger.removeHandler(handler)
        process_stderr.flush()
    logged = [line for line in capfd.readouterr().err.splitlines() if line.startswith("request ")]
    assert logged == [f"request {number} served" for number in range(300)]


def _noisy_aac(tmp_path, seconds: int = 120):
    """An ADTS AAC file with one byte in every 300 replaced: ffmpeg decodes it with over 200 KB of error messages,
    more than a stderr pipe holds."""
    clean, damaged = tmp_path / "clean.aac", tmp_path / "damaged.aac"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
        + ["-c:a", "aac", "-b:a", "64k", str(clean)],
        check=True,
    )
    data = bytearray(clean.read_bytes())
    rng = np.random.default_rng(0)
    for index in range(2000, len(data), 300):
        data[index] = int(rng.integers(256))
    damaged.write_bytes(bytes(data))
    return damaged


@requires_ffmpeg
def test_a_decode_with_many_ffmpeg_messages_finishes(tmp_path):
    import threading

    path = _noisy_aac(tmp_path)
    results = []
    worker = threading.Thread(target=lambda: results.append(decode_audio(path)), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "decoding hung on ffmpeg's messages"
    assert results and results[0].waveform.size > 30 * SAMPLING_RATE


@requires_ffmpeg
def test_a_decode_that_takes_too_long_is_ended_with_a_clear_error(tmp_path, monkeypatch):
    import genre_vit.audio

    path = _noisy_aac(tmp_path)
    monkeypatch.setattr(genre_vit.audio, "FFMPEG_TIMEOUT_SECONDS", 0.01)
    with pytest.raises(AudioDecodeError, match=r"could not be decoded within 0\.01 s; the file is probably damaged"):
        decode_audio(path)


@requires_ffmpeg
def test_a_whole_mp3_with_a_tag_after_its_last_frame_is_not_reported_cut_short(tmp_path):
    """A CBR MP3 without a length header, followed by an APE and an ID3v1 tag: its length is estimated from the file
    size, so it announces a little more than it holds (0.5 s here). That is not a damaged file."""
    wav = tmp_path / "source.wav"
    soundfile.write(wav, synth_music(30.0, seed=3), SAMPLING_RATE)
    mp3 = tmp_path / "preview.mp3"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), "-c:a", "libmp3lame", "-b:a", "128k"]
        + ["-write_xing", "0", str(mp3)],
        check=True,
    )
    mp3.write_bytes(mp3.read_bytes() + b"APETAGEX" + bytes(1200) + b"TAG" + bytes(125))
    decoded = decode_audio(mp3)
    assert decoded.waveform.size > 29.5 * SAMPLING_RATE
    assert decoded.notes == ()
