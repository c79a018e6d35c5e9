"""Codec decision, pure: remux what the client can take, encode only what it cannot.

Output is always MPEG-TS segments, so "can take" means: the client decodes the codec *and*
MPEG-TS can carry it for HLS (H.264/HEVC video; AAC/MP3/AC-3/E-AC-3 audio).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from ..media import AudioInfo, MediaInfo

Mode = Literal["remux", "transcode"]
Action = Literal["copy", "encode"]

TS_VIDEO = frozenset({"h264", "hevc"})
TS_AUDIO = frozenset({"aac", "mp3", "ac3", "eac3"})

# Names clients send -> ffmpeg codec names.
_ALIASES = {
    "avc": "h264",
    "avc1": "h264",
    "avc3": "h264",
    "h.264": "h264",
    "x264": "h264",
    "h265": "hevc",
    "h.265": "hevc",
    "hvc1": "hevc",
    "hev1": "hevc",
    "x265": "hevc",
    "mp4a": "aac",
    "aac-lc": "aac",
    "mpeg4-aac": "aac",
    "ac-3": "ac3",
    "e-ac-3": "eac3",
    "ec-3": "eac3",
    "vp09": "vp9",
    "av01": "av1",
    "mp4a.40.34": "mp3",
    "mpeg": "mp3",
}

# libx264 output of a transcode: ladder of peak bitrates by output height.
ENCODE_LADDER = (
    (2160, 16_000_000),
    (1440, 10_000_000),
    (1080, 6_000_000),
    (720, 3_500_000),
    (480, 1_800_000),
    (360, 1_000_000),
    (0, 700_000),
)
ENCODED_AUDIO_BITRATE = 128_000
ENCODED_VIDEO_CODEC = "avc1.640029"  # High profile, level 4.1 (forced on the encoder)
ENCODED_AUDIO_CODEC = "mp4a.40.2"  # AAC-LC


class Unplayable(Exception):
    """The request cannot be served for this media; `code` goes into the JSON error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def normalize_codec(name: str) -> str:
    name = name.strip().lower()
    if name.startswith("avc1.") or name.startswith("avc3."):
        return "h264"
    if name.startswith(("hvc1.", "hev1.")):
        return "hevc"
    if name.startswith("mp4a.40.34") or name in ("mp4a.69", "mp4a.6b"):
        return "mp3"
    if name == "mp4a.a5":
        return "ac3"
    if name == "mp4a.a6":
        return "eac3"
    if name.startswith("mp4a."):
        return "aac"
    return _ALIASES.get(name, name)


