"""The encoder's ffmpeg command line, pure: picture filters (deinterlace, tone map, burn-in,
scale), their order, the output colour tags, and what a binary without a filter gets.

End to end (real ffmpeg, real server, idet and luma measurements): tests/web/
test_transcode_picture.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hlstrio.media import VideoInfo
from hlstrio.streaming._encoder import EncodeJob, encoder_argv
from hlstrio.streaming._filters import (
    BT709_TAGS,
    DEINTERLACE_UNAVAILABLE,
    FILTERS_UNKNOWN,
    TONEMAP_UNAVAILABLE,
    FilterSupport,
    parse_filter_list,
)
from hlstrio.streaming._timeline import fixed_grid

# `ffmpeg -hide_banner -filters` as 9.0.2 (the bundled one) prints it, cut down...
FILTERS_9 = """Filters:
  T.. = Timeline support
  .S. = Slice threading
  A = Audio input/output
  V = Video input/output
  N = Dynamic number and/or type of input/output
  | = Source or sink filter
  ------
 TS aap               AA->A      Apply Affine Projection algorithm to first audio stream.
 TS bwdif             V->V       Deinterlace the input image.
 .. overlay           VV->V      Overlay a video source on top of the input.
 .. setparams         V->V       Force field, or color property for the output video frame.
 .. scale             V->V       Scale the input video size and/or convert the image format.
 .S tonemap           V->V       Conversion to/from different dynamic ranges.
 TS yadif             V->V       Deinterlace the input image.
 .S zscale            V->V       Apply resizing, colorspace and bit depth conversion.
 .. testsrc2          |->V       Generate another test pattern.
 .. concat            N->N       Concatenate audio and video streams.
 .. buffersink        V->|       Buffer video frames, and make them available to the end.
"""
# ...and as ffmpeg 4 did (three flag letters, no rule), built without libzimg.
FILTERS_4 = """Filters:
  T.. = Timeline support
  .S. = Slice threading
  ..C = Command support
  A = Audio input/output
  V = Video input/output
  N = Dynamic number and/or type of input/output
  | = Source or sink filter
 ... abench            A->A       Benchmark part of a filtergraph.
 TSC scale             V->V       Scale the input video size and/or convert the image format.
 .S. tonemap           V->V       Conversion to/from different dynamic ranges.
 TS. yadif             V->V       Deinterlace the input image.
