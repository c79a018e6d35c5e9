"""Reading subtitle cues: embedded text streams a window at a time, and sidecar files.

Every clip is made here with the real ffmpeg from an .srt/.ass written by the test, and the
expected cue times come from that source file read with pysubs2, not from our reader. HLS
subtitle renditions (RFC 8216 4.3.4.1 TYPE=SUBTITLES) carry segmented WebVTT (RFC 8216 3.5)
whose cue times must be the media's times: within 0.1 s of the source here.
"""

from __future__ import annotations

import logging
import os
import random
import subprocess
from pathlib import Path

import av
import pysubs2
import pytest

from hlstrio.media import _subtitles as subtitles
from hlstrio.media import generate_clip
from hlstrio.media._demo import FORCED_SIDECAR_SUFFIX, english_cues, french_forced_cues
from hlstrio.media._subtitles import (
    Cue,
    SidecarError,
    SubtitleReadError,
    ass_to_text,
    decode_text,
    load_sidecar,
    parse_sidecar,
    read_cues,
)

SOURCE_SRT = """1
00:00:01,000 --> 00:00:03,500
Hello <i>world</i>
second line

2
00:00:05,000 --> 00:00:09,000
Spans & <b>bold</b> a boundary

3
00:00:12,250 --> 00:00:13,000
Last -> cue
"""
EXPECTED_TEXT = [
    "Hello <i>world</i>\nsecond line",
    "Spans & <b>bold</b> a boundary",
    "Last -> cue",
]

# (start ms, end ms, style, text); the "Thought" style is italic; the last event a comment.
ASS_EVENTS = [
    (1000, 3000, "Default", r"{\i1}Italic{\i0} then plain"),
    (3500, 5000, "Default", r"{\an8\pos(192,20)\b1\bord3}Bold sign{\b0}"),
    (5500, 7000, "Default", r"Line one\NLine two\nLine three"),
    (7500, 9000, "Default", r"{\p1}m 0 0 l 100 0 100 100 0 100{\p0}"),
    (9500, 11000, "Thought", r"A thought{\rDefault} said aloud"),
    (11500, 12000, "Default", "not shown"),
]


def _source_ass() -> str:
    subs = pysubs2.SSAFile()
    subs.styles["Thought"] = pysubs2.SSAStyle(italic=True)
    for start, end, style, text in ASS_EVENTS:
        event = pysubs2.SSAEvent(start=start, end=end, style=style, text=text)
        event.is_comment = text == "not shown"
        subs.append(event)
    return subs.to_string("ass")


SOURCE_ASS = _source_ass()
EXPECTED_ASS = [
    (1.0, 3.0, "<i>Italic</i> then plain"),
    (3.5, 5.0, "<b>Bold sign</b>"),
    (5.5, 7.0, "Line one\nLine two\nLine three"),
    # the drawing (7.5 s) has no text: no cue
    (9.5, 11.0, "<i>A thought</i> said aloud"),
]


def _run(ffmpeg: str, *args: str) -> None:
    subprocess.run(
        [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        capture_output=True,
        timeout=120,
    )


def _mux(ffmpeg: str, dest: Path, subs: Path, codec: str, seconds: float = 15, *extra: str) -> Path:
    """A tiny H.264 + AAC clip with one subtitle track encoded by ffmpeg from `subs`."""
    _run(
        ffmpeg,
        *("-f", "lavfi", "-i", "testsrc2=size=64x36:rate=10"),
        *("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-i", str(subs)),
        *("-map", "0:v", "-map", "1:a", "-map", "2:s", "-c:v", "libx264", "-g", "20"),
        *("-c:a", "aac", "-c:s", codec, "-t", str(seconds), *extra, str(dest)),
    )
    return dest


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, ffmpeg: str) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("subtitle-clips")
    srt = root / "source.srt"
    srt.write_text(SOURCE_SRT, encoding="utf-8")
    ass = root / "source.ass"
    ass.write_text(SOURCE_ASS, encoding="utf-8")
    return {
        "srt-mkv": _mux(ffmpeg, root / "srt.mkv", srt, "srt"),
        "ass-mkv": _mux(ffmpeg, root / "ass.mkv", srt, "ass"),
        "webvtt-mkv": _mux(ffmpeg, root / "webvtt.mkv", srt, "webvtt"),
        "mov_text-mp4": _mux(ffmpeg, root / "mov_text.mp4", srt, "mov_text"),
        "styled-ass-mkv": _mux(ffmpeg, root / "styled.mkv", ass, "ass"),
        "source.srt": srt,
        "source.ass": ass,
    }


