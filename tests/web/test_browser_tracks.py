"""Audio and subtitle renditions in a real browser: menus, live switching in both engines,
remembered choices, burn-in, scrub thumbnails, capability probing, and a player on another
origin (CORS). Debian's chromium through playwright against the real server (`serve`).

The clip (hlstrio.media._demo "multi_track_mkv"): H.264; English stereo AAC (default) and
French AC-3 5.1; an embedded English SRT; a PGS bitmap track; a forced French sidecar. With the
default capabilities the master playlist offers the English AAC and a stereo AAC downmix of
the French track (one group), both text subtitles as WebVTT renditions.

Chromium 156's native HLS plays the DEFAULT audio rendition and exposes `video.audioTracks`
only behind AUDIO_TRACKS_FLAG, and shows no subtitle renditions at all; the player then picks
hls.js for this file, or (with the flag) plays natively and loads the subtitle segments itself.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import m3u8
import pytest
import webvtt
from playwright import sync_api

from hlstrio.media import generate_clip
from hlstrio.media._demo import english_cues
from hlstrio.web._ui import STATIC_DIR

from ._browser import (
    AUDIO_TRACKS_FLAG,
    CHROMIUM_ARGS,
    VIDEO,
    ServerProcess,
    press_play_if_asked,
    screenshot,
    serve,
    wait_playing_past,
    watch_page_errors,
)

expect = sync_api.expect
needs_chromium = pytest.mark.usefixtures("chromium")

CLIP = "Multiple Tracks.mkv"
SECONDS = 30.0  # long enough that neither engine has buffered the end when audio switches
TOKEN = "alice-cors-token-0123456789"
PLAYER = "window.hlstrioPlayer"
# Which engine plays this two-audio file in which browser (see the module docstring).
ENGINES = {"plain": "hlsjs", "flagged": "native"}


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tracks_media(tmp_path_factory: pytest.TempPathFactory, ffmpeg: str) -> Path:
    root = tmp_path_factory.mktemp("tracks-media")
    generate_clip(
        root / CLIP, "multi_track_mkv", ffmpeg=ffmpeg, seconds=SECONDS, width=256, height=144
    )
    return root


@pytest.fixture(scope="module")
def server(tracks_media: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with serve(tracks_media, tmp_path_factory.mktemp("tracks-server")) as running:
        yield running


@pytest.fixture(scope="module")
def playwright(chromium: str) -> Iterator[Any]:
    with sync_api.sync_playwright() as driver:
        yield driver


def launch(playwright: Any, chromium: str, *extra: str) -> Any:
    return playwright.chromium.launch(
        executable_path=chromium, headless=True, args=[*CHROMIUM_ARGS, *extra]
    )


@pytest.fixture(scope="module")
def browsers(playwright: Any, chromium: str) -> Iterator[dict[str, Any]]:
    """Chromium as shipped, and with `video.audioTracks` switched on."""
    launched = {
        "plain": launch(playwright, chromium),
        "flagged": launch(playwright, chromium, AUDIO_TRACKS_FLAG),
    }
    yield launched
    for browser in launched.values():
        browser.close()


@contextlib.contextmanager
def browser_page(browser: Any, server: ServerProcess) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    errors = watch_page_errors(context)
    try:
        yield context.new_page()
    finally:
        context.close()
        server.end_all_sessions()
    assert errors == [], f"errors in the page: {errors}"


@pytest.fixture
def page(browsers: dict[str, Any], server: ServerProcess) -> Iterator[Any]:
    with browser_page(browsers["plain"], server) as opened:
        yield opened


# --- helpers -------------------------------------------------------------------------------


def open_player(page: Any, server: ServerProcess, query: str = "") -> dict[str, Any]:
    """Open the clip's player page, wait until it plays with its tracks known; its session."""
    page.goto(f"{server.url}/play/{server.media_id(CLIP)}{query}")
    press_play_if_asked(page)
    wait_playing_past(page, 0.3)
    expect(page.locator("#player")).to_have_attribute("data-tracks", "ready")
    session_id = page.evaluate(f"() => {PLAYER}.session.id")
    response = server.api("GET", f"/api/v1/sessions/{session_id}")
    assert response.status_code == 200, response.text
    session: dict[str, Any] = response.json()
    return session


