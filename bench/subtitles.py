"""Subtitles: time to a WebVTT segment of an embedded SRT track in a two-hour MKV, cold.

Target: the subtitle playlist and its first cue answer in <= 1 s cold (Jellyfin makes users
wait 60 s to 10 min for a whole-track extraction first). The playlist is the video timeline's
(pure, no I/O); what costs is reading cues, so this times `read_cues` + `webvtt_segment` for
(a) the first segment and (b) one near the end, beside (c) the baseline: ffmpeg extracting the
whole track (`ffmpeg -i film.mkv -map 0:s:0 out.vtt`), in alternating rounds of the same run.
Cold: before every timed call the film's pages are dropped from the page cache
(posix_fadvise DONTNEED on that file only, nothing system-wide).

The film is a stand-in scaled down in resolution, not in duration or density: 2 h of 64x36
H.264 at 24 fps with stereo AAC (every video frame and audio packet of a real film, so the
same number of Matroska clusters, blocks and cues to walk) and an SRT cue every 4 s. Made once
by concatenating a generated 10-minute clip (seconds, not minutes).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import av

from hlstrio._ffmpeg import ffmpeg_exe
from hlstrio.media._subtitles import read_cues
from hlstrio.streaming._remux import TS_OFFSET
from hlstrio.streaming._webvtt import webvtt_segment

from ._common import WORK, Result, media

FILM_SECONDS = 7200
UNIT_SECONDS = 600
SEGMENT_SECONDS = 6.0
ROUNDS = 5
TICKS_AT_ZERO = int(TS_OFFSET * 90_000)


def _stamp(ms: int) -> str:
    hours, minutes, seconds = ms // 3_600_000, ms // 60_000 % 60, ms // 1000 % 60
    return f"{hours:02d}:{minutes:02d}:{seconds:02d},{ms % 1000:03d}"


def _srt(seconds: float) -> str:
    blocks = []
    for n, start in enumerate(range(1, int(seconds) - 4, 4), 1):
        a, b = start * 1000, start * 1000 + 2500
        blocks.append(f"{n}\n{_stamp(a)} --> {_stamp(b)}\nLine {n} of the film\n")
    return "\n".join(blocks)


def film() -> Path:
    """The two-hour stand-in with video, audio and an SRT track (kept under WORK/media)."""
    out = WORK / "media" / "subtitles" / "two-hours-srt.mkv"
    if out.exists():
        return out
    unit = media("subtitles/unit-10min-64x36.mkv", "h264_aac_mkv", UNIT_SECONDS, 64, 36)
    listing = out.with_suffix(".txt")
    listing.write_text(f"file '{unit}'\n" * (FILM_SECONDS // UNIT_SECONDS))
    srt = out.with_suffix(".srt")
    srt.write_text(_srt(FILM_SECONDS))
    part = out.with_suffix(".part.mkv")
    subprocess.run(
        [
            *(ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y"),
            *("-f", "concat", "-safe", "0", "-i", str(listing), "-i", str(srt)),
            *("-map", "0:v", "-map", "0:a", "-map", "1:s", "-c", "copy", "-c:s", "srt"),
            *("-metadata:s:s:0", "language=eng", str(part)),
        ],
        check=True,
    )
    os.replace(part, out)
    return out


def _evict(path: Path) -> None:
    """Drop this file's pages from the page cache, so the next read comes from the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _read_bytes() -> int:
    """Bytes this process has read so far (read syscalls, /proc/self/io rchar)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def _ours(path: Path, stream_index: int, start: float) -> tuple[float, int, int]:
    """Seconds to one WebVTT segment at `start`, bytes read, cues in it."""
    _evict(path)
    before = _read_bytes()
    began = time.perf_counter()
    end = start + SEGMENT_SECONDS
    text = webvtt_segment(read_cues(path, stream_index, start, end), start, end, TICKS_AT_ZERO)
    elapsed = time.perf_counter() - began
    return elapsed, _read_bytes() - before, text.count(" --> ")


def _baseline(path: Path) -> float:
    with tempfile.TemporaryDirectory(dir=WORK) as out:
        _evict(path)
        began = time.perf_counter()
        subprocess.run(
            [
                *(ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-i", str(path)),
                *("-map", "0:s:0", str(Path(out) / "out.vtt")),
            ],
            check=True,
        )
        return time.perf_counter() - began


def run() -> list[Result]:
    path = film()
    with av.open(str(path)) as container:
        stream_index = container.streams.subtitles[0].index
    near_end = FILM_SECONDS - 2 * SEGMENT_SECONDS
    first: list[float] = []
    last: list[float] = []
    whole: list[float] = []
    read_first = read_last = cues_first = cues_last = 0
    for _ in range(ROUNDS):
        seconds, read_first, cues_first = _ours(path, stream_index, 0.0)
        first.append(seconds)
        whole.append(_baseline(path))
        seconds, read_last, cues_last = _ours(path, stream_index, near_end)
        last.append(seconds)
    baseline = statistics.median(whole)
    size_mb = path.stat().st_size / 1e6
    note = (
        f"2 h 64x36 24 fps H.264 + AAC + SRT MKV, {size_mb:.0f} MB; median of {ROUNDS} cold "
        f"rounds (page cache dropped for the file); baseline: ffmpeg -i film.mkv -map 0:s:0 "
        "out.vtt"
    )
    return [
        Result(
            "subtitles: first WebVTT segment of an embedded SRT, cold (read_cues + render)",
            statistics.median(first),
            baseline,
            "s; baseline: whole-track extraction",
            "<= 1 s",
            "nox -s bench -- subtitles",
            f"{note}; read {read_first / 1e6:.1f} MB, {cues_first} cues",
        ),
        Result(
            "subtitles: WebVTT segment 12 s before the end of a 2 h MKV, cold",
            statistics.median(last),
            baseline,
            "s; baseline: whole-track extraction",
            "<= 1 s",
            "nox -s bench -- subtitles",
            f"{note}; read {read_last / 1e6:.1f} MB (30 s lookback), {cues_last} cues",
        ),
    ]


if __name__ == "__main__":
    for result in run():
        print(result)
