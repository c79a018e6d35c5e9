"""Audio-only renditions cut on demand: COPY tiles the source's packets, ENCODE is seamless.

The rules under test:
- RFC 8216 4.3.4.1 (EXT-X-MEDIA TYPE=AUDIO): each audio track is a rendition with its own
  media playlist; 4.3.4.1.1: the renditions of a group are the same content, and 6.2.4:
  matching content has matching timestamps, so audio segment k covers the video segment k's
  time; 3: each segment carries the continuation of the previous one's bitstream, timestamps
  uninterrupted, so consecutive segments abut exactly (no gap, no overlap).
- Apple HLS Authoring Spec (audio): a stereo AAC rendition MUST be available; 8.9/9.6/9.7:
  alternate and multichannel audio are separate renditions. ENCODE makes that stereo AAC from
  any track (5.1 AC-3, FLAC, Opus, PCM); the downmix keeps each channel's place and level.
- Every rendition is on source time + TS_OFFSET (the video's clock).
Media are tiny lavfi tones made by the bundled ffmpeg; the cut segments are parsed as TS
(tests/tsparse.py) and decoded by PyAV's libav as one client would, one stream across segments.
"""

from __future__ import annotations

import array
import io
import itertools
import math
import random
import statistics
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlstrio.media import generate_clip, probe
from hlstrio.streaming._audio import (
    AAC_FRAME_SAMPLES,
    AacEncoding,
    audio_packets,
    cut_audio_ts,
    encode_window,
    frame_position,
    output_rate,
)
from hlstrio.streaming._errors import CutError
from hlstrio.streaming._mpegts import TS_OFFSET
from hlstrio.streaming._timeline import Segment, Timeline, fixed_grid, keyframe_timeline
from tests import tsparse
from tests.support import make_clips

HZ = 997  # a pure tone that no frame length divides
SECONDS = 4.5
SEGMENT_SECONDS = 0.9  # five segments, four boundaries, none on the AAC frame grid
_STEREO_AMPLITUDE = 0.125 / math.sqrt(2)  # lavfi sine is 1/8; -ac 2 spreads it at -3 dB

_TONE = f"-f lavfi -i sine=frequency={HZ}:sample_rate={{rate}}"
CLIPS: dict[str, str] = {
    # Matroska: millisecond timestamps (the frame grid has to be recovered from them).
    "flac.mkv": f"{_TONE.format(rate=48000)} -ac 2 -c:a flac",
    "pcm.mkv": f"{_TONE.format(rate=48000)} -ac 2 -c:a pcm_s16le",
    "opus.mkv": f"{_TONE.format(rate=48000)} -ac 2 -c:a libopus -b:a 128k",
    # The tone in the front-left channel only, the other five silent.
    "ac3_51.mkv": f"{_TONE.format(rate=48000)} -af pan=5.1|FL=c0 -c:a ac3 -b:a 384k",
    # Resampled to 48 kHz, at a ratio (160/294) where every cut must resample in one phase.
    "flac88.mkv": f"{_TONE.format(rate=88200)} -ac 2 -c:a flac",
    # MP4: sample-exact timestamps; AAC with its priming packet at pts -1024.
    "pcm.mp4": f"{_TONE.format(rate=48000)} -ac 2 -c:a pcm_s16le",
    "aac.mp4": f"{_TONE.format(rate=44100)} -ac 2 -c:a aac -b:a 128k",
    # MPEG-TS: 90 kHz timestamps, ADTS AAC, a start time that is not 0.
    "aac.ts": f"{_TONE.format(rate=48000)} -ac 2 -c:a aac -b:a 128k",
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, ffmpeg: str) -> Path:
    return make_clips(tmp_path_factory.mktemp("audio"), ffmpeg, CLIPS, SECONDS, timeout=60)


def _timeline() -> Timeline:
    return fixed_grid(SECONDS, SEGMENT_SECONDS)


def cut_all(
    path: Path, timeline: Timeline, *, encode: AacEncoding | None, stream_index: int = 0
) -> list[bytes]:
    """Every segment of the rendition, cut in a shuffled order (each cut knows nothing else)."""
    order = list(range(len(timeline)))
    random.Random(len(timeline)).shuffle(order)
    out: dict[int, bytes] = {}
    for k in order:
        s = timeline[k]
        out[k] = cut_audio_ts(
            path,
            stream_index,
            s.start,
            s.start + s.duration,
            encode=encode,
            is_last=k == len(timeline) - 1,
        )
    return [out[k] for k in range(len(timeline))]


