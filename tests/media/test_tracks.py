"""Every track of library-like files: audio dispositions, subtitles, colour, scan type, codecs.

Files come from tests/media/conftest.py (real ffmpeg muxers); each expectation is what the
playlist needs to say about the track (RFC 8216 4.3.4.1-2, Apple HLS authoring spec).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import av
import pytest

from hlstrio.media import probe
from hlstrio.media._probe import h264_annexb, h264_scan_type


def test_audio_tracks_of_an_mkv_rip(tracks_dir: Path) -> None:
    # RFC 8216 4.3.4.1: LANGUAGE is an RFC 5646 tag, which wants the shortest ISO 639 code
    # ("fr", not the "fre" Matroska stores); DEFAULT/NAME come from disposition and title.
    info = probe(tracks_dir / "tracks.mkv")
    got = [
        (a.index, a.codec, a.channels, a.layout, a.language, a.title, a.default, a.commentary)
        for a in info.audio
    ]
    assert got == [
        (1, "aac", 2, "stereo", "fr", "Français", False, False),
        (2, "ac3", 6, "5.1(side)", "en", "Surround", True, False),
        (3, "eac3", 6, "5.1(side)", "de", None, False, True),
    ]
    aac, ac3, eac3 = info.audio
    assert (aac.profile, aac.hls_codec) == ("LC", "mp4a.40.2")
    assert (ac3.hls_codec, eac3.hls_codec) == ("ac-3", "ec-3")
    assert not any(a.forced or a.describes_video for a in info.audio)


def test_subtitle_streams_text_and_bitmap(tracks_dir: Path) -> None:
    # Text subtitles can become WebVTT renditions (RFC 8216 3.1.4); bitmaps cannot, so the
    # plan must know which is which. FORCED=YES needs the forced disposition (4.3.4.1).
    info = probe(tracks_dir / "tracks.mkv")
    got = [
        (s.index, s.codec, s.text, s.language, s.title, s.forced, s.hearing_impaired)
        for s in info.subtitles
    ]
    assert got == [
        (4, "subrip", True, "en", None, True, False),
        (5, "ass", True, "fr", "SDH", False, True),
        (6, "webvtt", True, "pt-BR", None, False, False),
        (7, "hdmv_pgs_subtitle", False, "de", None, False, False),
        (8, "dvd_subtitle", False, "es", None, False, False),
    ]
    assert [s.default for s in info.subtitles] == [False] * 5
    assert [a.index for a in info.audio] == [1, 2, 3]  # subtitles are not audio


def test_mov_text_subtitles(tracks_dir: Path) -> None:
    info = probe(tracks_dir / "mov_text.mp4")
    [sub] = info.subtitles
    assert (sub.index, sub.codec, sub.text, sub.language) == (2, "mov_text", True, "ja")


@pytest.mark.parametrize(
    ("name", "transfer", "dynamic_range", "codec_prefix"),
    [
        ("pq.mkv", "smpte2084", "PQ", "hvc1.2.4."),
        ("hlg.mp4", "arib-std-b67", "HLG", "hvc1.2.4."),
        ("av1_pq.mkv", "smpte2084", "PQ", "av01.0.00M.10."),
        ("vp9_hlg.mkv", "arib-std-b67", "HLG", "vp09.02.10.10."),
    ],
)
def test_hdr_colour(
    tracks_dir: Path, name: str, transfer: str, dynamic_range: str, codec_prefix: str
) -> None:
    # RFC 8216bis 4.4.6.2 VIDEO-RANGE: PQ for SMPTE ST 2084, HLG for ARIB STD-B67.
    v = probe(tracks_dir / name).video
    assert v is not None
    assert (v.bit_depth, v.pix_fmt) == (10, "yuv420p10le")
    assert (v.color_primaries, v.color_transfer, v.color_space) == ("bt2020", transfer, "bt2020nc")
    assert v.color_range == "tv"
    assert v.dynamic_range == dynamic_range
    assert v.hls_codec is not None and v.hls_codec.startswith(codec_prefix)
    assert v.profile in ("Main 10", "Main", "Profile 2")


def test_hevc_hdr_codec_string_is_main10(tracks_dir: Path) -> None:
    v = probe(tracks_dir / "pq.mkv").video
    assert v is not None and v.profile == "Main 10"
    assert v.hls_codec is not None and v.hls_codec.startswith("hvc1.2.4.L")


def test_sdr_video(tracks_dir: Path) -> None:
    v = probe(tracks_dir / "tracks.mkv").video
    assert v is not None
    assert (v.dynamic_range, v.bit_depth, v.pix_fmt, v.profile) == (
        "SDR",
        8,
        "yuv420p",
        "Constrained Baseline",
    )
    assert (v.color_primaries, v.color_transfer, v.field_order, v.interlaced) == (
        None,
        None,
        "progressive",
        False,
    )


def test_av1_and_vp9_codec_strings(tracks_dir: Path) -> None:
    # RFC 6381 strings for CODECS (RFC 8216 4.3.4.2): the AV1 binding's short form for SDR;
    # the HDR ones carry the colour fields (all or none) so a player can refuse early.
    av1 = probe(tracks_dir / "av1.mp4").video
    pq = probe(tracks_dir / "av1_pq.mkv").video
    vp9 = probe(tracks_dir / "vp9.webm").video
    hlg = probe(tracks_dir / "vp9_hlg.mkv").video
    assert av1 is not None and pq is not None and vp9 is not None and hlg is not None
    assert av1.hls_codec == "av01.0.00M.08"  # Main, level 2.0 (seq_level_idx 0), 8 bit
    assert pq.hls_codec == "av01.0.00M.10.0.110.09.16.09.0"
    assert vp9.hls_codec == "vp09.00.10.08"  # 160x90 at 24 fps fits level 1
    assert hlg.hls_codec == "vp09.02.10.10.01.09.18.09.00"


def test_lossless_and_opus_audio(tracks_dir: Path) -> None:
    # Opus and FLAC go in fMP4 only ("Opus", "fLaC" sample entries): still HLS-capable.
    [flac16] = probe(tracks_dir / "av1.mp4").audio
    [flac24] = probe(tracks_dir / "vp9_hlg.mkv").audio
    [opus] = probe(tracks_dir / "vp9.webm").audio
    assert (flac16.codec, flac16.hls_codec, flac16.bit_depth) == ("flac", "fLaC", 16)
    assert (flac24.codec, flac24.hls_codec, flac24.bit_depth) == ("flac", "fLaC", 24)
    assert (opus.codec, opus.hls_codec, opus.bit_depth, opus.layout) == (
        "opus",
        "Opus",
        None,
        "mono",
    )


@pytest.mark.parametrize(
    ("name", "order"), [("tff.mkv", "tt"), ("bff.mkv", "bb"), ("tff.mp4", "tt"), ("tff.ts", "tt")]
)
def test_interlaced_h264(tracks_dir: Path, name: str, order: str) -> None:
    # Interlaced sources need deinterlacing when transcoded; the stream, not the container,
    # decides: ffmpeg's Matroska muxer writes "tff" so that its demuxer reads back "tb".
    v = probe(tracks_dir / name).video
    assert v is not None
    assert (v.interlaced, v.field_order) == (True, order)
    if name.endswith(".mkv"):
        with av.open(str(tracks_dir / name)) as c:
            container_order = int(c.streams.video[0].codec_context.field_order)
        assert container_order in (4, 5)  # AV_FIELD_TB / AV_FIELD_BT: what the file claims


def test_scan_type_falls_back_to_the_container(tracks_dir: Path) -> None:
    with av.open(str(tracks_dir / "tff.mkv")) as c:
        stream = c.streams.video[0]
        extradata = stream.codec_context.extradata or b""
        keyframe = next(bytes(p) for p in c.demux(stream) if p.is_keyframe)
    assert h264_scan_type(extradata, keyframe) == ("tt", True)
    assert h264_scan_type(extradata, keyframe[:-7], "bb") == ("bb", True)  # malformed packet
    assert h264_scan_type(b"", b"", None) == (None, False)


def test_h264_annexb_from_avcc() -> None:
    sps, pps = b"\x67\x42\xc0\x0a\xda", b"\x68\xce\x3c\x80"
    avcc = bytes([1, 0x42, 0xC0, 0x0A, 0xFF, 0xE1, 0, len(sps)]) + sps + bytes([1, 0, len(pps)])
    avcc += pps
    slice_nal, sei = b"\x65\x88\x84", b"\x06\x05\x01"
    packet = len(sei).to_bytes(4, "big") + sei + len(slice_nal).to_bytes(4, "big") + slice_nal
    start = b"\0\0\0\1"
    assert h264_annexb(avcc, packet) == start + sps + start + pps + start + sei + start + slice_nal
    two_byte = bytes([1, 0x42, 0xC0, 0x0A, 0xFD, 0xE1, 0, len(sps)]) + sps + b"\0"
    assert h264_annexb(two_byte, b"\0\3" + slice_nal) == start + sps + start + slice_nal
    annexb = start + sps
    assert h264_annexb(annexb, start + slice_nal) == annexb + start + slice_nal  # as it is
    assert h264_annexb(avcc, packet[:-1]) == b""  # a NAL unit cut short
    assert h264_annexb(avcc[:9], packet) == b""  # an SPS cut short


def test_new_fields_have_defaults_for_hand_built_values() -> None:
    # Other modules and tests build VideoInfo/AudioInfo by hand with the original fields.
    from hlstrio.media import AudioInfo, VideoInfo

    v = VideoInfo(0, "h264", 2, 2, 25.0, None, None)
    a = AudioInfo(1, "aac", 2, 48000, None, "mp4a.40.2", None)
    assert (v.dynamic_range, v.interlaced, v.bit_depth) == ("SDR", False, 8)
    assert (a.default, a.title, a.layout) == (False, None, None)
    assert dataclasses.replace(a, default=True).default
