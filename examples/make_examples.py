"""Cut the demo's example clips from Debian's DFSG-free game-music packages: `python examples/make_examples.py`.

Each clip is 30 s of a track (from the offset below, with short fades), mono 22,050 Hz Ogg Vorbis (quality 2), so
the page's examples are real music. It needs `apt-get` (Debian's package registry; `apt-get download` needs no root),
`dpkg-deb` and ffmpeg with libvorbis. README.md beside this script gives each clip's author and licence.
"""

import subprocess
import tempfile
from pathlib import Path

CLIPS = {
    "metal-madness-sectoid.ogg": (
        "fretsonfire-songs-sectoid",
        "usr/share/games/fretsonfire/data/songs/sectoid/Metal madness/song.ogg",
        40,
    ),
    "feelings-sectoid.ogg": (
        "fretsonfire-songs-sectoid",
        "usr/share/games/fretsonfire/data/songs/sectoid/Feelings/song.ogg",
        60,
    ),
    "traveling-minstrels-wesnoth.ogg": (
        "wesnoth-1.16-music",
        "usr/share/games/wesnoth/1.16/data/core/music/traveling_minstrels.ogg",
        40,
    ),
}
"""Clip file -> (Debian package, track inside it, offset in seconds)."""


def main() -> None:
    folder = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        packages = sorted({package for package, _, _ in CLIPS.values()})
        subprocess.run(["apt-get", "download", *packages], cwd=work, check=True)
        for deb in work.glob("*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "files")], check=True)
        for name, (_, track, offset) in CLIPS.items():
            fades = "afade=t=in:d=0.5,afade=t=out:st=29.3:d=0.7"
            command = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", str(offset), "-t", "30"]
            command += ["-i", str(work / "files" / track), "-ac", "1", "-ar", "22050", "-c:a", "libvorbis"]
            subprocess.run([*command, "-q:a", "2", "-af", fades, str(folder / name)], check=True)
            print(folder / name)


if __name__ == "__main__":
    main()
