"""End to end: create a session over the API and play it with ffmpeg as the HLS client."""

from __future__ import annotations

from pathlib import Path

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
    variant = m3u8.loads(master.text).playlists[0]
    assert variant.stream_info.resolution == (320, 180)
    assert variant.stream_info.codecs.startswith("avc1.64")
    assert variant.stream_info.codecs.endswith(",mp4a.40.2")

    media_url = session["master_url"].replace("master.m3u8", "index.m3u8")
    playlist = m3u8.loads((await server.client.get(media_url)).text)
    assert playlist.is_endlist and playlist.playlist_type == "vod"
    assert len(playlist.segments) >= 3  # 6 s clip, 2 s GOPs, 2 s target

    source = probe(media_dir / "h264_aac.mp4")
    total_bytes = 0
    peak = 0.0
    for segment in playlist.segments:
        response = await server.client.get(media_url.replace("index.m3u8", segment.uri))
        assert response.status_code == 200
        assert response.headers["content-type"] == "video/mp2t"
        total_bytes += len(response.content)
        peak = max(peak, len(response.content) * 8 / segment.duration)
        decoded = decode(response.content)
        # One frame of slack: EXTINF must be the segment's real length.
        assert decoded.video_seconds == pytest.approx(segment.duration, abs=1 / 24 + 1e-3)
        assert decoded.audio_seconds == pytest.approx(segment.duration, abs=0.05)
    # BANDWIDTH is the peak segment bitrate as sent: never below it, and not padded far above.
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
    assert [s.duration for s in playlist.segments[:-1]] == [1.0] * (len(playlist.segments) - 1)
    for segment in playlist.segments:
        response = await server.client.get(base + segment.uri)
        assert response.status_code == 200
        decoded = decode(response.content)
        assert decoded.video_seconds == pytest.approx(segment.duration, abs=1 / 24 + 0.01)


async def test_audio_only_needs_encoding_so_video_is_copied(
    start_server: StartServer, ffmpeg: str, tmp_path: Path, media_dir: Path
) -> None:
    server = await start_server()
    # A client that cannot decode AAC: the H.264 video is copied, only audio is encoded.
    session = await server.create(
        "h264_aac.mp4", capabilities={"video_codecs": ["h264"], "audio_codecs": ["mp3"]}
    )
    assert session["mode"] == "transcode"
    assert (session["video_action"], session["audio_action"]) == ("copy", "encode")
    base = session["master_url"].replace("master.m3u8", "")
    playlist = m3u8.loads((await server.client.get(base + "index.m3u8")).text)
    for segment in playlist.segments:
        response = await server.client.get(base + segment.uri)
        assert response.status_code == 200
        decoded = decode(response.content)
        assert decoded.video_seconds == pytest.approx(segment.duration, abs=1 / 24 + 0.01)
    out = await play_with_ffmpeg(ffmpeg, server.url + session["master_url"], tmp_path / "o.ts")
    assert decode(out).video_seconds == pytest.approx(
        probe(media_dir / "h264_aac.mp4").duration, abs=0.5
    )


async def test_second_audio_track_is_selectable(start_server: StartServer) -> None:
    server = await start_server()
    item = (await server.client.get(f"/api/v1/media/{server.media_id('two_audio.mp4')}")).json()
    assert [a["language"] for a in item["audio"]] == ["eng", "fra"]
    second = item["audio"][1]["index"]
    session = await server.create("two_audio.mp4", audio=second)
    assert session["mode"] == "remux" and session["audio"] == second


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
    server = await start_server(idle_timeout=1.0)
    session = await server.create("h264_aac.mp4")
    manager = server.running.services.manager
    import trio

    # Requests every 0.25 s for 3 s (three idle timeouts): the session must survive.
    deadline = trio.current_time() + 3
    while trio.current_time() < deadline:
        assert (await server.client.get(session["master_url"])).status_code == 200
        await trio.sleep(0.25)
    assert manager.lookup(session["id"]) is not None


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
