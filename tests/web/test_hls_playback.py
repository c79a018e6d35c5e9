"""End to end: create a session over the API and play it with ffmpeg as the HLS client."""

from __future__ import annotations

from pathlib import Path

import av
import m3u8
import pytest

from hlstrio.media import probe

from ..support import decode, fake_ffmpeg, play_with_ffmpeg, session_processes, wait_until
from .conftest import StartServer


async def test_remux_plays_whole_file_and_each_segment_matches_extinf(
    start_server: StartServer, media_dir: Path, ffmpeg: str, tmp_path: Path
) -> None:
    server = await start_server()
    session = await server.create("h264_aac.mp4")
    assert session["mode"] == "remux"
    assert session["state"] == "running"

    master = await server.client.get(session["master_url"])
    assert master.status_code == 200
    assert master.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    assert "no-cache" in master.headers["cache-control"]
    assert "public" not in master.headers["cache-control"]
    parsed = m3u8.loads(master.text)
    variant = parsed.playlists[0]
    assert variant.stream_info.resolution == (320, 180)
    assert variant.stream_info.codecs.startswith("avc1.64")
    assert variant.stream_info.codecs.endswith(",mp4a.40.2")
    # RFC 8216 4.3.4.1/4.3.4.2: the audio is an EXT-X-MEDIA rendition the variant references
    # (Apple 8.9: demuxed audio), with its own media playlist.
    (audio,) = [m for m in parsed.media if m.type == "AUDIO"]
    assert variant.stream_info.audio == audio.group_id
    assert audio.default == "YES" and audio.autoselect == "YES" and audio.uri

    base = server.url + session["master_url"].replace("master.m3u8", "")
    video_playlist = m3u8.loads((await server.client.get(base + variant.uri)).text)
    audio_playlist = m3u8.loads((await server.client.get(base + audio.uri)).text)
    assert video_playlist.is_endlist and video_playlist.playlist_type == "vod"
    assert len(video_playlist.segments) >= 3  # 6 s clip, 2 s GOPs, 2 s target
    # One timeline: the audio rendition's segments have the video's boundaries.
    assert [s.duration for s in audio_playlist.segments] == [
        s.duration for s in video_playlist.segments
    ]
    audio_dir = base + audio.uri.rsplit("/", 1)[0] + "/"

    source = probe(media_dir / "h264_aac.mp4")
    total_bytes = 0
    peak = 0.0
    for segment, audio_segment in zip(
        video_playlist.segments, audio_playlist.segments, strict=True
    ):
        response = await server.client.get(base + segment.uri)
        assert response.status_code == 200
        assert response.headers["content-type"] == "video/mp2t"
        audio_response = await server.client.get(audio_dir + audio_segment.uri)
        assert audio_response.status_code == 200
        assert audio_response.headers["content-type"] == "video/mp2t"
        size = len(response.content) + len(audio_response.content)
        total_bytes += size
        peak = max(peak, size * 8 / segment.duration)
        decoded = decode(response.content)
        # One frame of slack: EXTINF must be the segment's real length.
        assert decoded.video_seconds == pytest.approx(segment.duration, abs=1 / 24 + 1e-3)
        assert decoded.audio_seconds == 0  # video only: audio is its own rendition
        heard = decode(audio_response.content)
        assert heard.video_frames == 0
        assert heard.audio_seconds == pytest.approx(segment.duration, abs=0.05)
    # BANDWIDTH is the peak bitrate of video + audio as sent (RFC 8216 4.3.4.2): never below
    # it, and not padded far above.
    assert peak <= variant.stream_info.bandwidth <= peak * 1.25
    average = total_bytes * 8 / source.duration
    assert average * 0.8 <= variant.stream_info.average_bandwidth <= variant.stream_info.bandwidth

    out = await play_with_ffmpeg(ffmpeg, server.url + session["master_url"], tmp_path / "out.ts")
    played = decode(out)
    assert played.video_seconds == pytest.approx(source.duration, abs=0.5)
    assert played.audio_seconds == pytest.approx(source.duration, abs=0.5)
    assert played.video_frames == round(source.duration * 24)
    # A remux session costs no process and no disk.
    assert session_processes(server.temp_dir) == []
    assert not server.temp_dir.exists() or list(server.temp_dir.iterdir()) == []


async def test_transcode_plays_whole_file(
    start_server: StartServer, media_dir: Path, ffmpeg: str, tmp_path: Path
) -> None:
    server = await start_server()
    session = await server.create("hevc_opus.mkv")
    assert session["mode"] == "transcode"
    assert session["video_action"] == "encode" and session["audio_action"] == "encode"
    master = m3u8.loads((await server.client.get(session["master_url"])).text)
    assert master.playlists[0].stream_info.codecs == "avc1.640029,mp4a.40.2"

    out = await play_with_ffmpeg(ffmpeg, server.url + session["master_url"], tmp_path / "out.ts")
    played = decode(out)
    source = probe(media_dir / "hevc_opus.mkv")
    assert played.video_seconds == pytest.approx(source.duration, abs=0.5)
    assert played.audio_seconds == pytest.approx(source.duration, abs=0.5)
    state = (await server.client.get(f"/api/v1/sessions/{session['id']}")).json()["state"]
    assert state == "running"


