"""Trick play: I-frame playlists and their resources, scrub thumbnails and their WebVTT track.

Rules: RFC 8216 4.3.3.6 (EXT-X-I-FRAMES-ONLY: each segment one I-frame, EXTINF the time to
the next one, version 4+, resources that begin with their Media Initialization Section, for
MPEG-TS a PAT and a PMT, RFC 8216 3.2), 4.3.4.3 (EXT-X-I-FRAME-STREAM-INF: BANDWIDTH and URI
required, CODECS, RESOLUTION), 4.3.4.2 (BANDWIDTH: the peak segment bit rate, never below it;
draft-pantos-hls-rfc8216bis 4.1 defines that peak over runs of 0.5-1.5 target durations);
Apple HLS Authoring Specification 6.1/6.2 (I-frame playlists MUST be provided), 6.8 (dense
I-frames SHOULD) and 7.2 (continuity counters). Real files, real muxers and decoders, and
ffmpeg's own thumbnail as the reference picture.
"""

from __future__ import annotations

import io
import itertools
import math
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import m3u8
import pytest
import webvtt
from hypothesis import given
from hypothesis import strategies as st

from hlstrio.media import MediaInfo, probe
from hlstrio.streaming import Variant, keyframe_timeline, master_playlist
from hlstrio.streaming._cache import SegmentCache
from hlstrio.streaming._errors import CutError
from hlstrio.streaming._fmp4 import init_segment
from hlstrio.streaming._mpegts import MUX_OPTIONS, TS_OFFSET, spec_clean
from hlstrio.streaming._trickplay import (
    IFRAME_PLAYLIST_URI,
    MIN_IFRAME_SPACING,
    IFrameList,
    KeyframeReader,
    cut_iframe_fmp4,
    cut_iframe_ts,
    iframe_list,
    iframe_playlist,
    iframe_stream_inf,
    iframe_ts_bytes,
    iframes_for,
    measure_keyframes,
    parse_iframe_name,
    parse_thumbnail_name,
    peak_bits_per_second,
    thumbnail_count,
    thumbnail_jpeg,
    thumbnail_key,
    thumbnail_keyframe,
    thumbnail_size,
    thumbnails_vtt,
)
from tests import mp4parse, tsparse

