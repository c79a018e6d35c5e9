"""Audio rendition cuts: one 6 s segment COPY vs ENCODE (5.1 AC-3 -> stereo AAC) vs the video
remux cut of the same segment, in the same run.

All three are in-process and stateless (open the file, seek, demux, mux into memory; ENCODE
also decodes the AC-3, downmixes and encodes AAC with PyAV's libav). Rounds alternate so noise
from other work on the machine hits every side alike; the median of each side is reported.
ENCODE's CPU time (process time, which other processes' load does not inflate) is also given
as a fraction of the 6 s it makes: the share of one core a listener costs.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hlstrio._ffmpeg import ffmpeg_exe
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


def _timed_wall(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _in_two_threads(fn: Callable[[], bytes]) -> None:
    threads = [threading.Thread(target=fn) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _ffmpeg_encode_cpu(clip: Path, stream_index: int) -> float:
    """CPU seconds of an ffmpeg process encoding the whole track as ENCODE does."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [
            *(ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(clip)),
            *("-map", f"0:{stream_index}", "-ac", "2", "-c:a", "aac", "-b:a", "128k"),
            *("-f", "mpegts", "-y", os.devnull),
        ],
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


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
    # Two ENCODE cuts at once in two threads (the session's two cut threads), beside the same
    # two one after the other: PyAV leaves the GIL in the codec calls, so they overlap on two
    # cores if nothing else holds it (ratio ~0.5), and queue behind each other if it does (~1).
    pair: dict[str, list[float]] = {"serial": [], "threads": []}
    for _ in range(ROUNDS // 2):
        pair["serial"].append(_timed_wall(lambda: (encode(), encode())))
        pair["threads"].append(_timed_wall(lambda: _in_two_threads(encode)))
    ffmpeg_cpu = [_ffmpeg_encode_cpu(clip, ac3.index) for _ in range(3)]
    ms = {name: statistics.median(v) * 1000 for name, v in wall.items()}
    cpu_ms = {name: statistics.median(v) * 1000 for name, v in cpu.items()}
    seconds = segment.duration
    encode_per_s = cpu_ms["encode"] / seconds
    remux_per_s = cpu_ms["remux"] / seconds
    copy_per_s = cpu_ms["copy"] / seconds
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
            "audio ENCODE CPU per second of audio, in-process vs ffmpeg alone",
            encode_per_s,
            min(ffmpeg_cpu) * 1000 / info.duration,
            "CPU ms per s; baseline: ffmpeg -map 0:a:1 -ac 2 -c:a aac -b:a 128k, whole track",
            "ratio ~1 (the same libav encoder)",
            COMMAND,
            f"{note}; ffmpeg: best of 3 runs over the {info.duration:.0f} s track (its process "
            "start included), CPU of the child process",
        ),
        Result(
            "players per core the cuts allow: video copy + audio ENCODE (5.1 AC-3 source)",
            1000 / (encode_per_s + remux_per_s),
            1000 / (copy_per_s + remux_per_s),
            "players at 1x per core (cut CPU only); baseline: the same with the audio copied",
            "",
            COMMAND,
            f"{note}; per second played: ENCODE {encode_per_s:.1f} + video cut "
            f"{remux_per_s:.1f} CPU ms vs COPY {copy_per_s:.1f} + {remux_per_s:.1f}; HTTP, "
            "playlists and the event loop not included (see the ac3 bench for whole players)",
        ),
        Result(
            "2 audio ENCODE cuts in 2 threads vs one after the other",
            statistics.median(pair["threads"]) * 1000,
            statistics.median(pair["serial"]) * 1000,
            "ms wall, median; baseline: the same two cuts serially",
            "ratio ~0.5 on 2 idle cores (the GIL is left in the codec)",
            COMMAND,
            f"{note}; {ROUNDS // 2} rounds; a ratio near 1 means the cuts do not overlap "
            "(GIL held, or no free core on the shared machine)",
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
