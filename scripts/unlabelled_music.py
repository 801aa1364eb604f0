"""Unlabelled music for distillation: Debian's music packages and the music folders of its game-data packages (game
soundtracks: orchestral, electronic, rock, metal, jazz, chiptune, folk), and the Creative Commons songs of the
UltraStar Deluxe song repository (vocal rock and pop); about 20.5 h as excerpts of at most five minutes per track.

    git clone https://github.com/UltraStar-Deluxe/songs /tmp/ultrastar-songs
    python scripts/unlabelled_music.py --output ../pretrain-music [--download-dir /tmp/debian-music] \
        [--ultrastar-songs /tmp/ultrastar-songs]

It downloads the packages with `apt-get download` (Debian's package registry; no root needed for that), unpacks
them with `dpkg-deb -x`, drops exact duplicates (the same file under several names) and Frets-on-Fire's separate
guitar stems, keeps only files under a path that names music, songs or a soundtrack (the data packages also
hold sound effects), and writes each track as a 22,050-Hz mono 16-bit FLAC into `OUTPUT/<package>/<package>-<name>.flac`
(names unique across packages, so the teacher and the training data agree on track ids); each UltraStar song's
`audio`/`song` file (not its instrumental) as `OUTPUT/ultrastar/ultrastar-<artist - title>.flac`, except songs
under a no-derivatives licence (an excerpt is an adaptation): the whole track when it
is up to `--max-seconds` long, else `--max-seconds` from 10% into it (past intros; the long tracks of these
soundtracks are loops). Tracks under 30 s (jingles, effects) or silent are skipped. `OUTPUT/sources.tsv` lists each
package with its tracks, hours and the licences its `copyright` file names.

The Debian packages are in Debian main, so their music is under DFSG-free licences (GPL-2+/GPL-3+, CC0, CC BY-SA
3.0, Expat, the BSD-like Drascula licence; each package's `copyright` file, kept under the download folder, has the
details); each UltraStar song names its Creative Commons licence in its `license.txt` (some are non-commercial:
BY-NC-SA). Name them in the card of any model trained on them. The excerpts stay out of the repository.
"""

import argparse
import hashlib
import re
import subprocess
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from genre_vit.files import write_atomic

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
    "ufoai-music",
    "asc-music",
    "supertux-data",
    "supertuxkart-data",
    "hedgewars-data",
    "freedroidrpg-data",
    "megaglest-data",
    "openclonk-data",
    "xmoto-data",
    "lincity-ng-data",
    "extremetuxracer-data",
    "warmux-data",
    "scorched3d-data",
    "torus-trooper-data",
    "gunroar-data",
)
MUSIC_PATH = re.compile(r"music|song|soundtrack", re.IGNORECASE)
MIN_SECONDS = 30.0
SAMPLING_RATE = 22050


def excerpt(job: tuple[str, str, Path, float]) -> tuple[str, float]:
    import librosa
    import numpy as np
    import soundfile

    package, source, target, max_seconds = job
    if target.is_file():  # written by an earlier run (atomically, so whole)
        return package, soundfile.info(str(target)).duration
    waveform, _ = librosa.load(source, sr=SAMPLING_RATE, mono=True)
    seconds = len(waveform) / SAMPLING_RATE
    if seconds < MIN_SECONDS or np.abs(waveform).max() < 1e-3:
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
    parser.add_argument("--ultrastar-songs", type=Path, help="a checkout of github.com/UltraStar-Deluxe/songs")
    parser.add_argument("--max-seconds", type=float, default=300.0)
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
        if path.name == "guitar.ogg" or not MUSIC_PATH.search(str(path.relative_to(unpacked))):
            continue
        digest = hashlib.md5(path.read_bytes()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        package = path.relative_to(unpacked).parts[0]
        short = short_name(package)
        stem = path.parent.name if path.name == "song.ogg" else path.stem
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", f"{short}-{stem}")
        jobs.append((short, str(path), args.output / short / f"{name}.flac", args.max_seconds))
    song_licences = {}
    if args.ultrastar_songs:
        for song in sorted((args.ultrastar_songs / "Creative Commons").iterdir()):
            audio = [p for p in sorted(song.glob("*")) if p.stem in ("audio", "song") and p.suffix in (".ogg", ".mp3")]
            licence = creative_commons_licence(song / "license.txt")
            if not audio or "-ND" in licence or licence == "unknown":
                continue
            name = re.sub(r"[^A-Za-z0-9_-]+", "_", f"ultrastar-{song.name}")
            jobs.append(("ultrastar", str(audio[0]), args.output / "ultrastar" / f"{name}.flac", args.max_seconds))
            song_licences[song.name] = licence
    names = [job[2].name for job in jobs]
    if len(set(names)) != len(names):
        raise SystemExit("Excerpt names collide; rename the rule.")
    minutes, tracks = Counter(), Counter()
    with ProcessPoolExecutor(args.workers) as pool:
        for package, seconds in pool.map(excerpt, jobs):
            minutes[package] += seconds / 60
            tracks[package] += seconds > 0
    rows = ["package\ttracks\thours\tlicences"]
    for package, value in sorted(minutes.items()):
        names = sorted(set(song_licences.values())) if package == "ultrastar" else licences(unpacked, package)
        rows.append(f"{package}\t{tracks[package]}\t{value / 60:.2f}\t{'; '.join(names)}")
        print(f"{package}: {tracks[package]} tracks, {value:.1f} min")
    write_atomic(args.output / "sources.tsv", lambda temporary: Path(temporary).write_text("\n".join(rows) + "\n"))
    print(f"{sum(minutes.values()) / 60:.2f} h in {args.output}")
    if args.ultrastar_songs:
        for song, licence in sorted(song_licences.items()):
            print(f"ultrastar: {song}: {licence}")


def short_name(package: str) -> str:
    """`wesnoth-1.16-music` -> `wesnoth`: the name that prefixes the package's track ids."""
    return re.sub(r"-music(-ogg)?$|-1\.16|-data$", "", package)


def creative_commons_licence(path: Path) -> str:
    """`CC BY-NC-SA 2.0` from the licence URL in a song's `license.txt` ("unknown" without one)."""
    lines = path.read_text(errors="replace").splitlines() if path.is_file() else []
    # a file may license the cover and the audio apart: the audio's line first
    for line in sorted(lines, key=lambda line: "audio" not in line.lower()):
        found = re.search(r"creativecommons\.org/licenses/([a-z-]+)/([0-9.]+)", line)
        if found:
            return f"CC {found.group(1).upper()} {found.group(2)}"
    return "unknown"


def licences(unpacked: Path, short: str) -> list[str]:
    """The `License:` names in the copyright file of the package whose short name is `short`."""
    names = set()
    for copyright_file in unpacked.glob("*/usr/share/doc/*/copyright"):
        package = copyright_file.parent.name
        if short_name(package) == short:
            names |= {
                line.split(":", 1)[1].strip()
                for line in copyright_file.read_text(errors="replace").splitlines()
                if line.startswith("License:") and line.split(":", 1)[1].strip()
            }
    return sorted(names)


if __name__ == "__main__":
    main()