MS = Fraction(1, 1000)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sources(media_dir: Path, ffmpeg: str, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """H.264 in MP4 (B-frames, edit list), HEVC in Matroska (x265: open GOPs, CRA keyframes),
    and the H.264 copied into MPEG-TS (seeks by timestamp search, Annex B, no sample table)."""
    ts = tmp_path_factory.mktemp("trickplay") / "h264.ts"
    subprocess.run(
        [
            *(ffmpeg, "-nostdin", "-loglevel", "error", "-y"),
            *("-i", str(media_dir / "h264_aac.mp4"), "-map", "0:v", "-c", "copy"),
            *("-f", "mpegts", str(ts)),
        ],
        check=True,
    )
    return [media_dir / "h264_aac.mp4", media_dir / "hevc_opus.mkv", ts]


def _video(info: MediaInfo) -> int:
    assert info.video is not None
    return info.video.index


def _iframes(path: Path) -> tuple[MediaInfo, IFrameList]:
    info = probe(path)
    return info, iframes_for(info, measure_keyframes(path, _video(info), info.keyframe_pts))


def _decode_frames(data: bytes) -> list[av.VideoFrame]:
    with av.open(io.BytesIO(data), "r") as container:
        return list(container.decode(video=0))


def _picture(frame: av.VideoFrame, fmt: str = "rgb24") -> bytes:
    """The frame's pixels in `fmt`, rows without line padding."""
    converted = frame.reformat(format=fmt)
    plane = converted.planes[0]
    row = converted.width * (3 if fmt == "rgb24" else 1)
    data = bytes(plane)
    return b"".join(
        data[r * plane.line_size : r * plane.line_size + row] for r in range(converted.height)
    )


def _source_frame(path: Path, stream_index: int, pts: int) -> av.VideoFrame:
    """The picture the source shows at `pts`, decoded the ordinary way (whole stream)."""
    with av.open(str(path), "r") as container:
        for frame in container.decode(container.streams[stream_index]):
            if isinstance(frame, av.VideoFrame) and frame.pts == pts:
                return frame
    raise AssertionError(f"no frame at pts {pts}")


# --- the I-frame playlist ---------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 1, 2], ids=["mp4", "mkv", "ts"])
def test_iframe_playlist_is_i_frames_only_and_spans_the_video(
    sources: list[Path], index: int
) -> None:
    """RFC 8216 4.3.3.6: EXT-X-I-FRAMES-ONLY with version >= 4, one entry per keyframe, each
    lasting to the next, so the entries sum to the video, as the media playlist's segments do."""
    path = sources[index]
    info, frames = _iframes(path)
    text = iframe_playlist(frames)
    parsed = m3u8.loads(text)
    assert parsed.is_i_frames_only
    assert parsed.version is not None and parsed.version >= 4
    assert parsed.playlist_type == "vod" and parsed.is_endlist
    assert [s.uri for s in parsed.segments] == [f"iframe-{k}.ts" for k in range(len(frames))]
    assert len(frames) == len(info.keyframe_pts)  # 2 s GOPs: all kept
    assert info.video_time_base is not None and info.video_end_pts is not None
    keyframes = [f.pts for f in frames.frames]
    assert keyframes == sorted(info.keyframe_pts)
    durations = [s.duration for s in parsed.segments]
    ends = [*keyframes[1:], info.video_end_pts]
    for duration, start, end in zip(durations, keyframes, ends, strict=True):
        assert duration == pytest.approx(float((end - start) * info.video_time_base), abs=1e-6)
    timeline = keyframe_timeline(info.keyframe_pts, info.video_time_base, info.video_end_pts, 6.0)
    assert sum(durations) == pytest.approx(timeline.duration, abs=1e-5)
    # RFC 8216 4.3.3.1: every EXTINF, rounded, within the target duration.
    assert parsed.target_duration is not None
    assert all(round(d) <= parsed.target_duration for d in durations)


def test_master_playlist_lists_the_iframe_stream(media_dir: Path) -> None:
    """RFC 8216 4.3.4.3, Apple 6.1/6.2: the master playlist names the I-frame playlist with
    BANDWIDTH, CODECS (the video's only), RESOLUTION and URI, and a client library finds it."""
    path = media_dir / "h264_aac.mp4"
    info, frames = _iframes(path)
    assert info.video is not None and info.video.hls_codec is not None
    variant = Variant(
        bandwidth=900_000,
        average_bandwidth=700_000,
        codecs=(info.video.hls_codec, "mp4a.40.2"),
        width=info.video.width,
        height=info.video.height,
    )
    line = iframe_stream_inf(
        frames, codec=info.video.hls_codec, width=info.video.width, height=info.video.height
    )
    master = m3u8.loads(master_playlist(variant) + line + "\n")
    assert len(master.playlists) == 1 and len(master.iframe_playlists) == 1
    iframe = master.iframe_playlists[0]
    assert iframe.uri == IFRAME_PLAYLIST_URI
    stream = iframe.iframe_stream_info
    assert stream.bandwidth == frames.peak_bandwidth > 0
    assert stream.average_bandwidth == frames.average_bandwidth <= stream.bandwidth
    assert stream.codecs == info.video.hls_codec
    assert stream.resolution == (info.video.width, info.video.height)


@pytest.mark.parametrize("index", [0, 1, 2], ids=["mp4", "mkv", "ts"])
def test_iframe_resources_hold_one_keyframe_each(sources: list[Path], index: int) -> None:
    """RFC 8216 4.3.3.6: each entry is one I-frame, decodable on its own in any order, so each
    resource starts with its Media Initialization Section (PAT, PMT: RFC 8216 3.2) and holds
    the keyframe at the entry's time on the session's clock (source time + TS_OFFSET), and
    nothing else; the picture is the source's keyframe, pixel for pixel."""
    path = sources[index]
    info, frames = _iframes(path)
    video = _video(info)
    assert info.video_time_base is not None
    for frame in reversed(frames.frames):  # any order: last first
        ts = cut_iframe_ts(path, video, frame)
        packets = tsparse.parse_packets(ts)
        assert [p.pid for p in packets[:1]] == [tsparse.PAT_PID]
        pat = tsparse.parse_pat(tsparse.sections(packets, tsparse.PAT_PID)[0])
        (pmt_pid,) = pat.values()
        assert packets[1].pid == pmt_pid
        (video_pid,) = tsparse.parse_pmt(tsparse.sections(packets, pmt_pid)[0])
        assert tsparse.pids(packets) == {tsparse.PAT_PID, pmt_pid, video_pid}
        (pes,) = tsparse.pes_units(packets)[video_pid]
        offset = int(TS_OFFSET / info.video_time_base)
        expected_pts = (frame.pts + offset) * info.video_time_base * tsparse.PTS_HZ
        assert pes.pts == math.floor(expected_pts + Fraction(1, 2))  # av_rescale_q: nearest
        # A PES per resource: the muxer wrote a random access point (13818-1 2.4.3.5).
        first = next(p for p in packets if p.pid == video_pid)
        assert first.adaptation is not None and first.adaptation.random_access
        decoded = _decode_frames(ts)
        assert len(decoded) == 1
        assert decoded[0].key_frame and decoded[0].pict_type == av.video.frame.PictureType.I
        assert decoded[0].pts == pes.pts
        assert _picture(decoded[0]) == _picture(_source_frame(path, video, frame.pts))


def test_iframe_counters_run_on_in_every_order(media_dir: Path) -> None:
    """Apple 7.2 via make_continuous: every video counter cycle is whole, so any I-frame may
    follow any other (trick play skips entries) without a jump on the video PID, and PAT/PMT
    run on from entry K to K+1."""
    path = media_dir / "h264_aac.mp4"
    info, frames = _iframes(path)
    with KeyframeReader(path, _video(info)) as reader:
        cuts = [reader.iframe_ts(f) for f in frames.frames]
    assert tsparse.continuity_errors(cuts) == []
    packets = tsparse.parse_packets(cuts[0])
    (video_pid,) = (pid for pid in tsparse.pids(packets) if tsparse.carries_pes(packets, pid))
    skipping = [cuts[2], cuts[0], cuts[1]]
    assert [e for e in tsparse.continuity_errors(skipping) if e.pid == video_pid] == []


@pytest.mark.parametrize("index", [0, 1, 2], ids=["mp4", "mkv", "ts"])
def test_iframe_bandwidth_is_what_is_served(sources: list[Path], index: int) -> None:
    """RFC 8216 4.3.4.2: BANDWIDTH is the peak segment bit rate and must not be under it; here
    it is computed before any entry exists, from the keyframe sizes, and must agree with the
    resources as cut: never smaller, at most one counter cycle (16 packets) larger."""
    path = sources[index]
    info, frames = _iframes(path)
    with KeyframeReader(path, _video(info)) as reader:
        served = [len(reader.iframe_ts(f)) for f in frames.frames]
    for frame, size in zip(frames.frames, served, strict=True):
        assert size <= frame.resource_bytes <= size + 16 * 188
    durations = [f.duration for f in frames.frames]
    peak = peak_bits_per_second(served, durations, frames.target_duration)
    assert peak <= frames.peak_bandwidth <= peak * 1.1 + 1
    average = sum(served) * 8 / sum(durations)
    assert average <= frames.average_bandwidth <= average * 1.1 + 1
    # Without measurements the GOP sizes bound it from above, never below.
    bound = iframes_for(info)
    assert not bound.exact and bound.peak_bandwidth >= frames.peak_bandwidth


@pytest.mark.parametrize("b_frames", [True, False], ids=["pts+dts", "pts"])
def test_iframe_ts_bytes_is_the_muxers_count(b_frames: bool) -> None:
    """The size formula against PyAV's MPEG-TS muxer and make_continuous, at and around the
    sizes where the PES just fills 1, 2 and 3 counter cycles (Annex B H.264: no parameter
    sets added). The formula assumes the larger PES header (PTS and DTS, 19 bytes) and AUD
    (HEVC's 7 bytes): exact, except a cycle over within those few bytes of an edge."""
    overhead = (19 if b_frames else 14) + 6  # PES header + H.264 AUD, what this muxer writes
    edges = [176 + (16 * m - 1) * 184 for m in (1, 2, 3)]  # PES bytes filling m cycles
    sizes = sorted({150, 151, 152} | {e - d for e in edges for d in (27, 26, 25, 24, 20, 19)})
    for size in sizes:
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="mpegts", options=MUX_OPTIONS) as out:
            stream = out.add_stream("h264", rate=24)
            stream.width, stream.height = 320, 180
            stream.time_base = Fraction(1, 90_000)
            body = bytes((n * 7 + 1) % 255 + 1 for n in range(size - 5))  # no 00 00 0x
            packet = av.Packet(b"\x00\x00\x00\x01\x65" + body)
            packet.dts = 126_000
            packet.pts = 126_000 + (3750 if b_frames else 0)
            packet.is_keyframe = True
            packet.stream = stream
            out.mux(packet)
        served = len(spec_clean(buffer.getvalue(), 0))
        estimate = iframe_ts_bytes(size, 0)
        in_band = any(size + overhead <= e < size + 26 for e in edges)
        assert estimate == served + (16 * 188 if in_band else 0), size


