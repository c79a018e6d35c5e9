"""Segmented WebVTT for HLS subtitle renditions, parsed back as a player reads it.

RFC 8216 3.5 (WebVTT segments): each segment is a WebVTT file whose header carries
X-TIMESTAMP-MAP=MPEGTS:<90 kHz>,LOCAL:<cue time>, mapping cue times to the MPEG-TS timestamps
of the other renditions; a segment without cues is still a (header-only) WebVTT file; clients
account for 33-bit PES timestamps that have wrapped while the cue times have not. RFC 8216
4.3.4.1 / Apple HLS Authoring Spec: the subtitle playlist covers the whole duration with the
same segment boundaries as the video, so a cue spanning a boundary belongs to both segments.
Parsing is webvtt-py's strict reader plus the checks below on the raw lines.
"""

from __future__ import annotations

import html
import io
import re
from fractions import Fraction
from pathlib import Path

import av
import pytest
import webvtt
from hypothesis import given
from hypothesis import strategies as st

from hlstrio.media import generate_clip
from hlstrio.media._demo import english_cues
from hlstrio.media._subtitles import Cue, read_cues
from hlstrio.streaming._mpegts import TS_OFFSET
from hlstrio.streaming._remux import cut_video_ts
from hlstrio.streaming._timeline import Segment, fixed_grid
from hlstrio.streaming._webvtt import (
    MPEGTS_WRAP,
    cue_text,
    cue_timestamp,
    webvtt_segment,
    webvtt_whole,
)

TICKS = int(TS_OFFSET * 90_000)  # 126000: the remux video's TS time at source time 0
_MAP = re.compile(r"^X-TIMESTAMP-MAP=MPEGTS:(\d+),LOCAL:(\d{2,}:\d{2}:\d{2}\.\d{3})$")
_TIMING = re.compile(r"^(\d{2,}:\d{2}:\d{2}\.\d{3}) --> (\d{2,}:\d{2}:\d{2}\.\d{3})$")


def _seconds(stamp: str) -> float:
    h, m, s = stamp.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def parse_segment(text: str) -> tuple[int, float, list[tuple[float, float, str]]]:
    """(MPEGTS, LOCAL seconds, cues) of one WebVTT segment, strictly, as a player reads it."""
    assert text.startswith("WEBVTT\n")  # WebVTT file signature, RFC 8216 3.5
    lines = text.split("\n")
    header = lines[1]
    match = _MAP.match(header)
    assert match, header  # the map is in the header, before the first blank line
    assert lines[2] == ""  # the header ends with a blank line before the first cue
    for line in lines:
        if "-->" in line:
            assert _TIMING.match(line), line  # HH:MM:SS.mmm --> HH:MM:SS.mmm, nothing else
    document = webvtt.from_string(text, strict=True)
    assert document.metadata == [header]
    cues = [
        (c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000, c.raw_text)
        for c in document.captions
    ]
    return int(match.group(1)), _seconds(match.group(2)), cues


def presentation_ticks(mpegts: int, local: float, cue_seconds: float) -> int:
    """The MPEG-TS time at which a cue time shows (RFC 8216 3.5: LOCAL <-> MPEGTS), mod 2^33."""
    return (mpegts + round((cue_seconds - local) * 90_000)) % MPEGTS_WRAP


CUES = [
    Cue(1.0, 3.5, "Hello <i>world</i>\nsecond line"),
    Cue(5.0, 9.0, "Spans a boundary"),
    Cue(12.25, 13.0, "Last"),
]


def test_header_and_timestamp_map() -> None:
    # RFC 8216 3.5: X-TIMESTAMP-MAP maps LOCAL cue time to MPEGTS. LOCAL 0 is source time 0,
    # MPEGTS the video's TS time there (source + 1.4 s): a cue at source t shows at t + 1.4 s.
    mpegts, local, cues = parse_segment(webvtt_segment(CUES, 0.0, 6.0, TICKS))
    assert (mpegts, local) == (126_000, 0.0)
    assert cues == [(1.0, 3.5, "Hello <i>world</i>\nsecond line"), (5.0, 9.0, "Spans a boundary")]
    for start, _, _ in cues:
        assert presentation_ticks(mpegts, local, start) == round((start + 1.4) * 90_000)


