"""`python app.py` as a real server, in headless Chromium: an upload with its whole result, the live microphone with
several updates, a bad upload with its one message, an oversized and an over-long upload refused at upload time, a
420-px phone viewport; and a 10-request load test through the API.

Chromium is Debian's (`/usr/bin/chromium`, installed by .ci/run), driven by Playwright; the browser tests skip where
either is missing. A screenshot of each page is saved under `test-artifacts/` (git-ignored).
"""

import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import GTZAN_DIR, REPOSITORY, free_port, requires_gtzan

from benchmarks.browser import fake_microphone_flags, open_live_microphone_page
from genre_vit import GenreClassifier
from genre_vit.analysis import BUNDLED_MODEL_DIR
from genre_vit.audio import resample
from genre_vit.testing import synth_music

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPOSITORY / "test-artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


MAX_UPLOAD_MB, MAX_MINUTES = 2, 1


@contextlib.contextmanager
def app_server(model_dir: Path, log: Path, **extra_environment):
    """`python app.py` with `model_dir` on a free localhost port, until the block ends; yields its URL."""
    port = free_port()
    environment = dict(
        os.environ,
        GENRE_VIT_MODEL=str(model_dir),
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        HF_HUB_OFFLINE="1",
        GRADIO_ANALYTICS_ENABLED="False",
        PYTHONPATH=str(REPOSITORY),
        GENRE_VIT_MAX_UPLOAD_MB=str(MAX_UPLOAD_MB),
        GENRE_VIT_MAX_MINUTES=str(MAX_MINUTES),
        **extra_environment,
    )
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "app.py"], cwd=REPOSITORY, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"app.py exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail(f"app.py did not answer within 120 s:\n{log.read_text()}")
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    """`python app.py` with the tiny model; its log is kept for failures."""
    log = tmp_path_factory.mktemp("app") / "app.log"
    with app_server(tiny_model_dir, log) as url:
        yield url, log


@pytest.fixture()
def browser_factory():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed")
    playwright = sync_api.sync_playwright().start()
    browsers = []

    def launch(*extra_flags):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS + list(extra_flags))
        browsers.append(browser)
        return browser

    yield launch
    for browser in browsers:
        browser.close()
    playwright.stop()


def wait_for_result(page, timeout_ms=120_000):
    page.wait_for_function(
        "() => { const box = document.querySelector('#summary textarea'); return box && box.value.includes('over'); }",
        timeout=timeout_ms,
    )
    return page.locator("#summary textarea").input_value()


def screenshot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def upload(page, path):
    page.locator("#song input[type=file]").set_input_files(str(path))


def error_badges(page) -> int:
    """Gradio's per-component error badges (what a raised gr.Error puts on every output)."""
    return page.locator(".error").count() + page.get_by_text("Error", exact=True).count()


def open_why_panel(page):
    page.locator("#why-panel").get_by_text("Why this genre?").click()


