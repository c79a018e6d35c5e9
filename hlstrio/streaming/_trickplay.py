"""Trick play: I-frame playlists and scrub thumbnails, both made on demand from the keyframe index.

Two things players use while the viewer drags the seek bar or fast-forwards:

* **I-frame playlists** (RFC 8216 4.3.3.6 EXT-X-I-FRAMES-ONLY, 4.3.4.3
  EXT-X-I-FRAME-STREAM-INF; Apple's HLS Authoring Specification 6.1/6.2 want one for every
  video variant). Each entry is one keyframe of the copied video. Its resource, `iframe-K.ts`,
  holds that keyframe and nothing else, cut in-process like a remux segment (`_remux`): PAT and
  PMT first (the Media Initialization Section of RFC 8216 3.2, so every entry decodes on its
  own, in any order), the one PES on source time + TS_OFFSET (the clock of every other
  rendition), counters made by `_continuity.make_continuous` with K as the index. That last
  step is not needed for continuity between entries, a player in trick mode skips entries
  anyway, but it is what makes skipping free: every PES PID starts each resource at 0 and ends
  it at 15, so *any* entry may follow any other without a counter jump; it also drops the SDT
  and keeps one PAT and one PMT, like every other TS this server sends. Cost: 0-15 padding
  packets (1.4 KB on average) per entry, counted in BANDWIDTH.
  EXT-X-BYTERANGE into the regular segments is the other layout RFC 8216 allows; it needs the
  byte offset of each keyframe inside a segment, which exists only once the segment is cut
  (and the continuity padding moves it), so it is not used.
  An entry's EXTINF is the time to the next listed keyframe (RFC 8216 4.3.3.6), so the
  durations sum to the video's, like the media playlist's. Apple 6.8 asks for dense I-frames
  (about one a second); the keyframe index has what the encoder put there (a keyframe every
  2-10 s is typical) and a copy cannot add any. Keyframes closer than MIN_IFRAME_SPACING to the
  previous entry are left out instead (all-intra sources would otherwise list every frame).
  BANDWIDTH is the peak segment bit rate of the I-frame playlist (RFC 8216 4.3.4.2 and
  draft-pantos-hls-rfc8216bis 4.1: the largest bit rate of any run of entries lasting 0.5 to
  1.5 target durations), from the size of each resource as served: the keyframe packet's size
  (`measure_keyframes`: the MP4 sample table for free, else one seek and read per keyframe),
  plus what the muxer and `make_continuous` add (`iframe_ts_bytes`: exact but within a few
  bytes of a 16-packet edge, where it may count one cycle too many). The
  GOP sizes of the keyframe index are only an upper bound for that (they include every P and B
  frame); they stand in when no measurement is at hand. fMP4 sessions get `iframe-K.m4s`
  instead: one sync sample in a moof + mdat for the video rendition's own init segment.

* **Scrub thumbnails**: `thumb-N.jpg`, a small JPEG of the video at N x THUMB_SECONDS, made
  when asked for: seek to the nearest keyframe at or before that time, decode that one packet
  (never the frames after it: a keyframe decodes on its own), scale, encode with libavcodec's
  mjpeg encoder, all through PyAV in-process (no ffmpeg process). Two hours of 1080p MP4:
  0.12 s cold, most of it libavformat parsing the sample table at open, against 0.25 s for an
  ffmpeg process; 16 ms through a `KeyframeReader` kept open (`python -m bench thumbnails`).
  `thumbnails_vtt` lists them as a WebVTT "thumbnails track", the de-facto format of video.js
  (videojs-vtt-thumbnails), JW Player and Shaka (`addThumbnailsTrack`): each cue's payload is
  an image URI. One JPEG per cue, not sprites (tiles of many thumbnails addressed with
  `#xywh=`): a sprite costs one decode per tile before its first byte can be sent (25 tiles:
  ~0.5 s of 1080p decoding), and the viewer wants the one under the pointer now; separate
  images are each one decode, cached separately, and a few KB over a kept-alive connection.
  Sprites pay off for thumbnails made ahead of time (Jellyfin's trickplay), which is what this
  avoids.

Everything that reads the file blocks (PyAV demux/decode/encode): run it in a worker thread.
Names, the thumbnail grid, the playlists and the WebVTT are pure.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import av.filter
import av.video.stream

from ..media import MediaInfo
from ._continuity import CC_MODULUS, PACKET_BYTES
from ._decision import video_gop_bytes
from ._errors import CutError
from ._fmp4 import (
    _reorder_delay_ticks,  # the video rendition's decode delay: the same for its I-frames
    _sample_rewriter,  # packet -> sample bytes for the init segment's sample entry
    decode_timeline,
    output_ticks,
)
from ._mp4box import Sample, fragment, track_config
from ._mpegts import MUX_OPTIONS, shift, spec_clean
from ._webvtt import cue_timestamp

__all__ = [
    "IFRAME_PLAYLIST_URI",
    "MIN_IFRAME_SPACING",
    "THUMBNAILS_VTT_URI",
    "THUMB_SECONDS",
    "THUMB_WIDTH",
    "IFrame",
    "IFrameList",
    "KeyframeReader",
    "KeyframeSizes",
    "cut_iframe_fmp4",
    "cut_iframe_ts",
    "encode_jpeg",
    "iframe_fmp4_bytes",
    "iframe_list",
    "iframe_playlist",
    "iframe_stream_inf",
    "iframe_ts_bytes",
    "iframe_uri",
    "iframes_for",
    "measure_keyframes",
    "parse_iframe_name",
    "parse_thumbnail_name",
    "peak_bits_per_second",
    "thumbnail_count",
    "thumbnail_jpeg",
    "thumbnail_key",
    "thumbnail_keyframe",
    "thumbnail_size",
    "thumbnail_uri",
    "thumbnails_vtt",
]

IFRAME_PLAYLIST_URI = "iframes.m3u8"  # beside index.m3u8, at the session root
THUMBNAILS_VTT_URI = "thumbs.vtt"
THUMB_SECONDS = 10.0  # one thumbnail per this much of the timeline
THUMB_WIDTH = 240  # pixels; the height follows the display aspect ratio (even)
# Keyframes closer than this to the previous I-frame entry are not listed (at most ~2 a second).
MIN_IFRAME_SPACING = 0.5  # seconds
_MAX_INDEX_DIGITS = 9  # as seg-N: ASCII digits only, at most 9
# Added to where a seek lands when an MPEG-TS source's timestamp search overshoots (as _remux).
_SEEK_BACK = Fraction(2)
# mjpeg quantiser scale (ffmpeg's -q:v): 2 best .. 31 worst; 5 is ~6 KB at 240x136.
_JPEG_QSCALE = 5
_FF_QP2LAMBDA = 118  # libavutil: global_quality is qscale x this


# --- names ------------------------------------------------------------------------------------


def iframe_uri(index: int, extension: str = "ts") -> str:
    """The URI of I-frame entry `index` (its place in the I-frame playlist, from 0)."""
    return f"iframe-{index}.{extension}"


def thumbnail_uri(index: int) -> str:
    return f"thumb-{index}.jpg"


def _parse_indexed(name: str, prefix: str, extensions: frozenset[str]) -> tuple[int, str] | None:
    """`{prefix}12.{ext}` -> (12, ext); the same strictness as `_playlist.parse_segment_name`
    (ASCII digits, at most 9, a known extension), so no odd name reaches a cut."""
    if not name.startswith(prefix):
        return None
    digits, dot, extension = name[len(prefix) :].partition(".")
    if (
        not dot
        or extension not in extensions
        or not 0 < len(digits) <= _MAX_INDEX_DIGITS
        or not (digits.isascii() and digits.isdigit())
    ):
        return None
    return int(digits), extension


def parse_iframe_name(name: str) -> tuple[int, str] | None:
    """`iframe-3.ts` -> (3, "ts"), `iframe-3.m4s` -> (3, "m4s"); None for anything else."""
    return _parse_indexed(name, "iframe-", frozenset({"ts", "m4s"}))


def parse_thumbnail_name(name: str) -> int | None:
    """`thumb-12.jpg` -> 12; None for anything else."""
    parsed = _parse_indexed(name, "thumb-", frozenset({"jpg"}))
    return parsed[0] if parsed is not None else None


def thumbnail_key(index: int) -> tuple[str, int]:
    """The key of thumbnail `index` in the server's `SegmentCache` (owner: the session id).

    Segments are keyed (rendition, index) with short rendition ids, so "thumb" cannot collide.
    """
    return ("thumb", index)


# --- the I-frame list (pure) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IFrame:
    """One entry of an I-frame playlist."""

    index: int  # its place in the playlist: the K of iframe-K
    pts: int  # the keyframe's presentation time, video stream time base
    end_pts: int  # the next entry's pts, or the end of the video
    duration: float  # seconds, (end_pts - pts) x time base: its EXTINF
    resource_bytes: int  # size of its resource as served (exact or an upper bound)


@dataclass(frozen=True, slots=True)
class IFrameList:
    frames: tuple[IFrame, ...]
    time_base: Fraction
    target_duration: int  # EXT-X-TARGETDURATION
    peak_bandwidth: int  # bits/s: BANDWIDTH
    average_bandwidth: int  # bits/s: AVERAGE-BANDWIDTH
    exact: bool  # False: sizes are upper bounds (GOP sizes), so the bandwidths are too

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> IFrame:
        return self.frames[index]

    @property
    def duration(self) -> float:
        return sum(f.duration for f in self.frames)


def iframe_list(
    keyframe_pts: Sequence[int],
    time_base: Fraction,
    end_pts: int,
    resource_bytes: Sequence[int],
    *,
    min_spacing_seconds: float = MIN_IFRAME_SPACING,
    exact: bool = True,
) -> IFrameList:
    """The I-frame entries of a copied video: its keyframes, each lasting to the next one listed.

    `keyframe_pts` is the keyframe index (MediaInfo.keyframe_pts), `end_pts` the end of the
    video (MediaInfo.video_end_pts), `resource_bytes` the served size of each keyframe's
    resource (`iframe_ts_bytes`), aligned with `keyframe_pts`. The first keyframe is always
    listed (the media playlist starts there too, so both timelines have the same origin and
    duration); a keyframe less than `min_spacing_seconds` after the last listed one is not.
    """
    if not keyframe_pts:
        raise ValueError("no keyframes")
    if len(resource_bytes) != len(keyframe_pts):
        raise ValueError("one size per keyframe")
    # Keyframes come in decode order; their presentation order is the same in every stream
    # seen, but sort to be sure (duplicates: the first one's size).
    pairs = zip(reversed(keyframe_pts), reversed(resource_bytes), strict=True)
    ordered = sorted(dict(pairs).items())
    spacing = Fraction(min_spacing_seconds)
    kept: list[tuple[int, int]] = []
    for pts, size in ordered:
        if pts >= end_pts:
            break
        if not kept or (pts - kept[-1][0]) * time_base >= spacing:
            kept.append((pts, size))
    if not kept:
        raise ValueError("no keyframe before the end of the video")
    stops = [p for p, _ in kept[1:]] + [end_pts]
    frames = tuple(
        IFrame(k, pts, stop, float((stop - pts) * time_base), size)
        for k, ((pts, size), stop) in enumerate(zip(kept, stops, strict=True))
    )
    longest = max(f.duration for f in frames)
    # RFC 8216 4.3.3.1: every EXTINF, rounded to the nearest integer, <= the target (as Timeline).
    target = max(1, math.ceil(longest - 1e-3))
    durations = [f.duration for f in frames]
    sizes = [f.resource_bytes for f in frames]
    total = sum(durations)
    average = sum(sizes) * 8 / total if total > 0 else 0.0
    peak = peak_bits_per_second(sizes, durations, target)
    return IFrameList(
        frames, time_base, target, math.ceil(peak), math.ceil(min(average, peak)), exact
    )


def peak_bits_per_second(
    sizes: Sequence[int], durations: Sequence[float], target_duration: float
) -> float:
    """The peak segment bit rate of a media playlist (draft-pantos-hls-rfc8216bis 4.1): the
    largest bit rate of any run of consecutive segments lasting 0.5 to 1.5 target durations.

    Without the window a short last entry (a keyframe just before the end) would set the
    "peak" at many times the real rate. A playlist shorter than half a target: its average.
    """
    low, high = 0.5 * target_duration, 1.5 * target_duration
    best = -1.0
    for i in range(len(durations)):
        seconds = 0.0
        bits = 0
        for j in range(i, len(durations)):
            seconds += durations[j]
            bits += sizes[j] * 8
            if seconds > high + 1e-9:
                break
            if seconds >= low - 1e-9 and seconds > 0:
                best = max(best, bits / seconds)
    if best < 0:
        total = sum(durations)
        best = sum(sizes) * 8 / total if total > 0 else 0.0
    return best


# What an MPEG-TS I-frame resource costs besides the keyframe's own bytes (PyAV's mpegts muxer
# with MUX_OPTIONS, then make_continuous), measured on H.264 and HEVC (tests pin it): a PES
# header with PTS and DTS (19 bytes; 14 without B-frames); the access unit delimiter the muxer
# puts first (H.264: 6 bytes, HEVC: 7); the parameter sets the bitstream filter puts before a
# keyframe of an avcC/hvcC stream (the record is a little larger than the NAL units it holds
# with their start codes); the PCR in the first packet's adaptation field (8 bytes). The video
# PID is then padded to whole 16-packet cycles, and one PAT and one PMT come first.
_PES_EXTRA_BYTES = 19 + 7
_FIRST_PACKET_PAYLOAD = PACKET_BYTES - 4 - 8  # header, adaptation field with the PCR
_PSI_PACKETS = 2  # PAT, PMT


def iframe_ts_bytes(keyframe_bytes: int, parameter_set_bytes: int) -> int:
    """Bytes of the `iframe-K.ts` of a keyframe packet of `keyframe_bytes` (pure).

    `parameter_set_bytes`: what the muxer may put in front of a keyframe (its extradata:
    `KeyframeSizes.parameter_set_bytes`). Exact for PyAV's muxer as tested, but never under:
    one 16-packet cycle (3,008 bytes) over when the PES ends within a few bytes of a cycle's
    end (the larger header and AUD are assumed), or when the parameter sets counted are in the
    keyframe already (Annex B sources: they are not added again).
    """
    pes = keyframe_bytes + parameter_set_bytes + _PES_EXTRA_BYTES
    packets = 1 + max(0, math.ceil((pes - _FIRST_PACKET_PAYLOAD) / (PACKET_BYTES - 4)))
    padded = CC_MODULUS * math.ceil(packets / CC_MODULUS)
    return (padded + _PSI_PACKETS) * PACKET_BYTES


# An fMP4 I-frame resource is one `_mp4box.fragment` of one sample: moof (mfhd, traf with
# tfhd holding the defaults, tfdt, trun with the data offset and a composition offset) and
# the mdat header, 112 bytes; the sample is the packet less what the sample entry already
# has (AUD, parameter sets), but Annex B start codes of 3 bytes become 4-byte lengths: a
# little slack for those.
_FMP4_OVERHEAD_BYTES = 112 + 16


def iframe_fmp4_bytes(keyframe_bytes: int) -> int:
    """Bytes of the `iframe-K.m4s` of a keyframe packet of `keyframe_bytes` (an upper bound)."""
    return keyframe_bytes + _FMP4_OVERHEAD_BYTES


def iframes_for(
    info: MediaInfo, sizes: KeyframeSizes | None = None, container: Literal["ts", "fmp4"] = "ts"
) -> IFrameList:
    """The I-frame list of a probed file whose video is copied (a remux session), for
    resources in `container` (the session's: Plan.container).

    With `sizes` (from `measure_keyframes`, blocking, once per file) the bandwidths are the
    served sizes'; without, each keyframe counts as its whole GOP (MediaInfo.gop_bytes, the
    video's own share for Matroska Cues), an upper bound: BANDWIDTH then says about what the
    video variant's does, several times the real I-frame rate.
    """
    if info.video_time_base is None or info.video_end_pts is None or not info.keyframe_pts:
        raise ValueError("no video keyframe index")
    if sizes is None or len(sizes.packet_bytes) != len(info.keyframe_pts):
        sizes = KeyframeSizes(video_gop_bytes(info), 0, exact=False)
    if container == "fmp4":
        resource = [iframe_fmp4_bytes(b) for b in sizes.packet_bytes]
    else:
        resource = [iframe_ts_bytes(b, sizes.parameter_set_bytes) for b in sizes.packet_bytes]
    return iframe_list(
        info.keyframe_pts, info.video_time_base, info.video_end_pts, resource, exact=sizes.exact
    )


# --- playlist text (pure) ---------------------------------------------------------------------


def iframe_playlist(
    frames: IFrameList, *, extension: Literal["ts", "m4s"] = "ts", init_uri: str | None = None
) -> str:
    """The I-frame media playlist (RFC 8216 4.3.3.6), complete before any entry is cut.

    Version 4 for EXT-X-I-FRAMES-ONLY; with `init_uri` (fMP4 entries, EXT-X-MAP) 5 is the
    minimum (4.3.2.5) and 7 is written, as in the session's fMP4 playlists. Each entry is a
    whole resource, so there is no EXT-X-BYTERANGE.
    """
    version = 7 if init_uri is not None else 4
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{version}",
        f"#EXT-X-TARGETDURATION:{frames.target_duration}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        "#EXT-X-I-FRAMES-ONLY",
    ]
    if init_uri is not None:
        lines.append(f'#EXT-X-MAP:URI="{init_uri}"')
    for frame in frames.frames:
        lines.append(f"#EXTINF:{frame.duration:.6f},")
        lines.append(iframe_uri(frame.index, extension))
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def iframe_stream_inf(
    frames: IFrameList,
    *,
    codec: str,
    width: int | None,
    height: int | None,
    uri: str = IFRAME_PLAYLIST_URI,
    video_range: str | None = None,
) -> str:
    """The master playlist's EXT-X-I-FRAME-STREAM-INF line (RFC 8216 4.3.4.3) for `frames`.

    `codec` is the video's RFC 6381 string (VideoOutput.codec_string): CODECS names only what
    the I-frame resources hold, no audio. The tag stands alone (its URI is an attribute, no URI
    line follows it); put it after the EXT-X-STREAM-INF lines. `video_range` ("SDR", "PQ",
    "HLG") when the variants say VIDEO-RANGE too.
    """
    attrs = [
        f"BANDWIDTH={frames.peak_bandwidth}",
        f"AVERAGE-BANDWIDTH={frames.average_bandwidth}",
        f'CODECS="{codec}"',
    ]
    if width and height:
        attrs.append(f"RESOLUTION={width}x{height}")
    if video_range is not None:
        attrs.append(f"VIDEO-RANGE={video_range}")
    attrs.append(f'URI="{uri}"')
    return "#EXT-X-I-FRAME-STREAM-INF:" + ",".join(attrs)


# --- thumbnails (pure) ------------------------------------------------------------------------


def thumbnail_count(duration_seconds: float, every_seconds: float = THUMB_SECONDS) -> int:
    """How many thumbnails cover `duration_seconds`: one per started `every_seconds`."""
    if every_seconds <= 0:
        raise ValueError("every_seconds must be > 0")
    total_ms, every_ms = round(duration_seconds * 1000), round(every_seconds * 1000)
    return max(1, -(-total_ms // max(every_ms, 1)))


def thumbnail_keyframe(
    keyframe_pts: Sequence[int],
    time_base: Fraction,
    index: int,
    every_seconds: float = THUMB_SECONDS,
) -> int:
    """The pts of the keyframe thumbnail `index` shows: the last one at or before
    index x every_seconds into the stream (times count from the first keyframe, where the
    playlists start). Indexes past the end give the last keyframe.
    """
    if not keyframe_pts:
        raise ValueError("no keyframes")
    if index < 0:
        raise ValueError("negative thumbnail index")
    ordered = sorted(keyframe_pts)
    wanted = ordered[0] + Fraction(index) * Fraction(every_seconds) / time_base
    # Rounding guard: a keyframe 1 tick "after" an exact grid time (ms time bases) still counts.
    position = bisect.bisect_right(ordered, math.floor(wanted + Fraction(1, 2)))
    return ordered[max(0, position - 1)]


def thumbnails_vtt(
    duration_seconds: float,
    every_seconds: float = THUMB_SECONDS,
    uri_template: str = "thumb-{n}.jpg",
) -> str:
    """A WebVTT thumbnails track: cue n spans [n x every, (n+1) x every) of the stream (the
    last one ends at `duration_seconds`) and its payload is `uri_template` with {n} filled in,
    relative to the .vtt's own URL as those players resolve it.
    """
    if "{n}" not in uri_template:
        raise ValueError("uri_template needs an {n}")
    every_ms = round(every_seconds * 1000)
    total_ms = round(duration_seconds * 1000)
    blocks = ["WEBVTT", ""]
    for n in range(thumbnail_count(duration_seconds, every_seconds)):
        start = n * every_ms
        end = min(total_ms, start + every_ms)
        blocks += [f"{cue_timestamp(start)} --> {cue_timestamp(end)}", uri_template.format(n=n), ""]
    return "\n".join(blocks)


def thumbnail_size(
    coded_width: int,
    coded_height: int,
    width: int,
    sample_aspect_ratio: Fraction | None = None,
    rotation_degrees: int = 0,
) -> tuple[int, int]:
    """(width, height) of a thumbnail `width` wide of a picture as displayed: the sample aspect
    ratio applied (anamorphic DVDs, 1440x1080 HDV), a quarter turn swapping the sides. Never
    wider than the displayed picture; both sides even (4:2:0 JPEG), at least 2.
    """
    sar = sample_aspect_ratio if sample_aspect_ratio and sample_aspect_ratio > 0 else Fraction(1)
    display_w, display_h = Fraction(coded_width) * sar, Fraction(coded_height)
    if rotation_degrees % 180 == 90:
        display_w, display_h = display_h, display_w
    w = min(width, math.floor(display_w))
    w = max(2, w - w % 2)
    h = max(2, 2 * round(w * display_h / display_w / 2))
    return w, h


# --- reading the source (blocking) ------------------------------------------------------------


class KeyframeReader:
    """One open demuxer of a file's video stream, for any number of keyframe reads.

    Opening is most of the cost of a thumbnail: libavformat parses the whole sample table of
    an MP4 at open, 50-150 ms for two hours of 1080p (170,000 video and 340,000 audio samples)
    against 10-25 ms to seek, decode one keyframe and encode the JPEG. A viewer dragging the
    seek bar asks for thumbnails in quick succession, and a player in trick mode for I-frames:
    keep one reader per playing file (or session) and send them all through it.

    Not thread-safe: one call at a time (a lock per reader, held across the worker-thread
    call). After a CutError, close it and open a new one. The free functions below open one
    per call.
    """

    def __init__(self, path: Path, video_index: int) -> None:
        self.path = path
        try:
            self._source = av.open(str(path), "r")
        except (av.FFmpegError, OSError) as exc:
            raise CutError(f"cannot read {path.name}: {exc}") from None
        try:
            stream = self._source.streams[video_index]
        except IndexError:
            self._source.close()
            raise CutError(f"no stream {video_index}") from None
        if not isinstance(stream, av.video.stream.VideoStream) or stream.time_base is None:
            self._source.close()
            raise CutError(f"stream {video_index} is not video")
        self._stream = stream
        self._time_base: Fraction = stream.time_base
        # One picture per decode: frame threads would only add their start-up and a picture
        # of delay; slice threads still share one out.
        stream.codec_context.thread_type = "SLICE"

    def close(self) -> None:
        self._source.close()

    def __enter__(self) -> KeyframeReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except (av.FFmpegError, OSError) as exc:
            raise CutError(f"cannot read {self.path.name}: {exc}") from None

    def keyframe_packet(self, pts: int) -> av.Packet[Any]:
        """The keyframe packet at `pts`. Matroska and MP4 seek to it by their index; MPEG-TS
        seeks by a timestamp search that may land past it: then from further back, and at
        worst from the start of the file. Raises CutError if there is none at `pts`."""
        source, stream = self._source, self._stream
        back = math.ceil(_SEEK_BACK / self._time_base)
        with self._reading():
            for target in (pts, pts - back, None):
                if target is None:
                    source.seek(0)
                else:
                    source.seek(max(target, 0), stream=stream, backward=True, any_frame=False)
                found = _scan_to(source, stream, pts)
                if found is not None:
                    return found
        raise CutError(f"keyframe at pts {pts} not found (file changed?)")

    def iframe_ts(self, frame: IFrame) -> bytes:
        """`iframe-K.ts`: PAT, PMT and the one keyframe at `frame.pts`, on source time +
        TS_OFFSET (as every rendition), counters by `make_continuous` with K = frame.index."""
        stream = self._stream
        packet = self.keyframe_packet(frame.pts)
        buffer = io.BytesIO()
        # The entry lasts to the next keyframe, which only the playlist says: a PES has no
        # duration, and the packet's own is one picture's.
        with self._reading(), av.open(buffer, "w", format="mpegts", options=MUX_OPTIONS) as out:
            video_out = out.add_stream_from_template(stream)
            shift(packet, self._time_base)
            packet.stream = video_out
            out.mux(packet)
        return spec_clean(buffer.getvalue(), frame.index)

    def iframe_fmp4(self, frame: IFrame, init: bytes) -> bytes:
        """`iframe-K.m4s`: moof + mdat of the one keyframe at `frame.pts`, for the video
        rendition's own init segment `init` (the I-frame playlist's EXT-X-MAP names it).

        On the rendition's timeline (`_fmp4`: source time + TS_OFFSET in track ticks, decode
        time = presentation time - the reorder delay), so the picture presents where it does
        in the video segments; the one sample lasts to the next entry (RFC 8216 4.3.3.6), and
        mfhd's sequence number is K + 1.
        """
        stream = self._stream
        config = track_config(init)
        packet = self.keyframe_packet(frame.pts)
        scale = config.timescale
        with self._reading():
            rewrite = _sample_rewriter(stream, config)
            delay = _reorder_delay_ticks(stream, scale)
        base, durations, offsets = decode_timeline(
            [output_ticks(frame.pts, self._time_base, scale)],
            output_ticks(frame.end_pts, self._time_base, scale),
            delay,
        )
        sample = Sample(rewrite(bytes(packet)), durations[0], True, offsets[0])
        return fragment([sample], base_decode_time=base, sequence_number=frame.index + 1)

    def thumbnail_jpeg(self, keyframe_pts: int, width: int = THUMB_WIDTH) -> bytes:
        """A JPEG `width` pixels wide (at most the picture's) of the keyframe at
        `keyframe_pts`, as displayed (sample aspect ratio applied, rotation metadata turned,
        as ffmpeg's CLI does).

        One packet is decoded: the keyframe, which needs no other picture. The decoder is
        drained right after it, so one that holds pictures back for reordering (H.264 and HEVC
        with B-frames) still returns it at once; the next call's seek resets it (PyAV's
        `InputContainer.seek` flushes every decoder of the file).
        """
        stream = self._stream
        context = stream.codec_context
        packet = self.keyframe_packet(keyframe_pts)
        with self._reading():
            frames = [*stream.decode(packet), *stream.decode(None)]
            if not frames:
                raise CutError(f"keyframe at pts {keyframe_pts} did not decode")
            return encode_jpeg(frames[0], width, context.sample_aspect_ratio)

    def keyframe_sizes(self, keyframe_pts: Sequence[int]) -> KeyframeSizes:
        """See `measure_keyframes`."""
        source, stream = self._source, self._stream
        extradata = len(stream.codec_context.extradata or b"")
        entries = [e.size for e in stream.index_entries if e.is_keyframe and e.size > 0]
        if source.format.name.startswith("mov") and len(entries) == len(keyframe_pts):
            return KeyframeSizes(tuple(entries), extradata)
        sizes: list[int] = []
        with self._reading():
            for pts in keyframe_pts:
                source.seek(pts, stream=stream, backward=True, any_frame=False)
                packet = _scan_to(source, stream, pts)
                if packet is None:
                    break
                sizes.append(packet.size)
            else:
                return KeyframeSizes(tuple(sizes), extradata)
            # A seek missed (an MPEG-TS source): one pass over the whole video stream.
            source.seek(0)
            found = {
                p.pts: p.size
                for p in source.demux(stream)
                if p.is_keyframe and p.pts is not None and p.size
            }
        if not all(pts in found for pts in keyframe_pts):
            raise CutError("keyframes not where the index says (file changed?)")
        return KeyframeSizes(tuple(found[pts] for pts in keyframe_pts), extradata)


def _scan_to(
    source: av.container.InputContainer, stream: av.video.stream.VideoStream, pts: int
) -> av.Packet[Any] | None:
    """Demux from where `source` is to the keyframe at `pts`; None once past it."""
    for packet in source.demux(stream):
        if packet.pts is None or packet.size == 0:
            continue
        if packet.is_keyframe:
            if packet.pts == pts:
                return packet
            if packet.pts > pts:
                return None
    return None


@dataclass(frozen=True, slots=True)
class KeyframeSizes:
    """Sizes that fix what each I-frame resource weighs (`iframe_ts_bytes`)."""

    packet_bytes: tuple[int, ...]  # each keyframe's packet, aligned with keyframe_pts
    parameter_set_bytes: int  # the stream's extradata: what a muxer may repeat before each
    exact: bool = True


def measure_keyframes(path: Path, video_index: int, keyframe_pts: Sequence[int]) -> KeyframeSizes:
    """The size of every keyframe packet (blocking; once per file: keep the result).

    MP4/MOV: from the sample table libavformat read at open (no further reads). Otherwise one
    seek and one packet per keyframe (~0.4 ms each: 1.5 s for the 3,600 keyframes of two
    hours with a keyframe every 2 s), and a read of the whole video stream if a seek misses
    (MPEG-TS). Raises CutError if the file cannot be read or has changed.
    """
    with KeyframeReader(path, video_index) as reader:
        return reader.keyframe_sizes(keyframe_pts)


def cut_iframe_ts(path: Path, video_index: int, frame: IFrame) -> bytes:
    """`iframe-K.ts` of I-frame entry `frame` (see `KeyframeReader.iframe_ts`), opening the
    file for this one cut. Raises CutError when the file cannot be read or the keyframe is not
    where the index says."""
    with KeyframeReader(path, video_index) as reader:
        return reader.iframe_ts(frame)


def cut_iframe_fmp4(path: Path, video_index: int, frame: IFrame, init: bytes) -> bytes:
    """`iframe-K.m4s` of I-frame entry `frame` (see `KeyframeReader.iframe_fmp4`), opening
    the file for this one cut. Raises CutError (unreadable, keyframe missing) or
    Fmp4Unsupported (the stream cannot be copied into fMP4: no fMP4 session exists then)."""
    with KeyframeReader(path, video_index) as reader:
        return reader.iframe_fmp4(frame, init)


def thumbnail_jpeg(
    path: Path, video_stream_index: int, keyframe_pts: int, width: int = THUMB_WIDTH
) -> bytes:
    """A JPEG `width` wide of the keyframe at `keyframe_pts` (see
    `KeyframeReader.thumbnail_jpeg`), opening the file for this one picture. Blocking: run it
    in a worker thread. Raises CutError when the file cannot be read."""
    with KeyframeReader(path, video_stream_index) as reader:
        return reader.thumbnail_jpeg(keyframe_pts, width)


def encode_jpeg(frame: av.VideoFrame, width: int, sample_aspect_ratio: Fraction | None) -> bytes:
    """Scale `frame` to a thumbnail `width` wide and encode it as a baseline JPEG (JFIF).

    JFIF is full-range BT.601 YCbCr: the picture is converted to that from what the frame
    says it is (limited range unless tagged otherwise; BT.709 or another matrix if tagged), so
    colours come out as they look in the player.
    """
    rotation = int(frame.rotation) if frame.rotation else 0
    w, h = thumbnail_size(frame.width, frame.height, width, sample_aspect_ratio, rotation)
    scaled_w, scaled_h = (h, w) if rotation % 180 == 90 else (w, h)
    src_range = "JPEG" if int(frame.color_range) == 2 else "MPEG"
    picture = frame.reformat(
        width=scaled_w,
        height=scaled_h,
        format="yuvj420p",
        dst_colorspace="ITU601",
        interpolation="BICUBIC",
        src_color_range=src_range,
        dst_color_range="JPEG",
    )
    if rotation % 360:
        picture = _rotate(picture, rotation)
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = w, h
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    encoder.color_range = 2  # AVCOL_RANGE_JPEG
    encoder.qscale = True
    encoder.global_quality = _JPEG_QSCALE * _FF_QP2LAMBDA
    picture.pts = 0
    packets = [*encoder.encode(picture), *encoder.encode(None)]
    return b"".join(bytes(p) for p in packets)


def _rotate(picture: av.VideoFrame, rotation: int) -> av.VideoFrame:
    """Turn `picture` as its display matrix says, as ffmpeg's CLI autorotates.
    `VideoFrame.rotation` is in degrees counterclockwise: 90 is a quarter turn to the left."""
    turn = rotation % 360
    filters = {90: [("transpose", "cclock")], 270: [("transpose", "clock")]}.get(
        turn, [("hflip", ""), ("vflip", "")]
    )
    graph = av.filter.Graph()
    source = graph.add_buffer(
        width=picture.width,
        height=picture.height,
        format=picture.format,
        time_base=Fraction(1, 25),
    )
    chain = source
    for name, argument in filters:
        node = graph.add(name, argument) if argument else graph.add(name)
        chain.link_to(node)
        chain = node
    sink = graph.add("buffersink")
    chain.link_to(sink)
    graph.configure()
    picture.pts = 0
    graph.push(picture)
    turned = graph.pull()
    assert isinstance(turned, av.VideoFrame)
    return turned
