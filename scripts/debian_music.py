"""Unlabelled music for distillation pre-training from Debian's music packages (game soundtracks: orchestral,
electronic, rock), as excerpts of at most two minutes per track.

    python scripts/debian_music.py --output ../pretrain-music [--download-dir /tmp/debian-music]

It downloads the packages with `apt-get download` (Debian's package registry; no root needed for that), unpacks
them with `dpkg-deb -x`, drops exact duplicates (the same file under several names) and Frets-on-Fire's separate
guitar stems, and writes each track as a 22,050-Hz mono 16-bit FLAC into `OUTPUT/<package>/<package>-<name>.flac`
(names unique across packages, so the teacher and the training data agree on track ids): the whole track when it
is up to `--max-seconds` long, else `--max-seconds` from 10% into it (past intros; the long tracks of these
soundtracks are loops). Tracks under 8 s or silent are skipped.

All these packages are in Debian main, so their music is under DFSG-free licences (GPL-2+/GPL-3+, CC0, CC BY-SA
3.0, Expat, the BSD-like Drascula licence; each package's `copyright` file, kept under the download folder, has the
details). Name them in the card of any model trained on them. The excerpts stay out of the repository.
"""

import argparse
import hashlib
import re
import subprocess
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

PACKAGES = (
    "nexuiz-music",
    "warzone2100-music",
    "singularity-music",
    "hyperrogue-music",
    "drascula-music",
    "planetblupi-music-ogg",
    "fretsonfire-songs-muldjord",
    "fretsonfire-songs-sectoid",
    "wesnoth-1.16-music",  # what the wesnoth-music metapackage depends on in Debian 12
)
SAMPLING_RATE = 22050


def excerpt(job: tuple[str, str, Path, float]) -> tuple[str, float]:
    import librosa
    import numpy as np
    import soundfile

    from genre_vit.files import write_atomic

    package, source, target, max_seconds = job
    waveform, _ = librosa.load(source, sr=SAMPLING_RATE, mono=True)
    seconds = len(waveform) / SAMPLING_RATE
    if seconds < 8 or np.abs(waveform).max() < 1e-3:
        return package, 0.0
    if seconds > max_seconds:
        length = int(max_seconds * SAMPLING_RATE)
        start = min(int(0.1 * len(waveform)), len(waveform) - length)
        waveform = waveform[start : start + length]
    write_atomic(
        target, lambda temporary: soundfile.write(temporary, waveform, SAMPLING_RATE, format="FLAC", subtype="PCM_16")
    )
    return package, len(waveform) / SAMPLING_RATE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--download-dir", type=Path, default=Path("/tmp/debian-music"))
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    args.download_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=args.download_dir, check=True)
    unpacked = args.download_dir / "unpacked"
    for deb in sorted(args.download_dir.glob("*.deb")):
        package = deb.name.split("_")[0]
        (unpacked / package).mkdir(parents=True, exist_ok=True)  # dpkg-deb -x makes only the last folder
        subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked / package)], check=True)
        for pk3 in (unpacked / package).rglob("*.pk3"):  # Nexuiz keeps its music in a zip
            subprocess.run(["unzip", "-q", "-o", str(pk3), "-d", str(pk3.parent / "pk3")], check=True)

    seen, jobs = set(), []
    for path in sorted(p for p in unpacked.rglob("*") if p.suffix in (".ogg", ".opus") and p.is_file()):
        if path.name == "guitar.ogg":
            continue
        digest = hashlib.md5(path.read_bytes()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        package = path.relative_to(unpacked).parts[0]
        short = re.sub(r"-music(-ogg)?$|-1\.16", "", package)
        stem = path.parent.name if path.name == "song.ogg" else path.stem
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", f"{short}-{stem}")
        jobs.append((short, str(path), args.output / short / f"{name}.flac", args.max_seconds))
    names = [job[2].name for job in jobs]
    if len(set(names)) != len(names):
        raise SystemExit("Excerpt names collide; rename the rule.")
    minutes = Counter()
    with ProcessPoolExecutor(args.workers) as pool:
        for package, seconds in pool.map(excerpt, jobs):
            minutes[package] += seconds / 60
    for package, value in sorted(minutes.items()):
        print(f"{package}: {value:.1f} min")
    print(f"{sum(minutes.values()) / 60:.2f} h in {args.output}")


if __name__ == "__main__":
    main()