@pytest.mark.parametrize("index", [0, 1, 2], ids=["mp4", "mkv", "ts"])
def test_fmp4_iframes_are_one_sync_sample_of_the_video_track(
    sources: list[Path], index: int
) -> None:
    """fMP4 sessions (HEVC MUST be fMP4, Apple 1.5): the I-frame playlist maps the video
    rendition's init segment (EXT-X-MAP, version >= 5: RFC 8216 4.3.2.5) and each entry is
    moof + mdat of one sync sample, presenting at the keyframe's time on the rendition's
    clock, lasting to the next entry, sequence number K + 1; init + entry decodes to exactly
    the source's keyframe; BANDWIDTH's sizes are never under what is served."""
    path = sources[index]
    info = probe(path)
    video = _video(info)
    assert info.video_time_base is not None
    frames = iframes_for(info, measure_keyframes(path, video, info.keyframe_pts), "fmp4")
    parsed = m3u8.loads(iframe_playlist(frames, extension="m4s", init_uri="init.mp4"))
    assert parsed.is_i_frames_only and parsed.version is not None and parsed.version >= 5
    assert parsed.segment_map is not None and parsed.segment_map[0].uri == "init.mp4"
    assert [s.uri for s in parsed.segments] == [f"iframe-{k}.m4s" for k in range(len(frames))]
    init = init_segment(path, video)
    parsed_init = mp4parse.parse_init(init)
    scale = parsed_init.timescale
    for frame in reversed(frames.frames):
        entry = cut_iframe_fmp4(path, video, frame, init)
        assert len(entry) <= frame.resource_bytes
        fragment = mp4parse.parse_fragment(entry, parsed_init)
        assert fragment.sequence_number == frame.index + 1
        (sample,) = fragment.samples
        assert sample.is_sync
        offset_seconds = frame.pts * info.video_time_base + TS_OFFSET
        (presents,) = fragment.presentation_times()
        assert abs(Fraction(presents, scale) - offset_seconds) <= Fraction(1, scale)
        assert abs(Fraction(sample.duration, scale) - Fraction(frame.duration)) <= Fraction(
            2, scale
        )
        decoded = _decode_frames(init + entry)
        assert len(decoded) == 1 and decoded[0].key_frame
        assert _picture(decoded[0]) == _picture(_source_frame(path, video, frame.pts))