def open_menu(page: Any, name: str) -> Any:
    page.mouse.move(300, 200)  # wakes the auto-hiding controls
    if page.locator(f"#{name}-menu").is_hidden():
        page.locator(f"#{name}-button").click()
    menu = page.locator(f"#{name}-menu")
    expect(menu).to_be_visible()
    return menu


def choose(page: Any, name: str, key: str) -> None:
    open_menu(page, name).locator(f'[data-key="{key}"]').click()
    expect(page.locator(f"#{name}-menu")).to_be_hidden()


def rendition(session: dict[str, Any], kind: str, language: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        r for r in session["renditions"] if r["type"] == kind and r["language"] == language
    ]
    (only,) = found
    return only


def menu_rows(menu: Any) -> list[tuple[str, str, bool, str]]:
    """(title, detail, forced, aria-checked) of every item, as a person reads the menu."""
    rows = []
    for item in menu.locator("[role=menuitemradio]").all():
        title = item.locator(".title").evaluate("n => n.firstChild.textContent")
        detail = item.locator(".detail")
        rows.append(
            (
                title,
                detail.inner_text() if detail.count() else "",
                item.locator(".tag").count() == 1,
                item.get_attribute("aria-checked") or "",
            )
        )
    return rows


def segment_path(url: str) -> str:
    """'/hls/<session>/a2s/seg-3.ts' -> 'a2s/seg-3.ts' ('seg-3.ts' for the video)."""
    return url.split("/hls/", 1)[1].split("/", 1)[1]


# --- menus ---------------------------------------------------------------------------------


@needs_chromium
def test_menus_are_built_from_the_renditions_with_forced_ones_marked(
    page: Any, server: ServerProcess
) -> None:
    session = open_player(page, server)
    assert page.evaluate(f"() => {PLAYER}.engine") == "hlsjs"
    expect(page.locator("#engine")).to_contain_text("hls.js 1.")
    expect(page.locator("#engine-why")).to_have_text("native HLS here cannot switch audio tracks")

    english, french = rendition(session, "audio", "en"), rendition(session, "audio", "fr")
    assert (english["action"], french["action"], french["channels"]) == ("copy", "encode", 2)
    audio = open_menu(page, "audio")
    # Labels: NAME (the track's title; a downmix says so, as its title promises 5.1), then what
    # it leaves out: language, codec, channels.
    assert menu_rows(audio) == [
        ("English", "AAC · stereo", False, "true"),
        ("Français 5.1 (stereo)", "French · AAC · stereo", False, "false"),
    ]
    screenshot(page, "player-audio-menu")

    subtitles = open_menu(page, "subtitles")
    assert menu_rows(subtitles) == [
        ("Off", "", False, "true"),
        ("English", "WebVTT", False, "false"),
        ("Français", "French · WebVTT", True, "false"),  # the sidecar's FORCED=YES
        ("English (PGS)", "PGS · bitmap", False, "false"),  # burn-in only: not a rendition
    ]
    expect(subtitles.locator(".menu-head.sub")).to_contain_text("restarts playback")
    page.keyboard.press("Escape")
    expect(subtitles).to_be_hidden()

    # The info panel: every rendition, what is done to it and why, as the session says.
    rows = page.locator("#renditions tr")
    by_id = {r["id"]: r for r in session["renditions"]}
    expect(rows).to_have_count(len(by_id) + 1)
    for row in rows.all()[: len(by_id)]:
        shown = by_id[row.get_attribute("data-rendition") or ""]
        expect(row.locator("[data-action]")).to_have_attribute("data-action", shown["action"])
        expect(row.locator(".why")).to_have_text(shown["reason"])
    expect(page.locator(f'#renditions tr[data-rendition="{english["id"]}"]')).to_have_attribute(
        "data-active", "true"
    )
    expect(page.locator('#renditions tr[data-type="bitmap"] [data-action]')).to_have_text("—")


# --- audio ---------------------------------------------------------------------------------