async def test_transcode_segments_follow_the_grid(start_server: StartServer) -> None:
    server = await start_server(segment_seconds=1.0)
    session = await server.create("hevc_opus.mkv")
    base = session["master_url"].replace("master.m3u8", "")
    playlist = m3u8.loads((await server.client.get(base + "index.m3u8")).text)
    # 1 s each (EXTINF is 2 us short of it: streaming/_playlist.extinf_seconds).
    assert [s.duration for s in playlist.segments[:-1]] == [0.999998] * (len(playlist.segments) - 1)
    for segment in playlist.segments:
        response = await server.client.get(base + segment.uri)
        assert response.status_code == 200
        decoded = decode(response.content)
        assert decoded.video_seconds == pytest.approx(segment.duration, abs=1 / 24 + 0.01)


async def test_audio_the_client_cannot_take_is_made_in_process_and_no_encoder_runs(
    start_server: StartServer, ffmpeg: str, tmp_path: Path, media_dir: Path
) -> None:
    server = await start_server()
    # AC-3 5.1 to a default (AAC-only) client: the H.264 is copied, the French track becomes a
    # stereo AAC rendition made in-process (Apple 9.6), and no ffmpeg process runs at all.
    session = await server.create("multi_track.mkv", audio="fr")
    assert session["mode"] == "remux"
    assert (session["video_action"], session["audio_action"]) == ("copy", "encode")
    french = next(r for r in session["renditions"] if r["type"] == "audio" and r["default"])
    assert (french["codec"], french["channels"]) == ("mp4a.40.2", 2)
    base = session["master_url"].replace("master.m3u8", "")
    playlist = m3u8.loads((await server.client.get(f"{base}{french['id']}/index.m3u8")).text)
    for segment in playlist.segments:
        response = await server.client.get(f"{base}{french['id']}/{segment.uri}")
        assert response.status_code == 200
        heard = decode(response.content)
        assert heard.video_frames == 0
        assert heard.audio_seconds == pytest.approx(segment.duration, abs=0.03)
    assert session_processes(server.temp_dir) == []
    out = await play_with_ffmpeg(ffmpeg, server.url + session["master_url"], tmp_path / "o.ts")
    assert session_processes(server.temp_dir) == []  # ... while it played, too
    played = decode(out)
    duration = probe(media_dir / "multi_track.mkv").duration
    assert played.video_seconds == pytest.approx(duration, abs=0.5)
    assert played.audio_seconds == pytest.approx(duration, abs=0.5)


async def test_every_audio_track_is_offered_and_the_default_is_selectable(
    start_server: StartServer, ffmpeg: str, tmp_path: Path
) -> None:
    server = await start_server()
    item = (await server.client.get(f"/api/v1/media/{server.media_id('two_audio.mp4')}")).json()
    # LANGUAGE is BCP-47 (RFC 8216 4.3.4.1; Apple 8.10): the shortest ISO 639 code.
    assert [a["language"] for a in item["audio"]] == ["en", "fr"]
    first, second = (a["index"] for a in item["audio"])
    session = await server.create("two_audio.mp4", audio="fra")
    assert session["mode"] == "remux" and session["audio"] == second
    master = m3u8.loads((await server.client.get(session["master_url"])).text)
    audio = [(m.language, m.name, m.default, m.uri) for m in master.media if m.type == "AUDIO"]
    # Both tracks, one group, the French one DEFAULT: a player switches without a new session.
    assert audio == [
        ("en", "English", "NO", f"a{first}/index.m3u8"),
        ("fr", "Français", "YES", f"a{second}/index.m3u8"),
    ]
    # ffmpeg as the client reads every rendition: two audio streams, each the whole file.
    out = await play_with_ffmpeg(ffmpeg, server.url + session["master_url"], tmp_path / "o.ts")
    with av.open(str(out)) as played:
        assert len(played.streams.audio) == 2
    same = await server.create("two_audio.mp4", expect=200, audio=second)
    assert same["id"] == session["id"]  # "fra" and its index are the same choice


async def test_segments_can_be_fetched_in_any_order(start_server: StartServer) -> None:
    server = await start_server()
    session = await server.create("h264_aac.mp4")
    base = session["master_url"].replace("master.m3u8", "")
    playlist = m3u8.loads((await server.client.get(base + "index.m3u8")).text)
    bodies = {}
    for index in reversed(range(len(playlist.segments))):
        response = await server.client.get(f"{base}seg-{index}.ts")
        assert response.status_code == 200
        bodies[index] = response.content
    # Cut again (cache holds them) in forward order: byte-identical.
    for index, body in bodies.items():
        assert (await server.client.get(f"{base}seg-{index}.ts")).content == body


