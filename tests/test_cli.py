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


def run_cli(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HLSTRIO, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )


def test_probe_json(media_dir: Path) -> None:
    result = run_cli("probe", str(media_dir / "two_audio.mp4"), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["video"]["codec"] == "h264"
    assert [a["language"] for a in info["audio"]] == ["en", "fr"]  # BCP-47, as HLS wants


def test_probe_text(media_dir: Path) -> None:
    result = run_cli("probe", str(media_dir / "hevc_opus.mkv"))
    assert result.returncode == 0
    assert "hevc 320x180" in result.stdout and "opus" in result.stdout


def test_probe_lists_every_track(media_dir: Path) -> None:
    result = run_cli("probe", str(media_dir / "multi_track.mkv"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == [
        "video",
        "audio #1",
        "audio #2",
        "subtitles #3",
        "subtitles #4",
    ]
    assert "5.1(side) fr" in lines[2] and "(bitmap)" in lines[4]
    info = json.loads(run_cli("probe", str(media_dir / "multi_track.mkv"), "--json").stdout)
    assert [(s["codec"], s["text"]) for s in info["subtitles"]] == [
        ("subrip", True),
        ("hdmv_pgs_subtitle", False),
    ]


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


@pytest.mark.parametrize("name", ["notes.txt", "missing.mp4", "."])
def test_probe_error_names_the_file_once(media_dir: Path, name: str) -> None:
    path = media_dir / name
    result = run_cli("probe", str(path))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("hlstrio: ") and result.stderr.count(str(path)) == 1, (
        result.stderr
    )


def test_unknown_environment_variable(media_dir: Path) -> None:
    # As strict as an unknown TOML key: a typo must not be ignored silently.
    result = run_cli("serve", str(media_dir), env={"HLSTRIO_SEGMENT_SECNDS": "4"})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "hlstrio: environment: unknown setting 'HLSTRIO_SEGMENT_SECNDS' "
        "(did you mean 'HLSTRIO_SEGMENT_SECONDS'?)"
    ]


SECRET = "Zq9-secret-token-do-not-print"


@pytest.mark.parametrize(
    ("config", "env"),
    [
        (f'[users]\nalice = "{SECRET}"\n', {}),
        (f'[users.alice]\ntoken = "{SECRET}"\ntokne = "{SECRET}"\n', {}),
        (f'[users.alice]\ntoken = "{SECRET} x"\n', {}),
        (f'host = "0.0.0.0"\n[users.alice]\ntoken = "{SECRET}"\n', {"HLSTRIO_USERS": SECRET}),
        (f'[users.alice]\ntoken = "{SECRET}"\n', {"HLSTRIO_TOKEN": SECRET}),
    ],
)
def test_no_output_shows_a_token(
    media_dir: Path, tmp_path: Path, config: str, env: dict[str, str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(config)
    result = run_cli("serve", str(media_dir), "--config", str(path), env=env)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert SECRET[:10] not in result.stdout + result.stderr, result.stderr


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
            answers: list[httpx.Response] = []

            async def waiting_request() -> None:
                seg = session["master_url"].replace("master.m3u8", "seg-0.ts")
                answers.append(await client.get(seg))  # a dropped connection fails the test

            with trio.fail_after(15):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(waiting_request)
                    info_url = f"/api/v1/sessions/{session['id']}"
                    while (await client.get(info_url)).json()["waiting"] != 1:
                        await trio.sleep(0.02)  # until the request is parked in the server
                    process.send_signal(signum)
                    code = await process.wait()
            assert code == 0
            # The parked request was answered before the server went (sessions end first, then
            # HTTP drains): the session is gone, and the JSON error says so.
            (answer,) = answers
            assert answer.status_code == 404, answer.text
            assert answer.json()["error"]["code"] == "session_not_found"
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


async def test_start_up_output(tmp_path: Path) -> None:
    """One "listening" line (stdout, for scripts), and an empty library says where it looked."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not media\n")
    stderr = tmp_path / "stderr.log"
    with stderr.open("wb") as log:
        process = await trio.lowlevel.open_process(
            [*HLSTRIO, "serve", str(empty), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "HLSTRIO_CACHE_DIR": str(tmp_path / "cache")},
        )
    assert process.stdout is not None
    output = b""
    try:
        with trio.fail_after(30):
            while not output.endswith(b"\n"):
                chunk = await process.stdout.receive_some(4096)
                assert chunk, stderr.read_text()
                output += chunk
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(10):
            output += b"".join([chunk async for chunk in process.stdout])
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    (line,) = output.decode().splitlines()
    assert line.startswith("hlstrio listening on http://127.0.0.1:"), line
    log_text = stderr.read_text()
    assert "listening" not in log_text and "Running on" not in log_text, log_text  # hypercorn's
    (empty_line,) = [entry for entry in log_text.splitlines() if "library is empty" in entry]
    assert str(empty) in empty_line and ".mkv" in empty_line and ".mp4" in empty_line