@needs_chromium
@pytest.mark.parametrize("flavour", ["plain", "flagged"])
def test_audio_switches_mid_play_in_the_same_session(
    flavour: str, browsers: dict[str, Any], server: ServerProcess
) -> None:
    with browser_page(browsers[flavour], server) as page:
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        session = open_player(page, server)
        assert page.evaluate(f"() => {PLAYER}.engine") == ENGINES[flavour]
        english, french = rendition(session, "audio", "en"), rendition(session, "audio", "fr")
        assert page.evaluate(f"() => {PLAYER}.tracks.currentAudio()") == english["id"]
        wait_playing_past(page, 1.0)
        switched_at = float(page.evaluate(f"() => {VIDEO}.currentTime"))

        french_segment = f"/hls/{session['id']}/{french['id']}/seg-"
        with page.expect_request(lambda r: french_segment in r.url, timeout=20_000) as first:
            choose(page, "audio", french["id"])
        first_french = requests.index(first.value.url)
        decoded_then = int(page.evaluate(f"() => {VIDEO}.webkitAudioDecodedByteCount"))
        assert page.evaluate(f"() => {PLAYER}.tracks.currentAudio()") == french["id"]

        # Play on until the first French segment fetched has been played into.
        playlist = m3u8.loads(
            server.api("GET", f"/hls/{session['id']}/{french['id']}/index.m3u8").text
        )
        index = int(segment_path(first.value.url).rsplit("-", 1)[1].split(".")[0])
        french_from = sum(s.duration for s in playlist.segments[:index])
        target = max(french_from, switched_at) + 1.5
        reached = wait_playing_past(page, target, timeout=30)
        decoded_now = int(page.evaluate(f"() => {VIDEO}.webkitAudioDecodedByteCount"))

        paths = [segment_path(url) for url in requests if f"/hls/{session['id']}/" in url]
        after = [segment_path(url) for url in requests[first_french:] if "/hls/" in url]
        # RFC 8216 4.3.4.2.1: one group's renditions are alternatives of the same content; the
        # client switches among them. Once French is fetched, English never is again, and the
        # video carries on from the same session.
        assert [p for p in after if p.startswith(f"{english['id']}/seg-")] == [], after
        assert len([p for p in after if p.startswith(f"{french['id']}/seg-")]) >= 1
        assert [s["id"] for s in server.sessions()] == [session["id"]]
        assert decoded_now > decoded_then, "audio stopped decoding after the switch"
        print(
            f"\n{flavour}/{ENGINES[flavour]}: switched at {switched_at:.2f} s, French from "
            f"segment {index} ({french_from:.1f} s), played to {reached:.2f} s, audio decoded "
            f"{decoded_then} -> {decoded_now} bytes; "
            f"{sum(p.startswith(english['id'] + '/seg-') for p in paths)} English and "
            f"{sum(p.startswith(french['id'] + '/seg-') for p in paths)} French segments fetched"
        )
        if ENGINES[flavour] == "native":
            enabled = page.evaluate(
                f"() => [...{VIDEO}.audioTracks].map(t => [t.label, t.enabled])"
            )
            assert enabled == [[english["name"], False], [french["name"], True]]
        else:
            assert page.evaluate(f"() => {PLAYER}.hls.audioTrack") == 1
        expect(open_menu(page, "audio").locator('[aria-checked="true"]')).to_have_attribute(
            "data-key", french["id"]
        )


# --- subtitles -----------------------------------------------------------------------------

# Records, each time the shown track's active cues change, the play position and their text.
RECORD_CUES = f"""() => {{
    const track = {PLAYER}.subtitles.activeTrack();
    window.cueLog = [];
    track.addEventListener("cuechange", () => window.cueLog.push({{
        at: {VIDEO}.currentTime,
        cues: [...track.activeCues].map(c => ({{start: c.startTime, text: c.text}})),
    }}));
    return [track.kind, track.label, track.language, track.mode];
}}"""