"""

ALL = parse_filter_list(FILTERS_9)
NO_ZSCALE = FilterSupport(ALL.names - {"zscale"})


def test_filter_list_parsing() -> None:
    assert ALL.names == {
        "aap", "bwdif", "overlay", "setparams", "scale", "tonemap", "yadif", "zscale", "testsrc2",
        "concat", "buffersink",
    }  # fmt: skip
    assert (ALL.tone_mapping, ALL.deinterlacer) == (True, "bwdif")
    old = parse_filter_list(FILTERS_4)
    assert old.names == {"abench", "scale", "tonemap", "yadif"}
    # tonemap alone cannot map: it needs linear float RGB, which only zscale makes here.
    assert (old.tone_mapping, old.deinterlacer) == (False, "yadif")
    assert parse_filter_list("") == FilterSupport(frozenset())


def source(**changes: object) -> VideoInfo:
    base = VideoInfo(
        index=0, codec="h264", width=1920, height=1080, fps=25.0, hls_codec="avc1.640028",
        bit_rate=None, pix_fmt="yuv420p", color_range="tv",
    )  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


PQ = source(
    codec="hevc", pix_fmt="yuv420p10le", bit_depth=10, color_primaries="bt2020",
    color_transfer="smpte2084", color_space="bt2020nc", dynamic_range="PQ",
)  # fmt: skip
INTERLACED = source(field_order="tt", interlaced=True)


def job(video: VideoInfo = INTERLACED, **changes: object) -> EncodeJob:
    base = EncodeJob(
        source=Path("/media/clip.mkv"), video_index=0, timeline=fixed_grid(10.0, 2.0, 0.04),
        source_start=0.0, width=1280, height=720, bitrate=3_500_000, segment_seconds=2.0,
        source_video=video, filters=ALL,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def chain(argv: list[str]) -> list[str]:
    """The filters of `-vf`, one per item (options use ':', filters ',')."""
    return argv[argv.index("-vf") + 1].split(",")


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def colour_tags(argv: list[str]) -> dict[str, str | None]:
    names = ("-color_primaries", "-color_trc", "-colorspace", "-color_range")
    return {name: option(argv, name) for name in names}


def test_progressive_sdr_is_only_scaled_and_keeps_the_source_tags() -> None:
    argv = encoder_argv("ffmpeg", job(source()), Path("/out"))
    assert chain(argv) == ["scale=1280:720"]
    # No colour options: x264 writes what the frames say, i.e. the source's own description.
    assert set(colour_tags(argv).values()) == {None}
    assert job(source()).notes == ()


@pytest.mark.parametrize(
    ("order", "parity"),
    [("tt", "tff"), ("tb", "tff"), ("bb", "bff"), ("bt", "bff"), (None, "auto")],
)
def test_interlaced_is_deinterlaced_first_with_the_probed_parity(
    order: str | None, parity: str
) -> None:
    video = source(field_order=order, interlaced=True)
    argv = encoder_argv("ffmpeg", job(video, deinterlace=True), Path("/out"))
    # send_frame: one frame per frame, so 1080i50 stays 25 frames/s on the same timestamps.
    assert chain(argv) == [f"bwdif=mode=send_frame:parity={parity}:deint=all", "scale=1280:720"]


def test_deinterlacing_keeps_the_segment_grid() -> None:
    """The keyframe and timestamp options are those of a progressive job, at any start."""
    for start in (0, 3):
        plain = encoder_argv("ffmpeg", job(source()), Path("/out"), start, 4)
        woven = encoder_argv("ffmpeg", job(deinterlace=True), Path("/out"), start, 4)
        for name in ("-ss", "-t", "-force_key_frames", "-output_ts_offset", "-g", "-r"):
            assert option(woven, name) == option(plain, name), name
        assert "-r" not in woven and "-vsync" not in woven and "-fps_mode" not in woven


def test_yadif_when_there_is_no_bwdif_and_a_note_when_there_is_neither() -> None:
    only_yadif = FilterSupport(frozenset({"yadif", "scale"}))
    argv = encoder_argv("ffmpeg", job(deinterlace=True, filters=only_yadif), Path("/out"))
    assert chain(argv)[0] == "yadif=mode=send_frame:parity=tff:deint=all"
    bare = job(deinterlace=True, filters=FilterSupport(frozenset({"scale"})))
    assert chain(encoder_argv("ffmpeg", bare, Path("/out"))) == ["scale=1280:720"]
    assert bare.notes == (DEINTERLACE_UNAVAILABLE,)


def test_pq_is_tone_mapped_to_bt709_and_tagged() -> None:
    argv = encoder_argv("ffmpeg", job(PQ, tonemap=True), Path("/out"))
    assert chain(argv) == [
        "zscale=tin=smpte2084:pin=bt2020:min=bt2020nc:rin=tv:t=linear:npl=100:p=bt709",
        "format=gbrpf32le",
        "tonemap=tonemap=mobius:desat=0",
        "zscale=t=bt709:m=bt709:r=tv",
        "format=yuv420p",
        "scale=1280:720",
    ]
    # H.264 VUI (E.2.1) says what the filters made: BT.709 primaries, transfer and matrix,
    # limited range; a player must not guess from the (SDR) picture.
    assert colour_tags(argv) == dict(zip(BT709_TAGS[::2], BT709_TAGS[1::2], strict=True))
    assert colour_tags(argv)["-color_primaries"] == "bt709"
    assert job(PQ, tonemap=True).notes == ()


def test_hlg_input_description_comes_from_the_probe() -> None:
    """A file saying HLG only in its container: zscale must be told, or it reads the frames'
    (unspecified) description and either fails or maps nothing."""
    hlg = dataclasses.replace(PQ, color_transfer="arib-std-b67", dynamic_range="HLG")
    first = chain(encoder_argv("ffmpeg", job(hlg, tonemap=True), Path("/out")))[0]
    assert first.startswith("zscale=tin=arib-std-b67:pin=bt2020:min=bt2020nc:rin=tv:")
    # Unknown primaries and matrix: BT.2100's (BT.2020); full range said when the file says.
    bare = dataclasses.replace(hlg, color_primaries=None, color_space=None, color_range="pc")
    first = chain(encoder_argv("ffmpeg", job(bare, tonemap=True), Path("/out")))[0]
    assert first.startswith("zscale=tin=arib-std-b67:pin=bt2020:min=bt2020nc:rin=pc:")
    assert first.endswith(":t=linear:npl=100:p=bt709")


def test_without_zscale_hdr_is_tagged_sdr_unmapped_and_says_so() -> None:
    mapped = job(PQ, tonemap=True, filters=NO_ZSCALE)
    argv = encoder_argv("ffmpeg", mapped, Path("/out"))
    # Relabelled, not converted: PQ code values shown as BT.709 (the matrix is converted by
    # the -colorspace negotiation in ffmpeg 7+).
    assert chain(argv) == ["setparams=color_primaries=bt709:color_trc=bt709", "scale=1280:720"]
    assert not any("zscale" in a or "tonemap" in a for a in argv)
    assert colour_tags(argv)["-color_trc"] == "bt709"  # what is sent is SDR (VIDEO-RANGE)
    assert mapped.notes == (TONEMAP_UNAVAILABLE,)


def test_never_detected_uses_only_builtin_filters() -> None:
    """Detection not run: bwdif (built into every libavfilter) yes, zscale (libzimg) no, so
    no encoder fails on a filter its binary lacks."""
    unknown = job(PQ, deinterlace=True, tonemap=True, filters=None)
    argv = encoder_argv("ffmpeg", unknown, Path("/out"))
    assert [f.split("=")[0] for f in chain(argv)] == ["bwdif", "setparams", "scale"]
    assert unknown.notes == (FILTERS_UNKNOWN,)


def test_order_deinterlace_then_tonemap_then_burn_in_then_scale() -> None:
    both = job(dataclasses.replace(PQ, field_order="bb", interlaced=True))
    both = dataclasses.replace(both, deinterlace=True, tonemap=True)
    names = [f.split("=")[0] for f in chain(encoder_argv("ffmpeg", both, Path("/out")))]
    assert names == ["bwdif", "zscale", "format", "tonemap", "zscale", "format", "scale"]

    burnt = dataclasses.replace(both, burn_subtitle=3)
    argv = encoder_argv("ffmpeg", burnt, Path("/out"))
    graph = option(argv, "-filter_complex")
    assert graph is not None and "-vf" not in argv
    picture, overlay = graph.split(";")
    # The subtitle bitmap goes onto the progressive SDR picture (its palette is SDR: mapped
    # as PQ it would be dimmed), before scaling (its coordinates are the source's).
    assert picture.startswith("[0:0]bwdif=mode=send_frame:parity=bff:deint=all,zscale=")
    assert picture.endswith(",format=yuv420p[picture]")
    assert overlay == "[picture][0:3]overlay=eof_action=pass,scale=1280:720[v]"
    assert option(argv, "-map") == "[v]"


def test_burn_in_alone_is_unchanged() -> None:
    argv = encoder_argv("ffmpeg", job(source(), burn_subtitle=2), Path("/out"))
    assert option(argv, "-filter_complex") == "[0:0][0:2]overlay=eof_action=pass,scale=1280:720[v]"
