"""In-process segments: every rendition's segment cut on demand from the source file.

Stateless like nginx-vod-module: any segment of any rendition, in any order, no process and no
temp file. `renditions()` says, for each rendition of a plan, which function makes its
segments: the copied video here (GOPs between two keyframes -> MPEG-TS), fMP4 fragments in
`_fmp4.py`, audio in `_audio.py` (copied or AAC-encoded per segment), subtitles as WebVTT
(`_webvtt.py`). All of it blocks (PyAV demux/mux/encode, ~10 ms per 6 s of 720p; an AAC encode
~40 ms per second of audio): the session runs it in a worker thread.
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
from ._audio import audio_packets, cut_audio_ts
from ._decision import AudioOutput, Plan, SubtitleOutput
from ._errors import CutError
from ._fmp4 import (
    Fmp4Unsupported,
    aac_init_segment,
    audio_media_segment,
    encoded_audio_fragment,
    init_segment,
    media_segment,
)
from ._mp4box import track_config
from ._mpegts import MPEGTS_AT_SOURCE_ZERO, MUX_OPTIONS, shift, spec_clean
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


# The index a rendition's fMP4 init segment (init.mp4) goes by, beside its media segments.
INIT_INDEX = -1


@dataclass(frozen=True, slots=True)
class RenditionCut:
    """How one rendition's segments are made in-process."""

    kind: RenditionKind
    extension: str  # of its segment URIs
    # Segment index -> bytes, blocking; INIT_INDEX gives the init segment where `has_init`.
    cut: Callable[[int], bytes]
    has_init: bool = False
    # Cut the next segment as soon as one is served: audio encoded in-process costs ~0.4 s of
    # a worker thread per 6 s segment (a copy ~20 ms), which a player would otherwise wait for
    # at every segment; players fetch in order, so the next one is almost always wanted.
    read_ahead: bool = False


def renditions(source: SessionSource, plan: Plan, timeline: Timeline) -> dict[str, RenditionCut]:
    """The in-process cut of every rendition that has one (encoded video has the encoder)."""
    path = source.media
    cuts: dict[str, RenditionCut] = {}
    if plan.container == "fmp4":
        cuts.update(_fmp4_cuts(path, plan, timeline))
    else:
        cuts.update(_ts_cuts(path, plan, timeline))
    last = len(timeline) - 1

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


def _ts_cuts(path: Path, plan: Plan, timeline: Timeline) -> dict[str, RenditionCut]:
    """MPEG-TS: the video GOPs, and each audio rendition copied or AAC-encoded."""
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
        cuts[output.rendition] = RenditionCut(
            "audio", "ts", audio_cut(output), read_ahead=output.action == "encode"
        )
    return cuts


def _fmp4_cuts(path: Path, plan: Plan, timeline: Timeline) -> dict[str, RenditionCut]:
    """Fragmented MP4 (CMAF, one track per rendition): `init.mp4` + `seg-N.m4s` each, sequence
    number N + 1, decode times on the same source time + TS_OFFSET timeline as MPEG-TS."""
    cuts: dict[str, RenditionCut] = {}
    last = len(timeline) - 1
    if plan.video is not None and plan.video.action == "copy":
        video_index = plan.video.stream_index
        video_init = _memo(lambda: init_segment(path, video_index))

        def video(index: int) -> bytes:
            if index == INIT_INDEX:
                return video_init()
            return media_segment(path, video_index, timeline[index], index + 1, init=video_init())

        cuts["v"] = RenditionCut("video", "m4s", _fmp4_errors(video), has_init=True)

    def audio_cut(output: AudioOutput) -> Callable[[int], bytes]:
        stream_index = output.stream_index
        if output.action == "encode":
            init = _memo(
                lambda: aac_init_segment(output.sample_rate, output.channels, output.bitrate)
            )
        else:
            init = _memo(lambda: init_segment(path, stream_index))

        def cut(index: int) -> bytes:
            if index == INIT_INDEX:
                return init()
            segment = timeline[index]
            start, end = segment.start, segment.start + segment.duration
            if output.action == "copy":
                return audio_media_segment(
                    path,
                    stream_index,
                    start,
                    end,
                    index + 1,
                    is_first=index == 0,
                    is_last=index == last,
                    init=init(),
                )
            packets = audio_packets(
                path,
                stream_index,
                start,
                end,
                encode=output,
                is_first=index == 0,
                is_last=index == last,
            )
            return encoded_audio_fragment(packets, index + 1, track_config(init()).timescale)

        return _fmp4_errors(cut)

    for output in plan.audio:
        cuts[output.rendition] = RenditionCut(
            "audio", "m4s", audio_cut(output), has_init=True, read_ahead=output.action == "encode"
        )
    return cuts


def _memo(make: Callable[[], bytes]) -> Callable[[], bytes]:
    """A rendition's init segment, made once (its cuts need it to read the track's layout)."""
    made: list[bytes] = []

    def get() -> bytes:
        if not made:
            made.append(make())
        return made[0]

    return get


def _fmp4_errors(cut: Callable[[int], bytes]) -> Callable[[int], bytes]:
    """What the fMP4 writer cannot describe is a failed cut (a clear 502), never a 500. The
    plan only picks fMP4 for streams whose codec parameters the probe could read, so this is a
    file that changed or an odd stream."""

    def guarded(index: int) -> bytes:
        try:
            return cut(index)
        except Fmp4Unsupported as exc:
            raise CutError(str(exc)) from None

    return guarded
