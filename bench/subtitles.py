"""Subtitles: time to a WebVTT segment of an embedded SRT track in a two-hour MKV, cold.

Rows: in-process (`read_cues` + `webvtt_segment`) on a small-frame stand-in and on a real-sized
2 h 1080p MKV (4.6 GB); and over HTTP on the 1080p film, as a player turning subtitles on
sees it (POST the session, master, subtitle playlist, one WebVTT segment), each beside the
whole-track extraction of the same film.

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
from urllib.parse import urljoin

import av
import httpx
import m3u8

from hlstrio._ffmpeg import ffmpeg_exe
from hlstrio.media._subtitles import read_cues
from hlstrio.streaming._mpegts import TS_OFFSET
from hlstrio.streaming._webvtt import webvtt_segment

from ._common import WORK, Result, evict, media, server, two_hours_1080p_mp4

FILM_SECONDS = 7200
UNIT_SECONDS = 600
SEGMENT_SECONDS = 6.0
ROUNDS = 5
BIG_ROUNDS = 2  # each baseline round reads 4.6 GB from the disk
COMMAND = "nox -s bench -- subtitles"
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


def film_1080p() -> Path:
    """A real-sized 2 h 1080p film: the seek bench's 4.6 GB H.264/AAC MP4 remuxed to Matroska
    (ffmpeg writes Cues, one per video keyframe) with the same SRT track as `film`. Alone in
    its directory, so a server can serve it as a library of one; the seek bench's Cues figure
    reads it too."""
    out = WORK / "media" / "film-1080p" / "two-hours-1080p-srt.mkv"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    srt = WORK / "lists" / "two-hours-1080p.srt"  # not beside the film: it would be a sidecar
    srt.parent.mkdir(parents=True, exist_ok=True)
    srt.write_text(_srt(FILM_SECONDS))
    part = out.with_suffix(".part")
    subprocess.run(
        [
            *(ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y"),
            *("-i", str(two_hours_1080p_mp4()), "-i", str(srt)),
            *("-map", "0:v", "-map", "0:a", "-map", "1:s", "-c", "copy", "-c:s", "srt"),
            *("-metadata:s:s:0", "language=eng", "-f", "matroska", str(part)),
        ],
        check=True,
    )
    os.replace(part, out)
    return out


def _read_bytes() -> int:
    """Bytes this process has read so far (read syscalls, /proc/self/io rchar)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def _ours(path: Path, stream_index: int, start: float) -> tuple[float, int, int]:
    """Seconds to one WebVTT segment at `start`, bytes read, cues in it."""
    evict(path)
    before = _read_bytes()
    began = time.perf_counter()
    end = start + SEGMENT_SECONDS
    text = webvtt_segment(read_cues(path, stream_index, start, end), start, end, TICKS_AT_ZERO)
    elapsed = time.perf_counter() - began
    return elapsed, _read_bytes() - before, text.count(" --> ")


