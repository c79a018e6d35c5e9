"""Codec decision over hand-built probe results: remux, copy one stream, or encode."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest

from hlstrio.media import AudioInfo, MediaInfo, VideoInfo
from hlstrio.streaming import Capabilities, Plan, UnknownTrack, Unplayable, decide, normalize_codec
from hlstrio.streaming._decision import ENCODED_AUDIO_BITRATE, choose_audio, peak_bitrate

TB = Fraction(1, 12800)
GOP_SECONDS = 2
GOP_BYTES = 500_000  # 2 Mbit/s of video


def video(
    codec: str = "h264",
    width: int = 1920,
    height: int = 1080,
    hls_codec: str | None = "avc1.640028",
    fps: float = 25.0,
) -> VideoInfo:
    return VideoInfo(
        index=0,
        codec=codec,
        width=width,
        height=height,
        fps=fps,
        hls_codec=hls_codec,
        bit_rate=None,
    )


HEVC = video("hevc", hls_codec="hvc1.1.6.L120.90")


def audio(
    index: int = 1,
    codec: str = "aac",
    hls_codec: str | None = "mp4a.40.2",
    bit_rate: int | None = 128_000,
    language: str | None = None,
) -> AudioInfo:
    return AudioInfo(
        index=index,
        codec=codec,
        channels=2,
        sample_rate=48000,
        language=language,
        hls_codec=hls_codec,
        bit_rate=bit_rate,
    )


AAC = audio()
OPUS = audio(codec="opus", hls_codec=None)
OPUS_COPYABLE = audio(codec="opus", hls_codec="Opus")


def media(
    v: VideoInfo | None = None,
    a: tuple[AudioInfo, ...] = (AAC,),
    gop_bytes: tuple[int, ...] | None = None,
    seconds: int = 60,
    size: int = 20_000_000,
) -> MediaInfo:
    if v is None:
        return MediaInfo(
            container="mov",
            duration=float(seconds),
            size=size,
            video=None,
            audio=a,
            keyframe_pts=(),
            gop_bytes=(),
            video_time_base=None,
            video_start_pts=None,
            video_end_pts=None,
        )
    step = GOP_SECONDS * 12800
    keyframes = tuple(range(0, seconds * 12800, step))
    sizes = gop_bytes if gop_bytes is not None else (GOP_BYTES,) * len(keyframes)
    return MediaInfo(
        container="mov",
        duration=float(seconds),
        size=size,
        video=v,
        audio=a,
        keyframe_pts=keyframes,
        gop_bytes=sizes,
        video_time_base=TB,
        video_start_pts=0,
        video_end_pts=seconds * 12800,
    )


H264_AAC = media(video(), (AAC,))
DEFAULT = Capabilities()


# --- normalize_codec ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("avc1.64001f", "h264"),
        ("avc1.42E01E", "h264"),
        ("avc3.640028", "h264"),
        ("avc1", "h264"),
        ("AVC", "h264"),
        ("H.264", "h264"),
        ("x264", "h264"),
        ("h264", "h264"),
        ("  H264 \n", "h264"),
        ("hvc1.1.6.L93.B0", "hevc"),
        ("hev1.2.4.L120.B0", "hevc"),
        ("HVC1", "hevc"),
        ("h265", "hevc"),
        ("H.265", "hevc"),
        ("hevc", "hevc"),
        ("mp4a.40.2", "aac"),
        ("mp4a.40.5", "aac"),
        ("mp4a.40.29", "aac"),
        ("MP4A.40.2", "aac"),
        ("mp4a", "aac"),
        ("aac-lc", "aac"),
        ("aac", "aac"),
        ("mp4a.40.34", "mp3"),
        ("mp3", "mp3"),
        ("ac-3", "ac3"),
        ("AC-3", "ac3"),
        ("ac3", "ac3"),
        ("ec-3", "eac3"),
        ("e-ac-3", "eac3"),
        ("eac3", "eac3"),
        ("vp09", "vp9"),
        ("av01", "av1"),
        ("opus", "opus"),
        ("flac", "flac"),
    ],
)
def test_normalize_codec(name: str, expected: str) -> None:
    assert normalize_codec(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # RFC 6381 object type indications other than 0x40 (MPEG-4 audio) and 0x66-0x68
        # (MPEG-2 AAC): browsers' MediaSource.isTypeSupported uses these for MP3 and AC-3.
        ("mp4a.69", "mp3"),  # ISO/IEC 13818-3 (MPEG-2 audio)
        ("mp4a.6B", "mp3"),  # ISO/IEC 11172-3 (MPEG-1 audio)
        ("mp4a.a5", "ac3"),
        ("mp4a.a6", "eac3"),
        ("mp4a.67", "aac"),  # MPEG-2 AAC LC
    ],
)
def test_normalize_mp4a_object_types(name: str, expected: str) -> None:
    # A client that decodes only MP3 and says "mp4a.6B" must not be sent AAC.
    assert normalize_codec(name) == expected


# --- Capabilities.from_lists -------------------------------------------------------------------


def test_capabilities_defaults() -> None:
    caps = Capabilities.from_lists()
    assert caps == Capabilities()
    assert caps.video_codecs == frozenset({"h264"})
    assert caps.audio_codecs == frozenset({"aac"})
    assert caps.max_height is None
    assert caps.max_bitrate is None
    assert Capabilities.from_lists(None, None, None, None) == DEFAULT


def test_capabilities_normalises_and_dedupes() -> None:
    caps = Capabilities.from_lists(
        ["avc1.64001f", "hvc1.1.6.L93.B0", "H264"], ["mp4a.40.2", "ec-3", "AAC"], 720, 3_000_000
    )
    assert caps.video_codecs == frozenset({"h264", "hevc"})
    assert caps.audio_codecs == frozenset({"aac", "eac3"})
    assert caps.max_height == 720
    assert caps.max_bitrate == 3_000_000


def test_capabilities_equal_regardless_of_order_and_spelling() -> None:
    a = Capabilities.from_lists(["hevc", "h264"], ["aac", "ac3"])
    b = Capabilities.from_lists(["avc1.640028", "hev1.1.6.L93.B0", "avc1.42e01e"], ["ac-3", "mp4a"])
    assert a == b
    assert hash(a) == hash(b)


def test_capabilities_empty_list_means_none_not_default() -> None:
    caps = Capabilities.from_lists([], [])
    assert caps.video_codecs == frozenset()
    assert caps.audio_codecs == frozenset()


def test_capabilities_one_list_keeps_the_other_default() -> None:
    caps = Capabilities.from_lists(audio_codecs=["ac3"])
    assert caps.video_codecs == frozenset({"h264"})
    assert caps.audio_codecs == frozenset({"ac3"})


def test_capabilities_to_json() -> None:
    caps = Capabilities.from_lists(["hevc", "h264"], ["eac3", "aac"], 1080, None)
    assert caps.to_json() == {
        "video_codecs": ["h264", "hevc"],
        "audio_codecs": ["aac", "eac3"],
        "max_height": 1080,
        "max_bitrate": None,
        "max_audio_channels": 2,
        "containers": ["ts"],
        "max_video_bit_depth": 8,
        "hdr": False,
    }


# --- peak_bitrate ------------------------------------------------------------------------------


def test_peak_bitrate_constant_gops() -> None:
    info = media(video(), (AAC,))
    assert peak_bitrate(info, None) == 2_000_000
    assert peak_bitrate(info, AAC) == 2_000_000 + 128_000


def test_peak_bitrate_takes_the_largest_gop() -> None:
    sizes = (GOP_BYTES,) * 10 + (1_500_000,) + (GOP_BYTES,) * 19
    info = media(video(), (AAC,), gop_bytes=sizes)
    assert peak_bitrate(info, None) == 6_000_000


def test_peak_bitrate_unknown_audio_rate_counts_192k() -> None:
    info = media(video(), (audio(bit_rate=None),))
    assert peak_bitrate(info, info.audio[0]) == 2_000_000 + 192_000


def test_peak_bitrate_ignores_gops_under_half_a_second() -> None:
    # Keyframes at 0, 0.25 s (a huge 0.25 s GOP) and 2.25 s; the tiny GOP would claim 32 Mbit/s.
    info = dataclasses.replace(
        media(video(), ()),
        keyframe_pts=(0, 3200, 28800),
        gop_bytes=(1_000_000, 500_000, 500_000),
        video_end_pts=54400,
        duration=4.25,
    )
    assert peak_bitrate(info, None) == 2_000_000


def test_peak_bitrate_falls_back_to_file_average() -> None:
    # A single keyframe: no GOP length to measure, so size * 8 / duration.
    info = dataclasses.replace(
        media(video(), ()), keyframe_pts=(0,), gop_bytes=(15_000_000,), size=15_000_000
    )
    assert peak_bitrate(info, None) == 2_000_000
    audio_only = media(None, (AAC,), size=7_500_000)
    assert peak_bitrate(audio_only, AAC) == 1_000_000 + 128_000


# --- decide: the video ------------------------------------------------------------------------


def actions(plan: Plan) -> tuple[str, str | None, list[tuple[str, str]]]:
    """(mode, video action, [(audio rendition, its action)])."""
    video = plan.video.action if plan.video is not None else None
    return plan.mode, video, [(a.rendition, a.action) for a in plan.audio]


def test_h264_aac_default_caps_is_a_remux() -> None:
    plan = decide(H264_AAC, DEFAULT)
    assert actions(plan) == ("remux", "copy", [("a1", "copy")])
    assert plan.transcodes is False and plan.container == "ts"
    assert plan.video is not None
    assert (plan.video.width, plan.video.height, plan.video.bitrate) == (1920, 1080, None)
    assert plan.video.codec_string == "avc1.640028"
    assert plan.reason == "client plays the source video"
    (only,) = plan.audio
    assert (only.codec_string, only.group, only.default, only.channels) == (
        "mp4a.40.2",
        "aac",
        True,
        2,
    )


def test_hevc_is_copied_only_in_fmp4() -> None:
    # Apple HLS authoring 1.5: HEVC MUST be in fMP4, never MPEG-TS.
    ts_only = Capabilities.from_lists(["h264", "hevc"], ["aac"])
    plan = decide(media(HEVC, (AAC,)), ts_only)
    assert actions(plan) == ("transcode", "encode", [("a1", "copy")])
    assert "fits none of the client's containers" in plan.reason
    both = Capabilities.from_lists(["h264", "hevc"], ["aac"], containers=["ts", "fmp4"])
    plan = decide(media(HEVC, (AAC,)), both)
    assert actions(plan) == ("remux", "copy", [("a1", "copy")])
    assert plan.container == "fmp4"


def test_the_container_is_the_one_that_copies_the_most() -> None:
    # H.264 + Opus to a client listing TS first: TS would need the Opus encoded, fMP4 copies it.
    caps = Capabilities.from_lists(["h264"], ["aac", "opus"], containers=["ts", "fmp4"])
    plan = decide(media(video(), (OPUS_COPYABLE,)), caps)
    assert (plan.container, actions(plan)) == ("fmp4", ("remux", "copy", [("a1", "copy")]))
    plan = decide(H264_AAC, caps)
    assert plan.container == "ts"  # equal: the client's preference


def test_video_only_remux_has_no_audio() -> None:
    plan = decide(media(video(), ()), DEFAULT)
    assert actions(plan) == ("remux", "copy", [])
    assert plan.default_audio is None and plan.audio_groups == ()


def test_source_within_max_height_and_bitrate_is_still_a_remux() -> None:
    caps = Capabilities.from_lists(max_height=1080, max_bitrate=2_128_000)
    assert decide(H264_AAC, caps).mode == "remux"


def test_hevc_is_encoded_for_a_client_without_it() -> None:
    plan = decide(media(HEVC, (OPUS,)), DEFAULT)
    assert actions(plan) == ("transcode", "encode", [("a1s", "encode")])
    assert plan.transcodes is True
    assert plan.video is not None
    assert (plan.video.width, plan.video.height, plan.video.bitrate) == (1920, 1080, 6_000_000)
    assert plan.video.codec_string == "avc1.640029"
    assert "video hevc not in the client's codecs" in plan.reason


def test_copied_video_keeps_its_real_size() -> None:
    # RESOLUTION in the master playlist must be the source's, not a rounded-to-even guess.
    plan = decide(media(video(width=1920, height=817), (OPUS,)), DEFAULT)
    assert plan.video is not None and plan.video.action == "copy"
    assert (plan.video.width, plan.video.height) == (1920, 817)


def test_video_without_codec_string_cannot_be_copied() -> None:
    plan = decide(media(video(hls_codec=None), (AAC,)), DEFAULT)
    assert actions(plan) == ("transcode", "encode", [("a1", "copy")])
    assert "codec parameters unreadable" in plan.reason


@pytest.mark.parametrize(
    ("src", "max_height", "size", "bitrate"),
    [
        ((1920, 1080), 720, (1280, 720), 3_500_000),
        ((1920, 1080), 480, (854, 480), 1_800_000),
        ((1920, 1080), 719, (1276, 718), 1_800_000),
        ((1440, 1080), 480, (640, 480), 1_800_000),
        ((3840, 2160), 1080, (1920, 1080), 6_000_000),
        ((1920, 800), 360, (864, 360), 1_000_000),
        ((1280, 536), 481, (1146, 480), 1_800_000),
        ((640, 360), 240, (426, 240), 700_000),
    ],
)
def test_max_height_scales_with_even_sizes_keeping_aspect(
    src: tuple[int, int], max_height: int, size: tuple[int, int], bitrate: int
) -> None:
    info = media(video(width=src[0], height=src[1]), (AAC,))
    plan = decide(info, Capabilities.from_lists(max_height=max_height))
    assert actions(plan) == ("transcode", "encode", [("a1", "copy")])
    out = plan.video
    assert out is not None
    assert (out.width, out.height) == size
    assert out.width % 2 == 0 and out.height % 2 == 0
    assert out.height <= max_height
    assert abs(out.width / out.height - src[0] / src[1]) < 2 / out.height
    assert out.bitrate == bitrate


def test_tiny_max_height_never_gives_an_empty_picture() -> None:
    plan = decide(H264_AAC, Capabilities.from_lists(max_height=1))
    assert plan.video is not None and plan.video.action == "encode"
    assert plan.video.height >= 2 and plan.video.width >= 2


def test_max_bitrate_below_source_peak_encodes_video() -> None:
    # Source peak: 2 Mbit/s video + 128 kbit/s audio.
    plan = decide(H264_AAC, Capabilities.from_lists(max_bitrate=1_500_000))
    assert actions(plan) == ("transcode", "encode", [("a1", "copy")])
    assert plan.video is not None
    assert plan.video.bitrate == 1_500_000 - ENCODED_AUDIO_BITRATE
    assert plan.reason == "source bitrate above max_bitrate"
    just_below = Capabilities.from_lists(max_bitrate=2_127_999)
    assert decide(H264_AAC, just_below).mode == "transcode"
    exactly = Capabilities.from_lists(max_bitrate=2_128_000)
    assert decide(H264_AAC, exactly).mode == "remux"


def test_encoded_bitrate_has_a_floor() -> None:
    plan = decide(H264_AAC, Capabilities.from_lists(max_bitrate=100_000))
    assert plan.video is not None and plan.video.bitrate == 200_000


def test_transcode_mode_forces_encoding_of_everything() -> None:
    plan = decide(H264_AAC, DEFAULT, "transcode")
    assert actions(plan) == ("transcode", "encode", [("a1s", "encode")])
    assert plan.reason == "transcode requested"


def test_transcode_mode_respects_max_height() -> None:
    plan = decide(H264_AAC, Capabilities.from_lists(max_height=720), "transcode")
    assert plan.video is not None
    assert (plan.video.width, plan.video.height, plan.video.bitrate) == (1280, 720, 3_500_000)


def test_audio_only_source_needs_no_encoder_process() -> None:
    plan = decide(media(None, (AAC,)), DEFAULT)
    assert actions(plan) == ("remux", None, [("a1", "copy")])
    assert plan.reason == "audio-only source"
    plan = decide(media(None, (OPUS,)), DEFAULT)
    assert actions(plan) == ("remux", None, [("a1s", "encode")])


# --- decide: audio renditions (RFC 8216 4.3.4.1; Apple HLS authoring 9.6, 9.7) ---------------


def test_audio_a_client_cannot_take_is_aac_made_in_process_and_video_stays_copied() -> None:
    plan = decide(media(video(), (OPUS,)), DEFAULT)
    assert actions(plan) == ("remux", "copy", [("a1s", "encode")])
    (aac,) = plan.audio
    assert (aac.codec, aac.channels, aac.sample_rate, aac.bitrate) == (
        "aac",
        2,
        48_000,
        ENCODED_AUDIO_BITRATE,
    )
    assert aac.reason == "opus 2 ch not playable as is"


def test_aac_without_codec_string_is_encoded() -> None:
    # e.g. AAC Main or LTP profile: not something HLS players decode.
    plan = decide(media(video(), (audio(hls_codec=None),)), DEFAULT)
    assert actions(plan) == ("remux", "copy", [("a1s", "encode")])


@pytest.mark.parametrize("audio_codec", [("mp3", "mp4a.40.34"), ("ac3", "ac-3"), ("eac3", "ec-3")])
def test_other_ts_audio_copied_when_client_takes_it(audio_codec: tuple[str, str]) -> None:
    codec, hls = audio_codec
    info = media(video(), (audio(codec=codec, hls_codec=hls),))
    assert actions(decide(info, DEFAULT)) == ("remux", "copy", [("a1s", "encode")])
    plan = decide(info, Capabilities.from_lists(audio_codecs=[hls]))
    assert actions(plan) == ("remux", "copy", [("a1", "copy")])
    assert plan.audio_groups == (codec,)


def surround(index: int = 2, language: str = "fr") -> AudioInfo:
    return dataclasses.replace(
        audio(index=index, codec="ac3", hls_codec="ac-3", bit_rate=384_000, language=language),
        channels=6,
    )


def test_multichannel_track_is_a_stereo_aac_for_a_default_client() -> None:
    # Today's bug: an AC-3 5.1 first track made the whole file a transcode.
    info = media(video(), (surround(1), audio(index=2, language="en")))
    plan = decide(info, DEFAULT)
    assert actions(plan) == ("remux", "copy", [("a1s", "encode"), ("a2", "copy")])
    assert plan.audio[0].reason == "stereo downmix of a multichannel track"


def test_multichannel_copy_is_its_own_rendition_in_its_codec_group() -> None:
    info = media(video(), (audio(index=1, language="en"), surround(2)))
    caps = Capabilities.from_lists(audio_codecs=["aac", "ac3"], max_audio_channels=6)
    plan = decide(info, caps)
    assert actions(plan) == ("remux", "copy", [("a1", "copy"), ("a2s", "encode"), ("a2", "copy")])
    assert plan.audio_groups == ("aac", "ac3")
    by_id = {a.rendition: a for a in plan.audio}
    assert (by_id["a2"].group, by_id["a2"].channels, by_id["a2"].name) == (
        "ac3",
        6,
        "Français (5.1)",
    )
    # The downmix of the same track says it is one; a title that says "5.1" is not repeated.
    assert by_id["a2s"].name == "Français (stereo)"
    titled = dataclasses.replace(surround(2), title="Français 5.1")
    names = {a.rendition: a.name for a in decide(media(video(), (titled,)), caps).audio}
    assert names == {"a2s": "Français 5.1 (stereo)", "a2": "Français 5.1"}
    # Each group has exactly one DEFAULT=YES (RFC 8216 4.3.4.1.1).
    for group in plan.audio_groups:
        assert sum(a.default for a in plan.audio if a.group == group) == 1
    # A client that only does stereo does not get the 5.1 copy.
    stereo = Capabilities.from_lists(audio_codecs=["aac", "ac3"])
    assert [a.rendition for a in decide(info, stereo).audio] == ["a1", "a2s"]


def test_rendition_names_are_unique_in_a_group() -> None:
    info = media(video(), (audio(index=1, language="en"), audio(index=2, language="en")))
    assert [a.name for a in decide(info, DEFAULT).audio] == ["English", "English (2)"]


def test_default_track_by_index_language_or_disposition() -> None:
    eng = audio(index=1, codec="aac", language="en")
    fra = dataclasses.replace(
        audio(index=2, codec="ac3", hls_codec="ac-3", bit_rate=384_000, language="fr"),
        default=True,
    )
    info = media(video(), (eng, fra))
    assert choose_audio(info, None) is fra  # the file's own default disposition
    assert choose_audio(info, 1) is eng
    assert choose_audio(info, "EN") is eng
    plan = decide(info, DEFAULT, audio=1)
    assert plan.default_audio is not None and plan.default_audio.rendition == "a1"
    plan = decide(info, DEFAULT)
    assert plan.default_audio is not None and plan.default_audio.rendition == "a2s"
    # Every track is offered whichever is the default.
    assert {a.stream_index for a in plan.audio} == {1, 2}


def test_chosen_audio_rate_counts_toward_max_bitrate() -> None:
    eng = audio(index=1, bit_rate=128_000)
    big = audio(index=2, codec="aac", bit_rate=640_000)
    info = media(video(), (eng, big))
    caps = Capabilities.from_lists(max_bitrate=2_200_000)
    assert decide(info, caps, audio=1).mode == "remux"
    assert decide(info, caps, audio=2).mode == "transcode"


# --- decide: containers -----------------------------------------------------------------------


def test_container_follows_the_clients_preference_among_those_that_carry_the_video() -> None:
    fmp4_first = Capabilities.from_lists(containers=["fmp4", "ts"])
    assert decide(H264_AAC, fmp4_first).container == "fmp4"
    assert decide(H264_AAC, DEFAULT).container == "ts"


# --- decide: errors ---------------------------------------------------------------------------


def test_remux_mode_when_impossible() -> None:
    with pytest.raises(Unplayable) as info:
        decide(media(HEVC, (AAC,)), DEFAULT, "remux")
    assert info.value.code == "cannot_remux"
    assert "hevc" in str(info.value)
    with pytest.raises(Unplayable) as info:
        decide(H264_AAC, Capabilities.from_lists(max_bitrate=1_000_000), "remux")
    assert info.value.code == "cannot_remux"
    assert "bitrate" in str(info.value)
    # Audio the client cannot take is no reason to refuse a remux: it is made in-process.
    assert decide(media(video(), (OPUS,)), DEFAULT, "remux").mode == "remux"


def test_remux_mode_needs_video() -> None:
    with pytest.raises(Unplayable) as info:
        decide(media(None, (AAC,)), DEFAULT, "remux")
    assert info.value.code == "cannot_remux"


def test_remux_mode_when_possible() -> None:
    assert decide(H264_AAC, DEFAULT, "remux").mode == "remux"


def test_bad_mode() -> None:
    with pytest.raises(Unplayable) as info:
        decide(H264_AAC, DEFAULT, "copy")
    assert info.value.code == "bad_mode"


def test_no_streams() -> None:
    with pytest.raises(Unplayable) as info:
        decide(media(None, ()), DEFAULT)
    assert info.value.code == "no_streams"


@pytest.mark.parametrize("wanted", [7, 0, "de"])  # 0 is the video stream
def test_unknown_audio_track(wanted: int | str) -> None:
    with pytest.raises(UnknownTrack) as info:
        decide(H264_AAC, DEFAULT, audio=wanted)
    assert info.value.code == "unknown_audio"


def test_unplayable_carries_code_and_message() -> None:
    exc = Unplayable("cannot_remux", "because")
    assert exc.code == "cannot_remux"
    assert str(exc) == "because"
