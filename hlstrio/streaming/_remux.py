"""Cut one remux segment in-process: source packets between two keyframes -> MPEG-TS bytes.

Stateless like nginx-vod-module: any segment, any order, no process and no temp file. Blocking
(PyAV demux/mux, ~10 ms per 6 s of 720p): callers run it in a worker thread.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from ._timeline import Segment

# Added to every pts/dts: sources with B-frames start with negative DTS, which some players
# (Chromium's native HLS) reject; 1.4 s is what the ffmpeg CLI's default mux delay gives.
TS_OFFSET = Fraction(14, 10)
# Audio that belongs to a segment sits in the file before its first video keyframe.
_SEEK_BACK = Fraction(2)


# PAT/PMT/SDT once at the start of each segment, not every 0.1 s: a segment is always
# fetched whole, and the default repeats cost ~30 kbit/s (8% of a 360p stream).
_MUX_OPTIONS = {"pat_period": "3600", "sdt_period": "3600"}


class CutError(Exception):
    """The segment could not be cut (file changed or unreadable); one line for the client."""


def cut_segment(path: Path, segment: Segment, video_index: int, audio_index: int | None) -> bytes:
    """Mux the GOPs [segment.start_pts, segment.end_pts) and the audio in that time span."""
    if segment.start_pts is None or segment.end_pts is None:
        raise ValueError("remux needs a keyframe-cut segment")
    out_buf = io.BytesIO()
    try:
        with av.open(str(path), "r") as source:
            video_in = source.streams[video_index]
            streams = [video_in]
            audio_in = None
            if audio_index is not None:
                audio_in = source.streams[audio_index]
                streams.append(audio_in)
            vtb = video_in.time_base
            if vtb is None:
                raise CutError("video stream has no time base")
            start_t = segment.start_pts * vtb
            end_t = segment.end_pts * vtb
            with av.open(out_buf, "w", format="mpegts", options=_MUX_OPTIONS) as out:
                video_out = out.add_stream_from_template(video_in)
                audio_out = out.add_stream_from_template(audio_in) if audio_in else video_out
                seek_to = max(segment.start_pts - int(_SEEK_BACK / vtb), 0)
                source.seek(seek_to, stream=video_in, backward=True, any_frame=False)
                video_started = video_done = False
                audio_done = audio_in is None
                for packet in source.demux(streams):
                    if packet.pts is None or packet.size == 0:
                        continue
                    if packet.stream.index == video_index:
                        if not video_started:
                            if packet.is_keyframe and packet.pts == segment.start_pts:
                                video_started = True
                            else:
                                continue
                        elif packet.is_keyframe and packet.pts >= segment.end_pts:
                            video_done = True
                        if video_done:
                            if audio_done:
                                break
                            continue
                        _shift(packet, vtb)
                        packet.stream = video_out
                        out.mux(packet)
                    elif packet.time_base is not None:
                        t = packet.pts * packet.time_base
                        if t >= end_t:
                            audio_done = True
                            if video_done:
                                break
                            continue
                        if t < start_t:
                            continue
                        _shift(packet, packet.time_base)
                        packet.stream = audio_out
                        out.mux(packet)
                if not video_started:
                    raise CutError(f"keyframe at pts {segment.start_pts} not found")
    except (av.FFmpegError, OSError) as exc:
        raise CutError(f"cannot read {path.name}: {exc}") from None
    return out_buf.getvalue()


def _shift(packet: av.Packet[Any], time_base: Fraction) -> None:
    offset = int(TS_OFFSET / time_base)
    packet.pts = (packet.pts or 0) + offset
    if packet.dts is not None:
        packet.dts += offset