@dataclass(frozen=True, slots=True)
class Capabilities:
    video_codecs: frozenset[str] = frozenset({"h264"})
    audio_codecs: frozenset[str] = frozenset({"aac"})
    max_height: int | None = None
    max_bitrate: int | None = None

    @classmethod
    def from_lists(
        cls,
        video_codecs: Iterable[str] | None = None,
        audio_codecs: Iterable[str] | None = None,
        max_height: int | None = None,
        max_bitrate: int | None = None,
    ) -> Capabilities:
        default = cls()
        return cls(
            frozenset(normalize_codec(c) for c in video_codecs)
            if video_codecs is not None
            else default.video_codecs,
            frozenset(normalize_codec(c) for c in audio_codecs)
            if audio_codecs is not None
            else default.audio_codecs,
            max_height,
            max_bitrate,
        )

    def to_json(self) -> Mapping[str, object]:
        return {
            "video_codecs": sorted(self.video_codecs),
            "audio_codecs": sorted(self.audio_codecs),
            "max_height": self.max_height,
            "max_bitrate": self.max_bitrate,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    mode: Mode
    video: Action | None  # None: no video in the output
    audio: Action | None
    audio_index: int | None  # container stream index of the chosen audio
    width: int | None  # output size
    height: int | None
    video_bitrate: int | None  # cap for encoded video (bits/s)
    reason: str

    @property
    def transcodes(self) -> bool:
        return self.mode == "transcode"


def _encoded_bitrate(height: int, max_bitrate: int | None) -> int:
    rate = next(r for h, r in ENCODE_LADDER if height >= h)
    if max_bitrate is not None:
        rate = min(rate, max(200_000, max_bitrate - ENCODED_AUDIO_BITRATE))
    return rate


def peak_bitrate(info: MediaInfo, audio: AudioInfo | None) -> int:
    """Peak bits/s of the source's video GOPs plus the chosen audio, as sent."""
    peak = 0
    if info.video is not None and info.video_time_base is not None and len(info.keyframe_pts) > 1:
        ends = [*info.keyframe_pts[1:], info.video_end_pts or info.keyframe_pts[-1]]
        for start, end, size in zip(info.keyframe_pts, ends, info.gop_bytes, strict=True):
            seconds = float((end - start) * info.video_time_base)
            if seconds > 0.5:
                peak = max(peak, int(size * 8 / seconds))
    if peak == 0 and info.duration > 0:
        peak = int(info.size * 8 / info.duration)
    return peak + (audio.bit_rate or 192_000 if audio is not None else 0)


def choose_audio(info: MediaInfo, audio_index: int | None) -> AudioInfo | None:
    if audio_index is None:
        return info.audio[0] if info.audio else None
    for audio in info.audio:
        if audio.index == audio_index:
            return audio
    raise Unplayable("unknown_audio", f"no audio stream with index {audio_index}")


def decide(
    info: MediaInfo, caps: Capabilities, requested: str = "auto", audio_index: int | None = None
) -> Plan:
    if requested not in ("auto", "remux", "transcode"):
        raise Unplayable("bad_mode", f"mode must be auto, remux or transcode, not {requested!r}")
    if info.video is None and not info.audio:
        raise Unplayable("no_streams", "the file has no audio or video stream")
    audio = choose_audio(info, audio_index)
    video = info.video

    video_ok = video is None or (
        video.codec in TS_VIDEO
        and video.codec in caps.video_codecs
        and video.hls_codec is not None
        and (caps.max_height is None or video.height <= caps.max_height)
    )
    audio_ok = audio is None or (
        audio.codec in TS_AUDIO and audio.codec in caps.audio_codecs and audio.hls_codec is not None
    )
    fits_bitrate = caps.max_bitrate is None or peak_bitrate(info, audio) <= caps.max_bitrate
    reasons = []
    if video is not None and not video_ok:
        reasons.append(f"video {video.codec} {video.width}x{video.height} not playable as is")
    if audio is not None and not audio_ok:
        reasons.append(f"audio {audio.codec} not playable as is")
    if not fits_bitrate:
        reasons.append("source bitrate above max_bitrate")

    if requested == "remux" and (reasons or video is None):
        raise Unplayable(
            "cannot_remux", "; ".join(reasons) or "remux needs a video stream to cut at"
        )
    must_encode_video = requested == "transcode" or not video_ok or not fits_bitrate
    if video is not None and video_ok and audio_ok and fits_bitrate and requested != "transcode":
        return Plan(
            "remux",
            "copy",
            "copy" if audio else None,
            audio.index if audio else None,
            video.width,
            video.height,
            None,
            "client plays the source codecs",
        )

    width = height = bitrate = None
    video_action: Action | None = None
    if video is not None:
        video_action = "encode" if must_encode_video else "copy"
        width, height = video.width, video.height
        if video_action == "encode":
            # x264 with yuv420p needs even dimensions; never smaller than 2x2.
            if caps.max_height is not None:
                height = min(height, caps.max_height)
            height = max(2, height - height % 2)
            if video.height:
                width = max(2, round(video.width * height / video.height / 2) * 2)
            bitrate = _encoded_bitrate(height, caps.max_bitrate)
    audio_action: Action | None = None
    if audio is not None:
        audio_action = "copy" if audio_ok and requested != "transcode" else "encode"
    reason = "; ".join(reasons) if reasons else "transcode requested"
    if video is None:
        reason = "audio-only source"
    return Plan(
        "transcode",
        video_action,
        audio_action,
        audio.index if audio else None,
        width,
        height,
        bitrate,
        reason,
    )
