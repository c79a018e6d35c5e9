"""Fragmented MP4 (CMAF-style, one track per file) cut on demand, in-process, in any order.

Why fMP4 at all: HEVC MUST NOT go into MPEG-TS for Apple devices (HLS Authoring Spec 1.5), and
AV1, VP9, Opus and FLAC exist in HLS only as fMP4. Each rendition gets one init segment
(`ftyp` + `moov` with `mvex`/`trex`, no samples; `#EXT-X-MAP`, playlist version 6+) and media
segments (`moof` + `mdat`) cut from the same keyframe index as the TS cut (`_remux.py`).

Who writes what:
- The init segment is libavformat's (the mov muxer through PyAV): it knows every sample entry
  and config box (hvcC with array_completeness for `hvc1`, av1C, vpcC, dOps, dfLa, dac3/dec3,
  esds) and carries colour (colr nclx) and HDR10 metadata (mdcv, clli) over from the source.
  We take its `ftyp` and `moov` and check them (`_mp4box.track_config`).
- Media segments are ours (`_mp4box.fragment`), because their timing must be a pure function of
  the source: decode times come from the packets' presentation times, so segment k+1's `tfdt`
  equals segment k's `tfdt` plus k's durations (RFC 8216 3.3) whichever is cut first.

The timeline: every output time is source time + `TS_OFFSET` (1.4 s, as in MPEG-TS), in the
track's timescale, so TS, fMP4 and WebVTT renditions present on one clock. For video, the
samples of a segment take its presentation times, sorted, as decode times, shifted back by the
stream's reorder delay (so composition offsets stay >= 0, as the source's own DTS would be).
This needs no DTS from the container: Matroska stores none, and libavformat's guesses are
missing for the first packets after a seek (measured), i.e. would depend on the cut order.
A segment's last duration reaches to the next segment's first decode time, which the cut reads
ahead for: the next keyframe and its leading pictures (open GOPs decode those after the
keyframe but show them before it).

Everything here blocks (file I/O, muxing): run it in a worker thread, like the TS cut.
"""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.bitstream
import av.video.stream

from ._audio import AudioPackets
from ._errors import CutError
from ._mp4box import (
    Sample,
    TrackConfig,
    boxes,
    codec_string,
    fragment,
    has_parameter_sets,
    track_config,
)
from ._mpegts import TS_OFFSET
from ._timeline import Segment

__all__ = [
    "SAMPLE_ENTRIES",
    "Fmp4Unsupported",
    "Sample",
    "audio_media_segment",
    "codec_string",
    "decode_timeline",
    "fragment",
    "init_segment",
    "init_segment_for",
    "media_segment",
    "output_ticks",
    "track_timescale",
]


class Fmp4Unsupported(Exception):
    """This stream cannot be copied into fMP4 as it is; transcode it instead.

    Raised for codecs without an fMP4 mapping here, codec parameters PyAV cannot read (no
    extradata, no parameter sets) and timestamps a fragment cannot express. str() is one line
    for the client ("why we transcode").
    """


# Codec (libavcodec name) -> sample entry. Apple 1.10: `avc1` and `hvc1`, never `avc3`/`hev1`:
# parameter sets live in the sample entry, not in band.
SAMPLE_ENTRIES = {
    "h264": "avc1",
    "hevc": "hvc1",
    "av1": "av01",
    "vp9": "vp09",
    "aac": "mp4a",
    "opus": "Opus",
    "flac": "fLaC",
    "ac3": "ac-3",
    "eac3": "ec-3",
}
# The mov muxer builds dac3/dec3 from the first frames, so it must see packets first.
_NEEDS_PACKETS = frozenset({"ac3", "eac3"})
_FIRST_AUDIO_PACKETS = 8  # enough for E-AC-3 with dependent substreams
_SEEK_BACK = Fraction(2)  # audio packets of a window can sit before its video keyframe
_MOV_FLAGS = "frag_keyframe+default_base_moof+cmaf"