def _subtitle_index(path: Path) -> int:
    with av.open(str(path)) as container:
        return container.streams.subtitles[0].index


def _reference(path: Path) -> list[tuple[float, float]]:
    """Cue times from the source file, read by pysubs2 (independent of our reader)."""
    return [(e.start / 1000, e.end / 1000) for e in pysubs2.load(str(path)) if not e.is_comment]


# --- Embedded streams ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["srt-mkv", "ass-mkv", "webvtt-mkv", "mov_text-mp4"])
def test_embedded_cue_times_match_the_source(clips: dict[str, Path], kind: str) -> None:
    # RFC 8216 3.5: WebVTT cue times are the media's own; within 0.1 s of the source here.
    path = clips[kind]
    cues = read_cues(path, _subtitle_index(path), 0.0, 15.0)
    expected = _reference(clips["source.srt"])
    assert len(cues) == len(expected)
    for cue, (start, end) in zip(cues, expected, strict=True):
        assert cue.start_seconds == pytest.approx(start, abs=0.1)
        assert cue.end_seconds == pytest.approx(end, abs=0.1)
    assert [c.text for c in cues] == EXPECTED_TEXT


@pytest.mark.parametrize("kind", ["srt-mkv", "mov_text-mp4"])
def test_window_returns_exactly_the_overlapping_cues(clips: dict[str, Path], kind: str) -> None:
    path = clips[kind]
    index = _subtitle_index(path)

    def texts(start: float, end: float) -> list[str]:
        return [c.text.split()[0] for c in read_cues(path, index, start, end)]

    # Cue 2 (5..9 s) spans the 6 s boundary of a 6 s segment grid: it is in both windows.
    assert texts(0, 6) == ["Hello", "Spans"]
    assert texts(6, 12) == ["Spans"]
    assert texts(12, 18) == ["Last"]
    # Half-open windows: a cue ending exactly at the window start is not in it.
    assert texts(3.5, 5.0) == []
    assert texts(3.4, 5.0) == ["Hello"]
    assert read_cues(path, index, 8.0, 8.0) == []


def test_ass_override_tags(clips: dict[str, Path]) -> None:
    # ASS in MKV: italic/bold tags become <i>/<b>, positioning and border tags are dropped,
    # \N and \n are line breaks, a drawing is no text, a style's italic is kept, \r resets it.
    path = clips["styled-ass-mkv"]
    cues = read_cues(path, _subtitle_index(path), 0.0, 15.0)
    got = [(round(c.start_seconds, 2), round(c.end_seconds, 2), c.text) for c in cues]
    assert got == EXPECTED_ASS
    # The same file as a sidecar reads the same (one ASS-to-text conversion for both).
    sidecar = [(c.start_seconds, c.end_seconds, c.text) for c in load_sidecar(clips["source.ass"])]
    assert sidecar == EXPECTED_ASS


@pytest.mark.parametrize(
    ("ass", "text"),
    [
        (r"{\i1}a{\i0}b", "<i>a</i>b"),
        (r"{\b1}a{\i1}b{\b0}c", "<b>a</b><b><i>b</i></b><i>c</i>"),
        (r"{\b700}heavy{\b400}light", "<b>heavy</b>light"),
        (r"{\bord2\blur3\be1}not bold", "not bold"),
        (r"{\iclip(0,0,10,10)}not italic", "not italic"),
        (r"{\fad(200,200)\1c&H00FF00&}colour{\k20}kar{\k30}aoke", "colourkaraoke"),
        (r"a\Nb\nc\hd", "a\nb\nc\u00a0d"),
        (r"{\p2}m 0 0 l 1 1{\p0}after", "after"),
        (r"{a comment}text", "text"),
        (r"x {unclosed", "x {unclosed"),
        (r"\N\Ntext\N\N", "text"),
        (r"{\i1}\N{\i0}", ""),
    ],
)
def test_ass_to_text(ass: str, text: str) -> None:
    assert ass_to_text(ass) == text


