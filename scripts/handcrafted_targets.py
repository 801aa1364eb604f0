"""Hand-made audio descriptors as distillation targets: a teacher that needs no model, only librosa.

For every track of the given data folders (the tracks `train.py --data` would load, with the same track ids), it
computes on 3-s patches every second (the patch layout of `scripts/musicnn_teacher.py`):

- MFCC (20), spectral contrast (7 bands) and chroma (12): mean and standard deviation over the patch's frames;
- zero-crossing rate, spectral centroid (in units of the sampling rate) and onset strength: mean and deviation;

84 values per patch, stored as output `handcrafted` in the teacher-targets format that `train.py --teacher-targets`
reads (`KEY/start_seconds`, `KEY/handcrafted`). They are nearly what the hand-made-features baseline of the bundled
model's ablation table classifies genres from (`scripts/baselines.py`: clip statistics of the same descriptors, with
tempo instead of onset strength), and simple functions of the spectrogram that a student can learn; regressing the
embedding onto them beside a tagger's features (`--teacher-targets msd.npz handcrafted.npz --teacher-output max_pool
handcrafted`) keeps what they know in the encoder.

    python scripts/handcrafted_targets.py --output runs/teacher/handcrafted.npz ../shared/data/unlabelled-music

Frame-level descriptors are computed once per track (2048-point STFT, hop 512 samples at 22,050 Hz) and pooled per
patch. Results are written per track under `OUTPUT.parts/` (an interrupted run resumes) and merged into OUTPUT at the
end; every file is written atomically.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from teacher_files import merge_parts, save_npz_atomic

SAMPLING_RATE = 22050
N_FFT = 2048
HOP_LENGTH = 512
DESCRIPTORS = ("mfcc", "spectral_contrast", "chroma", "zero_crossing_rate", "spectral_centroid", "onset_strength")


def frame_descriptors(waveform: np.ndarray) -> np.ndarray:
    """`(42, frames)` frame-level descriptors of a mono waveform at `SAMPLING_RATE` (what `patch_statistics` assumes),
    one frame every `HOP_LENGTH` samples: MFCC (20),
    spectral contrast (7), chroma (12), zero-crossing rate, spectral centroid / sampling rate, onset strength (dB
    flux), i.e. the rows of `DESCRIPTORS` in that order."""
    import librosa

    magnitude = np.abs(librosa.stft(waveform, n_fft=N_FFT, hop_length=HOP_LENGTH, window="hann", center=True))
    power = magnitude**2
    mel = librosa.feature.melspectrogram(S=power, sr=SAMPLING_RATE, n_fft=N_FFT, n_mels=128, fmin=0.0, fmax=None)
    log_mel = librosa.power_to_db(mel, ref=1.0, top_db=80.0)
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=20)
    contrast = librosa.feature.spectral_contrast(S=magnitude, sr=SAMPLING_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH)
    chroma = librosa.feature.chroma_stft(S=power, sr=SAMPLING_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH)
    zcr = librosa.feature.zero_crossing_rate(waveform, frame_length=N_FFT, hop_length=HOP_LENGTH, center=True)
    centroid = librosa.feature.spectral_centroid(S=magnitude, sr=SAMPLING_RATE, n_fft=N_FFT) / SAMPLING_RATE
    onset = librosa.onset.onset_strength(S=log_mel, sr=SAMPLING_RATE)[None]
    frames = min(x.shape[1] for x in (mfcc, contrast, chroma, zcr, centroid, onset))
    return np.concatenate([x[:, :frames] for x in (mfcc, contrast, chroma, zcr, centroid, onset)]).astype(np.float32)


def patch_statistics(
    frames: np.ndarray, duration_seconds: float, patch_seconds: float, hop_seconds: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of frame descriptors `(D, frames)` over patches of `patch_seconds` every
    `hop_seconds` (one patch over everything when the track is shorter): start times `(patches,)` in seconds and
    statistics `(patches, 2 * D)` (all means, then all deviations)."""
    frames_per_second = SAMPLING_RATE / HOP_LENGTH
    last_start = max(duration_seconds - patch_seconds, 0.0)
    starts = np.arange(0.0, last_start + 1e-9, hop_seconds)
    statistics = np.empty((len(starts), 2 * frames.shape[0]), dtype=np.float32)
    for row, start in enumerate(starts):
        first = round(start * frames_per_second)
        last = max(first + 1, min(frames.shape[1], round((start + patch_seconds) * frames_per_second)))
        patch = frames[:, first:last]
        statistics[row] = np.concatenate([patch.mean(axis=1), patch.std(axis=1)])
    return starts.astype(np.float32), statistics


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="+", help="data folders as train.py --data takes them (one sub-folder per label)")
    parser.add_argument("--output", required=True, help="the merged targets file (.npz)")
    parser.add_argument("--patch-seconds", type=float, default=3.0)
    parser.add_argument("--patch-hop-seconds", type=float, default=1.0)
    args = parser.parse_args(argv)

    from genre_vit.training.data import decode_track, load_tracks

    output = Path(args.output)
    parts = output.with_name(output.name + ".parts")
    try:
        tracks = [row for folder in args.data for row in load_tracks(folder)]
    except ValueError as error:  # not a folder of genre sub-folders: the library's message says what was expected
        raise SystemExit(f"error: {error}") from None
    keys = [row["track_id"] for row in tracks]
    if len(set(keys)) != len(keys):
        raise SystemExit("Track ids repeat across the data folders; give each track a unique file name.")
    started = time.perf_counter()
    skipped = []
    for index, row in enumerate(tracks):
        part = parts / f"{row['track_id']}.npz"
        if part.exists():
            continue
        try:
            waveform = decode_track(row["audio_path"], row["audio_bytes"], SAMPLING_RATE)
        except ValueError as error:
            print(f"skipped {row['track_id']}: {error}", file=sys.stderr)
            skipped.append(row["track_id"])
            continue
        duration = waveform.size / SAMPLING_RATE
        starts, statistics = patch_statistics(
            frame_descriptors(waveform), duration, args.patch_seconds, args.patch_hop_seconds
        )
        save_npz_atomic(
            part,
            start_seconds=starts,
            handcrafted=statistics,
            duration_seconds=np.float32(duration),
            source=np.str_(row["audio_path"] or row["track_id"]),
        )
        if index % 20 == 0:
            print(
                f"{index + 1}/{len(tracks)} {row['track_id']} ({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )

    merge_parts(
        output,
        parts,
        [key for key in keys if key not in skipped],
        patch_seconds=np.float32(args.patch_seconds),
        descriptors=np.array(DESCRIPTORS),
    )
    print(f"{len(keys) - len(skipped)} tracks -> {output} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
