"""The page with the default model, in headless Chromium: upload-to-result time for a 30-s real clip and a 3-minute
song, and the live microphone: when the first update appears after pressing record, the intervals between updates
(one per 2 s of audio), and the server's own time per update (from its log).

    python -m benchmarks.bench_page [--clip ../shared/data/gtzan/rock/rock.00000.flac] [--repeats 2]

Screenshots of the live page go to test-artifacts/.
"""

import argparse
import itertools
import socket
import statistics
import tempfile
import time
from pathlib import Path

import soundfile

from benchmarks.bench_app import CHROMIUM_FLAGS, REPOSITORY, start_app
from benchmarks.browser import fake_microphone_flags, open_live_microphone_page
from benchmarks.common import write_song
from genre_vit.analysis import default_model_source
from genre_vit.testing import synth_music

RESULT_SHOWN = "() => { const b = document.querySelector('#summary textarea'); return b && b.value.includes('over'); }"


def upload_to_result(page, url: str, path: Path, length_label: str) -> float:
    page.goto(url)
    page.locator("#song input[type=file]").set_input_files(str(path))
    page.locator("#song").get_by_text(length_label).first.wait_for(timeout=60_000)
    started = time.perf_counter()
    page.locator("#analyze").click()
    page.wait_for_function(RESULT_SHOWN, timeout=300_000)
    page.locator("#timeline img").wait_for(timeout=30_000)
    return time.perf_counter() - started


def live_updates(playwright, url: str, recording: Path, count: int) -> tuple[float, list[float]]:
    """(seconds from pressing record to the first update, seconds between the next `count - 1` updates)."""
    browser = playwright.chromium.launch(
        executable_path="/usr/bin/chromium", args=[*CHROMIUM_FLAGS, *fake_microphone_flags(recording)]
    )
    page = open_live_microphone_page(browser, url)
    pressed = page.evaluate("() => performance.now()")
    page.locator("#microphone").get_by_role("button", name="Record", exact=True).click()
    page.wait_for_function(f"() => window.liveUpdates.length >= {count}", timeout=120_000)
    updates = page.evaluate("() => window.liveUpdates")
    (REPOSITORY / "test-artifacts").mkdir(exist_ok=True)
    page.screenshot(path=str(REPOSITORY / "test-artifacts" / "app-live-default-model.png"), full_page=True)
    page.locator("#microphone").get_by_role("button", name="Stop", exact=True).first.click()
    page.wait_for_function(RESULT_SHOWN, timeout=120_000)
    browser.close()
    gaps = [(later["at"] - earlier["at"]) / 1000 for earlier, later in itertools.pairwise(updates)]
    return (updates[0]["at"] - pressed) / 1000, gaps


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=default_model_source())
    parser.add_argument("--clip", type=Path, default=REPOSITORY.parent / "shared/data/gtzan/rock/rock.00000.flac")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        song = write_song(Path(folder) / "three-minutes.mp3", 180.0)
        recording = Path(folder) / "microphone.wav"
        soundfile.write(recording, synth_music(30.0, seed=3, sampling_rate=48000), 48000)
        log = Path(folder) / "app.log"
        process = start_app(args.model, port, log_file=log)
        url = f"http://127.0.0.1:{port}/"
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1200})
                for path, label in [(args.clip, "0:30"), (song, "3:00")] * args.repeats:
                    seconds = upload_to_result(page, url, path, label)
                    print(f"upload -> result on the page, {path.name}: {seconds:.2f} s")
                browser.close()
                first, gaps = live_updates(playwright, url, recording, count=8)
        finally:
            process.terminate()
            process.wait(timeout=30)
        server = [line.split("INFO: ")[-1].strip() for line in log.read_text().splitlines() if "live update" in line]
    print(f"live: first update {first:.2f} s after pressing record (the first window needs 4.05 s of audio)")
    print(f"live: {', '.join(f'{gap:.2f}' for gap in gaps)} s between updates; median {statistics.median(gaps):.2f} s")
    print("server, per update:\n  " + "\n  ".join(server))


if __name__ == "__main__":
    main()
