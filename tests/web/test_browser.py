"""The web UI in a real browser: Debian's chromium, driven by playwright, against the real server.

Chromium 156 plays HLS natively and its MSE has H.264 + AAC but no HEVC, so what the page
reports decides, honestly, that an HEVC/Opus file is transcoded and an H.264/AAC one remuxed.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from playwright import sync_api

from hlstrio.media import Library, MediaItem, Poster, PosterCache, PosterUnavailable, generate_clip
from hlstrio.media._poster import poster_time
from hlstrio.web._ui import STATIC_DIR

from ..support import session_processes
from ._browser import (
    CHROMIUM_ARGS,
    VIDEO,
    ServerProcess,
    press_play_if_asked,
    screenshot,
    serve,
    wait_playing_past,
    wait_until,
    watch_page_errors,
)

expect = sync_api.expect
# On each test that drives the browser: checked before the module's fixtures make media or
# start a server (usefixtures come first), so a missing chromium costs nothing.
needs_chromium = pytest.mark.usefixtures("chromium")

REPO = Path(__file__).resolve().parents[2]
REMUX = "Test Pattern (H264, AAC).mp4"
TRANSCODE = "Test Pattern (HEVC, Opus).mkv"
MIXED = "Test Pattern (H264, Opus).mkv"
TWO_AUDIO = "Two Audio Tracks.mp4"
ALICE = "alice-browser-token-0123"
SIZE = "256\N{MULTIPLICATION SIGN}144"  # as the pages write it


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser_media(
    tmp_path_factory: pytest.TempPathFactory, long_media_dir: Path, ffmpeg: str
) -> Path:
    """Two-minute H.264/AAC and HEVC/Opus clips (room to seek far), H.264 with Opus audio, and
    a file with two audio tracks."""
    root = tmp_path_factory.mktemp("browser-media")
    size = {"width": 256, "height": 144}
    generate_clip(root / TWO_AUDIO, "two_audio_mp4", ffmpeg=ffmpeg, seconds=16, **size)
    for name, source in ((REMUX, "long_h264.mp4"), (TRANSCODE, "long_hevc.mkv")):
        try:
            os.link(long_media_dir / source, root / name)
        except OSError:
            shutil.copyfile(long_media_dir / source, root / name)
    subprocess.run(
        [
            *(ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"),
            *("-f", "lavfi", "-i", "testsrc2=size=256x144:rate=24"),
            *("-f", "lavfi", "-i", "sine=frequency=550:sample_rate=48000"),
            *("-map", "0:v", "-map", "1:a", "-t", "12"),
            *("-c:v", "libx264", "-preset", "veryfast", "-g", "48", "-pix_fmt", "yuv420p"),
            *("-c:a", "libopus", "-b:a", "96k", "-ac", "2", "-f", "matroska"),
            str(root / MIXED),
        ],
        check=True,
    )
    return root


@pytest.fixture(scope="module")
def server(
    browser_media: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with serve(browser_media, tmp_path_factory.mktemp("browser-server")) as running:
        yield running


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    # `chromium` (tests/conftest.py) skips these tests without it, or fails them under CI.
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    # The pages run under a strict Content-Security-Policy: anything it blocks is a bug.
    errors = watch_page_errors(context)
    yield context
    context.close()
    assert errors == [], f"errors in the page: {errors}"


@pytest.fixture
def page(context: Any, server: ServerProcess) -> Iterator[Any]:
    yield context.new_page()
    # Closing a context runs no pagehide handlers: end what the test left, for the next test.
    server.end_all_sessions()


# --- helpers -------------------------------------------------------------------------------


def open_from_library(page: Any, server: ServerProcess, path: str) -> None:
    """Click the item's card on the library page, as a person would."""
    page.goto(server.url + "/")
    page.locator(f'.card[data-media-id="{server.media_id(path)}"]').click()
    page.wait_for_url("**/play/**")


