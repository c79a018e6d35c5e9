"""The transcode encoder: ffmpeg writing H.264 MPEG-TS segments into a session's temp dir.

ffmpeg's segment muxer prints `name,start,end` on stdout as each segment closes, so readiness
comes from ffmpeg itself as it happens; nothing polls the directory.
"""

from __future__ import annotations

import logging
import signal
import subprocess
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import trio

from ..media import VideoInfo
from ._filters import FilterSupport, PictureChain, picture_chain
from ._mpegts import TS_OFFSET
from ._playlist import ENCODER_SEGMENT_PATTERN, parse_segment_name
from ._timeline import Timeline

log = logging.getLogger("hlstrio.encoder")


class EncoderExited(Exception):
    """ffmpeg ended with an error; the message carries the tail of its stderr."""


@dataclass(frozen=True, slots=True)
class EncodeJob:
    """What a transcode's encoder makes: the source's video, H.264 on the timeline's grid."""

    source: Path
    video_index: int
    timeline: Timeline
    source_start: float  # container start time (s): the timeline's times count from here too
    width: int
    height: int
    bitrate: int  # peak cap (bits/s)
    segment_seconds: float
    burn_subtitle: int | None = None  # a bitmap subtitle stream to overlay on the picture
    deinterlace: bool = False  # interlaced source: one progressive frame per frame
    tonemap: bool = False  # PQ/HLG source: 8-bit BT.709 SDR
    source_video: VideoInfo | None = None  # the probe's colour and field order of the source
    filters: FilterSupport | None = None  # what this ffmpeg has; None: never asked (_filters)

    @property
    def picture(self) -> PictureChain:
        """Deinterlacing and tone mapping as this ffmpeg can do them, and what it cannot."""
        return picture_chain(
            self.source_video,
            deinterlace=self.deinterlace,
            tonemap=self.tonemap,
            filters=self.filters,
        )

    @property
    def notes(self) -> tuple[str, ...]:
        """What was asked of the picture and cannot be done here: for the session's reason."""
        return self.picture.notes


def encoder_argv(
    ffmpeg: str, job: EncodeJob, out_dir: Path, start_index: int = 0, stop_index: int | None = None
) -> list[str]:
    """The ffmpeg command line for a run making segments [start_index, stop_index) (pure).

    Only video: every audio rendition is cut in-process (streaming/_audio.py), so the encoder
    exists only for what needs a video encoder. Timestamps: `-ss` relative to the container
    start, then `-output_ts_offset` puts every frame at source time + TS_OFFSET, exactly what
    the in-process cuts write, so the encoded video lines up with audio and subtitle
    renditions, and runs started at different segments form one timeline. `-muxdelay 0`:
    otherwise the MPEG-TS muxer adds its own 1.4 s on top (measured: PTS = t + offset + 1.4).

    The picture: deinterlace, tone map (`_filters.picture_chain`), burn in, scale, in that
    order; none of these filters moves a frame's timestamp, so the grid holds.
    """
    timeline = job.timeline
    seek = timeline[start_index].start - job.source_start
    argv = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "warning", "-nostats"]
    if start_index:
        argv += ["-ss", f"{seek:.6f}"]
    argv += ["-i", str(job.source), "-map_metadata", "-1", "-map_chapters", "-1"]
    picture = job.picture
    scale = f"scale={job.width}:{job.height}"
    if job.burn_subtitle is None:
        argv += ["-map", f"0:{job.video_index}", "-vf", ",".join([*picture.filters, scale])]
    else:
        # Bitmap subtitles (PGS, VobSub, DVB) drawn onto the (progressive, SDR) picture before
        # scaling; the video goes on past the last subtitle (eof_action=pass).
        video = f"[0:{job.video_index}]"
        graph = ""
        if picture.filters:
            graph, video = f"{video}{','.join(picture.filters)}[picture];", "[picture]"
        graph += f"{video}[0:{job.burn_subtitle}]overlay=eof_action=pass,{scale}[v]"
        argv += ["-filter_complex", graph, "-map", "[v]"]
    if stop_index is not None and stop_index < len(timeline):
        argv += ["-t", f"{timeline[stop_index].start - timeline[start_index].start:.6f}"]
    rate = job.bitrate
    argv += [
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-level:v", "4.1",
        "-pix_fmt", "yuv420p", "-crf", "23", "-maxrate", str(rate), "-bufsize", str(rate * 2),
        *picture.output_args,
        # Keyframes exactly on the segment grid and nowhere else, so every cut lands where
        # the playlist says (t counts from the run's first frame, itself on the grid).
        "-sc_threshold", "0", "-g", "100000",
        "-force_key_frames", f"expr:gte(t,n_forced*{job.segment_seconds})",
        "-f", "segment", "-segment_format", "mpegts", "-segment_time", f"{job.segment_seconds}",
        "-muxdelay", "0",
        "-output_ts_offset", f"{timeline[start_index].start + float(TS_OFFSET):.6f}",
        "-segment_start_number", str(start_index),
        "-segment_list", "pipe:1", "-segment_list_type", "csv",
        str(out_dir / ENCODER_SEGMENT_PATTERN),
    ]  # fmt: skip
    return argv


