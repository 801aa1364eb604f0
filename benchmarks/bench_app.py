"""Latency of the demo: one upload, from clicking Analyze to the result on the page, in headless Chromium.

    python -m benchmarks.bench_app [--model DIR] [--seconds 30]

Starts `python app.py` on a free localhost port (model: --model, else the app's default), uploads a synthesized
song with Playwright driving Debian's Chromium, and times submit -> summary shown. The baseline, measured in the same
run, is `GenreClassifier.analyze` on the same file in this process: the difference is what the server and the
page add.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.common import best_time, write_song
from genre_vit.analysis import GenreClassifier, default_model_source

REPOSITORY = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def start_app(
    model: str, port: int, settings: dict | None = None, repository: Path = REPOSITORY, log_file: Path | None = None
) -> subprocess.Popen:
    """`python app.py` of `repository` with `model` on localhost:`port` (and extra environment `settings`), once it
    answers; its output goes to `log_file` (default: nowhere)."""
    environment = dict(
        os.environ,
        GENRE_VIT_MODEL=model,
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
        PYTHONPATH=str(repository),
        **(settings or {}),
    )
    process = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=repository,
        env=environment,
        stdout=log_file.open("w") if log_file else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log_file else subprocess.DEVNULL,
    )
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("app.py did not start within 120 s")


def browser_latency(url: str, song: Path, repeats: int) -> float:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        page = browser.new_page()
        for _ in range(repeats):
            page.goto(url)
            page.locator("#song input[type=file]").set_input_files(str(song))
            page.locator("#song").get_by_text("0:30").first.wait_for(timeout=60_000)
            start = time.perf_counter()
            page.locator("#analyze").click()
            page.wait_for_function(
                "() => { const b = document.querySelector('#summary textarea');"
                " return b && b.value.includes('over'); }",
                timeout=300_000,
            )
            times.append(time.perf_counter() - start)
        browser.close()
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=default_model_source(), help="model folder (default: the app's default)")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not args.model:
        sys.exit("No model: pass --model or set GENRE_VIT_MODEL.")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        song = write_song(Path(folder) / "song.wav", args.seconds, sampling_rate=44100, stereo=True)
        classifier = GenreClassifier.from_pretrained(args.model, device="cpu")
        classifier.analyze(song)
        in_process = best_time(lambda: classifier.analyze(song), args.repeats)
        process = start_app(args.model, port)
        try:
            page = browser_latency(f"http://127.0.0.1:{port}/", song, args.repeats)
        finally:
            process.terminate()
    print(f"model {args.model}; {args.seconds:.0f}-s 44.1 kHz stereo WAV upload")
    print(f"in-process analysis (baseline): {in_process:.2f} s")
    print(f"browser, Analyze click -> result on the page: {page:.2f} s ({page / in_process:.2f}x the baseline)")


if __name__ == "__main__":
    main()
