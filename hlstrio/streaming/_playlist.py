"""HLS playlist text and the names in it, pure.

Every URI a session hands out is made (and parsed back) here, so `seg-N` naming lives in one
place: the encoder writes files by `ENCODER_SEGMENT_PATTERN`, the web layer parses request
paths with `parse_rendition_path`. URIs in playlists are relative, so the session id in the
path carries through and stays the only credential of HLS URLs.

Layout under /hls/{session}/: the video rendition at the root (`index.m3u8`, `seg-N.ts`, as
before renditions existed, so old links keep working), every other rendition in a directory
named by its id (`a1/index.m3u8`, `a1/seg-N.ts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..media import MediaInfo
from ._decision import SUBTITLE_GROUP, AudioOutput, Plan, video_gop_bytes
from ._timeline import Timeline

MEDIA_PLAYLIST_URI = "index.m3u8"
MASTER_PLAYLIST_URI = "master.m3u8"
INIT_SEGMENT_URI = "init.mp4"
VIDEO_RENDITION = "v"  # id of the video rendition, served at the session root
# The encoder writes MPEG-TS files named like the URIs, so a file name is its URI.
ENCODER_SEGMENT_PATTERN = "seg-%d.ts"
SEGMENT_EXTENSIONS = frozenset({"ts", "m4s", "vtt"})
_MAX_INDEX_DIGITS = 9
_MAX_RENDITION_CHARS = 16


def segment_uri(index: int, extension: str = "ts") -> str:
    return f"seg-{index}.{extension}"


def parse_segment_name(name: str) -> tuple[int, str] | None:
    """`seg-12.ts` -> (12, "ts"); None for anything else (odd digits, other names).

    ASCII digits only, at most 9: `str.isdigit` alone takes any Unicode digit (an Arabic-Indic
    3 was segment 3), and a 4000-digit index came back echoed in an error message.
    """
    if not name.startswith("seg-"):
        return None
    digits, dot, extension = name[4:].partition(".")
    if (
        not dot
        or extension not in SEGMENT_EXTENSIONS
        or not 0 < len(digits) <= _MAX_INDEX_DIGITS
        or not (digits.isascii() and digits.isdigit())
    ):
        return None
    return int(digits), extension


RequestKind = Literal["segment", "init", "media_playlist", "master_playlist"]


@dataclass(frozen=True, slots=True)
class RenditionPath:
    """A request path under /hls/{session}/, parsed."""

    session_id: str
    rendition: str  # VIDEO_RENDITION for names at the session root
    kind: RequestKind
    index: int = -1  # segments only
    extension: str = ""


def parse_rendition_path(path: str) -> RenditionPath | None:
    """`/hls/{id}/seg-3.ts`, `/hls/{id}/a1/index.m3u8`, ... -> RenditionPath; else None.

    Hand-rolled rather than a regex: it runs on every request and is a few string operations.
    """
    if not path.startswith("/hls/"):
        return None
    parts = path[5:].split("/")
    if len(parts) == 2:
        session_id, rendition, name = parts[0], VIDEO_RENDITION, parts[1]
    elif len(parts) == 3:
        session_id, rendition, name = parts
        if (
            rendition == VIDEO_RENDITION
            or not 0 < len(rendition) <= _MAX_RENDITION_CHARS
            or not (rendition.isascii() and rendition.isalnum())
        ):
            return None
    else:
        return None
    if not session_id:
        return None
    if name == MEDIA_PLAYLIST_URI:
        return RenditionPath(session_id, rendition, "media_playlist")
    if name == MASTER_PLAYLIST_URI and len(parts) == 2:
        return RenditionPath(session_id, rendition, "master_playlist")
    if name == INIT_SEGMENT_URI:
        return RenditionPath(session_id, rendition, "init")
    segment = parse_segment_name(name)
    if segment is None:
        return None
    return RenditionPath(session_id, rendition, "segment", *segment)


def rendition_uri(rendition: str, name: str) -> str:
    """A URI relative to the master playlist."""
    return name if rendition == VIDEO_RENDITION else f"{rendition}/{name}"


@dataclass(frozen=True, slots=True)
class Media:
    """One EXT-X-MEDIA rendition (RFC 8216 4.3.4.1)."""

    type: Literal["AUDIO", "SUBTITLES"]
    group: str
    name: str
    language: str | None
    uri: str
    default: bool
    autoselect: bool = True
    forced: bool = False  # SUBTITLES only
    channels: int | None = None  # AUDIO only


@dataclass(frozen=True, slots=True)
class Variant:
    """What one variant stream actually sends, for its EXT-X-STREAM-INF."""

    bandwidth: int  # peak bits/s of the largest playable combination of renditions
    average_bandwidth: int
    codecs: tuple[str, ...]  # RFC 6381 strings of everything in the segments
    width: int | None = None
    height: int | None = None
    frame_rate: float | None = None
    uri: str = MEDIA_PLAYLIST_URI
    audio_group: str | None = None
    subtitle_group: str | None = None
    video_range: str | None = None  # "PQ" | "HLG"; None: SDR (the default, so not written)


def _quoted(value: str) -> str:
    # RFC 8216 4.2: a quoted-string cannot contain '"', CR or LF.
    return '"' + value.replace('"', "'").replace("\r", " ").replace("\n", " ") + '"'


def _media_line(media: Media) -> str:
    attrs = [f"TYPE={media.type}", f"GROUP-ID={_quoted(media.group)}"]
    attrs.append(f"NAME={_quoted(media.name)}")
    if media.language:
        attrs.append(f"LANGUAGE={_quoted(media.language)}")
    # RFC 8216 4.3.4.1: DEFAULT=YES requires AUTOSELECT=YES.
    attrs.append(f"DEFAULT={'YES' if media.default else 'NO'}")
    attrs.append(f"AUTOSELECT={'YES' if media.autoselect or media.default else 'NO'}")
    if media.type == "SUBTITLES":
        attrs.append(f"FORCED={'YES' if media.forced else 'NO'}")
    if media.channels is not None:
        attrs.append(f'CHANNELS="{media.channels}"')
    attrs.append(f"URI={_quoted(media.uri)}")
    return "#EXT-X-MEDIA:" + ",".join(attrs)


def master_playlist(
    variants: Sequence[Variant] | Variant, media: Sequence[Media] = (), version: int = 3
) -> str:
    if isinstance(variants, Variant):
        variants = (variants,)
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{version}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    lines.extend(_media_line(m) for m in media)
    for variant in variants:
        attrs = [
            f"BANDWIDTH={variant.bandwidth}",
            f"AVERAGE-BANDWIDTH={variant.average_bandwidth}",
        ]
        if variant.codecs:
            attrs.append(f'CODECS="{",".join(variant.codecs)}"')
        if variant.width and variant.height:
            attrs.append(f"RESOLUTION={variant.width}x{variant.height}")
        if variant.frame_rate:
            attrs.append(f"FRAME-RATE={variant.frame_rate:.3f}")
        if variant.video_range:
            attrs.append(f"VIDEO-RANGE={variant.video_range}")
        if variant.audio_group is not None:
            attrs.append(f"AUDIO={_quoted(variant.audio_group)}")
        if variant.subtitle_group is not None:
            attrs.append(f"SUBTITLES={_quoted(variant.subtitle_group)}")
        lines.append(f"#EXT-X-STREAM-INF:{','.join(attrs)}")
        lines.append(variant.uri)
    return "\n".join(lines) + "\n"


# Microseconds each EXTINF is short of its segment's length (see extinf_seconds).
EXTINF_MARGIN_US = 2


def extinf_seconds(duration: float) -> float:
    """EXTINF for a segment: its duration to the microsecond, less EXTINF_MARGIN_US.

    Why not just the duration: players built on libavformat (ffmpeg, mpv, Kodi) seek in HLS
    by summing EXTINFs from the first timestamp they read (rounded to the nearest
    microsecond), then drop video until a keyframe whose DTS (rounded *down*) reaches that
    sum. A keyframe exactly on the boundary misses it by a microsecond of rounding, and the
    player loses the whole segment: measured, 2 s of video gone after every seek with ffmpeg
    -ss. Keeping each EXTINF 2 us short (1.5 us after rounding) keeps the sum below every
    boundary keyframe however the roundings fall; the playlist understates 7 ms per hour of
    2 s segments, which no player can notice.
    """
    return (round(duration * 1_000_000) - EXTINF_MARGIN_US) / 1_000_000


def media_playlist(
    timeline: Timeline,
    start_offset: float | None = None,
    *,
    extension: str = "ts",
    init_uri: str | None = None,
    version: int = 3,
) -> str:
    """The complete VOD list, valid before any segment has been made."""
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{version}",
        f"#EXT-X-TARGETDURATION:{timeline.target_duration}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    if start_offset:
        lines.append(f"#EXT-X-START:TIME-OFFSET={start_offset:.3f},PRECISE=YES")
    if init_uri is not None:
        lines.append(f'#EXT-X-MAP:URI="{init_uri}"')
    for segment in timeline.segments:
        lines.append(f"#EXTINF:{extinf_seconds(segment.duration):.6f},")
        lines.append(segment_uri(segment.index, extension))
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


# --- what a session's playlists say -------------------------------------------------------


def _ts_bits_per_second(payload_bytes_per_second: float, frames_per_second: float) -> float:
    """MPEG-TS size of elementary-stream bytes: 4 of every 188 bytes are header, and each
    frame's PES header and last-packet stuffing cost ~150 bytes (measured on PyAV's muxer)."""
    return (payload_bytes_per_second * 188 / 184 + frames_per_second * 150) * 8


# Per segment and PID: PAT and PMT once, and up to 15 packets that keep continuity counters
# running across segments (_continuity.py).
_SEGMENT_OVERHEAD_BYTES = (2 + 15) * 188


def video_bitrates(info: MediaInfo, plan: Plan, timeline: Timeline) -> tuple[float, float]:
    """(peak, average) bits/s of the video rendition as sent.

    Copied video: from the source's real GOP sizes summed into the timeline's segments (the
    densest segment is the peak); encoded video: the encoder's maxrate.
    """
    video = plan.video
    if video is None:
        return 0.0, 0.0
    fps = video.frame_rate or 30.0
    if video.action == "encode":
        peak = _ts_bits_per_second((video.bitrate or 0) / 8, fps)
        return peak, peak * 0.75
    per_segment = [0] * len(timeline)
    cursor = 0
    gops = video_gop_bytes(info)
    for pts, size in zip(info.keyframe_pts, gops, strict=True):
        while cursor + 1 < len(timeline) and pts >= (timeline[cursor + 1].start_pts or 0):
            cursor += 1
        per_segment[cursor] += size
    rates = [
        _ts_bits_per_second((size + _SEGMENT_OVERHEAD_BYTES) / seg.duration, fps)
        for size, seg in zip(per_segment, timeline.segments, strict=True)
        if seg.duration > 0
    ]
    average = _ts_bits_per_second(
        (sum(gops) + _SEGMENT_OVERHEAD_BYTES * len(timeline)) / max(timeline.duration, 0.1),
        fps,
    )
    peak = max(rates, default=0.0)
    return peak, min(average, peak)


def audio_bitrate(output: AudioOutput, timeline: Timeline) -> float:
    """Bits/s of an audio rendition as sent (near constant: one rate for peak and average)."""
    frames = output.sample_rate / 1024
    shortest = min((s.duration for s in timeline.segments if s.duration > 0), default=1.0)
    return _ts_bits_per_second(output.bitrate / 8 + _SEGMENT_OVERHEAD_BYTES / shortest, frames)


def session_master(
    info: MediaInfo, plan: Plan, timeline: Timeline, iframe_stream: str | None = None
) -> str:
    """The master playlist: EXT-X-MEDIA for every audio rendition, one variant per audio group
    (RFC 8216 4.3.4.2: BANDWIDTH is the largest sum of peak rates of any playable combination,
    here the video plus the group's heaviest audio)."""
    media = [
        Media(
            "AUDIO",
            a.group,
            a.name,
            a.language,
            rendition_uri(a.rendition, MEDIA_PLAYLIST_URI),
            a.default,
            channels=a.channels,
        )
        for a in plan.audio
    ]
    # RFC 8216 4.3.4.1, Apple: FORCED=YES only on subtitles, and then AUTOSELECT=YES.
    media += [
        Media(
            "SUBTITLES",
            SUBTITLE_GROUP,
            s.name,
            s.language,
            rendition_uri(s.rendition, MEDIA_PLAYLIST_URI),
            s.default,
            forced=s.forced,
        )
        for s in plan.subtitles
    ]
    subtitle_group = SUBTITLE_GROUP if plan.subtitles else None
    video_peak, video_average = video_bitrates(info, plan, timeline)
    video = plan.video
    rates = {a.rendition: audio_bitrate(a, timeline) for a in plan.audio}
    variants: list[Variant] = []
    for group in plan.audio_groups or (None,):
        members = [a for a in plan.audio if a.group == group]
        audio_rate = max((rates[a.rendition] for a in members), default=0.0)
        codecs = [video.codec_string] if video is not None else []
        codecs.extend(dict.fromkeys(a.codec_string for a in members))
        uri = MEDIA_PLAYLIST_URI
        if video is None:
            default = next(a for a in members if a.default)
            uri = rendition_uri(default.rendition, MEDIA_PLAYLIST_URI)
        variants.append(
            Variant(
                bandwidth=int((video_peak + audio_rate) * 1.03) + 1000,
                average_bandwidth=int(video_average + audio_rate),
                codecs=tuple(codecs),
                width=video.width if video is not None else None,
                height=video.height if video is not None else None,
                frame_rate=video.frame_rate if video is not None else None,
                uri=uri,
                audio_group=group,
                subtitle_group=subtitle_group,
                video_range=(
                    video.dynamic_range
                    if video is not None and video.dynamic_range != "SDR"
                    else None
                ),
            )
        )
    text = master_playlist(variants, media, version=7 if plan.container == "fmp4" else 3)
    # Apple HLS authoring 6.1: an I-frame playlist for the video (_trickplay), after the variants.
    return text + iframe_stream + "\n" if iframe_stream else text