# NAL unit types that never need to be in an avc1/hvc1 sample: access unit delimiters, and
# parameter sets when they equal the sample entry's (hvc1 declares array_completeness = 1).
_H264_AUD, _H264_PARAMETER_SETS = 9, frozenset({7, 8})
_HEVC_AUD, _HEVC_PARAMETER_SETS = 35, frozenset({32, 33, 34})


# --- timing -----------------------------------------------------------------------------------


def track_timescale(stream: av.stream.Stream) -> int:
    """The mdhd timescale of this stream's track: what every tick in its segments counts.

    Audio: the sample rate. Video: the source time base's denominator, doubled up to >= 10000
    (the mov muxer's own rule), so source timestamps convert exactly.
    """
    if stream.type == "audio":
        rate = int(getattr(stream.codec_context, "sample_rate", 0) or 0)
        if rate <= 0:
            raise Fmp4Unsupported("audio stream without a sample rate")
        return rate
    time_base = stream.time_base
    if time_base is None or time_base <= 0:
        raise Fmp4Unsupported("stream without a time base")
    timescale = time_base.denominator
    while timescale < 10_000:
        timescale *= 2
    return timescale


def output_ticks(pts: int, time_base: Fraction, timescale: int) -> int:
    """Source timestamp -> output decode/presentation time in track ticks: + TS_OFFSET, rounded.

    Pure and the same for every cut, so times computed by different segments agree. For a
    segment of freshly encoded audio, base_decode_time = output_ticks(first pts, ...).
    """
    num = pts * time_base.numerator * timescale
    den = time_base.denominator
    return (2 * num + den) // (2 * den) + _offset_ticks(timescale)


@functools.cache
def _offset_ticks(timescale: int) -> int:
    return math.floor(TS_OFFSET * timescale + Fraction(1, 2))


def decode_timeline(
    pts_ticks: Sequence[int], next_ticks: int, delay_ticks: int
) -> tuple[int, list[int], list[int]]:
    """(base decode time, durations, composition offsets) of one segment's video samples.

    `pts_ticks`: presentation times in decode order; `next_ticks`: the next segment's earliest
    presentation time (its first decode time before the delay shift), or the end of the video.
    Decode times are the presentation times sorted, minus `delay_ticks`; so the durations sum
    to next_ticks - min(pts_ticks) and segment k+1's base is segment k's base plus that sum.
    """
    if not pts_ticks:
        raise ValueError("a video segment has at least one sample")
    order = sorted(pts_ticks)
    if next_ticks < order[-1]:
        raise Fmp4Unsupported(
            "GOPs overlap in presentation order; a fragment cannot keep them continuous"
        )
    durations = [b - a for a, b in itertools.pairwise(order)]
    durations.append(next_ticks - order[-1])
    offsets = [p - (d - delay_ticks) for p, d in zip(pts_ticks, order, strict=True)]
    return order[0] - delay_ticks, durations, offsets


def _reorder_delay_ticks(stream: av.stream.Stream, timescale: int) -> int:
    """Frames of reordering (B-frame delay) x the nominal frame, in track ticks.

    Timestamps rounded to the time base (Matroska's milliseconds: 41 or 42 ms at 24 fps) can
    stretch a run of frames by one source tick: then that tick is added, so composition offsets
    stay >= 0. A negative one would still be valid (trun version 1), just less common.
    """
    depth = int(getattr(stream.codec_context, "reorder_depth", 0) or 0)
    rate = stream.average_rate or stream.guessed_rate
    time_base = stream.time_base
    if depth <= 0 or not rate or rate <= 0 or time_base is None:
        return 0
    frame = Fraction(timescale) / rate
    source_tick = timescale * time_base
    slack = 0 if (frame / source_tick).denominator == 1 else source_tick
    return math.ceil(depth * frame + slack)


# --- init segments ----------------------------------------------------------------------------


