"""Helpers for tests that drive a real server: harness, leak checks, ffmpeg client, decoding."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio

from hlstrio._server import RunningServer


@dataclass
class Harness:
    url: str
    client: httpx.AsyncClient
    running: RunningServer
    temp_dir: Path
    headers: dict[str, str] = field(default_factory=dict)

    def media_id(self, relpath: str) -> str:
        for item in self.running.services.library.items():
            if item.path == relpath:
                return item.id
        raise KeyError(relpath)

    async def create(self, relpath: str, expect: int | None = 201, **body: Any) -> dict[str, Any]:
        body.setdefault("media_id", self.media_id(relpath))
        response = await self.client.post("/api/v1/sessions", json=body, headers=self.headers)
        if expect is not None:
            assert response.status_code == expect, response.text
        data: dict[str, Any] = response.json()
        return data


def session_processes(temp_dir: Path) -> list[int]:
    """Pids of live processes whose command line mentions `temp_dir` (our ffmpeg encoders)."""
    needle = str(temp_dir).encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmdline and state != b"Z":
            pids.append(int(entry))
    return pids


async def wait_until(predicate: Callable[[], Any], timeout: float = 10.0) -> None:
    """Wait for a condition with a deadline (polling the condition, not sleeping blindly)."""
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.02)


def hls_client_argv(ffmpeg: str, url: str, out: Path) -> list[str]:
    """ffmpeg as the HLS client: read the master playlist and copy every segment to one file."""
    return [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", url,
            "-map", "0", "-c", "copy", str(out)]  # fmt: skip


async def play_with_ffmpeg(ffmpeg: str, url: str, out: Path) -> Path:
    result = await trio.run_process(
        hls_client_argv(ffmpeg, url, out),
        capture_stderr=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return out


@dataclass(frozen=True)
class Decoded:
    video_frames: int
    video_seconds: float  # first frame start to last frame end
    audio_seconds: float
    first_video_time: float | None
    first_audio_time: float | None


def decode(path: Path | bytes) -> Decoded:
    """Decode every frame with PyAV and measure the streams' real extents."""
    import io

    import av

    source: Any = io.BytesIO(path) if isinstance(path, bytes) else str(path)
    video_times: list[float] = []
    audio_start: float | None = None
    audio_end = 0.0
    with av.open(source) as container:
        streams = [s for s in container.streams if s.type in ("video", "audio")]
        fps = 0.0
        for frame in container.decode(*streams):
            if frame.time is None:
                continue
            if isinstance(frame, av.VideoFrame):
                video_times.append(frame.time)
                fps = float(container.streams.video[0].average_rate or 0)
            else:
                audio_start = frame.time if audio_start is None else min(audio_start, frame.time)
                audio_end = max(audio_end, frame.time + frame.samples / frame.sample_rate)
    frame_duration = 1.0 / fps if fps else 0.0
    video_seconds = (max(video_times) - min(video_times) + frame_duration) if video_times else 0.0
    return Decoded(
        video_frames=len(video_times),
        video_seconds=video_seconds,
        audio_seconds=(audio_end - audio_start) if audio_start is not None else 0.0,
        first_video_time=min(video_times) if video_times else None,
        first_audio_time=audio_start,
    )


def fake_ffmpeg(directory: Path, behaviour: str) -> str:
    """A stand-in encoder for failures real ffmpeg will not produce on demand.

    "stuck": never writes a segment (a slow encoder); "crash": fails at once with an ffmpeg-like
    message. It keeps its argv (which names the session dir), so leak checks can find it.
    """
    import sys

    body = {
        "stuck": "import time\ntime.sleep(300)\n",
        "crash": "import sys\nsys.stderr.write('Invalid data found when processing input\\n')\n"
        "sys.exit(1)\n",
    }[behaviour]
    path = directory / f"{behaviour}-ffmpeg"
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return str(path)


@dataclass(frozen=True)
class Span:
    """Presentation-time extent of one segment's streams, read from packets (no decoding)."""

    video_start: float
    video_end: float  # last frame's pts + its duration
    audio_start: float
    audio_end: float


def span(data: bytes) -> Span:
    import io

    import av

    with av.open(io.BytesIO(data)) as container:
        v_start = a_start = float("inf")
        v_end = a_end = float("-inf")
        for packet in container.demux():
            if packet.pts is None or packet.time_base is None or packet.size == 0:
                continue
            start = float(packet.pts * packet.time_base)
            end = start + float((packet.duration or 0) * packet.time_base)
            if packet.stream.type == "video":
                v_start, v_end = min(v_start, start), max(v_end, end)
            elif packet.stream.type == "audio":
                a_start, a_end = min(a_start, start), max(a_end, end)
    return Span(v_start, v_end, a_start, a_end)


def process_state(pid: int) -> tuple[str, int]:
    """(state letter, utime + stime in clock ticks) of a live process, from /proc."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return fields[0].decode(), int(fields[11]) + int(fields[12])


HLSTRIO = [sys.executable, "-m", "hlstrio"]


async def start_cli_server(
    media_dir: Path, tmp_path: Path, config: str = ""
) -> tuple[trio.Process, str, Path]:
    temp_dir = tmp_path / "sessions"
    cfg = tmp_path / "hlstrio.toml"
    cfg.write_text(
        f'temp_dir = "{temp_dir}"\ncache_dir = "{tmp_path / "cache"}"\nsegment_seconds = 2\n'
        + config
    )
    process = await trio.lowlevel.open_process(
        [*HLSTRIO, "serve", str(media_dir), "--port", "0", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    buffer = b""
    with trio.fail_after(60):  # generous: a loaded 2-core CI machine starts Python slowly
        while b"listening on " not in buffer or not buffer.endswith(b"\n"):
            chunk = await process.stdout.receive_some(4096)
            assert chunk, "server exited before listening"
            buffer += chunk
    url = buffer.split(b"listening on ", 1)[1].split()[0].decode()
    return process, url, temp_dir


def make_clips(
    root: Path, ffmpeg: str, clips: Mapping[str, str], seconds: float, timeout: float = 120
) -> Path:
    """Write each `name: "ffmpeg input and codec args"` clip under `root`, `seconds` long."""
    for name, args in clips.items():
        argv = [ffmpeg, "-nostdin", "-v", "error", "-y", *args.split()]
        subprocess.run(
            [*argv, "-t", str(seconds), str(root / name)],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
    return root
