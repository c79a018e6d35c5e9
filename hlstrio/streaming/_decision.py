"""The session plan, pure: which renditions a session offers and what is done to each stream.

A session serves renditions, not one muxed stream (RFC 8216 4.3.4.1-2): one video rendition
and one audio rendition per way of hearing each source audio track, all on the video's
timeline, so a player switches track at any segment without a new session. Per stream the
action is *copy* (cut in-process) or *encode*; audio is always encoded in-process (PyAV, per
segment), so only encoded video needs an ffmpeg process — that is what "transcode" means.

Audio renditions follow Apple's HLS authoring rules: a stereo AAC rendition of every track is
always there (9.6: copied when the source already is stereo AAC, else encoded), multichannel
tracks are separate renditions (9.7) offered when the client takes their codec and channel
count, and renditions are grouped by codec, one variant per group (8.9), so a player picks the
group it decodes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..media import (
    AudioInfo,
    MediaInfo,
    Sidecar,
    SubtitleInfo,
    VideoInfo,
    is_text_codec,
    language_name,
    language_tag,
)

Mode = Literal["remux", "transcode"]
Action = Literal["copy", "encode"]
Container = Literal["ts", "fmp4"]
CONTAINERS: tuple[Container, ...] = ("ts", "fmp4")

# What each segment container can carry for HLS, by ffmpeg codec name. Apple HLS authoring
# 1.5: HEVC MUST be in fMP4, never MPEG-TS (AV1 and VP9 exist in HLS only as fMP4).
CONTAINER_VIDEO: Mapping[Container, frozenset[str]] = {
    "ts": frozenset({"h264"}),
    "fmp4": frozenset({"h264", "hevc", "av1", "vp9"}),
}
CONTAINER_AUDIO: Mapping[Container, frozenset[str]] = {
    "ts": frozenset({"aac", "mp3", "ac3", "eac3"}),
    "fmp4": frozenset({"aac", "ac3", "eac3", "opus", "flac"}),
}

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
ENCODED_AUDIO_BITRATE = 128_000  # stereo AAC-LC made in-process
ENCODED_AUDIO_SAMPLE_RATES = frozenset({44_100, 48_000})  # kept; anything else becomes 48 kHz
ENCODED_VIDEO_CODEC = "avc1.640029"  # High profile, level 4.1 (forced on the encoder)
ENCODED_AUDIO_CODEC = "mp4a.40.2"  # AAC-LC
STEREO = 2


class Unplayable(Exception):
    """The request cannot be served for this media; `code` goes into the JSON error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UnknownTrack(Unplayable):
    """The request names an audio or subtitle track the media does not have."""


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
    if name.startswith("av01."):
        return "av1"
    if name.startswith("vp09."):
        return "vp9"
    return _ALIASES.get(name, name)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a client decodes. The defaults are what every HLS client plays."""

    video_codecs: frozenset[str] = frozenset({"h264"})
    audio_codecs: frozenset[str] = frozenset({"aac"})
    max_height: int | None = None
    max_bitrate: int | None = None
    # Channels of a copied audio rendition; a stereo AAC rendition exists regardless.
    max_audio_channels: int = STEREO
    # Segment containers the client takes, preferred first.
    containers: tuple[Container, ...] = ("ts",)
    max_video_bit_depth: int = 8  # 10: the client decodes HEVC Main10 / 10-bit AV1, VP9
    hdr: bool = False  # the client shows PQ/HLG (else HDR video is tone-mapped to SDR)

    @classmethod
    def from_lists(
        cls,
        video_codecs: Iterable[str] | None = None,
        audio_codecs: Iterable[str] | None = None,
        max_height: int | None = None,
        max_bitrate: int | None = None,
        max_audio_channels: int | None = None,
        containers: Iterable[Container] | None = None,
        max_video_bit_depth: int | None = None,
        hdr: bool | None = None,
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
            max_audio_channels if max_audio_channels is not None else default.max_audio_channels,
            tuple(dict.fromkeys(containers)) if containers else default.containers,
            max_video_bit_depth if max_video_bit_depth is not None else default.max_video_bit_depth,
            hdr if hdr is not None else default.hdr,
        )

    def to_json(self) -> Mapping[str, object]:
        return {
            "video_codecs": sorted(self.video_codecs),
            "audio_codecs": sorted(self.audio_codecs),
            "max_height": self.max_height,
            "max_bitrate": self.max_bitrate,
            "max_audio_channels": self.max_audio_channels,
            "containers": list(self.containers),
            "max_video_bit_depth": self.max_video_bit_depth,
            "hdr": self.hdr,
        }


@dataclass(frozen=True, slots=True)
class VideoOutput:
    stream_index: int
    action: Action
    codec_string: str  # RFC 6381, for CODECS
    width: int
    height: int
    frame_rate: float | None
    bitrate: int | None  # peak cap of encoded video (bits/s); None when copied
    reason: str
    burn_subtitle: int | None = None  # bitmap subtitle stream overlaid by the encoder
    # Encoded video only: what the encoder does besides scaling (see _encoder.encoder_argv).
    tonemap: bool = False  # PQ/HLG source -> 8-bit BT.709 SDR
    deinterlace: bool = False  # interlaced source -> progressive
    dynamic_range: str = "SDR"  # of what is sent: VIDEO-RANGE in the master playlist


@dataclass(frozen=True, slots=True)
class AudioOutput:
    """One audio rendition (EXT-X-MEDIA TYPE=AUDIO) made from one source track."""

    rendition: str  # id in URLs: "a1" = stream 1 copied, "a1s" = stereo AAC made from it
    stream_index: int
    action: Action
    codec: str  # output codec (ffmpeg name); also the GROUP-ID
    codec_string: str
    channels: int  # output channels
    sample_rate: int  # output rate
    bitrate: int  # bits/s, for BANDWIDTH
    name: str
    language: str | None
    default: bool
    reason: str

    @property
    def group(self) -> str:
        return self.codec


SUBTITLE_GROUP = "subs"


@dataclass(frozen=True, slots=True)
class SubtitleOutput:
    """One subtitle rendition (EXT-X-MEDIA TYPE=SUBTITLES): segmented WebVTT made on demand
    from an embedded text stream or a sidecar file."""

    rendition: str  # "s<index>" for an embedded stream, the sidecar's id for a sidecar
    stream_index: int | None  # embedded stream, or None for a sidecar
    sidecar: str | None  # the sidecar's id, or None
    name: str
    language: str | None
    default: bool
    forced: bool
    hearing_impaired: bool
    codec: str  # what it is read from: "subrip", "ass", "mov_text", "webvtt"


@dataclass(frozen=True, slots=True)
class Plan:
    mode: Mode  # "transcode" = an ffmpeg process encodes the video
    container: Container
    video: VideoOutput | None
    audio: tuple[AudioOutput, ...]
    reason: str
    subtitles: tuple[SubtitleOutput, ...] = ()
    audio_groups: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "audio_groups", tuple(dict.fromkeys(a.group for a in self.audio)))

    @property
    def transcodes(self) -> bool:
        return self.mode == "transcode"

    @property
    def default_audio(self) -> AudioOutput | None:
        """The rendition a player starts with (the first group's DEFAULT=YES one)."""
        if not self.audio:
            return None
        first_group = self.audio_groups[0]
        return next(a for a in self.audio if a.group == first_group and a.default)

    def rendition(self, rendition: str) -> AudioOutput | None:
        return next((a for a in self.audio if a.rendition == rendition), None)


SubtitleChoice = int | str | None  # stream index, sidecar id, language tag, or the default


def _encoded_bitrate(height: int, max_bitrate: int | None) -> int:
    rate = next(r for h, r in ENCODE_LADDER if height >= h)
    if max_bitrate is not None:
        rate = min(rate, max(200_000, max_bitrate - ENCODED_AUDIO_BITRATE))
    return rate


def video_gop_bytes(info: MediaInfo) -> tuple[int, ...]:
    """Bytes of video in each GOP. A Matroska Cues index measures GOPs by cluster positions,
    which include every interleaved track: take the other streams' known rates out again, or
    every audio track would be counted in the video's BANDWIDTH (Apple allows 10% over)."""
    if info.index_source != "cues" or info.video_time_base is None or not info.keyframe_pts:
        return info.gop_bytes
    others = sum(_audio_rate(a) for a in info.audio) / 8  # bytes/s
    ends = [*info.keyframe_pts[1:], info.video_end_pts or info.keyframe_pts[-1]]
    return tuple(
        max(0, size - int(others * float((end - start) * info.video_time_base)))
        for start, end, size in zip(info.keyframe_pts, ends, info.gop_bytes, strict=True)
    )


def _audio_rate(track: AudioInfo) -> int:
    """A track's bits/s, or a generous guess when the file does not say."""
    return track.bit_rate or 192_000 * max(1, track.channels // 2)


def peak_bitrate(info: MediaInfo, audio: AudioInfo | None) -> int:
    """Peak bits/s of the source's video GOPs plus the chosen audio, as sent."""
    peak = 0
    if info.video is not None and info.video_time_base is not None and len(info.keyframe_pts) > 1:
        ends = [*info.keyframe_pts[1:], info.video_end_pts or info.keyframe_pts[-1]]
        gops = video_gop_bytes(info)
        for start, end, size in zip(info.keyframe_pts, ends, gops, strict=True):
            seconds = float((end - start) * info.video_time_base)
            if seconds > 0.5:
                peak = max(peak, int(size * 8 / seconds))
    if peak == 0 and info.duration > 0:
        peak = int(info.size * 8 / info.duration)
    return peak + (audio.bit_rate or 192_000 if audio is not None else 0)


def choose_audio(info: MediaInfo, audio: int | str | None) -> AudioInfo | None:
    """The track a player starts with: by stream index, by language, else the source's own
    default (its disposition), else the first track."""
    if not info.audio:
        if audio is not None:
            raise UnknownTrack("unknown_audio", "the media has no audio track")
        return None
    if isinstance(audio, int):
        for track in info.audio:
            if track.index == audio:
                return track
        raise UnknownTrack("unknown_audio", f"no audio stream with index {audio}")
    if isinstance(audio, str):
        # "fra", "fre" and "fr" are one language; "pt" also picks a "pt-BR" track.
        wanted = language_tag(audio)
        for exact in (True, False):
            for track in info.audio:
                if (
                    wanted is not None
                    and track.language is not None
                    and (
                        track.language == wanted
                        or (not exact and track.language.split("-")[0] == wanted.split("-")[0])
                    )
                ):
                    return track
        raise UnknownTrack("unknown_audio", f"no audio track in language {audio!r}")
    return next((t for t in info.audio if t.default), info.audio[0])


def _container(info: MediaInfo, caps: Capabilities, copy_video: bool) -> Container:
    """The container of all of a session's audio and video renditions.

    Encoded video is MPEG-TS (the encoder writes it; every HLS client takes H.264 in TS).
    Otherwise the client's container that lets the most be copied: the video first (HEVC,
    AV1, VP9 need fMP4), then as many audio tracks as the client decodes (Opus and FLAC exist
    in HLS only as fMP4), the client's preference breaking ties (H.264 + AAC stays on TS for a
    client that lists TS first: the widest support)."""
    if info.video is not None and not copy_video:
        return "ts"

    def copies(container: Container) -> tuple[bool, int]:
        video = info.video is None or info.video.codec in CONTAINER_VIDEO[container]
        takes = CONTAINER_AUDIO[container] & caps.audio_codecs
        return video, sum(1 for track in info.audio if track.codec in takes and track.hls_codec)

    return max(caps.containers, key=copies)  # max keeps the first of equals


def _video_copyable(video: VideoInfo, caps: Capabilities) -> str | None:
    """None if the client can take the video as is, else why not."""
    if video.codec not in caps.video_codecs:
        return f"video {video.codec} not in the client's codecs"
    if not any(video.codec in CONTAINER_VIDEO[c] for c in caps.containers):
        return f"video {video.codec} fits none of the client's containers"
    if video.hls_codec is None:
        return f"video {video.codec}: codec parameters unreadable"
    if caps.max_height is not None and video.height > caps.max_height:
        return f"video {video.width}x{video.height} above max_height {caps.max_height}"
    if video.bit_depth > caps.max_video_bit_depth:
        return f"video {video.bit_depth}-bit above the client's {caps.max_video_bit_depth}-bit"
    if video.dynamic_range != "SDR" and not caps.hdr:
        return f"video {video.dynamic_range} HDR to a client without HDR"
    return None


def decide(
    info: MediaInfo,
    caps: Capabilities,
    requested: str = "auto",
    audio: int | str | None = None,
    *,
    subtitle: SubtitleChoice = None,
    sidecars: tuple[Sidecar, ...] = (),
) -> Plan:
    """The plan for one session. `sidecars` are the item's usable sidecar files; `subtitle`
    picks the DEFAULT=YES subtitle rendition, or, naming a bitmap stream, burns it in."""
    if requested not in ("auto", "remux", "transcode"):
        raise Unplayable("bad_mode", f"mode must be auto, remux or transcode, not {requested!r}")
    if info.video is None and not info.audio:
        raise Unplayable("no_streams", "the file has no audio or video stream")
    default_track = choose_audio(info, audio)
    chosen_subtitle = choose_subtitle(info, sidecars, subtitle)
    burn = chosen_subtitle if isinstance(chosen_subtitle, SubtitleInfo) else None
    if burn is not None and burn.text:
        burn = None  # a text track becomes a rendition (DEFAULT=YES), never pixels
    source = info.video

    video: VideoOutput | None = None
    reasons: list[str] = []
    if source is not None:
        why_not = _video_copyable(source, caps)
        if (
            why_not is None
            and caps.max_bitrate is not None
            and peak_bitrate(info, default_track) > caps.max_bitrate
        ):
            why_not = "source bitrate above max_bitrate"
        if requested == "transcode":
            why_not = "transcode requested"
        if burn is not None:
            why_not = f"burning in bitmap subtitle stream {burn.index} ({burn.codec})"
        if requested == "remux" and why_not is not None:
            raise Unplayable("cannot_remux", why_not)
        if why_not is None:
            assert source.hls_codec is not None
            video = VideoOutput(
                source.index,
                "copy",
                source.hls_codec,
                source.width,
                source.height,
                source.fps or None,
                None,
                "client plays the source video",
                dynamic_range=source.dynamic_range,
            )
        else:
            reasons.append(why_not)
            height = source.height
            if caps.max_height is not None:
                height = min(height, caps.max_height)
            # x264 with yuv420p needs even dimensions; never smaller than 2x2.
            height = max(2, height - height % 2)
            width = max(2, round(source.width * height / source.height / 2) * 2)
            video = VideoOutput(
                source.index,
                "encode",
                ENCODED_VIDEO_CODEC,
                width,
                height,
                source.fps or None,
                _encoded_bitrate(height, caps.max_bitrate),
                why_not,
                burn_subtitle=burn.index if burn is not None else None,
                tonemap=source.dynamic_range != "SDR",
                deinterlace=source.interlaced,
            )
    elif requested == "remux":
        raise Unplayable("cannot_remux", "remux needs a video stream to cut at")

    container = _container(info, caps, copy_video=video is not None and video.action == "copy")
    renditions = _audio_renditions(info, caps, container, default_track, requested)
    mode: Mode = "transcode" if video is not None and video.action == "encode" else "remux"
    if mode == "remux":
        reason = "client plays the source video" if video is not None else "audio-only source"
    else:
        reason = "; ".join(reasons)
    default_subtitle = chosen_subtitle if not isinstance(chosen_subtitle, SubtitleInfo) else None
    if isinstance(chosen_subtitle, SubtitleInfo) and chosen_subtitle.text:
        default_subtitle = f"s{chosen_subtitle.index}"
    subtitles = _subtitle_renditions(info, sidecars, default_subtitle, burn)
    return Plan(mode, container, video, renditions, reason, subtitles)


def _audio_renditions(
    info: MediaInfo,
    caps: Capabilities,
    container: Container,
    default_track: AudioInfo | None,
    requested: str,
) -> tuple[AudioOutput, ...]:
    copyable = CONTAINER_AUDIO[container] & caps.audio_codecs
    stereo: list[AudioOutput] = []
    multichannel: list[AudioOutput] = []
    for track in info.audio:
        is_default = track is default_track
        name = _track_name(track)
        copy_ok = requested != "transcode" and track.codec in copyable and track.hls_codec
        if copy_ok and track.channels <= STEREO:
            assert track.hls_codec is not None
            stereo.append(
                _output(track, f"a{track.index}", "copy", name, is_default, track.hls_codec)
            )
            continue
        # Apple 9.6: a stereo AAC rendition of every track, made in-process when needed.
        why = (
            "transcode requested"
            if requested == "transcode"
            else f"{track.codec} {track.channels} ch not playable as is"
            if track.channels <= STEREO
            else "stereo downmix of a multichannel track"
        )
        # A downmix says so in its NAME (CHANNELS=2 beside a "5.1" title reads as a mistake).
        stereo_name = f"{name} (stereo)" if track.channels > STEREO else name
        stereo.append(_encoded_stereo(track, stereo_name, is_default, why))
        if copy_ok and STEREO < track.channels <= caps.max_audio_channels:
            assert track.hls_codec is not None
            # Apple 9.7: multichannel audio as a rendition of its own, in its codec's group.
            multichannel.append(
                _output(
                    track,
                    f"a{track.index}",
                    "copy",
                    _with_channels(name, track.channels),
                    is_default,
                    track.hls_codec,
                )
            )
    outputs = _unique_names(stereo + multichannel)
    # Every group needs exactly one DEFAULT=YES (RFC 8216 4.3.4.1.1): where the chosen track
    # has no rendition in a group, that group's first rendition is its default.
    fixed: list[AudioOutput] = []
    for group in dict.fromkeys(o.group for o in outputs):
        members = [o for o in outputs if o.group == group]
        if not any(o.default for o in members):
            members[0] = _replace_default(members[0])
        fixed.extend(members)
    return tuple(fixed)


def _output(
    track: AudioInfo, rendition: str, action: Action, name: str, default: bool, codec_string: str
) -> AudioOutput:
    return AudioOutput(
        rendition=rendition,
        stream_index=track.index,
        action=action,
        codec=track.codec,
        codec_string=codec_string,
        channels=track.channels,
        sample_rate=track.sample_rate,
        bitrate=_audio_rate(track),
        name=name,
        language=track.language,
        default=default,
        reason="client plays the source audio",
    )


def _encoded_stereo(track: AudioInfo, name: str, default: bool, reason: str) -> AudioOutput:
    rate = track.sample_rate if track.sample_rate in ENCODED_AUDIO_SAMPLE_RATES else 48_000
    return AudioOutput(
        rendition=f"a{track.index}s",
        stream_index=track.index,
        action="encode",
        codec="aac",
        codec_string=ENCODED_AUDIO_CODEC,
        channels=STEREO,
        sample_rate=rate,
        bitrate=ENCODED_AUDIO_BITRATE,
        name=name,
        language=track.language,
        default=default,
        reason=reason,
    )


def _replace_default(output: AudioOutput) -> AudioOutput:
    return dataclasses.replace(output, default=True)


def _track_name(track: AudioInfo) -> str:
    """NAME: the track's own title, else its language's name in that language ("Français")."""
    if track.title and track.title.strip():
        return track.title.strip()
    return language_name(track.language) or f"Track {track.index}"


def _with_channels(name: str, channels: int) -> str:
    """ "English" -> "English (5.1)"; a title that already says it ("Français 5.1") stays."""
    label = _channels_label(channels)
    return name if label in name else f"{name} ({label})"


def _channels_label(channels: int) -> str:
    return {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}.get(channels, f"{channels} ch")


def _unique_names(outputs: list[AudioOutput]) -> list[AudioOutput]:
    """NAME must be unique within a group (RFC 8216 4.3.4.1.1)."""
    seen: dict[tuple[str, str], int] = {}
    unique = []
    for output in outputs:
        key = (output.group, output.name)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            output = dataclasses.replace(output, name=f"{output.name} ({seen[key]})")
        unique.append(output)
    return unique


# --- subtitles ---------------------------------------------------------------------------------


def choose_subtitle(
    info: MediaInfo, sidecars: tuple[Sidecar, ...], subtitle: SubtitleChoice
) -> SubtitleInfo | str | None:
    """The track a request names: an embedded stream (text or bitmap) by index, a sidecar by
    its id (returned as the id), a text track by language (forced ones last), or None."""
    if subtitle is None:
        return None
    if isinstance(subtitle, int):
        for track in info.subtitles:
            if track.index == subtitle:
                return track
        raise UnknownTrack("unknown_subtitle", f"no subtitle stream with index {subtitle}")
    for sidecar in sidecars:
        if sidecar.id == subtitle:
            return sidecar.id
    wanted = language_tag(subtitle)
    if wanted is not None:
        text = [t for t in info.subtitles if is_text_codec(t.codec)]
        candidates: list[tuple[bool, SubtitleInfo | str]] = [
            (t.forced, t) for t in text if t.language == wanted
        ]
        candidates += [(s.forced, s.id) for s in sidecars if s.language == wanted]
        if candidates:
            return min(candidates, key=lambda c: c[0])[1]
    raise UnknownTrack("unknown_subtitle", f"no subtitle track {subtitle!r}")


def _subtitle_renditions(
    info: MediaInfo,
    sidecars: tuple[Sidecar, ...],
    chosen: str | None,
    burned: SubtitleInfo | None,
) -> tuple[SubtitleOutput, ...]:
    outputs = [
        SubtitleOutput(
            rendition=f"s{t.index}",
            stream_index=t.index,
            sidecar=None,
            name=_subtitle_name(t.title, t.language, t.forced, t.hearing_impaired, t.index),
            language=t.language,
            default=t.default,
            forced=t.forced,
            hearing_impaired=t.hearing_impaired,
            codec=t.codec,
        )
        for t in info.subtitles
        if is_text_codec(t.codec) and t is not burned
    ]
    outputs += [
        SubtitleOutput(
            rendition=s.id,
            stream_index=None,
            sidecar=s.id,
            name=_subtitle_name(s.title, s.language, s.forced, s.hearing_impaired, None),
            language=s.language,
            default=s.default,
            forced=s.forced,
            hearing_impaired=s.hearing_impaired,
            codec=s.format,
        )
        for s in sidecars
    ]
    # One DEFAULT=YES at most (RFC 8216 4.3.4.1.1): the requested one, else the file's own.
    if chosen is None and burned is None:
        chosen = next((o.rendition for o in outputs if o.default), None)
    outputs = [dataclasses.replace(o, default=o.rendition == chosen) for o in outputs]
    seen: dict[str, int] = {}
    unique = []
    for output in outputs:
        seen[output.name] = seen.get(output.name, 0) + 1
        if seen[output.name] > 1:
            output = dataclasses.replace(output, name=f"{output.name} ({seen[output.name]})")
        unique.append(output)
    return tuple(unique)


def _subtitle_name(
    title: str | None, language: str | None, forced: bool, sdh: bool, index: int | None
) -> str:
    if title and title.strip():
        name = title.strip()
    else:
        name = language_name(language) or (f"Subtitles {index}" if index else "Subtitles")
    if forced and "forced" not in name.lower():
        name += " (forced)"
    if sdh and "sdh" not in name.lower():
        name += " (SDH)"
    return name
