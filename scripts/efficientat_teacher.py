"""Teacher targets from EfficientAT `mn04_as` (an AudioSet tagger; MIT licence) for distillation and the protocol
table, stored as musicnn's are (`scripts/musicnn_teacher.py`):

    python scripts/efficientat_teacher.py --weights ../shared/models/efficientat-mn04-as \
        --output runs/teacher/efficientat.npz ../shared/data/gtzan MORE_AUDIO_FOLDERS...

For every audio file it runs the tagger on `--patch-seconds` patches (4 s, the student's window) every
`--patch-hop-seconds` (1 s) and stores, per patch: its start time in seconds, the 527 `logits`, the 384-d
`embedding` and the ten GTZAN genres' zero-shot probabilities (`genre_probabilities`, a softmax over the genre
classes' logits). `train.py --teacher-targets FILE --teacher-output embedding` reads it like musicnn's file. Results
are written per file under `OUTPUT.parts/` (an interrupted run resumes where it stopped) and merged into OUTPUT at
the end, atomically.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from teacher_files import audio_files, merge_parts, save_npz_atomic, track_keys

from genre_vit import GTZAN_GENRES
from genre_vit.audio import decode_audio
from genre_vit.training.efficientat import SAMPLING_RATE, EfficientATTagger, genre_probabilities, tag_patches

WEIGHTS_FILE = "mn04_as_mAP_432.pt"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="audio files' folders (searched recursively)")
    parser.add_argument("--output", required=True, help="the merged targets file (.npz)")
    parser.add_argument("--weights", required=True, help=f"the folder holding {WEIGHTS_FILE}, or the file itself")
    parser.add_argument("--patch-seconds", type=float, default=4.0)
    parser.add_argument("--patch-hop-seconds", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    weights = Path(args.weights)
    weights = weights / WEIGHTS_FILE if weights.is_dir() else weights
    if not weights.is_file():
        raise SystemExit(f"efficientat_teacher.py: {weights} does not exist.")
    tagger = EfficientATTagger.from_state_dict(weights)
    output = Path(args.output)
    parts = output.with_name(output.name + ".parts")
    files = audio_files(args.inputs)
    if not files:
        raise SystemExit(f"efficientat_teacher.py: no audio files under {', '.join(args.inputs)}.")
    keys = track_keys(files)
    started = time.perf_counter()
    skipped = []
    for index, (key, path) in enumerate(zip(keys, files)):
        part = parts / f"{key}.npz"
        if part.exists():
            continue
        try:
            waveform = decode_audio(path, SAMPLING_RATE).waveform
        except ValueError as error:  # the library's bad-input errors, each with a message for the user
            print(f"skipped {path}: {error}", file=sys.stderr)
            skipped.append(key)
            continue
        patches = tag_patches(tagger, waveform, args.patch_seconds, args.patch_hop_seconds)
        patches["genre_probabilities"] = genre_probabilities(patches["logits"], list(GTZAN_GENRES))
        save_npz_atomic(
            part, source=np.str_(str(path)), duration_seconds=np.float32(waveform.size / SAMPLING_RATE), **patches
        )
        if index % 20 == 0:
            print(
                f"{index + 1}/{len(files)} {key} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True
            )

    keys = [key for key in keys if key not in skipped]
    merge_parts(
        output,
        parts,
        keys,
        model=np.str_("efficientat-mn04-as"),
        patch_seconds=np.float32(args.patch_seconds),
        genres=np.array(GTZAN_GENRES),
    )
    print(f"{len(keys)} tracks -> {output} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
