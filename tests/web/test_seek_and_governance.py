"""Issue 3 behaviour end to end: seeking by encoder restart, start offsets, idle resume,
throttling, pruning and the disk cap, on two-minute clips with real ffmpeg."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import trio

from ..support import Harness, Span, process_state, session_processes, span, wait_until
from .conftest import StartServer

FRAME = 1 / 24


async def segment(server: Harness, session: dict[str, Any], index: int) -> bytes:
    url = session["master_url"].replace("master.m3u8", f"seg-{index}.ts")
    response = await server.client.get(url)
    assert response.status_code == 200, response.text
    return response.content


async def audio_segment(server: Harness, session: dict[str, Any], index: int) -> bytes:
    """Segment `index` of the session's default audio rendition (same timeline as the video)."""
    (audio,) = [r for r in session["renditions"] if r["type"] == "audio" and r["default"]]
    url = session["master_url"].replace("master.m3u8", f"{audio['id']}/seg-{index}.ts")
    response = await server.client.get(url)
    assert response.status_code == 200, response.text
    return response.content


async def av_span(server: Harness, session: dict[str, Any], index: int) -> Span:
    """Video extent of segment `index` of the video, audio extent of the audio rendition's."""
    video = span(await segment(server, session, index))
    audio = span(await audio_segment(server, session, index))
    return Span(video.video_start, video.video_end, audio.audio_start, audio.audio_end)


def transcoder_of(server: Harness, session: dict[str, Any]) -> Any:
    live = server.running.services.manager.lookup(session["id"])
    assert live is not None and live.transcoder is not None
    return live.transcoder


async def long_server(start_server: StartServer, long_media_dir: Path, **kw: Any) -> Harness:
    return await start_server(media=(long_media_dir,), segment_seconds=2.0, **kw)


async def test_far_seek_restarts_encoder_with_one_timeline(
    start_server: StartServer, long_media_dir: Path
) -> None:
    server = await long_server(start_server, long_media_dir)
    session = await server.create("long_hevc.mkv")
    transcoder = transcoder_of(server, session)
    played = [await av_span(server, session, i) for i in range(3)]
    for before, after in itertools.pairwise(played):
        assert after.video_start == pytest.approx(before.video_end, abs=1e-3)
    assert transcoder.restarts == 0

    # 90 s ahead: far beyond the seek gap, so the encoder restarts there.
    far = await av_span(server, session, 45)
    assert transcoder.restarts == 1
    # Same timeline: 45 segments of exactly 2 s after segment 0.
    assert far.video_start - played[0].video_start == pytest.approx(90.0, abs=1e-3)
    nxt = await av_span(server, session, 46)
    assert nxt.video_start == pytest.approx(far.video_end, abs=1e-3)
    for s in (far, nxt, *played):
        # The audio rendition (cut in-process) is in step with the encoded video.
        assert abs(s.audio_start - s.video_start) < 0.03
        assert abs(s.audio_end - s.video_end) < 0.03

    # Segments already on disk come back without another restart.
    await segment(server, session, 1)
    # A nearby segment ahead of the new run is waited for, not restarted for.
    await segment(server, session, 48)
    assert transcoder.restarts == 1


