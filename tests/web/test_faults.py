"""Issue 4 faults: a crashed encoder is restarted where it failed; a vanished or replaced file
gives a clear error; nobody else notices."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import m3u8
import pytest

from ..support import decode, play_with_ffmpeg, session_processes, wait_until
from .conftest import StartServer


async def test_killed_encoder_is_restarted_and_the_client_gets_everything(
    start_server: StartServer, long_media_dir: Path, ffmpeg: str, tmp_path: Path
) -> None:
    server = await start_server(media=(long_media_dir,), segment_seconds=2.0, throttle_ahead=10)
    session = await server.create("long_hevc.mkv")
    base = session["master_url"].replace("master.m3u8", "")
    assert (await server.client.get(base + "seg-0.ts")).status_code == 200
    (pid,) = session_processes(server.temp_dir)
    os.kill(pid, signal.SIGKILL)  # a crash mid-stream
    await wait_until(lambda: session_processes(server.temp_dir) not in ([], [pid]), timeout=10)
    out = await play_with_ffmpeg(ffmpeg, server.url + session["master_url"], tmp_path / "o.ts")
    played = decode(out)
    assert played.video_seconds == pytest.approx(120.0, abs=0.5)
    assert played.video_frames == 120 * 24  # nothing lost, nothing doubled
    live = server.running.services.manager.lookup(session["id"])
    assert live is not None and live.state == "running"


async def test_encoder_failing_every_time_fails_the_session_with_its_cause(
    start_server: StartServer, tmp_path: Path
) -> None:
    from ..support import fake_ffmpeg

    server = await start_server(ffmpeg=fake_ffmpeg(tmp_path, "crash"), encoder_retries=2)
    session = await server.create("hevc_opus.mkv")
    response = await server.client.get(session["master_url"].replace("master.m3u8", "seg-0.ts"))
    assert response.status_code == 502
    assert "Invalid data found" in response.json()["error"]["message"]
    live = server.running.services.manager.lookup(session["id"])
    assert live is not None and live.transcoder is not None
    assert live.transcoder._runs == 3  # the first run and two retries
    # Later requests get the same clear answer, quickly.
    again = await server.client.get(session["master_url"].replace("master.m3u8", "seg-1.ts"))
    assert again.status_code == 502


@pytest.mark.parametrize("change", ["deleted", "replaced"])
async def test_file_changed_while_playing(
    start_server: StartServer, media_dir: Path, tmp_path: Path, change: str
) -> None:
    library = tmp_path / "library"
    library.mkdir()
    shutil.copy(media_dir / "h264_aac.mp4", library / "movie.mp4")
    shutil.copy(media_dir / "two_audio.mp4", library / "other.mp4")
    # No watcher: this is the path where nothing told the server (a rescan would say 410).
    server = await start_server(media=(library,), watch=False)
    victim = await server.create("movie.mp4")
    bystander = await server.create("other.mp4")
    base = victim["master_url"].replace("master.m3u8", "")
    assert (await server.client.get(base + "seg-0.ts")).status_code == 200
    if change == "deleted":
        (library / "movie.mp4").unlink()
    else:
        shutil.copy(media_dir / "hevc_opus.mkv", library / "movie.mp4")
    playlist = m3u8.loads((await server.client.get(base + "index.m3u8")).text)
    response = await server.client.get(base + playlist.segments[-1].uri)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "remux_failed"
    # Everyone else plays on; a new session for the changed file is refused clearly.
    other = bystander["master_url"].replace("master.m3u8", "seg-0.ts")
    assert (await server.client.get(other)).status_code == 200
    again = await server.client.post(
        "/api/v1/sessions", json={"media_id": server.media_id("movie.mp4"), "start": 1.0}
    )
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "media_not_found"