def test_upload_in_a_real_browser(server, browser_factory, tmp_path, tiny_model_dir):
    url, _ = server
    song = tmp_path / "upload-song.wav"
    soundfile.write(song, synth_music(30.0, seed=11), 22050)
    page = browser_factory().new_page(viewport={"width": 1400, "height": 1200})
    page.goto(url)
    upload(page, song)
    page.locator("#song").get_by_text("0:30").first.wait_for(timeout=30_000)  # the upload has been processed
    started = time.monotonic()
    page.locator("#analyze").click()
    summary = wait_for_result(page)
    print(f"upload-to-result (30-s clip, tiny model): {time.monotonic() - started:.2f} s")
    assert summary.endswith("— 14 windows over 0:30")
    verdict = page.locator("#verdict").inner_text()
    assert summary.startswith(verdict)
    label_text = page.locator("#genre-label").inner_text()
    assert all(genre in label_text for genre in ("blues", "rock", "metal", "jazz")) and "%" in label_text
    sections = page.locator("#sections li").all_inner_texts()
    assert sections and sections[0].startswith("0:00-") and sections[-1].split(" ")[0].endswith("-0:30")
    page.locator("#timeline img").wait_for(timeout=10_000)
    assert page.locator("#why img").count() == 0  # the explanation waits until its panel is opened
    open_why_panel(page)
    page.locator("#why img").wait_for(timeout=10_000)
    assert "0:" in page.locator("#why-window input").input_value()  # the window that is explained
    # With the panel open, a new analysis clears the explanation and then draws its own.
    page.evaluate(
        """() => { window.whyCleared = false; const why = document.querySelector('#why');
        new MutationObserver(() => { if (!why.querySelector('img')) window.whyCleared = true; })
            .observe(why, {childList: true, subtree: true}); }"""
    )
    page.locator("#analyze").click()
    page.wait_for_function("() => window.whyCleared && document.querySelector('#why img')", timeout=30_000)
    table_text = page.locator("#windows-table").inner_text()
    assert "0:00" in table_text and "0:30" in table_text
    assert "upload-song-genres" in page.locator("#result-json").inner_text()
    visible = page.locator("body").inner_text()
    assert f"Model {tiny_model_dir.name}" in page.locator("#model-accuracy").inner_text()
    assert str(tiny_model_dir.parent) not in visible  # the model's name, never the server's path
    assert error_badges(page) == 0
    screenshot(page, "app-upload-result.png")


def test_phone_viewport_420px(server, browser_factory, tmp_path):
    url, _ = server
    song = tmp_path / "phone-song.wav"
    soundfile.write(song, synth_music(20.0, seed=13), 22050)
    page = browser_factory().new_page(viewport={"width": 420, "height": 900}, device_scale_factor=1)
    page.goto(url)
    upload(page, song)
    page.locator("#song").get_by_text("0:20").first.wait_for(timeout=30_000)
    page.locator("#analyze").click()
    wait_for_result(page)
    page.locator("#timeline img").wait_for(timeout=10_000)
    open_why_panel(page)
    page.locator("#why img").wait_for(timeout=10_000)
    width = page.evaluate("() => document.documentElement.clientWidth")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width  # nothing sticks out sideways
    boxes = {}
    for name in ("#timeline img", "#why img", "#windows-table table", "#genre-label table", "#sections"):
        box = page.locator(name).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1, name  # not cut off
        boxes[name] = box
    # the plots use the width they have, one above the other, not overlapping
    timeline, why = boxes["#timeline img"], boxes["#why img"]
    assert timeline["width"] >= 0.8 * width and why["y"] >= timeline["y"] + timeline["height"]
    # the last column of the window table is inside the screen
    last_cell = page.locator("#windows-table tbody tr").first.locator("td").last.bounding_box()
    assert last_cell["x"] + last_cell["width"] <= width + 1
    screenshot(page, "app-phone-420px.png")


def test_bad_upload_shows_one_message(server, browser_factory, tmp_path):
    url, _ = server
    fake = tmp_path / "holiday-photo.mp3"
    fake.write_text("<html>this is not audio</html>" * 40)
    page = browser_factory().new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    upload(page, fake)
    message = page.locator("#status .bad-input")
    message.wait_for(timeout=30_000)
    assert "holiday-photo.mp3" in message.inner_text() and "not an audio file" in message.inner_text()
    assert page.locator(".bad-input").count() == 1 and error_badges(page) == 0
    screenshot(page, "app-bad-upload.png")