def player_session(page: Any, server: ServerProcess) -> dict[str, Any]:
    """The session the page is playing, as the API reports it (not as the page renders it)."""
    session_id = page.evaluate("() => window.hlstrioPlayer.session.id")
    response = server.api("GET", f"/api/v1/sessions/{session_id}")
    assert response.status_code == 200, response.text
    session: dict[str, Any] = response.json()
    return session


def seek_by_clicking(page: Any, fraction: float, duration: float) -> float:
    """Click the seek bar at `fraction` of its width and return where the player was sent."""
    box = page.locator("#seek").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)  # wakes the auto-hiding controls
    page.mouse.click(box["x"] + box["width"] * fraction, y)
    target = float(page.evaluate("() => Number(document.getElementById('seek').value)"))
    assert abs(target / duration - fraction) < 0.02, (target, duration)
    return target


def check_seek_resumes(page: Any, fraction: float = 0.8) -> None:
    duration = float(page.evaluate("() => Number(document.getElementById('seek').max)"))
    before = page.evaluate(f"() => {VIDEO}.currentTime")
    target = seek_by_clicking(page, fraction, duration)
    assert before < target - 10
    # Resumed there: at or past the target, and still advancing (not stuck at it).
    reached = wait_playing_past(page, target + 1.0, timeout=10)
    assert reached < target + 6, f"played from {target} to {reached}: did not seek there"


def check_mode_shown(page: Any, mode: str) -> None:
    expect(page.locator("#mode")).to_have_attribute("data-mode", mode)
    expect(page.locator("#mode")).to_have_text(mode)


# --- tests ---------------------------------------------------------------------------------


@needs_chromium
def test_library_lists_every_item_with_metadata_posters_and_a_filter(
    page: Any, server: ServerProcess
) -> None:
    page.goto(server.url + "/")
    cards = page.locator(".card")
    expect(cards).to_have_count(4)
    expect(page.locator("#count")).to_have_text("4")
    remux = page.locator(f'.card[data-media-id="{server.media_id(REMUX)}"]')
    expect(remux.locator(".card-title")).to_have_text("Test Pattern (H264, AAC)")
    expect(remux.locator(".card-meta")).to_have_text(f"{SIZE}·H.264·AAC·MP4")
    expect(remux.locator(".duration")).to_have_text("2:00")
    transcode = page.locator(f'.card[data-media-id="{server.media_id(TRANSCODE)}"]')
    expect(transcode.locator(".card-meta")).to_have_text(f"{SIZE}·HEVC·Opus·MKV")

    # Every poster is a real frame from the file (never upscaled past the source's 256 px).
    page.wait_for_function(
        "() => [...document.querySelectorAll('.poster img')]"
        ".every(img => img.complete && img.naturalWidth === 256)",
        timeout=20_000,
    )
    expect(page.locator(".poster img")).to_have_count(4)
    screenshot(page, "library")

    page.fill("#filter", "hevc")
    expect(page.locator(".card:not([hidden])")).to_have_count(1)
    expect(page.locator(".card:not([hidden]) .card-title")).to_have_text(
        "Test Pattern (HEVC, Opus)"
    )
    expect(page.locator("#count")).to_have_text("1 of 4")
    page.fill("#filter", "no such title")
    expect(page.locator(".card:not([hidden])")).to_have_count(0)
    expect(page.locator("#empty")).to_contain_text("No matches")
    page.fill("#filter", "")
    expect(page.locator(".card:not([hidden])")).to_have_count(4)


@needs_chromium
def test_remux_item_plays_natively_seeks_and_stops_when_the_page_is_left(
    page: Any, server: ServerProcess
) -> None:
    open_from_library(page, server, REMUX)
    # The seek bar spans the whole file before a single segment has played.
    duration = server.api("GET", f"/api/v1/media/{server.media_id(REMUX)}").json()["duration"]
    expect(page.locator("#seek")).to_have_attribute("max", str(duration).removesuffix(".0"))
    wait_playing_past(page, 3)
    assert page.evaluate("() => window.hlstrioPlayer.engine") == "native"
    expect(page.locator("#engine")).to_have_text("Native HLS (browser)")

    session = player_session(page, server)
    assert (session["mode"], session["video_action"], session["audio_action"]) == (
        "remux",
        "copy",
        "copy",
    )
    check_mode_shown(page, "remux")
    expect(page.locator("#video-action")).to_have_text(f"Copy · H.264 {SIZE}")

    check_seek_resumes(page)
    screenshot(page, "player")

    page.locator(".topbar nav a", has_text="Library").click()
    expect(page.locator(".card")).to_have_count(4)
    wait_until(lambda: server.sessions() == [], 10, "the session to end on pagehide")


