"""fMP4/CMAF sessions end to end: HEVC (8-bit, Main10 PQ), AV1, H.264 + Opus, H.264 + FLAC
copied, no encoder process; and trick play (I-frame playlists, scrub thumbnails).

Box structure is parsed with tests/mp4parse.py; ffmpeg is the HLS client.
"""

from __future__ import annotations

import io
import itertools
import subprocess
from pathlib import Path
from typing import Any

import av
import m3u8
import pytest
import webvtt

from .. import mp4parse
from ..support import Harness, play_with_ffmpeg, session_processes, span
from .conftest import StartServer

FPS = 24
SECONDS = 3
# A client that decodes all of it from fMP4 (what the web player sends for Chromium + hls.js
# that has these codecs, plus HDR output).
FMP4_CLIENT = {
    "video_codecs": ["h264", "hevc", "av1"],
    "audio_codecs": ["aac", "opus", "flac"],
    "containers": ["ts", "fmp4"],
    "max_video_bit_depth": 10,
    "hdr": True,
}


@pytest.fixture(scope="module")
def fmp4_media(tmp_path_factory: pytest.TempPathFactory, ffmpeg: str) -> Path:
    root = tmp_path_factory.mktemp("fmp4-media")
    video = ["-f", "lavfi", "-i", f"testsrc2=size=160x90:rate={FPS}"]
    audio = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    gop = ["-g", str(FPS)]  # a keyframe a second: 1 s segments
    x265 = ["-c:v", "libx265", "-preset", "ultrafast", *gop, "-tag:v", "hvc1"]
    # Closed GOPs, as streaming encodes are: with x265's default open GOPs a segment decoded
    # on its own loses the leading (RASL) pictures of its first CRA, which need the GOP
    # before it (played in order they decode; see the closing notes).
    closed = "log-level=error:open-gop=0"
    pq = f"{closed}:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc"
    clips = {
        "hevc_aac.mkv": [*x265, "-x265-params", closed, "-c:a", "aac"],
        "hevc10_pq.mkv": [*x265, "-pix_fmt", "yuv420p10le", "-x265-params", pq, "-c:a", "aac"],
        "av1_flac.mkv": [
            *("-c:v", "libsvtav1", "-preset", "12", *gop, "-svtav1-params", "lp=1"),
            *("-c:a", "flac"),
        ],
        "h264_opus.mkv": ["-c:v", "libx264", "-preset", "veryfast", *gop, "-c:a", "libopus"],
        "h264_flac.mkv": ["-c:v", "libx264", "-preset", "veryfast", *gop, "-c:a", "flac"],
    }
    for name, codecs in clips.items():
        subprocess.run(
            [ffmpeg, "-nostdin", "-v", "error", "-y", *video, *audio, "-map", "0:v", "-map",
             "1:a", *codecs, "-ac", "2", "-t", str(SECONDS), str(root / name)],
            check=True,
        )  # fmt: skip
    return root


async def fmp4_server(start_server: StartServer, fmp4_media: Path) -> Harness:
    return await start_server(media=(fmp4_media,), segment_seconds=1.0)