# --- the I-frame list, pure -------------------------------------------------------------------


def test_keyframes_closer_than_the_spacing_are_not_listed() -> None:
    """Apple 6.8 wants ~1 I-frame a second: a copy cannot add keyframes, but all-intra or
    scene-cut keyframes must not crowd the playlist. The durations still sum to the video."""
    pts = [0, 100, 1000, 1200, 1499, 1500, 3000]  # ms
    frames = iframe_list(pts, MS, 4000, [1000] * len(pts))
    assert [f.pts for f in frames.frames] == [0, 1000, 1500, 3000]
    assert [f.index for f in frames.frames] == [0, 1, 2, 3]
    assert [f.duration for f in frames.frames] == [1.0, 0.5, 1.5, 1.0]
    assert frames.duration == 4.0
    assert frames.target_duration == 2
    every = iframe_list(pts, MS, 4000, [1000] * len(pts), min_spacing_seconds=0)
    assert len(every) == len(pts)


@given(
    gaps=st.lists(st.integers(1, 12_000), min_size=1, max_size=60),
    tail=st.integers(1, 12_000),
    spacing=st.sampled_from([0.0, MIN_IFRAME_SPACING, 2.0]),
)
def test_iframe_list_properties(gaps: list[int], tail: int, spacing: float) -> None:
    """Whatever the keyframes: entries in order from the first keyframe, apart by at least the
    spacing, lasting to the next, summing to the video; BANDWIDTH >= AVERAGE-BANDWIDTH."""
    pts = [0]
    for gap in gaps:
        pts.append(pts[-1] + gap)
    end = pts[-1] + tail
    frames = iframe_list(pts, MS, end, [5000 + p % 977 for p in pts], min_spacing_seconds=spacing)
    listed = [f.pts for f in frames.frames]
    assert listed[0] == 0 and listed == sorted(set(listed))
    assert all((b - a) * MS >= Fraction(spacing) for a, b in itertools.pairwise(listed))
    assert [f.end_pts for f in frames.frames] == [*listed[1:], end]
    assert sum(f.end_pts - f.pts for f in frames.frames) == end
    assert frames.average_bandwidth <= frames.peak_bandwidth
    assert all(round(f.duration) <= frames.target_duration for f in frames.frames)


