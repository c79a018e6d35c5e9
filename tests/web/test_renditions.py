"""Every track of a real library file: audio renditions, subtitle renditions, burn-in.

The clip (tests/conftest.py `multi_track.mkv`, hlstrio.media._demo "multi_track_mkv"):
H.264; English stereo AAC (default) and French AC-3 5.1; an embedded English SRT; a PGS bitmap
track; a forced French sidecar `multi_track.fr.forced.srt`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import av
import m3u8
import pytest
import webvtt

from hlstrio.media._demo import english_cues, french_forced_cues

from ..support import decode, play_with_ffmpeg, span
from .conftest import StartServer

CLIP = "multi_track.mkv"
SECONDS = 6.0
TIMESTAMP_MAP = re.compile(r"^X-TIMESTAMP-MAP=MPEGTS:(\d+),LOCAL:00:00:00\.000$", re.M)


async def master_of(server: Any, session: dict[str, Any]) -> m3u8.M3U8:
    return m3u8.loads((await server.client.get(session["master_url"])).text)


def base_of(session: dict[str, Any]) -> str:
    return session["master_url"].replace("master.m3u8", "")


async def test_text_subtitles_are_renditions_and_bitmaps_are_not(
    start_server: StartServer,
) -> None:
    server = await start_server()
    session = await server.create(CLIP)
    master = await master_of(server, session)
    subtitles = [m for m in master.media if m.type == "SUBTITLES"]
    # RFC 8216 4.3.4.1: TYPE=SUBTITLES renditions in one group the variant names; Apple 8.10:
    # LANGUAGE on each; forced subtitles FORCED=YES with AUTOSELECT=YES. The PGS track is a
    # bitmap: not a rendition (it can only be burnt in).
    assert [(m.name, m.language, m.forced, m.autoselect, m.default) for m in subtitles] == [
        ("English", "en", "NO", "YES", "NO"),
        ("Français (forced)", "fr", "YES", "YES", "NO"),
    ]
    assert {m.group_id for m in subtitles} == {"subs"}
    assert all(p.stream_info.subtitles == "subs" for p in master.playlists)
    video = m3u8.loads((await server.client.get(base_of(session) + "index.m3u8")).text)
    for rendition in subtitles:
        playlist = m3u8.loads((await server.client.get(base_of(session) + rendition.uri)).text)
        # The subtitle playlist covers the whole duration, on the video's boundaries.
        assert [s.duration for s in playlist.segments] == [s.duration for s in video.segments]
        assert all(s.uri.endswith(".vtt") for s in playlist.segments)


async def read_track(
    server: Any, session: dict[str, Any], uri: str
) -> list[tuple[float, float, str]]:
    """Every cue of a subtitle rendition, as a player joins its segments (deduplicated)."""
    rendition_dir = base_of(session) + uri.rsplit("/", 1)[0] + "/"
    playlist = m3u8.loads((await server.client.get(base_of(session) + uri)).text)
    cues: set[tuple[float, float, str]] = set()
    for segment in playlist.segments:
        response = await server.client.get(rendition_dir + segment.uri)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/vtt")
        text = response.text
        assert text.startswith("WEBVTT\n")
        # RFC 8216 3.5: each WebVTT segment maps its cue times to the MPEG-TS timeline: LOCAL
        # 0 (source time 0) is the MPEG-TS time of the video's first frame (source time 0).
        (ticks,) = TIMESTAMP_MAP.findall(text)
        assert int(ticks) == await first_video_ticks(server, session)
        for caption in webvtt.from_string(text):
            cues.add((seconds(caption.start), seconds(caption.end), caption.raw_text))
    return sorted(cues)


async def first_video_ticks(server: Any, session: dict[str, Any]) -> int:
    """The 90 kHz PTS of the first video frame (the clip starts at source time 0)."""
    first = await server.client.get(base_of(session) + "seg-0.ts")
    return round(span(first.content).video_start * 90_000)


def seconds(timestamp: str) -> float:
    """ "00:01:02.345" -> 62.345 (webvtt-py's *_in_seconds are whole seconds)."""
    hours, minutes, rest = timestamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


async def test_subtitle_cues_match_the_source_times(start_server: StartServer) -> None:
    server = await start_server()
    session = await server.create(CLIP)
    master = await master_of(server, session)
    by_language = {m.language: m.uri for m in master.media if m.type == "SUBTITLES"}
    for uri, expected in (
        (by_language["en"], english_cues(SECONDS)),
        (by_language["fr"], french_forced_cues(SECONDS)),
    ):
        got = await read_track(server, session, uri)
        assert len(got) == len(expected)
        for (start, end, text), (want_start, want_end, want_text) in zip(
            got, expected, strict=True
        ):
            assert start == pytest.approx(want_start, abs=0.1)
            assert end == pytest.approx(want_end, abs=0.1)
            assert text == want_text


async def test_the_subtitle_param_picks_the_default_and_bad_ones_are_400(
    start_server: StartServer,
) -> None:
    server = await start_server()
    session = await server.create(CLIP, subtitle="fr")
    subtitles = [m for m in (await master_of(server, session)).media if m.type == "SUBTITLES"]
    assert [(m.language, m.default) for m in subtitles] == [("en", "NO"), ("fr", "YES")]
    for bad in (99, "xx", "x0000000000"):
        response = await server.client.post(
            "/api/v1/sessions", json={"media_id": server.media_id(CLIP), "subtitle": bad}
        )
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "unknown_subtitle"
    assert (await server.client.get(session["master_url"])).status_code == 200  # still plays


async def test_ffmpeg_reads_every_rendition_of_the_file(
    start_server: StartServer, ffmpeg: str, tmp_path: Path
) -> None:
    server = await start_server()
    session = await server.create(CLIP)
    out = await play_with_ffmpeg(ffmpeg, server.url + session["master_url"], tmp_path / "o.mkv")
    with av.open(str(out)) as played:
        kinds = sorted(s.type for s in played.streams)
    assert kinds == ["audio", "audio", "subtitle", "subtitle", "video"]
    assert decode(out).video_seconds == pytest.approx(SECONDS, abs=0.5)


async def test_selecting_a_bitmap_subtitle_burns_it_in(
    start_server: StartServer, media_dir: Path
) -> None:
    server = await start_server()
    pgs = 4  # the PGS track's stream index
    session = await server.create(CLIP, subtitle=pgs)
    assert session["mode"] == "transcode"
    assert "burning in bitmap subtitle stream 4" in session["reason"]
    master = await master_of(server, session)
    assert [m.language for m in master.media if m.type == "SUBTITLES"] == ["en", "fr"]
    burnt = await server.client.get(base_of(session) + "seg-0.ts")
    live = server.running.services.manager.lookup(session["id"])
    assert live is not None and live.transcoder is not None  # an encoder overlays it
    assert live.transcoder.runs_started == 1
    assert burnt.status_code == 200
    assert span(burnt.content).video_start == pytest.approx(1.4, abs=1e-3)  # TS_OFFSET
    # The same frame of a plain transcode: the subtitle box (bottom of the picture, cue 1 at
    # 1.0-3.5 s) is only in the burnt one.
    plain_session = await server.create(CLIP, mode="transcode")
    plain = await server.client.get(base_of(plain_session) + "seg-0.ts")
    assert plain.status_code == 200
    with_box, without = (bottom_luma(d, at=1.5) for d in (burnt.content, plain.content))
    assert abs(with_box - without) > 5, (with_box, without)
    early_with, early_without = (bottom_luma(d, at=0.5) for d in (burnt.content, plain.content))
    assert abs(early_with - early_without) < 1.5  # before the cue: the same picture


def bottom_luma(segment: bytes, at: float) -> float:
    """Mean luma of the bottom fifth of the frame shown at `at` s of source time."""
    import io

    with av.open(io.BytesIO(segment)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time - 1.4 >= at:
                luma = frame.reformat(format="gray").planes[0]
                rows = [
                    bytes(luma)[y * luma.line_size : y * luma.line_size + luma.width]
                    for y in range(luma.height - luma.height // 5, luma.height)
                ]
                return sum(sum(row) for row in rows) / sum(len(row) for row in rows)
    raise AssertionError(f"no frame at {at}")
