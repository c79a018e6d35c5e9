from __future__ import annotations

import dataclasses
import itertools
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import pytest

from hlstrio.media import MediaInfo, ProbeError, probe
from hlstrio.media._probe import (
    Colour,
    VideoParams,
    aac_codec_string,
    audio_bit_depth,
    audio_codec_string,
    av1_codec_string,
    dynamic_range,
    h264_codec_string,
    hevc_codec_string,
    video_codec_string,
    vp9_codec_string,
    vp9_level,
)

FPS = 24
GOP = 48  # frames: what generate_clip asks x264/x265 for


def run_ffmpeg(ffmpeg: str, *args: str) -> None:
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    subprocess.run(cmd, check=True, capture_output=True)


def seconds(info: MediaInfo, pts: int) -> float:
    assert info.video_time_base is not None
    return float(pts * info.video_time_base)


def video_packet_bytes(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(p.size for p in c.demux(c.streams.video[0]) if p.pts is not None)


def assert_keyframes_on_gop_grid(info: MediaInfo, clip_seconds: float) -> None:
    assert info.video_start_pts is not None and info.video_end_pts is not None
    # Decode order, strictly increasing, the first one where the video starts.
    assert list(info.keyframe_pts) == sorted(set(info.keyframe_pts))
    assert info.keyframe_pts[0] == info.video_start_pts
    times = [seconds(info, p) - seconds(info, info.video_start_pts) for p in info.keyframe_pts]
    # A keyframe every GOP frames (scene cuts may add some, never remove one).
    for k in range(int(clip_seconds * FPS) // GOP):
        assert any(abs(t - k * GOP / FPS) < 0.5 / FPS for t in times), (k, times)
    assert all(b - a <= GOP / FPS + 1e-6 for a, b in itertools.pairwise(times))
    assert len(info.gop_bytes) == len(info.keyframe_pts)
    assert all(b > 0 for b in info.gop_bytes)


def test_h264_aac_mp4(media_dir: Path) -> None:
    path = media_dir / "h264_aac.mp4"
    info = probe(path)
    assert info.container == "mov"
    assert info.duration == pytest.approx(6.0, abs=0.1)
    assert info.size == path.stat().st_size

    v = info.video
    assert v is not None
    assert (v.index, v.codec, v.width, v.height, v.fps) == (0, "h264", 320, 180, 24.0)
    assert v.hls_codec is not None and v.hls_codec.startswith("avc1.64")  # x264 High profile
    assert len(v.hls_codec) == len("avc1.64000d")
    assert v.bit_rate is not None and v.bit_rate > 0

    assert len(info.audio) == 1
    a = info.audio[0]
    assert (a.index, a.codec, a.channels, a.sample_rate) == (1, "aac", 2, 48000)
    assert a.language is None  # ffmpeg writes "und"
    assert a.hls_codec == "mp4a.40.2"
    assert a.bit_rate is not None and 100_000 < a.bit_rate < 160_000

    assert info.video_time_base is not None
    assert info.video_start_pts is not None and info.video_end_pts is not None
    span = seconds(info, info.video_end_pts) - seconds(info, info.video_start_pts)
    assert span == pytest.approx(6.0, abs=0.1)
    assert_keyframes_on_gop_grid(info, 6.0)
    assert len(info.keyframe_pts) == 3  # 144 frames, GOP 48; testsrc2 has no scene cuts
    assert sum(info.gop_bytes) == video_packet_bytes(path)
    assert sum(info.gop_bytes) < info.size


def test_hevc_opus_mkv(media_dir: Path) -> None:
    info = probe(media_dir / "hevc_opus.mkv")
    assert info.container == "matroska"
    assert info.duration == pytest.approx(4.0, abs=0.1)
    v = info.video
    assert v is not None
    assert (v.codec, v.width, v.height, v.fps) == ("hevc", 320, 180, 24.0)
    # Main profile, compatible with Main (flag 1) and Main 10 (flag 2): reversed bits 0x6.
    assert v.hls_codec is not None and v.hls_codec.startswith("hvc1.1.6.L")
    assert info.video_time_base == Fraction(1, 1000)  # Matroska's default millisecond clock
    assert_keyframes_on_gop_grid(info, 4.0)
    assert sum(info.gop_bytes) == video_packet_bytes(media_dir / "hevc_opus.mkv")
    [a] = info.audio
    # "Opus" is HLS-capable in fMP4 only (its sample entry name); the plan picks the container.
    assert (a.codec, a.channels, a.sample_rate, a.hls_codec) == ("opus", 2, 48000, "Opus")
    assert a.layout == "stereo"


def test_two_audio_tracks(media_dir: Path) -> None:
    info = probe(media_dir / "two_audio.mp4")
    # RFC 8216 4.3.4.1: LANGUAGE is an RFC 5646 tag: the shortest ISO 639 code, "fr" not "fra".
    assert [(a.index, a.codec, a.language, a.title, a.hls_codec) for a in info.audio] == [
        (1, "aac", "en", "English", "mp4a.40.2"),
        (2, "aac", "fr", "Français", "mp4a.40.2"),
    ]
    assert [a.default for a in info.audio] == [True, False]  # ffmpeg's mp4 default: the first
    assert info.video is not None and info.video.index == 0
    assert info.duration == pytest.approx(4.0, abs=0.1)


@pytest.mark.parametrize(("source", "codec"), [("h264_aac.mp4", "h264"), ("hevc_opus.mkv", "hevc")])
def test_annexb_codec_string_matches_config_record(
    media_dir: Path, tmp_path: Path, ffmpeg: str, source: str, codec: str
) -> None:
    # MPEG-TS carries parameter sets in-band (Annex B): the string must not depend on that.
    ts = tmp_path / "remuxed.ts"
    run_ffmpeg(ffmpeg, "-i", str(media_dir / source), "-c", "copy", str(ts))
    original, remuxed = probe(media_dir / source), probe(ts)
    assert remuxed.container == "mpegts"
    assert remuxed.video is not None and original.video is not None
    assert remuxed.video.codec == codec
    assert remuxed.video.hls_codec == original.video.hls_codec
    assert remuxed.video_time_base == Fraction(1, 90000)
    assert len(remuxed.keyframe_pts) == len(original.keyframe_pts)


def test_cover_art_is_not_the_video(media_dir: Path, tmp_path: Path, ffmpeg: str) -> None:
    cover = tmp_path / "cover.png"
    run_ffmpeg(ffmpeg, "-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1", str(cover))
    # mp4 cover art (attached_pic); Matroska with a picture *track* listed before the video.
    art_mp4, pic_mkv = tmp_path / "art.mp4", tmp_path / "pic_first.mkv"
    run_ffmpeg(
        ffmpeg,
        "-i",
        str(media_dir / "h264_aac.mp4"),
        "-i",
        str(cover),
        "-map",
        "0",
        "-map",
        "1",
        "-c",
        "copy",
        "-disposition:v:1",
        "attached_pic",
        str(art_mp4),
    )
    run_ffmpeg(
        ffmpeg,
        "-i",
        str(cover),
        "-i",
        str(media_dir / "hevc_opus.mkv"),
        "-map",
        "0",
        "-map",
        "1",
        "-c",
        "copy",
        str(pic_mkv),
    )
    with av.open(str(art_mp4)) as c:
        assert [s.codec_context.name for s in c.streams.video] == ["h264", "png"]
    info = probe(art_mp4)
    assert info.video is not None
    assert (info.video.index, info.video.codec) == (0, "h264")
    assert [a.index for a in info.audio] == [1]

    info = probe(pic_mkv)
    assert info.video is not None
    assert (info.video.index, info.video.codec) == (1, "hevc")
    assert [a.index for a in info.audio] == [2]


def test_audio_only(tmp_path: Path, ffmpeg: str) -> None:
    out = tmp_path / "audio.mp4"
    run_ffmpeg(
        ffmpeg, "-f", "lavfi", "-i", "sine=sample_rate=44100", "-t", "2", "-c:a", "aac", str(out)
    )
    info = probe(out)
    assert info.video is None
    assert info.keyframe_pts == info.gop_bytes == ()
    assert (info.video_time_base, info.video_start_pts, info.video_end_pts) == (None, None, None)
    assert [(a.codec, a.sample_rate, a.channels) for a in info.audio] == [("aac", 44100, 1)]
    assert info.duration == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize("name", ["corrupt.mp4", "truncated.mp4", "notes.txt"])
def test_unplayable_files(media_dir: Path, name: str) -> None:
    with pytest.raises(ProbeError) as exc_info:
        probe(media_dir / name)
    message = str(exc_info.value)
    assert name in message and "\n" not in message


def test_truncated_mp4_reports_truncation(media_dir: Path) -> None:
    with pytest.raises(ProbeError, match="truncated"):
        probe(media_dir / "truncated.mp4")


def test_truncated_mkv(media_dir: Path, tmp_path: Path) -> None:
    data = (media_dir / "hevc_opus.mkv").read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 4 // 10])
    with pytest.raises(ProbeError, match="truncated"):
        probe(cut)


def test_missing_empty_and_directory(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    for path in (tmp_path / "missing.mp4", tmp_path / "empty.mp4", tmp_path):
        with pytest.raises(ProbeError):
            probe(path)


def test_refuses_playlists_and_concat_scripts(media_dir: Path, tmp_path: Path) -> None:
    # Text formats that make libavformat open other files must not be demuxed at all.
    shutil.copyfile(media_dir / "h264_aac.mp4", tmp_path / "clip.mp4")
    concat = tmp_path / "concat.mp4"
    concat.write_text("ffconcat version 1.0\nfile 'clip.mp4'\n")
    with av.open(str(concat)) as c:  # plain libavformat follows it (a relative path is "safe")
        assert c.format.name == "concat"
    playlist = tmp_path / "playlist.mp4"
    playlist.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\nclip.mp4\n#EXT-X-ENDLIST\n")
    for path in (concat, playlist):
        with pytest.raises(ProbeError):
            probe(path)


# --- pure codec-string helpers -----------------------------------------------------------------


def escape(rbsp: bytes) -> bytes:
    """Insert emulation prevention bytes, as an encoder would."""
    out = bytearray()
    zeros = 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def test_h264_from_avcc() -> None:
    avcc = bytes([1, 0x64, 0x00, 0x1F, 0xFF, 0xE1, 0x00, 0x04, 0x67, 0x64, 0x00, 0x1F])
    assert h264_codec_string(avcc) == "avc1.64001f"
    assert h264_codec_string(bytes([1, 0x42, 0xE0, 0x1E])) == "avc1.42e01e"


def test_h264_from_annexb() -> None:
    pps = b"\x00\x00\x00\x01\x68\xee\x3c\x80"
    sps = b"\x00\x00\x01\x67\x4d\x40\x28\xac\xd9\x40"
    assert h264_codec_string(pps + sps) == "avc1.4d4028"
    assert h264_codec_string(b"\x00\x00\x00\x01\x27\x42\xc0\x0d\x00") == "avc1.42c00d"  # nal_ref 1


@pytest.mark.parametrize(
    "data", [b"", b"\x01\x00", b"\x00\x00\x01\x68\xee", b"\x00\x00\x01\x67\x42", b"garbage"]
)
def test_h264_unknown(data: bytes) -> None:
    assert h264_codec_string(data) is None


def hvcc(ptl: bytes) -> bytes:
    return b"\x01" + ptl + bytes(23 - 1 - len(ptl))


def test_hevc_from_hvcc() -> None:
    main = bytes([0x01, 0x60, 0, 0, 0, 0xB0, 0, 0, 0, 0, 0, 93])
    assert hevc_codec_string(hvcc(main)) == "hvc1.1.6.L93.B0"
    main10_high = bytes([0x22, 0x20, 0, 0, 0, 0xB0, 0, 0, 0, 0, 0, 153])
    assert hevc_codec_string(hvcc(main10_high)) == "hvc1.2.4.H153.B0"
    spaced = bytes([0x41, 0x60, 0, 0, 0, 0x90, 0x12, 0, 0, 0, 0, 120])
    assert hevc_codec_string(hvcc(spaced)) == "hvc1.A1.6.L120.90.12"
    no_constraints = bytes([0x01, 0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 63])
    assert hevc_codec_string(hvcc(no_constraints)) == "hvc1.1.6.L63"


def test_hevc_from_annexb_with_emulation_prevention() -> None:
    ptl = bytes([0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 63])
    vps = b"\x00\x00\x00\x01\x40\x01" + escape(b"\x0c\x01\xff\xff" + ptl)
    sps = b"\x00\x00\x00\x01\x42\x01" + escape(b"\x01" + ptl + b"\xa0\x0a\x08")
    assert b"\x00\x00\x03" in sps
    assert hevc_codec_string(vps + sps) == "hvc1.1.6.L63.90"


@pytest.mark.parametrize("data", [b"", b"\x01\x01", b"\x00\x00\x01\x40\x01\x0c", b"xyz"])
def test_hevc_unknown(data: bytes) -> None:
    assert hevc_codec_string(data) is None


def test_aac_strings() -> None:
    assert aac_codec_string("LC") == "mp4a.40.2"
    assert aac_codec_string("HE-AAC") == "mp4a.40.5"
    assert aac_codec_string("HE-AACv2") == "mp4a.40.29"
    assert aac_codec_string("Main") is None
    assert aac_codec_string("LD") is None
    # No profile from libavcodec: read the AudioSpecificConfig's object type.
    assert aac_codec_string(None, bytes([0x11, 0x90])) == "mp4a.40.2"
    assert aac_codec_string(None, bytes([0x2B, 0x92, 0x08, 0x00])) == "mp4a.40.5"
    assert aac_codec_string(None, bytes([0xF8, 0xE0, 0x00])) is None  # escape: object type 39
    assert aac_codec_string(None, None) is None


def test_audio_and_video_dispatch() -> None:
    assert audio_codec_string("mp3", None, None) == "mp4a.40.34"
    assert audio_codec_string("ac3", None, None) == "ac-3"
    assert audio_codec_string("eac3", None, None) == "ec-3"
    assert audio_codec_string("aac", "LC", None) == "mp4a.40.2"
    # Carried by HLS in fMP4 only: still a codec string (the plan decides the container).
    assert audio_codec_string("opus", None, b"OpusHead") == "Opus"
    assert audio_codec_string("flac", None, None) == "fLaC"
    for codec in ("vorbis", "dts", "truehd", "pcm_s16le"):
        assert audio_codec_string(codec, None, b"\x01\x02") is None
    assert video_codec_string("h264", bytes([1, 0x64, 0, 0x28])) == "avc1.640028"
    assert video_codec_string("vp9", b"\x01\x02\x03\x04") is None  # no pixel format known
    vp9 = VideoParams("Profile 0", "yuv420p", 1920, 1080, 24.0)
    assert video_codec_string("vp9", b"", vp9) == "vp09.00.40.08"
    assert video_codec_string("av1", bytes([0x81, 0x08, 0x0C, 0])) == "av01.0.08M.08"
    assert video_codec_string("mpeg2video", b"\x00\x00\x01\xb3") is None


@pytest.mark.parametrize("name", ["h264_aac.mp4", "two_audio.mp4"])
def test_container_index_gives_the_same_keyframes_as_a_full_scan(
    media_dir: Path, name: str
) -> None:
    # index_min_bytes=0 forces the sample-table path for these tiny MP4 files: the result
    # must be exactly what the full scan finds. (Matroska Cues: test_cues.py.)
    scanned = probe(media_dir / name, index_min_bytes=1 << 62)
    indexed = probe(media_dir / name, index_min_bytes=0)
    assert (scanned.index_source, indexed.index_source) == ("scan", "mov")
    assert dataclasses.replace(indexed, index_source="scan") == scanned


def test_container_index_of_a_truncated_file_falls_back_to_the_scan(media_dir: Path) -> None:
    with pytest.raises(ProbeError, match="truncated"):
        probe(media_dir / "truncated.mp4", index_min_bytes=0)


# --- AV1, VP9, audio depth, dynamic range: pure helpers -------------------------------------


def av1c(profile: int, level: int, tier: int, high: int, twelve: int, mono: int = 0) -> bytes:
    # AV1CodecConfigurationRecord: marker|version, profile|level, tier|depth|mono|chroma.
    third = (tier << 7) | (high << 6) | (twelve << 5) | (mono << 4) | (1 << 3) | (1 << 2)
    return bytes([0x81, (profile << 5) | level, third, 0])


def test_av1_codec_strings() -> None:
    # AV1 ISO BMFF binding: av01.P.LLT.DD, optional .M.CCC.cp.tc.mc.F all or none.
    assert av1_codec_string(av1c(0, 8, 0, 0, 0)) == "av01.0.08M.08"
    assert av1_codec_string(av1c(0, 13, 1, 1, 0)) == "av01.0.13H.10"
    assert av1_codec_string(av1c(2, 16, 0, 1, 1)) == "av01.2.16M.12"
    pq = Colour(primaries=9, transfer=16, matrix=9)
    assert av1_codec_string(av1c(0, 9, 0, 1, 0), pq) == "av01.0.09M.10.0.110.09.16.09.0"
    hlg_full = Colour(primaries=9, transfer=18, matrix=9, full_range=True)
    assert av1_codec_string(av1c(0, 9, 0, 1, 0, mono=1), hlg_full) == (
        "av01.0.09M.10.1.110.09.18.09.1"
    )
    # SDR colour (or none known) keeps the short form: defaults are BT.709, limited range.
    assert av1_codec_string(av1c(0, 8, 0, 0, 0), Colour(1, 1, 1)) == "av01.0.08M.08"
    for bad in (b"", b"\x81\x00", bytes([0x01, 0, 0, 0]), bytes([0x82, 0, 0, 0])):
        assert av1_codec_string(bad) is None


@pytest.mark.parametrize(
    ("width", "height", "fps", "level"),
    [
        (160, 90, 24.0, 10),
        (320, 180, 30.0, 11),
        (320, 240, 30.0, 20),
        (640, 360, 30.0, 21),
        (1280, 720, 30.0, 31),
        (1920, 1080, 30.0, 40),
        (1920, 1080, 60.0, 41),
        (3840, 2160, 30.0, 50),
        (3840, 2160, 60.0, 51),
        (7680, 4320, 30.0, 60),
        (1920, 1080, 0.0, 40),  # unknown rate counts as 30 fps
    ],
)
def test_vp9_level(width: int, height: int, fps: float, level: int) -> None:
    assert vp9_level(width, height, fps) == level


def test_vp9_codec_strings() -> None:
    # VP codec ISO BMFF binding: vp09.PP.LL.DD, optional .CC.cp.tc.mc.FF all or none.
    assert vp9_codec_string(0, 41, 8) == "vp09.00.41.08"
    hdr = Colour(primaries=9, transfer=16, matrix=9)
    assert vp9_codec_string(2, 51, 10, 1, hdr) == "vp09.02.51.10.01.09.16.09.00"
    for pix_fmt, profile in (
        ("yuv420p", 0),
        ("yuv444p", 1),
        ("yuv420p10le", 2),
        ("yuv422p12le", 3),
    ):
        params = VideoParams(None, pix_fmt, 1280, 720, 30.0)  # no profile name: from the format
        text = video_codec_string("vp9", b"", params)
        assert text is not None and text.startswith(f"vp09.{profile:02d}.31.")
    params = VideoParams("Profile 2", "yuv420p10le", 3840, 2160, 24.0, Colour(9, 18, 9))
    assert video_codec_string("vp9", b"", params) == "vp09.02.50.10.01.09.18.09.00"


def test_audio_bit_depth() -> None:
    streaminfo = bytearray(34)
    streaminfo[12] = 0x01  # 3 bits of channels, then the top bit of (bits per sample - 1)
    streaminfo[13] = 0x70  # low 4 bits of 23: 24-bit
    assert audio_bit_depth("flac", bytes(streaminfo)) == 24
    block = b"fLaC" + b"\x80\x00\x00\x22" + bytes(streaminfo)
    assert audio_bit_depth("flac", block) == 24  # Matroska CodecPrivate keeps the marker
    streaminfo[12], streaminfo[13] = 0x00, 0xF0
    assert audio_bit_depth("flac", bytes(streaminfo)) == 16
    assert audio_bit_depth("pcm_s24le", None) == 24
    assert audio_bit_depth("pcm_s16be", None) == 16
    assert audio_bit_depth("pcm_f32le", None) == 32
    alac = b"\x00\x00\x00\x24alac\x00\x00\x00\x00" + b"\x00\x00\x10\x00" + b"\x00\x14"
    assert audio_bit_depth("alac", alac) == 20
    for codec in ("aac", "ac3", "dts", "truehd", "flac"):
        assert audio_bit_depth(codec, b"") is None


def test_dynamic_range() -> None:
    # RFC 8216bis 4.4.6.2 VIDEO-RANGE: PQ (ST 2084), HLG (ARIB STD-B67), else SDR.
    assert dynamic_range("smpte2084") == "PQ"
    assert dynamic_range("arib-std-b67") == "HLG"
    for transfer in ("bt709", "bt2020-10", "smpte170m", None):
        assert dynamic_range(transfer) == "SDR"