@needs_chromium
@pytest.mark.parametrize("flavour", ["plain", "flagged"])
def test_a_subtitle_turned_on_shows_its_cue_at_the_right_time(
    flavour: str, browsers: dict[str, Any], server: ServerProcess
) -> None:
    with browser_page(browsers[flavour], server) as page:
        session = open_player(page, server)
        subtitle = rendition(session, "subtitles", "en")
        choose(page, "subtitles", subtitle["id"])
        assert page.evaluate(RECORD_CUES) == ["subtitles", "English", "en", "showing"]
        now = float(page.evaluate(f"() => {VIDEO}.currentTime"))
        # The first source cue that starts after the track was turned on (and loaded).
        start, _end, text = next(c for c in english_cues(SECONDS) if c[0] > now + 0.5)
        page.wait_for_function(
            f"() => window.cueLog.some(e => e.cues.some(c => c.start >= {start - 0.5}))",
            timeout=20_000,
        )
        entry = page.evaluate(
            f"() => window.cueLog.find(e => e.cues.some(c => c.start >= {start - 0.5}))"
        )
        ((cue_start, cue_text),) = [(c["start"], c["text"]) for c in entry["cues"]]
        # RFC 8216 3.5: cue times map to the media timeline through X-TIMESTAMP-MAP; hls.js puts
        # them on its own timeline (a frame or two after source time), the native path as is.
        assert cue_text == text
        assert abs(cue_start - start) < 0.5, (cue_start, start)
        assert -0.05 <= entry["at"] - start < 0.5, (entry["at"], start)
        print(f"\n{flavour}: cue {text!r} from {start} s shown at {entry['at']:.3f} s")

        expect(open_menu(page, "subtitles").locator('[aria-checked="true"]')).to_have_attribute(
            "data-key", subtitle["id"]
        )
        screenshot(page, f"player-subtitles-{ENGINES[flavour]}")
        choose(page, "subtitles", "off")
        assert page.evaluate(f"() => {PLAYER}.subtitles.activeTrack()") is None
        assert (
            page.evaluate(f"() => [...{VIDEO}.textTracks].filter(t => t.mode === 'showing').length")
            == 0
        )


@needs_chromium
def test_the_last_choice_is_the_next_sessions_default(page: Any, server: ServerProcess) -> None:
    first = open_player(page, server)
    french, english_subs = rendition(first, "audio", "fr"), rendition(first, "subtitles", "en")
    choose(page, "audio", french["id"])
    choose(page, "subtitles", english_subs["id"])
    requests: list[Any] = []
    page.on("request", lambda r: requests.append(r) if r.url.endswith("/api/v1/sessions") else None)

    second = open_player(page, server)  # the page again: a new session
    (created,) = [r for r in requests if r.method == "POST"]
    # The request names the exact tracks (stream index of the audio, of the subtitle)...
    assert (created.post_data_json["audio"], created.post_data_json["subtitle"]) == (
        french["stream"],
        english_subs["stream"],
    )
    # ...and the server makes them the DEFAULT=YES renditions (RFC 8216 4.3.4.1).
    assert second["id"] != first["id"]
    assert second["audio"] == french["stream"]
    assert rendition(second, "audio", "fr")["default"] is True
    assert rendition(second, "subtitles", "en")["default"] is True
    assert page.evaluate(f"() => {PLAYER}.tracks.currentAudio()") == french["id"]
    assert page.evaluate(f"() => {PLAYER}.subtitles.shown") == english_subs["id"]

    # Another file knows only the language: with this file's own memory gone, French still.
    media_id = server.media_id(CLIP)
    page.evaluate(f"() => localStorage.removeItem('hlstrio.tracks.{media_id}')")
    requests.clear()
    open_player(page, server)
    (created,) = [r for r in requests if r.method == "POST"]
    assert (created.post_data_json["audio"], created.post_data_json["subtitle"]) == (
        french["stream"],
        english_subs["stream"],
    )

    choose(page, "subtitles", "off")
    requests.clear()
    open_player(page, server)
    (created,) = [r for r in requests if r.method == "POST"]
    assert "subtitle" not in created.post_data_json
    assert page.evaluate(f"() => {PLAYER}.subtitles.shown") is None