def init_segment(path: Path, stream_index: int) -> bytes:
    """ftyp + moov for one stream of `path` (video or audio), ready for #EXT-X-MAP.

    Raises Fmp4Unsupported if the stream cannot be copied into fMP4, CutError if the file
    cannot be read.
    """
    try:
        with av.open(str(path), "r") as source:
            return init_segment_for(_stream(source, stream_index), source)
    except (av.FFmpegError, OSError) as exc:
        raise CutError(f"cannot read {path.name}: {exc}") from None


def init_segment_for(
    stream: av.stream.Stream,
    source: av.container.InputContainer | None = None,
    *,
    colour: bool = True,
) -> bytes:
    """ftyp + moov for a stream whose codec parameters are set.

    `stream` is an input stream (pass its freshly opened `source` so the first packets can be
    read where the muxer needs them: AC-3/E-AC-3, or no extradata; and where the container
    does not say the video's colour, the first keyframe is decoded to read it from the
    bitstream, unless `colour` is False) or an encoder's stream after `start_encoding()` (e.g.
    AAC encoded per segment: its extradata is all the muxer needs).
    """
    codec = _codec_name(stream)
    entry = SAMPLE_ENTRIES.get(codec)
    if entry is None:
        raise Fmp4Unsupported(f"{codec} cannot be copied into fragmented MP4 here")
    extradata = stream.codec_context.extradata or b""
    known_colour = _bitstream_colour(source, stream) if colour and source is not None else {}
    packets: list[av.Packet[Any]] = []
    if codec in _NEEDS_PACKETS or not extradata:
        if source is None:
            raise Fmp4Unsupported(f"{codec}: no codec parameters (extradata) to describe it")
        packets = _first_packets(source, stream)
    options = {
        "movflags": _MOV_FLAGS + ("+delay_moov" if packets else "+empty_moov"),
        # No edit list: presentation time is decode time + composition offset, nothing else,
        # so the TS_OFFSET timeline holds in every player.
        "use_editlist": "0",
    }
    timescale = track_timescale(stream)
    if stream.type == "video":
        options["video_track_timescale"] = str(timescale)
    buffer = io.BytesIO()
    try:
        with av.open(buffer, "w", format="mp4", options=options) as out:
            track = out.add_stream_from_template(stream, opaque=True)
            track.codec_tag = entry
            for name, value in known_colour.items():
                setattr(track.codec_context, name, value)
            out.start_encoding()
            for packet in packets:
                packet.stream = track
                out.mux(packet)
    except (av.FFmpegError, ValueError) as exc:
        raise Fmp4Unsupported(f"{codec}: libavformat cannot describe it in MP4 ({exc})") from None
    written = buffer.getvalue()
    top = {b.kind: b for b in boxes(written)}
    if b"ftyp" not in top or b"moov" not in top:
        raise Fmp4Unsupported(f"{codec}: the MP4 muxer wrote no moov")
    init = b"".join(written[top[k].start : top[k].end] for k in (b"ftyp", b"moov"))
    _check_init(init, codec, entry, timescale)
    return init


def aac_init_segment(sample_rate: int, channels: int, bitrate: int) -> bytes:
    """The init segment of an AAC-LC rendition encoded in-process (`_audio`): libav's encoder
    writes the same AudioSpecificConfig for every segment at one rate and layout, so one init
    serves them all."""
    sink = av.open(io.BytesIO(), "w", format="mp4")
    try:
        stream = sink.add_stream("aac", rate=sample_rate, layout=_LAYOUTS[channels])
        stream.codec_context.bit_rate = bitrate
        sink.start_encoding()
        return init_segment_for(stream)
    finally:
        sink.close()


_LAYOUTS = {1: "mono", 2: "stereo"}


def encoded_audio_fragment(packets: AudioPackets, sequence_number: int, timescale: int) -> bytes:
    """moof + mdat of one segment of in-process AAC: its packets tile the sample axis (1024
    ticks each, at 1/sample_rate), so the decode times follow from the first pts alone."""
    if not packets.packets:
        base = output_ticks(packets.end_pts, packets.time_base, timescale)
        return fragment([], base_decode_time=base, sequence_number=sequence_number)
    ticks = [output_ticks(p.pts, packets.time_base, timescale) for p in packets.packets]
    ticks.append(output_ticks(packets.end_pts, packets.time_base, timescale))
    samples = [Sample(p.data, ticks[i + 1] - ticks[i]) for i, p in enumerate(packets.packets)]
    return fragment(samples, base_decode_time=ticks[0], sequence_number=sequence_number)