def parse_segment_line(line: str) -> int | None:
    """`seg-12.ts,72.000,78.000` -> 12; anything else -> None."""
    parsed = parse_segment_name(line.split(",", 1)[0].strip())
    return parsed[0] if parsed is not None and parsed[1] == "ts" else None


async def _kill(process: trio.Process) -> None:
    # A SIGSTOPped child ignores SIGTERM until continued; SIGKILL ends it either way. Its output
    # is discarded with the session, so there is nothing to flush.
    process.send_signal(signal.SIGCONT)
    process.kill()


class ProcessHandle(Protocol):
    """What a transcode needs of a running encoder: its pid (for the reaper) and signals
    (SIGSTOP/SIGCONT for the throttle). trio.Process is one."""

    @property
    def pid(self) -> int: ...
    def send_signal(self, sig: int) -> None: ...


class EncoderRunner(Protocol):
    """How a transcode runs one encoder process; tests pass a fake with the same contract."""

    def __call__(
        self,
        argv: Sequence[str],
        on_segment: Callable[[int], Awaitable[None]],
        *,
        label: str,
        on_started: Callable[[ProcessHandle], None] | None = None,
    ) -> Awaitable[None]: ...


async def run_encoder(
    argv: Sequence[str],
    on_segment: Callable[[int], Awaitable[None]],
    *,
    label: str,
    on_started: Callable[[ProcessHandle], None] | None = None,
) -> None:
    """Run ffmpeg to the end, awaiting `on_segment(index)` as each segment closes (in order:
    the next one is not announced before the last one's callback is done).

    Cancellation kills ffmpeg (SIGKILL) and waits for it, so no process outlives the caller.
    Raises EncoderExited on a non-zero exit.
    """
    stderr_tail: deque[str] = deque(maxlen=20)
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(
            lambda task_status: trio.run_process(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                check=False,
                deliver_cancel=_kill,
                task_status=task_status,
            )
        )
        log.info("%s: ffmpeg started (pid %d)", label, process.pid)
        if on_started is not None:
            on_started(process)

        async def drain_stderr() -> None:
            assert process.stderr is not None
            async for line in AsyncLines(process.stderr):
                stderr_tail.append(line)
                log.warning("%s: ffmpeg: %s", label, line)

        nursery.start_soon(drain_stderr)
        assert process.stdout is not None
        async for line in AsyncLines(process.stdout):
            index = parse_segment_line(line)
            if index is not None:
                await on_segment(index)
        await process.wait()
    if process.returncode != 0:
        detail = stderr_tail[-1] if stderr_tail else "no output"
        raise EncoderExited(f"ffmpeg exited with status {process.returncode}: {detail}")
    log.info("%s: ffmpeg finished", label)


class AsyncLines:
    """Decode a byte stream into text lines without holding more than one line's bytes."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = b""

    def __aiter__(self) -> AsyncLines:
        return self

    async def __anext__(self) -> str:
        while b"\n" not in self._buffer:
            chunk = await self._stream.receive_some(65536)
            if not chunk:
                if self._buffer:
                    line, self._buffer = self._buffer, b""
                    return line.decode(errors="replace").rstrip("\r")
                raise StopAsyncIteration
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode(errors="replace").rstrip("\r")
