"""A live hlstrio server in a subprocess, its media, and what it leaves in /proc and on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hlstrio._ffmpeg import ffmpeg_exe
from hlstrio.media import ClipKind, generate_clip


@dataclass(frozen=True)
class Clip:
    name: str
    kind: ClipKind
    seconds: float
    width: int
    height: int


def make_media(directory: Path, clips: list[Clip]) -> Path:
    """Generate the clips once (kept between runs: generation is the slow part)."""
    directory.mkdir(parents=True, exist_ok=True)
    ffmpeg = ffmpeg_exe()
    for clip in clips:
        dest = directory / clip.name
        stamp = directory / f".{clip.name}.json"
        wanted = json.dumps([clip.kind, clip.seconds, clip.width, clip.height])
        if dest.exists() and stamp.exists() and stamp.read_text() == wanted:
            continue
        print(f"generating {clip.name} ({clip.seconds:.0f} s {clip.width}x{clip.height})")
        generate_clip(
            dest,
            clip.kind,
            ffmpeg=ffmpeg,
            seconds=clip.seconds,
            width=clip.width,
            height=clip.height,
        )
        stamp.write_text(wanted)
    return directory


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(value)


def write_config(path: Path, settings: Mapping[str, Any], users: Mapping[str, str]) -> Path:
    lines = [f"{key} = {_toml(value)}" for key, value in settings.items()]
    for user, token in users.items():
        lines += ["", f"[users.{user}]", f"token = {json.dumps(token)}"]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    url: str
    temp_dir: Path
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (a graceful stop) and wait; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise RuntimeError(f"server did not stop within {timeout} s") from None


@contextmanager
def live_server(
    work: Path,
    media: list[Path],
    settings: Mapping[str, Any],
    users: Mapping[str, str] | None = None,
    startup: float = 60.0,
) -> Iterator[LiveServer]:
    """`python -m hlstrio serve` on 127.0.0.1, port 0; yields once it prints its URL."""
    work.mkdir(parents=True, exist_ok=True)
    temp_dir = Path(settings.get("temp_dir", work / "sessions"))
    values = {"temp_dir": temp_dir, "cache_dir": work / "cache", **settings}
    config = write_config(work / "hlstrio.toml", values, users or {})
    log = work / "server.log"
    argv = [sys.executable, "-m", "hlstrio", "serve", *map(str, media)]
    argv += ["--host", "127.0.0.1", "--port", "0", "--config", str(config)]
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=log_file, stdin=subprocess.DEVNULL
        )
    assert process.stdout is not None
    deadline = time.monotonic() + startup
    url = None
    while url is None:
        line = process.stdout.readline().decode(errors="replace")
        if not line:
            raise RuntimeError(f"server exited ({process.wait()}); see {log}")
        if "listening on " in line:
            url = line.rsplit("listening on ", 1)[1].strip()
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"server did not start within {startup} s; see {log}")
    # Keep draining stdout so the server never blocks on a full pipe.
    os.set_blocking(process.stdout.fileno(), False)
    server = LiveServer(process, url, temp_dir, log)
    try:
        yield server
    finally:
        if process.poll() is None:
            server.stop()


# --- what a server leaves behind ----------------------------------------------------------------


def encoder_pids(temp_dir: Path) -> dict[int, str]:
    """Live processes whose command line names `temp_dir` (the encoders): pid -> cmdline."""
    needle = str(temp_dir)
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        if needle.encode() in cmdline and stat.rsplit(b")", 1)[1].split()[0] != b"Z":
            found[int(entry)] = cmdline.decode(errors="replace")
    return found


def session_dirs(temp_dir: Path) -> list[str]:
    try:
        return sorted(p.name for p in temp_dir.iterdir())
    except FileNotFoundError:
        return []


def process_usage(pid: int) -> tuple[float, int, int]:
    """(CPU seconds, RSS bytes, open fds) of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return cpu, rss, fds
