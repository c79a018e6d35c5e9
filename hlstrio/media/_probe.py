"""What the server knows about one media file, read with PyAV.

The values here are frozen: a probe result is computed once per (path, size, mtime) and cached,
so everything downstream (codec decision, remux timeline, playlists) is pure over it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.stream import Disposition
from av.video.stream import VideoStream


@dataclass(frozen=True, slots=True)
class VideoInfo:
    index: int  # stream index in the container
    codec: str  # ffmpeg codec name: "h264", "hevc", "vp9", ...
    width: int
    height: int
    fps: float
    hls_codec: str | None  # RFC 6381 string for CODECS ("avc1.64001f"), None if unknown
    bit_rate: int | None


@dataclass(frozen=True, slots=True)
class AudioInfo:
    index: int  # stream index in the container; what the API's `audio` field selects
    codec: str  # "aac", "opus", "mp3", "ac3", ...
    channels: int
    sample_rate: int
    language: str | None
    hls_codec: str | None  # "mp4a.40.2", "ac-3", ... None if not HLS-able as is
    bit_rate: int | None


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
    # Bytes of video packets from each keyframe up to the next one (same length as keyframe_pts).
    gop_bytes: tuple[int, ...]
    video_time_base: Fraction | None
    video_start_pts: int | None  # pts of the first video frame
    video_end_pts: int | None  # pts just past the last video frame (last pts + its duration)
    # Container start time (s): ffmpeg's -ss and output timestamps count from here.
    start_time: float = 0.0


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
# read at open) instead of a demux of every packet: a two-hour film costs milliseconds, not a
# read of gigabytes. Smaller files take the exact full scan, which is cheap for them.
INDEX_MIN_BYTES = 32 * 1024 * 1024


def probe(path: Path, *, index_min_bytes: int = INDEX_MIN_BYTES) -> MediaInfo:
    """Read a media file's streams and video keyframe index without decoding anything.

    Blocking (file I/O, up to a full demux of the video stream): run it in a worker thread.
    Raises ProbeError, and only ProbeError, for anything that is not a playable file.
    """
    # An absolute path can never be mistaken for a "proto:" URL by libavformat.
    name = os.path.abspath(path)
    try:
        size = os.stat(name).st_size
        with av.open(
            name, "r", container_options=dict(_OPEN_OPTIONS), metadata_errors="replace"
        ) as container:
            return _probe_container(container, size, use_index=size >= index_min_bytes)
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
    container: av.container.InputContainer, size: int, *, use_index: bool = False
) -> MediaInfo:
    vstream = _pick_video_stream(container)
    audio = tuple(info for s in container.streams.audio if (info := _audio_info(s)) is not None)
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
        found = _index_from_mov(container, vstream, fps, size) if use_index else None
        index = found or _scan_video_packets(container, vstream, time_base, fps)
        if not index.keyframe_pts:
            raise ProbeError("video stream has no keyframes")
        assert index.end_pts is not None and index.start_pts is not None
        video_end = float(index.end_pts * time_base)
        expected_end = _announced_video_end(vstream, time_base)
        if expected_end is not None and video_end < expected_end - _TRUNCATION_SLACK:
            raise ProbeError(
                f"truncated: video data ends at {video_end:.2f}s of {expected_end:.2f}s"
            )
        cc = vstream.codec_context
        codec = cc.codec.canonical_name
        hls = video_codec_string(codec, cc.extradata or b"")
        if hls is None and index.first_keyframe.startswith((b"\0\0\1", b"\0\0\0\1")):
            # MPEG-TS may carry parameter sets only in-band, in the Annex B keyframes.
            hls = video_codec_string(codec, index.first_keyframe)
        video = VideoInfo(
            index=vstream.index,
            codec=codec,
            width=int(vstream.codec_context.width),
            height=int(vstream.codec_context.height),
            fps=fps,
            hls_codec=hls,
            bit_rate=cc.bit_rate or None,
        )
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
    )


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


def _audio_info(stream: av.AudioStream) -> AudioInfo | None:
    cc = stream.codec_context
    if cc is None:
        return None
    codec = cc.codec.canonical_name
    language = (stream.metadata.get("language") or "").strip().lower()
    return AudioInfo(
        index=stream.index,
        codec=codec,
        channels=int(cc.channels),
        sample_rate=int(cc.sample_rate),
        language=None if language in ("", "und") else language,
        hls_codec=audio_codec_string(codec, cc.profile, cc.extradata),
        bit_rate=cc.bit_rate or None,
    )


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


class _KeyframeIndex:
    __slots__ = ("end_pts", "first_keyframe", "gop_bytes", "keyframe_pts", "start_pts")

    def __init__(self) -> None:
        self.keyframe_pts: list[int] = []
        self.gop_bytes: list[int] = []
        self.start_pts: int | None = None
        self.end_pts: int | None = None
        self.first_keyframe: bytes = b""


def _scan_video_packets(
    container: av.container.InputContainer,
    stream: VideoStream,
    time_base: Fraction,
    fps: float,
) -> _KeyframeIndex:
    """Demux (never decode) the video stream: keyframe pts, GOP sizes and the pts range."""
    index = _KeyframeIndex()
    frame_ticks = round(1 / (fps * time_base)) if fps > 0 else 0
    max_pts: int | None = None
    max_pts_duration = 0
    for packet in container.demux(stream):
        pts = packet.pts
        if pts is None:  # the demuxer's flush packet, or a packet we cannot place
            continue
        if packet.is_keyframe:
            index.keyframe_pts.append(pts)
            index.gop_bytes.append(0)
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
    if container.format.name.split(",")[0] != "mov":
        return None
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
    index = _KeyframeIndex()
    index.first_keyframe = bytes(first)
    for i, entry in enumerate(entries):
        if entry.is_keyframe:
            index.keyframe_pts.append(entry.timestamp + offset)
            index.gop_bytes.append(0)
        if index.gop_bytes and i >= keyframes[0]:
            index.gop_bytes[-1] += entry.size
    time_base = stream.time_base
    assert time_base is not None
    frame_ticks = round(1 / (fps * time_base)) if fps > 0 else 0
    index.start_pts = index.keyframe_pts[0]
    index.end_pts = max(e.timestamp for e in entries) + offset + frame_ticks
    return index


def _keyframe_packet(
    container: av.container.InputContainer, stream: VideoStream, dts: int
) -> av.Packet[Any] | None:
    container.seek(dts, stream=stream, backward=True, any_frame=False)
    for packet in container.demux(stream):
        if packet.dts is not None and packet.dts >= dts:
            return packet if packet.dts == dts and packet.is_keyframe else None
    return None


# --- RFC 6381 codec strings -------------------------------------------------------------------
# Pure functions over bytes, so they can be tested without media files.


def video_codec_string(codec: str, extradata: bytes) -> str | None:
    """The HLS CODECS value for a video stream, from its codec name and extradata."""
    if codec == "h264":
        return h264_codec_string(extradata)
    if codec == "hevc":
        return hevc_codec_string(extradata)
    return None


def audio_codec_string(codec: str, profile: str | None, extradata: bytes | None) -> str | None:
    """The HLS CODECS value for an audio stream; None when HLS cannot carry it as is."""
    if codec == "aac":
        return aac_codec_string(profile, extradata)
    return {"mp3": "mp4a.40.34", "ac3": "ac-3", "eac3": "ec-3"}.get(codec)


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