@needs_chromium
def test_transcode_item_is_transcoded_because_the_browser_has_no_hevc(
    page: Any, server: ServerProcess
) -> None:
    open_from_library(page, server, TRANSCODE)
    wait_playing_past(page, 3)
    capabilities = page.evaluate("() => window.hlstrioPlayer.capabilities")
    assert "h264" in capabilities["video_codecs"] and "hevc" not in capabilities["video_codecs"]
    assert "aac" in capabilities["audio_codecs"]

    session = player_session(page, server)
    assert (session["mode"], session["video_action"], session["audio_action"]) == (
        "transcode",
        "encode",
        "encode",
    )
    assert "hevc" in session["reason"]
    (audio,) = [r for r in session["renditions"] if r["type"] == "audio"]
    assert "opus" in audio["reason"]
    check_mode_shown(page, "transcode")
    expect(page.locator("#reason")).to_contain_text("hevc")
    expect(page.locator("#audio-action")).to_have_text("Encode → AAC (from Opus stereo)")

    check_seek_resumes(page)


@needs_chromium
def test_stop_from_the_sessions_page_ends_the_encoder(
    context: Any, page: Any, server: ServerProcess
) -> None:
    open_from_library(page, server, TRANSCODE)
    wait_playing_past(page, 1)
    session_id = page.evaluate("() => window.hlstrioPlayer.session.id")
    # The encoder runs (or is paused ahead of the player) while the player plays.
    encoders = wait_until(lambda: session_processes(server.temp_dir), 10, "the ffmpeg encoder")
    assert player_session(page, server).get("encoder", "running") in ("running", "paused")

    sessions = context.new_page()  # another tab: leaving the player would end the session
    sessions.goto(server.url + "/sessions")
    row = sessions.locator(f'tr[data-session-id="{session_id}"]')
    expect(row.locator("[data-mode]")).to_have_text("transcode")
    expect(row.locator("td").nth(2)).to_have_text("running")
    screenshot(sessions, "sessions")
    row.locator("button.stop").click()
    expect(row).to_have_count(0)
    expect(sessions.locator("#empty")).to_be_visible()

    assert server.api("GET", f"/api/v1/sessions/{session_id}").status_code == 404
    assert session_processes(server.temp_dir) == [], f"encoder {encoders} still alive"
    assert list(server.temp_dir.iterdir()) == []
    # The player notices and offers to start again instead of spinning forever.
    expect(page.locator("#message-title")).to_have_text(
        "This playback session has ended", timeout=10_000
    )
    expect(page.locator("#restart")).to_contain_text("Resume from")


@needs_chromium
def test_hlsjs_engine_plays_and_seeks(page: Any, server: ServerProcess) -> None:
    page.goto(f"{server.url}/play/{server.media_id(REMUX)}?engine=hlsjs")
    press_play_if_asked(page)
    wait_playing_past(page, 3)
    assert page.evaluate("() => window.hlstrioPlayer.engine") == "hlsjs"
    assert page.evaluate("() => typeof window.Hls.version") == "string"
    expect(page.locator("#engine")).to_contain_text("hls.js 1.")
    # MSE's answers, not the <video> element's, decide what hls.js reports.
    capabilities = page.evaluate("() => window.hlstrioPlayer.capabilities")
    assert "h264" in capabilities["video_codecs"] and "hevc" not in capabilities["video_codecs"]
    check_mode_shown(page, "remux")
    check_seek_resumes(page)


