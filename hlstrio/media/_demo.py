"""Synthetic media: the demo library and the test suite's clips come from the same generator.

Everything is made from ffmpeg's lavfi sources and from small subtitle files written here (SRT
text, a PGS bitmap stream built byte by byte), so no media files ship with the package and
tests exercise exactly the codecs and container layouts the demo shows.
"""

from __future__ import annotations

import contextlib
import os
import struct
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, get_args

ClipKind = Literal[
    "h264_aac_mp4", "h264_aac_mkv", "hevc_opus_mkv", "two_audio_mp4", "multi_track_mkv"
]
_KINDS = frozenset(get_args(ClipKind))

# Bump when the demo clips change, so existing caches are regenerated next to the old ones.
_DEMO_DIR = "demo-v2"
_DEMO_CLIPS: tuple[tuple[str, ClipKind], ...] = (
    ("Test Pattern (H264, AAC).mp4", "h264_aac_mp4"),
    ("Test Pattern (HEVC, Opus).mkv", "hevc_opus_mkv"),
    ("Two Audio Tracks (English, French).mp4", "two_audio_mp4"),
    ("Multiple Tracks (English, French Surround, Subtitles).mkv", "multi_track_mkv"),
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


def _clip_args(
    kind: ClipKind, seconds: float, width: int, height: int, inputs: Sequence[str] = ()
) -> list[str]:
    """ffmpeg arguments (after the global options, before the output) for one kind of clip.

    `inputs` are the paths of the files `_clip_inputs` made for this kind, in its order.
    """
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
    if kind == "multi_track_mkv":
        srt, sup = inputs
        return [
            *video,
            *tone(440),
            *tone(660),
            *("-f", "srt", "-i", srt, "-f", "sup", "-i", sup),
            *("-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3:s", "-map", "4:s"),
            *_H264,
            *("-c:a:0", "aac", "-b:a:0", "128k", "-ac:a:0", "2"),
            *("-c:a:1", "ac3", "-b:a:1", "384k", "-ac:a:1", "6"),
            *("-c:s:0", "srt", "-c:s:1", "copy"),
            *("-metadata:s:a:0", "language=eng", "-metadata:s:a:0", "title=English"),
            *("-metadata:s:a:1", "language=fre", "-metadata:s:a:1", "title=Français 5.1"),
            *("-metadata:s:s:0", "language=eng", "-metadata:s:s:0", "title=English"),
            *("-metadata:s:s:1", "language=eng", "-metadata:s:s:1", "title=English (PGS)"),
            *("-disposition:a:0", "default", "-disposition:a:1", "0"),
            *("-disposition:s:0", "0", "-disposition:s:1", "0"),
            *duration,
            *_MKV,
        ]
    raise ValueError(f"unknown clip kind {kind!r}")


# --- Subtitles for multi_track_mkv -------------------------------------------------------------

# The forced French sidecar beside the clip: `<stem>.fr.forced.srt` (language and "forced" in
# the name, as Plex, Jellyfin and Kodi read sidecar names).
FORCED_SIDECAR_SUFFIX = ".fr.forced.srt"
_ENGLISH_LINES = (
    "Subtitle {n}: the test pattern",
    "<i>An italic line, {n}</i>",
    "Two lines,\nof English {n}",
)
_FRENCH_LINES = ("[Panneau] Boulangerie n°{n}", "[Écran] « Déjà vu » {n}")


def _cue_times(
    seconds: float, first: float, every: float, length: float
) -> list[tuple[float, float]]:
    """Cue (start, end) times inside [0, seconds): at least one, whatever the clip length."""
    times = []
    start = min(first, seconds / 4)
    while start < seconds:
        times.append((start, min(start + length, seconds)))
        start += every
    return times


def _srt(cues: Sequence[tuple[float, float, str]]) -> bytes:
    def stamp(t: float) -> str:
        ms = round(t * 1000)
        return (
            f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"
        )

    blocks = [f"{n}\n{stamp(a)} --> {stamp(b)}\n{text}\n" for n, (a, b, text) in enumerate(cues, 1)]
    return "\n".join(blocks).encode("utf-8")


def english_cues(seconds: float) -> list[tuple[float, float, str]]:
    """The embedded English track: (start, end, SRT text), every 4 s from 1 s, 2.5 s each."""
    return [
        (a, b, _ENGLISH_LINES[n % len(_ENGLISH_LINES)].format(n=n + 1))
        for n, (a, b) in enumerate(_cue_times(seconds, 1.0, 4.0, 2.5))
    ]


def french_forced_cues(seconds: float) -> list[tuple[float, float, str]]:
    """The forced French sidecar: only signs (what forced subtitles are for), every 10 s."""
    return [
        (a, b, _FRENCH_LINES[n % len(_FRENCH_LINES)].format(n=n + 1))
        for n, (a, b) in enumerate(_cue_times(seconds, 2.0, 10.0, 3.0))
    ]


def _pgs(cues: Sequence[tuple[float, float, str]], width: int, height: int) -> bytes:
    """A PGS (.sup) stream: for each cue a box (white border, translucent fill) at the bottom.

    ffmpeg cannot render text to bitmap subtitles, so the display sets are written here:
    each cue is PCS + WDS + PDS + ODS + END at its start, and PCS (no object) + WDS + END at
    its end, which is how Blu-ray clears a subtitle (segment layouts from the HDMV PG spec,
    as libavcodec's pgssubdec reads them).
    """
    box_w, box_h = max(8, width // 2), max(4, height // 8)
    x, y = (width - box_w) // 2, max(0, height - box_h - height // 20)
    rle = b"".join(
        _rle_line([1] * box_w if row in (0, box_h - 1) else [1, *([2] * (box_w - 2)), 1])
        for row in range(box_h)
    )
    window = struct.pack(">BBHHHH", 1, 0, x, y, box_w, box_h)
    # Palette entries: id, Y, Cr, Cb, alpha (BT.601 limited range).
    palette = struct.pack(">BB", 0, 0) + bytes([0, 16, 128, 128, 0, 1, 235, 128, 128, 255])
    palette += bytes([2, 16, 128, 128, 160])
    obj = struct.pack(">HBB", 0, 0, 0xC0) + (len(rle) + 4).to_bytes(3, "big")
    obj += struct.pack(">HH", box_w, box_h) + rle
    if len(obj) > 0xFFFF:
        raise ValueError("PGS object too large for one segment")
    # (time, shown): an empty display set at 0 first, since ffmpeg moves an input's first
    # timestamp to 0 and every bitmap would otherwise show (first cue start) too early.
    events = [(0.0, False)]
    for start, end, _text in cues:
        events += [(start, True), (end, False)]
    out = bytearray()
    for composition, (at, shown) in enumerate(events):
        # Epoch start with the object, or a normal composition without any (a clear).
        state = 0x80 if shown else 0x00
        pcs = struct.pack(">HHBHBBBB", width, height, 0x10, composition, state, 0, 0, int(shown))
        segments = [(0x16, pcs), (0x17, window)]
        if shown:
            segments[0] = (0x16, pcs + struct.pack(">HBBHH", 0, 0, 0, x, y))
            segments += [(0x14, palette), (0x15, obj)]
        segments.append((0x80, b""))  # END
        pts = round(at * 90_000)
        for kind, data in segments:
            out += b"PG" + struct.pack(">IIBH", pts, 0, kind, len(data)) + data
    return bytes(out)


def _rle_line(pixels: Sequence[int]) -> bytes:
    """One line of PGS run-length code, ending with the 00 00 end-of-line mark."""
    out = bytearray()
    i = 0
    while i < len(pixels):
        colour = pixels[i]
        run = 1
        while i + run < len(pixels) and pixels[i + run] == colour and run < 0x3FFF:
            run += 1
        if colour and run < 3:
            out += bytes([colour]) * run  # a non-zero byte is one pixel of that colour
        elif colour == 0:
            out += b"\0" + (bytes([run]) if run < 64 else bytes([0x40 | run >> 8, run & 0xFF]))
        elif run < 64:
            out += bytes([0, 0x80 | run, colour])
        else:
            out += bytes([0, 0xC0 | run >> 8, run & 0xFF, colour])
        i += run
    return bytes(out + b"\0\0")


def _clip_inputs(
    kind: ClipKind, seconds: float, width: int, height: int
) -> list[tuple[str, bytes]]:
    """Files ffmpeg reads besides its lavfi sources: (suffix, content), in `_clip_args` order."""
    if kind != "multi_track_mkv":
        return []
    english = english_cues(seconds)
    return [(".srt", _srt(english)), (".sup", _pgs(english, width, height))]


def _sidecars(kind: ClipKind, seconds: float) -> list[tuple[str, bytes]]:
    """Files written next to the clip: (suffix replacing the clip's extension, content)."""
    if kind != "multi_track_mkv":
        return []
    return [(FORCED_SIDECAR_SUFFIX, _srt(french_forced_cues(seconds)))]


def generate_clip(
    dest: Path, kind: ClipKind, *, ffmpeg: str, seconds: float, width: int, height: int
) -> Path:
    """Encode a synthetic test clip to `dest` and return it. Blocking: runs ffmpeg to the end.

    The clip is written under a hidden temporary name in the same directory and renamed into
    place, so neither a library scan nor a concurrent caller ever sees a half-written file.
    Its sidecar files (multi_track_mkv: `<stem>.fr.forced.srt`) are written the same way, and
    before the clip appears, so whoever sees the clip sees its sidecars.
    """
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError("width and height must be positive and even (yuv420p)")
    if kind not in _KINDS:
        raise ValueError(f"unknown clip kind {kind!r}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    temporaries: list[str] = []

    def temporary(name: str, suffix: str, data: bytes | None = None) -> str:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{name}.", suffix=suffix)
        temporaries.append(tmp)
        with os.fdopen(fd, "wb") as file:
            if data is not None:
                file.write(data)
        return tmp

    try:
        inputs = [
            temporary(dest.name, suffix, data)
            for suffix, data in _clip_inputs(kind, seconds, width, height)
        ]
        args = _clip_args(kind, seconds, width, height, inputs)
        tmp = temporary(dest.name, ".part")
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
        for suffix, data in _sidecars(kind, seconds):
            sidecar = dest.with_name(dest.stem + suffix)
            os.replace(temporary(sidecar.name, ".part", data), sidecar)
        os.replace(tmp, dest)
    finally:
        for name in temporaries:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
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