@needs_chromium
def test_a_bitmap_subtitle_is_burnt_in_by_a_new_session(page: Any, server: ServerProcess) -> None:
    first = open_player(page, server)
    pgs = next(
        s
        for s in server.api("GET", f"/api/v1/media/{first['media_id']}").json()["subtitles"]
        if not s["text"]
    )
    wait_playing_past(page, 2.0)
    choose(page, "subtitles", pgs["id"])
    page.wait_for_function(f"() => {PLAYER}.session.id !== {first['id']!r}", timeout=10_000)
    resumed = wait_playing_past(page, 2.5, timeout=30)
    burnt_id = page.evaluate(f"() => {PLAYER}.session.id")
    burnt = server.api("GET", f"/api/v1/sessions/{burnt_id}").json()
    assert burnt["mode"] == "transcode"
    assert f"burning in bitmap subtitle stream {pgs['index']}" in burnt["reason"]
    assert burnt["start"] >= 2.0 and resumed < burnt["start"] + 6  # carried on from there
    assert [s["id"] for s in server.sessions()] == [burnt_id]  # it replaced the first
    expect(open_menu(page, "subtitles").locator('[aria-checked="true"]')).to_have_attribute(
        "data-key", pgs["id"]
    )
    expect(
        page.locator(f'#renditions tr[data-rendition="{pgs["id"]}"] [data-action]')
    ).to_have_text("burn-in")

    choose(page, "subtitles", "off")  # back to a session without it
    page.wait_for_function(f"() => {PLAYER}.session.id !== {burnt_id!r}", timeout=10_000)
    wait_playing_past(page, resumed + 0.5, timeout=30)
    assert page.evaluate(f"() => {PLAYER}.session.mode") == "remux"


# --- scrub thumbnails ----------------------------------------------------------------------


def hover_seek_bar(page: Any, fraction: float) -> tuple[float, float]:
    box = page.locator("#seek").bounding_box()
    x, y = box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    return x, y


def preview(page: Any) -> dict[str, Any]:
    shown: dict[str, Any] = page.evaluate(
        """() => {
            const box = document.getElementById('scrub-preview');
            const img = document.getElementById('scrub-image');
            const rect = box.getBoundingClientRect();
            return {hidden: box.hidden, time: Number(box.dataset.time), src: img.src,
                    width: img.naturalWidth, centre: rect.left + rect.width / 2,
                    bottom: rect.bottom, label: document.getElementById('scrub-time').textContent};
        }"""
    )
    return shown


def jpeg_width(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as image:
        return int(image.streams.video[0].codec_context.width)


@needs_chromium
def test_scrub_thumbnails_follow_the_pointer(page: Any, server: ServerProcess) -> None:
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if r.url.endswith("/thumbs.vtt") else None)
    session = open_player(page, server)
    track = server.api("GET", f"/hls/{session['id']}/thumbs.vtt")
    assert track.status_code == 200, track.text
    cues = webvtt.from_string(track.text).captions
    expect(page.locator("#seek-wrap")).to_have_attribute("data-thumbs", str(len(cues)))
    seek = page.locator("#seek").bounding_box()
    for fraction in (0.45, 0.81, 0.05):
        x, _y = hover_seek_bar(page, fraction)
        expect(page.locator("#scrub-preview")).to_be_visible()
        shown = preview(page)
        # Where a click there would land: the range input maps its width less the thumb's
        # (14 px, app.css) to the duration.
        expected = max(0.0, min(1.0, (x - seek["x"] - 7) / (seek["width"] - 14))) * SECONDS
        assert shown["time"] == pytest.approx(expected, abs=0.05)
        (cue,) = [c for c in cues if c.start_in_seconds <= shown["time"] < c.end_in_seconds]
        page.wait_for_function(
            f"() => document.getElementById('scrub-image').src.endsWith('/{cue.text}') &&"
            " document.getElementById('scrub-image').complete"
        )
        shown = preview(page)
        # The cue's payload, relative to thumbs.vtt, and the very image the server made.
        assert shown["src"] == f"{server.url}/hls/{session['id']}/{cue.text}"
        thumb = server.api("GET", f"/hls/{session['id']}/{cue.text}")
        assert shown["width"] == jpeg_width(thumb.content) > 0
        assert shown["bottom"] <= seek["y"]  # above the seek bar
        assert shown["label"] == f"0:{int(shown['time']):02d}"
        if fraction == 0.45:  # centred on the pointer (at the ends it stays inside the bar)
            assert abs(shown["centre"] - x) <= 2, (shown["centre"], x)
            screenshot(page, "player-scrub")

    # Dragging the thumb: the preview follows the value, then goes when the pointer leaves.
    start_x, y = hover_seek_bar(page, 0.3)
    page.mouse.down()
    page.mouse.move(seek["x"] + seek["width"] * 0.71, y, steps=5)
    dragged = preview(page)
    value = float(page.evaluate("() => Number(document.getElementById('seek').value)"))
    assert dragged["time"] == pytest.approx(value, abs=0.01) and 20 <= value < 22.5, value
    assert dragged["src"].endswith("/thumb-2.jpg") and not dragged["hidden"]
    page.mouse.up()
    page.mouse.move(start_x, y - 200)
    expect(page.locator("#scrub-preview")).to_be_hidden()
    assert len(asked) == 1, "thumbs.vtt was fetched more than once"


