"""VLC 3.0 plays hlstrio's HLS: a player nobody here wrote, through the real server.

VLC (Debian's `vlc-bin` + `vlc-plugin-base`) reads a session's master playlist with its
adaptive demuxer, records what it demuxed (`--sout '#std{...}'`, as fast as it can) and exits
(`--play-and-exit`). PyAV then counts the recorded video frames against the source's, one by
one, and VLC's verbose log (`-vv`) must hold no continuity complaint from its TS demuxer.

What VLC loses by itself is measured in the same run, not assumed: played from a local
MPEG-TS of the source, VLC 3.0.24 drops the stream's last video frame in decode order (its TS
demuxer never flushes the last, unterminated PES at end of stream), so "every frame" means every
frame that VLC keeps from a flawless file. The recording is Matroska because VLC's own TS
muxer holds back three more frames at the end.

The control shows the check can fail: ffmpeg's segment muxer writes every segment with its
continuity counters restarting at 0; VLC feeds consecutive HLS segments to one TS demuxer, so it
logs a discontinuity at every boundary and drops the frame it was gathering there (ISO/IEC
13818-1 2.4.3.3: a counter that does not follow on marks lost packets).

VLC refuses to run as root: as root the tests run `cvlc` as `nobody` (`runuser`), with a HOME
and an output directory of nobody's own; VLC reads only over HTTP.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import pwd
import re
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import m3u8
import pytest
import trio

from ..tsparse import continuity_errors
from .conftest import StartServer

RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"
# Lines of VLC's TS demuxer about continuity: "ts demux warning: discontinuity received 0x0
# instead of 0xb (pid=256)", "libdvbpsi error (PSI decoder): TS discontinuity ...".
CONTINUITY = re.compile(r"ts demux (?:warning|error): .*continuity", re.IGNORECASE)
VIDEO_PID = 0x100  # ffmpeg's mpegts muxer: the first stream (the video)
VLC_SECONDS = 60  # a 6 s clip takes VLC about a second


@pytest.fixture(scope="session")
def vlc(vlc: str) -> str:
    """tests/conftest.py's cvlc (skipped without it, failed under CI), and the means to run it:
    VLC refuses to run as root, so the tests drop to nobody with runuser."""
    if os.geteuid() == 0 and not os.access(RUNUSER, os.X_OK):
        pytest.fail(f"VLC refuses to run as root and there is no {RUNUSER} to drop to nobody")
    return vlc


@pytest.fixture
def vlc_dir() -> Iterator[Path]:
    """A directory VLC can write as whoever it runs as: its HOME and its recordings."""
    path = Path(tempfile.mkdtemp(prefix="hlstrio-vlc-"))  # under /tmp: nobody can reach it
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    try:
        yield path
    finally:
        shutil.rmtree(path)


@dataclass(frozen=True)
class Recording:
    path: Path
    log: str

    def continuity_lines(self) -> list[str]:
        return [line for line in self.log.splitlines() if CONTINUITY.search(line)]


async def record(vlc: str, url: str, work: Path, name: str) -> Recording:
    """Let VLC play `url` to its end, recording every elementary stream it demuxes."""
    out = work / f"{name}.mkv"
    argv = [
        vlc,
        "-vv",  # debug messages: the TS demuxer's warnings are what is checked
        "--no-sout-spu",  # the WebVTT renditions: Matroska via libavformat cannot take them
        "--play-and-exit",
        url,
        "--sout",
        f"#std{{access=file,mux=mkv,dst={out}}}",
    ]
    if os.geteuid() == 0:
        argv = [RUNUSER, "-u", "nobody", "--", "env", f"HOME={work}", *argv]
    with trio.fail_after(VLC_SECONDS):
        done = await trio.run_process(
            argv,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env={**os.environ, "HOME": str(work)},
        )
    log = (done.stdout + done.stderr).decode(errors="replace")
    assert done.returncode == 0, log[-3000:]
    assert out.exists() and out.stat().st_size > 0, log[-3000:]
    return Recording(out, log)


def frame_times(path: Path) -> list[float]:
    """Every video frame's presentation time (s), in presentation order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        return sorted(
            float(packet.pts * stream.time_base)
            for packet in container.demux(stream)
            if packet.pts is not None and packet.size
        )