def test_33_bit_wrap() -> None:
    # RFC 8216 3.5: MPEGTS is a 33-bit PES timestamp; a value past 2^33 is written wrapped, and
    # the cue times go on unwrapped (clients account for the wrap).
    mpegts, _, _ = parse_segment(webvtt_segment(CUES, 0.0, 6.0, MPEGTS_WRAP + 5))
    assert mpegts == 5
    mpegts, _, _ = parse_segment(webvtt_segment(CUES, 0.0, 6.0, -90_000))
    assert mpegts == MPEGTS_WRAP - 90_000
    late = [Cue(27 * 3600.0, 27 * 3600.0 + 2, "after the wrap")]
    mpegts, local, cues = parse_segment(webvtt_segment(late, 97_200.0, 97_206.0, TICKS))
    assert cues[0][0] == 97_200.0  # 27:00:00.000, not wrapped
    assert presentation_ticks(mpegts, local, cues[0][0]) == (97_201.4 * 90_000) % MPEGTS_WRAP


def test_boundary_cue_in_both_segments_with_identical_timing() -> None:
    # The 5..9 s cue overlaps segments [0, 6) and [6, 12): it is in both, with the same times,
    # so a player that joins at segment 1 shows it and one that has both keeps one copy.
    _, _, first = parse_segment(webvtt_segment(CUES, 0.0, 6.0, TICKS))
    _, _, second = parse_segment(webvtt_segment(CUES, 6.0, 12.0, TICKS))
    assert first[-1] == second[0] == (5.0, 9.0, "Spans a boundary")
    _, _, third = parse_segment(webvtt_segment(CUES, 12.0, 18.0, TICKS))
    assert third == [(12.25, 13.0, "Last")]
    # Half-open windows: a cue ending at a segment's start is not in it.
    _, _, none = parse_segment(webvtt_segment(CUES, 3.5, 5.0, TICKS))
    assert none == []


def test_empty_segment_is_header_only() -> None:
    # RFC 8216 3.5: the subtitle playlist covers the whole duration; a segment without cues is
    # the header alone, still a valid WebVTT file.
    text = webvtt_segment(CUES, 20.0, 26.0, TICKS)
    assert text == "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n"
    assert parse_segment(text)[2] == []


def test_every_segment_of_a_timeline_covers_every_cue_once() -> None:
    # RFC 8216 4.3.4.1/3.5: one subtitle segment per video segment boundary, whole duration.
    timeline = fixed_grid(14.0, 4.0)
    seen: dict[tuple[float, float, str], int] = {}
    for segment in timeline.segments:
        text = webvtt_segment(CUES, segment.start, segment.start + segment.duration, TICKS)
        for cue in parse_segment(text)[2]:
            seen[cue] = seen.get(cue, 0) + 1
    assert sorted(seen) == [(c.start_seconds, c.end_seconds, c.text) for c in CUES]
    assert seen[(5.0, 9.0, "Spans a boundary")] == 2  # segments [4, 8) and [8, 12)


def test_escaping() -> None:
    # WebVTT cue text: "&", "<", ">" are character references; "-->" can never appear in a
    # cue's text (it would be read as a timing line); an empty line would end the cue.
    cue = Cue(1.0, 2.0, "Tom & Jerry <3 a -> b --> c\n\n\nx<y>z  \n<i>kept</i> <u>not</u>")
    text = webvtt_whole([cue])
    body = text.split("\n", 3)[3]
    assert "-->" not in body
    assert body == (
        "Tom &amp; Jerry &lt;3 a -&gt; b --&gt; c\nx&lt;y&gt;z\n"
        "<i>kept</i> &lt;u&gt;not&lt;/u&gt;\n"
    )
    document = webvtt.from_string(text, strict=True)
    assert len(document.captions) == 1
    assert (
        html.unescape(document.captions[0].text)
        == "Tom & Jerry <3 a -> b --> c\nx<y>z\nkept <u>not</u>"
    )


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("<i>a <b>b</i> c</b>", "<i>a <b>b</b></i><b> c</b>"),  # crossed tags re-nested
        ("</i>stray<b>open", "stray<b>open</b>"),  # stray close dropped, open closed
        ("<i></i>\n<b><i></i></b>\nx", "x"),  # nothing but markup: no line
        ("a\r\nb\rc\0", "a\nb\nc\ufffd"),
        ("<i>two\nlines</i>", "<i>two\nlines</i>"),
    ],
)
def test_cue_text_markup(text: str, rendered: str) -> None:
    assert cue_text(text) == rendered


@given(st.text(alphabet="ab <>&-/ib\n\r\t\0é", max_size=40))
def test_any_text_is_one_valid_cue(text: str) -> None:
    # Whatever the text: one cue or none, no "-->" and no empty line in it, the words intact.
    document = webvtt.from_string(webvtt_whole([Cue(1.0, 2.0, text)]), strict=True)
    words = re.sub(r"</?[ib]>", "", text).replace("\0", "\ufffd").replace("\r", "\n").split()
    if not document.captions:
        assert words == []
        return
    (caption,) = document.captions
    assert all(line.strip() and "-->" not in line for line in caption.lines)
    assert html.unescape(re.sub(r"</?[ib]>", "", caption.raw_text)).split() == words


