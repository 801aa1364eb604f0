"""Driving the demo page in Chromium with Playwright, as a visitor does: the fake microphone and the live tab.
Shared by the browser tests and `benchmarks/bench_page.py`."""


def fake_microphone_flags(recording) -> list[str]:
    """Chromium flags that make a WAV file the microphone, with permission granted (browser tests, benchmarks)."""
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={recording}",
    ]


_COLLECT_LIVE_UPDATES = """() => {
    window.liveUpdates = [];
    const target = document.querySelector('#live-now');
    new MutationObserver(() => {
        const text = target.innerText;
        if (text.startsWith('Now:') && text !== window.liveUpdates.at(-1)?.text)
            window.liveUpdates.push({text, at: performance.now()});
    }).observe(target, {subtree: true, childList: true, characterData: true});
}"""


def open_live_microphone_page(browser, url: str, viewport=(1400, 1200)):
    """A Playwright page of the demo on its "Live microphone" tab, microphone allowed, recording every new "Now: …"
    line with its time in `window.liveUpdates` (`{text, at}`, `at` in ms of `performance.now()`)."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    context.grant_permissions(["microphone"], origin=url.rstrip("/"))
    page = context.new_page()
    page.goto(url)
    page.get_by_role("tab", name="Live microphone").click()
    page.evaluate(_COLLECT_LIVE_UPDATES)
    return page
