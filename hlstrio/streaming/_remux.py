"""In-process segments: every rendition's segment cut on demand from the source file.

Stateless like nginx-vod-module: any segment of any rendition, in any order, no process and no
temp file. `renditions()` says, for each rendition of a plan, which function makes its
segments — the copied video here (GOPs between two keyframes -> MPEG-TS), audio in
`_audio.py` (copied or AAC-encoded per segment). All of it blocks (PyAV demux/mux/encode,
~10 ms per 6 s of 720p): the session runs it in a worker thread.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av

from ..media import SidecarError, SubtitleReadError, load_sidecar, read_cues
from ._audio import cut_audio_ts
from ._decision import AudioOutput, Plan, SubtitleOutput
from ._errors import CutError
from ._mpegts import MPEGTS_AT_SOURCE_ZERO, MUX_OPTIONS, TS_OFFSET, shift, spec_clean
from ._timeline import Segment, Timeline
from ._webvtt import webvtt_segment

# Audio that belongs to a segment sits in the file before its first video keyframe; an
# MPEG-TS source's seek may also land past the keyframe.
_SEEK_BACK = Fraction(2)


def cut_video_ts(path: Path, segment: Segment, video_index: int) -> bytes:
    """Mux the video GOPs [segment.start_pts, segment.end_pts) into MPEG-TS."""
    start_pts, end_pts = segment.start_pts, segment.end_pts
    if start_pts is None or end_pts is None:
        raise ValueError("remux needs a keyframe-cut segment")
    out_buf = io.BytesIO()
    try:
        with av.open(str(path), "r") as source:
            video_in = source.streams[video_index]
            vtb = video_in.time_base
            if vtb is None:
                raise CutError("video stream has no time base")
            # Matroska and MP4 seek to the keyframe by their index; an MPEG-TS source seeks by
            # searching timestamps and may land past it: then from further back.
            packets = None
            for target in (start_pts, start_pts - int(_SEEK_BACK / vtb)):
                source.seek(max(target, 0), stream=video_in, backward=True, any_frame=False)
                packets = _gop_packets(source, video_in, start_pts, end_pts)
                if packets is not None:
                    break
            if packets is None:
                raise CutError(f"keyframe at pts {start_pts} not found")
            with av.open(out_buf, "w", format="mpegts", options=MUX_OPTIONS) as out:
                video_out = out.add_stream_from_template(video_in)
                for packet in packets:
                    shift(packet, vtb)
                    packet.stream = video_out
                    out.mux(packet)
    except (av.FFmpegError, OSError) as exc:
        raise CutError(f"cannot read {path.name}: {exc}") from None
    return out_buf.getvalue()


def _gop_packets(
    source: av.container.InputContainer,
    stream: av.stream.Stream,
    start_pts: int,
    end_pts: int,
) -> list[av.Packet[Any]] | None:
    """The packets from the keyframe at `start_pts` up to the one at `end_pts`; None when the
    demuxer is already past `start_pts` (the seek overshot)."""
    packets: list[av.Packet[Any]] = []
    started = False
    for packet in source.demux(stream):
        if packet.pts is None or packet.size == 0:
            continue
        if not started:
            if packet.is_keyframe and packet.pts == start_pts:
                started = True
            elif packet.pts > start_pts and packet.is_keyframe:
                return None
            else:
                continue
        elif packet.is_keyframe and packet.pts >= end_pts:
            break
        packets.append(packet)
    return packets if started else None


RenditionKind = Literal["video", "audio", "subtitles"]


@dataclass(frozen=True, slots=True)
class SessionSource:
    """The files a session reads, as the library just verified them."""

    media: Path
    start_seconds: float  # the container's start time (sidecar cues count from it)
    sidecars: Mapping[str, Path] = field(default_factory=dict)  # usable sidecars, by id


@dataclass(frozen=True, slots=True)
class RenditionCut:
    """How one rendition's segments are made in-process."""

    kind: RenditionKind
    extension: str  # of its segment URIs
    cut: Callable[[int], bytes]  # segment index -> bytes; blocking


def renditions(source: SessionSource, plan: Plan, timeline: Timeline) -> dict[str, RenditionCut]:
    """The in-process cut of every rendition that has one (encoded video has the encoder)."""
    path = source.media
    cuts: dict[str, RenditionCut] = {}
    if plan.video is not None and plan.video.action == "copy":
        video_index = plan.video.stream_index

        def video(index: int) -> bytes:
            return spec_clean(cut_video_ts(path, timeline[index], video_index), index)

        cuts["v"] = RenditionCut("video", "ts", video)
    last = len(timeline) - 1

    def audio_cut(output: AudioOutput) -> Callable[[int], bytes]:
        def cut(index: int) -> bytes:
            segment = timeline[index]
            data = cut_audio_ts(
                path,
                output.stream_index,
                segment.start,
                segment.start + segment.duration,
                encode=output if output.action == "encode" else None,
                is_first=index == 0,
                is_last=index == last,
            )
            return spec_clean(data, index)

        return cut

    for output in plan.audio:
        cuts[output.rendition] = RenditionCut("audio", "ts", audio_cut(output))

    def subtitle_cut(output: SubtitleOutput) -> Callable[[int], bytes]:
        def cut(index: int) -> bytes:
            segment = timeline[index]
            start = segment.start
            # The last segment runs on: cues after the last frame still show.
            end = math.inf if index == last else start + segment.duration
            try:
                if output.sidecar is not None:
                    cues = load_sidecar(
                        source.sidecars[output.sidecar],
                        origin_seconds=source.start_seconds,
                        language=output.language,
                    )
                else:
                    assert output.stream_index is not None
                    cues = read_cues(path, output.stream_index, start, end)
            except (SidecarError, SubtitleReadError) as exc:
                raise CutError(str(exc)) from None
            return webvtt_segment(cues, start, end, MPEGTS_AT_SOURCE_ZERO).encode()

        return cut

    for subtitle in plan.subtitles:
        cuts[subtitle.rendition] = RenditionCut("subtitles", "vtt", subtitle_cut(subtitle))
    return cuts


__all__ = [  # TS_OFFSET, MUX_OPTIONS, shift, spec_clean: re-exported for older imports
    "MUX_OPTIONS",
    "TS_OFFSET",
    "CutError",
    "RenditionCut",
    "SessionSource",
    "cut_video_ts",
    "renditions",
    "shift",
    "spec_clean",
]
