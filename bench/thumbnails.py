"""Issue 6 figures: trick play made on demand, beside ffmpeg doing the same in the same run.

Scrub thumbnails of a two-hour 1080p H.264 MP4 (the seek bench's file) at positions spread
over it: cold (the file opened for the one picture, nothing cached), through one open
`KeyframeReader` (what a seek-bar drag gets if the session keeps one), and from the server's
`SegmentCache`; the baseline is an ffmpeg process making the same thumbnail,
`ffmpeg -ss T -i file -frames:v 1 -vf scale=W:-2 out.jpg`, position by position in alternation
with ours. Jellyfin's trickplay makes every tile ahead of time (hours for a library); here no
work is done before a position is asked for, so what matters is the time to any one.
Also: one `iframe-K.ts` cut beside the regular segment cut, and the keyframe sizes behind the
I-frame BANDWIDTH for a two-hour MKV (one seek per Cue) beside a demux of its whole video.
"Cold" means no cache of ours: the OS page cache is warm for both sides.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import av

from hlstrio._ffmpeg import ffmpeg_exe
from hlstrio.media import MediaInfo, probe
from hlstrio.streaming import keyframe_timeline
from hlstrio.streaming._cache import SegmentCache
from hlstrio.streaming._remux import cut_video_ts
from hlstrio.streaming._trickplay import (
    THUMB_SECONDS,
    THUMB_WIDTH,
    KeyframeReader,
    cut_iframe_ts,
    iframes_for,
    measure_keyframes,
    thumbnail_count,
    thumbnail_jpeg,
    thumbnail_key,
    thumbnail_keyframe,
)

from ._common import WORK, Result, evict, two_hours_1080p_mp4
from .seek import two_hour_mkv

POSITIONS = 20
COMMAND = "nox -s bench -- thumbnails"


def _ffmpeg_thumbnail(path: Path, seconds: float, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            *(ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y"),
            *("-ss", f"{seconds:.6f}", "-i", str(path)),
            *("-frames:v", "1", "-vf", f"scale={THUMB_WIDTH}:-2", str(out)),
        ],
        check=True,
    )
    return time.perf_counter() - start


def _timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def _thumbnails(path: Path, info: MediaInfo) -> list[Result]:
    assert info.video is not None and info.video_time_base is not None
    video = info.video.index
    count = thumbnail_count(info.duration)
    wanted = sorted({round(i * (count - 1) / (POSITIONS - 1)) for i in range(POSITIONS)})
    keyframes = [thumbnail_keyframe(info.keyframe_pts, info.video_time_base, n) for n in wanted]
    cold, ffmpeg, dragged, cached, disk, disk_ffmpeg = [], [], [], [], [], []
    cache = SegmentCache(64 << 20)
    with tempfile.TemporaryDirectory(dir=WORK) as scratch, KeyframeReader(path, video) as reader:
        out = Path(scratch) / "thumb.jpg"
        for n, pts in zip(wanted, keyframes, strict=True):
            seconds = float(pts * info.video_time_base) - info.start_time
            start = time.perf_counter()
            jpeg = thumbnail_jpeg(path, video, pts, THUMB_WIDTH)
            cold.append(time.perf_counter() - start)
            ffmpeg.append(_ffmpeg_thumbnail(path, seconds, out))
            dragged.append(_timed(lambda pts=pts: reader.thumbnail_jpeg(pts, THUMB_WIDTH)))
            cache.put("bench", thumbnail_key(n), jpeg)
            cached.append(_timed(lambda n=n: cache.get("bench", thumbnail_key(n))))
            # Colder still: the file's pages dropped from the page cache first (both sides).
            evict(path)
            disk.append(_timed(lambda pts=pts: thumbnail_jpeg(path, video, pts, THUMB_WIDTH)))
            evict(path)
            disk_ffmpeg.append(_ffmpeg_thumbnail(path, seconds, out))
    baseline = statistics.median(ffmpeg)
    note = (
        f"{info.duration / 3600:.1f} h 1080p H.264 MP4, {len(wanted)} positions from 0 to "
        f"the end (a thumbnail every {THUMB_SECONDS:.0f} s), {THUMB_WIDTH} px wide; "
        f"ffmpeg median {baseline * 1000:.0f} ms, max {max(ffmpeg) * 1000:.0f} ms"
    )
    return [
        Result(
            "scrub thumbnail at any position, cold (open, seek, decode one keyframe, JPEG)",
            statistics.median(cold),
            baseline,
            "s (median); baseline: ffmpeg -ss T -i file -frames:v 1 -vf scale=W:-2",
            "well under 1 s",
            COMMAND,
            f"max {max(cold) * 1000:.0f} ms; {note}",
        ),
        Result(
            "scrub thumbnail at any position, cold from disk (file pages evicted first)",
            statistics.median(disk),
            statistics.median(disk_ffmpeg),
            "s (median); baseline: ffmpeg as above, file pages evicted too",
            "well under 1 s",
            COMMAND,
            f"max {max(disk) * 1000:.0f} ms (ffmpeg max {max(disk_ffmpeg) * 1000:.0f} ms); "
            "nothing of the file in memory: the MP4 index (moov) and the keyframe come from disk",
        ),
        Result(
            "scrub thumbnail during a drag (one open KeyframeReader)",
            statistics.median(dragged),
            baseline,
            "s (median); baseline: ffmpeg as above",
            "",
            COMMAND,
            f"max {max(dragged) * 1000:.0f} ms; the open skips parsing the MP4 sample table",
        ),
        Result(
            "scrub thumbnail, cached (SegmentCache hit)",
            statistics.median(cached) * 1000,
            baseline * 1000,
            "ms (median); baseline: ffmpeg as above",
            "",
            COMMAND,
            "in-process lookup; HTTP not included",
        ),
    ]


def _iframe_cut(path: Path, info: MediaInfo) -> Result:
    """iframe-K.ts vs the 6 s remux segment that starts at the same keyframe, both cold."""
    assert info.video is not None and info.video_time_base is not None
    assert info.video_end_pts is not None
    video = info.video.index
    timeline = keyframe_timeline(info.keyframe_pts, info.video_time_base, info.video_end_pts, 6)
    by_pts = {f.pts: f for f in iframes_for(info).frames}
    iframe, segment = [], []
    for k in range(0, len(timeline), max(1, len(timeline) // 10)):
        seg = timeline[k]
        assert seg.start_pts is not None
        entry = by_pts[seg.start_pts]
        iframe.append(_timed(lambda e=entry: cut_iframe_ts(path, video, e)))
        segment.append(_timed(lambda s=seg: cut_video_ts(path, s, video)))
    return Result(
        "iframe-K.ts cut, cold (one keyframe muxed to TS)",
        statistics.median(iframe),
        statistics.median(segment),
        "s (median of 10 positions); baseline: the 6 s segment cut at the same keyframe",
        "",
        COMMAND,
        "2 h 1080p H.264 MP4; both open the file per cut",
    )


def _keyframe_sizes(mkv: Path) -> Result:
    info = probe(mkv, index_min_bytes=0)
    assert info.video is not None
    video = info.video.index
    measured = min(
        _timed(lambda: measure_keyframes(mkv, video, info.keyframe_pts)) for _ in range(3)
    )

    def demux_all() -> None:
        with av.open(str(mkv)) as source:
            for _ in source.demux(source.streams[video]):
                pass

    scan = min(_timed(demux_all) for _ in range(3))
    return Result(
        "keyframe sizes for the I-frame BANDWIDTH, 2 h MKV (a seek per Cue)",
        measured,
        scan,
        "s (best of 3); baseline: a demux of every video packet",
        "once per file, cached",
        COMMAND,
        f"{len(info.keyframe_pts)} keyframes; MP4 reads them from the sample table (~0 s)",
    )


def run() -> list[Result]:
    long_file = two_hours_1080p_mp4()  # shared with the seek bench
    info = probe(long_file)
    assert info.video is not None
    results = _thumbnails(long_file, info)
    sizes = measure_keyframes(long_file, info.video.index, info.keyframe_pts)
    results.append(_iframe_cut(long_file, info))
    frames = iframes_for(info, sizes)
    bound = iframes_for(info)
    results.append(
        Result(
            "I-frame playlist BANDWIDTH from keyframe sizes (2 h 1080p)",
            frames.peak_bandwidth / 1e6,
            bound.peak_bandwidth / 1e6,
            "Mbit/s; baseline: the GOP-size upper bound",
            "",
            COMMAND,
            f"{len(frames)} entries; AVERAGE-BANDWIDTH {frames.average_bandwidth / 1e6:.2f} Mbit/s",
        )
    )
    results.append(_keyframe_sizes(two_hour_mkv()))
    return results