async def test_ffmpeg_client_seeks_and_plays_on(
    start_server: StartServer, long_media_dir: Path, ffmpeg: str, tmp_path: Path
) -> None:
    server = await long_server(start_server, long_media_dir)
    session = await server.create("long_hevc.mkv")
    await segment(server, session, 0)
    out = tmp_path / "seek.ts"
    # ffmpeg as a player that seeks to 100 s and plays 8 s from there.
    result = await trio.run_process(
        [ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-ss", "100",
         "-i", server.url + session["master_url"], "-t", "8", "-c", "copy", str(out)],
        capture_stderr=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()[-1000:]
    assert transcoder_of(server, session).restarts == 1
    played = span(out.read_bytes())
    assert played.video_end - played.video_start >= 7.9
    assert abs(played.audio_start - played.video_start) < 0.1
    from ..support import decode

    decoded = decode(out)
    # Every frame decodes and there is no hole: frames x frame length == covered span.
    assert decoded.video_frames * FRAME == pytest.approx(decoded.video_seconds, abs=FRAME)


async def test_remux_seek_is_instant_and_continuous(
    start_server: StartServer, long_media_dir: Path
) -> None:
    server = await long_server(start_server, long_media_dir)
    session = await server.create("long_h264.mp4")
    assert session["mode"] == "remux"
    first = await av_span(server, session, 0)
    far = await av_span(server, session, 50)
    nxt = await av_span(server, session, 51)
    assert far.video_start - first.video_start == pytest.approx(100.0, abs=1e-3)
    assert nxt.video_start == pytest.approx(far.video_end, abs=1e-3)
    assert abs(far.audio_start - far.video_start) < 0.1
    assert session_processes(server.temp_dir) == []


async def test_start_offset_begins_encoding_there(
    start_server: StartServer, long_media_dir: Path
) -> None:
    server = await long_server(start_server, long_media_dir)
    session = await server.create("long_hevc.mkv", start=61.0)
    playlist = (await server.client.get(session["master_url"].replace("master", "index"))).text
    assert "#EXT-X-START:TIME-OFFSET=61.000" in playlist
    assert playlist.count("seg-") == 60  # still the full VOD list
    transcoder = transcoder_of(server, session)
    data = await segment(server, session, 30)
    assert transcoder.restarts == 0  # the first run began at segment 30
    # Every rendition is on source time + 1.4 s (streaming/_mpegts.TS_OFFSET).
    assert span(data).video_start == pytest.approx(60.0 + 1.4, abs=1e-3)


async def test_idle_stops_encoder_and_next_request_resumes(
    start_server: StartServer, long_media_dir: Path
) -> None:
    server = await long_server(start_server, long_media_dir, idle_timeout=0.5)
    session = await server.create("long_hevc.mkv")
    await segment(server, session, 0)
    url = f"/api/v1/sessions/{session['id']}"
    live = server.running.services.manager.lookup(session["id"])
    assert live is not None
    await wait_until(lambda: live.state == "idle" and live.encoder_state == "stopped")
    await wait_until(lambda: session_processes(server.temp_dir) == [])
    info = (await server.client.get(url)).json()
    assert (info["state"], info["encoder"]) == ("idle", "stopped")
    # A paused player comes back: it just works, with the encoder started where it asks.
    await segment(server, session, 20)
    assert live.state == "running"


async def test_throttle_pauses_then_resumes_encoder(
    start_server: StartServer, long_media_dir: Path
) -> None:
    server = await long_server(start_server, long_media_dir, throttle_ahead=8.0)
    session = await server.create("long_hevc.mkv")
    live = server.running.services.manager.lookup(session["id"])
    assert live is not None
    await wait_until(lambda: live.encoder_state == "paused", timeout=20)
    (pid,) = session_processes(server.temp_dir)
    await wait_until(lambda: process_state(pid)[0] == "T")
    cpu = process_state(pid)[1]
    await trio.sleep(0.5)  # observe an interval in which a running encoder would use CPU
    assert process_state(pid) == ("T", cpu)
    transcoder = transcoder_of(server, session)
    head = transcoder._main.head
    assert 4 <= head <= 8  # stopped just past 8 s of output beyond segment 0

    # The player advances: the encoder continues and makes what it asks for.
    await segment(server, session, head)
    await wait_until(lambda: transcoder._main.head > head + 1, timeout=20)
    assert transcoder.restarts == 0


async def test_segments_behind_the_player_are_pruned(
    start_server: StartServer, long_media_dir: Path
) -> None:
    server = await long_server(start_server, long_media_dir, keep_behind=4.0)
    session = await server.create("long_hevc.mkv")
    for index in range(8):
        await segment(server, session, index)
    transcoder = transcoder_of(server, session)
    on_disk = set(transcoder._paths)
    assert on_disk.isdisjoint(range(2, 5))  # ended more than 4 s before segment 7's start
    assert {5, 6, 7} <= on_disk
    # ... except the first two, kept for players that probe them (streaming/_policy.py).
    assert {0, 1} <= on_disk
    files = {p.name for p in server.temp_dir.rglob("seg-*.ts")}
    assert "seg-2.ts" not in files and "seg-7.ts" in files
    # Seeking back re-makes a pruned segment.
    await segment(server, session, 3)
    assert transcoder.restarts == 1


async def test_disk_cap_refuses_new_transcodes_with_507(
    start_server: StartServer, long_media_dir: Path, media_dir: Path
) -> None:
    server = await long_server(start_server, long_media_dir, temp_max_bytes=200_000)
    session = await server.create("long_hevc.mkv")
    disk = server.running.services.manager.disk
    await segment(server, session, 0)
    await wait_until(lambda: disk.total > 200_000, timeout=30)
    response = await server.client.post(
        "/api/v1/sessions",
        json={"media_id": server.media_id("long_h264.mp4"), "mode": "transcode"},
    )
    assert response.status_code == 507
    assert response.json()["error"]["code"] == "insufficient_storage"
    # A remux needs no disk: still allowed.
    await server.create("long_h264.mp4")


async def test_played_segments_are_pruned_first_to_stay_under_the_cap(
    start_server: StartServer, long_media_dir: Path
) -> None:
    server = await long_server(start_server, long_media_dir, temp_max_bytes=400_000,
                               keep_behind=1000.0)  # fmt: skip
    session = await server.create("long_hevc.mkv")
    for index in range(12):
        await segment(server, session, index)
    transcoder = transcoder_of(server, session)
    # The budget pruned played segments (behind the player) oldest first.
    assert 0 not in transcoder._paths
    assert 11 in transcoder._paths