def test_over_long_and_oversized_uploads_are_refused_at_upload_time(server, browser_factory, tmp_path):
    url, _ = server
    long_song = tmp_path / "long-song.wav"  # 70 s at 8 kHz: under the size limit, over the length limit
    soundfile.write(long_song, synth_music(70.0, seed=14, sampling_rate=8000), 8000, subtype="PCM_16")
    page = browser_factory().new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    upload(page, long_song)
    message = page.locator("#status .bad-input")
    message.wait_for(timeout=30_000)  # no click on Analyze: the upload alone is checked
    assert "long-song.wav is 1:10 long; the limit is 1:00" in message.inner_text()
    assert page.locator("#song audio").count() == 0  # the player was cleared: the refused file does not play
    assert error_badges(page) == 0
    screenshot(page, "app-too-long-upload.png")

    huge = tmp_path / "huge.wav"  # 2.4 MB, over the 2-MB limit: the page refuses it before it is sent
    soundfile.write(huge, synth_music(55.0, seed=15), 22050, subtype="PCM_16")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a song")
    page.goto(url)
    for refused, expected in (
        (huge, "huge.wav is 2.4 MB; the limit is 2.0 MB."),
        (notes, "notes.txt is not an audio file: upload a song (MP3, WAV, FLAC, OGG, Opus, M4A or AAC)."),
    ):
        upload(page, refused)
        page.locator("#status .bad-input", has_text=expected).wait_for(timeout=30_000)
        assert page.locator(".toast-body, .toast-wrap .toast").count() == 0  # the status line, not Gradio's toast
        screenshot(page, f"app-refused-{refused.suffix.lstrip('.')}-upload.png")
    assert page.locator("#song audio").count() == 0
    outputs = ", ".join(f"{name} .error" for name in ("#summary", "#genre-label", "#timeline", "#why", "#answer"))
    assert page.locator(outputs).count() == 0  # the message is about the input; no output panel shows an error


def test_live_microphone_in_a_real_browser(server, browser_factory, tmp_path):
    url, _ = server
    recording = tmp_path / "microphone.wav"
    soundfile.write(recording, synth_music(20.0, seed=12, sampling_rate=48000), 48000)
    page = open_live_microphone_page(browser_factory(*fake_microphone_flags(recording)), url)
    page.evaluate(
        """() => {
            const ask = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
            navigator.mediaDevices.getUserMedia = async (constraints) => {
                const stream = await ask(constraints);
                window.microphoneSettings = stream.getAudioTracks()[0].getSettings();
                return stream;
            };
        }"""
    )
    page.locator("#microphone").get_by_role("button", name="Record", exact=True).click()
    page.wait_for_function("() => window.liveUpdates.length >= 3", timeout=60_000)
    updates = page.evaluate("() => window.liveUpdates")
    # music-grade capture: the browser's voice processing is off
    settings = page.evaluate("() => window.microphoneSettings")
    assert settings["echoCancellation"] is False and settings["noiseSuppression"] is False
    assert settings["autoGainControl"] is False
    screenshot(page, "app-live-microphone.png")
    page.locator("#microphone").get_by_role("button", name="Stop", exact=True).first.click()
    summary = wait_for_result(page)
    assert "windows over" in summary
    page.locator("#timeline img").wait_for(timeout=10_000)
    screenshot(page, "app-live-microphone-result.png")
    windows = [int(update["text"].split(" windows")[0].rsplit(" ", 1)[-1]) for update in updates]
    assert windows[:3] == sorted(windows[:3]) and len(set(windows)) >= 3  # a new window at each update
    gaps = [(b["at"] - a["at"]) / 1000 for a, b in itertools.pairwise(updates)]
    print(f"live updates every {', '.join(f'{gap:.2f}' for gap in gaps)} s: {[u['text'] for u in updates]}")