@needs_chromium
def test_no_thumbnails_when_the_server_has_none(page: Any, server: ServerProcess) -> None:
    """A server without thumbnails (older, or none for this file) answers 404."""
    asked: list[str] = []

    def missing(route: Any) -> None:
        asked.append(route.request.url)
        route.fulfill(status=404, content_type="application/json", body="{}")

    page.route("**/hls/*/thumbs.vtt", missing)
    images: list[str] = []
    page.on("request", lambda r: images.append(r.url) if "/thumb-" in r.url else None)
    with page.expect_response(lambda r: r.url.endswith("/thumbs.vtt")):
        open_player(page, server)
    for fraction in (0.2, 0.6):
        hover_seek_bar(page, fraction)
        expect(page.locator("#scrub-preview")).to_be_hidden()
    assert len(asked) == 1  # asked once, and not again on every hover
    assert images == []
    assert page.locator("#seek-wrap").get_attribute("data-thumbs") is None


# --- capabilities --------------------------------------------------------------------------

# The browser's own answers, asked here independently of the page's probing code.
ASK_BROWSER = """async () => {
    const ms = (type) => MediaSource.isTypeSupported(type);
    const ctx = new AudioContext();
    const output = ctx.destination.maxChannelCount;
    ctx.close();
    return {
        hevc: ms('video/mp4; codecs="hvc1.1.6.L93.B0"'),
        tenBit: ['avc1.6E0028', 'av01.0.08M.10', 'vp09.02.10.10']
            .map(c => ms(`video/mp4; codecs="${c}"`)),
        fmp4: ms('video/mp4; codecs="avc1.640028"'),
        hdrDisplay: matchMedia('(dynamic-range: high)').matches,
        output,
    };
}"""


@needs_chromium
def test_capabilities_are_probed_sent_and_shown(page: Any, server: ServerProcess) -> None:
    posted: list[Any] = []
    page.on(
        "request",
        lambda r: (
            posted.append(r.post_data_json)
            if r.method == "POST" and r.url.endswith("/api/v1/sessions")
            else None
        ),
    )
    open_player(page, server, "?engine=hlsjs")
    caps = page.evaluate(f"() => {PLAYER}.capabilities")
    (body,) = posted
    assert body["capabilities"] == caps  # what was detected is what was sent
    truth = page.evaluate(ASK_BROWSER)
    assert set(caps) == {
        "video_codecs",
        "audio_codecs",
        "max_height",
        "max_bitrate",
        "max_audio_channels",
        "containers",
        "max_video_bit_depth",
        "hdr",
    }
    assert ("hevc" in caps["video_codecs"]) == truth["hevc"]
    assert caps["containers"] == (["ts", "fmp4"] if truth["fmp4"] else ["ts"])
    assert {"h264", "av1", "vp9"} <= set(caps["video_codecs"])  # Chromium's software decoders
    assert caps["max_video_bit_depth"] == (10 if all(truth["tenBit"]) else 8)
    # A headless browser has an SDR "display" and a stereo output: no HDR, two channels, even
    # though its decoders would take PQ and 7.1.
    assert truth["hdrDisplay"] is False and caps["hdr"] is False
    assert caps["max_audio_channels"] == min(max(2, truth["output"]), 8)
    expect(page.locator("#capabilities-more")).to_contain_text(
        f"Video depth: {caps['max_video_bit_depth']}-bit"
    )
    expect(page.locator("#capabilities-more")).to_contain_text("HDR: no (display SDR")
    expect(page.locator("#capabilities-more")).to_contain_text("Segments: MPEG-TS, fMP4")


# --- CORS: a player page on another origin -------------------------------------------------