def _baseline(path: Path) -> float:
    with tempfile.TemporaryDirectory(dir=WORK) as out:
        evict(path)
        began = time.perf_counter()
        subprocess.run(
            [
                *(ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-i", str(path)),
                *("-map", "0:s:0", str(Path(out) / "out.vtt")),
            ],
            check=True,
        )
        return time.perf_counter() - began


def _in_process(path: Path, label: str, rounds: int) -> list[Result]:
    """read_cues + render of the first segment and of one near the end, cold, beside the
    whole-track extraction, in alternating rounds."""
    with av.open(str(path)) as container:
        stream_index = container.streams.subtitles[0].index
    near_end = FILM_SECONDS - 2 * SEGMENT_SECONDS
    first: list[float] = []
    last: list[float] = []
    whole: list[float] = []
    read_first = read_last = cues_first = cues_last = 0
    for _ in range(rounds):
        seconds, read_first, cues_first = _ours(path, stream_index, 0.0)
        first.append(seconds)
        whole.append(_baseline(path))
        seconds, read_last, cues_last = _ours(path, stream_index, near_end)
        last.append(seconds)
    baseline = statistics.median(whole)
    note = (
        f"{label}, {path.stat().st_size / 1e6:,.0f} MB; median of {rounds} cold rounds (page "
        "cache dropped for the file); baseline: ffmpeg -i film.mkv -map 0:s:0 out.vtt, "
        f"median {baseline:.2f} s"
    )
    return [
        Result(
            f"subtitles: first WebVTT segment of an embedded SRT, cold, {label.split(',')[0]} "
            "(read_cues + render)",
            statistics.median(first),
            baseline,
            "s; baseline: whole-track extraction",
            "<= 1 s",
            COMMAND,
            f"{note}; read {read_first / 1e6:.1f} MB, {cues_first} cues",
        ),
        Result(
            f"subtitles: WebVTT segment 12 s before the end, cold, {label.split(',')[0]}",
            statistics.median(last),
            baseline,
            "s; baseline: whole-track extraction",
            "<= 1 s",
            COMMAND,
            f"{note}; read {read_last / 1e6:.1f} MB (30 s lookback), {cues_last} cues",
        ),
    ]


def _player(url: str, media_id: str, which: str) -> tuple[float, int]:
    """A player turning subtitles on: POST the session, GET master, the subtitle rendition's
    playlist, then its first (or its third-last) segment. Seconds from POST to the WebVTT
    text, and the cues in it."""
    with httpx.Client(base_url=url, timeout=120) as client:
        began = time.perf_counter()
        created = client.post("/api/v1/sessions", json={"media_id": media_id})
        assert created.status_code == 201, created.text
        session = created.json()
        master_url = session["master_url"]
        master = m3u8.loads(client.get(master_url).text)
        uri = next(m.uri for m in master.media if m.type == "SUBTITLES")
        playlist_url = urljoin(master_url, uri)
        segments = m3u8.loads(client.get(playlist_url).text).segments
        segment = segments[0] if which == "first" else segments[-3]
        text = client.get(urljoin(playlist_url, segment.uri))
        assert text.status_code == 200 and text.text.startswith("WEBVTT"), text.text
        elapsed = time.perf_counter() - began
        client.delete(f"/api/v1/sessions/{session['id']}")
    return elapsed, text.text.count(" --> ")


def _over_http(path: Path, rounds: int, whole: float) -> list[Result]:
    """The target as a player sees it: playlist + first cue through a running server, the
    film's pages evicted before each round (the server has scanned its library, as always
    before anyone plays: the probe, Cues included, is cached)."""
    results = []
    with server(path.parent) as url:
        media_id = httpx.get(url + "/api/v1/media").json()["items"][0]["id"]
        for which in ("first", "near the end"):
            times, cues = [], 0
            for _ in range(rounds):
                evict(path)
                seconds, cues = _player(url, media_id, which)
                times.append(seconds)
            results.append(
                Result(
                    f"subtitles over HTTP, 2 h 1080p MKV, cold: POST session -> master -> "
                    f"subtitle playlist -> {'first' if which == 'first' else 'third-last'} "
                    "segment received",
                    statistics.median(times),
                    whole,
                    "s (median); baseline: whole-track extraction of the same film (above)",
                    "<= 1 s",
                    COMMAND,
                    f"{rounds} rounds, film pages evicted before each, a new session each; "
                    f"{cues} cues; rounds {', '.join(f'{t:.3f}' for t in times)} s",
                )
            )
    return results


def run() -> list[Result]:
    small = film()
    big = film_1080p()
    results = _in_process(small, "2 h 64x36 stand-in, 24 fps H.264 + AAC + SRT MKV", ROUNDS)
    results += _in_process(big, "2 h 1080p MKV, 24 fps H.264 + AAC + SRT", BIG_ROUNDS)
    results += _over_http(big, ROUNDS, results[-1].baseline)
    return results


if __name__ == "__main__":
    for result in run():
        print(result)