def test_ten_concurrent_requests(server, tmp_path):
    from gradio_client import Client, handle_file

    url, log = server
    songs = []
    for index in range(10):
        path = tmp_path / f"load-{index}.wav"
        soundfile.write(path, synth_music(6.0 + index, seed=100 + index), 22050)
        songs.append(path)

    def request(path):
        client = Client(url, verbose=False)
        return client.predict(handle_file(str(path)), api_name="/analyze")

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(request, songs, timeout=600))
    for index, outputs in enumerate(results):
        status, _, summary, *_, json_path = outputs  # the State output is not in the API
        windows = 1 + -(-max(0, (6 + index) * 22050 - 88200) // 44100)
        assert status == "" and summary.endswith(f"{windows} windows over 0:{6 + index:02d}")
        assert len(json.loads(Path(json_path).read_text())["mean_probabilities"]) == 10
    assert log.read_text().count("GenreViT start-up: Model **") == 1  # the model was loaded once, at start-up


def test_bad_upload_is_one_log_line_without_traceback(server, tmp_path):
    from gradio_client import Client, handle_file

    url, log = server
    fake = tmp_path / "not-a-song.mp3"
    fake.write_text("<html>this is not audio</html>" * 40)
    before = log.read_text()
    status, *_ = Client(url, verbose=False).predict(handle_file(str(fake)), api_name="/analyze")
    assert "not-a-song.mp3" in status
    time.sleep(0.5)
    added = log.read_text()[len(before) :]
    assert "Traceback" not in added
    assert [line for line in added.splitlines() if "not-a-song.mp3" in line] == [
        line for line in added.splitlines() if "rejected input" in line
    ]
    assert added.count("rejected input") == 1


def test_the_page_says_none_of_these_and_uncertain(browser_factory, tmp_path, feature_extractor):
    """A model with a genre distance and a temperature so high that every genre answer is uncertain; its threshold
    sits between the distances of two songs, so that one is answered "none of the ten genres fits" and the other
    "uncertain: A or B", each with its reason, on the page as in the library."""
    import numpy as np
    import torch

    from genre_vit import GenreClassifier, GenreViTConfig, GenreViTForAudioClassification

    torch.manual_seed(0)
    model = GenreViTForAudioClassification(GenreViTConfig.tiny(temperature=1000.0)).eval()
    model.set_genre_distance(torch.eye(64), torch.from_numpy(np.random.default_rng(0).normal(size=(10, 64))).float())
    songs = {name: tmp_path / f"{name}.wav" for name in ("near", "far")}
    soundfile.write(songs["near"], synth_music(20.0, seed=21), 22050)
    soundfile.write(songs["far"], np.random.default_rng(1).normal(scale=0.3, size=22050 * 20), 22050)
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    feature_extractor.save_pretrained(folder)
    library = GenreClassifier.from_pretrained(folder, device="cpu", dtype="float32")
    distances = {name: library.analyze(path).genre_distance for name, path in songs.items()}
    near, far = sorted(distances, key=distances.get)
    model.config.none_of_these_distance = float(np.mean(list(distances.values())))
    model.save_pretrained(folder)
    expected = {name: GenreClassifier.from_pretrained(folder, device="cpu").analyze(songs[name]) for name in songs}
    assert expected[far].answer == "none_of_these" and expected[near].answer == "uncertain"

    with app_server(folder, tmp_path / "app.log") as url:
        browser = browser_factory()
        for name, reason in ((far, "This music sounds unlike every genre"), (near, "Uncertain")):
            page = browser.new_page(viewport={"width": 1400, "height": 1200})  # a loaded song hides the file input
            page.goto(url)
            upload(page, songs[name])
            page.locator("#song").get_by_text("0:20").first.wait_for(timeout=30_000)
            page.locator("#analyze").click()
            page.wait_for_function(
                "() => { const box = document.querySelector('#summary textarea');"
                " return box && box.value.includes('over'); }",
                timeout=120_000,
            )
            summary = page.locator("#summary textarea").input_value()
            verdict = page.locator("#verdict").inner_text()
            assert verdict.startswith(expected[name].verdict) and summary.startswith(expected[name].verdict)
            assert reason in page.locator("#answer").inner_text()  # the reason, under the verdict
            assert error_badges(page) == 0
            screenshot(page, f"app-{expected[name].answer.replace('_', '-')}.png")


def chirp(seconds: float, sampling_rate: int, low: float = 200.0, rate: float = 200.0) -> np.ndarray:
    """A sine whose frequency rises by `rate` Hz every second from `low`: its frequency tells where in the file a
    piece of a recording comes from."""
    t = np.arange(int(seconds * sampling_rate)) / sampling_rate
    return (0.5 * np.sin(2 * np.pi * (low * t + rate * t**2 / 2))).astype(np.float32)


def source_times(recording: np.ndarray, sampling_rate: int, block_seconds: float = 0.25, low=200.0, rate=200.0):
    """The chirp time (s) at the middle of each block of `recording`, from its strongest frequency."""
    block = int(block_seconds * sampling_rate)
    times = []
    for start in range(0, recording.size - block + 1, block):
        spectrum = np.abs(np.fft.rfft(recording[start : start + block] * np.hanning(block), n=8 * block))
        frequency = spectrum.argmax() * sampling_rate / (8 * block)
        times.append((frequency - low) / rate)
    return np.array(times)


def test_the_microphone_loses_no_audio(tiny_model_dir, browser_factory, tmp_path):
    """A 20-s chirp (200 Hz to 4.2 kHz) is the fake microphone, recorded for about 16 s: the recording the server
    analysed holds every 0.25-s block of it, in order, each 0.25 s of the chirp after the one before."""
    source = tmp_path / "chirp.wav"
    soundfile.write(source, chirp(20.0, 48000), 48000)
    results = tmp_path / "server-tmp"
    results.mkdir()
    log = tmp_path / "app.log"
    with app_server(tiny_model_dir, log, TMPDIR=str(results)) as url:
        page = open_live_microphone_page(browser_factory(*fake_microphone_flags(source)), url)
        page.locator("#microphone").get_by_role("button", name="Record", exact=True).click()
        page.wait_for_function("() => window.liveUpdates.length >= 1", timeout=60_000)
        page.wait_for_timeout(12_000)
        page.locator("#microphone").get_by_role("button", name="Stop", exact=True).first.click()
        wait_for_result(page)
        (recording,) = results.glob("genre-vit-results-*/*/analysed.wav")  # removed when the server stops
        audio, rate = soundfile.read(recording, dtype="float32")
    assert audio.size / rate > 15.0
    times = source_times(audio[int(0.5 * rate) :], rate)  # the first half second: the capture's fade-in
    steps = np.diff(times) % 20.0  # the fake microphone loops the file
    print(f"recorded {audio.size / rate:.2f} s; steps between blocks {np.round(np.sort(steps)[[0, -1]], 3)}")
    assert np.all(np.abs(steps - 0.25) < 0.06), f"audio was lost or repeated: steps {np.round(steps, 2).tolist()}"


@requires_gtzan
def test_a_real_clip_through_the_microphone_gets_the_uploads_answer(browser_factory, tmp_path):
    """GTZAN's metal.00003 played into the fake microphone is answered as the same file uploaded is, by the bundled
    model: the page hears the music as it is (no voice processing, nothing lost)."""
    clip = GTZAN_DIR / "metal" / "metal.00003.flac"
    upload_answer = GenreClassifier.from_pretrained(BUNDLED_MODEL_DIR, device="cpu").analyze(clip)
    source = tmp_path / "metal.wav"  # the fake microphone plays WAV files; 48 kHz as a device would
    waveform, rate = soundfile.read(clip, dtype="float32")
    soundfile.write(source, resample(waveform, rate, 48000), 48000)
    with app_server(BUNDLED_MODEL_DIR, tmp_path / "app.log") as url:
        page = open_live_microphone_page(browser_factory(*fake_microphone_flags(source)), url)
        page.locator("#microphone").get_by_role("button", name="Record", exact=True).click()
        page.wait_for_function("() => window.liveUpdates.length >= 1", timeout=60_000)
        page.wait_for_timeout(24_000)  # most of the 30-s clip
        page.locator("#microphone").get_by_role("button", name="Stop", exact=True).first.click()
        summary = wait_for_result(page)
        screenshot(page, "app-microphone-real-clip.png")
    print(f"microphone: {summary}; upload: {upload_answer.summary()}")
    assert upload_answer.verdict == "metal" and summary.startswith("metal, "), summary