# A host application's page: creates a session through the API with fetch + Authorization
# (a preflighted request), then plays it with hls.js. ?master= skips the API (HLS URLs only).
OTHER_ORIGIN_PAGE = """<!doctype html>
<meta charset="utf-8"><title>another origin</title>
<video id="video" muted playsinline></video>
<script src="/hls.min.js"></script>
<script>
const params = new URLSearchParams(location.search);
window.result = (async () => {
  const api = params.get("api");
  let master = params.get("master");
  let session = null;
  if (!master) {
    const response = await fetch(api + "/api/v1/sessions", {
      method: "POST",
      headers: {
        "Authorization": "Bearer " + params.get("token"),
        "Content-Type": "application/json",
      },
      body: JSON.stringify({media_id: params.get("media")}),
    });
    if (!response.ok) return {status: response.status};
    session = await response.json();
    master = api + session.master_url;
  }
  const hls = new Hls();
  hls.on(Hls.Events.ERROR, (_e, data) => data.fatal && (window.fatal = data.details));
  hls.loadSource(master);
  hls.attachMedia(document.getElementById("video"));
  hls.on(Hls.Events.MANIFEST_PARSED, () => document.getElementById("video").play());
  return {session: session && session.id};
})().catch((err) => ({error: `${err.name}: ${err.message}`}));
</script>
"""