@needs_chromium
def test_h264_opus_copies_both_in_fmp4_and_encodes_only_the_audio_in_ts(
    page: Any, server: ServerProcess
) -> None:
    open_from_library(page, server, MIXED)
    wait_playing_past(page, 3)
    assert "fmp4" in page.evaluate("() => window.hlstrioPlayer.capabilities.containers")
    session = player_session(page, server)
    # The browser takes fMP4 segments, which carry Opus: nothing is encoded.
    assert session["container"] == "fmp4"
    assert (session["mode"], session["video_action"], session["audio_action"]) == (
        "remux",
        "copy",
        "copy",
    )
    expect(page.locator("#audio-action")).to_have_text("Copy · Opus stereo")
    expect(page.locator("#session-state")).to_contain_text("fMP4")

    # A client that takes MPEG-TS only: the same request without "fmp4".
    def ts_only(route: Any) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        body = route.request.post_data_json
        body["capabilities"]["containers"] = ["ts"]
        route.continue_(post_data=json.dumps(body))

    page.route("**/api/v1/sessions", ts_only)
    page.reload()
    wait_playing_past(page, 3)
    session = player_session(page, server)
    assert session["container"] == "ts"
    # The audio rendition is AAC made in-process: no encoder process, so a remux.
    assert (session["mode"], session["video_action"], session["audio_action"]) == (
        "remux",
        "copy",
        "encode",
    )
    expect(page.locator("#video-action")).to_have_text(f"Copy · H.264 {SIZE}")
    expect(page.locator("#audio-action")).to_have_text("Encode → AAC (from Opus stereo)")


@needs_chromium
def test_player_starts_at_t_and_switches_audio_in_the_same_session(
    page: Any, server: ServerProcess
) -> None:
    page.goto(f"{server.url}/play/{server.media_id(TWO_AUDIO)}?t=6")
    press_play_if_asked(page)
    wait_playing_past(page, 6.2)
    first = player_session(page, server)
    assert first["start"] == 6
    # Chromium's native HLS exposes no audioTracks: with two tracks to pick from, hls.js plays.
    assert page.evaluate("() => window.hlstrioPlayer.engine") == "hlsjs"
    expect(page.locator("#engine-why")).to_have_text("native HLS here cannot switch audio tracks")
    page.mouse.move(400, 300)  # wakes the auto-hiding controls
    page.locator("#audio-button").click()
    items = page.locator("#audio-menu [role=menuitemradio]")
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_have_attribute("aria-checked", "true")
    expect(items.nth(1).locator(".title")).to_have_text("Français")
    expect(items.nth(1).locator(".detail")).to_have_text("French · AAC · stereo")
    (french,) = [r for r in first["renditions"] if r["type"] == "audio" and r["language"] == "fr"]

    items.nth(1).click()
    page.wait_for_function(
        f"() => window.hlstrioPlayer.tracks.currentAudio() === {french['id']!r}", timeout=10_000
    )
    wait_playing_past(page, 7)
    # RFC 8216 4.3.4.2.1: the renditions of a group are alternatives the client chooses among:
    # the same session plays on.
    assert [s["id"] for s in server.sessions()] == [first["id"]]
    page.locator("#audio-button").click()
    expect(items.nth(1)).to_have_attribute("aria-checked", "true")


@needs_chromium
def test_missing_hlsjs_gives_a_clear_message_and_native_hls_does_not_need_it(
    page: Any, server: ServerProcess
) -> None:
    asked: list[str] = []

    def missing(route: Any) -> None:
        asked.append(route.request.url)
        route.fulfill(status=404, content_type="application/json", body="{}")

    page.route("**/assets/vendor/hls.min.js", missing)
    player = f"{server.url}/play/{server.media_id(REMUX)}"
    page.goto(player + "?engine=hlsjs")
    expect(page.locator("#message")).to_be_visible()
    expect(page.locator("#message-text")).to_contain_text("hls.js")
    expect(page.locator("#message-text")).to_contain_text("could not be loaded")
    assert len(asked) == 1
    assert server.sessions() == [], "a session was created for a page that cannot play"

    page.goto(player)
    press_play_if_asked(page)
    wait_playing_past(page, 0.5)
    assert len(asked) == 1, "native HLS playback loaded hls.js anyway"