def frame_numbers(times: list[float], fps: float) -> set[int]:
    """Frame times as frame numbers from the first one (each file has its own start offset)."""
    return {round((t - times[0]) * fps) for t in times}


def source_fps(path: Path) -> float:
    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
        assert rate is not None
        return float(rate)


def missing_frames(source: Path, played: Path) -> set[int]:
    fps = source_fps(source)
    expected = frame_numbers(frame_times(source), fps)
    got = frame_numbers(frame_times(played), fps)
    assert got <= expected, f"frames that are not in the source: {sorted(got - expected)}"
    return expected - got


async def local_ts(ffmpeg: str, source: Path, work: Path) -> Path:
    """The source as one MPEG-TS file (streams copied), readable by VLC's user."""
    out = work / "source.ts"
    await trio.run_process(
        [
            *(ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source)),
            *("-map", "0:v", "-map", "0:a:0", "-c", "copy", "-f", "mpegts", str(out)),
        ]
    )
    out.chmod(0o644)
    return out


async def vlc_own_loss(vlc: str, ts_file: Path, source: Path, work: Path) -> set[int]:
    """The source frames VLC drops from a flawless local TS file: its own loss, the baseline."""
    baseline = await record(vlc, str(ts_file), work, f"baseline-{ts_file.stem}")
    assert baseline.continuity_lines() == []
    lost = missing_frames(source, baseline.path)
    last = last_in_decode_order(ts_file)
    assert lost <= {last}, f"VLC dropped more than the final frame of a local file: {lost}"
    return lost


def last_in_decode_order(path: Path) -> int:
    """The frame number of the file's last video packet (a file is in decode order)."""
    times = frame_times(path)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        pts = [p.pts for p in container.demux(stream) if p.pts is not None and p.size]
        last = float(pts[-1] * stream.time_base)
        rate = stream.average_rate or stream.guessed_rate
        assert rate is not None
    return round((last - times[0]) * float(rate))


async def session_as_one_file(server: Any, session: dict[str, Any], work: Path) -> Path:
    """The session's video rendition, its segments joined: the very bytes VLC reads, as a file
    (they are one MPEG-TS stream, which is what continuous counters mean)."""
    base = session["master_url"].removesuffix("master.m3u8")
    playlist = m3u8.loads((await server.client.get(base + "index.m3u8")).text)
    out = work / f"session-{session['mode']}.ts"
    with out.open("wb") as file:
        for segment in playlist.segments:
            response = await server.client.get(base + segment.uri)
            assert response.status_code == 200
            file.write(response.content)
    out.chmod(0o644)
    return out


def audio_seconds(path: Path) -> list[float]:
    """How long each recorded audio stream lasts (first packet's start to last one's end)."""
    spans: dict[int, tuple[float, float]] = {}
    with av.open(str(path)) as container:
        for packet in container.demux(*container.streams.audio):
            if packet.pts is None or not packet.size or packet.time_base is None:
                continue
            start = float(packet.pts * packet.time_base)
            end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            first, last = spans.get(packet.stream.index, (start, end))
            spans[packet.stream.index] = (min(first, start), max(last, end))
    return [end - start for start, end in spans.values()]


