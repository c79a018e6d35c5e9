"""Shared bench plumbing: generated media, a server subprocess, the results table."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hlstrio._ffmpeg import ffmpeg_exe
from hlstrio.media import ClipKind, generate_clip

WORK = Path(os.environ.get("HLSTRIO_BENCH_DIR", "/tmp/hlstrio-bench"))


@dataclass(frozen=True)
class Result:
    figure: str
    value: float
    baseline: float
    unit: str
    target: str
    command: str
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")


def media(name: str, kind: ClipKind, seconds: float, width: int, height: int) -> Path:
    """Generate a bench clip once (kept between runs under WORK/media)."""
    path = WORK / "media" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        generate_clip(path, kind, ffmpeg=ffmpeg_exe(), seconds=seconds, width=width, height=height)
    return path


@contextmanager
def server(media_dir: Path, config: str = "") -> Iterator[str]:
    """`python -m hlstrio serve` on a free loopback port; yields its base URL."""
    cfg = WORK / "bench.toml"
    cfg.write_text(f'temp_dir = "{WORK / "sessions"}"\ncache_dir = "{WORK / "cache"}"\n' + config)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hlstrio",
            "serve",
            str(media_dir),
            "--port",
            "0",
            "--config",
            str(cfg),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"server did not start: {line!r}")
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start