async def test_delete_stops_encoder_and_removes_temp_dir(start_server: StartServer) -> None:
    server = await start_server()
    session = await server.create("hevc_opus.mkv")
    base = session["master_url"].replace("master.m3u8", "")
    assert (await server.client.get(base + "seg-0.ts")).status_code == 200
    live = server.running.services.manager.lookup(session["id"])
    assert live is not None and live.temp_dir is not None and live.temp_dir.exists()
    temp_dir = live.temp_dir

    response = await server.client.delete(f"/api/v1/sessions/{session['id']}")
    assert response.status_code == 204
    # Gone before the reply, not eventually.
    assert not temp_dir.exists()
    assert session_processes(server.temp_dir) == []
    for path in ("seg-0.ts", "index.m3u8", "master.m3u8"):
        response = await server.client.get(base + path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "session_not_found"
    assert (await server.client.get(f"/api/v1/sessions/{session['id']}")).status_code == 404
    assert (await server.client.delete(f"/api/v1/sessions/{session['id']}")).status_code == 404


async def test_delete_while_encoding_kills_ffmpeg(start_server: StartServer) -> None:
    server = await start_server()
    session = await server.create("hevc_opus.mkv")
    await wait_until(lambda: session_processes(server.temp_dir) != [])
    assert (await server.client.delete(f"/api/v1/sessions/{session['id']}")).status_code == 204
    assert session_processes(server.temp_dir) == []
    assert list(server.temp_dir.iterdir()) == []


async def test_session_ttl_ends_the_session(start_server: StartServer) -> None:
    server = await start_server(idle_timeout=0.3, session_ttl=0.8)
    session = await server.create("hevc_opus.mkv")
    manager = server.running.services.manager
    assert manager.lookup(session["id"]) is not None
    await wait_until(lambda: manager.lookup(session["id"]) is None, timeout=10)
    assert (await server.client.get(session["master_url"])).status_code == 404
    await wait_until(lambda: list(server.temp_dir.iterdir()) == [])
    assert session_processes(server.temp_dir) == []


async def test_requests_keep_a_session_alive(start_server: StartServer) -> None:
    # Both lifetimes count from the last request: `idle_timeout` (state "idle") and
    # `session_ttl` (the session ends). Requests closer together than either keep it running
    # past several of each; once they stop, the very same session ends within its TTL.
    server = await start_server(idle_timeout=0.8, session_ttl=1.2)
    session = await server.create("h264_aac.mp4")
    manager = server.running.services.manager
    import trio

    info = f"/api/v1/sessions/{session['id']}"  # reading the session is not a request for it
    deadline = trio.current_time() + 2.6  # more than two TTLs, three idle timeouts
    while trio.current_time() < deadline:
        assert (await server.client.get(session["master_url"])).status_code == 200
        assert (await server.client.get(info)).json()["state"] != "idle"
        await trio.sleep(0.1)  # a player's pace, not a wait for anything
    assert manager.lookup(session["id"]) is not None
    # The control: with no requests the TTL is what ends it, so the loop above is what kept it.
    await wait_until(lambda: manager.lookup(session["id"]) is None, timeout=10)
    assert (await server.client.get(session["master_url"])).status_code == 404


async def test_failing_encoder_gives_502(start_server: StartServer, tmp_path: Path) -> None:
    # Stand-in for an ffmpeg that crashes at once (a real crash mid-stream is issue 4's test).
    server = await start_server(ffmpeg=fake_ffmpeg(tmp_path, "crash"))
    session = await server.create("hevc_opus.mkv")
    response = await server.client.get(session["master_url"].replace("master.m3u8", "seg-0.ts"))
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "encoder_failed"
    assert "Invalid data" in error["message"]
    info = (await server.client.get(f"/api/v1/sessions/{session['id']}")).json()
    assert info["state"] == "failed"
    # Other sessions are unaffected.
    other = await server.create("h264_aac.mp4")
    ok = await server.client.get(other["master_url"].replace("master.m3u8", "seg-0.ts"))
    assert ok.status_code == 200


async def test_segment_not_ready_gives_503_with_retry_after(
    start_server: StartServer, tmp_path: Path
) -> None:
    # Stand-in for an encoder that is slower than segment_wait: it never produces anything.
    server = await start_server(ffmpeg=fake_ffmpeg(tmp_path, "stuck"), segment_wait=0.3)
    session = await server.create("hevc_opus.mkv")
    response = await server.client.get(session["master_url"].replace("master.m3u8", "seg-1.ts"))
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["code"] == "segment_not_ready"


async def test_waiting_request_is_answered_when_session_is_deleted(
    start_server: StartServer, tmp_path: Path
) -> None:
    import trio

    server = await start_server(ffmpeg=fake_ffmpeg(tmp_path, "stuck"), segment_wait=30)
    session = await server.create("hevc_opus.mkv")
    results: list[int] = []

    async def wait_for_segment() -> None:
        url = session["master_url"].replace("master.m3u8", "seg-0.ts")
        results.append((await server.client.get(url)).status_code)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait_for_segment)
            live = server.running.services.manager.lookup(session["id"])
            assert live is not None
            await wait_until(lambda: live._waiters != {})
            assert (
                await server.client.delete(f"/api/v1/sessions/{session['id']}")
            ).status_code == 204
    assert results == [404]