# --- through hlstrio -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clip", "mode"),
    [("multi_track.mkv", "remux"), ("hevc_opus.mkv", "transcode")],
)
async def test_vlc_plays_every_frame_with_continuous_counters(
    clip: str,
    mode: str,
    vlc: str,
    vlc_dir: Path,
    start_server: StartServer,
    media_dir: Path,
    ffmpeg: str,
) -> None:
    server = await start_server()
    # Default capabilities (H.264 + AAC): the HEVC/Opus clip can only be transcoded.
    session = await server.create(clip)
    assert session["mode"] == mode, session["reason"]
    source = media_dir / clip
    own_loss = await vlc_own_loss(
        vlc, await session_as_one_file(server, session, vlc_dir), source, vlc_dir
    )

    played = await record(vlc, server.url + session["master_url"], vlc_dir, mode)
    # VLC's TS demuxer checks every packet's continuity_counter (13818-1 2.4.3.3) across the
    # segments of a rendition, which it reads as one stream: not one complaint.
    assert played.continuity_lines() == []
    # Every frame of the source, but the one VLC drops from any TS file at its very end: the
    # same frames as from those bytes in one local file.
    assert missing_frames(source, played.path) == own_loss
    with av.open(str(source)) as original:
        duration = float(original.duration or 0) / av.time_base
    spans = audio_seconds(played.path)
    assert spans and all(abs(span - duration) < 0.3 for span in spans), (spans, duration)
    requested = re.findall(r"GET (/hls/\S+) HTTP", played.log)
    assert any(path.endswith("/index.m3u8") for path in requested), "VLC did not use HLS"
    print(
        f"\n{mode}: {len(frame_times(played.path))}/{len(frame_times(source))} video frames "
        f"(VLC alone drops {len(own_loss)}), audio {[round(s, 2) for s in spans]} s of "
        f"{duration:.2f} s, {len(requested)} HLS requests, 0 continuity lines"
    )


# --- the control: segments whose counters restart ------------------------------------------


@contextlib.contextmanager
def static_http(directory: Path) -> Iterator[str]:
    """Serve `directory` on a free loopback port (what a plain web server does with HLS files)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{site.server_address[1]}"
    finally:
        site.shutdown()
        site.server_close()


@contextlib.asynccontextmanager
async def restarted_counters_hls(ffmpeg: str, source: Path, work: Path) -> AsyncIterator[str]:
    """ffmpeg's segment muxer output as is: a new TS muxer, counters from 0, every segment."""
    hls = work / "static"
    hls.mkdir()
    await trio.run_process(
        [
            *(ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(source)),
            *("-map", "0:v", "-map", "0:a:0", "-c", "copy", "-f", "segment"),
            *("-segment_time", "2", "-segment_list", str(hls / "index.m3u8")),
            *("-segment_list_type", "m3u8", str(hls / "seg-%d.ts")),
        ]
    )
    with static_http(hls) as url:
        yield f"{url}/index.m3u8"


async def test_vlc_complains_and_drops_frames_when_counters_restart(
    vlc: str, vlc_dir: Path, media_dir: Path, ffmpeg: str
) -> None:
    source = media_dir / "multi_track.mkv"
    own_loss = await vlc_own_loss(vlc, await local_ts(ffmpeg, source, vlc_dir), source, vlc_dir)
    async with restarted_counters_hls(ffmpeg, source, vlc_dir) as url:
        segments = sorted((vlc_dir / "static").glob("seg-*.ts"), key=lambda p: int(p.stem[4:]))
        assert len(segments) >= 3
        # The premise: counters jump at every boundary, on every PID (our TS reader says so).
        jumps = continuity_errors([segment.read_bytes() for segment in segments])
        assert jumps, "ffmpeg's segment muxer kept the counters going: no control"
        played = await record(vlc, url, vlc_dir, "restarted")

    complaints = played.continuity_lines()
    lost = missing_frames(source, played.path) - own_loss
    video_jumps = [jump for jump in jumps if jump.pid == VIDEO_PID]
    video_lines = [line for line in complaints if f"(pid={VIDEO_PID})" in line]
    print(
        f"\nrestarted counters: {len(segments)} segments, {len(jumps)} counter jumps "
        f"({len(video_jumps)} on the video PID), {len(complaints)} continuity lines from VLC, "
        f"{len(lost)} frames lost beyond VLC's own: {sorted(lost)}"
    )
    # (A counter that restarts at 0 right after a 15 looks continuous: not every boundary.)
    assert video_jumps, "no counter jump on the video PID: no control"
    # VLC complains about the jumps on the video PID (one that restarts at 0 right after a 0
    # it takes for a duplicate packet instead, and drops without a word)...
    assert 1 <= len(video_lines) <= len(video_jumps), complaints
    # ...and throws away the frame it was gathering.
    assert len(lost) >= 1, sorted(lost)