def _check_init(init: bytes, codec: str, entry: str, timescale: int) -> None:
    """Refuse an init segment a player could not decode from (the lead then transcodes)."""
    config = track_config(init)
    if config.sample_entry != entry:
        raise Fmp4Unsupported(f"{codec}: muxer wrote {config.sample_entry!r}, not {entry!r}")
    if config.timescale != timescale or config.track_id != 1:
        raise Fmp4Unsupported(f"{codec}: unexpected track {config.track_id}/{config.timescale}")
    if entry in ("avc1", "hvc1"):
        ok = has_parameter_sets(config)
    elif entry == "av01":
        ok = len(config.config) > 4  # av1C with its sequence header OBU
    elif entry == "mp4a":
        ok = codec_string(init) is not None  # esds with an AudioSpecificConfig
    else:
        ok = bool(config.config)
    if not ok:
        raise Fmp4Unsupported(f"{codec}: codec parameters incomplete (no usable extradata)")


# Colour fields of a codec context, and the value that means "unspecified" (libavutil enums).
_COLOUR_FIELDS = {"color_primaries": 2, "color_trc": 2, "colorspace": 2, "color_range": 0}


def _bitstream_colour(
    source: av.container.InputContainer, stream: av.stream.Stream
) -> dict[str, int]:
    """Colour fields the container leaves unspecified but the video bitstream (VUI) states.

    The mov muxer writes colr from the codec parameters, which come from the container
    (Matroska's Colour element); an x265 encode muxed by other tools often has colour only in
    its SPS. One decoded keyframe tells; without it, colr would be missing or wrong.
    """
    if not isinstance(stream, av.video.stream.VideoStream):
        return {}
    cc = stream.codec_context
    missing = [f for f, unset in _COLOUR_FIELDS.items() if getattr(cc, f) == unset]
    if not missing:
        return {}
    frame = None
    try:
        for packet in source.demux(stream):
            if packet.size and packet.pts is not None and packet.is_keyframe:
                frames = [*stream.decode(packet), *stream.decode(None)]
                frame = frames[0] if frames else None
                break
    except av.FFmpegError:
        frame = None  # undecodable here: the container's word stands
    _rewind(source)
    if frame is None:
        return {}
    found = {f: int(getattr(frame, f)) for f in missing}
    return {f: v for f, v in found.items() if v != _COLOUR_FIELDS[f]}


def _first_packets(
    source: av.container.InputContainer, stream: av.stream.Stream
) -> list[av.Packet[Any]]:
    """The stream's first packets, from where `source` is (fresh: the start of the file)."""
    wanted = 1 if stream.type == "video" else _FIRST_AUDIO_PACKETS
    adts = _adts_filter(stream)  # the muxer takes raw AAC and its config from the filter
    found: list[av.Packet[Any]] = []
    for raw in source.demux(stream):
        for packet in adts(raw):
            if packet.size == 0 or packet.pts is None:
                continue
            if stream.type == "video" and not packet.is_keyframe:
                continue
            if packet.dts is None:
                packet.dts = packet.pts
            found.append(packet)
        if len(found) >= wanted:
            break
    _rewind(source)
    return found


def _rewind(source: av.container.InputContainer) -> None:
    """Seek back near the start after reading ahead for the init segment.

    Good enough for finding the first keyframe or for a later seek; not for reading the very
    first packets (WebM drops an Opus pre-roll packet at -7 ms here): cuts reopen for that.
    """
    source.seek(0)


def _codec_name(stream: av.stream.Stream) -> str:
    if stream.type not in ("video", "audio") or stream.codec_context is None:
        raise Fmp4Unsupported(f"stream {stream.index} is not audio or video PyAV can read")
    return str(stream.codec_context.codec.canonical_name)