@contextlib.contextmanager
def static_site(files: dict[str, tuple[str, bytes]]) -> Iterator[str]:
    """A tiny HTTP server on a free loopback port serving `files`; yields its origin."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = files.get(self.path.split("?", 1)[0])
            if found is None:
                self.send_error(404)
                return
            content_type, body = found
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{site.server_address[1]}"
    finally:
        site.shutdown()
        site.server_close()


@needs_chromium
def test_a_player_on_another_origin_uses_the_api_only_if_allowed(
    browsers: dict[str, Any], tracks_media: Path, tmp_path: Path
) -> None:
    files = {
        "/player.html": ("text/html; charset=utf-8", OTHER_ORIGIN_PAGE.encode()),
        "/hls.min.js": ("text/javascript", (STATIC_DIR / "vendor" / "hls.min.js").read_bytes()),
    }
    with (
        static_site(files) as allowed,
        static_site(files) as elsewhere,
        serve(
            tracks_media, tmp_path / "server", users={"alice": TOKEN}, cors_origins=[allowed]
        ) as server,
    ):
        query = f"api={server.url}&token={TOKEN}&media={server.media_id(CLIP)}"
        context = browsers["plain"].new_context()
        console: list[str] = []
        context.on("console", lambda message: console.append(message.text))
        page = context.new_page()
        api_calls: list[Any] = []
        page.on(
            "request",
            lambda r: api_calls.append(r) if r.url.endswith("/api/v1/sessions") else None,
        )

        # Allowed: the preflight (Authorization, JSON) passes, the session is made, it plays.
        page.goto(f"{allowed}/player.html?{query}")
        result = page.evaluate("() => window.result")
        assert set(result) == {"session"}, result
        assert [s["id"] for s in server.sessions()] == [result["session"]]
        assert [r.all_headers().get("origin") for r in api_calls] == [allowed]
        wait_playing_past(page, 2.0)
        assert page.evaluate("() => window.fatal || null") is None

        # Another origin: the browser refuses the preflighted call, and the page sees it.
        page.goto(f"{elsewhere}/player.html?{query}")
        result = page.evaluate("() => window.result")
        assert result == {"error": "TypeError: Failed to fetch"}
        assert any("blocked by CORS policy" in line for line in console), console
        assert len(server.sessions()) == 1  # nothing was created

        # ...but HLS URLs are capability URLs and answer any origin: given one, it plays.
        master = server.url + server.sessions()[0]["master_url"]
        page.goto(f"{elsewhere}/player.html?master={master}")
        assert page.evaluate("() => window.result") == {"session": None}
        wait_playing_past(page, 2.0)
        context.close()
        server.end_all_sessions()


# --- the page's own parsing and choosing, on edge cases the server does not produce ---------

EDGE_CASES = r"""async () => {
    const vtt = await import('/assets/webvtt.js');
    const tracks = await import('/assets/tracks.js');
    const text = "WEBVTT - a title\r\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\r\n\r\n" +
        "NOTE a comment\r\n--> not a cue\r\n\r\n" +
        "STYLE\r\n::cue { color: red }\r\n\r\n" +
        "cue-1\r\n00:00:01.000 --> 00:00:02.500 line:0\r\n<i>two</i>\r\nlines\r\n\r\n" +
        "01:00:00.250 --> 01:00:01.000\r\nan hour in\r\n\r\n\r\n" +
        "00:00:05.000 --> broken\r\nskipped\r\n";
    const cues = vtt.parseCues(text);
    const playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\nseg-0.vtt\n" +
        "#EXTINF:4.5,\n\nseg-1.vtt\n#EXT-X-ENDLIST\n";
    const sorted = [{start: 0, end: 10}, {start: 10, end: 20}, {start: 25, end: 30}];
    const item = {
        audio: [{index: 1, language: "en"}, {index: 2, language: "fr-CA"}],
        subtitles: [
            {id: "s3", index: 3, text: true, language: "fr", forced: true, sidecar: false},
            {id: "s4", index: 4, text: false, language: "fr", forced: false, sidecar: false},
            {id: "x0123456789", index: null, text: true, language: "fr", forced: false,
             sidecar: true},
        ],
    };
    const pick = (media, global) => tracks.requestedTracks(item, {media, global});
    return {
        notVtt: vtt.parseCues("1\n00:00:01.000 --> 00:00:02.000\nno header\n"),
        cues,
        segments: vtt.parseMediaPlaylist(playlist, "http://h/hls/s/a1/index.m3u8"),
        at: [0, 9.99, 10, 22, 29.9, 30].map(t => (vtt.cueAt(sorted, t) || {start: null}).start),
        nothing: pick({}, {}),
        exact: pick({audio: 2, subtitle: "s3"}, {audio: "en", subtitle: "en"}),
        gone: pick({audio: 7, subtitle: "s9"}, {}),
        language: pick({}, {audio: "fr", subtitle: "fr"}),
        unknown: pick({}, {audio: "de", subtitle: "de"}),
        off: pick({subtitle: "off"}, {subtitle: "fr"}),
        labels: [
            tracks.renditionLabel({type: "subtitles", name: "Français (forced)", language: "fr",
                                   codec: "wvtt", forced: true}),
            tracks.renditionLabel({type: "audio", name: "Commentary", language: "en",
                                   codec: "ec-3", channels: 6}),
        ],
        ids: ["/hls/S/a2s/index.m3u8", "http://h/hls/S/index.m3u8"].map(tracks.renditionIdOf),
    };
}"""


@needs_chromium
def test_page_helpers_on_edge_cases(page: Any, server: ServerProcess) -> None:
    page.goto(server.url + "/sessions")  # any page of ours: the modules load from /assets
    got = page.evaluate(EDGE_CASES)
    assert got["notVtt"] == []  # no WEBVTT signature: not WebVTT (W3C WebVTT 4.1)
    # NOTE and STYLE blocks, cue ids, settings, CRLF, hours; a broken timing line is skipped.
    assert got["cues"] == [
        {"start": 1.0, "end": 2.5, "text": "<i>two</i>\nlines"},
        {"start": 3600.25, "end": 3601.0, "text": "an hour in"},
    ]
    # RFC 8216 4.3.2.1: EXTINF durations lay the segments end to end.
    assert got["segments"] == [
        {"start": 0, "end": 6, "url": "http://h/hls/s/a1/seg-0.vtt"},
        {"start": 6, "end": 10.5, "url": "http://h/hls/s/a1/seg-1.vtt"},
    ]
    assert got["at"] == [0, 0, 10, None, 25, None]  # [start, end); gaps have no cue
    # What the session request asks for: only tracks this file has (else the server says 400).
    assert got["nothing"] == {"audio": None, "subtitle": None}
    assert got["exact"] == {"audio": 2, "subtitle": 3}  # this file's own last choice wins
    assert got["gone"] == {"audio": None, "subtitle": None}
    # By language: fr matches fr-CA; a non-forced track first; sidecars by their id; bitmap never.
    assert got["language"] == {"audio": 2, "subtitle": "x0123456789"}
    assert got["unknown"] == {"audio": None, "subtitle": None}
    assert got["off"]["subtitle"] is None
    assert got["labels"] == [
        {"title": "Français", "detail": "French · WebVTT", "forced": True},
        {"title": "Commentary", "detail": "English · E-AC-3 · 5.1", "forced": False},
    ]
    assert got["ids"] == ["a2s", "v"]