@dataclass(frozen=True)
class Pcm:
    """Decoded audio: `start` is the output sample index (source time x rate) of left[0]."""

    start: int
    left: array.array[float]
    right: array.array[float]
    frames: tuple[tuple[int, int], ...]  # (start, samples) of every decoded frame

    @property
    def end(self) -> int:
        return self.start + len(self.left)

    def at(self, n: int) -> float:
        return self.left[n - self.start]


def decode_ts(data: bytes, rate: int) -> Pcm:
    """Decode MPEG-TS audio as a client does: one decoder across all of `data`."""
    left: array.array[float] = array.array("f")
    right: array.array[float] = array.array("f")
    frames: list[tuple[int, int]] = []
    with av.open(io.BytesIO(data), "r", format="mpegts") as container:
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            assert frame.pts is not None and frame.time_base is not None
            start = round((frame.pts * frame.time_base - TS_OFFSET) * rate)
            assert frame.format.name == "fltp" and frame.sample_rate == rate
            left.frombytes(bytes(frame.planes[0])[: frame.samples * 4])
            right.frombytes(bytes(frame.planes[1])[: frame.samples * 4])
            frames.append((start, frame.samples))
    assert frames, "nothing decoded"
    return Pcm(frames[0][0], left, right, tuple(frames))


def assert_contiguous(frames: tuple[tuple[int, int], ...]) -> None:
    """Each frame starts where the one before ends, to the sample: no gap, no overlap."""
    for (start, samples), (following, _) in itertools.pairwise(frames):
        assert following == start + samples, f"frame at {start}+{samples}, next at {following}"


def ideal(n: int, rate: int, amplitude: float = _STEREO_AMPLITUDE, shift: int = 0) -> float:
    return amplitude * math.sin(2 * math.pi * HZ * (n - shift) / rate)


def _boundaries(timeline: Timeline, rate: int) -> list[int]:
    """Output samples where segments meet: segment k's first sample for k >= 1."""
    return [encode_window(s.start, s.start, rate, False).first_sample for s in timeline.segments][
        1:
    ]


def window_errors(error: dict[int, float], centres: list[int]) -> list[float]:
    """Max |error| within one AAC frame either side of each centre."""
    half = AAC_FRAME_SAMPLES
    return [max(abs(error[n]) for n in range(c - half, c + half) if n in error) for c in centres]


