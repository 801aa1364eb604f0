"""`python app.py` as a real server: two headless-Chromium tests (upload, microphone) and a 10-request load test.

Chromium is Debian's (`/usr/bin/chromium`, installed by .ci/run), driven by Playwright; the browser tests skip where
either is missing. A screenshot of each result page is saved under `test-artifacts/` (git-ignored).
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import soundfile
from conftest import REPOSITORY

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    """`python app.py` on a free localhost port with the tiny model; its log is kept for failures."""
    port = free_port()
    log = tmp_path_factory.mktemp("app") / "app.log"
    environment = dict(
        os.environ,
        GENRE_VIT_MODEL=str(tiny_model_dir),
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        HF_HUB_OFFLINE="1",
        GRADIO_ANALYTICS_ENABLED="False",
        PYTHONPATH=str(REPOSITORY),
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
    yield url, log
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


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


def test_upload_in_a_real_browser(server, browser_factory, tmp_path):
    url, _ = server
    song = tmp_path / "upload-song.wav"
    soundfile.write(song, synth_music(30.0, seed=11), 22050)
    page = browser_factory().new_page(viewport={"width": 1400, "height": 1200})
    page.goto(url)
    page.locator("#song input[type=file]").set_input_files(str(song))
    page.locator("#song").get_by_text("0:30").first.wait_for(timeout=30_000)  # the upload has been processed
    page.locator("#analyze").click()
    summary = wait_for_result(page)
    top_genre = summary.split(",")[0]
    assert summary.endswith("— 14 windows over 0:30")
    label_text = page.locator("#genre-label").inner_text()
    assert top_genre in label_text and all(genre in label_text for genre in ("blues", "rock", "metal", "jazz"))
    page.locator("#timeline img").wait_for(timeout=10_000)
    table_text = page.locator("#windows-table").inner_text()
    assert "0:00" in table_text and "0:30" in table_text and top_genre in table_text
    assert "upload-song-genres" in page.locator("#result-json").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app-upload-result.png"), full_page=True)


def test_microphone_in_a_real_browser(server, browser_factory, tmp_path):
    url, _ = server
    recording = tmp_path / "microphone.wav"
    soundfile.write(recording, synth_music(10.0, seed=12, sampling_rate=48000), 48000)
    browser = browser_factory(
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={recording}",
    )
    context = browser.new_context(viewport={"width": 1400, "height": 1200})
    context.grant_permissions(["microphone"], origin=url.rstrip("/"))
    page = context.new_page()
    page.goto(url)
    page.locator("#song button[aria-label='Record audio']").click()
    page.locator("#song").get_by_role("button", name="Record", exact=True).click()
    page.wait_for_timeout(3500)
    page.locator("#song").get_by_role("button", name="Stop", exact=True).first.click()
    page.locator("#song [data-testid='audio-player-Song']").wait_for(state="attached", timeout=30_000)
    page.wait_for_timeout(1000)  # the recording is uploaded to the server
    page.locator("#analyze").click()
    summary = wait_for_result(page)
    assert "window" in summary
    assert page.locator("#genre-label").inner_text().strip()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app-microphone-result.png"), full_page=True)


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
    for index, (labels, _, table, json_path, summary) in enumerate(results):
        windows = 1 + -(-max(0, (6 + index) * 22050 - 88200) // 44100)
        assert summary.endswith(f"{windows} windows over 0:{6 + index:02d}")
        assert len(labels["confidences"]) == 10
    assert log.read_text().count("GenreViT start-up: Model:") == 1  # the model was loaded once, at start-up


def test_bad_upload_is_one_log_line_without_traceback(server, tmp_path):
    from gradio_client import Client, handle_file

    url, log = server
    fake = tmp_path / "not-a-song.mp3"
    fake.write_text("<html>this is not audio</html>" * 40)
    before = log.read_text()
    with pytest.raises(Exception, match="not-a-song.mp3"):
        Client(url, verbose=False).predict(handle_file(str(fake)), api_name="/analyze")
    time.sleep(0.5)
    added = log.read_text()[len(before) :]
    assert "Traceback" not in added
    assert [line for line in added.splitlines() if "not-a-song.mp3" in line] == [
        line for line in added.splitlines() if "rejected input" in line
    ]
    assert added.count("rejected input") == 1
