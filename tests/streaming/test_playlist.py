"""Playlist text: exact lines, and what a real HLS client library reads from them."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import m3u8
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hlstrio.streaming import (
    Segment,
    Timeline,
    Variant,
    fixed_grid,
    keyframe_timeline,
    master_playlist,
    media_playlist,
)
from hlstrio.streaming._playlist import MEDIA_PLAYLIST_URI, extinf_seconds, segment_uri

FULL = Variant(
    bandwidth=5_000_000,
    average_bandwidth=3_000_000,
    codecs=("avc1.64001f", "mp4a.40.2"),
    width=1280,
    height=720,
    frame_rate=25.0,
)


def timeline_of(*lengths: float) -> Timeline:
    segs = []
    start = 0.0
    for i, d in enumerate(lengths):
        segs.append(Segment(i, start, d))
        start += d
    return Timeline(tuple(segs))


def tags(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("#")]


def uris(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def extinfs(text: str) -> list[float]:
    return [float(m) for m in re.findall(r"^#EXTINF:([0-9.]+),$", text, flags=re.M)]


def target_of(text: str) -> int:
    m = re.search(r"^#EXT-X-TARGETDURATION:(\d+)$", text, flags=re.M)
    assert m is not None
    return int(m.group(1))


# --- master ------------------------------------------------------------------------------------


def test_master_playlist_exact_text() -> None:
    assert master_playlist(FULL) == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:3\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=5000000,AVERAGE-BANDWIDTH=3000000,"
        'CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=25.000\n'
        "index.m3u8\n"
    )


def test_master_playlist_as_a_client_reads_it() -> None:
    parsed = m3u8.loads(master_playlist(FULL))
    assert parsed.is_variant
    assert len(parsed.playlists) == 1
    variant = parsed.playlists[0]
    assert variant.uri == "index.m3u8" == MEDIA_PLAYLIST_URI
    info = variant.stream_info
    assert info.bandwidth == 5_000_000
    assert info.average_bandwidth == 3_000_000
    assert info.codecs == "avc1.64001f,mp4a.40.2"
    assert info.resolution == (1280, 720)
    assert info.frame_rate == 25.0


def test_master_playlist_uri_is_relative() -> None:
    for line in uris(master_playlist(FULL)):
        assert "/" not in line
        assert ":" not in line
        assert line == "index.m3u8"


def test_master_playlist_audio_only() -> None:
    text = master_playlist(
        Variant(bandwidth=140_000, average_bandwidth=128_000, codecs=("mp4a.40.2",))
    )
    (stream_inf,) = [t for t in tags(text) if t.startswith("#EXT-X-STREAM-INF:")]
    assert stream_inf == (
        '#EXT-X-STREAM-INF:BANDWIDTH=140000,AVERAGE-BANDWIDTH=128000,CODECS="mp4a.40.2"'
    )
    assert "RESOLUTION" not in text
    assert "FRAME-RATE" not in text
    info = m3u8.loads(text).playlists[0].stream_info
    assert info.codecs == "mp4a.40.2"
    assert info.resolution is None


def test_master_playlist_without_codecs_omits_the_attribute() -> None:
    text = master_playlist(Variant(bandwidth=1, average_bandwidth=1, codecs=()))
    assert "CODECS" not in text


def test_master_playlist_fractional_frame_rate() -> None:
    text = master_playlist(
        Variant(
            bandwidth=1000,
            average_bandwidth=900,
            codecs=("avc1.640028",),
            width=1920,
            height=1080,
            frame_rate=24000 / 1001,
        )
    )
    assert ",FRAME-RATE=23.976\n" in text
    assert m3u8.loads(text).playlists[0].stream_info.frame_rate == pytest.approx(23.976)


def test_master_playlist_needs_both_dimensions_for_resolution() -> None:
    text = master_playlist(
        Variant(bandwidth=1, average_bandwidth=1, codecs=("avc1.640028",), width=1280, height=None)
    )
    assert "RESOLUTION" not in text


# --- media -------------------------------------------------------------------------------------


def test_media_playlist_exact_text() -> None:
    text = media_playlist(fixed_grid(12.04, 6.0, 1 / 25))
    assert text == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:3\n"
        "#EXT-X-TARGETDURATION:6\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n"
        "#EXT-X-INDEPENDENT-SEGMENTS\n"
        # A microsecond under each real length (see extinf_seconds).
        "#EXTINF:5.999998,\nseg-0.ts\n"
        "#EXTINF:5.999998,\nseg-1.ts\n"
        "#EXTINF:0.039998,\nseg-2.ts\n"
        "#EXT-X-ENDLIST\n"
    )


def test_media_playlist_is_a_complete_vod_list() -> None:
    text = media_playlist(timeline_of(6.0, 6.0, 6.0, 2.5))
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U"
    assert lines[-1] == "#EXT-X-ENDLIST"
    assert text.endswith("\n")
    assert lines.count("#EXT-X-PLAYLIST-TYPE:VOD") == 1
    assert lines.count("#EXT-X-ENDLIST") == 1
    assert "#EXT-X-START" not in text
    assert uris(text) == ["seg-0.ts", "seg-1.ts", "seg-2.ts", "seg-3.ts"]
    assert extinfs(text) == [5.999998, 5.999998, 5.999998, 2.499998]
    # Every EXTINF is directly followed by its URI.
    for i, line in enumerate(lines):
        if line.startswith("#EXTINF:"):
            assert re.fullmatch(r"seg-\d+\.ts", lines[i + 1])


def test_media_playlist_as_a_client_reads_it() -> None:
    lengths = (5.5, 5.5, 7.0, 9.0)
    parsed = m3u8.loads(media_playlist(timeline_of(*lengths)))
    assert not parsed.is_variant
    assert parsed.is_endlist is True
    assert parsed.playlist_type == "vod"
    assert parsed.media_sequence == 0
    assert parsed.version == 3
    assert parsed.is_independent_segments
    assert parsed.target_duration == 9
    assert len(parsed.segments) == 4
    assert [s.duration for s in parsed.segments] == pytest.approx([x - 2e-6 for x in lengths])
    assert [s.uri for s in parsed.segments] == [f"seg-{i}.ts" for i in range(4)]
    assert parsed.start is None
    assert sum(s.duration for s in parsed.segments) == pytest.approx(27.0)


def test_media_playlist_from_a_keyframe_timeline() -> None:
    tb = Fraction(1, 90000)
    kf = [int(s * 90000) for s in (0, 5.5, 8, 11, 12.5, 18, 19, 25)]
    t = keyframe_timeline(kf, tb, 27 * 90000, 6.0)
    text = media_playlist(t)
    parsed = m3u8.loads(text)
    assert [s.duration for s in parsed.segments] == pytest.approx([5.5, 5.5, 7.0, 9.0], abs=3e-6)
    assert parsed.target_duration == t.target_duration == 9
    assert [s.uri for s in parsed.segments] == [segment_uri(s.index) for s in t.segments]


def test_media_playlist_start_offset() -> None:
    text = media_playlist(timeline_of(6.0, 6.0, 6.0), start_offset=12.5)
    assert "#EXT-X-START:TIME-OFFSET=12.500,PRECISE=YES" in text.splitlines()
    # The tag belongs in the header, before the first segment.
    lines = text.splitlines()
    assert lines.index("#EXT-X-START:TIME-OFFSET=12.500,PRECISE=YES") < lines.index(
        "#EXTINF:5.999998,"
    )
    parsed = m3u8.loads(text)
    assert parsed.start is not None
    assert parsed.start.time_offset == 12.5
    assert parsed.start.precise == "YES"
    assert len(parsed.segments) == 3


@pytest.mark.parametrize("offset", [None, 0.0, 0])
def test_media_playlist_no_start_tag_without_an_offset(offset: float | None) -> None:
    text = media_playlist(timeline_of(6.0, 3.0), start_offset=offset)
    assert "EXT-X-START" not in text
    assert m3u8.loads(text).start is None


@pytest.mark.parametrize(
    ("lengths", "target"),
    [
        ((6.0, 6.0), 6),
        ((6.0004,), 6),
        ((6.4,), 7),
        ((6.5, 2.0), 7),
        ((10.0, 6.0, 6.0), 10),
        ((0.04,), 1),
    ],
)
def test_target_duration_covers_every_rounded_extinf(
    lengths: tuple[float, ...], target: int
) -> None:
    text = media_playlist(timeline_of(*lengths))
    assert target_of(text) == target
    for value in extinfs(text):
        assert math.floor(value + 0.5) <= target


def test_segment_uri() -> None:
    assert segment_uri(0) == "seg-0.ts"
    assert segment_uri(1234) == "seg-1234.ts"


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.lists(
        st.floats(min_value=0.001, max_value=30.0, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=40,
    ),
    st.one_of(st.none(), st.floats(min_value=0.5, max_value=3600.0)),
)
def test_media_playlist_property(lengths: list[float], offset: float | None) -> None:
    t = timeline_of(*lengths)
    text = media_playlist(t, start_offset=offset)
    target = target_of(text)
    # As printed, rounded half up (RFC 8216 4.3.3.1), every EXTINF fits the target.
    printed = extinfs(text)
    assert len(printed) == len(lengths)
    assert all(math.floor(v + 0.5) <= target for v in printed)
    # ... and the target is not larger than it needs to be.
    assert target <= max(1, math.ceil(max(lengths)))
    # EXTINF is the length to the microsecond less 2 (extinf_seconds: it keeps libavformat's
    # seeks on the boundary keyframes): never above it, 1.5-2.5 us below.
    assert all(
        d - 2.5e-6 - 1e-9 <= v <= d - 1.5e-6 + 1e-9 for v, d in zip(printed, lengths, strict=True)
    )
    parsed = m3u8.loads(text)
    assert len(parsed.segments) == len(lengths)
    assert [s.uri for s in parsed.segments] == [f"seg-{i}.ts" for i in range(len(lengths))]
    assert parsed.is_endlist
    assert parsed.playlist_type == "vod"
    assert parsed.target_duration == target
    assert (parsed.start is not None) == (offset is not None)


def test_extinf_keeps_libavformat_seeks_on_the_boundary_keyframe() -> None:
    # libavformat seeks to sum(EXTINF) (from a first timestamp rounded to nearest microsecond)
    # and drops video until a keyframe DTS, rounded *down*, reaches it: the sum must stay below
    # the true boundary time by at least a microsecond per segment, whatever the lengths.
    for length in (2.0, 6.0, 2.002, 1001 / 30000 * 60, 12.04 - 12, 10.010010):
        assert length - 2.5e-6 <= extinf_seconds(length) <= length - 1.5e-6
        # Over an hour of segments the sum stays below the true time by >= 1.5 us each.
        total = sum(extinf_seconds(length) for _ in range(1800))
        assert total <= 1800 * (length - 1.5e-6) + 1e-7