def _mid_points(boundaries: list[int], first: int) -> list[int]:
    edges = [first, *boundaries]
    return [(a + b) // 2 for a, b in itertools.pairwise(edges)]


# --- COPY -------------------------------------------------------------------------------------


def source_packets(path: Path, stream_index: int = 0) -> list[tuple[Fraction, bytes]]:
    """(pts in seconds, payload) of every packet of the stream, in file order."""
    with av.open(str(path)) as container:
        stream = container.streams[stream_index]
        assert stream.time_base is not None
        return [
            (p.pts * stream.time_base, _raw_aac(bytes(p)))
            for p in container.demux(stream)
            if p.pts is not None and p.size
        ]


def _raw_aac(data: bytes) -> bytes:
    """An AAC frame without its ADTS header, if it has one (MPEG-TS carries AAC as ADTS)."""
    if len(data) > 7 and data[0] == 0xFF and data[1] & 0xF0 == 0xF0:
        return data[7 if data[1] & 1 else 9 :]
    return data


def ts_packets(segment: bytes) -> list[tuple[Fraction, bytes]]:
    with av.open(io.BytesIO(segment), "r", format="mpegts") as container:
        stream = container.streams.audio[0]
        assert stream.time_base is not None
        return [
            (p.pts * stream.time_base, _raw_aac(bytes(p)))
            for p in container.demux(stream)
            if p.pts is not None and p.size
        ]


@pytest.mark.parametrize("clip", ["aac.mp4", "ac3_51.mkv", "aac.ts"])
def test_copy_segments_tile_the_source_packets(clips: Path, clip: str) -> None:
    """RFC 8216 4.3.4.1 + 3: a COPY rendition's segments, cut apart in any order, hold every
    source packet exactly once (count and bytes), on source time + TS_OFFSET, and their
    timestamps run on across boundaries; each segment is one program, PAT/PMT once."""
    path = clips / clip
    timeline = _timeline()
    if clip == "aac.ts":  # the timeline starts at the container's start time (1.4 s here)
        with av.open(str(path)) as container:
            origin = (container.start_time or 0) / av.time_base
        timeline = fixed_grid(SECONDS, SEGMENT_SECONDS, origin=origin)
    segments = cut_all(path, timeline, encode=None)
    cut = [ts_packets(s) for s in segments]
    source = source_packets(path)
    joined = [packet for segment in cut for packet in segment]
    assert len(joined) == len(source)
    assert [data for _, data in joined] == [data for _, data in source]
    for (t_out, _), (t_src, _) in zip(joined, source, strict=True):
        assert abs(t_out - (t_src + TS_OFFSET)) <= Fraction(1, 90_000)
    for k, packets in enumerate(cut[1:], 1):  # the window of each segment is its own time
        s = timeline[k]
        assert packets and packets[0][0] - TS_OFFSET >= Fraction(s.start) - Fraction(1, 10**6)
    for segment in segments:
        ts = tsparse.parse_packets(segment)
        assert len(tsparse.sections(ts, tsparse.PAT_PID)) == 1
        pmt_pid = next(iter(tsparse.parse_pat(tsparse.sections(ts, 0)[0]).values()))
        assert len(tsparse.sections(ts, pmt_pid)) == 1


def test_copy_boundary_on_a_packet_puts_it_in_the_later_segment_once(clips: Path) -> None:
    """Boundaries that fall exactly on packet timestamps (video keyframes and audio packets
    often share a millisecond in Matroska): [start, end) takes the packet at `end` into the
    next segment only, even though `start + duration` is a float sum that misses it by ulps."""
    path = clips / "ac3_51.mkv"
    source = source_packets(path)
    at = [float(source[i][0]) for i in (30, 61, 95)]
    starts = [0.0, *at]
    segments = []
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else SECONDS
        duration = end - start
        segments.append(Segment(k, start, duration))
    timeline = Timeline(tuple(segments))
    cut = [ts_packets(s) for s in cut_all(path, timeline, encode=None)]
    assert [len(c) for c in cut][:3] == [30, 31, 34]
    assert [data for segment in cut for _, data in segment] == [data for _, data in source]


def test_video_timeline_of_an_interleaved_file(tmp_path: Path, ffmpeg: str) -> None:
    """A real remux: H.264 + AAC + 5.1 AC-3 in Matroska, segments on the video's keyframes
    (the timeline the session builds). COPY of each audio track tiles its packets; the stereo
    AAC made from the AC-3 abuts to the sample and spans the video's duration."""
    path = generate_clip(
        tmp_path / "multi.mkv", "multi_track_mkv", ffmpeg=ffmpeg, seconds=6, width=64, height=36
    )
    info = probe(path)
    assert info.video_time_base is not None and info.video_end_pts is not None
    timeline = keyframe_timeline(info.keyframe_pts, info.video_time_base, info.video_end_pts, 2.0)
    assert len(timeline) >= 3
    for track in info.audio:
        segments = cut_all(path, timeline, encode=None, stream_index=track.index)
        joined = [packet for s in segments for packet in ts_packets(s)]
        assert [d for _, d in joined] == [d for _, d in source_packets(path, track.index)]
    ac3 = next(t for t in info.audio if t.codec == "ac3")
    pcm = decode_ts(
        b"".join(cut_all(path, timeline, encode=AacEncoding(), stream_index=ac3.index)), 48000
    )
    assert_contiguous(pcm.frames)
    first = encode_window(timeline[0].start, timeline[0].start, 48000, False)
    assert pcm.start == first.first_sample
    assert pcm.end - pcm.start >= timeline.duration * 48000 - AAC_FRAME_SAMPLES / 2


def test_copy_packets_interface_matches_the_ts_cut(clips: Path) -> None:
    """`audio_packets` hands the fMP4 writer the packets the TS cut muxes, on source time."""
    path = clips / "ac3_51.mkv"
    timeline = _timeline()
    s = timeline[2]
    got = audio_packets(path, 0, s.start, s.start + s.duration, encode=None, is_last=False)
    ts = ts_packets(
        cut_audio_ts(path, 0, s.start, s.start + s.duration, encode=None, is_last=False)
    )
    assert got.codec == "ac3" and got.channels == 6 and got.time_base == Fraction(1, 1000)
    assert [p.data for p in got.packets] == [data for _, data in ts]
    assert [Fraction(p.pts) * got.time_base + TS_OFFSET for p in got.packets] == [t for t, _ in ts]
    following = audio_packets(
        path, 0, timeline[3].start, timeline[3].start + 1, encode=None, is_last=False
    )
    assert got.end_pts == following.packets[0].pts


# --- ENCODE: timing ---------------------------------------------------------------------------


@pytest.mark.parametrize("clip", ["ac3_51.mkv", "pcm.mp4", "aac.mp4"])
def test_encoded_segments_abut_to_the_sample(clips: Path, clip: str) -> None:
    """Segments decoded alone: k+1's first sample is k's last + 1 (first pts of k+1 == last
    pts + duration of k), each holds exactly its frames of the grid; decoded as one stream:
    contiguous, and the total is the timeline's span at the output rate (within the half frame
    each end may move to the AAC grid)."""
    path = clips / clip
    timeline = _timeline()
    rate = output_rate(44_100 if clip == "aac.mp4" else 48_000)
    segments = cut_all(path, timeline, encode=AacEncoding(rate))
    alone = [decode_ts(s, rate) for s in segments]
    for k, pcm in enumerate(alone):
        assert_contiguous(pcm.frames)
        s = timeline[k]
        window = encode_window(s.start, s.start + s.duration, rate, k == len(timeline) - 1)
        assert pcm.start == window.first_sample
        if window.end_sample is not None:
            assert pcm.end == window.end_sample
    for before, after in itertools.pairwise(alone):
        assert after.start == before.end
    whole = decode_ts(b"".join(segments), rate)
    assert_contiguous(whole.frames)
    span = (timeline.duration) * rate
    assert abs(whole.end - whole.start - span) <= AAC_FRAME_SAMPLES  # last frame padded
    assert whole.end - whole.start >= span - AAC_FRAME_SAMPLES / 2


def test_encoded_packets_interface(clips: Path) -> None:
    """The packet-level step: raw AAC frames on the output grid (1024 ticks of 1/rate each),
    the same bytes the TS cut muxes, one AudioSpecificConfig for every segment, and `end_pts`
    = the next segment's first pts (what an fMP4 writer needs for tfdt and durations)."""
    path = clips / "ac3_51.mkv"
    timeline = _timeline()
    cuts = []
    for k in (1, 2):
        s = timeline[k]
        cuts.append(
            audio_packets(
                path, 0, s.start, s.start + s.duration, encode=AacEncoding(), is_last=False
            )
        )
    first, second = cuts
    assert (first.codec, first.sample_rate, first.channels) == ("aac", 48000, 2)
    assert first.time_base == Fraction(1, 48000)
    assert first.extradata == second.extradata
    assert first.extradata[:2] == bytes.fromhex("1190")  # AudioSpecificConfig: LC, 48 kHz, 2 ch
    s = timeline[1]
    assert first.packets[0].pts == encode_window(s.start, s.start, 48000, False).first_sample
    for a, b in zip(first.packets, first.packets[1:], strict=False):
        assert (b.pts - a.pts, a.duration) == (AAC_FRAME_SAMPLES, AAC_FRAME_SAMPLES)
    assert first.end_pts == second.packets[0].pts
    ts = ts_packets(
        cut_audio_ts(path, 0, s.start, s.start + s.duration, encode=AacEncoding(), is_last=False)
    )
    assert [p.data for p in first.packets] == [data for _, data in ts]


# --- ENCODE: seamless boundaries --------------------------------------------------------------


@dataclass(frozen=True)
class Seam:
    boundary: list[float]  # max |error| around each boundary
    mid: list[float]  # max |error| around each segment's middle
    dropouts: int  # 256-sample blocks whose level fell below half the tone's


def seam_errors(
    pcm: Pcm, reference: dict[int, float], timeline: Timeline, rate: int, amplitude: float
) -> Seam:
    """Errors against `reference` near the boundaries and mid-segment; the first frame of the
    stream is left out (a decoder's first frame has no overlap partner, in any AAC stream)."""
    skip = pcm.start + AAC_FRAME_SAMPLES
    error = {n: pcm.at(n) - r for n, r in reference.items() if skip <= n < pcm.end}
    boundaries = _boundaries(timeline, rate)
    mids = _mid_points(boundaries, pcm.start)[1:]  # segment 0's middle is near the start
    block = 256
    dropouts = 0
    for b0 in range(skip, pcm.end - block - rate // 10, block):
        rms = math.sqrt(sum(pcm.at(n) ** 2 for n in range(b0, b0 + block)) / block)
        dropouts += rms < amplitude / math.sqrt(2) / 2
    return Seam(window_errors(error, boundaries), window_errors(error, mids), dropouts)


TONE_CASES = [
    # clip, output rate, the tone's amplitude in the left channel, max shift from its true
    # place (samples), error floor (fraction of the amplitude) the whole stream must beat.
    ("flac.mkv", 48000, _STEREO_AMPLITUDE, 0, 1 / 100),
    ("pcm.mkv", 48000, _STEREO_AMPLITUDE, 0, 1 / 100),
    ("pcm.mp4", 48000, _STEREO_AMPLITUDE, 0, 1 / 100),
    ("flac88.mkv", 48000, _STEREO_AMPLITUDE, 0, 1 / 100),
    # Lossy sources whose decoders overlap and pre-roll too; Matroska stores their priming
    # packet's time to the millisecond, so the whole stream may sit up to 24 samples off.
    ("ac3_51.mkv", 48000, 0.125, 24, 1 / 30),
    ("opus.mkv", 48000, _STEREO_AMPLITUDE, 24, 1 / 30),
]


def best_shift(pcm: Pcm, rate: int, amplitude: float, limit: int) -> int:
    """The one offset (samples) that puts the whole decoded tone on the ideal sine."""
    probe = range(pcm.start + rate, pcm.start + rate + 600)
    return min(
        range(-limit, limit + 1),
        key=lambda d: max(abs(pcm.at(n) - ideal(n, rate, amplitude, d)) for n in probe),
    )


@pytest.mark.parametrize(
    ("clip", "rate", "amplitude", "limit", "floor"), TONE_CASES, ids=[c[0] for c in TONE_CASES]
)
def test_encoded_tone_has_no_click_and_no_gap(
    clips: Path, clip: str, rate: int, amplitude: float, limit: int, floor: float
) -> None:
    """A pure 997 Hz tone through ENCODE of five segments cut apart (shuffled), decoded as one
    stream, against the ideal sine: the error around every boundary is no worse than
    mid-segment (a click, a gap or an overlap is a phase jump: errors of the tone's own size),
    no 256-sample block drops out, and the whole stream is as clean as one encode would be.
    Figures (flac.mkv, amplitude 0.088): 1.8e-4..2.9e-4 around the boundaries, 2.3e-4..3.5e-4
    mid-segment (-50 dB). Without the look-ahead (flushing at the end): 0.09..0.11 and
    dropouts; without the pre-roll: 0.035..0.065."""
    timeline = _timeline()
    pcm = decode_ts(b"".join(cut_all(clips / clip, timeline, encode=AacEncoding(rate))), rate)
    assert_contiguous(pcm.frames)
    shift = best_shift(pcm, rate, amplitude, limit)
    reference = {n: ideal(n, rate, amplitude, shift) for n in range(pcm.start, pcm.end)}
    seam = seam_errors(pcm, reference, timeline, rate, amplitude)
    message = f"shift {shift}: boundary {seam.boundary} mid {seam.mid}"
    assert max(seam.boundary) <= 1.5 * max(seam.mid), message
    assert max(seam.boundary + seam.mid) < floor * amplitude, message
    assert seam.dropouts == 0


def test_ffmpeg_plays_the_audio_playlist_without_a_warning(
    clips: Path, tmp_path: Path, ffmpeg: str
) -> None:
    """A libavformat HLS client reads an ENCODE rendition's media playlist (RFC 8216 4.3.4.1:
    an audio-only playlist of its own) segment after segment: no timestamp or decoder warning,
    and exactly the timeline's frames of the AAC grid come out."""
    timeline = _timeline()
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{timeline.target_duration}"]
    lines.append("#EXT-X-PLAYLIST-TYPE:VOD")
    for k, segment in enumerate(cut_all(clips / "ac3_51.mkv", timeline, encode=AacEncoding())):
        (tmp_path / f"a{k}.ts").write_bytes(segment)
        lines += [f"#EXTINF:{timeline[k].duration:.3f},", f"a{k}.ts"]
    lines.append("#EXT-X-ENDLIST")
    (tmp_path / "audio.m3u8").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.f32"
    playlist = str(tmp_path / "audio.m3u8")
    run = subprocess.run(
        [ffmpeg, "-nostdin", "-v", "warning", "-i", playlist, "-f", "f32le", "-y", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and run.stderr == "", run.stderr
    first = encode_window(0.0, 0.0, 48000, False).first_frame
    last = timeline[len(timeline) - 1]
    end = math.ceil(SECONDS * 48000 / AAC_FRAME_SAMPLES)  # the audio's end, in whole frames
    assert encode_window(last.start, last.start, 48000, False).first_frame < end
    assert out.stat().st_size == (end - first) * AAC_FRAME_SAMPLES * 2 * 4


def test_downmix_keeps_front_left_in_left_at_its_level(clips: Path) -> None:
    """Apple (audio; 9.7): the stereo AAC rendition of a 5.1 track. A tone in FL only lands in L at
    FL's level (libswresample's float matrix, as `ffmpeg -ac 2`: no normalisation) and not
    in R."""
    s = _timeline()[2]
    pcm = decode_ts(
        cut_audio_ts(
            clips / "ac3_51.mkv",
            0,
            s.start,
            s.start + s.duration,
            encode=AacEncoding(),
            is_last=False,
        ),
        48000,
    )
    body = range(AAC_FRAME_SAMPLES, len(pcm.left))
    left = math.sqrt(statistics.fmean(pcm.left[i] ** 2 for i in body))
    right = math.sqrt(statistics.fmean(pcm.right[i] ** 2 for i in body))
    source = 0.125 / math.sqrt(2)  # RMS of the FL tone
    assert abs(20 * math.log10(left / source)) < 1.0
    assert right < left / 1000  # below -60 dB


# --- robustness -------------------------------------------------------------------------------


def _corrupt(path: Path, out: Path, from_seconds: float, to_seconds: float) -> int:
    """A copy of `path` whose packets in [from, to) have their first bytes (the sync word)
    overwritten; returns how many."""
    data = bytearray(path.read_bytes())
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.time_base is not None
        for packet in container.demux(stream):
            if packet.pts is None or not from_seconds <= packet.pts * stream.time_base < to_seconds:
                continue
            payload = bytes(packet)
            at = data.find(payload)
            assert at > 0
            data[at : at + 4] = b"\0\0\0\0"
            count += 1
    out.write_bytes(bytes(data))
    return count


def test_corrupt_packets_become_silence_not_an_error(clips: Path, tmp_path: Path) -> None:
    """Packets the decoder rejects are skipped: the segment is still made, contiguous and of
    its full length, silent where the packets were, the tone in its place after them."""
    path = tmp_path / "corrupt.mkv"
    assert _corrupt(clips / "ac3_51.mkv", path, 2.0, 2.2) >= 5
    s = _timeline()[2]  # 1.8 .. 2.7 s
    segment = cut_audio_ts(
        path, 0, s.start, s.start + s.duration, encode=AacEncoding(), is_last=False
    )
    pcm = decode_ts(segment, 48000)
    window = encode_window(s.start, s.start + s.duration, 48000, False)
    assert_contiguous(pcm.frames)
    assert (pcm.start, pcm.end) == (window.first_sample, window.end_sample)
    hole = range(round(2.05 * 48000), round(2.15 * 48000))
    assert max(abs(pcm.at(n)) for n in hole) < 0.01
    whole = decode_ts(
        cut_audio_ts(
            clips / "ac3_51.mkv",
            0,
            s.start,
            s.start + s.duration,
            encode=AacEncoding(),
            is_last=False,
        ),
        48000,
    )
    after = range(round(2.3 * 48000), round(2.6 * 48000))
    assert max(abs(pcm.at(n) - whole.at(n)) for n in after) < 0.01  # back in its place
    assert ts_packets(
        cut_audio_ts(path, 0, s.start, s.start + s.duration, encode=None, is_last=False)
    )


def test_unreadable_file_or_missing_stream_raises_cut_error(clips: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.mkv"
    junk.write_bytes(bytes(range(256)) * 64)
    for path, index in [
        (tmp_path / "missing.mkv", 0),
        (junk, 0),
        (clips / "flac.mkv", 1),
        (clips / "flac.mkv", -1),
    ]:
        for encode in (None, AacEncoding()):
            with pytest.raises(CutError):
                cut_audio_ts(path, index, 0.0, 1.0, encode=encode, is_last=False)
            with pytest.raises(CutError):
                audio_packets(path, index, 0.0, 1.0, encode=encode, is_last=False)


def test_last_segment_runs_to_the_end_of_the_audio(clips: Path) -> None:
    """A timeline that ends before the audio (video shorter): the last segment keeps going."""
    rate = 48000
    pcm = decode_ts(
        cut_audio_ts(clips / "pcm.mp4", 0, 3.0, 3.5, encode=AacEncoding(), is_last=True), rate
    )
    assert pcm.end >= SECONDS * rate
    copy = ts_packets(cut_audio_ts(clips / "aac.mp4", 0, 3.0, 3.5, encode=None, is_last=True))
    assert copy[-1][1] == source_packets(clips / "aac.mp4")[-1][1]


# --- pure timing ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    cuts=st.lists(st.floats(0.02, 30.0), min_size=1, max_size=20),
    origin=st.floats(-5.0, 5000.0),
    rate=st.sampled_from([44_100, 48_000]),
)
def test_encode_windows_tile_the_frame_grid(cuts: list[float], origin: float, rate: int) -> None:
    """Segment starts as a timeline makes them (origin + float sums, end = start + duration)
    land on frames that tile: k's end frame is k+1's first, whatever the float noise."""
    starts = [origin]
    for length in cuts:
        starts.append(starts[-1] + length)
    windows = [encode_window(a, a + (b - a), rate, False) for a, b in itertools.pairwise(starts)]
    for w, following in itertools.pairwise(windows):
        assert w.end_frame == following.first_frame


@settings(max_examples=300, deadline=None)
@given(
    rate=st.sampled_from([44_100, 48_000]),
    size=st.sampled_from([512, 960, 1024, 1152, 1536, 4096]),
    first=st.integers(-2000, 2000),  # true sample of the stream's first packet
    skip=st.integers(0, 400),  # priming the decoder drops from the first frame
    count=st.integers(2, 60),
    ms=st.booleans(),
)
def test_frame_positions_are_a_function_of_the_frame(
    rate: int, size: int, first: int, skip: int, count: int, ms: bool
) -> None:
    """Whichever frame a decode starts from, frames land at one constant offset from their true
    place (within Matroska's rounding: half a millisecond), contiguous; a first frame the
    decoder shortened by its priming ends where the next one starts."""
    time_base = Fraction(1, 1000) if ms else Fraction(1, rate)

    def stamp(sample: int) -> int:
        return round(Fraction(sample, rate) / time_base)  # the pts the muxer stored

    def position(sample: int, samples: int) -> int:
        return frame_position(
            stamp(sample),
            samples,
            rate=rate,
            time_base=time_base,
            origin_pts=stamp(first),
            grid=size,
        )

    offset = position(first, size) - first
    assert abs(offset) <= (rate // 2000 + 1 if ms else 0)
    for k in range(count):
        assert position(first + k * size, size) == first + k * size + offset
    if skip < size:
        shortened = position(first + skip, size - skip)
        assert shortened + size - skip == first + size + offset


def test_output_rate_keeps_44_1_and_48_khz() -> None:
    assert [output_rate(r) for r in (44_100, 48_000, 96_000, 32_000, 22_050)] == [
        44_100,
        48_000,
        48_000,
        48_000,
        48_000,
    ]