def _stream(source: av.container.InputContainer, index: int) -> av.stream.Stream:
    try:
        return source.streams[index]
    except IndexError:
        raise CutError(f"no stream {index}") from None


# --- media segments ---------------------------------------------------------------------------


def media_segment(
    path: Path,
    stream_index: int,
    segment: Segment,
    sequence_number: int,
    *,
    init: bytes | None = None,
) -> bytes:
    """moof + mdat of the video GOPs [segment.start_pts, segment.end_pts).

    `sequence_number` goes into mfhd (segment index + 1). Pass the rendition's `init` segment
    if it is at hand; otherwise it is rebuilt to learn the track's NAL length size.
    Raises CutError (file changed or unreadable) or Fmp4Unsupported.
    """
    start_pts, end_pts = segment.start_pts, segment.end_pts
    if start_pts is None or end_pts is None:
        raise ValueError("an fMP4 video cut needs a keyframe-cut segment")
    with _reading(path) as source:
        stream = _stream(source, stream_index)
        if stream.type != "video":
            raise ValueError(f"stream {stream_index} is not video")
        config = track_config(init or init_segment_for(stream, source, colour=False))
        rewrite = _sample_rewriter(stream, config)
        delay = _reorder_delay_ticks(stream, config.timescale)
        time_base = stream.time_base
        assert time_base is not None
        # Matroska and MP4 seek to the keyframe by their index; MPEG-TS seeks by a search on
        # timestamps and may land past it (measured): then try earlier...
        found = None
        for target in (start_pts, start_pts - math.ceil(_SEEK_BACK / time_base)):
            source.seek(target, stream=stream, backward=True, any_frame=False)
            found = _scan_gop(source, stream, start_pts, end_pts)
            if found is not None:
                break
    if found is None:  # ... and at worst read from the start of the file
        with _reading(path) as source:
            found = _scan_gop(source, source.streams[stream_index], start_pts, end_pts)
    if found is None:
        raise CutError(f"keyframe at pts {start_pts} not found")
    packets, next_pts = found
    scale = config.timescale
    base, durations, offsets = decode_timeline(
        [output_ticks(p[0], time_base, scale) for p in packets],
        output_ticks(next_pts, time_base, scale),
        delay,
    )
    samples = [
        Sample(rewrite(data), duration, key, offset)
        for (_, key, data), duration, offset in zip(packets, durations, offsets, strict=True)
    ]
    return fragment(samples, base_decode_time=base, sequence_number=sequence_number)


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[av.container.InputContainer]:
    """The file, open for demuxing; libavformat and OS errors become CutError."""
    try:
        with av.open(str(path), "r") as source:
            yield source
    except (av.FFmpegError, OSError) as exc:
        raise CutError(f"cannot read {path.name}: {exc}") from None


def _scan_gop(
    source: av.container.InputContainer, stream: av.stream.Stream, start_pts: int, end_pts: int
) -> tuple[list[tuple[int, bool, bytes]], int] | None:
    """(pts, keyframe, data) of the segment's packets in decode order, and the next start.

    Reads from the current position; None if that is past the segment's keyframe. The next
    start is the earliest presentation time of the next segment: its keyframe or one of the
    leading pictures right after it in decode order; the end of the video if there is none.
    """
    taken: list[tuple[int, bool, bytes]] = []
    next_keyframe: int | None = None
    next_start = end_pts
    for packet in source.demux(stream):
        pts = packet.pts
        if packet.size == 0 or (pts is None and not taken):
            continue
        if pts is None:
            raise CutError("video packet without a timestamp")
        if next_keyframe is not None:
            if pts > next_keyframe:
                break
            next_start = min(next_start, pts)
            continue
        if not taken:
            if pts > start_pts:
                return None  # everything before the keyframe shows before it: we are past it
            if not (packet.is_keyframe and pts == start_pts):
                continue
        elif packet.is_keyframe and pts >= end_pts:
            if pts != end_pts:
                raise CutError(f"keyframe at pts {end_pts} not found (file changed?)")
            next_keyframe = pts
            continue
        taken.append((pts, packet.is_keyframe, bytes(packet)))
    if not taken:
        return None
    return taken, next_start


