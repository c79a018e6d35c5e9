"""Regenerate docs/screenshots/*.png: the demo library, the player, its audio and subtitle
menus and scrub thumbnails, and the sessions page.

    python docs/make_screenshots.py

Needs the test extras (playwright) and Debian's chromium at /usr/bin/chromium; serves the
built-in demo library (generated once into ~/.cache/hlstrio) on a free port.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, sync_playwright

OUT = Path(__file__).resolve().parent / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIDEO = "document.getElementById('video')"


def show_controls(page: Page) -> None:
    page.mouse.move(400, 400)  # shows the auto-hiding control bar
    page.wait_for_function(
        "() => getComputedStyle(document.getElementById('controls')).opacity === '1'"
    )


def tracks_screenshots(context: BrowserContext, url: str) -> None:
    """The several-tracks demo: audio menu, a subtitle on screen with its menu, a thumbnail."""
    page = context.new_page()
    page.set_viewport_size({"width": 1280, "height": 1000})  # down to the renditions table
    page.goto(url + "/")
    page.locator(".card", has_text="Multiple Tracks").click()
    page.wait_for_function(f"() => {VIDEO}.currentTime > 2", timeout=30_000)
    show_controls(page)
    page.locator("#audio-button").click()
    page.screenshot(path=str(OUT / "player-audio-menu.png"))
    page.locator('#audio-menu [role=menuitemradio][aria-checked="false"]').first.click()

    page.locator("#subtitles-button").click()
    page.locator('#subtitles-menu [role=menuitemradio]:not([data-key="off"])').first.click()
    page.wait_for_function(
        "() => { const t = window.hlstrioPlayer.subtitles.activeTrack();"
        " return t && t.activeCues && t.activeCues.length > 0; }",
        timeout=30_000,
    )
    show_controls(page)
    page.locator("#subtitles-button").click()
    page.screenshot(path=str(OUT / "player-subtitles.png"))
    page.keyboard.press("Escape")

    box = page.locator("#seek").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "() => !document.getElementById('scrub-preview').hidden &&"
        " document.getElementById('scrub-image').complete &&"
        " document.getElementById('scrub-image').naturalWidth > 0",
        timeout=30_000,
    )
    page.screenshot(
        path=str(OUT / "player-scrub.png"), clip={"x": 0, "y": 0, "width": 1280, "height": 720}
    )
    page.close()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "hlstrio", "serve", "--port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE,
    )
    assert server.stdout is not None
    try:
        line = server.stdout.readline().decode()
        assert line.startswith("hlstrio listening on "), line
        url = line.split()[-1]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
            )
            context = browser.new_context(viewport={"width": 1280, "height": 720})
            page = context.new_page()
            page.goto(url + "/")
            page.wait_for_function(
                "() => document.querySelectorAll('.poster img').length > 0 && "
                "[...document.querySelectorAll('.poster img')].every(i => i.naturalWidth > 0)"
            )
            page.screenshot(path=str(OUT / "library.png"))

            page.locator(".card", has_text="HEVC").click()
            page.wait_for_function(f"() => {VIDEO}.currentTime > 6", timeout=30_000)
            page.mouse.move(400, 400)  # shows the auto-hiding control bar
            page.wait_for_function(
                "() => getComputedStyle(document.getElementById('controls')).opacity === '1'"
            )
            page.screenshot(path=str(OUT / "player.png"))
            tracks_screenshots(context, url)

            sessions = context.new_page()
            sessions.set_viewport_size({"width": 1280, "height": 400})
            sessions.goto(url + "/sessions")
            sessions.locator("tr[data-session-id]").first.wait_for()
            sessions.screenshot(path=str(OUT / "sessions.png"))
            browser.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    print(f"wrote {', '.join(sorted(p.name for p in OUT.glob('*.png')))} to {OUT}")


if __name__ == "__main__":
    main()
