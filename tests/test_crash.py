"""A SIGKILLed server leaves no encoder running, and the next start clears its leftovers."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import httpx
import trio

from hlstrio.streaming._session import MARKER_FILE, SESSION_DIR_PREFIX

from .support import fake_ffmpeg, process_state, session_processes, start_cli_server, wait_until


async def create(url: str, relpath: str) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        items = (await client.get("/api/v1/media")).json()["items"]
        media_id = next(i["id"] for i in items if i["path"] == relpath)
        response = await client.post("/api/v1/sessions", json={"media_id": media_id})
        assert response.status_code == 201, response.text
        data: dict[str, object] = response.json()
        return data


async def test_sigkilled_server_takes_its_encoders_along(media_dir: Path, tmp_path: Path) -> None:
    stuck = fake_ffmpeg(tmp_path, "stuck")
    process, url, temp_dir = await start_cli_server(media_dir, tmp_path, f'ffmpeg = "{stuck}"\n')
    await create(url, "hevc_opus.mkv")
    await wait_until(lambda: len(session_processes(temp_dir)) == 1)
    process.send_signal(signal.SIGKILL)
    await process.wait()
    # The watchdog notices the closed pipe and kills the orphan within moments.
    await wait_until(lambda: session_processes(temp_dir) == [], timeout=5)


async def test_sigkill_also_ends_a_throttled_real_ffmpeg(
    long_media_dir: Path, tmp_path: Path
) -> None:
    process, url, temp_dir = await start_cli_server(
        long_media_dir, tmp_path, "throttle_ahead = 6\n"
    )
    await create(url, "long_hevc.mkv")
    await wait_until(lambda: len(session_processes(temp_dir)) == 1, timeout=10)
    (pid,) = session_processes(temp_dir)
    await wait_until(lambda: process_state(pid)[0] == "T", timeout=20)  # SIGSTOPped
    process.send_signal(signal.SIGKILL)
    await process.wait()
    await wait_until(lambda: session_processes(temp_dir) == [], timeout=5)


async def test_restart_removes_only_stale_session_dirs(media_dir: Path, tmp_path: Path) -> None:
    stuck = fake_ffmpeg(tmp_path, "stuck")
    config = f'ffmpeg = "{stuck}"\n'
    process, url, temp_dir = await start_cli_server(media_dir, tmp_path, config)
    await create(url, "hevc_opus.mkv")
    (stale,) = list(temp_dir.iterdir())
    process.send_signal(signal.SIGKILL)
    await process.wait()
    assert stale.exists()  # a crash cannot clean up after itself

    foreign = temp_dir / "someone-elses-dir"
    foreign.mkdir()
    unmarked = temp_dir / f"{SESSION_DIR_PREFIX}unmarked"
    unmarked.mkdir()
    alive = temp_dir / f"{SESSION_DIR_PREFIX}other-live-server"
    alive.mkdir()
    # Marked by another live server sharing the temp dir (a stand-in process named hlstrio).
    other = await trio.lowlevel.open_process(
        [sys.executable, "-c", "import time; time.sleep(60)", "hlstrio", "serve"]
    )
    (alive / MARKER_FILE).write_text(json.dumps({"pid": other.pid}))

    second, _, _ = await start_cli_server(media_dir, tmp_path, config)
    try:
        assert not stale.exists()
        assert foreign.exists() and unmarked.exists() and alive.exists()
    finally:
        other.kill()
        second.send_signal(signal.SIGTERM)
        with trio.fail_after(10):
            await second.wait()
            await other.wait()
    await wait_until(lambda: session_processes(temp_dir) == [], timeout=5)
