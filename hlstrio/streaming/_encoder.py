"""The transcode encoder: one ffmpeg per session writing MPEG-TS segments into its temp dir.

ffmpeg's segment muxer prints `name,start,end` on stdout as each segment closes, so readiness
comes from ffmpeg itself as it happens; nothing polls the directory.
"""

from __future__ import annotations

import logging
import signal
import subprocess
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

import trio

from ._decision import ENCODED_AUDIO_BITRATE, Plan
from ._timeline import Timeline

log = logging.getLogger("hlstrio.encoder")

SEGMENT_PATTERN = "seg-%d.ts"


class EncoderFailed(Exception):
    """ffmpeg ended with an error; the message carries the tail of its stderr."""


def segment_filename(index: int) -> str:
    return SEGMENT_PATTERN % index


# Every run writes timestamps = source time (from the container start) + this, whatever segment
# it starts at, so segments from different runs form one timeline; it also keeps B-frame DTS
# of the very first frames positive, so no muxer shifts the first run alone.
OUTPUT_TS_OFFSET = 1.0


def encoder_argv(
    ffmpeg: str,
    source: Path,
    out_dir: Path,
    plan: Plan,
    timeline: Timeline,
    *,
    video_index: int | None,
    source_start: float,
    frame_duration: float,
    segment_seconds: float,
    start_index: int = 0,
) -> list[str]:
    """The ffmpeg command line for a run starting at segment `start_index` (pure).

    `source_start` is what the timeline's times count from (the container start time for a
    keyframe timeline, 0 for the fixed grid, whose times are already relative).
    """
    copy_video = plan.video == "copy"
    seek = timeline[start_index].start - source_start if start_index else 0.0
    if copy_video and start_index:
        # Input seeking with copied video lands on the keyframe at or before the target: aim a
        # hair past the boundary keyframe so float rounding never picks the one before it.
        seek += 0.001
    argv = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "warning", "-nostats"]
    if start_index:
        argv += ["-ss", f"{seek:.6f}"]
    argv += ["-i", str(source), "-map_metadata", "-1", "-map_chapters", "-1"]
    if plan.video is not None and video_index is not None:
        argv += ["-map", f"0:{video_index}"]
    if plan.audio is not None and plan.audio_index is not None:
        argv += ["-map", f"0:{plan.audio_index}"]
    if plan.video == "encode":
        rate = plan.video_bitrate or 3_000_000
        argv += [
            "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-level:v", "4.1",
            "-pix_fmt", "yuv420p", "-crf", "23", "-maxrate", str(rate), "-bufsize", str(rate * 2),
            # Keyframes exactly on the segment grid and nowhere else, so every cut lands where
            # the playlist says (t counts from the run's first frame, itself on the grid).
            "-sc_threshold", "0", "-g", "100000",
            "-force_key_frames", f"expr:gte(t,n_forced*{segment_seconds})",
        ]  # fmt: skip
        if plan.height is not None and plan.width is not None:
            argv += ["-vf", f"scale={plan.width}:{plan.height}"]
    elif copy_video:
        argv += ["-c:v", "copy"]
    if plan.audio == "encode":
        argv += ["-c:a", "aac", "-b:a", str(ENCODED_AUDIO_BITRATE), "-ac", "2"]
    elif plan.audio == "copy":
        argv += ["-c:a", "copy"]
    argv += ["-f", "segment", "-segment_format", "mpegts"]
    if copy_video:
        # Copied video can only be cut at its own keyframes: cut at the timeline's boundaries
        # (relative to the run's start), half a frame early so rounding never skips one.
        early = frame_duration / 2 if frame_duration > 0 else 0.02
        cuts = [s.start - source_start - seek - early for s in timeline.segments[start_index + 1 :]]
        argv += ["-segment_times", ",".join(f"{max(c, 0.001):.6f}" for c in cuts) or "1e9"]
    else:
        argv += ["-segment_time", f"{segment_seconds}"]
    argv += [
        "-output_ts_offset", f"{seek + OUTPUT_TS_OFFSET:.6f}",
        "-segment_start_number", str(start_index),
        "-segment_list", "pipe:1", "-segment_list_type", "csv",
        str(out_dir / SEGMENT_PATTERN),
    ]  # fmt: skip
    return argv


def parse_segment_line(line: str) -> int | None:
    """`seg-12.ts,72.000,78.000` -> 12; anything else -> None."""
    name = line.split(",", 1)[0].strip()
    if name.startswith("seg-") and name.endswith(".ts"):
        digits = name[4:-3]
        if digits.isdigit():
            return int(digits)
    return None


async def _kill(process: trio.Process) -> None:
    # A SIGSTOPped child ignores SIGTERM until continued; SIGKILL ends it either way. Its output
    # is discarded with the session, so there is nothing to flush.
    process.send_signal(signal.SIGCONT)
    process.kill()


async def run_encoder(
    argv: Sequence[str],
    on_segment: Callable[[int], None],
    *,
    label: str,
    on_started: Callable[[trio.Process], None] | None = None,
) -> None:
    """Run ffmpeg to the end, calling `on_segment(index)` as each segment closes.

    Cancellation kills ffmpeg (SIGKILL) and waits for it, so no process outlives the caller.
    Raises EncoderFailed on a non-zero exit.
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
                on_segment(index)
        await process.wait()
    if process.returncode != 0:
        detail = stderr_tail[-1] if stderr_tail else "no output"
        raise EncoderFailed(f"ffmpeg exited with status {process.returncode}: {detail}")
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
