"""Teacher targets from musicnn (Pons & Serra, 2019; ISC licence) for distillation into GenreViT.

Runs in its own virtual environment, because musicnn needs TensorFlow; the product never imports it:

    python -m venv .teacher && .teacher/bin/pip install "tensorflow-cpu==2.15.1" "numpy<2" librosa soundfile
    .teacher/bin/pip download musicnn==0.1.0 --no-deps -d /tmp/musicnn && \
        .teacher/bin/pip install --no-deps /tmp/musicnn/musicnn-0.1.0-py3-none-any.whl
    .teacher/bin/python scripts/musicnn_teacher.py --output runs/teacher/msd.npz ../shared/data/gtzan \
        ../shared/data/unlabelled-music

(`--no-deps`: musicnn's metadata pins numpy<1.17, which no longer builds.)

For every audio file it runs the tagger on 3-s patches (the length the taggers were trained on) every
`--patch-hop-seconds` (1 s) and stores, per patch: its start time in seconds, the 50 tag probabilities and the
pooled features (`max_pool` and `mean_pool`, 753 values each, and `penultimate`, 200 values). A track's key is its
file name without suffix (GTZAN's track ids), prefixed by its folder's name where names repeat across folders.
Training (`train.py --teacher-targets`) averages the patches that lie inside each 4-s window. Results are
written per file under `OUTPUT.parts/` (so an interrupted run resumes where it stopped) and merged into OUTPUT at
the end; every file is written atomically.

musicnn restores its weights inside a bare `try/except`, so a failed restore would go unnoticed and give random
features: this script restores them itself and checks one variable against the checkpoint.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from teacher_files import audio_files, save_npz_atomic, track_keys


class MusicnnTeacher:
    """One TensorFlow graph of a musicnn tagger, built and restored once, applied to many files."""

    def __init__(self, model: str, patch_seconds: float, patch_hop_seconds: float):
        import librosa
        import musicnn
        import tensorflow as tf
        from musicnn import configuration, models

        tf.compat.v1.disable_eager_execution()
        self.config = configuration
        self.labels = configuration.MSD_LABELS if model.startswith("MSD") else configuration.MTT_LABELS
        self.patch_frames = (
            librosa.time_to_frames(
                patch_seconds, sr=configuration.SR, n_fft=configuration.FFT_SIZE, hop_length=configuration.FFT_HOP
            )
            + 1
        )
        self.hop_frames = max(1, int(round(patch_hop_seconds * configuration.SR / configuration.FFT_HOP)))
        graph = tf.Graph()
        with graph.as_default():
            with tf.name_scope("model"):
                self.inputs = tf.compat.v1.placeholder(tf.float32, [None, self.patch_frames, configuration.N_MELS])
                self.is_training = tf.compat.v1.placeholder(tf.bool)
                outputs = models.define_model(self.inputs, self.is_training, model, len(self.labels))
                logits, *_, mean_pool, max_pool, penultimate = outputs
                self.fetches = {
                    "tags": tf.nn.sigmoid(logits),
                    "max_pool": max_pool,
                    "mean_pool": mean_pool,
                    "penultimate": penultimate,
                }
            self.session = tf.compat.v1.Session(graph=graph)
            checkpoint = os.path.join(os.path.dirname(musicnn.__file__), model) + "/"
            tf.compat.v1.train.Saver().restore(self.session, checkpoint)
            variable = next(v for v in tf.compat.v1.global_variables() if "kernel" in v.name)
            stored = tf.compat.v1.train.NewCheckpointReader(checkpoint).get_tensor(variable.name.split(":")[0])
            if not np.allclose(self.session.run(variable), stored):
                raise RuntimeError(f"musicnn's {model} weights did not load from {checkpoint}.")

    def __call__(self, path: Path) -> dict[str, np.ndarray]:
        import librosa

        config = self.config
        audio, _ = librosa.load(str(path), sr=config.SR, mono=True)
        mel = librosa.feature.melspectrogram(
            y=audio, sr=config.SR, hop_length=config.FFT_HOP, n_fft=config.FFT_SIZE, n_mels=config.N_MELS
        ).T
        mel = np.log10(10000 * mel.astype(np.float16) + 1)  # musicnn's own input scaling (batch_data)
        if mel.shape[0] < self.patch_frames:
            mel = np.pad(mel, ((0, self.patch_frames - mel.shape[0]), (0, 0)))
        starts = np.arange(0, mel.shape[0] - self.patch_frames + 1, self.hop_frames)
        batch = np.stack([mel[start : start + self.patch_frames] for start in starts]).astype(np.float32)
        values = {name: [] for name in self.fetches}
        for first in range(0, len(batch), 64):
            out = self.session.run(self.fetches, {self.inputs: batch[first : first + 64], self.is_training: False})
            for name, value in out.items():
                values[name].append(np.asarray(value).reshape(len(batch[first : first + 64]), -1))
        result = {name: np.concatenate(parts).astype(np.float16) for name, parts in values.items()}
        result["start_seconds"] = (starts * config.FFT_HOP / config.SR).astype(np.float32)
        result["duration_seconds"] = np.float32(len(audio) / config.SR)
        return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="audio files' folders (searched recursively)")
    parser.add_argument("--output", required=True, help="the merged targets file (.npz)")
    parser.add_argument("--model", default="MSD_musicnn", choices=["MSD_musicnn", "MTT_musicnn"])
    parser.add_argument("--patch-seconds", type=float, default=3.0)
    parser.add_argument("--patch-hop-seconds", type=float, default=1.0)
    args = parser.parse_args(argv)

    output = Path(args.output)
    parts = output.with_name(output.name + ".parts")
    files = audio_files(args.inputs)
    keys = track_keys(files)
    teacher = MusicnnTeacher(args.model, args.patch_seconds, args.patch_hop_seconds)
    started = time.perf_counter()
    for index, (key, path) in enumerate(zip(keys, files)):
        part = parts / f"{key}.npz"
        if part.exists():
            continue
        save_npz_atomic(part, source=np.str_(str(path)), **teacher(path))
        if index % 20 == 0:
            print(
                f"{index + 1}/{len(files)} {key} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True
            )

    merged = {
        "tags": np.array(teacher.labels),
        "model": np.str_(args.model),
        "patch_seconds": np.float32(args.patch_seconds),
    }
    for key in keys:
        with np.load(parts / f"{key}.npz") as data:
            for name in ("start_seconds", "tags", "max_pool", "mean_pool", "penultimate"):
                merged[f"{key}/{name if name != 'tags' else 'tag_probabilities'}"] = data[name]
            merged[f"{key}/duration_seconds"] = data["duration_seconds"]
            merged[f"{key}/source"] = data["source"]
    save_npz_atomic(output, **merged)
    print(f"{len(keys)} tracks -> {output} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
