"""What the server knows about one media file, read with PyAV.

The values here are frozen: a probe result is computed once per (path, size, mtime) and cached,
so everything downstream (codec decision, remux timeline, playlists) is pure over it. It
describes every track a library file has (all audio tracks, every subtitle stream, the
video's colour and scan type), not only the ones a session happens to use.
"""

from __future__ import annotations

import io
import itertools
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
from av.stream import Disposition
from av.video.stream import VideoStream

from . import _ebml
from ._language import language_tag

FieldOrder = Literal["progressive", "tt", "bb", "tb", "bt"]
DynamicRange = Literal["SDR", "PQ", "HLG"]
# Where keyframe_pts / gop_bytes came from: "scan" demuxed every video packet (exact), "mov"
# read the MP4 sample table (exact), "cues" read Matroska Cues (keyframes exact, GOP bytes
# estimated from cluster positions: they include interleaved audio and subtitles).
IndexSource = Literal["scan", "mov", "cues"]


@dataclass(frozen=True, slots=True)
class VideoInfo:
    index: int  # stream index in the container
    codec: str  # ffmpeg codec name: "h264", "hevc", "vp9", "av1", ...
    width: int
    height: int
    fps: float
    # RFC 6381 string for CODECS ("avc1.64001f", "hvc1.2.4.L93.B0", "av01.0.08M.10",
    # "vp09.00.31.08"), None if unknown (then the video cannot be copied).
    hls_codec: str | None
    bit_rate: int | None
    profile: str | None = None  # libavcodec's name: "High", "Main 10", "Profile 0", ...
    pix_fmt: str | None = None  # "yuv420p", "yuv420p10le", ...
    bit_depth: int = 8  # of the luma samples
    # ffmpeg's names for the colour description (what -color_primaries etc. take), None when
    # the stream leaves it unspecified.
    color_primaries: str | None = None  # "bt709", "bt2020", ...
    color_transfer: str | None = None  # "bt709", "smpte2084" (PQ), "arib-std-b67" (HLG), ...
    color_space: str | None = None  # the matrix: "bt709", "bt2020nc", ...
    color_range: str | None = None  # "tv" (limited) or "pc" (full)
    dynamic_range: DynamicRange = "SDR"  # EXT-X-STREAM-INF VIDEO-RANGE
    # libavformat's order: "tt" = top field coded and shown first, "tb" = top coded first,
    # bottom shown first; None when nothing says.
    field_order: FieldOrder | None = None
    interlaced: bool = False


@dataclass(frozen=True, slots=True)
class AudioInfo:
    index: int  # stream index in the container; what the API's `audio` field selects
    codec: str  # "aac", "opus", "mp3", "ac3", "eac3", "dts", "truehd", "flac", ...
    channels: int
    sample_rate: int
    language: str | None  # BCP-47 (RFC 5646, shortest ISO 639 code): "en", "fr", "pt-BR"
    # RFC 6381 string when HLS can carry the codec in *some* segment container, None when in
    # none (DTS, TrueHD, Vorbis, PCM...): see audio_codec_string for which container.
    hls_codec: str | None
    bit_rate: int | None
    title: str | None = None  # the track's name in the file ("Director's commentary")
    default: bool = False  # the file's default track (disposition)
    forced: bool = False
    layout: str | None = None  # ffmpeg's channel layout name: "stereo", "5.1(side)", "7.1"
    profile: str | None = None  # "LC", "HE-AAC", "DTS-HD MA", "Dolby TrueHD + Dolby Atmos"...
    bit_depth: int | None = None  # of the coded samples, where the stream says (PCM, FLAC, ALAC)
    commentary: bool = False  # disposition "comment"
    describes_video: bool = False  # audio description (dispositions visual_impaired/descriptions)


@dataclass(frozen=True, slots=True)
class SubtitleInfo:
    """One subtitle stream inside the media file (sidecar files are the library's Sidecar)."""

    index: int  # stream index in the container
    codec: str  # "subrip", "ass", "mov_text", "webvtt", "hdmv_pgs_subtitle", "dvd_subtitle"...
    text: bool  # text (can become WebVTT) rather than bitmaps (burn-in or nothing)
    language: str | None  # BCP-47
    title: str | None = None
    forced: bool = False
    default: bool = False
    hearing_impaired: bool = False


@dataclass(frozen=True, slots=True)
class MediaInfo:
    container: str  # PyAV format name, first alias: "mov", "matroska", "mpegts", ...
    duration: float  # seconds
    size: int  # bytes on disk
    video: VideoInfo | None
    audio: tuple[AudioInfo, ...]
    # Video keyframes in decode order, as pts in the video stream's time base: the only places
    # a remux segment may start. Empty when there is no video.
    keyframe_pts: tuple[int, ...]
    # Bytes from each keyframe up to the next one (same length as keyframe_pts): of video
    # packets only, except with index_source "cues", where they are cluster-position spans
    # and include the interleaved audio and subtitles (an over-estimate of the video).
    gop_bytes: tuple[int, ...]
    video_time_base: Fraction | None
    video_start_pts: int | None  # pts of the first video frame
    video_end_pts: int | None  # pts just past the last video frame (last pts + its duration)
    # Container start time (s): ffmpeg's -ss and output timestamps count from here.
    start_time: float = 0.0
    subtitles: tuple[SubtitleInfo, ...] = ()
    index_source: IndexSource = "scan"
    # Bytes of each keyframe packet (same length as keyframe_pts): the I-frame playlist's
    # BANDWIDTH (streaming/_trickplay.py). Free from a scan or an MP4 sample table; read with
    # one seek per keyframe from Matroska Cues.
    keyframe_bytes: tuple[int, ...] = ()


class ProbeError(Exception):
    """The file is not something we can stream: unreadable, corrupt, truncated or no media."""


# Demuxers we are willing to run on library files. Anything else (playlists, concat scripts,
# image sequences) could make libavformat open further files or URLs named by the file.
_FORMAT_WHITELIST = "mov,matroska,mpegts,avi,mpeg,flv,asf,ogg"
_OPEN_OPTIONS = {"format_whitelist": _FORMAT_WHITELIST, "protocol_whitelist": "file"}