def audio_media_segment(
    path: Path,
    stream_index: int,
    start_seconds: float,
    end_seconds: float,
    sequence_number: int,
    *,
    is_first: bool = False,
    is_last: bool = False,
    init: bytes | None = None,
) -> bytes:
    """moof + mdat of the audio packets whose pts (source seconds) is in [start, end).

    `is_first` / `is_last` open the window to the start / end of the stream, so no packet is
    lost before the first video keyframe or after the last one. Pass the next segment's start
    as `end_seconds` (boundaries compare to the microsecond, so k's end is k+1's start).
    """
    start_us = round(start_seconds * 1_000_000)
    end_us = round(end_seconds * 1_000_000)
    found = None
    with _reading(path) as source:
        stream = _stream(source, stream_index)
        if stream.type != "audio":
            raise ValueError(f"stream {stream_index} is not audio")
        config = track_config(init or init_segment_for(stream, source, colour=False))
        time_base = stream.time_base
        if time_base is None:
            raise Fmp4Unsupported("audio stream without a time base")
        if not is_first:
            seek = math.floor((Fraction(start_us, 1_000_000) - _SEEK_BACK) / time_base)
            source.seek(seek, stream=stream, backward=True, any_frame=False)
            found = _scan_window(source, stream, start_us, end_us, is_last, from_seek=True)
    if found is None:
        # The first window, or an MPEG-TS search that landed past the window: read from the
        # start of a fresh open (a seek "to the start" drops pre-roll packets in some formats).
        with _reading(path) as source:
            start = -math.inf if is_first else start_us
            found = _scan_window(
                source, source.streams[stream_index], start, end_us, is_last, from_seek=False
            )
    assert found is not None
    packets, next_pts = found
    scale = config.timescale
    if not packets:
        base = output_ticks(round(Fraction(start_us, 1_000_000) / time_base), time_base, scale)
        return fragment([], base_decode_time=base, sequence_number=sequence_number)
    ticks = [output_ticks(pts, time_base, scale) for pts, _ in packets]
    ticks.append(output_ticks(next_pts, time_base, scale))
    samples = [Sample(data, ticks[i + 1] - ticks[i]) for i, (_, data) in enumerate(packets)]
    return fragment(samples, base_decode_time=ticks[0], sequence_number=sequence_number)


def _scan_window(
    source: av.container.InputContainer,
    stream: av.stream.Stream,
    start_us: float,
    end_us: int,
    is_last: bool,
    *,
    from_seek: bool,
) -> tuple[list[tuple[int, bytes]], int] | None:
    """(pts, data) of the window's packets, and the pts of the first packet after it.

    Reads from the current position; None if a seek (`from_seek`) landed past the start.
    """
    time_base = stream.time_base
    assert time_base is not None
    adts = _adts_filter(stream)
    taken: list[tuple[int, bytes]] = []
    last_end: int | None = None
    first = True
    for raw in source.demux(stream):
        for packet in adts(raw):
            pts = packet.pts
            if packet.size == 0 or pts is None:
                continue
            micros = pts * time_base * 1_000_000
            if first and from_seek and micros > start_us:
                return None
            first = False
            if micros < start_us:
                continue
            if micros >= end_us and not is_last:
                return taken, pts
            taken.append((pts, bytes(packet)))
            duration = packet.duration or _frame_ticks(stream)
            last_end = pts + duration
    return taken, last_end if last_end is not None else 0


def _frame_ticks(stream: av.stream.Stream) -> int:
    """One audio frame in the stream's time base, for a last packet without a duration."""
    cc = stream.codec_context
    frame_size = int(getattr(cc, "frame_size", 0) or 0)
    rate = int(getattr(cc, "sample_rate", 0) or 0)
    time_base = stream.time_base
    if frame_size <= 0 or rate <= 0 or time_base is None:
        raise Fmp4Unsupported("last audio packet has no duration")
    return round(Fraction(frame_size, rate) / time_base)