def test_peak_bit_rate_is_over_runs_of_half_to_one_and_a_half_targets() -> None:
    """rfc8216bis 4.1: a short last entry does not alone set the peak; a dense run does."""
    # Nine 2 s entries of 10 kB, then a keyframe 0.1 s before the end.
    sizes, durations = [10_000] * 9 + [10_000], [2.0] * 9 + [0.1]
    assert peak_bits_per_second(sizes, durations, 2) == pytest.approx(20_000 * 8 / 2.1)
    # One heavy entry in the middle sets it.
    sizes[4] = 50_000
    assert peak_bits_per_second(sizes, durations, 2) == pytest.approx(50_000 * 8 / 2)


# --- thumbnails -------------------------------------------------------------------------------


def _jpeg_dimensions(data: bytes) -> tuple[int, int]:
    """(width, height) from a baseline JPEG's SOF0 segment, after checking SOI/EOI (T.81 B.2)."""
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    pos = 2
    while pos < len(data):
        assert data[pos] == 0xFF
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xC0:  # SOF0: baseline DCT
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            return width, height
        pos += 2 + length
    raise AssertionError("no SOF0 segment")


def _ffmpeg_thumbnail(ffmpeg: str, path: Path, seconds: float, width: int, out: Path) -> bytes:
    """ffmpeg's own picture at `seconds`. -ss after -i: decoded from the start and exact for
    every container (before -i, an MPEG-TS input seek can overshoot to the next keyframe, so
    the frame before a keyframe came out as the keyframe). Tiny files: cheap."""
    subprocess.run(
        [
            *(ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-i", str(path)),
            *("-ss", f"{seconds:.6f}", "-frames:v", "1", "-vf", f"scale={width}:-2", str(out)),
        ],
        check=True,
    )
    return out.read_bytes()


def _rgb(jpeg: bytes) -> tuple[int, int, bytes]:
    (frame,) = _decode_frames(jpeg)
    return frame.width, frame.height, _picture(frame)


def _difference(a: bytes, b: bytes) -> float:
    """Mean absolute difference of two equally sized RGB pictures, in 8-bit levels."""
    assert len(a) == len(b)
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


@pytest.mark.parametrize("index", [0, 1, 2], ids=["mp4", "mkv", "ts"])
def test_thumbnail_is_the_keyframe_as_ffmpeg_shows_it(
    sources: list[Path], index: int, ffmpeg: str, tmp_path: Path
) -> None:
    """A JPEG of the requested width (height from the aspect ratio, even), whose picture is
    ffmpeg's at that keyframe's time: close to it (JPEG noise, ~3 levels) and clearly farther
    from ffmpeg's picture one frame before or after (testsrc2 moves every frame)."""
    path = sources[index]
    info = probe(path)
    assert info.video_time_base is not None and info.video is not None
    keyframe = sorted(info.keyframe_pts)[1]
    jpeg = thumbnail_jpeg(path, _video(info), keyframe, 160)
    assert _jpeg_dimensions(jpeg) == (160, 90)
    width, height, ours = _rgb(jpeg)
    assert (width, height) == (160, 90)
    seconds = float(keyframe * info.video_time_base) - info.start_time
    frame = 1 / info.video.fps
    near = {}
    for label, at in (("same", seconds), ("before", seconds - frame), ("after", seconds + frame)):
        theirs = _ffmpeg_thumbnail(ffmpeg, path, at, 160, tmp_path / f"{label}.jpg")
        near[label] = _difference(ours, _rgb(theirs)[2])
    assert near["same"] < 4.5, near
    assert min(near["before"], near["after"]) > 1.8 * near["same"], near


def test_thumbnail_turns_rotated_video_as_ffmpeg_does(
    media_dir: Path, ffmpeg: str, tmp_path: Path
) -> None:
    """Phone videos: the display matrix says how to turn the picture; the thumbnail is shown
    as the player shows the video (portrait here), the way ffmpeg's CLI autorotates."""
    for degrees in (90, -90):
        rotated = tmp_path / f"rotated{degrees}.mp4"
        subprocess.run(
            [
                *(ffmpeg, "-nostdin", "-loglevel", "error", "-y"),
                *("-display_rotation", str(degrees), "-i", str(media_dir / "h264_aac.mp4")),
                *("-c", "copy", str(rotated)),
            ],
            check=True,
        )
        info = probe(rotated)
        assert info.video_time_base is not None
        keyframe = sorted(info.keyframe_pts)[1]
        width, height, ours = _rgb(thumbnail_jpeg(rotated, _video(info), keyframe, 90))
        assert (width, height) == (90, 160)
        seconds = float(keyframe * info.video_time_base) - info.start_time
        theirs = _rgb(_ffmpeg_thumbnail(ffmpeg, rotated, seconds, 90, tmp_path / "r.jpg"))
        assert theirs[:2] == (90, 160)
        assert _difference(ours, theirs[2]) < 4.5, degrees


def test_thumbnail_of_anamorphic_video_has_the_display_aspect(ffmpeg: str, tmp_path: Path) -> None:
    """Non-square pixels (SAR 4:3 on 320x240: a 16:9 picture, as DVDs and HDV store it): the
    JPEG has square pixels (browsers ignore JFIF density), so its height follows the display
    aspect: 160 wide is 90 high, not 120."""
    path = tmp_path / "anamorphic.mkv"
    subprocess.run(
        [
            *(ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi"),
            *("-i", "testsrc2=size=320x240:rate=24", "-t", "1", "-vf", "setsar=4/3"),
            *("-c:v", "libx264", "-preset", "ultrafast", str(path)),
        ],
        check=True,
    )
    info = probe(path)
    jpeg = thumbnail_jpeg(path, _video(info), info.keyframe_pts[0], 160)
    assert _jpeg_dimensions(jpeg) == (160, 90)


def test_thumbnail_size_rules() -> None:
    assert thumbnail_size(1920, 1080, 240) == (240, 136)  # 135 -> even
    assert thumbnail_size(320, 180, 1000) == (320, 180)  # never upscaled
    assert thumbnail_size(720, 576, 240, Fraction(64, 45)) == (240, 136)  # PAL 16:9
    assert thumbnail_size(1920, 1080, 240, None, 90) == (240, 426)  # portrait
    assert thumbnail_size(321, 181, 1000) == (320, 180)  # even sides


def test_reader_serves_thumbnails_and_iframes_in_any_order(media_dir: Path) -> None:
    """One open reader for many requests (a seek-bar drag): every answer is the same bytes as
    from a fresh open, whichever came before (the decoder is reset after each picture)."""
    path = media_dir / "hevc_opus.mkv"
    info, frames = _iframes(path)
    video = _video(info)
    keyframes = sorted(info.keyframe_pts)
    fresh = {k: thumbnail_jpeg(path, video, k, 160) for k in keyframes}
    assert len(set(fresh.values())) == len(keyframes)
    order = [*keyframes, *reversed(keyframes), keyframes[1], keyframes[1]]
    with KeyframeReader(path, video) as reader:
        for k in order:
            assert reader.thumbnail_jpeg(k, 160) == fresh[k]
            assert reader.iframe_ts(frames[0]) == cut_iframe_ts(path, video, frames[0])
        with pytest.raises(CutError, match="not found"):
            reader.thumbnail_jpeg(keyframes[1] + 1, 160)


def test_thumbnails_share_the_segment_cache() -> None:
    """Thumbnails go in the server's byte-capped SegmentCache, keyed apart from segments."""
    cache = SegmentCache(max_bytes=10_000)
    cache.put("session", ("v", 3), b"s" * 4000)
    cache.put("session", thumbnail_key(3), b"t" * 4000)
    assert cache.get("session", thumbnail_key(3)) == b"t" * 4000
    assert cache.get("session", ("v", 3)) == b"s" * 4000
    cache.put("session", thumbnail_key(4), b"u" * 4000)  # over the cap: the oldest goes
    assert cache.bytes <= 10_000 and cache.get("session", thumbnail_key(3)) is None


# --- the thumbnail grid and its WebVTT track, pure --------------------------------------------


def test_thumbnail_n_is_the_keyframe_at_or_before_n_times_the_interval() -> None:
    keyframes = [500, 4000, 9000, 10_500, 21_000, 33_000]  # ms; the stream starts at 500
    picks = [thumbnail_keyframe(keyframes, MS, n, 10.0) for n in range(5)]
    # Grid times (from the first keyframe) 500, 10500, 20500, 30500, 40500.
    assert picks == [500, 10_500, 10_500, 21_000, 33_000]
    assert thumbnail_keyframe(list(reversed(keyframes)), MS, 1, 10.0) == 10_500


@given(
    gaps=st.lists(st.integers(1, 20_000), min_size=1, max_size=40),
    n=st.integers(0, 100),
    every=st.sampled_from([2.0, 5.0, 10.0]),
)
def test_thumbnail_keyframe_properties(gaps: list[int], n: int, every: float) -> None:
    keyframes = [0]
    for gap in gaps:
        keyframes.append(keyframes[-1] + gap)
    tb = Fraction(1, 90_000)
    pts = [k * 90 for k in keyframes]
    chosen = thumbnail_keyframe(pts, tb, n, every)
    wanted = Fraction(n) * Fraction(every) / tb
    assert chosen in pts and chosen <= wanted
    later = [p for p in pts if p > chosen]
    assert not later or later[0] > wanted


def _vtt_ms(stamp: str) -> int:
    h, m, s = stamp.split(":")
    return round((int(h) * 3600 + int(m) * 60 + float(s)) * 1000)


@pytest.mark.parametrize("duration", [6.0, 20.0, 25.5, 7200.021, 0.4])
def test_thumbnails_vtt_covers_the_stream(duration: float) -> None:
    """The WebVTT thumbnails track (video.js, JW Player, Shaka): cues back to back from 0 to
    the end, each naming thumb-N.jpg for its N; a WebVTT parser reads it."""
    text = thumbnails_vtt(duration, 10.0)
    assert text.startswith("WEBVTT\n")
    cues = webvtt.from_string(text).captions
    assert len(cues) == thumbnail_count(duration, 10.0)
    assert _vtt_ms(cues[0].start) == 0 and _vtt_ms(cues[-1].end) == round(duration * 1000)
    for n, cue in enumerate(cues):
        assert parse_thumbnail_name(cue.text) == n
        assert _vtt_ms(cue.end) > _vtt_ms(cue.start)
        if n:
            assert _vtt_ms(cue.start) == _vtt_ms(cues[n - 1].end)


def test_vtt_uri_template() -> None:
    text = thumbnails_vtt(20, 10, uri_template="/hls/abc/thumb-{n}.jpg")
    assert "/hls/abc/thumb-1.jpg" in text
    with pytest.raises(ValueError):
        thumbnails_vtt(20, 10, uri_template="thumb.jpg")


# --- names ------------------------------------------------------------------------------------


def test_names_parse_strictly() -> None:
    assert parse_iframe_name("iframe-12.ts") == (12, "ts")
    assert parse_iframe_name("iframe-0.m4s") == (0, "m4s")
    assert parse_thumbnail_name("thumb-7.jpg") == 7
    for bad in (
        "iframe-.ts",
        "iframe-1.mp4",
        "iframe-\u0661.ts",  # an Arabic-Indic 1: str.isdigit says yes
        "iframe-1234567890.ts",
        "seg-1.ts",
    ):
        assert parse_iframe_name(bad) is None, bad
    for bad in ("thumb-1.png", "thumb--1.jpg", "thumb-1", "thumb-\u0663.jpg", "thumb-1.jpg.jpg"):
        assert parse_thumbnail_name(bad) is None, bad
