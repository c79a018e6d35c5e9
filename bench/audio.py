"""Audio rendition cuts: one 6 s segment COPY vs ENCODE (5.1 AC-3 -> stereo AAC) vs the video
remux cut of the same segment, in the same run.

All three are in-process and stateless (open the file, seek, demux, mux into memory; ENCODE
also decodes the AC-3, downmixes and encodes AAC with PyAV's libav). Rounds alternate so noise
from other work on the machine hits every side alike; the median of each side is reported.
ENCODE's CPU time (process time, which other processes' load does not inflate) is also given
as a fraction of the 6 s it makes: the share of one core a listener costs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from hlstrio.media import probe
from hlstrio.streaming._audio import AacEncoding, cut_audio_ts
from hlstrio.streaming._remux import cut_video_ts
from hlstrio.streaming._timeline import keyframe_timeline

from ._common import Result, media

ROUNDS = 20
SEGMENT = 6.0
COMMAND = "nox -s bench -- audio"


def _timed(fn: Callable[[], bytes]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def run() -> list[Result]:
    # H.264 720p + stereo AAC + 5.1 AC-3 (384 kb/s) in Matroska, 2 s GOPs.
    clip = media("audio/multi-720p.mkv", "multi_track_mkv", 20, 1280, 720)
    info = probe(clip)
    assert info.video is not None and info.video_time_base is not None
    assert info.video_end_pts is not None
    ac3 = next(a for a in info.audio if a.codec == "ac3" and a.channels == 6)
    timeline = keyframe_timeline(
        info.keyframe_pts, info.video_time_base, info.video_end_pts, SEGMENT
    )
    index = 1 if len(timeline) > 2 else 0  # mid-file: every cut has to seek
    segment = timeline[index]
    start, end = segment.start, segment.start + segment.duration
    video = info.video.index

    def copy() -> bytes:
        return cut_audio_ts(clip, ac3.index, start, end, encode=None, is_last=False)

    def encode() -> bytes:
        return cut_audio_ts(clip, ac3.index, start, end, encode=AacEncoding(), is_last=False)

    def remux() -> bytes:
        return cut_video_ts(clip, segment, video)

    cuts = {"copy": copy, "encode": encode, "remux": remux}
    wall: dict[str, list[float]] = {name: [] for name in cuts}
    cpu: dict[str, list[float]] = {name: [] for name in cuts}
    for fn in cuts.values():
        fn()  # warm the page cache and PyAV
    for _ in range(ROUNDS):
        for name, fn in cuts.items():
            w, c = _timed(fn)
            wall[name].append(w)
            cpu[name].append(c)
    ms = {name: statistics.median(v) * 1000 for name, v in wall.items()}
    cpu_ms = {name: statistics.median(v) * 1000 for name, v in cpu.items()}
    seconds = segment.duration
    note = (
        f"{seconds:.1f} s segment {index} of a 20 s 720p H.264 + 5.1 AC-3 384k Matroska clip,"
        f" {ROUNDS} rounds"
    )
    return [
        Result(
            "audio ENCODE cut (5.1 AC-3 -> stereo AAC 128k)",
            ms["encode"],
            ms["copy"],
            "ms median; baseline: COPY of the same AC-3 segment",
            "",
            COMMAND,
            note,
        ),
        Result(
            "audio ENCODE CPU per second of audio",
            cpu_ms["encode"] / seconds,
            1000.0,
            "CPU ms per s; baseline: real time (ratio = share of a core)",
            "<= 0.10",
            COMMAND,
            note,
        ),
        Result(
            "audio COPY cut (5.1 AC-3)",
            ms["copy"],
            ms["remux"],
            "ms median; baseline: video remux cut of the same segment",
            "",
            COMMAND,
            note,
        ),
        Result(
            "audio ENCODE cut vs video remux cut",
            ms["encode"],
            ms["remux"],
            "ms median; baseline: video remux cut of the same segment",
            "",
            COMMAND,
            note,
        ),
    ]


if __name__ == "__main__":
    for r in run():
        print(f"{r.figure}: {r.value:.3f} vs {r.baseline:.3f} {r.unit} (ratio {r.ratio:.3f})")
