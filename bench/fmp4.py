"""fMP4 cut vs MPEG-TS cut of the same 6 s segment of a 720p H.264 clip, in the same run.

Both are in-process and stateless (open the file, seek, demux, mux into memory); the fMP4 one
writes moof/mdat itself (`_mp4box.fragment`) instead of going through a muxer, and rebuilds
nothing per segment when the rendition's init segment is passed in. Rounds alternate so noise
from other work on the machine hits both sides alike; the median of each side is reported.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from hlstrio.media import probe
from hlstrio.streaming._fmp4 import init_segment, media_segment
from hlstrio.streaming._remux import cut_video_ts
from hlstrio.streaming._timeline import keyframe_timeline

from ._common import Result, media

ROUNDS = 30
SEGMENT = 6.0
COMMAND = "nox -s bench -- fmp4"


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _timed(fn: Callable[[], bytes]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run() -> list[Result]:
    clip = media("p1/clip-720p.mp4", "h264_aac_mp4", 12, 1280, 720)  # shared with segments
    info = probe(clip)
    assert info.video is not None and info.video_time_base is not None
    assert info.video_end_pts is not None
    timeline = keyframe_timeline(
        info.keyframe_pts, info.video_time_base, info.video_end_pts, SEGMENT
    )
    index = 1 if len(timeline) > 1 else 0  # mid-file: the cut has to seek
    segment = timeline[index]
    video = info.video.index
    init = init_segment(clip, video)

    def fmp4() -> bytes:
        return media_segment(clip, video, segment, index + 1, init=init)

    def fmp4_no_init() -> bytes:
        return media_segment(clip, video, segment, index + 1)

    def ts() -> bytes:
        return cut_video_ts(clip, segment, video)

    def make_init() -> bytes:
        return init_segment(clip, video)

    sides: dict[str, list[float]] = {"fmp4": [], "fmp4_no_init": [], "ts": [], "init": []}
    cuts = {"fmp4": fmp4, "fmp4_no_init": fmp4_no_init, "ts": ts, "init": make_init}
    for fn in cuts.values():
        fn()  # warm the page cache and PyAV
    for _ in range(ROUNDS):
        for name, fn in cuts.items():
            sides[name].append(_timed(fn))
    ts_ms = _median_ms(sides["ts"])
    fmp4_bytes, ts_bytes = len(fmp4()), len(ts())
    note = (
        f"{segment.duration:.1f} s segment {index} of a 12 s 1280x720 H.264 clip, {ROUNDS} rounds"
    )
    return [
        Result(
            "fMP4 video segment cut (init passed in)",
            _median_ms(sides["fmp4"]),
            ts_ms,
            "ms median; baseline: MPEG-TS cut of the same segment",
            "<= TS cut",
            COMMAND,
            note,
        ),
        Result(
            "fMP4 video segment cut (init rebuilt per call)",
            _median_ms(sides["fmp4_no_init"]),
            ts_ms,
            "ms median; baseline: MPEG-TS cut of the same segment",
            "",
            COMMAND,
            note,
        ),
        Result(
            "fMP4 init segment (once per rendition)",
            _median_ms(sides["init"]),
            ts_ms,
            "ms median; baseline: MPEG-TS cut of one segment",
            "",
            COMMAND,
            note,
        ),
        Result(
            "fMP4 segment size",
            fmp4_bytes,
            ts_bytes,
            "bytes; baseline: the MPEG-TS segment",
            "",
            COMMAND,
            "same samples; TS adds 188-byte packetisation and PES headers",
        ),
    ]