def _adts_filter(stream: av.stream.Stream) -> Callable[[av.Packet[Any]], list[av.Packet[Any]]]:
    """AAC in MPEG-TS comes as ADTS; an mp4a sample is the raw frame (libavcodec's filter)."""
    if _codec_name(stream) != "aac" or stream.codec_context.extradata:
        return lambda packet: [packet]
    bsf = av.bitstream.BitStreamFilterContext("aac_adtstoasc", stream)
    return lambda packet: bsf.filter(packet) if packet.size else []


# --- sample data ------------------------------------------------------------------------------


def _sample_rewriter(stream: av.stream.Stream, config: TrackConfig) -> Callable[[bytes], bytes]:
    """The packet -> sample data conversion for this stream (identity for most codecs)."""
    codec = _codec_name(stream)
    if codec == "av1":
        return strip_temporal_delimiter
    if codec not in ("h264", "hevc"):
        return lambda data: data
    extradata = stream.codec_context.extradata or b""
    out_size = config.nal_length_size
    if out_size is None:
        raise Fmp4Unsupported(f"{codec}: sample entry without a NAL length size")
    if extradata[:1] == b"\x01":  # avcC / hvcC: packets are length-prefixed already
        in_size = ((extradata[4] if codec == "h264" else extradata[21]) & 3) + 1
    else:
        in_size = 0  # Annex B (MPEG-TS, raw streams)
    hevc = codec == "hevc"
    aud = _HEVC_AUD if hevc else _H264_AUD
    parameter_set_types = _HEVC_PARAMETER_SETS if hevc else _H264_PARAMETER_SETS
    known = config.parameter_sets

    def drop(nal: bytes) -> bool:
        kind = (nal[0] >> 1) & 0x3F if hevc else nal[0] & 0x1F
        return kind == aud or (kind in parameter_set_types and nal in known)

    def rewrite(data: bytes) -> bytes:
        return rewrite_nal_units(data, in_size, out_size, drop)

    return rewrite


def rewrite_nal_units(
    data: bytes, in_size: int, out_size: int, drop: Callable[[bytes], bool]
) -> bytes:
    """One access unit as `out_size`-byte length-prefixed NAL units, without dropped ones.

    `in_size` is the source's length size, or 0 for Annex B start codes. Returns `data` itself
    when nothing changes (the common case: Matroska/MP4 H.264 and HEVC).
    """
    units = split_annex_b(data) if in_size == 0 else split_length_prefixed(data, in_size)
    kept = [u for u in units if u and not drop(u)]
    if in_size == out_size and len(kept) == len(units):
        return data
    parts: list[bytes] = []
    for unit in kept:
        parts.append(len(unit).to_bytes(out_size, "big"))
        parts.append(unit)
    return b"".join(parts)


def split_length_prefixed(data: bytes, size: int) -> list[bytes]:
    units: list[bytes] = []
    pos = 0
    while pos + size <= len(data):
        length = int.from_bytes(data[pos : pos + size], "big")
        pos += size
        if pos + length > len(data):
            raise CutError("truncated NAL unit in a video packet")
        units.append(data[pos : pos + length])
        pos += length
    return units


def split_annex_b(data: bytes) -> list[bytes]:
    """NAL units between 00 00 01 start codes, without the zero bytes that pad start codes."""
    units: list[bytes] = []
    start = data.find(b"\0\0\1")
    while start != -1:
        begin = start + 3
        start = data.find(b"\0\0\1", begin)
        unit = data[begin : len(data) if start == -1 else start].rstrip(b"\0")
        if unit:
            units.append(unit)
    return units


def strip_temporal_delimiter(data: bytes) -> bytes:
    """AV1 in MP4 carries no temporal delimiter OBUs (AV1-ISOBMFF 2.4); drop a leading one."""
    if len(data) >= 2 and (data[0] >> 3) & 0x0F == 2 and data[0] & 0x02 and data[1] == 0:
        return data[2:]
    return data