@needs_chromium
def test_with_users_the_pages_ask_for_a_token_and_send_it(
    context: Any, browser_media: Path, tmp_path: Path
) -> None:
    with serve(browser_media, tmp_path / "auth-server", users={"alice": ALICE}) as server:
        media_id = server.media_id(REMUX)
        assert server.api("GET", "/").status_code == 200  # pages need no token
        poster = f"/api/v1/media/{media_id}/poster.jpg"
        assert server.api("GET", poster).status_code == 200
        server.token = None
        assert server.api("GET", poster).status_code == 401  # posters are behind auth
        server.token = ALICE

        page = context.new_page()
        page.goto(server.url + "/")
        page.fill("#token-input", "not-the-token-at-all")
        page.locator("#token-form button").click()
        expect(page.locator("#token-error")).to_have_text("That token was not accepted.")
        page.fill("#token-input", ALICE)
        page.locator("#token-form button").click()
        expect(page.locator(".card")).to_have_count(4)
        # With a token, posters come through fetch() with the header, shown as blob: URLs.
        page.wait_for_function(
            "() => [...document.querySelectorAll('.poster img')]"
            ".every(img => img.src.startsWith('blob:') && img.naturalWidth > 0)",
            timeout=20_000,
        )

        page.locator(f'.card[data-media-id="{media_id}"]').click()
        check_mode_shown(page, "remux")  # the session was created with the remembered token
        expect(page.locator("#token-form")).to_have_count(0)
        assert len(server.sessions()) == 1

        page.locator(".topbar nav a", has_text="Sessions").click()
        expect(page.locator("#empty")).to_be_visible()
        expect(page.locator("#token-form")).to_have_count(0)
        # The pagehide DELETE carried the token too.
        wait_until(lambda: server.sessions() == [], 10, "the session to end on pagehide")
        page.close()


def test_posters_and_assets_are_cached_and_revalidated(server: ServerProcess) -> None:
    media_id = server.media_id(TRANSCODE)
    url = f"/api/v1/media/{media_id}/poster.jpg?w=320"
    first = server.api("GET", url)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/jpeg"
    assert first.content[:2] == b"\xff\xd8"
    assert "max-age" in first.headers["cache-control"]
    etag = first.headers["etag"]
    cached = list((server.cache_dir / "posters").glob(f"{media_id}-w320-*.jpg"))
    assert len(cached) == 1
    made_at = cached[0].stat().st_mtime_ns

    assert server.api("GET", url, headers={"If-None-Match": etag}).status_code == 304
    again = server.api("GET", url)
    assert (again.content, again.headers["etag"]) == (first.content, etag)
    assert cached[0].stat().st_mtime_ns == made_at, "the poster was made twice"
    assert server.api("GET", f"/api/v1/media/{media_id}/poster.jpg?w=7").status_code == 400
    assert server.api("GET", "/api/v1/media/nope/poster.jpg").status_code == 404

    hlsjs = server.api("GET", "/assets/vendor/hls.min.js", headers={"Accept-Encoding": "gzip"})
    assert hlsjs.status_code == 200
    assert hlsjs.headers["content-encoding"] == "gzip"
    assert hlsjs.headers["content-type"].startswith("text/javascript")
    assert hlsjs.content == (STATIC_DIR / "vendor" / "hls.min.js").read_bytes()
    assert hlsjs.num_bytes_downloaded < len(hlsjs.content) // 2
    revalidated = server.api(
        "GET", "/assets/vendor/hls.min.js", headers={"If-None-Match": hlsjs.headers["etag"]}
    )
    assert revalidated.status_code == 304
    for outside in ("/assets/%2e%2e/_ui.py", "/assets/..%2F_ui.py", "/assets/nope.js"):
        assert server.api("GET", outside).status_code == 404, outside