@pytest.mark.parametrize(
    ("clip", "video_entry", "audio_entry"),
    [
        ("hevc_aac.mkv", "hvc1", "mp4a"),
        ("hevc10_pq.mkv", "hvc1", "mp4a"),
        ("av1_flac.mkv", "av01", "fLaC"),
        ("h264_opus.mkv", "avc1", "Opus"),
        ("h264_flac.mkv", "avc1", "fLaC"),
    ],
)
async def test_fmp4_session_copies_and_plays_every_frame(
    start_server: StartServer,
    fmp4_media: Path,
    ffmpeg: str,
    tmp_path: Path,
    clip: str,
    video_entry: str,
    audio_entry: str,
) -> None:
    server = await fmp4_server(start_server, fmp4_media)
    session = await server.create(clip, capabilities=FMP4_CLIENT)
    # Copied, in fMP4, with no encoder process: every transcode avoided is a core freed.
    assert (session["mode"], session["container"]) == ("remux", "fmp4")
    assert (session["video_action"], session["audio_action"]) == ("copy", "copy")
    base = session["master_url"].replace("master.m3u8", "")
    master_text = (await server.client.get(session["master_url"])).text
    master = m3u8.loads(master_text)
    assert master.version == 7  # RFC 8216 4.3.2.5: EXT-X-MAP needs 6+
    variant = master.playlists[0]
    codecs = variant.stream_info.codecs
    assert codecs.split(",")[0].startswith(video_entry)  # Apple 1.10: hvc1, never hev1
    if "pq" in clip:
        assert "VIDEO-RANGE=PQ" in master_text  # HDR10 kept, and said so
    (audio,) = [m for m in master.media if m.type == "AUDIO"]
    renditions = [("", "index.m3u8", video_entry), (audio.uri.split("/")[0] + "/", "", audio_entry)]
    frames_expected = SECONDS * FPS
    for directory, _, entry in renditions:
        playlist_text = (await server.client.get(base + directory + "index.m3u8")).text
        playlist = m3u8.loads(playlist_text)
        assert '#EXT-X-MAP:URI="init.mp4"' in playlist_text
        init_bytes = (await server.client.get(base + directory + "init.mp4")).content
        init = mp4parse.parse_init(init_bytes)
        # ftyp + moov with mvex/trex, no samples (RFC 8216 3.3; ISO 14496-12 8.8).
        assert init.entry == entry and init.track_count == 1
        assert mp4parse.find(init.boxes, "moov/mvex/trex") is not None
        assert init.sample_table_entries.get("stsz", 0) == 0
        fragments = []
        decoded_frames = 0
        for segment in playlist.segments:
            assert segment.uri.endswith(".m4s")
            data = (await server.client.get(base + directory + segment.uri)).content
            fragment = mp4parse.parse_fragment(data, init)
            assert mp4parse.find(fragment.boxes, "moof") and mp4parse.find(fragment.boxes, "mdat")
            assert fragment.samples[0].is_sync  # Apple 7.4: segments start with a sync sample
            fragments.append(fragment)
            # Each segment decodes on its own (init + it) to its EXTINF.
            with av.open(io.BytesIO(init_bytes + data)) as one:
                kind = one.streams[0].type  # read before closing: a closed stream crashes
                times = [float(f.time) for f in one.decode(one.streams[0]) if f.time is not None]
            if kind == "video":
                decoded_frames += len(times)
                assert len(times) / FPS == pytest.approx(segment.duration, abs=1 / FPS + 1e-3)
        # tfdt of segment k+1 = tfdt of k + its durations (RFC 8216, CMAF).
        for before, after in itertools.pairwise(fragments):
            assert after.base_decode_time == before.base_decode_time + before.duration
        if directory == "":
            assert decoded_frames == frames_expected
    out = await play_with_ffmpeg(ffmpeg, server.url + session["master_url"], tmp_path / "o.mkv")
    with av.open(str(out)) as played:
        video_frames = sum(1 for _ in played.decode(video=0))
    assert video_frames == frames_expected
    assert session_processes(server.temp_dir) == []


async def test_hevc_needs_fmp4_and_a_ts_only_client_gets_a_transcode(
    start_server: StartServer, fmp4_media: Path
) -> None:
    server = await fmp4_server(start_server, fmp4_media)
    # Apple 1.5: HEVC MUST be fMP4. A client that decodes HEVC but takes only MPEG-TS...
    ts_only = {**FMP4_CLIENT, "containers": ["ts"]}
    session = await server.create("hevc_aac.mkv", capabilities=ts_only)
    assert (session["mode"], session["container"]) == ("transcode", "ts")
    assert "fits none of the client's containers" in session["reason"]
    # ...and one without HDR gets the PQ source tone-mapped, not copied.
    sdr = {**FMP4_CLIENT, "hdr": False}
    hdr = await server.create("hevc10_pq.mkv", capabilities=sdr)
    assert hdr["mode"] == "transcode" and "HDR" in hdr["reason"]
    # 10-bit to an 8-bit-only client: likewise.
    eight = {**FMP4_CLIENT, "max_video_bit_depth": 8}
    deep = await server.create("hevc10_pq.mkv", capabilities=eight)
    assert deep["mode"] == "transcode" and "10-bit" in deep["reason"]