def test_cue_timestamps() -> None:
    assert cue_timestamp(0) == "00:00:00.000"
    assert cue_timestamp(3_723_004) == "01:02:03.004"
    assert cue_timestamp(100 * 3_600_000 + 1) == "100:00:00.001"  # more hours, never fewer
    # Rounded to the millisecond; a cue that rounds to nothing (or starts before 0) is fixed.
    _, _, cues = parse_segment(
        webvtt_segment([Cue(0.0011, 0.0014, "gone"), Cue(-1.0, 0.5, "early")], 0, 6, TICKS)
    )
    assert cues == [(0.0, 0.5, "early")]


# --- Against the real remux video -----------------------------------------------------------------


def _first_video_pts(ts: bytes) -> int:
    """PTS (90 kHz) of the first video PES in an MPEG-TS byte string."""
    for at in range(0, len(ts), 188):
        packet = ts[at : at + 188]
        assert packet[0] == 0x47
        if not packet[1] & 0x40:  # payload_unit_start_indicator
            continue
        offset = 4 + (1 + packet[4] if packet[3] & 0x20 else 0)
        pes = packet[offset:]
        if pes[:3] == b"\0\0\1" and 0xE0 <= pes[3] <= 0xEF and pes[7] & 0x80:
            p = pes[9:14]
            return ((p[0] >> 1) & 7) << 30 | p[1] << 22 | (p[2] >> 1) << 15 | p[3] << 7 | p[4] >> 1
    raise AssertionError("no video PES with a PTS")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, ffmpeg: str) -> Path:
    root = tmp_path_factory.mktemp("webvtt")
    return generate_clip(
        root / "multi.mkv", "multi_track_mkv", ffmpeg=ffmpeg, seconds=8, width=64, height=36
    )


def test_cue_times_map_onto_the_remux_video(clip: Path) -> None:
    # RFC 8216 3.5: the map must put a cue on the video's MPEG-TS timeline. Cut a real remux
    # segment (the second GOP), read its first PTS, and check a cue at that segment's source
    # start would show at exactly that PTS.
    with av.open(str(clip)) as container:
        video = container.streams.video[0]
        video_index, time_base = video.index, video.time_base  # not after the close
        assert time_base is not None
        keyframes = sorted(
            p.pts for p in container.demux(video) if p.is_keyframe and p.pts is not None
        )
    start_pts, end_pts = keyframes[1], keyframes[2]
    segment = Segment(
        1,
        float(start_pts * time_base),
        float((end_pts - start_pts) * time_base),
        start_pts,
        end_pts,
    )
    video_pts = _first_video_pts(cut_video_ts(clip, segment, video_index))
    cues = read_cues(clip, 3, segment.start, segment.start + segment.duration)
    mpegts, local, _ = parse_segment(
        webvtt_segment(cues, segment.start, segment.start + segment.duration, TICKS)
    )
    exact = Fraction(start_pts) * time_base
    assert presentation_ticks(mpegts, local, float(exact)) == video_pts


def test_embedded_track_round_trip(clip: Path) -> None:
    # Every segment of a 2 s grid, read from the MKV's SRT track and rendered, parses back to
    # the source cues (within 0.1 s), each cue in every segment it overlaps with one timing.
    timeline = fixed_grid(8.0, 2.0)
    found: dict[tuple[float, float, str], set[int]] = {}
    for segment in timeline.segments:
        end = segment.start + segment.duration
        text = webvtt_segment(read_cues(clip, 3, segment.start, end), segment.start, end, TICKS)
        for cue in parse_segment(text)[2]:
            found.setdefault(cue, set()).add(segment.index)
    expected = english_cues(8.0)
    assert len(found) == len(expected)
    for (start, end, text), (want_start, want_end, want_text) in zip(
        sorted(found), expected, strict=True
    ):
        assert start == pytest.approx(want_start, abs=0.1)
        assert end == pytest.approx(want_end, abs=0.1)
        assert text == want_text.replace("\\n", "\n")
        overlapped = {
            s.index for s in timeline.segments if s.start < end and s.start + s.duration > start
        }
        assert found[(start, end, text)] == overlapped
    assert any(len(v) == 2 for v in found.values())  # at least one cue spans a boundary


def test_webvtt_whole_parses(tmp_path: Path) -> None:
    text = webvtt_whole(CUES)
    assert text.startswith("WEBVTT\n\n")
    document = webvtt.from_buffer(io.StringIO(text))
    assert [(c.start, c.end) for c in document.captions] == [
        ("00:00:01.000", "00:00:03.500"),
        ("00:00:05.000", "00:00:09.000"),
        ("00:00:12.250", "00:00:13.000"),
    ]