def test_ui_files_ship_as_package_data() -> None:
    """A non-editable `pip install .` must carry every page, script and the vendored hls.js."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["hlstrio.web"]
    package = STATIC_DIR.parent
    files = [p.relative_to(package).as_posix() for p in STATIC_DIR.rglob("*") if p.is_file()]
    assert "static/vendor/hls.min.js" in files and "static/vendor/hls.js.LICENSE" in files

    def shipped(file: str, pattern: str) -> bool:  # setuptools globs: "*" stops at "/"
        parts, globs = file.split("/"), pattern.split("/")
        return len(parts) == len(globs) and all(map(fnmatch.fnmatchcase, parts, globs))

    unshipped = [f for f in files if not any(shipped(f, p) for p in patterns)]
    assert unshipped == []


# --- the poster cache itself (no browser) --------------------------------------------------


def counting_ffmpeg(directory: Path, real_ffmpeg: str | None) -> tuple[str, Path]:
    """An ffmpeg that logs each run, then is the real one (or fails like a broken file)."""
    calls = directory / "ffmpeg-calls"
    script = directory / "counting-ffmpeg"
    tail = (
        f'exec {real_ffmpeg} "$@"'
        if real_ffmpeg
        else "echo 'Invalid data found when processing input' >&2; exit 1"
    )
    script.write_text(f"#!/bin/sh\necho run >> {calls}\n{tail}\n")
    script.chmod(0o755)
    return str(script), calls


async def scanned_item(media_dir: Path, root: Path) -> MediaItem:
    root.mkdir()
    shutil.copyfile(media_dir / "h264_aac.mp4", root / "clip.mp4")
    library = Library([root])
    await trio.to_thread.run_sync(library.scan)
    (item,) = library.items()
    return item


def test_poster_time_is_a_tenth_in_and_before_the_end() -> None:
    assert poster_time(600.0) == 60.0
    assert poster_time(6.0) == pytest.approx(0.6)
    assert poster_time(0.2) == 0.0
    assert poster_time(0.0) == 0.0


async def test_poster_cache_runs_one_ffmpeg_per_file_version(
    media_dir: Path, tmp_path: Path, ffmpeg: str
) -> None:
    item = await scanned_item(media_dir, tmp_path / "media")
    wrapper, calls = counting_ffmpeg(tmp_path, ffmpeg)
    cache = PosterCache(tmp_path / "posters", wrapper)
    posters: list[Poster] = []

    async def fetch() -> None:
        posters.append(await cache.get(item, item.file, 480))

    async with trio.open_nursery() as nursery:  # three requests at once share one ffmpeg
        for _ in range(3):
            nursery.start_soon(fetch)
    assert calls.read_text().count("run") == 1
    assert len({(p.path, p.etag) for p in posters}) == 1
    first = posters[0]
    assert first.path.read_bytes()[:2] == b"\xff\xd8"
    assert first.path.name.startswith(f"{item.id}-w480-")
    assert [p.name for p in first.path.parent.iterdir()] == [first.path.name]  # no temp files

    stat = item.file.stat()  # the file is rewritten: same size, new mtime
    os.utime(item.file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    newer = await cache.get(item, item.file, 480)
    assert newer.etag != first.etag
    assert not first.path.exists(), "the stale poster was kept"
    assert calls.read_text().count("run") == 2
    await cache.get(item, item.file, 320)  # another width is another poster
    assert calls.read_text().count("run") == 3


async def test_a_file_ffmpeg_cannot_read_gets_no_poster_and_no_retries(
    media_dir: Path, tmp_path: Path
) -> None:
    item = await scanned_item(media_dir, tmp_path / "media")
    broken, calls = counting_ffmpeg(tmp_path, None)
    cache = PosterCache(tmp_path / "posters", broken)
    for _ in range(2):
        with pytest.raises(PosterUnavailable, match="Invalid data"):
            await cache.get(item, item.file, 480)
    assert calls.read_text().count("run") == 1
    assert list((tmp_path / "posters").iterdir()) == []  # the failed attempt left nothing