def test_ass_style_defaults() -> None:
    assert (
        ass_to_text("plain{\\i0}upright{\\i}back", italic=True) == "<i>plain</i>upright<i>back</i>"
    )
    assert ass_to_text("a{\\r}b", bold=True) == "<b>ab</b>"


def _patched(source: Path, dest: Path, find: bytes, replace: bytes) -> Path:
    data = bytearray(source.read_bytes())
    at = data.find(find)
    assert at > 0 and len(replace) == len(find)
    data[at : at + len(find)] = replace
    dest.write_bytes(bytes(data))
    return dest


@pytest.mark.parametrize("kind", ["srt-mkv", "webvtt-mkv", "mov_text-mp4"])
def test_corrupt_packet_is_skipped_with_a_warning(
    clips: dict[str, Path], kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Invalid UTF-8 in one cue's packet (same length, so the container stays valid): the
    # decoder rejects that packet; its cue is skipped, the others are read, nothing raises.
    source = clips[kind]
    path = _patched(source, tmp_path / source.name, b"Spans &", b"\xff\xfe\xc3\x28 & ")
    with caplog.at_level(logging.WARNING, logger="hlstrio.subtitles"):
        cues = read_cues(path, _subtitle_index(path), 0.0, 15.0)
    assert [c.text for c in cues] == [EXPECTED_TEXT[0], EXPECTED_TEXT[2]]
    assert any("skipped a subtitle packet at 5.000 s" in r.getMessage() for r in caplog.records)


def test_malformed_ass_event_is_skipped(
    clips: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # An ASS packet whose event fields are gone (zeroed bytes): skipped with a warning.
    source = clips["ass-mkv"]
    path = _patched(source, tmp_path / "ass.mkv", b"1,0,Default,", b"\0" * 12)
    with caplog.at_level(logging.WARNING, logger="hlstrio.subtitles"):
        cues = read_cues(path, _subtitle_index(path), 0.0, 15.0)
    assert [c.text for c in cues] == [EXPECTED_TEXT[0], EXPECTED_TEXT[2]]
    assert any("malformed subtitle event" in r.getMessage() for r in caplog.records)


def test_unreadable_inputs_raise_subtitle_read_error(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.mkv"
    garbage.write_bytes(random.Random(3).randbytes(50_000))
    path = clips["srt-mkv"]
    cases = [
        (tmp_path / "missing.mkv", 0),
        (garbage, 0),
        (path, 0),  # the video stream
        (path, 9),  # no such stream
    ]
    for file, index in cases:
        with pytest.raises(SubtitleReadError) as info:
            read_cues(file, index, 0.0, 6.0)
        assert file.name in str(info.value) and "\n" not in str(info.value)


# Long clips whose subtitles are sparse; PCM audio makes them a few MB, so reading a window
# can be told from reading the file. "sparse": 1..3 s, a sign held 5.002..100 s (a start
# that is no binary fraction), 110..112 s.
# "overlap" (Matroska, which can overlap cues): a sign held 20..100 s, a line at 45..47 s.
SPARSE_SRT = """1
00:00:01,000 --> 00:00:03,000
early

2
00:00:05,002 --> 00:01:40,000
a long sign

3
00:01:50,000 --> 00:01:52,000
late
"""
OVERLAP_SRT = """1
00:00:20,000 --> 00:01:40,000
a long sign

2
00:00:45,000 --> 00:00:47,000
overlapping line
"""


@pytest.fixture(scope="module")
def sparse(tmp_path_factory: pytest.TempPathFactory, ffmpeg: str) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sparse")
    out = {}
    for name, text, codec in (
        ("sparse.mkv", SPARSE_SRT, "srt"),
        ("sparse.mp4", SPARSE_SRT, "mov_text"),
        ("overlap.mkv", OVERLAP_SRT, "srt"),
    ):
        srt = root / f"{name}.srt"
        srt.write_text(text)
        _run(
            ffmpeg,
            *("-f", "lavfi", "-i", "testsrc2=size=64x36:rate=10"),
            *("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-i", str(srt)),
            *("-map", "0:v", "-map", "1:a", "-map", "2:s", "-c:v", "libx264", "-g", "20"),
            *("-c:a", "pcm_s16le", "-c:s", codec, "-t", "120", str(root / name)),
        )
        out[name] = root / name
    return out


def _bytes_read() -> int:
    """Bytes this process has read through read syscalls (/proc/self/io rchar)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar")


@pytest.mark.parametrize("name", ["sparse.mkv", "sparse.mp4"])
def test_reads_only_near_the_window(sparse: dict[str, Path], name: str) -> None:
    # The target: a segment's cues without extracting the track. The window 0..6 s must not
    # read on to the next subtitle packet (110 s): the demux stops on the video clock. The
    # window 60..66 s must not read from the start: it seeks to 30 s of lookback before it.
    path = sparse[name]
    index = _subtitle_index(path)
    size = path.stat().st_size
    before = _bytes_read()
    first = read_cues(path, index, 0.0, 6.0)
    first_bytes = _bytes_read() - before
    before = _bytes_read()
    middle = read_cues(path, index, 60.0, 66.0)
    middle_bytes = _bytes_read() - before
    assert [c.text for c in first] == ["early", "a long sign"]
    assert [c.text for c in middle] == ["a long sign"]
    assert first_bytes < 0.2 * size, (first_bytes, size)  # 8 s of 120 s, plus headers
    assert middle_bytes < 0.5 * size, (middle_bytes, size)  # 30 + 6 + 2 s of 120 s


@pytest.mark.parametrize("name", ["sparse.mkv", "sparse.mp4"])
def test_cue_started_long_before_the_window_is_found(sparse: dict[str, Path], name: str) -> None:
    # A sign held 95 s: shown in every segment it overlaps, even 80 s after it started (the
    # container's index names the last cue to start before the window).
    path = sparse[name]
    index = _subtitle_index(path)
    for start in (48.0, 90.0, 99.0):
        assert "a long sign" in [c.text for c in read_cues(path, index, start, start + 6)]
    assert [c.text for c in read_cues(path, index, 100.0, 106.0)] == []
    assert [c.text for c in read_cues(path, index, 108.0, 114.0)] == ["late"]


def test_lookback_bounds_an_overlapped_long_cue(sparse: dict[str, Path]) -> None:
    # At 48 s the last cue to start is the 45 s line, so the sign (from 20 s) can only come
    # from the lookback: found with LOOKBACK_SECONDS (reads from 18 s), not with 20 s of it.
    # At 60 s it started 40 s before: beyond the documented bound, an overlapped cue is lost.
    path = sparse["overlap.mkv"]
    index = _subtitle_index(path)
    assert subtitles.LOOKBACK_SECONDS == 30.0
    assert [c.text for c in read_cues(path, index, 48.0, 54.0)] == ["a long sign"]
    assert [c.text for c in read_cues(path, index, 48.0, 54.0, lookback_seconds=20)] == []
    assert [c.text for c in read_cues(path, index, 60.0, 66.0)] == []
    assert [c.text for c in read_cues(path, index, 60.0, 66.0, lookback_seconds=60)] == [
        "a long sign"
    ]


# --- Demo clip ----------------------------------------------------------------------------------


def test_multi_track_demo_clip(tmp_path: Path, ffmpeg: str) -> None:
    seconds = 6.0
    dest = generate_clip(
        tmp_path / "multi.mkv",
        "multi_track_mkv",
        ffmpeg=ffmpeg,
        seconds=seconds,
        width=64,
        height=36,
    )
    sidecar = tmp_path / ("multi" + FORCED_SIDECAR_SUFFIX)
    assert sorted(os.listdir(tmp_path)) == ["multi.fr.forced.srt", "multi.mkv"]  # no temporaries
    with av.open(str(dest)) as container:
        streams = [(s.type, s.codec_context.name) for s in container.streams]
        assert streams == [
            ("video", "h264"),
            ("audio", "aac"),
            ("audio", "ac3"),
            ("subtitle", "srt"),
            ("subtitle", "pgssub"),
        ]
        english, french = container.streams.audio
        assert (english.codec_context.channels, english.metadata.get("language")) == (2, "eng")
        assert english.disposition & av.stream.Disposition.default
        assert french.codec_context.channels == 6 and french.metadata.get("language") == "fre"
        assert french.metadata.get("title") == "Français 5.1"
        assert not french.disposition & av.stream.Disposition.default
        text_index, pgs_index = (s.index for s in container.streams.subtitles)
        assert container.streams[text_index].metadata.get("language") == "eng"
        # The PGS track decodes to bitmaps at the English cue times.
        pgs = container.streams[pgs_index]
        shown = []
        for packet in container.demux(pgs):
            decoded = pgs.decode2(packet) if packet.size else None  # type: ignore[attr-defined]
            if decoded is not None and any(r.type == b"bitmap" for r in decoded.rects):
                assert packet.pts is not None and pgs.time_base is not None
                shown.append(float(packet.pts * pgs.time_base))
    expected = english_cues(seconds)
    assert shown == pytest.approx([a for a, _, _ in expected], abs=0.01)
    cues = read_cues(dest, text_index, 0.0, seconds)
    assert [c.start_seconds for c in cues] == pytest.approx([a for a, _, _ in expected])
    assert [c.end_seconds for c in cues] == pytest.approx([b for _, b, _ in expected])
    assert cues[1].text == "<i>An italic line, 2</i>"
    with pytest.raises(SubtitleReadError, match="not a text subtitle codec"):
        read_cues(dest, pgs_index, 0.0, seconds)
    forced = load_sidecar(sidecar, language="fr")
    assert [c.text for c in forced] == [text for _, _, text in french_forced_cues(seconds)]
    assert [c.start_seconds for c in forced] == pytest.approx(
        [a for a, _, _ in french_forced_cues(seconds)]
    )
    assert forced[0].text == "[Panneau] Boulangerie n°1"


def test_multi_track_failure_leaves_nothing(tmp_path: Path) -> None:
    # The SRT and PGS inputs written for ffmpeg are temporaries too: gone after a failure,
    # and no sidecar appears for a clip that was never made.
    fake = tmp_path / "fake-ffmpeg"
    fake.write_text("#!/bin/sh\necho 'Unknown encoder ac3' >&2\nexit 1\n")
    fake.chmod(0o755)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="Unknown encoder ac3"):
        generate_clip(
            out / "m.mkv", "multi_track_mkv", ffmpeg=str(fake), seconds=2, width=64, height=36
        )
    assert os.listdir(out) == []


# --- Sidecars -----------------------------------------------------------------------------------

SIDECAR_SRT = """1
00:00:01,000 --> 00:00:02,500
Un café, s'il vous plaît

2
00:00:03,000 --> 00:00:04,000
<i>Ærø</i> & « déjà »
"""
SIDECAR_CUES = [
    Cue(1.0, 2.5, "Un café, s'il vous plaît"),
    Cue(3.0, 4.0, "<i>Ærø</i> & « déjà »"),
]


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "utf-16-le-bom", "utf-16-be-bom", "cp1252", "latin-1"]
)
def test_sidecar_character_sets(tmp_path: Path, encoding: str) -> None:
    text = SIDECAR_SRT if encoding != "latin-1" else SIDECAR_SRT.replace("«", '"').replace("»", '"')
    if encoding.endswith("-bom"):
        data = text.encode(encoding.removesuffix("-bom").replace("-", "_"))
        data = ("\ufeff".encode(encoding.removesuffix("-bom").replace("-", "_"))) + data
    else:
        data = text.encode(encoding)
    path = tmp_path / "film.srt"
    path.write_bytes(data)
    expected = [
        Cue(c.start_seconds, c.end_seconds, c.text.replace("«", '"').replace("»", '"'))
        if encoding == "latin-1"
        else c
        for c in SIDECAR_CUES
    ]
    assert load_sidecar(path) == expected


def test_sidecar_legacy_code_page_from_language(tmp_path: Path) -> None:
    # Without a BOM or valid UTF-8, the language names the code page: Polish is cp1250.
    path = tmp_path / "film.pl.srt"
    path.write_bytes("1\n00:00:01,000 --> 00:00:02,000\nZażółć gęślą jaźń\n".encode("cp1250"))
    assert load_sidecar(path, language="pol")[0].text == "Zażółć gęślą jaźń"
    assert decode_text("Привет, как дела? Это тест.".encode("cp1251"), legacy_codec="cp1251")
    assert decode_text("Ærø".encode("cp1252")) == "Ærø"  # no language: cp1252, not cp1250


def test_sidecar_webvtt(tmp_path: Path) -> None:
    # NOTE, STYLE and cue identifiers are not cue text; character references are decoded;
    # voice, class and timestamp tags dropped, <i>/<b> kept.
    path = tmp_path / "film.vtt"
    path.write_text(
        "WEBVTT - a title\n\nSTYLE\n::cue { color: yellow }\n\nNOTE a comment\n\n"
        "intro\n00:00:01.000 --> 00:00:02.500 align:start line:10%\n"
        "<v Roger>Tom &amp; Jerry</v> <i>ok</i>\n\n"
        "00:02.600 --> 00:03.000\n<c.yellow>second</c> &lt;3 <00:00:02.700>karaoke\n\n"
        "NOTE trailing\n",
        encoding="utf-8",
    )
    assert load_sidecar(path) == [
        Cue(1.0, 2.5, "Tom & Jerry <i>ok</i>"),
        Cue(2.6, 3.0, "second <3 karaoke"),
    ]


def test_sidecar_origin_shift(tmp_path: Path) -> None:
    path = tmp_path / "film.srt"
    path.write_text(SIDECAR_SRT)
    shifted = load_sidecar(path, origin_seconds=10.0)
    assert [(c.start_seconds, c.end_seconds) for c in shifted] == [(11.0, 12.5), (13.0, 14.0)]


def test_half_a_file(tmp_path: Path) -> None:
    # A copy cut off halfway: the complete cues are kept (as players do), even when the cut
    # falls inside a UTF-8 or UTF-16 character; with no complete cue left it is broken.
    data = SIDECAR_SRT.encode("utf-8")
    cut = data[: data.index("Ærø".encode()) + 1]  # inside "Æ"
    assert parse_sidecar(cut, ".srt")[0] == SIDECAR_CUES[0]
    utf16 = b"\xff\xfe" + SIDECAR_SRT.encode("utf-16-le")
    assert parse_sidecar(utf16[: len(utf16) // 2 * 2 - 1], ".srt")[0] == SIDECAR_CUES[0]
    ass = SOURCE_ASS.encode()
    with pytest.raises(SidecarError, match="no subtitle cues"):
        parse_sidecar(ass[: ass.index(b"[Events]")], ".ass")
    with pytest.raises(SidecarError):
        parse_sidecar(b"WEB", ".vtt")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("garbage.srt", random.Random(1).randbytes(4096)),
        ("garbage.ass", random.Random(2).randbytes(4096)),
        ("garbage.vtt", random.Random(3).randbytes(4096)),
        ("png.srt", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256))),
        ("empty.srt", b""),
        ("words.srt", b"just some words, no timings\n"),
        ("nul.srt", SIDECAR_SRT.encode() + b"\0\0\0\0"),
        ("bad-utf16.srt", b"\xff\xfe" + b"\x00\xd8" * 8),  # lone surrogates
        ("film.sub", SIDECAR_SRT.encode()),  # a type we do not read
    ],
)
def test_broken_sidecar_raises_sidecar_error(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(SidecarError) as info:
        load_sidecar(path)
    assert name in str(info.value) and "\n" not in str(info.value)


def test_missing_sidecar_raises_sidecar_error(tmp_path: Path) -> None:
    with pytest.raises(SidecarError):
        load_sidecar(tmp_path / "gone.srt")
    (tmp_path / "dir.srt").mkdir()
    with pytest.raises(SidecarError):
        load_sidecar(tmp_path / "dir.srt")


def test_sidecar_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Parsed once per (path, size, mtime): a changed file is parsed again.
    calls: list[str] = []
    real = subtitles.parse_sidecar

    def counting(data: bytes, suffix: str, **kwargs: object) -> list[Cue]:
        calls.append(suffix)
        return real(data, suffix, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(subtitles, "parse_sidecar", counting)
    subtitles._parse_sidecar_cached.cache_clear()
    path = tmp_path / "film.srt"
    path.write_text(SIDECAR_SRT)
    assert load_sidecar(path) == load_sidecar(path) == SIDECAR_CUES
    assert len(calls) == 1
    path.write_text(SIDECAR_SRT.replace("café", "thé"))
    os.utime(path, ns=(1, 1))
    assert load_sidecar(path)[0].text == "Un thé, s'il vous plaît"
    assert len(calls) == 2
    assert subtitles._parse_sidecar_cached.cache_info().maxsize == 64  # bounded
