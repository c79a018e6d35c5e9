"""The command line as a user runs it: a real `python -m hlstrio` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
import trio

from .support import HLSTRIO, fake_ffmpeg, session_processes, start_cli_server


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HLSTRIO, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def test_probe_json(media_dir: Path) -> None:
    result = run_cli("probe", str(media_dir / "two_audio.mp4"), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["video"]["codec"] == "h264"
    assert [a["language"] for a in info["audio"]] == ["eng", "fra"]


def test_probe_text(media_dir: Path) -> None:
    result = run_cli("probe", str(media_dir / "hevc_opus.mkv"))
    assert result.returncode == 0
    assert "hevc 320x180" in result.stdout and "opus" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["probe", "{media}/notes.txt"], "notes.txt"),
        (["probe", "{media}/missing.mp4"], "missing.mp4"),
        (["serve", "{media}", "--host", "0.0.0.0"], "--insecure-no-auth"),
        (["serve", "{media}", "--config", "{media}/nope.toml"], "cannot read config"),
        (["serve", "{media}/not-a-dir"], "media directory not found"),
        (["serve", "{media}", "--port", "70000"], "port"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(media_dir: Path, args: list[str], message: str) -> None:
    result = run_cli(*(a.format(media=media_dir) for a in args))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hlstrio: ") and message in lines[0]


def test_bad_config_value(media_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('segment_seconds = "six"\n')
    result = run_cli("serve", str(media_dir), "--config", str(config))
    assert result.returncode == 2
    assert "segment_seconds" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_stops_gracefully(
    media_dir: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    # The encoder is a stand-in that never finishes, so one is surely running at the signal.
    stuck = fake_ffmpeg(tmp_path, "stuck")
    process, url, temp_dir = await start_cli_server(
        media_dir, tmp_path, f'ffmpeg = "{stuck}"\nsegment_wait = 60\n'
    )
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            items = (await client.get("/api/v1/media")).json()["items"]
            media_id = next(i["id"] for i in items if i["path"] == "hevc_opus.mkv")
            session = (await client.post("/api/v1/sessions", json={"media_id": media_id})).json()
            assert len(list(temp_dir.iterdir())) == 1
            with trio.fail_after(10):
                while not session_processes(temp_dir):
                    await trio.sleep(0.02)
            answers: list[int] = []

            async def waiting_request() -> None:
                seg = session["master_url"].replace("master.m3u8", "seg-0.ts")
                try:
                    answers.append((await client.get(seg)).status_code)
                except httpx.HTTPError:
                    answers.append(-1)

            with trio.fail_after(15):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(waiting_request)
                    info_url = f"/api/v1/sessions/{session['id']}"
                    while (await client.get(info_url)).json()["waiting"] != 1:
                        await trio.sleep(0.02)  # until the request is parked in the server
                    process.send_signal(signum)
                    code = await process.wait()
            assert code == 0
            # The parked request was answered (session ended), not left hanging.
            assert answers in ([404], [-1])
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert list(temp_dir.iterdir()) == []
    assert session_processes(temp_dir) == []


async def test_port_in_use_is_a_clear_error(media_dir: Path, tmp_path: Path) -> None:
    process, url, _ = await start_cli_server(media_dir, tmp_path)
    try:
        port = url.rsplit(":", 1)[1]
        result = await trio.run_process(
            [*HLSTRIO, "serve", str(media_dir), "--port", port],
            capture_stderr=True,
            capture_stdout=True,
            check=False,
            env={**os.environ, "HLSTRIO_CACHE_DIR": str(tmp_path / "cache")},
        )
        assert result.returncode == 1
        assert b"cannot listen" in result.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(10):
            await process.wait()
