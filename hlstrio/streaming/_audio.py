"""Audio-only segments for HLS alternate audio renditions, cut on demand, in any order.

Every audio track is its own `EXT-X-MEDIA TYPE=AUDIO` rendition (RFC 8216 4.3.4.1) with its own
media playlist, on the video's timeline: segment k covers source time [start_k, end_k), the
video segment k's boundaries. A rendition is either COPY (the client decodes the source codec)
or ENCODE (AAC-LC made here, in-process with PyAV's libav: Apple's authoring spec requires a
stereo AAC rendition, and multichannel audio goes in renditions of its own). Like the video cut
(`_remux.py`) each call opens the file, seeks, and returns one segment: no process, no temp
file, no state between calls; it blocks, so the session runs it in a worker thread.

COPY: the packets whose pts lies in [start, end). Boundaries are compared to the microsecond
(as `_fmp4.audio_media_segment` does), so k's end and k+1's start, computed by different float
sums, still meet, and consecutive segments tile the packets exactly: none twice, none lost.
The cut seeks about 2 s before `start` (audio packets that belong to a segment sit in the file
before the video keyframe); the first segment also takes what comes before its start (encoder
priming), the last everything after.

ENCODE is independent per segment, yet the concatenation must be one seamless stream. AAC is
an MDCT codec with 50% overlap: a packet covers 2048 input samples, the decoder overlap-adds
the second half of packet p-1 with the first half of packet p, and the time-domain aliasing
of each half cancels only if both packets were encoded from the same signal there. The scheme:

1. One sample grid for every segment. Output sample n is source time n / rate (rate 48000 or
   44100, `output_rate`). Boundary k is on the AAC frame grid: frame F_k = round(start_k *
   rate / 1024), segment k holds the packets presenting samples [1024 F_k, 1024 F_k+1). Packet
   pts are 1024 * frame: timestamps of consecutive segments abut to the sample, and segments
   tile the sample axis (each boundary moves by at most half a frame, 10.7 ms, from the
   video's; the last segment runs to the end of the audio).
2. Priming. libav's AAC encoder delays its output by 1024 samples (initial_padding): fed
   frame pts P, the first packet has pts P - 1024 and covers 1024 zeros + the first frame.
   That pts already is the sample the packet presents, so packets keep the encoder's pts, and
   every packet before the boundary (priming, warm-up, pre-roll) is dropped.
3. Pre-roll and warm-up. The encoder is fed `_WARMUP_FRAMES` (2) frames of digital silence,
   then the true signal from `_PREROLL_FRAMES` (2) frames before the boundary. Pre-roll: every
   kept packet's 2048-sample window is real signal, and the window switching set off by the
   onset has settled before the boundary, so the first kept packet's left half matches the
   previous segment's last packet. Warm-up: libav's default (twoloop) coder is path
   dependent; measured on a 16-bit 997 Hz tone at 128 kb/s, an encode whose first frame is
   already the tone settles at 10x the error (-31 dB) of one that starts on silence
   (-51 dB), at the same bitrate. Segment 0 and any continuous encode start on silence (the
   stream starts after the priming), so every segment does: quality does not step at a
   boundary. The source decoder needs a pre-roll of its own before all that
   (`_SOURCE_PREROLL`, 0.5 s: Opus needs 80 ms, MP3 a few frames of bit reservoir, TrueHD a
   major sync, AAC/AC-3 one frame); what it decodes before the encoder's start is discarded.
4. Look-ahead. Segment k's last packet (pts 1024 F_k+1 - 1024) overlaps into segment k+1, and
   the encoder emits it only after seeing two more frames: feed the true signal past the end
   until that packet comes out, never flush (a flush would fill the overlap with zeros and leave
   the aliasing of k+1's first half uncancelled: a click). Only the last segment flushes.
5. Placement. Decoded samples are put on the source's sample axis by a pure rule of each
   frame's own timestamp (`frame_position`), so every cut puts the same sample at the same
   place: exact from fine time bases (MP4: 1/rate, MPEG-TS: 90 kHz), snapped to the codec's
   frame grid from Matroska's millisecond timestamps. Within a run samples are counted, not
   re-derived; a real discontinuity (a corrupt packet skipped, a gap in the source) is filled
   with silence or trimmed, so what follows keeps its place on the timeline.
6. Resampling (only for rates other than 44.1/48 kHz) starts at a source sample whose time is
   also an output sample (multiples of rate_in / gcd), so every cut resamples with the same
   phase; libswresample maps input sample s0 to output sample s0 * rate_out / rate_in exactly.
   Downmix (5.1 -> stereo) is libswresample's default matrix, the one `ffmpeg -ac 2` uses
   (FL + 0.707 FC + 0.707 SL, LFE dropped, float so no normalisation).

Output timestamps are source time + `TS_OFFSET`, as for every other rendition.
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol, cast

import av
import av.audio.codeccontext
import av.audio.stream
import av.error

from ._decision import ENCODED_AUDIO_BITRATE, ENCODED_AUDIO_SAMPLE_RATES, STEREO
from ._errors import CutError
from ._mpegts import MUX_OPTIONS, shift

__all__ = [
    "AAC_FRAME_SAMPLES",
    "AacEncoding",
    "AudioEncoding",
    "AudioPacket",
    "AudioPackets",
    "EncodeWindow",
    "audio_packets",
    "cut_audio_ts",
    "encode_window",
    "frame_boundary",
    "frame_position",
    "output_rate",
]

AAC_FRAME_SAMPLES = 1024  # AAC-LC: samples per frame (packet), at the output rate
# Encoder pre-roll, in frames before the boundary (scheme step 3).
_PREROLL_FRAMES = 2
# Frames of digital silence the encoder starts with, before the pre-roll (scheme step 3).
_WARMUP_FRAMES = 2
# Source decoder pre-roll, in seconds before the encoder's first sample (scheme step 3).
_SOURCE_PREROLL = Fraction(1, 2)
# COPY: audio that belongs to a segment sits in the file before its video keyframe.
_SEEK_BACK = Fraction(2)
# A seek that lands after the needed start is retried this much earlier (MPEG-TS seeks by
# bisecting on timestamps and can land late), then from the start of the file.
_SEEK_RETRY = Fraction(10)
# Output samples resampled before the first one kept: the resampler's filter starts on zeros.
_RESAMPLE_MARGIN = 256
_MICROS = 1_000_000
_LAYOUTS = {1: "mono", 2: "stereo"}


class AudioEncoding(Protocol):
    """What ENCODE needs to know; `_decision.AudioOutput` is one."""

    @property
    def sample_rate(self) -> int: ...  # output rate; <= 0: chosen from the source's
    @property
    def channels(self) -> int: ...  # 1 or 2
    @property
    def bitrate(self) -> int: ...  # bits/s


@dataclass(frozen=True, slots=True)
class AacEncoding:
    """An AudioEncoding by value: stereo AAC-LC, 128 kb/s unless told."""

    sample_rate: int = 48_000
    channels: int = STEREO
    bitrate: int = ENCODED_AUDIO_BITRATE


@dataclass(frozen=True, slots=True)
class AudioPacket:
    """One coded audio frame. `pts` and `duration` count `AudioPackets.time_base` ticks and are
    source time: no TS_OFFSET added (the muxer adds its own)."""

    pts: int
    duration: int
    data: bytes


@dataclass(frozen=True, slots=True)
class AudioPackets:
    """One segment's audio, for a muxer of its own (the fMP4 writer).

    `codec` is the ffmpeg codec name ("aac" for ENCODE, the source's for COPY) and `extradata`
    its codec configuration: for ENCODE the AAC AudioSpecificConfig, the same bytes for every
    segment of a rendition (it depends only on rate and channels), so an init segment can be
    made once. ENCODE packets are raw AAC frames, 1024 ticks each (time_base 1/sample_rate),
    contiguous; `end_pts` is where the next segment's first packet starts (for the last
    sample's duration in a `trun`). COPY packets are the source's as demuxed (ADTS-framed AAC if
    the source is MPEG-TS or raw AAC: `_fmp4._adts_filter` converts) in the source's time base,
    with the demuxer's durations; `end_pts` is the next packet's pts, or the last one's end.
    """

    codec: str
    sample_rate: int
    channels: int
    time_base: Fraction
    extradata: bytes
    packets: tuple[AudioPacket, ...]
    end_pts: int


@dataclass(frozen=True, slots=True)
class EncodeWindow:
    """The AAC frames one ENCODE segment holds: [first_frame, end_frame), on the output grid.

    `end_frame` None: the last segment, which runs to the end of the audio (and at least to
    `min_end_frame`, the timeline's end, padded with silence if the audio is shorter).
    """

    rate: int
    first_frame: int
    end_frame: int | None
    min_end_frame: int

    @property
    def first_sample(self) -> int:
        return self.first_frame * AAC_FRAME_SAMPLES

    @property
    def end_sample(self) -> int | None:
        return None if self.end_frame is None else self.end_frame * AAC_FRAME_SAMPLES

    @property
    def encode_from_sample(self) -> int:
        """Where the encoder starts: the pre-roll frames before the first kept packet."""
        return (self.first_frame - _PREROLL_FRAMES) * AAC_FRAME_SAMPLES


# --- pure timing ------------------------------------------------------------------------------


def output_rate(source_rate: int) -> int:
    """The ENCODE rate: 48000 and 44100 are kept (no resampling), anything else becomes 48000."""
    return source_rate if source_rate in ENCODED_AUDIO_SAMPLE_RATES else 48_000


def _micros(seconds: float) -> Fraction:
    """Seconds snapped to the microsecond, so float noise cannot move a boundary."""
    return Fraction(round(seconds * _MICROS), _MICROS)


def _round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def frame_boundary(seconds: float, rate: int) -> int:
    """The AAC frame nearest `seconds` of source time: where a segment boundary goes."""
    return _round_half_up(_micros(seconds) * rate / AAC_FRAME_SAMPLES)


def encode_window(
    start_seconds: float, end_seconds: float, rate: int, is_last: bool
) -> EncodeWindow:
    """Segment [start, end) on the frame grid (scheme step 1): k's end frame is k+1's first."""
    first = frame_boundary(start_seconds, rate)
    end = frame_boundary(end_seconds, rate)
    return EncodeWindow(rate, first, None if is_last else max(first, end), max(first, end))


def frame_position(
    pts: int, samples: int, *, rate: int, time_base: Fraction, origin_pts: int, grid: int
) -> int:
    """Source sample index of a decoded frame's first sample, from its own timestamp alone.

    Every cut must put a given sample at the same index, whichever frame its decode started
    from. A time base that resolves samples (MP4's 1/rate, MPEG-TS's 90 kHz: error <= 1/2
    tick) gives it by rounding. Matroska's millisecond timestamps are up to 24 samples off at
    48 kHz, but frames of a fixed size (`grid`: AAC 1024, AC-3 1536, DTS 512, FLAC's block)
    sit on a grid from the stream's first packet (`origin_pts`): the frame's *end* is snapped
    to that grid, which also places a first frame the decoder shortened at its start (the
    priming it skips). Frames too short for that (TrueHD's 40 samples) fall back to rounding:
    then boundaries can be off by that error (< 1 ms), the one case where it remains.
    Integer arithmetic: this runs for every decoded frame.
    """
    num, den = time_base.numerator * rate, time_base.denominator  # samples = pts * num / den
    if num <= den or grid * den <= 2 * num:
        return _divide_rounding(pts * num, den)
    start = _divide_rounding(origin_pts * num, den)
    frames = _divide_rounding(pts * num + (samples - start) * den, grid * den)
    return start + frames * grid - samples


def _divide_rounding(numerator: int, denominator: int) -> int:
    """round(numerator / denominator), halves up, for denominator > 0."""
    return (2 * numerator + denominator) // (2 * denominator)


@dataclass(slots=True)
class _Placer:
    """Places the frames of one decode run: counted, re-anchored on real discontinuities."""

    rate: int
    time_base: Fraction
    origin_pts: int
    grid: int = 0
    expected: int | None = None

    def place(self, pts: int | None, samples: int) -> int | None:
        own = None
        if pts is not None:
            own = frame_position(
                pts,
                samples,
                rate=self.rate,
                time_base=self.time_base,
                origin_pts=self.origin_pts,
                grid=self.grid or samples,
            )
        if self.expected is None:
            position = own
        else:
            position = self.expected
            # A frame shorter than the grid (the stream's last, trimmed) has no reliable own
            # position on a snapped grid: it follows the one before it.
            if own is not None and samples >= self.grid and abs(own - position) > self._slack():
                position = own
        if position is not None:
            self.expected = position + samples
        return position

    def _slack(self) -> int:
        """How far a frame's own position may stray from the counted one before it counts as
        a discontinuity: a sample, or a tick where timestamps are rounded and not snapped."""
        num, den = self.time_base.numerator * self.rate, self.time_base.denominator
        if num <= den or self.grid * den > 2 * num:
            return 1
        return -(-num // den)


# --- the two cuts -----------------------------------------------------------------------------


def cut_audio_ts(
    path: Path,
    stream_index: int,
    start_seconds: float,
    end_seconds: float,
    *,
    encode: AudioEncoding | None,
    is_last: bool,
    is_first: bool | None = None,
) -> bytes:
    """One audio-only MPEG-TS segment of `stream_index`: source time [start, end) + TS_OFFSET.

    `encode` None: COPY the packets; else ENCODE AAC-LC (see the module docstring). `is_last`
    runs to the end of the audio. `is_first` (COPY only) opens the window to the stream's start;
    None: the segment is the first if it starts at the container's start time. PAT/PMT once.
    Raises CutError if the file cannot be read or has no such audio stream.
    """
    out_buf = io.BytesIO()
    with _source(path, stream_index) as (source, stream):
        try:
            with av.open(out_buf, "w", format="mpegts", options=MUX_OPTIONS) as out:
                if encode is None:
                    first = _is_first(source, start_seconds) if is_first is None else is_first
                    track = out.add_stream_from_template(stream)
                    packets: Iterable[av.Packet[Any]] = _copy_packets(
                        source, stream, start_seconds, end_seconds, first, is_last
                    )[0]
                else:
                    rate = _rate(encode, stream)
                    track = out.add_stream("aac", rate=rate)
                    encoder = _configure(track.codec_context, encode, rate)
                    window = encode_window(start_seconds, end_seconds, rate, is_last)
                    packets = _encoded_packets(source, stream, window, encoder)
                for packet in packets:
                    time_base = packet.time_base
                    shift(packet, time_base)
                    packet.stream = track
                    out.mux(packet)
        except (av.FFmpegError, OSError) as exc:
            raise CutError(f"cannot cut audio of {path.name}: {exc}") from None
    return out_buf.getvalue()


def audio_packets(
    path: Path,
    stream_index: int,
    start_seconds: float,
    end_seconds: float,
    *,
    encode: AudioEncoding | None,
    is_last: bool,
    is_first: bool | None = None,
) -> AudioPackets:
    """The packets `cut_audio_ts` muxes, with their timing, for another container (fMP4).

    Same arguments, same packets, same rules. A segment's first pts for ENCODE is
    `encode_window(...).first_sample` whatever the audio: its `tfdt` follows from the
    timeline alone.
    """
    with _source(path, stream_index) as (source, stream):
        try:
            if encode is None:
                first = _is_first(source, start_seconds) if is_first is None else is_first
                taken, following = _copy_packets(
                    source, stream, start_seconds, end_seconds, first, is_last
                )
                time_base = _time_base(stream)
                cc = stream.codec_context
                codec, rate, channels = cc.name, cc.sample_rate, cc.channels
                extradata = cc.extradata or b""
                end_pts = following if following is not None else _copy_end(taken)
            else:
                rate = _rate(encode, stream)
                encoder = _configure(av.CodecContext.create("aac", "w"), encode, rate)
                encoder.open()
                window = encode_window(start_seconds, end_seconds, rate, is_last)
                taken = list(_encoded_packets(source, stream, window, encoder))
                time_base = Fraction(1, rate)
                codec, channels, extradata = "aac", encoder.channels, encoder.extradata or b""
                end_pts = (
                    window.end_sample
                    if window.end_sample is not None
                    else _copy_end(taken, default=window.first_sample)
                )
        except (av.FFmpegError, OSError) as exc:
            raise CutError(f"cannot cut audio of {path.name}: {exc}") from None
    packets = tuple(
        AudioPacket(p.pts or 0, p.duration or 0, bytes(p)) for p in taken if p.pts is not None
    )
    return AudioPackets(codec, rate, channels, time_base, extradata, packets, end_pts)


# --- I/O helpers ------------------------------------------------------------------------------


class _source:
    """`with _source(path, index) as (container, audio stream)`; CutError if there is none."""

    def __init__(self, path: Path, stream_index: int) -> None:
        self._path = path
        self._index = stream_index
        self._container: av.container.InputContainer | None = None

    def __enter__(self) -> tuple[av.container.InputContainer, av.audio.stream.AudioStream]:
        try:
            self._container = av.open(str(self._path), "r")
        except (av.FFmpegError, OSError) as exc:
            raise CutError(f"cannot read {self._path.name}: {exc}") from None
        streams = self._container.streams
        if not 0 <= self._index < len(streams) or streams[self._index].type != "audio":
            self._container.close()
            raise CutError(f"{self._path.name} has no audio stream {self._index}")
        return self._container, cast(av.audio.stream.AudioStream, streams[self._index])

    def __exit__(self, *exc: object) -> None:
        if self._container is not None:
            self._container.close()


def _time_base(stream: av.audio.stream.AudioStream) -> Fraction:
    time_base = stream.time_base
    if time_base is None or time_base <= 0:
        raise CutError("audio stream has no time base")
    return time_base


def _is_first(source: av.container.InputContainer, start_seconds: float) -> bool:
    start_time = source.start_time or 0  # AV_TIME_BASE (microseconds)
    return _micros(start_seconds) <= Fraction(start_time, av.time_base)


def _rate(encode: AudioEncoding, stream: av.audio.stream.AudioStream) -> int:
    if encode.sample_rate > 0:
        return encode.sample_rate
    return output_rate(stream.codec_context.sample_rate)


def _configure(
    encoder: av.audio.codeccontext.AudioCodecContext, encode: AudioEncoding, rate: int
) -> av.audio.codeccontext.AudioCodecContext:
    layout = _LAYOUTS.get(encode.channels)
    if layout is None:
        raise ValueError(f"ENCODE makes mono or stereo AAC, not {encode.channels} channels")
    encoder.sample_rate = rate
    encoder.layout = layout
    encoder.format = "fltp"
    encoder.bit_rate = encode.bitrate
    encoder.time_base = Fraction(1, rate)
    return encoder


def _copy_end(packets: list[av.Packet[Any]], default: int = 0) -> int:
    """End of the last packet (pts + duration); `default` if there is none."""
    if not packets:
        return default
    last = packets[-1]
    return (last.pts or 0) + (last.duration or 0)


def _seek(
    source: av.container.InputContainer, stream: av.audio.stream.AudioStream, seconds: Fraction
) -> bool:
    """Seek to the packet at or before `seconds`; False (no seek) when that is the stream's
    start: a fresh container reads from there, and a seek to 0 in Matroska lands on the first
    cue, after packets with negative timestamps (measured: AC-3 at -5 ms, Opus at -7 ms)."""
    time_base = _time_base(stream)
    start = Fraction(stream.start_time or 0) * time_base
    if seconds <= start:
        return False
    source.seek(math.floor(seconds / time_base), stream=stream, backward=True, any_frame=False)
    return True


def _rewind(source: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> None:
    """Back to the stream's first packet (a seek before it, as 0 would skip negative pts)."""
    time_base = _time_base(stream)
    before = math.floor((Fraction(stream.start_time or 0) * time_base - _SEEK_RETRY) / time_base)
    source.seek(before, stream=stream, backward=True, any_frame=False)


def _demux(
    source: av.container.InputContainer, stream: av.audio.stream.AudioStream
) -> Iterator[av.Packet[Any]]:
    """The stream's packets with a pts; corrupt data ends the stream (as EOF would)."""
    packets = source.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.error.InvalidDataError:
            return
        if packet.pts is not None and packet.size > 0:
            yield packet


# --- COPY -------------------------------------------------------------------------------------


def _copy_packets(
    source: av.container.InputContainer,
    stream: av.audio.stream.AudioStream,
    start_seconds: float,
    end_seconds: float,
    is_first: bool,
    is_last: bool,
) -> tuple[list[av.Packet[Any]], int | None]:
    """The packets whose pts (microseconds) is in [start, end), opened as is_first/is_last
    say, and the pts of the first packet after them (None at the end of the stream)."""
    window = _Window(
        _time_base(stream),
        None if is_first else round(start_seconds * _MICROS),
        None if is_last else round(end_seconds * _MICROS),
    )
    if not is_first and _seek(source, stream, _micros(start_seconds) - _SEEK_BACK):
        found = _copy_scan(source, stream, window, from_seek=True)
        if found is not None:
            return found
        _rewind(source, stream)  # an MPEG-TS seek landed past the start: read from the start
    found = _copy_scan(source, stream, window, from_seek=False)
    assert found is not None
    return found


def _copy_scan(
    source: av.container.InputContainer,
    stream: av.audio.stream.AudioStream,
    window: _Window,
    *,
    from_seek: bool,
) -> tuple[list[av.Packet[Any]], int | None] | None:
    """`_copy_packets` from the current position; None if a seek landed past the start."""
    taken: list[av.Packet[Any]] = []
    first = True
    for packet in _demux(source, stream):
        pts = packet.pts or 0
        if first and from_seek and window.after_start(pts):
            return None
        first = False
        if window.before(pts):
            continue
        if window.past(pts):
            return taken, pts
        taken.append(packet)
    return taken, None


@dataclass(frozen=True, slots=True)
class _Window:
    """[low, high) in microseconds (None: open), compared with pts exactly, in integers."""

    time_base: Fraction
    low_us: int | None
    high_us: int | None

    def _micros_times_den(self, pts: int) -> int:
        return pts * self.time_base.numerator * _MICROS

    def before(self, pts: int) -> bool:
        if self.low_us is None:
            return False
        return self._micros_times_den(pts) < self.low_us * self.time_base.denominator

    def after_start(self, pts: int) -> bool:
        if self.low_us is None:
            return False
        return self._micros_times_den(pts) > self.low_us * self.time_base.denominator

    def past(self, pts: int) -> bool:
        if self.high_us is None:
            return False
        return self._micros_times_den(pts) >= self.high_us * self.time_base.denominator


# --- ENCODE -----------------------------------------------------------------------------------


def _encoded_packets(
    source: av.container.InputContainer,
    stream: av.audio.stream.AudioStream,
    window: EncodeWindow,
    encoder: av.audio.codeccontext.AudioCodecContext,
) -> Iterator[av.Packet[Any]]:
    """The AAC packets of `window`, pts = output sample (time base 1/rate), source time."""
    first, end = window.first_sample, window.end_sample
    if end is not None and end <= first:
        return
    time_base = Fraction(1, window.rate)
    layout = encoder.layout.name
    pad_until = None if end is not None else window.min_end_frame * AAC_FRAME_SAMPLES
    pts = window.encode_from_sample
    frames = _pcm_frames(source, stream, window.rate, layout, pts, pad_until=pad_until)
    warmup = [_zeros(layout, window.rate, AAC_FRAME_SAMPLES) for _ in range(_WARMUP_FRAMES)]
    pts -= _WARMUP_FRAMES * AAC_FRAME_SAMPLES
    for frame in itertools.chain(warmup, frames):
        frame.pts = pts
        frame.time_base = time_base
        pts += frame.samples
        for packet in encoder.encode(frame):
            packet_pts = packet.pts
            if packet_pts is None or packet_pts < first:
                continue  # priming and pre-roll (scheme steps 2, 3)
            if end is not None and packet_pts >= end:
                return
            packet.time_base = time_base
            yield packet  # the consumer may rescale it in place (muxing does)
            if end is not None and packet_pts + AAC_FRAME_SAMPLES >= end:
                return  # the last packet is out: no flush (scheme step 4)
    for packet in encoder.encode(None):
        if packet.pts is not None and packet.pts >= first:
            packet.time_base = time_base
            yield packet


def _pcm_frames(
    source: av.container.InputContainer,
    stream: av.audio.stream.AudioStream,
    rate: int,
    layout: str,
    begin: int,
    *,
    pad_until: int | None,
) -> Iterator[av.AudioFrame]:
    """fltp `layout` frames at `rate`, 1024 samples each, contiguous from output sample `begin`.

    When the audio ends: silence for ever if `pad_until` is None (a segment that is not the
    last one still fills its span), else silence up to `pad_until`, then the last (partial)
    frame and stop.
    """
    source_rate = stream.codec_context.sample_rate
    if source_rate <= 0:
        raise CutError("audio stream has no sample rate")
    common = math.gcd(source_rate, rate)
    in_step, out_step = source_rate // common, rate // common
    margin = 0 if source_rate == rate else _RESAMPLE_MARGIN
    out_start = math.floor(Fraction(begin - margin, out_step)) * out_step
    in_start = out_start // out_step * in_step  # the same instant, on both sample grids
    output = _Output(rate, layout, out_start)
    output.skip_to(begin)
    converter = _Converter(rate, layout, output)
    cursor = in_start  # source sample the converter needs next
    for position, frame in _placed_frames(source, stream, Fraction(in_start, source_rate)):
        n = frame.samples
        if position + n <= cursor:
            continue
        if position > cursor:
            converter.feed(_silence(frame, position - cursor))
        elif position < cursor:
            frame = _tail(frame, cursor - position)
        converter.feed(frame)
        cursor = position + n
        yield from output.frames()
    converter.flush()
    yield from output.frames()
    if pad_until is None:
        while True:
            output.pad(AAC_FRAME_SAMPLES)
            yield from output.frames()
    if output.position < pad_until:
        output.pad(pad_until - output.position)
    yield from output.frames(partial=True)


def _placed_frames(
    source: av.container.InputContainer, stream: av.audio.stream.AudioStream, needed: Fraction
) -> Iterator[tuple[int, av.AudioFrame]]:
    """(source sample position, frame) from a decode that covers `needed` (source seconds).

    Seeks `_SOURCE_PREROLL` before it; if the first frame still starts after it (a late
    MPEG-TS seek), retries earlier, then from the stream's start. Packets the decoder rejects
    are skipped: the next frame's timestamp puts what follows back in its place.
    """
    time_base = _time_base(stream)
    rate = stream.codec_context.sample_rate
    origin = stream.start_time or 0
    fresh = True  # nothing read yet: the container is at the stream's start
    if time_base * rate > 1:
        # Coarse timestamps are snapped to the frame grid, which starts at the first packet
        # (the stream's start_time is after the decoder's priming skip: 256 samples for AC-3).
        first = next(_demux(source, stream), None)
        if first is not None and first.pts is not None:
            origin = first.pts
        fresh = False
    needed_sample = math.floor(needed * rate)
    targets = [needed - _SOURCE_PREROLL, needed - _SOURCE_PREROLL - _SEEK_RETRY, None]
    for attempt, target in enumerate(targets):
        seeked = target is not None and _seek(source, stream, target)
        if not seeked and not fresh:
            _rewind(source, stream)
        fresh = False
        if attempt:
            stream.codec_context.flush_buffers()
        placer = _Placer(rate, time_base, origin)
        pending: av.AudioFrame | None = None  # the run's first frame, until the grid is known
        started = False
        for frame in _decoded(source, stream):
            if pending is None and not started:
                pending = frame
                continue
            if pending is not None:
                placer.grid = max(pending.samples, frame.samples)
                position = placer.place(_pts(pending, time_base), pending.samples)
                if position is not None and seeked and position > needed_sample:
                    break  # landed late: next target
                started = True
                if position is not None:
                    yield position, pending
                pending = None
            position = placer.place(_pts(frame, time_base), frame.samples)
            if position is not None:
                yield position, frame
        else:
            if pending is not None:
                placer.grid = pending.samples
                position = placer.place(_pts(pending, time_base), pending.samples)
                if position is not None:
                    yield position, pending
            return
    return


def _decoded(
    source: av.container.InputContainer, stream: av.audio.stream.AudioStream
) -> Iterator[av.AudioFrame]:
    decoder = stream.codec_context
    for packet in _demux(source, stream):
        try:
            frames = decoder.decode(packet)
        except av.FFmpegError:
            continue  # corrupt packet: skipped, its span becomes silence
        yield from (f for f in frames if f.samples > 0)
    try:
        yield from (f for f in decoder.decode(None) if f.samples > 0)
    except av.FFmpegError:
        return


def _pts(frame: av.AudioFrame, time_base: Fraction) -> int | None:
    """The frame's pts in the stream's time base (the decoder's, normally)."""
    if frame.pts is None or frame.time_base is None:
        return None
    if frame.time_base == time_base:
        return frame.pts
    return _divide_rounding(
        frame.pts * frame.time_base.numerator * time_base.denominator,
        frame.time_base.denominator * time_base.numerator,
    )


def _silence(like: av.AudioFrame, samples: int) -> av.AudioFrame:
    """`samples` of silence in `like`'s format, layout and rate."""
    return _zeros(like.layout.name, like.sample_rate, samples, like.format.name)


def _zeros(layout: str, rate: int, samples: int, sample_format: str = "fltp") -> av.AudioFrame:
    frame = av.AudioFrame(format=sample_format, layout=layout, samples=samples)
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.sample_rate = rate
    return frame


def _tail(frame: av.AudioFrame, skip: int) -> av.AudioFrame:
    """`frame` without its first `skip` samples."""
    fifo = av.AudioFifo()
    frame.pts = None
    fifo.write(frame)
    fifo.read(skip)
    rest = fifo.read()
    assert rest is not None
    rest.pts = None
    return rest


class _Output:
    """Converted samples on the output sample axis, re-framed to 1024."""

    def __init__(self, rate: int, layout: str, position: int) -> None:
        self._rate = rate
        self._layout = layout
        self._fifo = av.AudioFifo()
        self._skip = 0
        self.position = position  # output sample of the next one written

    def skip_to(self, begin: int) -> None:
        """Drop what comes before output sample `begin` (the resampler's warm-up)."""
        self._skip = begin - self.position

    def write(self, frame: av.AudioFrame) -> None:
        frame.pts = None
        self.position += frame.samples
        if self._skip >= frame.samples:
            self._skip -= frame.samples
            return
        if self._skip:
            frame = _tail(frame, self._skip)
            self._skip = 0
        self._fifo.write(frame)

    def pad(self, samples: int) -> None:
        if samples > 0:
            self.write(_zeros(self._layout, self._rate, samples))

    def frames(self, *, partial: bool = False) -> Iterator[av.AudioFrame]:
        while self._fifo.samples >= AAC_FRAME_SAMPLES or (partial and self._fifo.samples):
            frame = self._fifo.read(AAC_FRAME_SAMPLES, partial=partial)
            if frame is None:
                return
            yield frame


class _Converter:
    """Decoded frames -> fltp `layout` at `rate` into `output`; a new resampler whenever the
    source's format, layout or rate changes mid-stream (AC-3 broadcasts switch 2.0/5.1)."""

    def __init__(self, rate: int, layout: str, output: _Output) -> None:
        self._rate = rate
        self._layout = layout
        self._output = output
        self._key: tuple[str, str, int] | None = None
        self._resampler: av.AudioResampler | None = None
        self._written = 0

    def feed(self, frame: av.AudioFrame) -> None:
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        if key != self._key:
            self.flush()
            self._key = key
            self._resampler = av.AudioResampler(format="fltp", layout=self._layout, rate=self._rate)
            self._written = 0
        assert self._resampler is not None
        # Contiguous timestamps of our own: the source's may jump where we filled or trimmed.
        frame.pts = self._written
        frame.time_base = Fraction(1, frame.sample_rate)
        self._written += frame.samples
        for out in self._resampler.resample(frame):
            self._output.write(out)

    def flush(self) -> None:
        if self._resampler is not None:
            for out in self._resampler.resample(None):
                self._output.write(out)
        self._resampler = None