# Codecs that are single pictures rather than video: only chosen when nothing else is there.
_IMAGE_CODECS = frozenset({"png", "mjpeg", "bmp", "gif", "webp", "tiff"})

# How far the demuxed video may fall short of the duration the header announces before we
# call the file truncated (headers written up front outlive a cut-off copy).
_TRUNCATION_SLACK = 1.0  # seconds

# Errors from libavformat and the OS while reading a file: all mean "not playable" to us.
_READ_ERRORS = (av.FFmpegError, OSError, ValueError, EOFError, ArithmeticError, LookupError)


# From this size on, MP4/MOV keyframes come from the container's sample index (the moov box,
# read at open) and Matroska/WebM keyframes from its Cues, instead of a demux of every packet:
# a two-hour film costs milliseconds, not a read of gigabytes. Smaller files take the exact
# full scan, which is cheap for them.
INDEX_MIN_BYTES = 32 * 1024 * 1024

_Opener = Callable[[], av.container.InputContainer]


def probe(path: Path, *, index_min_bytes: int = INDEX_MIN_BYTES) -> MediaInfo:
    """Read a media file's streams and video keyframe index.

    Blocking (file I/O, up to a full demux of the video stream; for H.264 one keyframe is
    decoded to learn the scan type): run it in a worker thread.
    Raises ProbeError, and only ProbeError, for anything that is not a playable file.
    """
    # An absolute path can never be mistaken for a "proto:" URL by libavformat.
    name = os.path.abspath(path)

    def opener() -> av.container.InputContainer:
        return av.open(name, "r", container_options=dict(_OPEN_OPTIONS), metadata_errors="replace")

    try:
        size = os.stat(name).st_size
        with opener() as container:
            return _probe_container(
                container, size, use_index=size >= index_min_bytes, reopen=opener
            )
    except ProbeError as exc:
        raise ProbeError(f"{path}: {exc}") from None
    except _READ_ERRORS as exc:
        raise ProbeError(f"{path}: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    # FFmpegError and OSError repeat the file name in str(exc); the bare reason reads better.
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    text = " ".join(str(reason).split())
    return text if len(text) <= 200 else text[:197] + "..."


def _probe_container(
    container: av.container.InputContainer,
    size: int,
    *,
    use_index: bool = False,
    reopen: _Opener | None = None,
) -> MediaInfo:
    vstream = _pick_video_stream(container)
    audio = tuple(info for s in container.streams.audio if (info := _audio_info(s)) is not None)
    subtitles = tuple(
        sub for s in container.streams.subtitles if (sub := _subtitle_info(s)) is not None
    )
    if vstream is None and not audio:
        raise ProbeError("no video or audio stream")

    duration = _container_duration(container)
    video: VideoInfo | None = None
    index = _KeyframeIndex()
    time_base: Fraction | None = None
    if vstream is not None:
        time_base = vstream.time_base
        if time_base is None or time_base <= 0:
            raise ProbeError("video stream has no time base")
        fps = _stream_fps(vstream)
        expected_end = _announced_video_end(vstream, time_base)
        index = _container_index(
            container,
            vstream,
            fps,
            size,
            use_index=use_index,
            end=expected_end if expected_end is not None else duration,
            reopen=reopen,
        )
        if not index.keyframe_pts:
            raise ProbeError("video stream has no keyframes")
        assert index.end_pts is not None and index.start_pts is not None
        video_end = float(index.end_pts * time_base)
        if expected_end is not None and video_end < expected_end - _TRUNCATION_SLACK:
            raise ProbeError(
                f"truncated: video data ends at {video_end:.2f}s of {expected_end:.2f}s"
            )
        video = _video_info(vstream, fps, index.first_keyframe)
        if duration is None:
            duration = float((index.end_pts - index.start_pts) * time_base)
    if duration is None or duration <= 0:
        raise ProbeError("unknown duration")

    return MediaInfo(
        container=container.format.name.split(",")[0],
        duration=duration,
        size=size,
        video=video,
        audio=audio,
        keyframe_pts=tuple(index.keyframe_pts),
        gop_bytes=tuple(index.gop_bytes),
        video_time_base=time_base,
        video_start_pts=index.start_pts,
        video_end_pts=index.end_pts,
        start_time=(container.start_time or 0) / 1_000_000,
        subtitles=subtitles,
        index_source=index.source,
        keyframe_bytes=_keyframe_bytes(container, vstream, index) if vstream else (),
    )


def _keyframe_bytes(
    container: av.container.InputContainer,
    stream: VideoStream,
    index: _KeyframeIndex,
) -> tuple[int, ...]:
    """Each keyframe packet's size: what the index saw, else (Cues) from the cluster headers
    (`_ebml`: one small read per cue), else one libavformat seek and packet read per cue
    (1.4 s for a 2 h 1080p film on a cold disk); () if that fails too (BANDWIDTH then takes
    the GOP bound)."""
    if len(index.keyframe_bytes) == len(index.keyframe_pts):
        return tuple(index.keyframe_bytes)
    from_clusters = _cluster_keyframe_bytes(container.name, index)
    if from_clusters is not None:
        return from_clusters
    sizes: list[int] = []
    try:
        for pts in index.keyframe_pts:
            container.seek(pts, stream=stream, backward=True, any_frame=False)
            for packet in container.demux(stream):
                if packet.pts is not None and packet.pts >= pts:
                    sizes.append(packet.size if packet.pts == pts else 0)
                    break
    except _READ_ERRORS:
        return ()
    return tuple(sizes) if len(sizes) == len(index.keyframe_pts) and all(sizes) else ()


def _cluster_keyframe_bytes(name: str, index: _KeyframeIndex) -> tuple[int, ...] | None:
    """Keyframe sizes read from the Matroska cluster headers, or None to ask libavformat.

    The video's TrackNumber is the block of the first cluster that has the first keyframe's
    timestamp and size as libavformat demuxed it; the sizes must then also agree with every
    keyframe libavformat demuxed (`checked_keyframe_bytes`), as the cue times do with every
    cluster's first block of that track (header-stripped or laced tracks do not)."""
    checked = index.checked_keyframe_bytes
    if not index.cluster_positions or 0 not in checked:
        return None
    times = index.keyframe_pts
    try:
        fd = os.open(name, os.O_RDONLY)
    except OSError:
        return None
    try:

        def read(offset: int, length: int) -> bytes:
            return os.pread(fd, length, offset)

        first = _ebml.cluster_blocks(read, index.cluster_positions[0])
        wanted = (times[0], checked[0], False)  # (timestamp, size, laced)
        track = next((b.track for b in first if (b.timestamp, b.size, b.laced) == wanted), None)
        if track is None:
            return None
        sizes = _ebml.keyframe_sizes(read, index.cluster_positions, times, track)
    except (_ebml.EbmlError, OSError):
        return None
    finally:
        os.close(fd)
    if any(sizes[cue] != size for cue, size in checked.items()):
        return None
    return tuple(sizes)


def _container_index(
    container: av.container.InputContainer,
    vstream: VideoStream,
    fps: float,
    size: int,
    *,
    use_index: bool,
    end: float | None,
    reopen: _Opener | None,
) -> _KeyframeIndex:
    """The container's own keyframe index where it has a trustworthy one, else a full scan."""
    found: _KeyframeIndex | None = None
    if use_index:
        kind = container.format.name.split(",")[0]
        try:
            if kind == "mov":
                found = _index_from_mov(container, vstream, fps, size)
            elif kind == "matroska":
                found = _index_from_cues(container, vstream, fps, size, end)
        except av.FFmpegError:
            found = None  # a seek or read the index needed failed: the scan decides
        if found is not None:
            return found
        if reopen is not None:
            # The attempt may have seeked anywhere; the scan must see the file from its start.
            with reopen() as fresh:
                return _scan_video_packets(fresh, _same_stream(fresh, vstream), fps)
    return _scan_video_packets(container, vstream, fps)


def _same_stream(container: av.container.InputContainer, stream: VideoStream) -> VideoStream:
    again = container.streams[stream.index]
    if not isinstance(again, VideoStream):  # the file changed under us
        raise ProbeError("video stream vanished on reopening")
    return again


def _pick_video_stream(container: av.container.InputContainer) -> VideoStream | None:
    candidates = [
        s
        for s in container.streams.video
        if not s.disposition & (Disposition.attached_pic | Disposition.still_image)
        and s.codec_context is not None
    ]
    # Cover art muxed as a plain track (no disposition) must not win over the real video.
    moving = [s for s in candidates if s.codec_context.codec.canonical_name not in _IMAGE_CODECS]
    chosen = moving or candidates
    return chosen[0] if chosen else None


# --- what each stream is ----------------------------------------------------------------------


def _title(stream: av.stream.Stream) -> str | None:
    # Matroska's track Name arrives as "title", an MP4 track's udta name as "name". (MP4
    # handler names are not used: mostly "SoundHandler" and the like.)
    metadata = stream.metadata
    title = " ".join((metadata.get("title") or metadata.get("name") or "").split())
    return title or None


def _video_info(stream: VideoStream, fps: float, first_keyframe: bytes) -> VideoInfo:
    cc = stream.codec_context
    codec = cc.codec.canonical_name
    pix_fmt = cc.pix_fmt
    primaries, transfer, matrix = int(cc.color_primaries), int(cc.color_trc), int(cc.colorspace)
    colour = Colour(
        primaries=primaries if primaries in _PRIMARIES_NAMES else None,
        transfer=transfer if transfer in _TRANSFER_NAMES else None,
        matrix=matrix if matrix in _MATRIX_NAMES else None,
        full_range=int(cc.color_range) == 2,  # AVCOL_RANGE_JPEG
    )
    params = VideoParams(
        profile=cc.profile,
        pix_fmt=pix_fmt,
        width=int(cc.width),
        height=int(cc.height),
        fps=fps,
        colour=colour,
    )
    extradata = cc.extradata or b""
    hls = video_codec_string(codec, extradata, params)
    if hls is None and first_keyframe.startswith((b"\0\0\1", b"\0\0\0\1")):
        # MPEG-TS may carry parameter sets only in-band, in the Annex B keyframes.
        hls = video_codec_string(codec, first_keyframe, params)
    container_order = _FIELD_ORDERS.get(int(cc.field_order))
    field_order, interlaced = container_order, container_order not in (None, "progressive")
    if codec == "h264" and first_keyframe:
        field_order, interlaced = h264_scan_type(extradata, first_keyframe, container_order)
    return VideoInfo(
        index=stream.index,
        codec=codec,
        width=int(cc.width),
        height=int(cc.height),
        fps=fps,
        hls_codec=hls,
        bit_rate=cc.bit_rate or None,
        profile=cc.profile,
        pix_fmt=pix_fmt,
        bit_depth=_pix_fmt_depth(pix_fmt) or 8,
        color_primaries=_PRIMARIES_NAMES.get(primaries),
        color_transfer=_TRANSFER_NAMES.get(transfer),
        color_space=_MATRIX_NAMES.get(matrix),
        color_range=_RANGE_NAMES.get(int(cc.color_range)),
        dynamic_range=dynamic_range(_TRANSFER_NAMES.get(transfer)),
        field_order=field_order,
        interlaced=interlaced,
    )


def _audio_info(stream: av.AudioStream) -> AudioInfo | None:
    cc = stream.codec_context
    if cc is None:
        return None
    codec = cc.codec.canonical_name
    disposition = stream.disposition
    layout = cc.layout.name if cc.layout is not None else ""
    return AudioInfo(
        index=stream.index,
        codec=codec,
        channels=int(cc.channels),
        sample_rate=int(cc.sample_rate),
        language=language_tag(stream.metadata.get("language")),
        hls_codec=audio_codec_string(codec, cc.profile, cc.extradata),
        bit_rate=cc.bit_rate or None,
        title=_title(stream),
        default=bool(disposition & Disposition.default),
        forced=bool(disposition & Disposition.forced),
        # "6 channels" is libavutil's name for a count with no known order: not a layout.
        layout=None if not layout or layout.endswith(" channels") else layout,
        profile=cc.profile,
        bit_depth=audio_bit_depth(codec, cc.extradata),
        commentary=bool(disposition & Disposition.comment),
        describes_video=bool(
            disposition & (Disposition.visual_impaired | Disposition.descriptions)
        ),
    )


def _subtitle_info(stream: av.stream.Stream) -> SubtitleInfo | None:
    cc = stream.codec_context
    if cc is None:  # a codec libavcodec does not know: nothing could convert or burn it
        return None
    codec = cc.codec
    disposition = stream.disposition
    return SubtitleInfo(
        index=stream.index,
        codec=codec.canonical_name,
        # The codec descriptor's TEXT_SUB property; everything else is pictures.
        text=bool(codec.text_sub) and not codec.bitmap_sub,
        language=language_tag(stream.metadata.get("language")),
        title=_title(stream),
        forced=bool(disposition & Disposition.forced),
        default=bool(disposition & Disposition.default),
        hearing_impaired=bool(disposition & (Disposition.hearing_impaired | Disposition.captions)),
    )


def _pix_fmt_depth(pix_fmt: str | None) -> int | None:
    if not pix_fmt:
        return None
    try:
        return int(av.VideoFormat(pix_fmt).components[0].bits)
    except (ValueError, IndexError):
        return None


def dynamic_range(transfer: str | None) -> DynamicRange:
    """VIDEO-RANGE (RFC 8216bis 4.4.6.2): PQ for SMPTE ST 2084, HLG for ARIB STD-B67, else SDR.

    HEVC HLG streams that signal "bt2020-10" in the VUI and HLG only in an alternative
    transfer characteristics SEI are reported as SDR: the SEI is not read here.
    """
    if transfer == "smpte2084":
        return "PQ"
    if transfer == "arib-std-b67":
        return "HLG"
    return "SDR"


def _stream_fps(stream: VideoStream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate is not None and rate > 0:
            return float(rate)
    return 0.0


def _container_duration(container: av.container.InputContainer) -> float | None:
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000  # AV_TIME_BASE
    ends = [
        float(s.duration * s.time_base)
        for s in container.streams
        if s.duration and s.time_base is not None
    ]
    return max(ends) if ends else None


def _announced_video_end(stream: VideoStream, time_base: Fraction) -> float | None:
    """Where the header says the video stream ends, in seconds; None if it does not say.

    mp4 carries a per-track duration; Matroska files from ffmpeg and mkvmerge carry a DURATION
    tag. A container-wide duration is not used: audio may legitimately outlast the video.
    """
    start = float((stream.start_time or 0) * time_base)
    if stream.duration:
        return start + float(stream.duration * time_base)
    tag = stream.metadata.get("DURATION")
    seconds = _parse_hms(tag) if tag else None
    return None if seconds is None else start + seconds


def _parse_hms(text: str) -> float | None:
    """Parse "HH:MM:SS.nnnnnnnnn" (the Matroska statistics tag format)."""
    parts = text.strip().split(":")
    if len(parts) != 3:
        return None
    try:
        h, m, s = int(parts[0]), int(parts[1]), float(parts[2])
    except ValueError:
        return None
    return h * 3600 + m * 60 + s


# --- scan type --------------------------------------------------------------------------------
# libavformat fills field_order from the container (Matroska FieldOrder, the MP4 'fiel' box) or
# from the codec parser during stream probing (MPEG-TS). Matroska files often say nothing, and
# ffmpeg's own Matroska muxer and demuxer disagree on the meaning of its values (an ffmpeg
# "tt" stream reads back as "tb"). For H.264 the stream itself decides: its first keyframe is
# handed, as an Annex B elementary stream, to libavformat's raw H.264 demuxer, whose parser reads
# the slice header and picture timing SEI (pic_struct) exactly as for MPEG-TS. One keyframe is
# decoded in the process: about 11 ms at 1080p here.

_FIELD_ORDERS: dict[int, FieldOrder] = {1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}


def h264_scan_type(
    extradata: bytes, keyframe: bytes, fallback: FieldOrder | None = None
) -> tuple[FieldOrder | None, bool]:
    """(field order, interlaced) of an H.264 stream, read from its first keyframe.

    `extradata` is the avcC record (mp4, Matroska) or Annex B parameter sets (MPEG-TS) and
    `keyframe` the packet as the container stores it. When the keyframe does not decide the
    order (field-coded pictures without pic_struct), the decoded picture's interlaced flag
    still decides `interlaced`, and the order is `fallback` (the container's) if interlaced.
    """
    elementary = h264_annexb(extradata, keyframe)
    if not elementary:
        return fallback, fallback not in (None, "progressive")
    options = {"probesize": "32", "analyzeduration": "0"}
    try:
        with av.open(io.BytesIO(elementary), "r", format="h264", options=options) as raw:
            stream = raw.streams.video[0]
            order = _FIELD_ORDERS.get(int(stream.codec_context.field_order))
            if order is not None:
                return order, order != "progressive"
            frame = next(raw.decode(stream), None)
    except (av.FFmpegError, StopIteration, ValueError, IndexError):
        return fallback, fallback not in (None, "progressive")
    if frame is None or not frame.interlaced_frame:
        return ("progressive" if frame is not None else fallback), False
    return (fallback if fallback not in (None, "progressive") else None), True


def h264_annexb(extradata: bytes, packet: bytes) -> bytes:
    """An Annex B elementary stream of the parameter sets and one packet (pure).

    An avcC record (first byte 1) gives SPS/PPS and the NAL length size of the packet's
    length-prefixed NAL units; Annex B extradata and packets are concatenated as they are.
    Returns b"" when the record or packet is malformed.
    """
    if not extradata or extradata[0] != 1:
        return extradata + packet
    if len(extradata) < 7:
        return b""
    length_size = (extradata[4] & 3) + 1
    out = bytearray()
    pos = 5
    for mask in (0x1F, 0xFF):  # numOfSequenceParameterSets (5 bits), numOfPictureParameterSets
        if pos >= len(extradata):
            return b""
        count = extradata[pos] & mask
        pos += 1
        for _ in range(count):
            n = int.from_bytes(extradata[pos : pos + 2], "big")
            pos += 2
            if n == 0 or pos + n > len(extradata):
                return b""
            out += b"\0\0\0\1" + extradata[pos : pos + n]
            pos += n
    pos = 0
    while pos + length_size <= len(packet):
        n = int.from_bytes(packet[pos : pos + length_size], "big")
        pos += length_size
        if n == 0 or pos + n > len(packet):
            return b""
        out += b"\0\0\0\1" + packet[pos : pos + n]
        pos += n
    return bytes(out) if pos == len(packet) else b""


# --- keyframe index ---------------------------------------------------------------------------


class _KeyframeIndex:
    __slots__ = (
        "checked_keyframe_bytes",
        "cluster_positions",
        "end_pts",
        "first_keyframe",
        "gop_bytes",
        "keyframe_bytes",
        "keyframe_pts",
        "source",
        "start_pts",
    )

    def __init__(self, source: IndexSource = "scan") -> None:
        self.keyframe_pts: list[int] = []
        self.gop_bytes: list[int] = []
        self.keyframe_bytes: list[int] = []
        self.start_pts: int | None = None
        self.end_pts: int | None = None
        self.first_keyframe: bytes = b""
        self.source: IndexSource = source
        # Cues only: each cue's cluster offset, and the keyframe sizes libavformat demuxed
        # (cue number -> bytes) to check what `_ebml` reads from the cluster headers.
        self.cluster_positions: list[int] = []
        self.checked_keyframe_bytes: dict[int, int] = {}


def _frame_ticks(stream: VideoStream, fps: float) -> int:
    time_base = stream.time_base
    assert time_base is not None
    return round(1 / (fps * time_base)) if fps > 0 else 0


def _scan_video_packets(
    container: av.container.InputContainer, stream: VideoStream, fps: float
) -> _KeyframeIndex:
    """Demux (never decode) the video stream: keyframe pts, GOP sizes and the pts range."""
    index = _KeyframeIndex()
    frame_ticks = _frame_ticks(stream, fps)
    max_pts: int | None = None
    max_pts_duration = 0
    for packet in container.demux(stream):
        pts = packet.pts
        if pts is None:  # the demuxer's flush packet, or a packet we cannot place
            continue
        if packet.is_keyframe:
            index.keyframe_pts.append(pts)
            index.gop_bytes.append(0)
            index.keyframe_bytes.append(packet.size)
            if not index.first_keyframe:
                index.first_keyframe = bytes(packet)
        if index.gop_bytes:  # packets before the first keyframe cannot be played
            index.gop_bytes[-1] += packet.size
        if index.start_pts is None or pts < index.start_pts:
            index.start_pts = pts
        if max_pts is None or pts > max_pts:
            max_pts = pts
            max_pts_duration = packet.duration or frame_ticks
    if max_pts is not None:
        index.end_pts = max_pts + max_pts_duration
    return index


def _index_from_mov(
    container: av.container.InputContainer, stream: VideoStream, fps: float, size: int
) -> _KeyframeIndex | None:
    """Keyframes and GOP sizes from an MP4/MOV sample table, or None to fall back to a scan.

    The table gives each sample's DTS, size and keyframe flag; a keyframe's PTS is its DTS plus
    the composition offset, which encoders keep constant for keyframes. That is checked on the
    first, middle and last keyframe; any doubt (or a table that points past the end of a
    truncated file) means the full scan decides instead.
    """
    entries = list(stream.index_entries)
    if len(entries) < 2 or any(e.size <= 0 for e in entries):
        return None
    if max(e.pos + e.size for e in entries) > size:
        return None  # the table promises data the file does not have
    keyframes = [i for i, e in enumerate(entries) if e.is_keyframe]
    if not keyframes:
        return None
    first = _keyframe_packet(container, stream, entries[keyframes[0]].timestamp)
    if first is None or first.pts is None or first.dts is None:
        return None
    offset = first.pts - first.dts
    for k in {keyframes[len(keyframes) // 2], keyframes[-1]}:
        packet = _keyframe_packet(container, stream, entries[k].timestamp)
        if packet is None or packet.pts is None or packet.pts - entries[k].timestamp != offset:
            return None
    index = _KeyframeIndex("mov")
    index.first_keyframe = bytes(first)
    for i, entry in enumerate(entries):
        if entry.is_keyframe:
            index.keyframe_pts.append(entry.timestamp + offset)
            index.gop_bytes.append(0)
            index.keyframe_bytes.append(entry.size)
        if index.gop_bytes and i >= keyframes[0]:
            index.gop_bytes[-1] += entry.size
    index.start_pts = index.keyframe_pts[0]
    index.end_pts = max(e.timestamp for e in entries) + offset + _frame_ticks(stream, fps)
    return index


def _keyframe_packet(
    container: av.container.InputContainer, stream: VideoStream, dts: int
) -> av.Packet[Any] | None:
    container.seek(dts, stream=stream, backward=True, any_frame=False)
    for packet in container.demux(stream):
        if packet.dts is not None and packet.dts >= dts:
            return packet if packet.dts == dts and packet.is_keyframe else None
    return None


# Cues further apart than this are not "a cue per keyframe" of any real video: let the scan
# decide (it is cheap for a stream with so few keyframes anyway).
_MAX_CUE_INTERVAL = 30.0  # seconds


def _index_from_cues(
    container: av.container.InputContainer,
    stream: VideoStream,
    fps: float,
    size: int,
    end: float | None,
) -> _KeyframeIndex | None:
    """Keyframes from Matroska/WebM Cues, or None to fall back to a scan.

    libavformat's Matroska demuxer reads the Cues element lazily, on the first seek, into the
    stream's index entries (CueTime as pts, CueClusterPosition as an absolute file offset).
    mkvmerge and ffmpeg write a cue for every video keyframe; other writers may write fewer,
    or none (files written live). So the cues are used only if they are plausible (ordered,
    inside the file, covering the whole video, no gap a real GOP would not have) and agree with
    the video where checked: at the first, middle and last cue the keyframe must be found at
    the cue's time and the next keyframe at the next cue's time (none after the last one).
    Anything else: None.

    GOP bytes are cluster-position differences, so they include interleaved audio and
    subtitles: never less than the video (RFC 8216 4.3.4.2: BANDWIDTH must not be under the
    peak). The last GOP's bytes, the end pts and the first keyframe's bytes come from
    demuxing the packets there.
    """
    time_base = stream.time_base
    assert time_base is not None
    first_pts = stream.start_time or 0
    container.seek(first_pts, stream=stream, backward=True, any_frame=False)  # reads the Cues
    entries = sorted(
        {e.timestamp: e for e in stream.index_entries if e.is_keyframe}.values(),
        key=lambda e: e.timestamp,
    )
    if len(entries) < 2:
        return None
    times = [e.timestamp for e in entries]
    positions = [e.pos for e in entries]
    if any(b < a for a, b in itertools.pairwise(positions)) or positions[-1] >= size:
        return None
    intervals = [float((b - a) * time_base) for a, b in itertools.pairwise(times)]
    longest = max(intervals)
    if longest > _MAX_CUE_INTERVAL:
        return None
    if end is not None and end - float(times[-1] * time_base) > longest + _TRUNCATION_SLACK:
        return None  # cues stop before the video does

    frame_ticks = _frame_ticks(stream, fps)
    first = _check_gop(container, stream, times[0], times[1])
    if first is None:
        return None
    middle = len(times) // 2
    checked = {0: len(first.keyframe)}
    if middle < len(times) - 1:
        middle_gop = _check_gop(container, stream, times[middle], times[middle + 1])
        if middle_gop is None:
            return None
        checked[middle] = len(middle_gop.keyframe)
    tail = _last_gop(container, stream, times[-1], positions[-1], frame_ticks)
    if tail is None:
        return None

    index = _KeyframeIndex("cues")
    index.keyframe_pts = times
    index.first_keyframe = first.keyframe
    index.start_pts = min(first.min_pts, times[0])
    index.end_pts = tail.end_pts
    index.gop_bytes = cue_gop_bytes(positions, tail.span_bytes)
    index.cluster_positions = positions
    index.checked_keyframe_bytes = checked
    return index


@dataclass(frozen=True, slots=True)
class _Gop:
    keyframe: bytes  # the keyframe packet's data
    min_pts: int  # smallest pts from the seek point up to the next keyframe


def _check_gop(
    container: av.container.InputContainer, stream: VideoStream, pts: int, next_pts: int
) -> _Gop | None:
    """The GOP starting at a cue: its keyframe is at `pts` and the next one at `next_pts`."""
    container.seek(pts, stream=stream, backward=True, any_frame=False)
    keyframe: bytes | None = None
    min_pts: int | None = None
    for packet in container.demux(stream):
        if packet.pts is None:
            continue
        min_pts = packet.pts if min_pts is None else min(min_pts, packet.pts)
        if not packet.is_keyframe or packet.pts < pts:
            continue
        if keyframe is None:
            if packet.pts != pts:
                return None  # no keyframe where the cue says
            keyframe = bytes(packet)
        else:
            return _Gop(keyframe, min_pts) if packet.pts == next_pts else None
    return None


@dataclass(frozen=True, slots=True)
class _Tail:
    end_pts: int  # just past the last video frame
    span_bytes: int  # all packets (every stream) from the last cue's cluster to the end


def _last_gop(
    container: av.container.InputContainer,
    stream: VideoStream,
    pts: int,
    position: int,
    frame_ticks: int,
) -> _Tail | None:
    """Demux every stream from the last cue to the end of the file."""
    container.seek(pts, stream=stream, backward=True, any_frame=False)
    found = False
    max_pts: int | None = None
    max_pts_duration = 0
    span = 0
    for packet in container.demux():
        if packet.pos is not None and packet.pos >= position:
            span += packet.size
        if packet.stream_index != stream.index or packet.pts is None:
            continue
        if packet.is_keyframe and packet.pts >= pts:
            if found or packet.pts != pts:
                return None  # a keyframe the cues do not list
            found = True
        if max_pts is None or packet.pts > max_pts:
            max_pts = packet.pts
            max_pts_duration = packet.duration or frame_ticks
    if not found or max_pts is None:
        return None
    return _Tail(max_pts + max_pts_duration, span)


def cue_gop_bytes(positions: Sequence[int], last_span_bytes: int) -> list[int]:
    """Bytes per GOP from the cluster positions of consecutive keyframe cues (pure).

    A GOP's bytes are the distance from its cluster to the next cluster a cue points to; the
    last cluster's span is measured (`last_span_bytes`), since the cues do not say where it
    ends. Keyframes that share a cluster each get the whole span: an upper bound for every
    GOP, at the price of counting that cluster more than once. (ffmpeg's muxer puts two
    keyframes in one cluster only when the first GOP is under 4 KiB; mkvmerge never does.)
    """
    n = len(positions)
    gop = [0] * n
    i = 0
    while i < n:
        j = i
        while j + 1 < n and positions[j + 1] == positions[i]:
            j += 1
        span = positions[j + 1] - positions[i] if j + 1 < n else last_span_bytes
        gop[i : j + 1] = [span] * (j + 1 - i)
        i = j + 1
    return gop


# --- RFC 6381 codec strings -------------------------------------------------------------------
# Pure functions over bytes and numbers, so they can be tested without media files.


@dataclass(frozen=True, slots=True)
class Colour:
    """A colour description as ISO/IEC 23091-2 (H.273) code points; None = unspecified."""

    primaries: int | None = None
    transfer: int | None = None
    matrix: int | None = None
    full_range: bool = False

    @property
    def wide(self) -> bool:
        """BT.2020 primaries or an HDR transfer: what players must know before they decode."""
        return self.primaries == 9 or self.transfer in (16, 18)


@dataclass(frozen=True, slots=True)
class VideoParams:
    """What some codec strings need beyond the extradata (VP9 has no configuration record in
    what libavformat exports; AV1 takes its colour fields from the stream)."""

    profile: str | None = None
    pix_fmt: str | None = None
    width: int = 0
    height: int = 0
    fps: float = 0.0
    colour: Colour = Colour()


def video_codec_string(
    codec: str, extradata: bytes, params: VideoParams | None = None
) -> str | None:
    """The HLS CODECS value for a video stream, from its codec name and extradata."""
    params = params or VideoParams()
    if codec == "h264":
        return h264_codec_string(extradata)
    if codec == "hevc":
        return hevc_codec_string(extradata)
    if codec == "av1":
        return av1_codec_string(extradata, params.colour)
    if codec == "vp9":
        return vp9_codec_string_for(params)
    return None


def audio_codec_string(codec: str, profile: str | None, extradata: bytes | None) -> str | None:
    """The HLS CODECS value for an audio stream; None when no HLS segment container carries it.

    Non-None does not mean "fits MPEG-TS": which container can carry which codec is the
    session plan's business. For reference (RFC 8216bis 3.1-3.4, Apple HLS authoring spec):
    "mp4a.40.*" AAC and "ac-3"/"ec-3" go in MPEG-TS and fMP4; "mp4a.40.34" MP3 in MPEG-TS
    (and packed audio); "Opus" and "fLaC" (their ISO BMFF sample entry names) only in fMP4.
    DTS, TrueHD, Vorbis and PCM go in none: None.
    """
    if codec == "aac":
        return aac_codec_string(profile, extradata)
    return _AUDIO_CODEC_STRINGS.get(codec)


_AUDIO_CODEC_STRINGS = {
    "mp3": "mp4a.40.34",
    "ac3": "ac-3",
    "eac3": "ec-3",
    "opus": "Opus",
    "flac": "fLaC",
}

_AAC_PROFILE_OBJECT_TYPES = {"LC": 2, "HE-AAC": 5, "HE-AACv2": 29}


def aac_codec_string(profile: str | None, extradata: bytes | None = None) -> str | None:
    """CODECS "mp4a.40.<object type>" for the AAC flavours HLS players decode: LC, HE, HEv2.

    The profile name comes from libavcodec; without one, the object type is read from the
    AudioSpecificConfig in extradata.
    """
    aot = _AAC_PROFILE_OBJECT_TYPES.get(profile) if profile else None
    if aot is None and not profile and extradata:
        aot = _asc_object_type(extradata)
    if aot not in (2, 5, 29):
        return None
    return f"mp4a.40.{aot}"


def _asc_object_type(asc: bytes) -> int | None:
    # audioObjectType: 5 bits; 31 escapes to 32 + the next 6 bits.
    if not asc:
        return None
    aot = asc[0] >> 3
    if aot == 31:
        if len(asc) < 2:
            return None
        aot = 32 + (((asc[0] & 0x07) << 3) | (asc[1] >> 5))
    return aot


_PCM_DEPTH = re.compile(r"pcm_[suf](\d+)")


def audio_bit_depth(codec: str, extradata: bytes | None) -> int | None:
    """Bits per coded sample where the stream states it: PCM by its codec name, FLAC from
    STREAMINFO, ALAC from its magic cookie. Lossy codecs have none; DTS and TrueHD state it in
    frame headers libavformat keeps to itself (None)."""
    if match := _PCM_DEPTH.match(codec):
        return int(match.group(1))
    data = extradata or b""
    if codec == "flac":
        if data.startswith(b"fLaC"):
            data = data[8:]  # the stream marker and the STREAMINFO block header
        if len(data) >= 34:
            return (((data[12] & 0x01) << 4) | (data[13] >> 4)) + 1
    if codec == "alac" and len(data) >= 18 and data[4:8] == b"alac":
        return data[17] or None
    return None


def h264_codec_string(extradata: bytes) -> str | None:
    """CODECS "avc1.PPCCLL" from an avcC record (mp4, Matroska) or Annex B SPS (MPEG-TS)."""
    if len(extradata) >= 4 and extradata[0] == 1:
        profile, constraints, level = extradata[1], extradata[2], extradata[3]
    else:
        sps = next((n for n in _annexb_nal_units(extradata) if n and n[0] & 0x1F == 7), None)
        if sps is None:
            return None
        rbsp = _unescape(sps[1:8])[:3]
        if len(rbsp) < 3:
            return None
        profile, constraints, level = rbsp
    if profile == 0:
        return None
    return f"avc1.{profile:02x}{constraints:02x}{level:02x}"


def hevc_codec_string(extradata: bytes) -> str | None:
    """CODECS "hvc1.<profile>.<compat>.<tier><level>.<constraints>" (ISO 14496-15 annex E).

    Reads the general profile_tier_level from an hvcC record or from the SPS of Annex B
    parameter sets; both lay out those 12 bytes identically.
    """
    if len(extradata) >= 23 and extradata[0] == 1:
        ptl = extradata[1:13]
    else:
        sps = next(
            (n for n in _annexb_nal_units(extradata) if len(n) > 2 and (n[0] >> 1) & 0x3F == 33),
            None,
        )
        if sps is None:
            return None
        # 2-byte NAL header, then a byte of vps id / sub-layer count, then profile_tier_level.
        ptl = _unescape(sps[2:])[1:13]
        if len(ptl) < 12:
            return None
    space = ("", "A", "B", "C")[ptl[0] >> 6]
    tier = "H" if ptl[0] & 0x20 else "L"
    profile_idc = ptl[0] & 0x1F
    if profile_idc == 0:
        return None
    compat = int.from_bytes(ptl[1:5], "big")
    compat_reversed = int(f"{compat:032b}"[::-1], 2)
    level_idc = ptl[11]
    constraints = bytes(ptl[5:11]).rstrip(b"\0")
    parts = [f"hvc1.{space}{profile_idc}", f"{compat_reversed:X}", f"{tier}{level_idc}"]
    parts.extend(f"{b:X}" for b in constraints)
    return ".".join(parts)


def av1_codec_string(av1c: bytes, colour: Colour | None = None) -> str | None:
    """CODECS "av01.P.LLT.DD[.M.CCC.cp.tc.mc.F]" from an AV1CodecConfigurationRecord.

    (AV1 Codec ISO Media File Format Binding, "Codecs Parameter String".) Profile, level,
    tier, bit depth, monochrome and chroma subsampling come from the av1C header, which
    mirrors the sequence header. The optional colour fields are all-or-none; they are written
    when the colour is wide gamut or HDR (players need them to choose), else left to their
    defaults (BT.709, limited range). None for anything but a version 1 av1C.
    """
    if len(av1c) < 4 or av1c[0] != 0x81:  # marker bit 1, version 1
        return None
    profile = av1c[1] >> 5
    level = av1c[1] & 0x1F
    tier = "H" if av1c[2] & 0x80 else "M"
    high_bitdepth, twelve_bit = bool(av1c[2] & 0x40), bool(av1c[2] & 0x20)
    depth = (12 if twelve_bit else 10) if high_bitdepth else 8
    text = f"av01.{profile}.{level:02d}{tier}.{depth:02d}"
    colour = colour or Colour()
    if not colour.wide:
        return text
    mono = (av1c[2] >> 4) & 1
    chroma = f"{(av1c[2] >> 3) & 1}{(av1c[2] >> 2) & 1}{av1c[2] & 0x03}"
    return (
        text
        + "."
        + ".".join(
            [
                str(mono),
                chroma,
                f"{_or(colour.primaries, 1):02d}",
                f"{_or(colour.transfer, 1):02d}",
                f"{_or(colour.matrix, 1):02d}",
                "1" if colour.full_range else "0",
            ]
        )
    )


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


# VP9 levels (VP9 bitstream spec, annex A): (level, max luma samples per second, max luma
# picture size). The bit rate and tiling limits are not known from a probe and not used.
_VP9_LEVELS = (
    (10, 829_440, 36_864),
    (11, 2_764_800, 73_728),
    (20, 4_608_000, 122_880),
    (21, 9_216_000, 245_760),
    (30, 20_736_000, 552_960),
    (31, 36_864_000, 983_040),
    (40, 83_558_400, 2_228_224),
    (41, 160_432_128, 2_228_224),
    (50, 311_951_360, 8_912_896),
    (51, 588_251_136, 8_912_896),
    (52, 1_176_502_272, 8_912_896),
    (60, 1_176_502_272, 35_651_584),
    (61, 2_353_004_544, 35_651_584),
    (62, 4_706_009_088, 35_651_584),
)


def vp9_level(width: int, height: int, fps: float) -> int:
    """The lowest VP9 level whose picture size and sample rate hold the stream (30 fps when
    the rate is unknown); 62 beyond the table."""
    picture = width * height
    rate = picture * (fps if fps > 0 else 30.0)
    for level, max_rate, max_picture in _VP9_LEVELS:
        if picture <= max_picture and rate <= max_rate:
            return level
    return 62


def vp9_codec_string(
    profile: int,
    level: int,
    bit_depth: int,
    chroma_subsampling: int = 1,
    colour: Colour | None = None,
) -> str:
    """CODECS "vp09.PP.LL.DD[.CC.cp.tc.mc.FF]" (VP Codec ISO Media File Format Binding).

    The optional fields are all-or-none and written for wide-gamut/HDR colour only, like AV1.
    chroma_subsampling: 0 = 4:2:0 vertical, 1 = 4:2:0 colocated with luma, 2 = 4:2:2, 3 = 4:4:4.
    """
    text = f"vp09.{profile:02d}.{level:02d}.{bit_depth:02d}"
    colour = colour or Colour()
    if not colour.wide:
        return text
    fields = [
        chroma_subsampling,
        _or(colour.primaries, 1),
        _or(colour.transfer, 1),
        _or(colour.matrix, 1),
        int(colour.full_range),
    ]
    return text + "".join(f".{v:02d}" for v in fields)


def vp9_codec_string_for(params: VideoParams) -> str | None:
    """vp09 from what libavcodec reports: the profile name, the pixel format, the size/rate.

    libavformat exports no vpcC record, so the level is the lowest that holds the picture
    size and sample rate (what ffmpeg's MP4 muxer writes too), and 4:2:0 is taken as
    colocated (ffmpeg's default when the chroma location is not "left").
    """
    if not params.pix_fmt:
        return None
    try:
        fmt = av.VideoFormat(params.pix_fmt)
        depth = int(fmt.components[0].bits)
        sub_w, sub_h = fmt.chroma_width(16) < 16, fmt.chroma_height(16) < 16
    except (ValueError, IndexError):
        return None
    chroma = 1 if sub_w and sub_h else 2 if sub_w else 3
    match = re.fullmatch(r"Profile (\d)", params.profile or "")
    # Without a name: profile 0/2 are 4:2:0 at 8 / 10-12 bits, 1/3 the same with 4:2:2 or 4:4:4.
    fallback = (0 if depth == 8 else 2) + (0 if chroma == 1 else 1)
    profile = int(match.group(1)) if match else fallback
    level = vp9_level(params.width, params.height, params.fps)
    return vp9_codec_string(profile, level, depth, chroma, params.colour)


def _annexb_nal_units(data: bytes) -> list[bytes]:
    """Split an Annex B byte stream at its 00 00 01 start codes (trailing zeros are harmless)."""
    units: list[bytes] = []
    start = data.find(b"\0\0\1")
    while start != -1:
        begin = start + 3
        start = data.find(b"\0\0\1", begin)
        units.append(data[begin : len(data) if start == -1 else start])
    return units


def _unescape(nal: bytes) -> bytes:
    """Drop emulation prevention bytes (00 00 03 -> 00 00) to get the RBSP."""
    return nal.replace(b"\0\0\3", b"\0\0")


# --- colour names -----------------------------------------------------------------------------
# ISO/IEC 23091-2 (H.273) code points and ffmpeg's names for them (what -color_primaries,
# -color_trc, -colorspace and zscale's options take). 2 is "unspecified" in all three tables,
# and is left out: unspecified is None.

_PRIMARIES_NAMES = {
    1: "bt709",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "film",
    9: "bt2020",
    10: "smpte428",
    11: "smpte431",
    12: "smpte432",
    22: "ebu3213",
}
_TRANSFER_NAMES = {
    1: "bt709",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    9: "log100",
    10: "log316",
    11: "iec61966-2-4",
    12: "bt1361e",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    17: "smpte428",
    18: "arib-std-b67",
}
_MATRIX_NAMES = {
    0: "gbr",
    1: "bt709",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "ycgco",
    9: "bt2020nc",
    10: "bt2020c",
    11: "smpte2085",
    12: "chroma-derived-nc",
    13: "chroma-derived-c",
    14: "ictcp",
}
_RANGE_NAMES = {1: "tv", 2: "pc"}  # AVCOL_RANGE_MPEG (limited), AVCOL_RANGE_JPEG (full)