async def test_h264_aac_stays_on_ts_unless_the_client_prefers_fmp4(
    start_server: StartServer, fmp4_media: Path, media_dir: Path
) -> None:
    server = await start_server()
    session = await server.create("h264_aac.mp4", capabilities=FMP4_CLIENT)
    assert session["container"] == "ts"
    preferring = {**FMP4_CLIENT, "containers": ["fmp4", "ts"]}
    session = await server.create("h264_aac.mp4", capabilities=preferring)
    assert session["container"] == "fmp4"
    init = await server.client.get(session["master_url"].replace("master.m3u8", "init.mp4"))
    assert mp4parse.parse_init(init.content).entry == "avc1"


# --- trick play (Apple 6.1: I-frame playlists; scrub thumbnails) -------------------------------


@pytest.mark.parametrize("container", ["ts", "fmp4"])
async def test_iframe_playlist_lists_every_keyframe_and_each_decodes_alone(
    start_server: StartServer, container: str
) -> None:
    server = await start_server()
    caps: dict[str, Any] = {"containers": [container]}
    session = await server.create("h264_aac.mp4", capabilities=caps)
    base = session["master_url"].replace("master.m3u8", "")
    master = m3u8.loads((await server.client.get(session["master_url"])).text)
    # RFC 8216 4.3.4.3: EXT-X-I-FRAME-STREAM-INF with BANDWIDTH, CODECS, RESOLUTION, URI.
    (iframe_stream,) = master.iframe_playlists
    assert iframe_stream.iframe_stream_info.codecs.startswith("avc1.")
    assert iframe_stream.iframe_stream_info.resolution == (320, 180)
    playlist = m3u8.loads((await server.client.get(base + iframe_stream.uri)).text)
    assert playlist.is_i_frames_only and playlist.is_endlist
    video = m3u8.loads((await server.client.get(base + "index.m3u8")).text)
    assert sum(s.duration for s in playlist.segments) == pytest.approx(
        sum(s.duration for s in video.segments), abs=1e-3
    )
    init = b""
    if container == "fmp4":
        init = (await server.client.get(base + "init.mp4")).content
    peak = 0.0
    for entry in playlist.segments:
        response = await server.client.get(base + entry.uri)
        assert response.status_code == 200
        peak = max(peak, len(response.content) * 8 / entry.duration)
        with av.open(io.BytesIO(init + response.content)) as one:
            frames = list(one.decode(video=0))
        assert len(frames) == 1 and frames[0].key_frame  # exactly the keyframe
    assert peak <= iframe_stream.iframe_stream_info.bandwidth


async def test_scrub_thumbnails_for_remux_and_transcode(start_server: StartServer) -> None:
    server = await start_server()
    for clip in ("h264_aac.mp4", "hevc_opus.mkv"):
        session = await server.create(clip)
        base = session["master_url"].replace("master.m3u8", "")
        track = await server.client.get(base + "thumbs.vtt")
        assert track.status_code == 200 and track.headers["content-type"].startswith("text/vtt")
        cues = list(webvtt.from_string(track.text))
        assert cues and all(c.text.startswith("thumb-") for c in cues)
        image = await server.client.get(base + cues[-1].text)
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
        with av.open(io.BytesIO(image.content)) as picture:
            frame = next(picture.decode(video=0))
        assert (frame.width, frame.height) == (240, 136)  # 16:9, even
        assert (await server.client.get(base + "thumb-99.jpg")).status_code == 404
    # Scrubbing is not playing: it moves no playhead and starts no encoder run.
    live = server.running.services.manager.lookup(session["id"])
    assert live is not None and live.playhead.position == 0


async def test_transcodes_have_no_iframe_playlist(start_server: StartServer) -> None:
    server = await start_server()
    session = await server.create("hevc_opus.mkv")
    master = m3u8.loads((await server.client.get(session["master_url"])).text)
    assert master.iframe_playlists == []
    base = session["master_url"].replace("master.m3u8", "")
    assert (await server.client.get(base + "iframes.m3u8")).status_code == 404
    first = await server.client.get(base + "seg-0.ts")
    assert span(first.content).video_start == pytest.approx(1.4, abs=1e-3)
