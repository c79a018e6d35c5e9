"""Synthetic media: the demo library and the test suite's clips come from the same generator.

Everything is made from ffmpeg's lavfi sources, so no media files ship with the package and
tests exercise exactly the codecs and container layouts the demo shows.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

ClipKind = Literal["h264_aac_mp4", "h264_aac_mkv", "hevc_opus_mkv", "two_audio_mp4"]

# Bump when the demo clips change, so existing caches are regenerated next to the old ones.
_DEMO_DIR = "demo-v1"
_DEMO_CLIPS: tuple[tuple[str, ClipKind], ...] = (
    ("Test Pattern (H264, AAC).mp4", "h264_aac_mp4"),
    ("Test Pattern (HEVC, Opus).mkv", "hevc_opus_mkv"),
    ("Two Audio Tracks (English, French).mp4", "two_audio_mp4"),
)
_DEMO_SECONDS = 30.0
_DEMO_SIZE = (640, 360)
_FPS = 24

_H264 = [
    # B-frames and scene-cut keyframes stay at x264's defaults: real files have both.
    *("-c:v", "libx264", "-preset", "veryfast", "-g", str(2 * _FPS), "-pix_fmt", "yuv420p"),
]
_HEVC = [
    *("-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"),
    *("-g", str(2 * _FPS), "-pix_fmt", "yuv420p"),
]
_AAC = ["-c:a", "aac", "-b:a", "128k", "-ac", "2"]
_OPUS = ["-c:a", "libopus", "-b:a", "96k", "-ac", "2"]
_MP4 = ["-f", "mp4", "-movflags", "+faststart"]
_MKV = ["-f", "matroska"]


def _clip_args(kind: ClipKind, seconds: float, width: int, height: int) -> list[str]:
    """ffmpeg arguments (after the global options, before the output) for one kind of clip."""
    video = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={_FPS}"]

    def tone(hz: int) -> list[str]:
        return ["-f", "lavfi", "-i", f"sine=frequency={hz}:sample_rate=48000"]

    duration = ["-t", f"{seconds:.3f}"]
    if kind == "h264_aac_mp4":
        return [*video, *tone(440), "-map", "0:v", "-map", "1:a", *_H264, *_AAC, *duration, *_MP4]
    if kind == "h264_aac_mkv":
        return [*video, *tone(440), "-map", "0:v", "-map", "1:a", *_H264, *_AAC, *duration, *_MKV]
    if kind == "hevc_opus_mkv":
        return [*video, *tone(330), "-map", "0:v", "-map", "1:a", *_HEVC, *_OPUS, *duration, *_MKV]
    if kind == "two_audio_mp4":
        return [
            *video,
            *tone(440),
            *tone(660),
            *("-map", "0:v", "-map", "1:a", "-map", "2:a"),
            *_H264,
            *_AAC,
            *("-metadata:s:a:0", "language=eng", "-metadata:s:a:0", "title=English"),
            *("-metadata:s:a:1", "language=fra", "-metadata:s:a:1", "title=Français"),
            *duration,
            *_MP4,
        ]
    raise ValueError(f"unknown clip kind {kind!r}")


def generate_clip(
    dest: Path, kind: ClipKind, *, ffmpeg: str, seconds: float, width: int, height: int
) -> Path:
    """Encode a synthetic test clip to `dest` and return it. Blocking: runs ffmpeg to the end.

    The clip is written under a hidden temporary name in the same directory and renamed into
    place, so neither a library scan nor a concurrent caller ever sees a half-written file.
    """
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError("width and height must be positive and even (yuv420p)")
    args = _clip_args(kind, seconds, width, height)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    try:
        cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args, tmp]
        try:
            proc = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=60 + 20 * seconds,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"ffmpeg timed out generating {dest.name}") from exc
        except OSError as exc:
            raise RuntimeError(f"cannot run ffmpeg {ffmpeg!r}: {exc}") from exc
        if proc.returncode != 0:
            tail = proc.stderr.decode("utf-8", "replace").strip()[-2000:]
            raise RuntimeError(f"ffmpeg failed generating {dest.name} ({proc.returncode}): {tail}")
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return dest


def default_cache_dir() -> Path:
    """Where generated files live: $XDG_CACHE_HOME/hlstrio, or ~/.cache/hlstrio."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says to ignore relative values.
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "hlstrio"


def ensure_demo_library(cache_dir: Path, *, ffmpeg: str) -> Path:
    """Generate the demo clips under `cache_dir` once, and return the directory holding them.

    Blocking. Clips that already exist are kept, so only the first run pays (seconds, not
    minutes: three 30 s 640x360 clips encode in about 7 s on two cores).
    """
    demo = cache_dir / _DEMO_DIR
    width, height = _DEMO_SIZE
    for name, kind in _DEMO_CLIPS:
        dest = demo / name
        if not dest.exists():
            generate_clip(
                dest, kind, ffmpeg=ffmpeg, seconds=_DEMO_SECONDS, width=width, height=height
            )
    return demo
